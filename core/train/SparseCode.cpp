#include "train/SparseCode.h"

namespace cs {

SparseCode topKCode(const at::Tensor& xin, const at::Tensor& wEnc, const at::Tensor& bEnc, const at::Tensor& wDec,
                    const at::Tensor& bDec, long k) {
    const long n = xin.size(0);
    SparseCode c;
    {
        at::NoGradGuard ng;
        c.features = std::get<1>(at::addmm(bEnc, xin, wEnc).topk(k, -1));
    }
    // The selected pre-activations from their k encoder columns: [n, k, d_in] x [n, d_in, 1].
    at::Tensor cols = at::embedding(wEnc.t(), c.features);
    at::Tensor pre = at::bmm(cols, xin.unsqueeze(2)).squeeze(2) + at::embedding(bEnc.unsqueeze(1), c.features).squeeze(2);
    c.act = at::relu(pre);
    // sum_j act[i, j] * wDec[features[i, j]]: one bag of k rows per token.
    at::Tensor offsets = at::arange(0, n * k, k, at::kLong);
    c.recon = std::get<0>(at::embedding_bag(wDec, c.features.reshape({-1}), offsets, false, 0, false, c.act.reshape({-1}))) + bDec;
    return c;
}

SparseCode batchTopKCode(const at::Tensor& xin, const at::Tensor& wEnc, const at::Tensor& bEnc, const at::Tensor& wDec,
                         const at::Tensor& bDec, long k) {
    const long n = xin.size(0), dSae = wEnc.size(1);
    SparseCode c;
    at::Tensor offsets;
    {
        at::NoGradGuard ng;
        at::Tensor pre = at::relu(at::addmm(bEnc, xin, wEnc));
        // Sorted by flat index, i.e. by token, so that each token's features form one bag.
        at::Tensor flat = std::get<1>(pre.reshape({-1}).topk(n * k, -1, true, false));
        flat = std::get<0>(flat.sort());
        c.rows = flat.div(dSae, "floor");
        c.features = flat.remainder(dSae);
        at::Tensor counts = at::bincount(c.rows, {}, n);
        offsets = counts.cumsum(0) - counts;
    }
    c.act = at::relu((at::embedding(wEnc.t(), c.features) * xin.index_select(0, c.rows)).sum(-1) +
                     bEnc.index_select(0, c.features));
    c.recon = std::get<0>(at::embedding_bag(wDec, c.features, offsets, false, 0, false, c.act)) + bDec;
    return c;
}

}  // namespace cs
