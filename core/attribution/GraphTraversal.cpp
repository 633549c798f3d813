#include "attribution/GraphTraversal.h"

#include "util/Error.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace cs {
namespace {

struct LinkProp {
    double share = 0;  // |w| / sum of |w| into the target
};
using BGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS,
                                     boost::no_property, LinkProp>;
using Vertex = boost::graph_traits<BGraph>::vertex_descriptor;

// Collects what a breadth-first search reaches.
struct Reached : boost::default_bfs_visitor {
    std::vector<char>* seen;
    template <class G>
    void discover_vertex(Vertex v, const G&) const { (*seen)[v] = 1; }
};

template <class G>
std::vector<int> cone(const G& graph, size_t n, int start) {
    std::vector<char> seen(n, 0);
    std::vector<boost::default_color_type> color(n, boost::white_color);
    Reached vis;
    vis.seen = &seen;
    boost::breadth_first_search(
        graph, static_cast<Vertex>(start),
        boost::visitor(vis).color_map(boost::make_iterator_property_map(
            color.begin(), boost::get(boost::vertex_index, graph))));
    std::vector<int> out;
    for (size_t i = 0; i < n; ++i)
        if (seen[i] && static_cast<int>(i) != start) out.push_back(static_cast<int>(i));
    return out;
}

}  // namespace

struct GraphTraversal::Impl {
    BGraph graph;
    std::vector<NodeKind> kinds;
    std::vector<int> layers, positions;
    int nLayers = 0;
    bool cyclic = false;
    std::vector<Vertex> sinksFirst;  // reverse topological order: every link's target before its source
};

GraphTraversal::GraphTraversal(const AttributionGraph& g) : impl_(std::make_unique<Impl>()) {
    const size_t n = g.nodes.size();
    std::vector<double> into(n, 0.0);
    for (size_t l = 0; l < g.links.size(); ++l) {
        const auto& k = g.links[l];
        if (k.source < 0 || static_cast<size_t>(k.source) >= n || k.target < 0 ||
            static_cast<size_t>(k.target) >= n)
            throw Error("attribution graph: link " + std::to_string(l) + " names a node outside 0.." +
                        std::to_string(n));
        into[k.target] += std::abs(k.weight);
    }
    impl_->graph = BGraph(n);
    for (const auto& k : g.links)
        boost::add_edge(k.source, k.target, LinkProp{std::abs(k.weight) / std::max(into[k.target], 1e-10)},
                        impl_->graph);
    for (const auto& node : g.nodes) {
        impl_->kinds.push_back(node.kind);
        impl_->layers.push_back(node.layer);
        impl_->positions.push_back(node.position);
    }
    impl_->nLayers = g.layers;
    try {
        boost::topological_sort(impl_->graph, std::back_inserter(impl_->sinksFirst));
    } catch (const boost::not_a_dag&) {
        impl_->cyclic = true;
    }
}

GraphTraversal::~GraphTraversal() = default;
GraphTraversal::GraphTraversal(GraphTraversal&&) noexcept = default;
GraphTraversal& GraphTraversal::operator=(GraphTraversal&&) noexcept = default;

size_t GraphTraversal::nodeCount() const { return boost::num_vertices(impl_->graph); }

static void checkNode(int node, size_t n) {
    if (node < 0 || static_cast<size_t>(node) >= n)
        throw Error("attribution graph: node " + std::to_string(node) + " is outside 0.." + std::to_string(n));
}

std::vector<int> GraphTraversal::upstream(int node) const {
    checkNode(node, nodeCount());
    return cone(boost::make_reverse_graph(impl_->graph), nodeCount(), node);
}

std::vector<int> GraphTraversal::downstream(int node) const {
    checkNode(node, nodeCount());
    return cone(impl_->graph, nodeCount(), node);
}

std::vector<GraphPath> GraphTraversal::strongestPaths(int node, int topN) const {
    checkNode(node, nodeCount());
    if (topN <= 0) return {};
    if (impl_->cyclic) throw Error("attribution graph: the links form a cycle; strongest paths need a DAG");
    const auto& G = impl_->graph;
    const size_t n = nodeCount();
    std::vector<char> inCone(n, 0);
    inCone[node] = 1;
    for (int v : downstream(node)) inCone[v] = 1;

    // best[v]: v's topN strongest suffixes to a logit, each as (strength, hops, next vertex, its
    // rank there), so paths share their tails instead of being copied.
    struct Suffix {
        double strength;
        int hops;
        int next;
        int nextRank;
    };
    auto better = [](const Suffix& a, const Suffix& b) {
        if (a.strength != b.strength) return a.strength > b.strength;
        if (a.hops != b.hops) return a.hops < b.hops;
        if (a.next != b.next) return a.next < b.next;
        return a.nextRank < b.nextRank;
    };
    std::vector<std::vector<Suffix>> best(n);
    for (Vertex v : impl_->sinksFirst) {
        if (!inCone[v]) continue;
        if (impl_->kinds[v] == NodeKind::Logit) {
            best[v].push_back({1.0, 0, -1, -1});
            continue;
        }
        std::vector<Suffix> cand;
        for (auto [e, end] = boost::out_edges(v, G); e != end; ++e) {
            const auto t = boost::target(*e, G);
            const double share = G[*e].share;
            for (size_t r = 0; r < best[t].size(); ++r)
                cand.push_back({share * best[t][r].strength, best[t][r].hops + 1, static_cast<int>(t),
                                static_cast<int>(r)});
        }
        const size_t keep = std::min(cand.size(), static_cast<size_t>(topN));
        std::partial_sort(cand.begin(), cand.begin() + keep, cand.end(), better);
        cand.resize(keep);
        best[v] = std::move(cand);
    }

    std::vector<GraphPath> out;
    for (const auto& s : best[node]) {
        GraphPath p;
        p.strength = s.strength;
        p.nodes.push_back(node);
        int v = s.next, r = s.nextRank;
        while (v >= 0) {
            p.nodes.push_back(v);
            const auto& nx = best[v][r];
            v = nx.next;
            r = nx.nextRank;
        }
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<GraphPath> GraphTraversal::allPaths(int node, size_t limit, int maxHops) const {
    checkNode(node, nodeCount());
    const auto& G = impl_->graph;
    std::vector<GraphPath> out;
    std::vector<char> onPath(nodeCount(), 0);
    GraphPath cur;
    std::function<void(Vertex, double)> walk = [&](Vertex v, double strength) {
        if (out.size() >= limit) return;
        cur.nodes.push_back(static_cast<int>(v));
        onPath[v] = 1;
        if (impl_->kinds[v] == NodeKind::Logit) {
            cur.strength = strength;
            out.push_back(cur);
        } else if (static_cast<int>(cur.nodes.size()) <= maxHops) {
            std::vector<std::pair<double, Vertex>> next;
            for (auto [e, end] = boost::out_edges(v, G); e != end; ++e)
                next.push_back({G[*e].share, boost::target(*e, G)});
            std::stable_sort(next.begin(), next.end(),
                             [](const auto& a, const auto& b) { return a.first > b.first; });
            for (const auto& [share, t] : next)
                if (!onPath[t]) walk(t, strength * share);
        }
        onPath[v] = 0;
        cur.nodes.pop_back();
    };
    walk(static_cast<Vertex>(node), 1.0);
    return out;
}

std::vector<std::pair<float, float>> GraphTraversal::layeredLayout() const {
    const size_t n = nodeCount();
    auto row = [&](size_t i) {
        switch (impl_->kinds[i]) {
            case NodeKind::Embedding: return 0;
            case NodeKind::Logit: return impl_->nLayers + 1;
            default: return impl_->layers[i] + 1;
        }
    };
    std::map<std::pair<int, int>, int> count, seen;
    for (size_t i = 0; i < n; ++i) ++count[{row(i), impl_->positions[i]}];
    std::vector<std::pair<float, float>> xy(n);
    for (size_t i = 0; i < n; ++i) {
        const std::pair<int, int> cell{row(i), impl_->positions[i]};
        const int k = seen[cell]++;
        xy[i] = {static_cast<float>(impl_->positions[i]) + static_cast<float>(k) / count[cell],
                 static_cast<float>(cell.first)};
    }
    return xy;
}

}  // namespace cs
