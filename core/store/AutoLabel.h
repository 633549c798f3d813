#pragma once
// Automatic feature labels: what a feature's top examples peak on and which tokens it promotes,
// e.g. "peak: dragon, dragons | logits: fire, roar, wings". Shown, and searchable, until the user
// writes a label; always marked as automatic.
#include <string>
#include <vector>

struct sqlite3;

namespace cs {

// `peakTokens`: the texts of the top examples' peak tokens, best example first;
// `promoted`: the most promoted token texts, largest first.
std::string autoLabel(const std::vector<std::string>& peakTokens, const std::vector<std::string>& promoted);

// Writes auto_labels (and their full-text rows) for every feature of the given SAEs, from the
// examples and weight facts already in the store, in one transaction.
void writeAutoLabels(sqlite3* db, const std::vector<std::string>& saeIds);

}  // namespace cs
