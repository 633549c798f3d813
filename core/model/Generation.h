#pragma once
// Autoregressive generation on top of Transformer::forward, with the same hooks active, so
// steering and analysis see generated tokens exactly as they see the prompt.
#include "model/Transformer.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace cs {

struct SamplingOptions {
    int maxNewTokens = 32;
    bool greedy = true;
    double temperature = 1.0;
    int topK = 0;        // 0: no limit
    double topP = 1.0;   // nucleus mass
    uint64_t seed = 0;
    bool stopAtEos = true;
    bool useKvCache = true;
};

// Chooses the next token from a logits row [vocab] (greedy or sampled). Exposed for tests.
long chooseToken(const at::Tensor& logitsRow, const SamplingOptions& s, uint64_t& rngState);

// Generates up to maxNewTokens after `prompt` (stops early at EOS or the context end).
// `onToken` is called with each new token; returning false stops (cancel). `beforeForward`, when
// given, sees each forward's input tokens [1, pos] and the absolute position of their first one
// just before the model runs them (conditional steering runs a side pass on the same tokens).
using BeforeForward = std::function<void(const at::Tensor& tokens, long positionOffset)>;
std::vector<long> generate(const Transformer& model, const std::vector<long>& prompt,
                           const SamplingOptions& s, const Hooks* hooks = nullptr,
                           const std::function<bool(long)>& onToken = {},
                           const BeforeForward& beforeForward = {});

}  // namespace cs
