#include "diff/ModelDiffJson.h"

#include "tokenize/Tokenizer.h"

#include <unordered_map>

namespace cs {

nlohmann::json modelDiffToJson(const ModelDiff& diff, const Tokenizer* tok) {
    using nlohmann::json;
    // Token texts asked of the tokenizer once per id: a corpus repeats the same few hundred.
    std::unordered_map<int, std::string> texts;
    auto text = [&](int id) -> const std::string& {
        auto it = texts.find(id);
        if (it == texts.end()) it = texts.emplace(id, tok->tokenText(id)).first;
        return it->second;
    };
    json sequences = json::array();
    for (const auto& seq : diff.tokens) {
        json ids = json::array(), kl = json::array(), strs = json::array();
        for (const TokenKl& t : seq) {
            ids.push_back(t.id);
            kl.push_back(t.kl);
            if (tok) strs.push_back(text(t.id));
        }
        json s = {{"ids", ids}, {"kl", kl}};
        if (tok) s["tokens"] = strs;
        sequences.push_back(std::move(s));
    }
    json layers = json::array();
    for (const LayerShift& l : diff.layers)
        layers.push_back({{"layer", l.layer}, {"cosine", l.cosine}, {"norm_ratio", l.normRatio}});
    json features = json::array();
    for (const FeatureShift& f : diff.features)
        features.push_back({{"sae", f.saeId},
                            {"index", f.index},
                            {"mean_a", f.meanA},
                            {"mean_b", f.meanB},
                            {"delta", f.meanB - f.meanA},
                            {"max_a", f.maxA},
                            {"max_b", f.maxB},
                            {"firing_a", f.firingA},
                            {"firing_b", f.firingB}});
    return {{"token_count", diff.tokenCount},
            {"mean_kl", diff.meanKl},
            {"max_kl", diff.maxKl},
            {"sequences", sequences},
            {"layers", layers},
            {"features", features}};
}

}  // namespace cs
