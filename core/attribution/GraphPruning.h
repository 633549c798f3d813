#pragma once
// Pruning and scores of an attribution graph, with circuit-tracer's definitions
// (circuit_tracer/graph.py: normalize_matrix, compute_influence, prune_graph,
// compute_graph_scores) and Neuronpedia's for a pinned subgraph. Everything works on the sparse
// link list, never a dense matrix, so a graph of 10k nodes and 1M links costs O(links) per
// iteration.
//
// The adjacency A is targets x sources, A[t][s] = the link s -> t's weight. Its row-normalised
// absolute value N[t][s] = |A[t][s]| / max(sum_s' |A[t][s']|, 1e-10) says what share of t's input
// comes from s. With w = the logit nodes' token probabilities (circuit-tracer's logit_weights, not
// renormalised: rankings and scores are scale-free), a node's influence on the output is
// (w N + w N^2 + ...)[node]: the sum over all paths to the logits of the products of the shares.
#include "attribution/AttributionGraph.h"

#include <vector>

namespace cs {

// The logit weights: each logit node's tokenProb; all 1 where every logit's tokenProb is 0 (a
// graph file without probabilities), so such a graph still has an output to rank against.
std::vector<double> logitWeights(const AttributionGraph& g);

// w N + w N^2 + ... per node (so logits themselves get 0 unless something reads from them).
// Iterates until the contribution of the next power vanishes (a DAG: after its depth); throws
// cs::Error when it has not after 1000 powers (a cycle that does not decay).
std::vector<double> nodeInfluence(const AttributionGraph& g);

// circuit-tracer's cumulative score per node: sort influence descending, the node's value of
// cumsum / total. Lower = more important; the top node gets its own share, the last 1.
std::vector<double> cumulativeInfluence(const std::vector<double>& influence);

// circuit-tracer's find_threshold: the score s such that the scores >= s hold `threshold` of the
// total (the first sorted index where the cumulative share reaches it).
double influenceThreshold(std::vector<double> scores, double threshold);

// prune_graph + create_used_nodes_and_edges:
//  1. keep nodes whose influence >= influenceThreshold(influence, nodeThreshold); embeddings and
//     logits always;
//  2. edge score = N'[t][s] * (influence'[t] + w[t]) on the graph of kept nodes (N', influence'
//     recomputed there); keep links >= influenceThreshold(edge scores, edgeThreshold);
//  3. repeatedly drop feature and error nodes without a kept outgoing link, and feature nodes
//     without a kept incoming link, with their links, until nothing changes.
// The result keeps the nodes in their original order. Every node's `influence` is its cumulative
// influence on the whole input graph (logits: 0) and influenceScore its raw influence;
// replacementScore / completenessScore are those of the unpruned input; pinnedIds, supernode
// members and clickedId that name dropped nodes are dropped. A threshold >= 1 keeps every node
// (resp. link). Thresholds outside [0, 1] throw cs::Error.
AttributionGraph pruneGraph(const AttributionGraph& g, float nodeThreshold = 0.8f,
                            float edgeThreshold = 0.98f);

struct GraphScores {
    // Share of the tokens' plus errors' influence on the logits that is the tokens'.
    double replacement = 0;
    // Influence-weighted share of every node's (normalised) input that does not come from errors.
    double completeness = 0;
};

// compute_graph_scores on the whole graph. 0 where undefined (no tokens nor errors reach a logit).
GraphScores graphScores(const AttributionGraph& g);

// Neuronpedia's subgraph scores: every feature node not in `pinned` (node indices) is folded into
// the error node at its (layer, position) -- its outgoing links added (signed) to that error's,
// its incoming links dropped; without such an error node it is just removed -- and graphScores is
// taken of what remains. Errors, embeddings and logits stay whether pinned or not.
GraphScores subgraphScores(const AttributionGraph& g, const std::vector<int>& pinned);

}  // namespace cs
