#pragma once
// Interventions from an attribution graph: set, scale or ablate transcoder features at the
// positions where the graph found them, rerun the prompt, and report how the target logits and the
// greedy continuation change. A graph says "this feature feeds that logit" under a linearised
// model; an intervention checks it on the real one. The feature change is core/steer's (one
// SteeringRule per node, at that node's position only), so interventions and steering share one
// hook system and one definition of "change a feature".
//
// Exact semantics (docs/attribution.md#interventions):
//   * A feature node (layer L, position p, feature f) of transcoder T: at blocks.L.hook_mlp_out,
//     position p, the MLP output gets (new - a) * W_dec[f] added, where a is T's activation of f
//     encoded from blocks.L.ln2.hook_normalized as it arrives in the intervened run (earlier
//     interventions and the frozen patterns included). The MLP's own output, and with it the
//     transcoder's error, is otherwise kept. new = value (Set), value x a (Scale), 0 (Ablate).
//     Several interventions apply together; at one hook each reads its own a first.
//   * Attention frozen: in the intervened run every layer's blocks.L.attn.hook_pattern is replaced
//     by the unintervened run's pattern, as a TransformerLens hook would (values, and so what the
//     heads move, still change). LayerNorm scales are not frozen.
//   * Logits: "logit" is the logit minus the mean logit over the vocabulary (the graph's logit
//     node value) at the last prompt position; probabilities are the softmax there.
//   * Continuations are greedy, up to maxNewTokens, stopping after the end-of-text token, with the
//     intervention applied at its prompt position (the generated positions are not intervened on;
//     they see it through attention). With attention frozen, the prompt positions keep their
//     frozen patterns while generating and every generated position's attention is computed
//     freely (the unintervened run has no pattern for it), so the first continuation token is the
//     argmax of the reported "after" logits in both modes.
//
// No LibTorch here (the model and transcoders are only named), so a UI header may include it.
#include "attribution/AttributionGraph.h"

#include <string>
#include <vector>

namespace cs {

class Transformer;
struct AttributionTranscoder;  // attribution/Attribution.h

struct NodeIntervention {
    enum class Kind { Set, Scale, Ablate };
    std::string saeId;  // the transcoder's id; empty: the one transcoder that serves `layer`
    int layer = -1;     // the block; -1 with a saeId: that transcoder's layer
    int position = -1;  // token position in the prompt (0 = the first token, BOS included)
    long feature = -1;
    Kind kind = Kind::Ablate;
    double value = 0;   // Set: the new activation; Scale: the factor; Ablate: unused
};

const char* interventionKindName(NodeIntervention::Kind k);  // "set" | "scale" | "ablate"
// "set" | "scale" | "ablate"; throws cs::Error naming `where` otherwise.
NodeIntervention::Kind parseInterventionKind(const std::string& s, const std::string& where);

// The intervention on a graph node; `saeId` is the graph's transcoder for the node's layer (may be
// empty). Throws cs::Error naming the node when it is not a feature node.
NodeIntervention interventionForNode(const GraphNode& node, NodeIntervention::Kind kind, double value,
                                     const std::string& saeId = "");

struct InterventionOptions {
    std::vector<long> targets;  // tokens whose logits are reported; empty: the unintervened top token
    bool freezeAttention = true;
    int maxNewTokens = 16;      // 0: no continuation
};

struct TargetChange {
    long token = -1;
    double logitBefore = 0, logitAfter = 0;  // logit minus the mean logit, last prompt position
    double probBefore = 0, probAfter = 0;
};

struct TopToken {
    long token = -1;
    double logit = 0;  // minus the mean logit
    double prob = 0;
};

struct InterventionResult {
    std::vector<TargetChange> targets;         // in the order asked
    std::vector<TopToken> topBefore;   // the 5 most likely next tokens, most likely first
    std::vector<TopToken> topAfter;
    // Per intervention: the feature's activation in the unintervened run, and the one it was given
    // in the intervened run (Set: the value; Scale: the factor x its `a` there; Ablate: 0).
    std::vector<double> activationsBefore;
    std::vector<double> activationsAfter;
    std::vector<long> continuationBefore;  // greedy token ids after the prompt
    std::vector<long> continuationAfter;
    bool attentionFrozen = false;             // the logits were computed with frozen patterns
    bool continuationGeneratedFree = true;    // generated positions' attention is never frozen
};

// Runs the prompt without and with the interventions. Throws one-line cs::Error on empty or
// out-of-range tokens, a transcoder that does not map ln2.hook_normalized to hook_mlp_out of one
// layer, an unknown SAE id, no transcoder for a layer, a layer that does not match the id's, a
// position or feature out of range, a non-finite value, no interventions, or a target out of the
// vocabulary.
InterventionResult interveneOnGraph(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const std::vector<NodeIntervention>& interventions,
                                    const InterventionOptions& options = {});

}  // namespace cs
