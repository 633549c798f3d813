#pragma once
// A ModelDiff as JSON, the fields docs/diff.md lists: what `diff --json` prints.
#include "diff/ModelDiff.h"

#include <nlohmann/json.hpp>

namespace cs {

class Tokenizer;

// Token texts are included when a tokenizer is given (else ids only).
nlohmann::json modelDiffToJson(const ModelDiff& diff, const Tokenizer* tok);

}  // namespace cs
