#include "patching/PatchMetric.h"

#include <ATen/ATen.h>

namespace cs {

MetricScorer::MetricScorer(PatchMetric metric, int answerId, int wrongId, const at::Tensor& cleanLogits)
    : metric_(metric), answer_(answerId), wrong_(wrongId) {
    if (metric_ == PatchMetric::KL) cleanLogProbs_ = at::log_softmax(cleanLogits.to(at::kDouble), -1);
}

std::vector<double> MetricScorer::operator()(const at::Tensor& logits) const {
    const at::Tensor l = logits.to(at::kDouble);
    at::Tensor m;
    switch (metric_) {
    case PatchMetric::LogitDiff: m = l.select(1, answer_) - l.select(1, wrong_); break;
    case PatchMetric::Probability: m = at::softmax(l, -1).select(1, answer_); break;
    case PatchMetric::KL: {
        const at::Tensor logP = at::log_softmax(l, -1);
        m = (cleanLogProbs_.exp() * (cleanLogProbs_ - logP)).sum(-1);
        break;
    }
    }
    m = m.contiguous();
    return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
}

}  // namespace cs
