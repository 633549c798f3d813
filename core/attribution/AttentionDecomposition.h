#pragma once
// Why a head attended where it did. Attribution graphs freeze attention patterns, so they cannot
// say it; this splits one pre-softmax attention score (layer, head, query position, key position)
// exactly into contributions of the graph's nodes, in the same frozen local replacement model
// (patterns of earlier layers and every norm scale fixed at the real run, MLPs = transcoder
// features + error nodes). There the residual entering block L is affine in the nodes' writes, so
// the query and key vectors are sums of per-node parts plus a constant (the biases), and the score,
// bilinear in the two, splits into node pairs plus bias terms. Conventions:
// docs/attribution.md#attention-edges.
#include "attribution/Attribution.h"
#include "attribution/AttributionGraph.h"

#include <string>
#include <vector>

namespace cs {

struct AttentionEdge {
    int layer = 0;
    int head = 0;   // a query head; grouped-query models read its key from head / (heads / kv_heads)
    int query = 0;  // token positions, key <= query
    int key = 0;
};

struct AttentionOptions {
    int topPairs = 20;  // how many (query node, key node) pairs to keep
    int batch = 64;     // components of Q and K per backward pass (2 * d_head in all)
};

struct AttentionContribution {
    int node = 0;  // index into AttentionDecomposition::nodes
    double value = 0;
};

struct AttentionPair {
    int queryNode = 0;  // indices into AttentionDecomposition::nodes
    int keyNode = 0;
    double value = 0;  // Q_n . K_m * scale
};

// With Q = sum_n Q_n + Q_bias and K = sum_m K_m + K_bias (post-RoPE where the model rotates):
//   score = Q . K * scale = pairSum + queryNodesKeyBias + queryBiasKeyNodes + biasBias.
struct AttentionDecomposition {
    AttentionEdge edge;
    double scale = 0;    // the model's score scale, 1 / sqrt(d_head)
    double score = 0;    // the model's own pre-softmax score (blocks.L.attn.hook_attn_scores)
    double pattern = 0;  // the attention weight after softmax; shown for context, not decomposed
    double pairSum = 0;            // sum over all pairs of Q_n . K_m * scale
    double queryNodesKeyBias = 0;  // (sum_n Q_n) . K_bias * scale
    double queryBiasKeyNodes = 0;  // Q_bias . (sum_m K_m) * scale
    double biasBias = 0;           // Q_bias . K_bias * scale
    // The query's constant against the whole key: sum of queryValue + queryBias() = the score.
    double queryBias() const { return queryBiasKeyNodes + biasBias; }
    double keyBias() const { return queryNodesKeyBias + biasBias; }
    // The score the decomposition adds up to; equals `score` up to float32 rounding.
    double reconstructed() const { return pairSum + queryNodesKeyBias + queryBiasKeyNodes + biasBias; }

    // The nodes upstream of the query: embeddings, then for each layer < L its active features and
    // its error nodes, all at positions <= query. GraphNode fields and ids as computeAttribution
    // gives them (circuit-tracer's node_id), so a graph's nodes can be matched by id; no labels.
    std::vector<GraphNode> nodes;
    std::vector<std::string> saeIds;  // per layer, the transcoder's id ("" without one), for labels
    std::vector<double> queryValue;  // per node: Q_n . K * scale (K the whole key vector)
    std::vector<double> keyValue;    // per node: Q . K_n * scale (0 at positions > key)
    std::vector<AttentionContribution> queryContributors;  // every node, by |value|, largest first
    std::vector<AttentionContribution> keyContributors;    // nodes at positions <= key, likewise
    std::vector<AttentionPair> topPairs;  // the largest |Q_n . K_m * scale|, at most topPairs of them
};

// Throws cs::Error on a layer, head or position out of range, key > query, bad tokens, or a
// transcoder that does not read ln2.hook_normalized and write hook_mlp_out of one layer, two for
// one layer, or a skip transcoder (residual SAEs and skip terms are graph-only so far; see
// docs/ROADMAP.md). Layer 0 is fine: only embeddings are upstream.
AttentionDecomposition decomposeAttention(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                          const std::vector<long>& tokens, const AttentionEdge& edge,
                                          const AttentionOptions& options = {});

}  // namespace cs
