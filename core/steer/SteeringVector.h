#pragma once
// Steering directions that are not SAE features: read from a file, or made from two prompts as
// the mean difference of their activations at a hook (ActAdd, Turner et al. 2023; CAA, Rimsky et
// al. 2024, average such differences over many pairs).
#include "model/Transformer.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace cs {

// A [d] (or [1, d]) float vector from a .npy file, or from a .safetensors file (the tensor named
// `tensorName`, or its only tensor when empty). Errors name the file, the tensor and the shapes.
at::Tensor loadSteeringVector(const std::string& path, const std::string& tensorName = "");

// mean_t act_A[t] - mean_t act_B[t] at `hook` (flattened after pos), each mean over the prompt's
// positions from `skipFirst` on (1 skips a BOS, whose activation is the same in both and an
// outlier in most models). Throws cs::Error on an unknown hook or too short a prompt.
at::Tensor meanDifferenceVector(const Transformer& model, const std::vector<long>& promptA,
                                const std::vector<long>& promptB, const std::string& hook, long skipFirst = 1);

}  // namespace cs
