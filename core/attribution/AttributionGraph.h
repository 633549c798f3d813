#pragma once
// An attribution graph as plain data, circuit-tracer style: nodes, a sparse list of weighted
// links, and what was asked. Pruning, scores, JSON and traversal are free functions over it
// (GraphPruning.h, GraphJson.h, GraphTraversal.h), so the canvas, the CLI and the tests share one
// representation and nothing in it needs a model.
#include <cstdint>
#include <string>
#include <vector>

namespace cs {

enum class NodeKind {
    Feature,    // an active transcoder (or SAE) feature at (layer, position)
    Error,      // the transcoder's error at (layer, position): true MLP output - its output; with
                // residual SAEs also an MLP kept whole, or (residual = true) the SAE's error
    Embedding,  // the residual stream entering block 0 at a position
    Logit,      // a target token's logit (minus the mean logit) at the last position, or a
                // logit difference (minusToken >= 0)
};

// AttributionGraph::replacement of a graph built on residual-stream SAEs instead of transcoders.
inline constexpr const char* kResidualSaeReplacement = "residual SAEs (with error nodes)";

const char* nodeKindName(NodeKind k);  // "feature" | "error" | "embedding" | "logit"

struct GraphNode {
    NodeKind kind = NodeKind::Feature;
    int layer = 0;        // features, errors: the block; embeddings: -1; logits: n_layers
    int position = 0;     // ctx_idx
    long feature = -1;    // features: the feature index; logits: the token id; else -1
    std::string id;       // node_id as circuit-tracer spells it ("{layer}_{feat}_{pos}", "E_{tok}_{pos}", ...)
    std::string label;    // clerp: a human label (the store's, or the token for logits/embeddings)
    float activation = 0; // features: activation; logits: logit - mean logit; errors: norm of the error
    float tokenProb = 0;  // logits: the token's probability
    bool isTargetLogit = false;
    // circuit-tracer's influence: the node's cumulative-influence rank fraction (lower = more
    // important); 0 for logits; filled by pruning.
    float influence = 0;
    float influenceScore = 0;  // the raw influence on the logits (before ranking)
    // Features and errors of a residual-stream SAE (not a transcoder's, not an MLP's): its error
    // node's id is "{layer}_-2_{pos}" so that it never meets the MLP error "{layer}_-1_{pos}".
    bool residual = false;
    // A logit-difference node: its value is logit(feature) - logit(minusToken); -1 otherwise.
    long minusToken = -1;
};

struct GraphLink {
    int32_t source = 0;  // indices into AttributionGraph::nodes
    int32_t target = 0;
    float weight = 0;    // the raw direct effect of source on target
};

struct Supernode {
    std::string label;
    std::vector<std::string> nodeIds;
};

struct AttributionGraph {
    // What was asked and of what.
    std::string slug;                 // a short name for the graph
    std::string scan;                 // the model ("demo", a directory name)
    std::string prompt;
    std::vector<long> tokens;
    std::vector<std::string> tokenTexts;
    std::string replacement;          // "transcoders" or "residual SAEs (with error nodes)"
    std::vector<std::string> saeIds;  // per layer, the transcoder/SAE used
    int layers = 0;
    float nodeThreshold = 0.8f;
    float edgeThreshold = 0.98f;

    std::vector<GraphNode> nodes;
    std::vector<GraphLink> links;

    // Scores of the whole graph (circuit-tracer's definitions; see GraphPruning.h).
    float replacementScore = 0;
    float completenessScore = 0;

    // The viewer's state, kept in the graph file (Neuronpedia's qParams).
    std::vector<std::string> pinnedIds;
    std::vector<Supernode> supernodes;
    std::string clickedId;

    int findNode(const std::string& id) const;  // -1 when absent
};

}  // namespace cs
