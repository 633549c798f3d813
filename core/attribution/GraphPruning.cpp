#include "attribution/GraphPruning.h"

#include "util/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <tuple>
#include <numeric>
#include <unordered_set>
#include <utility>

namespace cs {
namespace {

// A weighted link list that may differ from the graph's (links of kept nodes only, or features
// folded into errors), so that one influence routine serves pruning and both scores.
struct Edge {
    int32_t source;
    int32_t target;
    double weight;
};

// N as (source, target, share) triples: |w| over the target's total |w|, clamped at 1e-10 as
// circuit-tracer's normalize_matrix does so an all-zero row stays zero.
struct Normalised {
    std::vector<Edge> edges;
};

Normalised normalise(size_t n, const std::vector<Edge>& edges) {
    std::vector<double> rowSum(n, 0.0);
    for (const auto& e : edges) rowSum[e.target] += std::abs(e.weight);
    Normalised out;
    out.edges.reserve(edges.size());
    for (const auto& e : edges)
        out.edges.push_back({e.source, e.target, std::abs(e.weight) / std::max(rowSum[e.target], 1e-10)});
    return out;
}

std::vector<double> influenceOver(size_t n, const Normalised& N, const std::vector<double>& w) {
    std::vector<double> total(n, 0.0), cur = w, next(n);
    // A DAG's powers of N vanish exactly after its depth; the relative cut only matters for a
    // graph with a decaying cycle, which circuit-tracer would reject after 1000 powers anyway.
    constexpr int kMaxPowers = 1000;
    for (int power = 0;; ++power) {
        std::fill(next.begin(), next.end(), 0.0);
        for (const auto& e : N.edges) next[e.source] += cur[e.target] * e.weight;
        double mass = 0, sum = 0;
        for (size_t i = 0; i < n; ++i) {
            total[i] += next[i];
            mass += next[i];
            sum += total[i];
        }
        if (mass == 0 || mass <= 1e-14 * sum) break;
        if (power + 1 >= kMaxPowers)
            throw Error("attribution graph: influence did not converge after " +
                        std::to_string(kMaxPowers) + " powers of the adjacency (the links form a cycle)");
        std::swap(cur, next);
    }
    return total;
}

std::vector<Edge> allEdges(const AttributionGraph& g) {
    std::vector<Edge> edges;
    edges.reserve(g.links.size());
    const auto n = static_cast<int32_t>(g.nodes.size());
    for (size_t i = 0; i < g.links.size(); ++i) {
        const auto& l = g.links[i];
        if (l.source < 0 || l.source >= n || l.target < 0 || l.target >= n)
            throw Error("attribution graph: link " + std::to_string(i) + " refers to node " +
                        std::to_string(l.source < 0 || l.source >= n ? l.source : l.target) + " of " +
                        std::to_string(n));
        edges.push_back({l.source, l.target, l.weight});
    }
    return edges;
}

GraphScores scoresOver(const AttributionGraph& g, const std::vector<Edge>& edges) {
    const size_t n = g.nodes.size();
    const auto w = logitWeights(g);
    const auto N = normalise(n, edges);
    const auto infl = influenceOver(n, N, w);
    double tokens = 0, errors = 0;
    for (size_t i = 0; i < n; ++i) {
        if (g.nodes[i].kind == NodeKind::Embedding) tokens += infl[i];
        if (g.nodes[i].kind == NodeKind::Error) errors += infl[i];
    }
    std::vector<double> errorShare(n, 0.0);
    for (const auto& e : N.edges)
        if (g.nodes[e.source].kind == NodeKind::Error) errorShare[e.target] += e.weight;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
        const double out = infl[i] + w[i];
        num += (1 - errorShare[i]) * out;
        den += out;
    }
    GraphScores s;
    s.replacement = tokens / (tokens + errors);
    s.completeness = num / den;
    // Neuronpedia shows 0 where a score is 0/0 (nothing reaches a logit).
    if (!std::isfinite(s.replacement)) s.replacement = 0;
    if (!std::isfinite(s.completeness)) s.completeness = 0;
    return s;
}

void checkThreshold(const char* what, float t) {
    if (!(t >= 0.0f && t <= 1.0f))
        throw Error(std::string("pruning: ") + what + " threshold " + std::to_string(t) +
                    " is outside [0, 1]");
}

}  // namespace

std::vector<double> logitWeights(const AttributionGraph& g) {
    std::vector<double> w(g.nodes.size(), 0.0);
    bool any = false;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (g.nodes[i].kind == NodeKind::Logit) {
            w[i] = g.nodes[i].tokenProb;
            any = any || w[i] != 0;
        }
    if (!any)
        for (size_t i = 0; i < g.nodes.size(); ++i)
            if (g.nodes[i].kind == NodeKind::Logit) w[i] = 1.0;
    return w;
}

std::vector<double> nodeInfluence(const AttributionGraph& g) {
    return influenceOver(g.nodes.size(), normalise(g.nodes.size(), allEdges(g)), logitWeights(g));
}

std::vector<double> cumulativeInfluence(const std::vector<double>& influence) {
    const size_t n = influence.size();
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    // Stable, so tied nodes rank by index and a graph ranks the same on every run.
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return influence[a] > influence[b]; });
    const double total = std::accumulate(influence.begin(), influence.end(), 0.0);
    std::vector<double> cum(n, 1.0);
    if (!(total > 0)) return cum;
    double run = 0;
    for (size_t k = 0; k < n; ++k) {
        run += influence[order[k]];
        cum[order[k]] = run / total;
    }
    return cum;
}

double influenceThreshold(std::vector<double> scores, double threshold) {
    if (scores.empty()) return 0;
    std::sort(scores.begin(), scores.end(), std::greater<double>());
    const double total = std::accumulate(scores.begin(), scores.end(), 0.0);
    if (!(total > 0)) return 0;
    double run = 0;
    for (size_t k = 0; k < scores.size(); ++k) {
        run += scores[k];
        if (run / total >= threshold) return scores[k];
    }
    return scores.back();
}

GraphScores graphScores(const AttributionGraph& g) { return scoresOver(g, allEdges(g)); }

GraphScores subgraphScores(const AttributionGraph& g, const std::vector<int>& pinned) {
    const size_t n = g.nodes.size();
    std::vector<char> isPinned(n, 0);
    for (int p : pinned)
        if (p >= 0 && static_cast<size_t>(p) < n) isPinned[p] = 1;
    // A feature folds into the error of its own site: a residual SAE's features into that SAE's
    // error, a transcoder's into its MLP's, never a residual feature into the MLP kept whole.
    std::map<std::tuple<int, int, bool>, int32_t> errorAt;
    for (size_t i = 0; i < n; ++i)
        if (g.nodes[i].kind == NodeKind::Error)
            errorAt[{g.nodes[i].layer, g.nodes[i].position, g.nodes[i].residual}] = static_cast<int32_t>(i);
    auto folded = [&](int32_t i) { return g.nodes[i].kind == NodeKind::Feature && !isPinned[i]; };

    std::vector<Edge> edges;
    for (const auto& e : allEdges(g)) {
        if (folded(e.target)) continue;
        Edge m = e;
        if (folded(e.source)) {
            const GraphNode& f = g.nodes[e.source];
            auto it = errorAt.find({f.layer, f.position, f.residual});
            if (it == errorAt.end()) continue;
            m.source = it->second;
        }
        edges.push_back(m);
    }
    // A folded feature's link and its error's link into the same target become one entry of the
    // matrix: signed weights add before the absolute value, as in Neuronpedia's column merge.
    std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
        return a.target != b.target ? a.target < b.target : a.source < b.source;
    });
    std::vector<Edge> merged;
    for (const auto& e : edges) {
        if (!merged.empty() && merged.back().target == e.target && merged.back().source == e.source)
            merged.back().weight += e.weight;
        else
            merged.push_back(e);
    }
    return scoresOver(g, merged);
}

AttributionGraph pruneGraph(const AttributionGraph& g, float nodeThreshold, float edgeThreshold) {
    checkThreshold("node", nodeThreshold);
    checkThreshold("edge", edgeThreshold);
    const size_t n = g.nodes.size();
    const auto w = logitWeights(g);
    const auto edges = allEdges(g);
    const auto infl = influenceOver(n, normalise(n, edges), w);
    const auto cum = cumulativeInfluence(infl);

    auto alwaysKept = [&](size_t i) {
        return g.nodes[i].kind == NodeKind::Embedding || g.nodes[i].kind == NodeKind::Logit;
    };
    std::vector<char> keep(n, 1);
    if (nodeThreshold < 1.0f) {
        const double thr = influenceThreshold(infl, nodeThreshold);
        for (size_t i = 0; i < n; ++i) keep[i] = alwaysKept(i) || infl[i] >= thr;
    }

    // Edge scores on the graph of kept nodes: N' and influence' are recomputed there, so a link's
    // score is its share of its target's remaining input times the target's remaining influence.
    std::vector<size_t> linkIdx;
    std::vector<Edge> kept;
    for (size_t l = 0; l < edges.size(); ++l)
        if (keep[edges[l].source] && keep[edges[l].target]) {
            linkIdx.push_back(l);
            kept.push_back(edges[l]);
        }
    std::vector<char> keepLink(edges.size(), 0);
    {
        const auto N = normalise(n, kept);
        const auto inflKept = influenceOver(n, N, w);
        std::vector<double> score(kept.size());
        for (size_t k = 0; k < kept.size(); ++k)
            score[k] = N.edges[k].weight * (inflKept[kept[k].target] + w[kept[k].target]);
        const double thr = edgeThreshold < 1.0f ? influenceThreshold(score, edgeThreshold)
                                                : -std::numeric_limits<double>::infinity();
        for (size_t k = 0; k < kept.size(); ++k) keepLink[linkIdx[k]] = score[k] >= thr;
    }

    // Dropping a node can strand its neighbours; repeat until every feature and error feeds
    // something kept and every feature is fed by something kept. Thresholds of 1 promise the whole
    // graph, so nodes that never reach the logits (the last layer's earlier positions) stay too.
    const bool keepAll = nodeThreshold >= 1.0f && edgeThreshold >= 1.0f;
    for (; !keepAll;) {
        std::vector<char> hasOut(n, 0), hasIn(n, 0);
        for (size_t l = 0; l < edges.size(); ++l) {
            if (!keepLink[l]) continue;
            if (!keep[edges[l].source] || !keep[edges[l].target]) {
                keepLink[l] = 0;
                continue;
            }
            hasOut[edges[l].source] = 1;
            hasIn[edges[l].target] = 1;
        }
        bool changed = false;
        for (size_t i = 0; i < n; ++i) {
            if (!keep[i] || alwaysKept(i)) continue;
            const bool isFeature = g.nodes[i].kind == NodeKind::Feature;
            if (!hasOut[i] || (isFeature && !hasIn[i])) {
                keep[i] = 0;
                changed = true;
            }
        }
        if (!changed) break;
    }

    AttributionGraph out = g;
    out.nodes.clear();
    out.links.clear();
    out.nodeThreshold = nodeThreshold;
    out.edgeThreshold = edgeThreshold;
    std::vector<int32_t> remap(n, -1);
    for (size_t i = 0; i < n; ++i) {
        if (!keep[i]) continue;
        remap[i] = static_cast<int32_t>(out.nodes.size());
        GraphNode node = g.nodes[i];
        node.influence = node.kind == NodeKind::Logit ? 0.0f : static_cast<float>(cum[i]);
        node.influenceScore = static_cast<float>(infl[i]);
        out.nodes.push_back(std::move(node));
    }
    for (size_t l = 0; l < edges.size(); ++l)
        if (keepLink[l] && remap[edges[l].source] >= 0 && remap[edges[l].target] >= 0)
            out.links.push_back({remap[edges[l].source], remap[edges[l].target], g.links[l].weight});

    const auto s = graphScores(g);
    out.replacementScore = static_cast<float>(s.replacement);
    out.completenessScore = static_cast<float>(s.completeness);

    std::unordered_set<std::string> ids;
    for (const auto& node : out.nodes) ids.insert(node.id);
    auto present = [&](const std::string& id) { return ids.count(id) > 0; };
    out.pinnedIds.clear();
    for (const auto& id : g.pinnedIds)
        if (present(id)) out.pinnedIds.push_back(id);
    for (auto& sn : out.supernodes) {
        std::vector<std::string> members;
        for (const auto& id : sn.nodeIds)
            if (present(id)) members.push_back(id);
        sn.nodeIds = std::move(members);
    }
    if (!present(out.clickedId)) out.clickedId.clear();
    return out;
}

}  // namespace cs
