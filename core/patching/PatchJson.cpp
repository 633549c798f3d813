#include "patching/PatchJson.h"

#include <algorithm>
#include <cmath>

namespace cs {

nlohmann::json patchGridToJson(const PatchGrid& g, const std::vector<std::string>& cleanTokenTexts,
                               const std::vector<std::string>& corruptedTokenTexts) {
    nlohmann::json values = nlohmann::json::array(), raw = nlohmann::json::array();
    for (int r = 0; r < g.rows; ++r) {
        const size_t from = size_t(r) * g.columns;
        values.push_back(std::vector<float>(g.values.begin() + from, g.values.begin() + from + g.columns));
        raw.push_back(std::vector<double>(g.raw.begin() + from, g.raw.begin() + from + g.columns));
    }
    return {{"site", patchSiteName(g.site)},
            {"direction", patchDirectionName(g.direction)},
            {"metric", patchMetricName(g.metric)},
            {"clean_value", g.cleanValue},
            {"corrupted_value", g.corruptedValue},
            {"clean_ids", g.cleanIds},
            {"corrupted_ids", g.corruptedIds},
            {"clean_tokens", cleanTokenTexts},
            {"corrupted_tokens", corruptedTokenTexts},
            {"rows", g.rows},
            {"columns", g.columns},
            {"row_axis", g.rowAxis},
            {"column_axis", g.columnAxis},
            {"row_labels", g.rowLabels},
            {"column_labels", g.columnLabels},
            {"row_layer", g.rowLayer},
            {"row_head", g.rowHead},
            {"row_feature", g.rowFeature},
            {"column_position", g.columnPosition},
            {"values", values},
            {"raw", raw},
            {"patched_runs", g.patchedRuns},
            {"forward_batches", g.forwardBatches},
            {"seconds", g.seconds}};
}

}  // namespace cs
