#pragma once
// A sparse autoencoder or transcoder, held in SAELens orientation whatever file it came from.
//
// Maths (SAELens inference classes; Gemma Scope and Llama Scope reduce to the same forms):
//   x' = x - b_dec if applyBDecToInput (never for transcoders), else x
//   standard:  f = relu(x' W_enc + b_enc)
//   jumprelu:  f = relu(pre) * (pre > threshold),  pre = x' W_enc + b_enc
//              (equals pre * (pre > threshold) whenever threshold >= 0, as in every released file)
//   topk:      keep the k largest entries of pre, relu them, zero the rest
//   gated:     f = (x' W_enc + b_gate > 0) * relu(x' (W_enc * exp(r_mag)) + b_mag)
//   decode:    f W_dec + b_dec;  skip transcoders add x W_skip (x: the raw input activation)
#include "sae/SaeConfig.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace cs {

struct SaeWeights {
    at::Tensor W_enc;      // [d_in, d_sae]
    at::Tensor W_dec;      // [d_sae, d_out]  (rows are feature directions)
    at::Tensor b_enc;      // [d_sae]   (not gated)
    at::Tensor b_dec;      // [d_out]
    at::Tensor threshold;  // [d_sae]   (jumprelu, jumprelu_transcoder)
    at::Tensor b_gate, b_mag, r_mag;  // [d_sae] (gated)
    at::Tensor W_skip;     // [d_in, d_out] (skip_transcoder; SAELens stores it [d_out, d_in])
};

class Sae {
public:
    // Checks every tensor the architecture needs against d_in/d_sae/d_out and for NaN/Inf, then
    // folds an "expected_average_only_in" scale into the weights. Throws cs::Error naming
    // cfg.source and the tensor or field at fault.
    Sae(SaeConfig cfg, SaeWeights w);

    const SaeConfig& config() const { return cfg_; }
    const SaeWeights& weights() const { return w_; }
    long dIn() const { return cfg_.dIn; }
    long dSae() const { return cfg_.dSae; }
    long dOut() const { return cfg_.dOut; }

    // x [..., d_in] -> features [..., d_sae] (float32).
    at::Tensor encode(const at::Tensor& x) const;
    // encode(x) for x [rows, d_in], keeping only the non-zero features of each row (CSR): what
    // a consumer that reads a handful of active features per token (the feature indexer) needs,
    // without building and rescanning the dense [rows, d_sae] result. TopK never builds it;
    // other architectures encode densely and gather the non-zeros on all compute threads.
    struct SparseCode {
        std::vector<int64_t> rowStart;  // rows + 1 offsets into index/value
        std::vector<int32_t> index;     // feature, ascending within a row
        std::vector<float> value;       // > 0
    };
    SparseCode encodeSparse(const at::Tensor& x) const;
    // features [..., d_sae] -> [..., d_out]: f W_dec + b_dec. No skip term (it needs the input).
    at::Tensor decode(const at::Tensor& f) const;
    // The skip connection's contribution x W_skip [..., d_out]; undefined for other architectures.
    at::Tensor skip(const at::Tensor& x) const;
    // decode(encode(x)) plus the skip term where there is one: the SAE's estimate of the activation
    // at the output hook (for SAEs, x itself).
    at::Tensor reconstruct(const at::Tensor& x) const;

    // Rescales so that every decoder row has unit norm, moving the norm into the encoder (W_enc
    // columns, b_enc, threshold, b_gate, b_mag) so that encode's features change by exactly that
    // factor and reconstructions do not change. Rows with zero norm are left alone. TopK refuses:
    // rescaling the pre-activations would change which k features win.
    void foldDecoderNorm();

    // log10 firing frequency per feature (sparsity.safetensors), or undefined.
    at::Tensor sparsity;

private:
    // The non-zero entries of f [rows, d_sae] (above `threshold[j]` too, when given), as CSR.
    SparseCode sparseRows(const at::Tensor& f, const float* threshold = nullptr) const;
    void check() const;
    void foldInputNormalisation();

    SaeConfig cfg_;
    SaeWeights w_;
    at::Tensor wMag_;  // gated: W_enc * exp(r_mag), kept so encode does not rebuild it per call
};

}  // namespace cs
