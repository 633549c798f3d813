#include "attribution/GraphJson.h"

#include "io/JsonFile.h"
#include "util/Error.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unordered_map>

namespace cs {
namespace {

// Far beyond any real prompt or model; they keep positions and layers inside int arithmetic.
constexpr long long kMaxPosition = 1 << 20;
constexpr long kMaxLayer = 1 << 16;

using Json = nlohmann::json;

// The shortest decimal that reads back as the same float: "0.1", not the 0.10000000149011612 a
// float widened to double prints as, yet exact on the way back.
Json num(float f) {
    if (!std::isfinite(f)) return nullptr;
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

float toFloat(const Json& v) { return v.is_null() ? 0.0f : static_cast<float>(v.get<double>()); }

// A residual SAE's error is not an MLP's: it gets a type of its own (its features keep the
// transcoders' type, which viewers draw as features; the graph's `replacement` says what they are).
constexpr const char* kResidualErrorType = "residual reconstruction error";

const char* featureType(const GraphNode& n) {
    switch (n.kind) {
        case NodeKind::Feature: return "cross layer transcoder";
        case NodeKind::Error: return n.residual ? kResidualErrorType : "mlp reconstruction error";
        case NodeKind::Embedding: return "embedding";
        case NodeKind::Logit: return "logit";
    }
    return "cross layer transcoder";
}

// The feature_type spellings graph files use; single-layer transcoders and SAEs in other tools'
// files are features too.
bool kindFromType(const std::string& t, NodeKind* k) {
    if (t == "cross layer transcoder" || t == "per layer transcoder" || t == "transcoder" ||
        t == "sae" || t == "feature")
        *k = NodeKind::Feature;
    else if (t == "mlp reconstruction error" || t == "reconstruction error" || t == "error" || t == kResidualErrorType)
        *k = NodeKind::Error;
    else if (t == "embedding")
        *k = NodeKind::Embedding;
    else if (t == "logit")
        *k = NodeKind::Logit;
    else
        return false;
    return true;
}

// "{a}_{b}_{c}" with three integers (a may be "E").
bool splitId(const std::string& id, std::string* a, long* b, long* c) {
    const auto p1 = id.find('_');
    const auto p2 = id.rfind('_');
    if (p1 == std::string::npos || p2 == p1) return false;
    *a = id.substr(0, p1);
    const std::string sb = id.substr(p1 + 1, p2 - p1 - 1), sc = id.substr(p2 + 1);
    auto parse = [](const std::string& s, long* out) {
        auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
        return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
    };
    return parse(sb, b) && parse(sc, c);
}

[[noreturn]] void fail(const std::string& where, const std::string& msg) { failIn(where, msg); }

const Json& need(const Json& obj, const char* key, const std::string& where, const std::string& ctx) {
    auto it = obj.find(key);
    if (it == obj.end()) fail(where, ctx + ": missing field '" + key + "'");
    return *it;
}

std::string nodeCtx(size_t i, const std::string& id) {
    return "node " + std::to_string(i) + (id.empty() ? "" : " ('" + id + "')");
}

// A logit's token, or "A-B" for a logit difference.
std::string logitFeatureText(const GraphNode& n) {
    return std::to_string(n.feature) + (n.minusToken >= 0 ? "-" + std::to_string(n.minusToken) : "");
}

// metadata.circuitscope.logit_differences: [{"node_id", "token", "minus_token"}], our own record of
// which logit nodes are differences.
void applyLogitDifferences(const Json& meta, const std::unordered_map<std::string, int32_t>& index, AttributionGraph& g,
                           const std::string& where) {
    if (!meta.contains("circuitscope") || !meta["circuitscope"].is_object()) return;
    const Json& x = meta["circuitscope"];
    auto it = x.find("logit_differences");
    if (it == x.end() || it->is_null()) return;
    if (!it->is_array()) fail(where, "metadata.circuitscope: 'logit_differences' must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
        const Json& d = (*it)[i];
        const std::string ctx = "metadata.circuitscope.logit_differences[" + std::to_string(i) + "]";
        if (!d.is_object() || !d.contains("node_id") || !d["node_id"].is_string() || !d.contains("minus_token") ||
            !d["minus_token"].is_number_integer())
            fail(where, ctx + ": expected {\"node_id\": string, \"minus_token\": integer}");
        auto n = index.find(d["node_id"].get<std::string>());
        if (n == index.end() || g.nodes[static_cast<size_t>(n->second)].kind != NodeKind::Logit)
            fail(where, ctx + ": '" + d["node_id"].get<std::string>() + "' is not a logit node");
        g.nodes[static_cast<size_t>(n->second)].minusToken = d["minus_token"].get<long>();
    }
}

}  // namespace

long long cantorPair(long long x, long long y) { return (x + y) * (x + y + 1) / 2 + y; }

std::pair<long long, long long> cantorUnpair(long long z) {
    auto w = static_cast<long long>((std::sqrt(8.0L * z + 1) - 1) / 2);
    // sqrt in floating point can land one off for large z; settle w exactly.
    while (w * (w + 1) / 2 > z) --w;
    while ((w + 1) * (w + 2) / 2 <= z) ++w;
    const long long y = z - w * (w + 1) / 2;
    return {w - y, y};
}

std::string canonicalNodeId(const GraphNode& n, long tokenId, int nLayers) {
    const std::string pos = std::to_string(n.position);
    switch (n.kind) {
        case NodeKind::Feature:
            return std::to_string(n.layer) + "_" + std::to_string(n.feature) + "_" + pos;
        case NodeKind::Error: return std::to_string(n.layer) + (n.residual ? "_-2_" : "_-1_") + pos;
        case NodeKind::Embedding: return "E_" + std::to_string(tokenId) + "_" + pos;
        case NodeKind::Logit:
            return std::to_string(nLayers + 1) + "_" + logitFeatureText(n) + "_" + pos;
    }
    return pos;
}

Json graphToJson(const AttributionGraph& g) {
    auto tokenAt = [&](int pos) {
        return pos >= 0 && static_cast<size_t>(pos) < g.tokens.size() ? g.tokens[pos] : -1L;
    };
    std::vector<std::string> ids(g.nodes.size());
    std::unordered_map<std::string, size_t> seen;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const auto& n = g.nodes[i];
        ids[i] = n.id.empty() ? canonicalNodeId(n, tokenAt(n.position), g.layers) : n.id;
        auto [it, fresh] = seen.emplace(ids[i], i);
        if (!fresh)
            throw Error("graph '" + g.slug + "': nodes " + std::to_string(it->second) + " and " +
                        std::to_string(i) + " share the id '" + ids[i] + "'");
    }

    Json nodes = Json::array();
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const auto& n = g.nodes[i];
        const std::string pos = std::to_string(n.position);
        Json o;
        o["node_id"] = ids[i];
        switch (n.kind) {
            case NodeKind::Feature:
                o["feature"] = cantorPair(n.layer, n.feature);
                o["layer"] = std::to_string(n.layer);
                o["jsNodeId"] = std::to_string(n.layer) + "_" + std::to_string(n.feature) + "-0";
                break;
            case NodeKind::Error:
                o["feature"] = -1;
                o["layer"] = std::to_string(n.layer);
                o["jsNodeId"] = std::to_string(n.layer) + (n.residual ? "_-2-" : "_-1-") + pos;
                break;
            case NodeKind::Embedding:
                o["feature"] = n.position;
                o["layer"] = "E";
                o["jsNodeId"] = "E_" + std::to_string(tokenAt(n.position)) + "-" + pos;
                break;
            case NodeKind::Logit:
                o["feature"] = n.feature;
                o["layer"] = std::to_string(n.layer + 1);
                o["jsNodeId"] = "L_" + logitFeatureText(n) + "-" + pos;
                break;
        }
        o["ctx_idx"] = n.position;
        o["feature_type"] = featureType(n);
        o["clerp"] = n.label;
        o["token_prob"] = num(n.tokenProb);
        o["is_target_logit"] = n.isTargetLogit;
        o["influence"] = num(n.influence);
        o["activation"] = num(n.activation);
        o["influence_score"] = num(n.influenceScore);
        nodes.push_back(std::move(o));
    }

    Json links = Json::array();
    const auto nn = g.nodes.size();
    for (size_t l = 0; l < g.links.size(); ++l) {
        const auto& k = g.links[l];
        if (k.source < 0 || static_cast<size_t>(k.source) >= nn || k.target < 0 ||
            static_cast<size_t>(k.target) >= nn)
            throw Error("graph '" + g.slug + "': link " + std::to_string(l) + " refers to a node outside 0.." +
                        std::to_string(nn));
        links.push_back({{"source", ids[k.source]}, {"target", ids[k.target]}, {"weight", num(k.weight)}});
    }

    Json supernodes = Json::array();
    for (const auto& s : g.supernodes) {
        Json a = Json::array({s.label});
        for (const auto& id : s.nodeIds) a.push_back(id);
        supernodes.push_back(std::move(a));
    }

    Json meta;
    meta["slug"] = g.slug;
    meta["scan"] = g.scan;
    meta["transcoder_list"] = g.saeIds;
    meta["prompt"] = g.prompt;
    meta["prompt_tokens"] = g.tokenTexts;
    meta["node_threshold"] = num(g.nodeThreshold);
    meta["schema_version"] = 1;
    Json differences = Json::array();
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (g.nodes[i].kind == NodeKind::Logit && g.nodes[i].minusToken >= 0)
            differences.push_back({{"node_id", ids[i]}, {"token", g.nodes[i].feature}, {"minus_token", g.nodes[i].minusToken}});
    meta["circuitscope"] = {
        {"tokens", g.tokens},
        {"replacement", g.replacement},
        {"sae_ids", g.saeIds},
        {"layers", g.layers},
        {"edge_threshold", num(g.edgeThreshold)},
        {"replacement_score", num(g.replacementScore)},
        {"completeness_score", num(g.completenessScore)},
    };
    // Other tools see a logit node (feature = the first token); this restores the subtracted one.
    if (!differences.empty()) meta["circuitscope"]["logit_differences"] = std::move(differences);

    Json q;
    q["pinnedIds"] = g.pinnedIds;
    q["supernodes"] = std::move(supernodes);
    q["linkType"] = "both";
    q["clickedId"] = g.clickedId;
    q["sg_pos"] = "";

    Json out;
    out["metadata"] = std::move(meta);
    out["qParams"] = std::move(q);
    out["nodes"] = std::move(nodes);
    out["links"] = std::move(links);
    return out;
}

AttributionGraph graphFromJson(const Json& j, const std::string& where) {
    if (!j.is_object()) fail(where, "an attribution graph must be a JSON object");
    for (const char* key : {"metadata", "qParams", "nodes", "links"})
        if (!j.contains(key)) fail(where, std::string("missing top-level key '") + key + "'");
    const Json& meta = j["metadata"];
    const Json& q = j["qParams"];
    if (!meta.is_object()) fail(where, "'metadata' must be an object");
    if (!q.is_object()) fail(where, "'qParams' must be an object");
    if (!j["nodes"].is_array()) fail(where, "'nodes' must be an array");
    if (!j["links"].is_array()) fail(where, "'links' must be an array");

    AttributionGraph g;
    auto str = [&](const Json& obj, const char* key, const std::string& ctx) -> std::string {
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return "";
        if (!it->is_string()) fail(where, ctx + ": '" + key + "' must be a string");
        return it->get<std::string>();
    };
    auto strList = [&](const Json& obj, const char* key, const std::string& ctx) {
        std::vector<std::string> out;
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return out;
        if (it->is_string()) {
            // Neuronpedia's URLs carry pinnedIds as one comma-separated string.
            const auto s = it->get<std::string>();
            size_t start = 0;
            while (start <= s.size() && !s.empty()) {
                const auto end = s.find(',', start);
                out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
                if (end == std::string::npos) break;
                start = end + 1;
            }
            return out;
        }
        if (!it->is_array()) fail(where, ctx + ": '" + key + "' must be an array of strings");
        for (size_t i = 0; i < it->size(); ++i) {
            if (!(*it)[i].is_string())
                fail(where, ctx + ": '" + key + "' entry " + std::to_string(i) + " is not a string");
            out.push_back((*it)[i].get<std::string>());
        }
        return out;
    };

    g.slug = str(meta, "slug", "metadata");
    g.scan = str(meta, "scan", "metadata");
    g.prompt = str(meta, "prompt", "metadata");
    g.tokenTexts = strList(meta, "prompt_tokens", "metadata");
    g.saeIds = strList(meta, "transcoder_list", "metadata");
    if (meta.contains("node_threshold") && !meta["node_threshold"].is_null()) {
        if (!meta["node_threshold"].is_number()) fail(where, "metadata: 'node_threshold' must be a number");
        g.nodeThreshold = toFloat(meta["node_threshold"]);
    }
    bool haveTokens = false, haveLayers = false;
    if (meta.contains("circuitscope") && meta["circuitscope"].is_object()) {
        const Json& x = meta["circuitscope"];
        try {
            if (x.contains("tokens")) {
                g.tokens = x["tokens"].get<std::vector<long>>();
                haveTokens = true;
            }
            g.replacement = str(x, "replacement", "metadata.circuitscope");
            if (x.contains("sae_ids")) g.saeIds = strList(x, "sae_ids", "metadata.circuitscope");
            if (x.contains("layers")) {
                g.layers = x["layers"].get<int>();
                haveLayers = true;
            }
            if (x.contains("edge_threshold")) g.edgeThreshold = toFloat(x["edge_threshold"]);
            if (x.contains("replacement_score")) g.replacementScore = toFloat(x["replacement_score"]);
            if (x.contains("completeness_score")) g.completenessScore = toFloat(x["completeness_score"]);
        } catch (const nlohmann::json::exception& e) {
            fail(where, std::string("metadata.circuitscope: ") + e.what());
        }
    }

    g.pinnedIds = strList(q, "pinnedIds", "qParams");
    g.clickedId = str(q, "clickedId", "qParams");
    if (q.contains("supernodes") && !q["supernodes"].is_null()) {
        const Json& sn = q["supernodes"];
        if (!sn.is_array()) fail(where, "qParams: 'supernodes' must be an array");
        for (size_t i = 0; i < sn.size(); ++i) {
            const std::string ctx = "qParams: supernode " + std::to_string(i);
            if (!sn[i].is_array() || sn[i].empty())
                fail(where, ctx + " must be an array [label, node_id, ...]");
            Supernode s;
            for (size_t k = 0; k < sn[i].size(); ++k) {
                if (!sn[i][k].is_string()) fail(where, ctx + ": entry " + std::to_string(k) + " is not a string");
                if (k == 0)
                    s.label = sn[i][k].get<std::string>();
                else
                    s.nodeIds.push_back(sn[i][k].get<std::string>());
            }
            g.supernodes.push_back(std::move(s));
        }
    }

    const Json& nodes = j["nodes"];
    std::unordered_map<std::string, int32_t> index;
    index.reserve(nodes.size() * 2);
    std::vector<std::pair<int, long>> embeddingTokens;  // (pos, token id) from E_{tok}_{pos}
    int maxLogitLayer = -1, maxLayer = -1;
    g.nodes.reserve(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
        const Json& o = nodes[i];
        if (!o.is_object()) fail(where, nodeCtx(i, "") + " is not an object");
        std::string id;
        try {
            const Json& jid = need(o, "node_id", where, nodeCtx(i, ""));
            if (!jid.is_string()) fail(where, nodeCtx(i, "") + ": 'node_id' must be a string");
            id = jid.get<std::string>();
            const std::string ctx = nodeCtx(i, id);
            const Json& jfeature = need(o, "feature", where, ctx);
            const Json& jlayer = need(o, "layer", where, ctx);
            const Json& jctx = need(o, "ctx_idx", where, ctx);
            const Json& jtype = need(o, "feature_type", where, ctx);
            need(o, "jsNodeId", where, ctx);
            need(o, "clerp", where, ctx);
            if (!jfeature.is_null() && !jfeature.is_number_integer())
                fail(where, ctx + ": 'feature' must be an integer or null");
            if (!jctx.is_number_integer()) fail(where, ctx + ": 'ctx_idx' must be an integer");
            // A token position: bounded so that the token list it sizes (and int arithmetic) stay sane.
            if (jctx.get<long long>() < 0 || jctx.get<long long>() > kMaxPosition)
                fail(where, ctx + ": 'ctx_idx' " + jctx.dump() + " is out of range (0.." +
                                std::to_string(kMaxPosition) + ")");
            if (!jtype.is_string()) fail(where, ctx + ": 'feature_type' must be a string");

            GraphNode n;
            n.id = id;
            if (!kindFromType(jtype.get<std::string>(), &n.kind))
                fail(where, ctx + ": unknown feature_type '" + jtype.get<std::string>() + "'");
            n.position = jctx.get<int>();
            std::string layerText = jlayer.is_string() ? jlayer.get<std::string>()
                                    : jlayer.is_number_integer() ? std::to_string(jlayer.get<long>())
                                                                 : std::string("?");
            long layerNum = 0;
            const bool numericLayer = [&] {
                auto r = std::from_chars(layerText.data(), layerText.data() + layerText.size(), layerNum);
                return r.ec == std::errc() && r.ptr == layerText.data() + layerText.size();
            }();
            if (n.kind != NodeKind::Embedding && !numericLayer)
                fail(where, ctx + ": layer '" + layerText + "' is not a number");
            if (numericLayer && (layerNum < -1 || layerNum > kMaxLayer))
                fail(where, ctx + ": layer " + layerText + " is out of range (-1.." + std::to_string(kMaxLayer) + ")");

            std::string a;
            long b = 0, c = 0;
            const bool parsedId = splitId(id, &a, &b, &c);
            switch (n.kind) {
                case NodeKind::Feature: {
                    n.layer = static_cast<int>(layerNum);
                    // The index from node_id when it is circuit-tracer's spelling; otherwise
                    // undo the Cantor pairing; otherwise take `feature` as it is.
                    if (parsedId && a == layerText && c == n.position)
                        n.feature = b;
                    else if (jfeature.is_number_integer() && jfeature.get<long long>() >= 0 &&
                             cantorUnpair(jfeature.get<long long>()).first == layerNum)
                        n.feature = static_cast<long>(cantorUnpair(jfeature.get<long long>()).second);
                    else
                        n.feature = jfeature.is_null() ? -1 : jfeature.get<long>();
                    maxLayer = std::max(maxLayer, n.layer);
                    break;
                }
                case NodeKind::Error:
                    n.layer = static_cast<int>(layerNum);
                    n.feature = -1;
                    n.residual = jtype.get<std::string>() == kResidualErrorType;
                    maxLayer = std::max(maxLayer, n.layer);
                    break;
                case NodeKind::Embedding:
                    n.layer = -1;
                    n.feature = -1;
                    if (parsedId && a == "E") embeddingTokens.push_back({n.position, b});
                    break;
                case NodeKind::Logit:
                    n.layer = static_cast<int>(layerNum) - 1;
                    n.feature = jfeature.is_number_integer() ? jfeature.get<long>() : (parsedId ? b : -1);
                    maxLogitLayer = std::max(maxLogitLayer, static_cast<int>(layerNum));
                    break;
            }
            n.label = o["clerp"].is_null() ? "" : o["clerp"].get<std::string>();
            auto optional = [&](const char* key) -> const Json& {
                static const Json null;
                auto it = o.find(key);
                return it == o.end() ? null : *it;
            };
            n.tokenProb = toFloat(optional("token_prob"));
            n.isTargetLogit = optional("is_target_logit").is_boolean() && optional("is_target_logit").get<bool>();
            n.influence = toFloat(optional("influence"));
            n.activation = toFloat(optional("activation"));
            n.influenceScore = toFloat(optional("influence_score"));

            auto [it, fresh] = index.emplace(id, static_cast<int32_t>(i));
            if (!fresh)
                fail(where, ctx + ": duplicate node_id (also node " + std::to_string(it->second) + ")");
            g.nodes.push_back(std::move(n));
        } catch (const nlohmann::json::exception& e) {
            fail(where, nodeCtx(i, id) + ": " + e.what());
        }
    }

    const Json& links = j["links"];
    g.links.reserve(links.size());
    for (size_t l = 0; l < links.size(); ++l) {
        const Json& o = links[l];
        const std::string ctx = "link " + std::to_string(l);
        if (!o.is_object()) fail(where, ctx + " is not an object");
        const Json& s = need(o, "source", where, ctx);
        const Json& t = need(o, "target", where, ctx);
        const Json& w = need(o, "weight", where, ctx);
        if (!s.is_string() || !t.is_string()) fail(where, ctx + ": 'source' and 'target' must be node_id strings");
        if (!w.is_number()) fail(where, ctx + ": 'weight' must be a number");
        auto si = index.find(s.get_ref<const std::string&>());
        if (si == index.end()) fail(where, ctx + ": source '" + s.get<std::string>() + "' is not a node");
        auto ti = index.find(t.get_ref<const std::string&>());
        if (ti == index.end()) fail(where, ctx + ": target '" + t.get<std::string>() + "' is not a node");
        g.links.push_back({si->second, ti->second, static_cast<float>(w.get<double>())});
    }

    applyLogitDifferences(meta, index, g, where);
    if (g.replacement == kResidualSaeReplacement)
        for (GraphNode& n : g.nodes)
            if (n.kind == NodeKind::Feature) n.residual = true;
    if (!haveLayers) g.layers = maxLogitLayer > 0 ? maxLogitLayer - 1 : maxLayer + 1;
    if (!haveTokens && !embeddingTokens.empty()) {
        // Files from elsewhere keep token ids only in the embedding nodes' ids.
        int maxPos = -1;
        for (const auto& [pos, tok] : embeddingTokens) maxPos = std::max(maxPos, pos);
        g.tokens.assign(static_cast<size_t>(maxPos + 1), -1L);
        for (const auto& [pos, tok] : embeddingTokens)
            if (pos >= 0) g.tokens[pos] = tok;
    }
    return g;
}

void saveGraph(const std::string& path, const AttributionGraph& g) {
    // Byte-level tokens are not always valid UTF-8 on their own (GPT-2's 0xFF): written as U+FFFD
    // rather than refusing the whole graph.
    const std::string text = graphToJson(g).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) failIn(path, "cannot write (" + tmp.string() + ")");
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.flush();
        if (!out) failIn(path, "write failed (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) {
        fs::remove(tmp, ec);
        failIn(path, "cannot replace the file: " + ec.message());
    }
}

AttributionGraph loadGraph(const std::string& path) { return graphFromJson(readJsonFile(path), path); }

}  // namespace cs
