#pragma once
// Searches that run the model live: which features fire most on a passage, and which fire more
// on one set of prompts than on another (Goodfire's `contrast`, offline).
#include "store/FeatureRecord.h"

#include <memory>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;
class FeatureStore;

struct LiveSae {
    std::string id;
    std::shared_ptr<const Sae> sae;
};

// Max activation over the passage's tokens (BOS excluded) per feature, highest first; `b` holds
// activation / the feature's indexed max when `store` knows the feature (else 0).
std::vector<FeatureHit> searchPassage(const Transformer& model, const Tokenizer& tok, const std::vector<LiveSae>& saes,
                                      const std::string& text, int top, const FeatureStore* store);

// For each prompt its per-feature max activation; score = mean over A - mean over B, highest
// first (features that fire more on A). Labels from `store` when given.
std::vector<FeatureHit> searchContrast(const Transformer& model, const Tokenizer& tok, const std::vector<LiveSae>& saes,
                                       const std::vector<std::string>& promptsA, const std::vector<std::string>& promptsB,
                                       int top, const FeatureStore* store);

// One prompt per non-empty line. Throws cs::Error naming the file when unreadable, not UTF-8, or empty.
std::vector<std::string> readPromptFile(const std::string& path);

}  // namespace cs
