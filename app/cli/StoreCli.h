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

#include "steer/Steering.h"
namespace cs::cli {
// The SAEs a steering command names (the demo's when the model is "demo" and none is given), with
// the ids `features --json` prints.
std::vector<SteeringSae> loadSteeringSaes(const std::string& model, std::vector<std::string> paths);
// --steer specs, --when and --preset as one plan (--when makes every row conditional).
SteeringPlan steeringPlanFromArgs(const std::vector<std::string>& specs, const std::string& when,
                                  const std::string& preset);
}  // namespace cs::cli
