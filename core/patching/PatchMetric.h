#pragma once
// The metric activation patching scores each run with, read from the last position's logits and
// computed in float64: the logit difference between two tokens, one token's probability, or the
// KL divergence KL(P_clean || P_run) in nats (P_clean: the clean run's next-token distribution).
#include "patching/ActivationPatching.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace cs {

class MetricScorer {
public:
    // cleanLogits [1, vocab]: the clean run's last-position logits (read by KL only).
    MetricScorer(PatchMetric metric, int answerId, int wrongId, const at::Tensor& cleanLogits);
    // logits [batch, vocab] -> one value per row.
    std::vector<double> operator()(const at::Tensor& logits) const;

private:
    PatchMetric metric_;
    int answer_, wrong_;
    at::Tensor cleanLogProbs_;  // [1, vocab] float64 (KL)
};

}  // namespace cs
