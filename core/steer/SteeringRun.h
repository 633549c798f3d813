#pragma once
// One prompt continued without steering and under each of several settings: what `steer`,
// `export --view steering` and the GUI's comparison columns all compute.
#include "model/Generation.h"
#include "steer/Steering.h"
#include "steer/SteeringJson.h"

#include <functional>
#include <string>
#include <vector>

namespace cs {

class Tokenizer;

struct SteeringRequest {
    std::string promptText;           // for the record; the ids are what runs
    std::vector<long> prompt;
    SamplingOptions sampling;         // the same for the baseline and every setting (same seed)
    std::vector<SteeringSae> saes;
    std::vector<SteeringPlan> settings;
    std::vector<std::string> titles;  // per setting; "Setting N" where missing
};

// A continuation's ids to a SteeredText, its text as it reads after `prompt` (texts empty without
// a tokenizer).
SteeredText steeredText(const std::vector<long>& prompt, const std::vector<long>& ids, const Tokenizer* tok);

// Checks every setting (throws cs::Error before any generation on a bad row), then generates the
// baseline and each steered continuation. `keepGoing` is asked after every token; false cancels
// and the function returns what it has.
SteeringComparison runSteeringComparison(const Transformer& model, const Tokenizer* tok, const SteeringRequest& req,
                                         const std::function<bool()>& keepGoing = {});

}  // namespace cs
