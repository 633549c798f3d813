#include "store/StoreJson.h"

namespace cs {

nlohmann::json exampleJson(const FeatureExample& e) {
    return {{"document", e.document}, {"start", e.start},   {"tokens", e.tokens},
            {"pieces", e.pieces},     {"activations", e.activations}, {"max", e.max},
            {"max_offset", e.maxOffset}};
}

nlohmann::json featureJson(const FeatureDetail& d) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& e : d.topExamples) top.push_back(exampleJson(e));
    nlohmann::json intervals = nlohmann::json::array();
    for (const auto& iv : d.intervals) {
        nlohmann::json ex = nlohmann::json::array();
        for (const auto& e : iv.examples) ex.push_back(exampleJson(e));
        intervals.push_back({{"low", iv.low}, {"high", iv.high}, {"examples", ex}});
    }
    auto logits = [](const std::vector<LogitEffect>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& l : v) a.push_back({{"token", l.token}, {"piece", l.piece}, {"value", l.value}});
        return a;
    };
    nlohmann::json neighbours = nlohmann::json::array();
    for (const auto& n : d.neighbours) neighbours.push_back({{"index", n.index}, {"cosine", n.cosine}});
    return {{"sae", d.sae},
            {"index", d.index},
            {"max_activation", d.maxActivation},
            {"density", d.density},
            {"firings", d.firings},
            {"label", d.label},
            {"label_is_auto", d.labelIsAuto},
            {"auto_label", d.autoLabel},
            {"notes", d.notes},
            {"top_examples", top},
            {"interval_examples", intervals},
            {"histogram", {{"edges", d.histogram.edges}, {"counts", d.histogram.counts}}},
            {"logits", {{"positive", logits(d.positiveLogits)}, {"negative", logits(d.negativeLogits)}}},
            {"neighbours", neighbours}};
}

nlohmann::json saesJson(const std::vector<StoredSae>& saes) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : saes)
        out.push_back({{"id", s.id},
                       {"hook", s.hook},
                       {"hook_out", s.hookOut},
                       {"architecture", s.architecture},
                       {"d_sae", s.dSae},
                       {"tokens", s.tokens},
                       {"path", s.path}});
    return out;
}

nlohmann::json hitsJson(const std::vector<FeatureHit>& hits, const char* scoreName) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : hits) {
        nlohmann::json j = {{"sae", h.sae}, {"index", h.index}, {"label", h.label}, {"label_is_auto", h.labelIsAuto},
                            {"score", h.score}};
        if (std::string(scoreName) == "contrast") {
            j["mean_a"] = h.a;
            j["mean_b"] = h.b;
        } else if (std::string(scoreName) == "prompt") {
            j["activation"] = h.score;
            j["relative"] = h.b;
        } else if (std::string(scoreName) == "token") {
            j["examples"] = h.score;
            j["max"] = h.a;
        }
        out.push_back(j);
    }
    return out;
}

}  // namespace cs
