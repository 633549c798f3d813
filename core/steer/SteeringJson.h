#pragma once
// Steering as data that leaves the process: presets (a plan as JSON, the GUI's Save/Load and the
// session file) and comparisons (a prompt, its unsteered baseline and up to four steered
// continuations, for export as JSON or a figure).
#include "steer/SteeringRule.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cs {

// {"format": "circuitscope-steering", "version": 1, "rows": [...], "condition": {...} | null}
nlohmann::json steeringPlanToJson(const SteeringPlan& plan);
// Throws cs::Error naming `where` (a file) and the row or field at fault.
SteeringPlan steeringPlanFromJson(const nlohmann::json& j, const std::string& where);
void saveSteeringPreset(const std::string& path, const SteeringPlan& plan);
SteeringPlan loadSteeringPreset(const std::string& path);

struct SteeredText {
    std::vector<long> ids;            // the new tokens only
    std::vector<std::string> texts;   // each new token's text
    std::string text;                 // decoded continuation
};

struct SteeringColumn {
    std::string title;               // "Setting 1", or the user's name for it
    std::vector<std::string> rows;   // each row as describeRow spells it
    std::string condition;           // COND, or empty
    SteeredText output;
};

struct SteeringComparison {
    std::string prompt;
    std::vector<long> promptTokens;
    SteeredText baseline;
    std::vector<SteeringColumn> columns;
};

// A row as one line of text to read (feature rows: the SPEC with the value to 4 significant
// digits; vector rows: "vector NAME@HOOK:MODE=V").
std::string describeRow(const SteeringRule& r);

// For each token of `other`, whether it is not part of a longest common subsequence with `base`:
// the tokens a reader should see highlighted as changed by steering.
std::vector<bool> tokensDiffering(const std::vector<long>& base, const std::vector<long>& other);

// {"prompt", "prompt_tokens", "baseline": {"new_tokens", "text", "token_texts"},
//  "settings": [{"title", "rows", "condition", "new_tokens", "text", "token_texts", "differs"}]}
nlohmann::json steeringComparisonToJson(const SteeringComparison& c);

}  // namespace cs
