#pragma once
// A PromptAnalysis as JSON, for "every result as data": what a view shows, or all of it.
#include "analysis/PromptAnalysis.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cs {

// view: "tokens" (tokens + next-token predictions), "attention" (+ the pattern of layer/head),
// "logit-lens" (+ every lens row), or "all" (everything, every head). Probabilities that do not
// exist (the lens at the last position) are null. Lens cells and head patterns not computed
// yet are computed here, on the calling thread (the whole lens for "logit-lens" and "all").
// Throws cs::Error for an unknown view or a layer/head out of range.
nlohmann::json analysisToJson(const PromptAnalysis& a, const std::string& view, int layer = 0, int head = 0);
// Adds "lens_tracked": {"id", "text", "probability": [row][t]} (lensProbabilities' result) to a
// logit-lens or "all" document, for a view that tracks one token.
void addTrackedLens(nlohmann::json& doc, int tokenId, const std::string& text, const std::vector<std::vector<float>>& p);

}  // namespace cs
