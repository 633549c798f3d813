#pragma once
// Graphs built by hand for tests and benchmarks of attribution-graph code that needs no model:
// one node at a time, or a random layered DAG of a chosen size (the 10,000-node / 1,000,000-link
// graph the issue asks to load, prune and pan).
#include "attribution/AttributionGraph.h"

#include <string>

namespace cstest {

cs::GraphNode node(cs::NodeKind k, int layer, int pos, long feature, const std::string& id, float prob = 0);

// `positions` embeddings, an error per (layer, position), `features` features spread over the
// layers at random positions, `positions` logits at the last position, and `links` distinct
// links, each from a row below its target; weights N(0, 1). Deterministic for a seed.
cs::AttributionGraph randomGraph(int layers, int positions, int features, size_t links, unsigned seed);

}  // namespace cstest
