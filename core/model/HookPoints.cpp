#include "model/HookPoints.h"

#include <ATen/ATen.h>

namespace cs {

std::vector<std::string> Hooks::names() const {
    std::vector<std::string> out(cached_.begin(), cached_.end());
    for (const auto& [n, f] : fns_) out.push_back(n);
    return out;
}

void Hooks::fire(const std::string& name, int layer, long positionOffset, at::Tensor& t,
                 ActivationCache* out) const {
    auto it = fns_.find(name);
    if (it != fns_.end()) {
        HookContext ctx{name, layer, positionOffset};
        for (const auto& fn : it->second) fn(t, ctx);
    }
    if (out && (cacheAll_ || cached_.count(name))) {
        // With a KV cache the same point fires once per step: append along "pos" so the cache
        // holds the whole sequence, as a single forward would.
        auto c = out->find(name);
        const bool posAxisIsLast = name.find("hook_pattern") != std::string::npos ||
                                   name.find("hook_attn_scores") != std::string::npos;
        if (c == out->end() || positionOffset == 0) {
            (*out)[name] = t.detach().clone();
        } else if (!posAxisIsLast) {
            c->second = at::cat({c->second, t.detach()}, 1);
        } else {
            // [batch, head, q, k]: k grows too; pad earlier rows with zeros (they were masked).
            at::Tensor prev = c->second;
            const long newK = t.size(3);
            at::Tensor padded = at::zeros({prev.size(0), prev.size(1), prev.size(2), newK}, prev.options());
            padded.narrow(3, 0, prev.size(3)).copy_(prev);
            c->second = at::cat({padded, t.detach()}, 2);
        }
    }
}

BlockHookNames::BlockHookNames(int layer) {
    const std::string b = "blocks." + std::to_string(layer) + ".";
    residPre = b + "hook_resid_pre";
    ln1Scale = b + "ln1.hook_scale";
    ln1Norm = b + "ln1.hook_normalized";
    q = b + "attn.hook_q";
    k = b + "attn.hook_k";
    v = b + "attn.hook_v";
    rotQ = b + "attn.hook_rot_q";
    rotK = b + "attn.hook_rot_k";
    scores = b + "attn.hook_attn_scores";
    pattern = b + "attn.hook_pattern";
    z = b + "attn.hook_z";
    ln1PostScale = b + "ln1_post.hook_scale";
    ln1PostNorm = b + "ln1_post.hook_normalized";
    attnOut = b + "hook_attn_out";
    residMid = b + "hook_resid_mid";
    ln2Scale = b + "ln2.hook_scale";
    ln2Norm = b + "ln2.hook_normalized";
    mlpPre = b + "mlp.hook_pre";
    mlpPreLinear = b + "mlp.hook_pre_linear";
    mlpPost = b + "mlp.hook_post";
    ln2PostScale = b + "ln2_post.hook_scale";
    ln2PostNorm = b + "ln2_post.hook_normalized";
    mlpOut = b + "hook_mlp_out";
    residPost = b + "hook_resid_post";
}

std::vector<HookPointInfo> hookPointsFor(const ModelConfig& c) {
    const std::string d = std::to_string(c.dModel), m = std::to_string(c.dMlp),
                      h = std::to_string(c.nHeads), kv = std::to_string(c.nKvHeads),
                      dh = std::to_string(c.dHead);
    const std::string resid = "[batch, pos, " + d + "]";
    const std::string scale = "[batch, pos, 1]";
    std::vector<HookPointInfo> out;
    out.push_back({"hook_embed", resid});
    if (c.pos == PosKind::Learned) out.push_back({"hook_pos_embed", resid});
    for (int l = 0; l < c.nLayers; ++l) {
        BlockHookNames n(l);
        out.push_back({n.residPre, resid});
        out.push_back({n.ln1Scale, scale});
        out.push_back({n.ln1Norm, resid});
        out.push_back({n.q, "[batch, pos, " + h + ", " + dh + "]"});
        out.push_back({n.k, "[batch, pos, " + kv + ", " + dh + "]"});
        out.push_back({n.v, "[batch, pos, " + kv + ", " + dh + "]"});
        if (c.pos == PosKind::Rotary) {
            out.push_back({n.rotQ, "[batch, pos, " + h + ", " + dh + "]"});
            out.push_back({n.rotK, "[batch, pos, " + kv + ", " + dh + "]"});
        }
        out.push_back({n.scores, "[batch, " + h + ", query_pos, key_pos]"});
        out.push_back({n.pattern, "[batch, " + h + ", query_pos, key_pos]"});
        out.push_back({n.z, "[batch, pos, " + h + ", " + dh + "]"});
        if (c.postNorms) {
            out.push_back({n.ln1PostScale, scale});
            out.push_back({n.ln1PostNorm, resid});
        }
        out.push_back({n.attnOut, resid});
        out.push_back({n.residMid, resid});
        out.push_back({n.ln2Scale, scale});
        out.push_back({n.ln2Norm, resid});
        out.push_back({n.mlpPre, "[batch, pos, " + m + "]"});
        if (c.mlp == MlpKind::Gated) out.push_back({n.mlpPreLinear, "[batch, pos, " + m + "]"});
        out.push_back({n.mlpPost, "[batch, pos, " + m + "]"});
        if (c.postNorms) {
            out.push_back({n.ln2PostScale, scale});
            out.push_back({n.ln2PostNorm, resid});
        }
        out.push_back({n.mlpOut, resid});
        out.push_back({n.residPost, resid});
    }
    out.push_back({"ln_final.hook_scale", scale});
    out.push_back({"ln_final.hook_normalized", resid});
    return out;
}

}  // namespace cs
