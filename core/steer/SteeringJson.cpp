#include "steer/SteeringJson.h"

#include "io/JsonFile.h"
#include "util/Error.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace cs {

namespace {

const char* kFormat = "circuitscope-steering";

nlohmann::json rowToJson(const SteeringRule& r) {
    nlohmann::json j = {{"mode", steerModeName(r.mode)},
                        {"value", r.value},
                        {"positions", r.positions.toString()},
                        {"enabled", r.enabled},
                        {"conditional", r.conditional}};
    if (!r.label.empty()) j["label"] = r.label;
    if (r.unit > 0) j["unit"] = r.unit;
    if (r.isVector()) {
        at::Tensor d = r.direction.to(at::kFloat).contiguous();
        const float* p = d.data_ptr<float>();
        j["vector"] = {{"name", r.vectorName}, {"hook", r.hook}, {"values", std::vector<float>(p, p + d.numel())}};
    } else {
        j["sae"] = r.saeId;
        j["feature"] = r.feature;
    }
    return j;
}

SteeringRule rowFromJson(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": expected an object");
    JsonFields f(j, where);
    SteeringRule r;
    r.mode = parseSteerMode(f.stringOr("mode", "add"), where);
    r.value = f.numberOr("value", 0);
    r.positions = parsePositions(f.stringOr("positions", "all"), where);
    r.enabled = f.booleanOr("enabled", true);
    r.conditional = f.booleanOr("conditional", false);
    r.label = f.stringOr("label", "");
    r.unit = f.numberOr("unit", 0);
    if (j.contains("vector")) {
        const nlohmann::json& v = j["vector"];
        if (!v.is_object()) throw Error(where + ": field 'vector' must be an object");
        JsonFields vf(v, where + ": vector");
        r.vectorName = vf.stringOr("name", "vector");
        r.hook = vf.string("hook");
        if (!v.contains("values") || !v["values"].is_array() || v["values"].empty())
            throw Error(where + ": vector: field 'values' must be a non-empty array of numbers");
        std::vector<float> values;
        for (const auto& x : v["values"]) {
            if (!x.is_number()) throw Error(where + ": vector: field 'values' holds a non-number");
            values.push_back(x.get<float>());
        }
        r.direction = at::tensor(values, at::kFloat);
    } else {
        r.saeId = f.stringOr("sae", "");
        r.feature = f.integer("feature");
        if (r.feature < 0) throw Error(where + ": field 'feature' must be >= 0");
    }
    return r;
}

}  // namespace

nlohmann::json steeringPlanToJson(const SteeringPlan& plan) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : plan.rules) rows.push_back(rowToJson(r));
    nlohmann::json j = {{"format", kFormat}, {"version", 1}, {"rows", rows}, {"condition", nullptr}};
    if (plan.condition)
        j["condition"] = {{"sae", plan.condition->saeId},
                          {"feature", plan.condition->feature},
                          {"threshold", plan.condition->threshold}};
    return j;
}

SteeringPlan steeringPlanFromJson(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": not a steering preset (expected a JSON object)");
    JsonFields f(j, where);
    if (f.stringOr("format", "") != kFormat)
        throw Error(where + ": not a steering preset (field 'format' is not \"" + kFormat + "\")");
    if (f.integerOr("version", 1) > 1)
        throw Error(where + ": steering preset version " + std::to_string(f.integer("version")) +
                    " is newer than this build reads (1)");
    SteeringPlan plan;
    if (!j.contains("rows") || !j["rows"].is_array()) throw Error(where + ": field 'rows' must be an array");
    for (size_t i = 0; i < j["rows"].size(); ++i)
        plan.rules.push_back(rowFromJson(j["rows"][i], where + ": rows[" + std::to_string(i) + "]"));
    if (j.contains("condition") && !j["condition"].is_null()) {
        const std::string w = where + ": condition";
        if (!j["condition"].is_object()) throw Error(w + ": expected an object or null");
        JsonFields c(j["condition"], w);
        SteeringCondition cond;
        cond.saeId = c.stringOr("sae", "");
        cond.feature = c.integer("feature");
        cond.threshold = c.number("threshold");
        if (cond.feature < 0) throw Error(w + ": field 'feature' must be >= 0");
        plan.condition = cond;
    }
    return plan;
}

void saveSteeringPreset(const std::string& path, const SteeringPlan& plan) {
    // Written beside and renamed over, so a failed save never leaves half a preset.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) failIn(path, "cannot write the preset");
        out << steeringPlanToJson(plan).dump(2) << "\n";
        if (!out.flush()) failIn(path, "cannot write the preset (disk full?)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        failIn(path, "cannot replace the preset");
    }
}

SteeringPlan loadSteeringPreset(const std::string& path) {
    return steeringPlanFromJson(readJsonFile(path), path);
}

std::string describeRow(const SteeringRule& r) {
    // Four significant digits: a slider's value times a max activation is read, not re-parsed.
    std::ostringstream v;
    v.precision(4);
    v << r.value;
    std::string s = r.isVector() ? "vector " + r.vectorName + "@" + r.hook
                                 : (r.saeId.empty() ? "" : r.saeId + "/") + std::to_string(r.feature);
    s += std::string(":") + steerModeName(r.mode);
    if (r.mode != SteerMode::Ablate) s += "=" + v.str();
    if (r.positions.kind != PositionRange::All) s += "@" + r.positions.toString();
    return s;
}

std::vector<bool> tokensDiffering(const std::vector<long>& base, const std::vector<long>& other) {
    const size_t n = base.size(), m = other.size();
    // lcs[i][j]: longest common subsequence of base[i..] and other[j..].
    std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            lcs[i][j] = base[i] == other[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::vector<bool> differs(m, true);
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        if (base[i] == other[j]) {
            differs[j] = false;
            ++i;
            ++j;
        } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
            ++i;
        } else {
            ++j;
        }
    }
    return differs;
}

nlohmann::json steeringComparisonToJson(const SteeringComparison& c) {
    auto text = [](const SteeredText& t) {
        return nlohmann::json{{"new_tokens", t.ids}, {"text", t.text}, {"token_texts", t.texts}};
    };
    nlohmann::json settings = nlohmann::json::array();
    for (const auto& col : c.columns) {
        nlohmann::json s = text(col.output);
        s["title"] = col.title;
        s["rows"] = col.rows;
        s["condition"] = col.condition.empty() ? nlohmann::json(nullptr) : nlohmann::json(col.condition);
        s["differs"] = tokensDiffering(c.baseline.ids, col.output.ids);
        settings.push_back(s);
    }
    return {{"prompt", c.prompt}, {"prompt_tokens", c.promptTokens}, {"baseline", text(c.baseline)}, {"settings", settings}};
}

}  // namespace cs
