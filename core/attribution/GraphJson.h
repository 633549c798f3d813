#pragma once
// Attribution graphs as Neuronpedia's graph JSON (what circuit-tracer's create_graph_files
// writes and Neuronpedia's viewer reads):
//   {metadata: {slug, scan, transcoder_list, prompt, prompt_tokens, node_threshold,
//               schema_version: 1, circuitscope: {...our extras...}},
//    qParams:  {pinnedIds, supernodes: [[label, id, ...], ...], linkType, clickedId, sg_pos},
//    nodes:    [{node_id, feature, layer, ctx_idx, feature_type, jsNodeId, clerp, token_prob,
//                is_target_logit, influence, activation, ...}],
//    links:    [{source: node_id, target: node_id, weight}]}
// Node spellings follow circuit-tracer: a feature is "{layer}_{feat}_{pos}" with feature =
// cantor(layer, feat) and type "cross layer transcoder"; an error "{layer}_-1_{pos}", feature -1,
// "mlp reconstruction error"; an embedding "E_{token}_{pos}", layer "E", feature = pos; a logit
// "{n_layers+1}_{token}_{pos}", layer n_layers + 1, feature = token, "logit".
// What Neuronpedia has no field for (token ids, replacement kind, SAE ids, layer count, edge
// threshold, scores, raw influence) goes under metadata.circuitscope and per node
// "influence_score", so a graph saved and loaded again is the same graph, float for float.
#include "attribution/AttributionGraph.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cs {

// circuit-tracer's node_id for a node of a model with `nLayers` blocks.
std::string canonicalNodeId(const GraphNode& node, long tokenId, int nLayers);
// (x + y)(x + y + 1)/2 + y, circuit-tracer's `feature` of a feature node; and its inverse.
long long cantorPair(long long x, long long y);
std::pair<long long, long long> cantorUnpair(long long z);

nlohmann::json graphToJson(const AttributionGraph& g);
// `where` (a file name) starts every error message. Throws one-line cs::Error for missing
// top-level keys, mistyped fields, unknown feature_type, duplicate node ids and links naming
// absent nodes, each with the node / link index.
AttributionGraph graphFromJson(const nlohmann::json& j, const std::string& where);

// Writes `path` through a temporary file in the same directory and a rename, so a reader never
// sees half a graph.
void saveGraph(const std::string& path, const AttributionGraph& g);
AttributionGraph loadGraph(const std::string& path);

}  // namespace cs
