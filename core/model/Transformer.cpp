#include "model/Transformer.h"

#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <optional>

namespace cs {

namespace {

inline void fire(const RunOptions& o, const std::string& name, int layer, long offset, at::Tensor& t) {
    if (o.hooks && o.hooks->wants(name)) o.hooks->fire(name, layer, offset, t, o.cache);
}

inline bool wanted(const RunOptions& o, const std::string& name) {
    return o.hooks && o.hooks->wants(name);
}

// x2d @ w (+ b), x2d [n, in], w [in, out]. With bf16 weights the activations are rounded to bf16
// for the product only: oneDNN accumulates in fp32 and reads half the bytes, which is what
// bounds decoding. Everything between the matmuls stays fp32.
inline at::Tensor project(const at::Tensor& x2d, const at::Tensor& w, const at::Tensor& b) {
    if (w.scalar_type() != x2d.scalar_type()) {
        at::Tensor y = at::mm(x2d.to(w.scalar_type()), w).to(x2d.scalar_type());
        return b.defined() ? y + b : y;
    }
    return b.defined() ? at::addmm(b, x2d, w) : at::mm(x2d, w);
}

at::Tensor activate(ActKind a, const at::Tensor& x) {
    switch (a) {
        case ActKind::GeluTanh: return at::gelu(x, "tanh");
        case ActKind::GeluExact: return at::gelu(x);
        case ActKind::Silu: return at::silu(x);
        case ActKind::Relu: return at::relu(x);
    }
    return x;
}

// rope_scaling applied to RoPE's inverse frequencies, as Hugging Face's rope utilities do.
at::Tensor scaleInverseFrequencies(const at::Tensor& invFreq, const RopeScaling& r) {
    switch (r.kind) {
        case RopeScalingKind::None: return invFreq;
        case RopeScalingKind::Linear: return invFreq / r.factor;  // the same as positions / factor
        case RopeScalingKind::Llama3: {
            // Short wavelengths (local order) keep their frequency, long ones are stretched by
            // `factor`, and those in between are interpolated smoothly in 1/wavelength.
            const at::Tensor wavelen = 2 * M_PI / invFreq;
            const double keptBelow = r.originalContext / r.highFreqFactor;
            const double stretchedAbove = r.originalContext / r.lowFreqFactor;
            const at::Tensor smooth =
                (r.originalContext / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
            const at::Tensor between = (1 - smooth) * invFreq / r.factor + smooth * invFreq;
            return at::where(wavelen < keptBelow, invFreq,
                             at::where(wavelen > stretchedAbove, invFreq / r.factor, between));
        }
    }
    return invFreq;
}

}  // namespace

Transformer::Transformer(ModelConfig cfg, ModelWeights w) : cfg_(std::move(cfg)), w_(std::move(w)) {
    for (int l = 0; l < cfg_.nLayers; ++l) names_.emplace_back(l);
    hookPoints_ = hookPointsFor(cfg_);
    attnScale_ = 1.0 / std::sqrt(cfg_.queryPreAttnScalar > 0 ? cfg_.queryPreAttnScalar : static_cast<double>(cfg_.dHead));
    if (cfg_.pos == PosKind::Rotary) {
        // Not inference mode: an autograd copy (autogradCopy) must be able to save these.
        at::NoGradGuard guard;
        const long half = cfg_.dHead / 2;
        at::Tensor invFreq = 1.0 / at::pow(cfg_.ropeTheta,
                                           at::arange(0, 2 * half, 2, at::kDouble) / static_cast<double>(cfg_.dHead));
        invFreq = scaleInverseFrequencies(invFreq, cfg_.ropeScaling);
        at::Tensor pos = at::arange(cfg_.nCtx, at::kDouble);
        at::Tensor ang = at::outer(pos, invFreq);
        at::Tensor emb = at::cat({ang, ang}, -1);
        ropeCos_ = emb.cos().to(at::kFloat);
        ropeSin_ = emb.sin().to(at::kFloat);
    }
}

KvCache Transformer::makeKvCache(long batch, long capacity) const {
    KvCache c;
    c.capacity = std::min<long>(capacity, cfg_.nCtx);
    for (int l = 0; l < cfg_.nLayers; ++l) {
        c.k.push_back(at::empty({batch, cfg_.nKvHeads, c.capacity, cfg_.dHead}, at::kFloat));
        c.v.push_back(at::empty({batch, cfg_.nKvHeads, c.capacity, cfg_.dHead}, at::kFloat));
    }
    return c;
}

void Transformer::checkHookNames(const Hooks& hooks) const {
    for (const auto& n : hooks.names()) {
        bool found = false;
        for (const auto& hp : hookPoints_)
            if (hp.name == n) {
                found = true;
                break;
            }
        if (!found) throw Error("hook '" + n + "' does not exist in this " + cfg_.modelType +
                                " model (see `circuitscope hooks --model DIR`)");
    }
}

at::Tensor Transformer::norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                             const std::string& scaleName, const std::string& normName, int layer,
                             const RunOptions& o, long offset) const {
    const bool rms = cfg_.norm == NormKind::RMSNorm;
    if (!wanted(o, scaleName)) {
        at::Tensor y;
        if (rms) {
            y = x * at::rsqrt(x.pow(2).mean(-1, true) + cfg_.normEps) * w;
        } else {
            y = at::layer_norm(x, {cfg_.dModel}, w, b, cfg_.normEps);
        }
        fire(o, normName, layer, offset, y);
        return y;
    }
    at::Tensor centred = rms ? x : x - x.mean(-1, true);
    at::Tensor scale = at::sqrt(centred.pow(2).mean(-1, true) + cfg_.normEps);
    fire(o, scaleName, layer, offset, scale);
    at::Tensor y = centred / scale * w;
    if (b.defined()) y = y + b;
    fire(o, normName, layer, offset, y);
    return y;
}

at::Tensor Transformer::applyRope(const at::Tensor& x, long offset) const {
    const long T = x.size(1);
    // [pos, d_head] -> [1, pos, 1, d_head]
    at::Tensor cos = ropeCos_.narrow(0, offset, T).unsqueeze(0).unsqueeze(2);
    at::Tensor sin = ropeSin_.narrow(0, offset, T).unsqueeze(0).unsqueeze(2);
    const long half = cfg_.dHead / 2;
    at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    at::Tensor rotated = at::cat({-x2, x1}, -1);
    return x * cos + rotated * sin;
}

at::Tensor Transformer::attentionMask(int layer, long T, long Tk, long offset) const {
    const long window = cfg_.windowOf(layer);
    // One query at the end of the keys sees all of them, unless the window cuts the oldest off.
    if (T == 1 && (window == 0 || Tk <= window)) return at::Tensor();
    const at::Tensor all = at::ones({T, Tk}, at::kBool);
    at::Tensor mask = all.triu(offset + 1);                    // keys j > offset + i
    if (window > 0) mask.logical_or_(all.tril(offset - window));  // keys j <= offset + i - window
    return mask;
}

at::Tensor Transformer::softcapLogits(const at::Tensor& logits) const {
    if (cfg_.finalSoftcap <= 0) return logits;
    return at::tanh(logits / cfg_.finalSoftcap) * cfg_.finalSoftcap;
}

at::Tensor Transformer::block(int l, const at::Tensor& xIn, const RunOptions& o, long offset) const {
    const BlockWeights& bw = w_.blocks[l];
    const BlockHookNames& n = names_[l];
    const long B = xIn.size(0), T = xIn.size(1), d = cfg_.dModel;
    const long H = cfg_.nHeads, Hkv = cfg_.nKvHeads, dh = cfg_.dHead, G = H / Hkv;

    at::Tensor x = xIn;
    fire(o, n.residPre, l, offset, x);

    // --- attention ---
    at::Tensor h = norm(x, bw.ln1W, bw.ln1B, n.ln1Scale, n.ln1Norm, l, o, offset);
    at::Tensor h2 = h.reshape({B * T, d});
    at::Tensor q, k, v;
    if (bw.wQkv.defined()) {
        at::Tensor qkv = project(h2, bw.wQkv, bw.bQkv);
        q = qkv.narrow(1, 0, H * dh);
        k = qkv.narrow(1, H * dh, Hkv * dh);
        v = qkv.narrow(1, (H + Hkv) * dh, Hkv * dh);
    } else {
        q = project(h2, bw.wQ, bw.bQ);
        k = project(h2, bw.wK, bw.bK);
        v = project(h2, bw.wV, bw.bV);
    }
    q = q.view({B, T, H, dh});
    k = k.view({B, T, Hkv, dh});
    v = v.view({B, T, Hkv, dh});
    fire(o, n.q, l, offset, q);
    fire(o, n.k, l, offset, k);
    fire(o, n.v, l, offset, v);
    if (cfg_.pos == PosKind::Rotary) {
        q = applyRope(q, offset);
        k = applyRope(k, offset);
        fire(o, n.rotQ, l, offset, q);
        fire(o, n.rotK, l, offset, k);
    }

    // Keys/values as [B, Hkv, Tk, dh]; with a cache they are the cached prefix plus this chunk.
    at::Tensor kh = k.transpose(1, 2), vh = v.transpose(1, 2);
    long Tk = T;
    if (o.kv) {
        o.kv->k[l].narrow(2, offset, T).copy_(kh);
        o.kv->v[l].narrow(2, offset, T).copy_(vh);
        Tk = offset + T;
        kh = o.kv->k[l].narrow(2, 0, Tk);
        vh = o.kv->v[l].narrow(2, 0, Tk);
    }
    // Grouped-query attention without copying keys: query heads of one group share a kv head.
    at::Tensor qg = q.permute({0, 2, 1, 3}).reshape({B, Hkv, G * T, dh});
    at::Tensor scores = at::matmul(qg, kh.transpose(2, 3)).view({B, H, T, Tk});
    scores.mul_(attnScale_);
    if (cfg_.attnSoftcap > 0) scores = at::tanh(scores / cfg_.attnSoftcap) * cfg_.attnSoftcap;
    if (const at::Tensor mask = attentionMask(l, T, Tk, offset); mask.defined())
        scores.masked_fill_(mask, -std::numeric_limits<float>::infinity());
    fire(o, n.scores, l, offset, scores);
    at::Tensor pattern = at::softmax(scores, -1);
    fire(o, n.pattern, l, offset, pattern);
    at::Tensor z = at::matmul(pattern.reshape({B, Hkv, G * T, Tk}), vh)  // [B, Hkv, G*T, dh]
                       .view({B, H, T, dh})
                       .permute({0, 2, 1, 3});                          // [B, T, H, dh]
    fire(o, n.z, l, offset, z);
    at::Tensor attnOut = project(z.reshape({B * T, H * dh}), bw.wO, bw.bO).view({B, T, d});
    if (cfg_.postNorms) attnOut = norm(attnOut, bw.ln1PostW, at::Tensor(), n.ln1PostScale, n.ln1PostNorm, l, o, offset);
    fire(o, n.attnOut, l, offset, attnOut);
    x = x + attnOut;
    fire(o, n.residMid, l, offset, x);

    // --- MLP ---
    h = norm(x, bw.ln2W, bw.ln2B, n.ln2Scale, n.ln2Norm, l, o, offset);
    h2 = h.reshape({B * T, d});
    at::Tensor pre = project(h2, cfg_.mlp == MlpKind::Gated ? bw.wGate : bw.wUp,
                             cfg_.mlp == MlpKind::Gated ? at::Tensor() : bw.bUp)
                         .view({B, T, cfg_.dMlp});
    fire(o, n.mlpPre, l, offset, pre);
    at::Tensor post;
    if (cfg_.mlp == MlpKind::Gated) {
        at::Tensor lin = project(h2, bw.wUp, bw.bUp).view({B, T, cfg_.dMlp});
        fire(o, n.mlpPreLinear, l, offset, lin);
        post = activate(cfg_.act, pre) * lin;
    } else {
        post = activate(cfg_.act, pre);
    }
    fire(o, n.mlpPost, l, offset, post);
    at::Tensor mlpOut = project(post.reshape({B * T, cfg_.dMlp}), bw.wDown, bw.bDown).view({B, T, d});
    if (cfg_.postNorms) mlpOut = norm(mlpOut, bw.ln2PostW, at::Tensor(), n.ln2PostScale, n.ln2PostNorm, l, o, offset);
    fire(o, n.mlpOut, l, offset, mlpOut);
    x = x + mlpOut;
    fire(o, n.residPost, l, offset, x);
    return x;
}

std::unique_ptr<Transformer> autogradCopy(const Transformer& model) {
    c10::InferenceMode off(false);  // clones made in inference mode would be inference tensors
    // fp32 whatever the model holds: gradients through bf16 matmuls would round every partial
    // derivative of an attribution graph to 8 bits of mantissa.
    auto copy = [](const at::Tensor& t) { return t.defined() ? t.to(at::kFloat, false, true) : t; };
    const ModelWeights& w = model.weights();
    ModelWeights c;
    c.tokEmbed = copy(w.tokEmbed);
    c.posEmbed = copy(w.posEmbed);
    c.finalNormW = copy(w.finalNormW);
    c.finalNormB = copy(w.finalNormB);
    c.unembed = copy(w.unembed);
    for (const BlockWeights& b : w.blocks) {
        BlockWeights d;
        for (auto [to, from] : {std::pair{&d.ln1W, &b.ln1W}, {&d.ln1B, &b.ln1B}, {&d.ln2W, &b.ln2W}, {&d.ln2B, &b.ln2B},
                                {&d.wQkv, &b.wQkv}, {&d.bQkv, &b.bQkv}, {&d.wQ, &b.wQ}, {&d.wK, &b.wK}, {&d.wV, &b.wV},
                                {&d.bQ, &b.bQ}, {&d.bK, &b.bK}, {&d.bV, &b.bV}, {&d.wO, &b.wO}, {&d.bO, &b.bO},
                                {&d.wUp, &b.wUp}, {&d.bUp, &b.bUp}, {&d.wGate, &b.wGate}, {&d.wDown, &b.wDown},
                                {&d.bDown, &b.bDown}, {&d.ln1PostW, &b.ln1PostW}, {&d.ln2PostW, &b.ln2PostW}})
            *to = copy(*from);
        c.blocks.push_back(std::move(d));
    }
    ModelConfig cfg = model.config();
    cfg.weightDtype = "f32";
    cfg.weightBytes = 0;
    return std::make_unique<Transformer>(std::move(cfg), std::move(c));
}

at::Tensor Transformer::finalNorm(const at::Tensor& resid) const {
    c10::InferenceMode guard;
    const RunOptions none;
    return norm(resid, w_.finalNormW, w_.finalNormB, "ln_final.hook_scale", "ln_final.hook_normalized", -1, none, 0);
}

at::Tensor Transformer::logitsFromResidual(const at::Tensor& resid) const {
    return softcapLogits(unembedNormed(finalNorm(resid)));
}

at::Tensor Transformer::unembedNormed(const at::Tensor& x) const {
    c10::InferenceMode guard;
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = cfg_.vocabSize;
    return project(x.reshape({-1, cfg_.dModel}), w_.unembed, at::Tensor()).view(shape);
}

at::Tensor Transformer::forward(const at::Tensor& tokens, const RunOptions& o) const {
    std::optional<c10::InferenceMode> inference;
    if (!o.withGrad) inference.emplace();
    if (tokens.dim() != 2) throw Error("tokens must be [batch, pos]");
    const long B = tokens.size(0), T = tokens.size(1);
    if (B == 0 || T == 0) throw Error("empty input: no tokens to run");
    const long offset = o.kv ? o.kv->length : 0;
    if (offset + T > cfg_.nCtx)
        throw Error("sequence of " + std::to_string(offset + T) + " tokens is longer than the model's context of " +
                    std::to_string(cfg_.nCtx) + " (n_ctx / max_position_embeddings)");
    if (o.kv && (offset + T > o.kv->capacity || o.kv->k.empty() || o.kv->k[0].size(0) != B))
        throw Error("KV cache too small or made for another batch size");
    at::Tensor ids = tokens.to(at::kLong);
    const long lo = ids.min().item<long>(), hi = ids.max().item<long>();
    if (lo < 0 || hi >= cfg_.vocabSize)
        throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is out of range for a vocabulary of " +
                    std::to_string(cfg_.vocabSize));
    if (o.hooks) checkHookNames(*o.hooks);

    at::Tensor x = at::embedding(w_.tokEmbed, ids).to(at::kFloat);
    if (cfg_.embedScale != 1.0) x = x * cfg_.embedScale;
    fire(o, "hook_embed", -1, offset, x);
    if (cfg_.pos == PosKind::Learned) {
        at::Tensor pe = w_.posEmbed.narrow(0, offset, T).unsqueeze(0).expand({B, T, cfg_.dModel});
        fire(o, "hook_pos_embed", -1, offset, pe);
        x = x + pe;
    }
    for (int l = 0; l < cfg_.nLayers; ++l) {
        x = block(l, x, o, offset);
        if (o.lastLayer == l) {
            if (o.kv) o.kv->length = offset + T;  // only layers 0..lastLayer of the cache are filled
            return at::Tensor();
        }
    }
    x = norm(x, w_.finalNormW, w_.finalNormB, "ln_final.hook_scale", "ln_final.hook_normalized", -1, o, offset);
    if (o.lastPositionOnly && T > 1) x = x.narrow(1, T - 1, 1);
    const long Tout = x.size(1);
    at::Tensor logits = project(x.reshape({B * Tout, cfg_.dModel}), w_.unembed, at::Tensor()).view({B, Tout, cfg_.vocabSize});
    if (o.kv) o.kv->length = offset + T;
    return softcapLogits(logits);
}

}  // namespace cs
