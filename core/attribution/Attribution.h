#pragma once
// Computing an attribution graph: the local replacement model of one prompt (attention patterns
// and normalisation scales frozen, each MLP replaced by its transcoder's active features plus an
// error node per layer and position), and every direct effect between its nodes, from batched
// backward passes (many target rows per pass, never one pass per edge). Conventions are exact,
// circuit-tracer's: see docs/attribution.md.
#include "attribution/AttributionGraph.h"
#include "model/Transformer.h"
#include "sae/Sae.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs {

struct AttributionTranscoder {
    std::string id;                   // the SAE folder's name
    std::shared_ptr<const Sae> sae;   // reads blocks.L.ln2.hook_normalized, writes blocks.L.hook_mlp_out
};

struct AttributionOptions {
    // Target tokens at the last position; empty: the most likely ones until their probabilities
    // sum to logitProbability, at most maxLogits.
    std::vector<long> targets;
    int maxLogits = 10;
    double logitProbability = 0.95;
    int batch = 64;  // target rows per backward pass (bench_attribution: 64 was fastest on the demo)
    // Called after each backward pass with rows done and total; returning false cancels (throws
    // cs::Error "cancelled").
    std::function<bool(long done, long total)> progress;
};

// The unpruned graph. Layers without a transcoder in `transcoders` keep their whole MLP output
// as error nodes. Throws cs::Error on a transcoder that does not read ln2.hook_normalized and
// write hook_mlp_out of one layer, two for one layer, or bad tokens.
AttributionGraph computeAttribution(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const AttributionOptions& options = {});

}  // namespace cs
