#pragma once
// Attaching an SAE or transcoder to a model run through its hook points: read features at the
// SAE's hook and, when splicing, replace the activation by the SAE's reconstruction (transcoders:
// read at the input hook, replace at the output hook).
#include "model/Transformer.h"
#include "sae/Sae.h"

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace cs {

struct AttachOptions {
    bool splice = false;    // replace the activation by the reconstruction
    // When splicing, add back (original - reconstruction) so the run is unchanged while gradients
    // and interventions go through the features (the error term is detached).
    bool keepError = true;
    // When splicing, positions left as they are (bool [batch, pos], true = keep the original;
    // undefined = splice everywhere). SAEs trained without the BOS position (an attention sink
    // whose outlier norm the dictionary never saw) are evaluated this way, as SAEBench does with
    // exclude_special_tokens_from_reconstruction. With a KV cache the mask covers the whole
    // sequence and each step reads its own columns.
    at::Tensor keep;
};

// Receives the features [batch, pos, d_sae] of every run; with a KV cache (positionOffset > 0)
// each step's features are appended along pos, so it holds the whole sequence.
struct FeatureSink {
    at::Tensor features;
    void accept(const at::Tensor& f, long positionOffset);
    void clear() { features = at::Tensor(); }
};

// The width an SAE must have to read `hook` (the product of the axes after batch and pos: d_model
// for the residual stream and attn/mlp outputs, d_mlp for mlp.hook_pre/post, heads * d_head for
// hook_q/k/v/z). Throws cs::Error naming `saePath` and the hook when the model has no such hook
// or it has no feature axis (attention patterns).
long hookWidth(const Transformer& model, const std::string& hook, const std::string& saePath);

// Checks the hook names and widths, then registers the hook functions. `sink` may be null and
// must outlive the runs. Throws cs::Error naming the SAE's path, the hook and both widths.
void attachSae(Hooks& hooks, const Transformer& model, std::shared_ptr<Sae> sae, const AttachOptions& opt,
               FeatureSink* sink);

}  // namespace cs
