#pragma once
// Training data for SAEs and transcoders: windows of the model's context cut at random from a
// token stream, run through the model, with the activations at an input and an output hook
// flattened to [n, d] without the BOS positions (attention-sink outliers that would dominate the
// reconstruction loss). Internal to core/train.
#include "model/Transformer.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace cs {

struct ActivationSource {
    const Transformer& model;
    std::vector<int32_t> stream;
    std::string in, out;
    int bosId;
    long ctx;
    std::mt19937_64 rng;

    // Token ids [starts.size(), ctx] of the windows that begin at `starts`.
    at::Tensor idsAt(const std::vector<long>& starts) const;
    // Random window starts covering at least nTokens.
    std::vector<long> randomStarts(long nTokens);
    // Activations at `in` and `out` of the windows at `starts`.
    std::pair<at::Tensor, at::Tensor> windows(const std::vector<long>& starts) const;
    std::pair<at::Tensor, at::Tensor> sample(long nTokens) { return windows(randomStarts(nTokens)); }
};

}  // namespace cs
