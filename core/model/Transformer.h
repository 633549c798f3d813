#pragma once
// One decoder-only transformer runtime over LibTorch, shaped by a ModelConfig (GPT-2, Llama,
// Qwen 2, Gemma 2). Every internal activation passes through a named hook point, so caching,
// patching and steering use the same forward pass as plain inference.
#include "model/HookPoints.h"
#include "model/ModelConfig.h"

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace cs {

// Weight matrices are kept as [in, out] (a transposed view when the file stores [out, in]),
// so every projection is one x @ W with no copy of the checkpoint.
struct BlockWeights {
    at::Tensor ln1W, ln1B, ln2W, ln2B;
    at::Tensor wQkv, bQkv;           // fused (GPT-2), or empty
    at::Tensor wQ, wK, wV, bQ, bK, bV;  // separate (Llama), or empty
    at::Tensor wO, bO;
    at::Tensor wUp, bUp, wGate, wDown, bDown;
    at::Tensor ln1PostW, ln2PostW;  // norms on the attention / MLP output (Gemma 2), or empty
};

struct ModelWeights {
    at::Tensor tokEmbed;   // [vocab, d]
    at::Tensor posEmbed;   // [ctx, d] or empty
    at::Tensor finalNormW, finalNormB;
    at::Tensor unembed;    // [d, vocab] (a view of tokEmbed when tied)
    std::vector<BlockWeights> blocks;
};

// Keys and values of past positions, per layer [batch, kv_heads, capacity, d_head].
struct KvCache {
    std::vector<at::Tensor> k, v;
    long length = 0;
    long capacity = 0;
};

struct RunOptions {
    const Hooks* hooks = nullptr;
    ActivationCache* cache = nullptr;  // filled with the points `hooks` asks to cache
    KvCache* kv = nullptr;             // when set: tokens continue the cached sequence
    bool withGrad = false;             // keep autograd (attribution); default is inference mode
    // Unembed only the last position (generation needs no more): logits come back [batch, 1, vocab].
    // The LM head is the largest matmul of a small model, so this saves most of a prompt pass.
    bool lastPositionOnly = false;
    // Run blocks 0..lastLayer only and return an undefined tensor (no logits): collecting
    // activations at an early hook need not pay for the rest of the model. With a KV cache only
    // layers 0..lastLayer are filled, so every later call on that cache must stop there too.
    int lastLayer = -1;
};

class Transformer {
public:
    Transformer(ModelConfig cfg, ModelWeights w);

    const ModelConfig& config() const { return cfg_; }
    const ModelWeights& weights() const { return w_; }

    // tokens: [batch, pos] int64. Returns logits [batch, pos, vocab] (float32).
    // Throws cs::Error on ids out of range, an empty input, or a sequence past the context.
    at::Tensor forward(const at::Tensor& tokens, const RunOptions& opts = {}) const;

    // The final norm and the unembedding applied to residual-stream vectors [..., d_model], with
    // no hooks: the logit lens reads intermediate layers through exactly the model's own head.
    at::Tensor logitsFromResidual(const at::Tensor& resid) const;
    // The two halves of logitsFromResidual, for callers that keep the normed residual too:
    // logitsFromResidual(r) == softcapLogits(unembedNormed(finalNorm(r))).
    at::Tensor finalNorm(const at::Tensor& resid) const;
    at::Tensor unembedNormed(const at::Tensor& normed) const;
    // The final-logit soft-cap, cap * tanh(logits / cap) (Gemma 2's final_logit_softcapping);
    // the identity when the model has none. forward() applies it after the unembedding;
    // unembedNormed() does not, so a logit lens is softcapLogits(unembedNormed(finalNorm(r))).
    at::Tensor softcapLogits(const at::Tensor& logits) const;

    KvCache makeKvCache(long batch, long capacity) const;

    // Checks that every hook name in `hooks` exists in this model; throws naming the first that does not.
    void checkHookNames(const Hooks& hooks) const;
    const std::vector<HookPointInfo>& hookPoints() const { return hookPoints_; }

private:
    at::Tensor block(int layer, const at::Tensor& x, const RunOptions& o, long offset) const;
    at::Tensor norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                    const std::string& scaleName, const std::string& normName, int layer,
                    const RunOptions& o, long offset) const;
    at::Tensor applyRope(const at::Tensor& x, long offset) const;  // x: [batch, pos, heads, d_head]
    // What a query at absolute positions offset.. may not see among keys 0..Tk-1 ([T, Tk], true
    // = masked): later keys, and keys at or past the layer's sliding window.
    at::Tensor attentionMask(int layer, long T, long Tk, long offset) const;

    ModelConfig cfg_;
    ModelWeights w_;
    std::vector<BlockHookNames> names_;
    std::vector<HookPointInfo> hookPoints_;
    at::Tensor ropeCos_, ropeSin_;  // [ctx, d_head]
    double attnScale_ = 1.0;        // scores = q.k * attnScale_
};

// A copy whose weights are ordinary tensors. Loaded weights are inference tensors, which autograd
// cannot save for a backward pass; gradients with respect to activations (SAE fine-tuning through
// the rest of the model, attribution) run on such a copy. The weights themselves need no grad.
std::unique_ptr<Transformer> autogradCopy(const Transformer& model);

}  // namespace cs
