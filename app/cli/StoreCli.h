#pragma once
// Pieces shared by the feature-store commands (index, saes, feature, search, label, features --db).
#include "store/FeatureIndexer.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace cs::cli {

// SAE ids as the store names them: each path's folder name (the folder holding a file such as
// params.npz), made unique with "-2", "-3", ... in the order given.
std::vector<std::string> saeIdsFor(const std::vector<std::string>& paths);

// The SAEs `--sae` names, or the demo's when the model is "demo" and none is given; loaded.
std::vector<IndexSae> loadIndexSaes(const std::string& model, const std::vector<std::string>& paths,
                                    const char* command);

}  // namespace cs::cli
