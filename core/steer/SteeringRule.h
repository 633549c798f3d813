#pragma once
// What a steering row says, as plain data: which direction (an SAE feature or a free vector), how
// (add, clamp, ablate), how strongly, and where (positions, optionally only where a condition
// feature fires). Parsing and printing of the command line's SPEC and COND strings live here too,
// so the CLI, presets and the GUI spell a row the same way.
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

namespace cs {

enum class SteerMode {
    Add,     // activation += value * direction
    Clamp,   // activation += (value - a) * direction, a = the current coefficient along it
    Ablate,  // clamp to 0
    // activation += (value - 1) * a * direction: the coefficient becomes value x a (a as it arrives
    // at the hook). For interventions from an attribution graph ("scale this feature by 2").
    Scale,
};

const char* steerModeName(SteerMode m);
// "add" | "clamp" | "ablate" | "scale"; throws cs::Error naming `where` otherwise.
SteerMode parseSteerMode(const std::string& s, const std::string& where);

// Absolute token positions (0 = the first token of the prompt, BOS included when there is one).
struct PositionRange {
    enum Kind { All, Prompt, Generated, Span };
    Kind kind = All;
    long first = 0, last = 0;  // Span: inclusive
    bool contains(long position, long promptLength) const;
    std::string toString() const;  // "all" | "prompt" | "generated" | "I-J"
};
// "all" | "prompt" | "generated" | "I-J" | "I"; throws cs::Error naming `where` otherwise.
PositionRange parsePositions(const std::string& s, const std::string& where);

// One steering row. A feature row names an SAE by id; a vector row carries its own direction.
struct SteeringRule {
    std::string saeId;     // feature rows; empty in a spec when only one SAE is attached
    long feature = -1;     // feature rows: the SAE's feature index; -1 for a vector row
    // Vector rows: a direction [d] read at `hook` (from a file or two prompts), and a name to show.
    std::string vectorName;
    std::string hook;
    at::Tensor direction;
    SteerMode mode = SteerMode::Add;
    double value = 0;      // in the hook's own units (feature rows: multiples of W_dec[feature])
    PositionRange positions;
    bool enabled = true;
    bool conditional = false;  // applies only where the plan's condition holds
    // For display and presets only: the row's name (a feature label) and the activation one slider
    // unit stands for (the feature's max activation; 0 when unknown).
    std::string label;
    double unit = 0;

    bool isVector() const { return feature < 0; }
};

// "when feature A of SAE S exceeds threshold at a position" (evaluated before any steering).
struct SteeringCondition {
    std::string saeId;
    long feature = -1;
    double threshold = 0;
    std::string toString() const;  // "[SAE/]FEATURE>THRESHOLD"
};

struct SteeringPlan {
    std::vector<SteeringRule> rules;
    std::optional<SteeringCondition> condition;
    bool active() const;  // any enabled row
};

// SPEC = [SAE_ID/]FEATURE:MODE[=VALUE][@POSITIONS]. add, clamp and scale need a VALUE; ablate takes none
// (or =0). Throws cs::Error quoting the spec and saying what is wrong.
SteeringRule parseSteerSpec(const std::string& spec);
std::string toSpecString(const SteeringRule& r);  // feature rows only

// COND = [SAE_ID/]FEATURE>THRESHOLD.
SteeringCondition parseSteerCondition(const std::string& cond);

}  // namespace cs
