#include "SyntheticGraph.h"

#include <random>
#include <unordered_set>
#include <vector>

namespace cstest {

cs::GraphNode node(cs::NodeKind k, int layer, int pos, long feature, const std::string& id, float prob) {
    cs::GraphNode n;
    n.kind = k;
    n.layer = layer;
    n.position = pos;
    n.feature = feature;
    n.id = id;
    n.tokenProb = prob;
    return n;
}

cs::AttributionGraph randomGraph(int layers, int positions, int features, size_t links, unsigned seed) {
    std::mt19937 rng(seed);
    cs::AttributionGraph g;
    g.slug = "big";
    g.layers = layers;
    std::vector<int> row;  // 0 embeddings, 1 + layer, layers + 1 logits
    for (int p = 0; p < positions; ++p) {
        g.tokens.push_back(1000 + p);
        g.tokenTexts.push_back("t" + std::to_string(p));
        g.nodes.push_back(node(cs::NodeKind::Embedding, -1, p, -1, "E_" + std::to_string(1000 + p) + "_" + std::to_string(p)));
        row.push_back(0);
    }
    for (int l = 0; l < layers; ++l)
        for (int p = 0; p < positions; ++p) {
            g.nodes.push_back(node(cs::NodeKind::Error, l, p, -1, std::to_string(l) + "_-1_" + std::to_string(p)));
            row.push_back(l + 1);
        }
    for (int f = 0; f < features; ++f) {
        const int l = f % layers, p = static_cast<int>(rng() % positions);
        g.nodes.push_back(node(cs::NodeKind::Feature, l, p, f,
                               std::to_string(l) + "_" + std::to_string(f) + "_" + std::to_string(p)));
        g.nodes.back().activation = 1.0f + static_cast<float>(rng() % 100) / 10;
        row.push_back(l + 1);
    }
    const int nLogits = positions;  // enough logits at the last position
    for (int k = 0; k < nLogits; ++k) {
        g.nodes.push_back(node(cs::NodeKind::Logit, layers, positions - 1, 5000 + k,
                               std::to_string(layers + 1) + "_" + std::to_string(5000 + k) + "_" +
                                   std::to_string(positions - 1),
                               0.5f / (k + 1)));
        row.push_back(layers + 1);
    }
    g.nodes[g.nodes.size() - nLogits].isTargetLogit = true;
    // Bucket nodes by row so a source below the target is drawn directly.
    std::vector<std::vector<int>> byRow(layers + 2);
    for (size_t i = 0; i < g.nodes.size(); ++i) byRow[row[i]].push_back(static_cast<int>(i));
    std::vector<int> targets;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (g.nodes[i].kind == cs::NodeKind::Feature || g.nodes[i].kind == cs::NodeKind::Logit)
            targets.push_back(static_cast<int>(i));
    std::normal_distribution<float> weight(0.0f, 1.0f);
    g.links.reserve(links);
    // One link per (source, target), as in a graph read off an adjacency matrix.
    std::unordered_set<uint64_t> used;
    while (g.links.size() < links) {
        const int t = targets[rng() % targets.size()];
        const int r = static_cast<int>(rng() % row[t]);
        const auto& pool = byRow[r];
        const int s = pool[rng() % pool.size()];
        // Errors are not fed by anything, as in circuit-tracer's graphs.
        if (!used.insert(static_cast<uint64_t>(s) << 32 | static_cast<uint32_t>(t)).second) continue;
        g.links.push_back({s, t, weight(rng)});
    }
    return g;
}

}  // namespace cstest
