#pragma once

#include <ATen/ATen.h>

namespace cs {

// TopK and BatchTopK reconstructions whose backward pass touches only the selected features.
// Which features a token uses is decided without autograd (a dense pre-activation product, then
// top-k); only the selected pre-activations are recomputed from their encoder columns, and the
// code is decoded as a weighted bag of decoder rows. The gradients equal those of the dense
// formulation (mask the dense code, multiply by the whole decoder), which
// tests/test_train.cpp checks; the dense one multiplies [n, d_sae] matrices in the backward pass.
struct SparseCode {
    at::Tensor recon;     // [n, d_out], with b_dec added
    at::Tensor features;  // selected feature indices: [n, k] (TopK) or [m] (BatchTopK, by row)
    at::Tensor rows;      // BatchTopK: the token of each selected feature; undefined for TopK
    at::Tensor act;       // relu'd activations of the selected features, same shape as features
};

// xin: [n, d_in] encoder input (b_dec already subtracted for an SAE); wEnc [d_in, d_sae];
// bEnc [d_sae]; wDec [d_sae, d_out]; bDec [d_out].
SparseCode topKCode(const at::Tensor& xin, const at::Tensor& wEnc, const at::Tensor& bEnc, const at::Tensor& wDec,
                    const at::Tensor& bDec, long k);

// BatchTopK (Bussmann et al. 2024): the k * n largest activations of the whole batch, so a token
// may use more or fewer than k features.
SparseCode batchTopKCode(const at::Tensor& xin, const at::Tensor& wEnc, const at::Tensor& bEnc, const at::Tensor& wDec,
                         const at::Tensor& bDec, long k);

}  // namespace cs
