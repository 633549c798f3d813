#pragma once
// Named hook points, TransformerLens style. A hook can read an activation (cache it) or replace
// it; the runtime fires each point in forward order. Names: hook_embed, hook_pos_embed,
// blocks.L.hook_resid_pre, blocks.L.ln1.hook_scale, blocks.L.ln1.hook_normalized,
// blocks.L.attn.hook_q|k|v ([batch,pos,head,d_head]), blocks.L.attn.hook_rot_q|rot_k (rotary),
// blocks.L.attn.hook_attn_scores, blocks.L.attn.hook_pattern ([batch,head,q,k]),
// blocks.L.attn.hook_z, blocks.L.ln1_post.* (Gemma 2), blocks.L.hook_attn_out,
// blocks.L.hook_resid_mid, blocks.L.ln2.*, blocks.L.mlp.hook_pre, blocks.L.mlp.hook_pre_linear
// (gated MLPs), blocks.L.mlp.hook_post, blocks.L.ln2_post.* (Gemma 2), blocks.L.hook_mlp_out,
// blocks.L.hook_resid_post, ln_final.hook_scale, ln_final.hook_normalized.
// As in TransformerLens, with post-norms hook_attn_out and hook_mlp_out are the normed outputs
// (what is added to the residual stream). Unlike TransformerLens (whose hook_normalized is x /
// scale, the weight applied after it or folded into the next matrix), hook_normalized here is a
// norm's whole output, weight (and bias) applied: what the next layer actually reads.
#include "model/ModelConfig.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace cs {

struct HookContext {
    const std::string& name;
    int layer;             // -1 for hooks outside the blocks
    long positionOffset;   // absolute position of index 0 along "pos" (non-zero with a KV cache)
};

// The function may reassign `activation` to replace it (same shape).
using HookFn = std::function<void(at::Tensor& activation, const HookContext& ctx)>;

using ActivationCache = std::map<std::string, at::Tensor>;

class Hooks {
public:
    void add(const std::string& name, HookFn fn) { fns_[name].push_back(std::move(fn)); }
    void cache(const std::string& name) { cached_.insert(name); }
    void cacheAll(bool on = true) { cacheAll_ = on; }
    bool empty() const { return fns_.empty() && cached_.empty() && !cacheAll_; }
    bool wants(const std::string& name) const {
        return cacheAll_ || cached_.count(name) || fns_.count(name);
    }
    // Names registered that the model does not have (checked by the runtime before a run).
    std::vector<std::string> names() const;

    // Runs the functions for `name` in order, then stores the (possibly replaced) tensor in `out`.
    void fire(const std::string& name, int layer, long positionOffset, at::Tensor& t,
              ActivationCache* out) const;

private:
    std::unordered_map<std::string, std::vector<HookFn>> fns_;
    std::unordered_set<std::string> cached_;
    bool cacheAll_ = false;
};

struct HookPointInfo {
    std::string name;
    std::string shape;  // symbolic, e.g. "[batch, pos, 768]"
};

// Every hook point of a model, in the order a forward pass fires them.
std::vector<HookPointInfo> hookPointsFor(const ModelConfig& cfg);

// Names the runtime uses for a block, built once per model so hot paths do not format strings.
struct BlockHookNames {
    std::string residPre, ln1Scale, ln1Norm, q, k, v, rotQ, rotK, scores, pattern, z, ln1PostScale,
        ln1PostNorm, attnOut, residMid, ln2Scale, ln2Norm, mlpPre, mlpPreLinear, mlpPost, ln2PostScale,
        ln2PostNorm, mlpOut, residPost;
    explicit BlockHookNames(int layer);
};

}  // namespace cs
