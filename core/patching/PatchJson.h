#pragma once
// A PatchGrid as JSON: what `patch --json` prints and the Patching view exports. Field by field
// in docs/patching.md.
#include "patching/ActivationPatching.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cs {

nlohmann::json patchGridToJson(const PatchGrid& grid, const std::vector<std::string>& cleanTokenTexts,
                               const std::vector<std::string>& corruptedTokenTexts);

}  // namespace cs
