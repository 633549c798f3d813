#include "analysis/AnalysisJson.h"

#include "util/Error.h"

#include <cmath>

namespace cs {

namespace {

using nlohmann::json;

json topList(const std::vector<TokenProbability>& top) {
    json out = json::array();
    for (const auto& t : top) out.push_back({{"id", t.id}, {"text", t.text}, {"p", t.probability}});
    return out;
}

json pattern(const PromptAnalysis& a, int layer, int head) {
    const int T = a.length();
    const HeadPattern p = a.attention->head(layer, head);  // computed here when not held
    json rows = json::array();
    for (int q = 0; q < T; ++q) {
        json row = json::array();
        for (int k = 0; k < T; ++k) row.push_back(p.weight(q, k));
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace

json analysisToJson(const PromptAnalysis& a, const std::string& view, int layer, int head) {
    if (view != "tokens" && view != "attention" && view != "logit-lens" && view != "all")
        throw Error("unknown view '" + view + "' (tokens, attention, logit-lens or all)");
    if (layer < 0 || layer >= a.layers) throw Error("layer " + std::to_string(layer) + " is out of range (0.." + std::to_string(a.layers - 1) + ")");
    if (head < 0 || head >= a.heads) throw Error("head " + std::to_string(head) + " is out of range (0.." + std::to_string(a.heads - 1) + ")");
    json j = {{"ids", a.ids}, {"tokens", a.texts}, {"prompt_length", a.promptLength}, {"layers", a.layers}, {"heads", a.heads}};
    if (view == "tokens" || view == "all") {
        json next = json::array();
        for (const auto& top : a.next) next.push_back(topList(top));
        j["next"] = std::move(next);
    }
    if (view == "attention") j["attention"] = {{"layer", layer}, {"head", head}, {"pattern", pattern(a, layer, head)}};
    if (view == "all") {
        json all = json::array();
        for (int l = 0; l < a.layers; ++l) {
            json heads = json::array();
            for (int h = 0; h < a.heads; ++h) heads.push_back(pattern(a, l, h));
            all.push_back(std::move(heads));
        }
        j["attention"] = std::move(all);
    }
    if ((view == "logit-lens" || view == "all") && a.lens) {
        // Every cell: the positions nobody has looked at are computed now.
        a.lens->computeAll();
        const std::vector<const LensColumn*> columns = a.lens->columns();
        json rows = json::array();
        for (int r = 0; r < a.lens->rows(); ++r) {
            json p = json::array(), top = json::array();
            for (int t = 0; t < a.length(); ++t) {
                const float v = columns[t]->nextProbability[r];
                p.push_back(std::isnan(v) ? json(nullptr) : json(v));
                top.push_back(topList(columns[t]->top[r]));
            }
            rows.push_back({{"name", a.lens->rowNames()[r]}, {"next_probability", std::move(p)}, {"top", std::move(top)}});
        }
        j["logit_lens"] = std::move(rows);
    }
    return j;
}

void addTrackedLens(json& doc, int tokenId, const std::string& text, const std::vector<std::vector<float>>& p) {
    doc["lens_tracked"] = {{"id", tokenId}, {"text", text}, {"probability", p}};
}

}  // namespace cs
