#include "attribution/Subgraph.h"

#include <map>
#include <unordered_map>
#include <utility>

namespace cs {

SubgraphView buildSubgraph(const AttributionGraph& g, const std::vector<int>& pinned,
                           const std::vector<Supernode>& supernodes) {
    SubgraphView v;
    const int n = static_cast<int>(g.nodes.size());
    v.owner.assign(static_cast<size_t>(n), -1);
    std::unordered_map<std::string, int> index;
    index.reserve(g.nodes.size());
    for (int i = 0; i < n; ++i) index.emplace(g.nodes[static_cast<size_t>(i)].id, i);

    for (size_t s = 0; s < supernodes.size(); ++s) {
        SubgraphNode sn;
        sn.supernode = static_cast<int>(s);
        sn.label = supernodes[s].label;
        for (const std::string& id : supernodes[s].nodeIds) {
            const auto it = index.find(id);
            if (it == index.end() || v.owner[static_cast<size_t>(it->second)] >= 0) continue;
            v.owner[static_cast<size_t>(it->second)] = static_cast<int>(v.nodes.size());
            sn.members.push_back(it->second);
        }
        if (!sn.members.empty()) v.nodes.push_back(std::move(sn));
    }
    for (int p : pinned) {
        if (p < 0 || p >= n || v.owner[static_cast<size_t>(p)] >= 0) continue;
        const GraphNode& node = g.nodes[static_cast<size_t>(p)];
        v.owner[static_cast<size_t>(p)] = static_cast<int>(v.nodes.size());
        v.nodes.push_back({-1, {p}, node.label.empty() ? node.id : node.label});
    }

    // One pass over the links: the subgraph is small, the graph's link list may not be.
    std::map<std::pair<int, int>, SubgraphLink> sums;
    for (const GraphLink& l : g.links) {
        if (l.source < 0 || l.source >= n || l.target < 0 || l.target >= n) continue;
        const int s = v.owner[static_cast<size_t>(l.source)], t = v.owner[static_cast<size_t>(l.target)];
        if (s < 0 || t < 0 || s == t) continue;
        SubgraphLink& sum = sums[{s, t}];
        sum.source = s;
        sum.target = t;
        sum.weight += static_cast<double>(l.weight);
        ++sum.count;
    }
    v.links.reserve(sums.size());
    for (const auto& [key, link] : sums) v.links.push_back(link);
    return v;
}

}  // namespace cs
