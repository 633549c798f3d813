#include "store/WeightFacts.h"

#include "model/Transformer.h"
#include "sae/Sae.h"
#include "tokenize/Tokenizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

namespace cs {

void logitEffects(const Transformer& model, const Tokenizer* tok, const Sae& sae, long feature, int k,
                  std::vector<LogitEffect>* positive, std::vector<LogitEffect>* negative) {
    positive->clear();
    negative->clear();
    if (sae.dOut() != model.config().dModel || feature < 0 || feature >= sae.dSae()) return;
    c10::InferenceMode guard;
    // In the unembedding's own dtype: converting a bf16 [d, vocab] matrix per click would cost more
    // than the product, and a ranking of logit effects does not need fp32.
    const at::Tensor& wU = model.weights().unembed;
    at::Tensor effect = at::matmul(sae.weights().W_dec[feature].to(wU.scalar_type()), wU).to(at::kFloat);  // [vocab]
    const long kk = std::min<long>(k, effect.numel());
    auto add = [&](const at::Tensor& values, const at::Tensor& ids, std::vector<LogitEffect>* out) {
        for (long i = 0; i < kk; ++i) {
            const int id = static_cast<int>(ids[i].item<long>());
            out->push_back({id, tok ? tok->tokenText(id) : "#" + std::to_string(id), values[i].item<float>()});
        }
    };
    auto top = effect.topk(kk, 0, true, true);
    add(std::get<0>(top), std::get<1>(top), positive);
    auto bottom = effect.topk(kk, 0, false, true);
    add(std::get<0>(bottom), std::get<1>(bottom), negative);
}

std::vector<FeatureLogits> allLogitEffects(const Transformer& model, const Sae& sae, int k) {
    std::vector<FeatureLogits> out;
    if (sae.dOut() != model.config().dModel) return out;
    c10::InferenceMode guard;
    const at::Tensor wU = model.weights().unembed.to(at::kFloat);  // [d, vocab]
    at::Tensor w = sae.weights().W_dec.to(at::kFloat);
    const long n = w.size(0);
    const long kk = std::min<long>(k, wU.size(1));
    out.resize(n);
    constexpr long kBlock = 256;
    for (long first = 0; first < n; first += kBlock) {
        const long rows = std::min(kBlock, n - first);
        at::Tensor effect = at::matmul(w.narrow(0, first, rows), wU);  // [rows, vocab]
        for (bool largest : {true, false}) {
            auto best = effect.topk(kk, 1, largest, true);
            at::Tensor vals = std::get<0>(best).contiguous();
            at::Tensor idx = std::get<1>(best).contiguous();
            const float* v = vals.data_ptr<float>();
            const int64_t* ix = idx.data_ptr<int64_t>();
            for (long r = 0; r < rows; ++r) {
                auto& dst = largest ? out[first + r].positive : out[first + r].negative;
                for (long j = 0; j < kk; ++j) dst.emplace_back(static_cast<int>(ix[r * kk + j]), v[r * kk + j]);
            }
        }
    }
    return out;
}

std::vector<std::vector<FeatureNeighbour>> decoderNeighbours(const Sae& sae, int k) {
    c10::InferenceMode guard;
    at::Tensor w = sae.weights().W_dec.to(at::kFloat);  // [d_sae, d_out]
    at::Tensor norms = w.norm(2, 1, true);
    at::Tensor unit = at::where(norms > 0, w / norms.clamp_min(1e-30), at::zeros_like(w));
    const long n = unit.size(0);
    const long kk = std::min<long>(k, n - 1);
    std::vector<std::vector<FeatureNeighbour>> out(n);
    if (kk <= 0) return out;
    constexpr long kBlock = 1024;
    for (long first = 0; first < n; first += kBlock) {
        const long rows = std::min(kBlock, n - first);
        at::Tensor cos = at::matmul(unit.narrow(0, first, rows), unit.t());  // [rows, n]
        cos.index_put_({at::arange(rows), at::arange(first, first + rows)}, -std::numeric_limits<float>::infinity());
        auto best = cos.topk(kk, 1, true, true);
        at::Tensor vals = std::get<0>(best).contiguous();
        at::Tensor idx = std::get<1>(best).contiguous();
        const float* v = vals.data_ptr<float>();
        const int64_t* ix = idx.data_ptr<int64_t>();
        for (long r = 0; r < rows; ++r) {
            auto& row = out[first + r];
            for (long j = 0; j < kk; ++j) row.push_back({ix[r * kk + j], v[r * kk + j]});
            // Equal cosines in index order (topk leaves their order open).
            std::stable_sort(row.begin(), row.end(), [](const FeatureNeighbour& a, const FeatureNeighbour& b) {
                return a.cosine != b.cosine ? a.cosine > b.cosine : a.index < b.index;
            });
        }
    }
    return out;
}

}  // namespace cs
