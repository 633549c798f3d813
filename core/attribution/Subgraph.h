#pragma once
// The pinned subgraph as a circuit is read off an attribution graph: every pinned node, with each
// supernode's members drawn as one node whose links to the others are the sums of its members'
// links. Pure data, so the subgraph pane, its figure and the tests share one definition.
#include "attribution/AttributionGraph.h"

#include <string>
#include <vector>

namespace cs {

struct SubgraphNode {
    int supernode = -1;        // index into the supernodes given; -1 for a single pinned node
    std::vector<int> members;  // node indices into the graph, never empty
    std::string label;         // the supernode's label; a single node's label, else its id
};

struct SubgraphLink {
    int source = 0;     // indices into SubgraphView::nodes
    int target = 0;
    double weight = 0;  // the sum of the graph links from source's members to target's members
    int count = 0;      // how many graph links that sum holds
};

struct SubgraphView {
    std::vector<SubgraphNode> nodes;
    std::vector<SubgraphLink> links;  // sorted by (source, target); no self-links
    std::vector<int> owner;           // per graph node: its subgraph node, or -1
};

// Supernodes come first, in their order, each with its members that the graph has (absent ids --
// pruned away, or from another graph -- are skipped; a supernode with none is left out); a node
// listed by two supernodes belongs to the first. Then every pinned node (indices into g.nodes,
// out-of-range ones ignored) that no supernode holds, in pin order. Links between two members of
// one supernode are internal and left out. Members need not be pinned: a graph file may group
// nodes it does not pin.
SubgraphView buildSubgraph(const AttributionGraph& g, const std::vector<int>& pinned,
                           const std::vector<Supernode>& supernodes);

}  // namespace cs
