#include "diff/ModelDiff.h"

#include "model/Transformer.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "util/Error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

namespace cs {

namespace {

template <typename T>
void sameField(const char* field, const T& a, const T& b) {
    if (a == b) return;
    std::string va, vb;
    if constexpr (std::is_same_v<T, std::string>) {
        va = a;
        vb = b;
    } else if constexpr (std::is_same_v<T, bool>) {
        va = a ? "true" : "false";
        vb = b ? "true" : "false";
    } else {
        va = std::to_string(a);
        vb = std::to_string(b);
    }
    throw Error(std::string("model-b: ") + field + " is " + vb + ", model A has " + va +
                " (a diff needs two checkpoints of one architecture)");
}

// Sums over every token of one SAE's features on one model: what FeatureShift's mean, max and
// firing rate are made of.
struct FeatureTally {
    at::Tensor sum;    // [d_sae] float64
    at::Tensor max;    // [d_sae]
    at::Tensor fired;  // [d_sae] float64: tokens with activation > 0
    void add(const at::Tensor& f) {  // f: [T, d_sae]
        const at::Tensor s = f.to(at::kDouble).sum(0), m = std::get<0>(f.max(0)),
                         n = f.gt(0).to(at::kDouble).sum(0);
        if (!sum.defined()) {
            sum = s;
            max = m;
            fired = n;
        } else {
            sum += s;
            max = at::maximum(max, m);
            fired += n;
        }
    }
};

// The activation an SAE reads, as [T, d_in] float32 (heads flattened for hook_z and the like).
at::Tensor saeInput(const ActivationCache& cache, const std::string& hook) {
    const at::Tensor x = cache.at(hook)[0];
    return x.reshape({x.size(0), -1}).to(at::kFloat);
}

}  // namespace

void checkSameArchitecture(const Transformer& a, const Transformer& b) {
    const ModelConfig &x = a.config(), &y = b.config();
    sameField("model_type", x.modelType, y.modelType);
    sameField("n_layers", x.nLayers, y.nLayers);
    sameField("d_model", x.dModel, y.dModel);
    sameField("n_heads", x.nHeads, y.nHeads);
    sameField("n_kv_heads", x.nKvHeads, y.nKvHeads);
    sameField("d_head", x.dHead, y.dHead);
    sameField("d_mlp", x.dMlp, y.dMlp);
    sameField("vocab_size", x.vocabSize, y.vocabSize);
    sameField("n_ctx", x.nCtx, y.nCtx);
    sameField("activation", std::string(actName(x.act)), std::string(actName(y.act)));
    sameField("norm", static_cast<int>(x.norm), static_cast<int>(y.norm));
    sameField("positions", static_cast<int>(x.pos), static_cast<int>(y.pos));
    sameField("gated_mlp", x.mlp == MlpKind::Gated, y.mlp == MlpKind::Gated);
}

ModelDiff diffModels(const Transformer& a, const Transformer& b, const DiffRequest& request) {
    checkSameArchitecture(a, b);
    const ModelConfig& cfg = a.config();
    for (const auto& s : request.saes) {
        if (!s.sae) throw Error("diff: SAE " + s.id + " is not loaded");
        const long width = hookWidth(a, s.sae->config().hookName, s.sae->config().source);
        if (width != s.sae->dIn())
            throw Error(s.sae->config().source + ": d_in is " + std::to_string(s.sae->dIn()) + " but " +
                        s.sae->config().hookName + " has width " + std::to_string(width));
    }
    c10::InferenceMode guard;

    Hooks hooks;
    for (int l = 0; l < cfg.nLayers; ++l) hooks.cache("blocks." + std::to_string(l) + ".hook_resid_post");
    for (const auto& s : request.saes) hooks.cache(s.sae->config().hookName);

    ModelDiff out;
    std::vector<double> cosSum(cfg.nLayers, 0.0), ratioSum(cfg.nLayers, 0.0);
    std::vector<FeatureTally> tallyA(request.saes.size()), tallyB(request.saes.size());
    double klSum = 0;
    const int total = static_cast<int>(request.sequences.size());
    for (int si = 0; si < total; ++si) {
        const std::vector<int>& ids = request.sequences[si];
        const long T = static_cast<long>(ids.size());
        if (T == 0) throw Error("diff: sequence " + std::to_string(si) + " is empty");
        if (T > cfg.nCtx)
            throw Error("diff: sequence " + std::to_string(si) + " has " + std::to_string(T) +
                        " tokens; the model's context is " + std::to_string(cfg.nCtx));
        const at::Tensor input = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
        ActivationCache cacheA, cacheB;
        RunOptions oa, ob;
        oa.hooks = ob.hooks = &hooks;
        oa.cache = &cacheA;
        ob.cache = &cacheB;
        const at::Tensor logitsA = a.forward(input, oa)[0].to(at::kFloat);  // [T, vocab]
        const at::Tensor logitsB = b.forward(input, ob)[0].to(at::kFloat);

        // KL(P_A || P_B) = sum_v p_A(v) (log p_A(v) - log p_B(v)), per position.
        const at::Tensor lpA = at::log_softmax(logitsA, -1), lpB = at::log_softmax(logitsB, -1);
        const at::Tensor kl = (lpA.exp() * (lpA - lpB)).sum(-1).clamp_min(0).contiguous();  // [T]
        const float* k = kl.data_ptr<float>();
        std::vector<TokenKl> row(static_cast<size_t>(T));
        for (long t = 0; t < T; ++t) {
            row[t] = {ids[t], k[t]};
            klSum += k[t];
            out.maxKl = std::max(out.maxKl, static_cast<double>(k[t]));
        }
        out.tokens.push_back(std::move(row));
        out.tokenCount += T;

        for (int l = 0; l < cfg.nLayers; ++l) {
            const std::string name = "blocks." + std::to_string(l) + ".hook_resid_post";
            const at::Tensor ra = cacheA.at(name)[0].to(at::kDouble), rb = cacheB.at(name)[0].to(at::kDouble);  // [T, d]
            const at::Tensor na = ra.norm(2, -1), nb = rb.norm(2, -1);
            // A zero vector has no direction: it counts as cosine 1 with itself (BOS rows never are).
            cosSum[l] += ((ra * rb).sum(-1) / (na * nb).clamp_min(1e-30)).sum().item<double>();
            ratioSum[l] += (nb / na.clamp_min(1e-30)).sum().item<double>();
        }
        for (size_t i = 0; i < request.saes.size(); ++i) {
            const Sae& sae = *request.saes[i].sae;
            tallyA[i].add(sae.encode(saeInput(cacheA, sae.config().hookName)));
            tallyB[i].add(sae.encode(saeInput(cacheB, sae.config().hookName)));
        }
        if (request.progress && !request.progress(si + 1, total)) throw Error("cancelled");
    }

    const double n = static_cast<double>(std::max<long>(1, out.tokenCount));
    out.meanKl = klSum / n;
    for (int l = 0; l < cfg.nLayers; ++l)
        out.layers.push_back({l, static_cast<float>(cosSum[l] / n), static_cast<float>(ratioSum[l] / n)});

    if (out.tokenCount > 0) {
        std::vector<FeatureShift> all;
        for (size_t i = 0; i < request.saes.size(); ++i) {
            const FeatureTally &ta = tallyA[i], &tb = tallyB[i];
            const at::Tensor sa = ta.sum.contiguous(), sb = tb.sum.contiguous(), ma = ta.max.contiguous(),
                             mb = tb.max.contiguous(), fa = ta.fired.contiguous(), fb = tb.fired.contiguous();
            const double *psa = sa.data_ptr<double>(), *psb = sb.data_ptr<double>(), *pfa = fa.data_ptr<double>(),
                         *pfb = fb.data_ptr<double>();
            const float *pma = ma.data_ptr<float>(), *pmb = mb.data_ptr<float>();
            for (long f = 0; f < sa.numel(); ++f) {
                if (psa[f] == 0 && psb[f] == 0) continue;  // silent on both: nothing moved
                all.push_back({request.saes[i].id, f, psa[f] / n, psb[f] / n, pma[f], pmb[f], pfa[f] / n, pfb[f] / n});
            }
        }
        auto shift = [](const FeatureShift& s) { return std::abs(s.meanB - s.meanA); };
        const size_t keep = std::min(all.size(), static_cast<size_t>(std::max(0, request.topFeatures)));
        std::partial_sort(all.begin(), all.begin() + static_cast<long>(keep), all.end(),
                          [&](const FeatureShift& x, const FeatureShift& y) {
                              const double dx = shift(x), dy = shift(y);
                              if (dx != dy) return dx > dy;
                              return x.saeId != y.saeId ? x.saeId < y.saeId : x.index < y.index;
                          });
        all.resize(keep);
        out.features = std::move(all);
    }
    return out;
}

}  // namespace cs
