#pragma once
// Computing an attribution graph: the local replacement model of one prompt (attention patterns
// and normalisation scales frozen, each MLP replaced by its transcoder's active features plus an
// error node per layer and position; or, with residual-stream SAEs, the stream at each SAE
// replaced by its features plus an error node, MLPs kept whole as error nodes), and every direct
// effect between its nodes, from batched backward passes (many target rows per pass, never one
// pass per edge). Conventions are exact, circuit-tracer's: see docs/attribution.md.
#include "attribution/AttributionGraph.h"
#include "model/Transformer.h"
#include "sae/Sae.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cs {

struct AttributionTranscoder {
    std::string id;                   // the SAE folder's name
    // A transcoder (plain, JumpReLU or skip) reading blocks.L.ln2.hook_normalized and writing
    // blocks.L.hook_mlp_out; or an SAE on blocks.L.hook_resid_pre, _mid or _post.
    std::shared_ptr<const Sae> sae;
};

struct AttributionOptions {
    // Target tokens at the last position; empty: the most likely ones until their probabilities
    // sum to logitProbability, at most maxLogits.
    std::vector<long> targets;
    // Instead of the above: one target node whose value is logit(first) - logit(second) at the last
    // position (the mean logit cancels, so none is subtracted). Excludes `targets`.
    std::optional<std::pair<long, long>> logitDifference;
    int maxLogits = 10;
    double logitProbability = 0.95;
    // Links whose |weight| is below this share of their target's total |weight| over all its
    // sources are dropped while building (0 keeps every non-zero link): for long prompts, whose
    // unpruned graphs run to millions of links. Pruning still sees every node.
    double minLinkShare = 0;
    int batch = 64;  // target rows per backward pass (bench_attribution: 64 was fastest on the demo)
    // Called after each backward pass with rows done and total; returning false cancels (throws
    // cs::Error "cancelled").
    std::function<bool(long done, long total)> progress;
};

// Throws cs::Error naming the model type when the local replacement model cannot be built for it:
// Gemma 2's norms on the sublayer outputs and its final-logit soft-cap are not frozen or
// linearised, so its graphs (and attention decompositions) would be wrong. `what` opens the message.
void checkAttributionSupports(const ModelConfig& cfg, const std::string& what);

// The unpruned graph. `transcoders` holds transcoders or residual SAEs, not both. Layers without a
// transcoder keep their whole MLP output as error nodes (always, with residual SAEs). Throws
// cs::Error on an SAE on any other hook, a mix of the two kinds, two for one layer (or two residual
// SAEs at one point of the stream), a width that is not d_model, or bad tokens.
AttributionGraph computeAttribution(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const AttributionOptions& options = {});

}  // namespace cs
