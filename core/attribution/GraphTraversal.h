#pragma once
// Walking a (pruned) attribution graph: the cone of nodes a node depends on or feeds, and the
// strongest paths from a node to the logits. Built once per graph over Boost.Graph (the
// canvas asks many questions of one graph); answers are plain vectors of node indices into
// AttributionGraph::nodes.
//
// A path's strength is the product of its links' normalised weights, |w| over the sum of |w|
// into the link's target: the share of the target's input the link carries, the quantity whose
// path sums are circuit-tracer's influence (GraphPruning.h).
#include "attribution/AttributionGraph.h"

#include <memory>
#include <utility>
#include <vector>

namespace cs {

struct GraphPath {
    std::vector<int> nodes;  // from the start node to a logit node
    double strength = 0;     // product of normalised weights along it
};

class GraphTraversal {
public:
    // Throws cs::Error when a link names a node outside the graph.
    explicit GraphTraversal(const AttributionGraph& g);
    ~GraphTraversal();
    GraphTraversal(GraphTraversal&&) noexcept;
    GraphTraversal& operator=(GraphTraversal&&) noexcept;

    size_t nodeCount() const;
    // Every node with a path to `node` (its causes), ascending, without `node` itself.
    std::vector<int> upstream(int node) const;
    // Every node `node` has a path to (what it influences), ascending, without `node` itself.
    std::vector<int> downstream(int node) const;

    // The `topN` strongest paths from `node` to any logit node, strongest first (ties: fewer
    // hops, then lexicographic). Exact (k-best over the DAG); throws cs::Error on a cyclic graph.
    std::vector<GraphPath> strongestPaths(int node, int topN) const;
    // Simple paths from `node` to logit nodes, depth first along stronger links first, until
    // `limit` paths or none left; paths longer than `maxHops` links are not followed.
    std::vector<GraphPath> allPaths(int node, size_t limit, int maxHops = 64) const;

    // A layered layout: x = position (plus a spread in [0, 1) among nodes sharing a cell),
    // y = row (embeddings 0, layer l -> l + 1, logits last).
    std::vector<std::pair<float, float>> layeredLayout() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cs
