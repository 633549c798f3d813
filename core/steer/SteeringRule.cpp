#include "steer/SteeringRule.h"

#include "util/Error.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace cs {

namespace {

bool parseIndex(const std::string& s, long& out) {
    if (s.empty() || s.size() > 18) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    out = std::stol(s);
    return true;
}

bool parseNumber(const std::string& s, double& out) {
    if (s.empty()) return false;
    errno = 0;
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return errno == 0 && end == s.c_str() + s.size() && std::isfinite(out);
}

// "[SAE_ID/]FEATURE": the id may itself hold no '/', so the last one splits.
void splitFeature(const std::string& s, std::string& saeId, long& feature, const std::string& where) {
    const size_t slash = s.rfind('/');
    saeId = slash == std::string::npos ? "" : s.substr(0, slash);
    const std::string idx = slash == std::string::npos ? s : s.substr(slash + 1);
    if (slash != std::string::npos && saeId.empty()) throw Error(where + ": empty SAE id before '/'");
    if (!parseIndex(idx, feature))
        throw Error(where + ": feature index '" + idx + "' is not a non-negative integer");
}

std::string formatNumber(double v) {
    std::ostringstream o;
    o.precision(9);
    o << v;
    return o.str();
}

}  // namespace

const char* steerModeName(SteerMode m) {
    switch (m) {
    case SteerMode::Add: return "add";
    case SteerMode::Clamp: return "clamp";
    case SteerMode::Ablate: return "ablate";
    case SteerMode::Scale: return "scale";
    }
    return "add";
}

SteerMode parseSteerMode(const std::string& s, const std::string& where) {
    if (s == "add") return SteerMode::Add;
    if (s == "clamp") return SteerMode::Clamp;
    if (s == "ablate") return SteerMode::Ablate;
    if (s == "scale") return SteerMode::Scale;
    throw Error(where + ": unknown mode '" + s + "' (expected add, clamp, ablate or scale)");
}

bool PositionRange::contains(long p, long promptLength) const {
    switch (kind) {
    case All: return true;
    case Prompt: return p < promptLength;
    case Generated: return p >= promptLength;
    case Span: return p >= first && p <= last;
    }
    return true;
}

std::string PositionRange::toString() const {
    switch (kind) {
    case All: return "all";
    case Prompt: return "prompt";
    case Generated: return "generated";
    case Span: return std::to_string(first) + "-" + std::to_string(last);
    }
    return "all";
}

PositionRange parsePositions(const std::string& s, const std::string& where) {
    PositionRange r;
    if (s == "all") return r;
    if (s == "prompt") { r.kind = PositionRange::Prompt; return r; }
    if (s == "generated") { r.kind = PositionRange::Generated; return r; }
    r.kind = PositionRange::Span;
    const size_t dash = s.find('-');
    const std::string a = dash == std::string::npos ? s : s.substr(0, dash);
    const std::string b = dash == std::string::npos ? s : s.substr(dash + 1);
    if (!parseIndex(a, r.first) || !parseIndex(b, r.last))
        throw Error(where + ": positions '" + s + "' are not all, prompt, generated or I-J (inclusive token indices)");
    if (r.last < r.first)
        throw Error(where + ": positions '" + s + "' end before they start");
    return r;
}

std::string SteeringCondition::toString() const {
    return (saeId.empty() ? "" : saeId + "/") + std::to_string(feature) + ">" + formatNumber(threshold);
}

bool SteeringPlan::active() const {
    for (const auto& r : rules)
        if (r.enabled) return true;
    return false;
}

SteeringRule parseSteerSpec(const std::string& spec) {
    const std::string where = "--steer '" + spec + "'";
    SteeringRule r;
    std::string rest = spec;
    const size_t at = rest.rfind('@');
    if (at != std::string::npos) {
        r.positions = parsePositions(rest.substr(at + 1), where);
        rest = rest.substr(0, at);
    }
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos)
        throw Error(where + ": expected [SAE_ID/]FEATURE:MODE[=VALUE][@POSITIONS], e.g. 123:add=4 or res-L2/77:ablate");
    splitFeature(rest.substr(0, colon), r.saeId, r.feature, where);
    std::string mode = rest.substr(colon + 1);
    const size_t eq = mode.find('=');
    std::string value;
    const bool hasValue = eq != std::string::npos;
    if (hasValue) {
        value = mode.substr(eq + 1);
        mode = mode.substr(0, eq);
    }
    r.mode = parseSteerMode(mode, where);
    if (hasValue && !parseNumber(value, r.value))
        throw Error(where + ": value '" + value + "' is not a finite number");
    if (r.mode == SteerMode::Ablate) {
        if (hasValue && r.value != 0) throw Error(where + ": ablate takes no value (it clamps to 0)");
        r.value = 0;
    } else if (!hasValue) {
        throw Error(where + ": " + std::string(steerModeName(r.mode)) + " needs a value, e.g. " +
                    std::to_string(r.feature) + ":" + steerModeName(r.mode) + "=4");
    }
    return r;
}

std::string toSpecString(const SteeringRule& r) {
    std::string s = (r.saeId.empty() ? "" : r.saeId + "/") + std::to_string(r.feature) + ":" + steerModeName(r.mode);
    if (r.mode != SteerMode::Ablate) s += "=" + formatNumber(r.value);
    if (r.positions.kind != PositionRange::All) s += "@" + r.positions.toString();
    return s;
}

SteeringCondition parseSteerCondition(const std::string& cond) {
    const std::string where = "--when '" + cond + "'";
    const size_t gt = cond.find('>');
    if (gt == std::string::npos) throw Error(where + ": expected [SAE_ID/]FEATURE>THRESHOLD, e.g. 42>1.5");
    SteeringCondition c;
    splitFeature(cond.substr(0, gt), c.saeId, c.feature, where);
    if (!parseNumber(cond.substr(gt + 1), c.threshold))
        throw Error(where + ": threshold '" + cond.substr(gt + 1) + "' is not a finite number");
    return c;
}

}  // namespace cs
