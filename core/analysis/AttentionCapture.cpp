#include "analysis/AttentionCapture.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace cs {

namespace {

// Thumbnails need no more cells than they have pixels.
constexpr int kSummaryMaxSide = 80;
// A recomputed row may differ from the model's by float rounding only (another matrix-product
// blocking); a different formula differs by far more.
constexpr double kRecomputeTolerance = 1e-5;

// Max over bins [i*T/side, (i+1)*T/side) of the last dimension.
at::Tensor maxPoolLast(const at::Tensor& x, int side) {
    const long T = x.size(-1);
    if (T == side) return x;
    std::vector<at::Tensor> bins;
    bins.reserve(static_cast<size_t>(side));
    for (int i = 0; i < side; ++i) {
        const long a = i * T / side, b = (i + 1) * T / side;
        bins.push_back(std::get<0>(x.narrow(-1, a, b - a).max(-1, true)));
    }
    return at::cat(bins, -1);
}

// [H, T, T] -> [H, side, side]: queries pooled down, keys across.
at::Tensor summarize(const at::Tensor& pattern, int side) {
    at::Tensor keys = maxPoolLast(pattern, side);                              // [H, T, side]
    return maxPoolLast(keys.transpose(1, 2), side).transpose(1, 2).contiguous();  // [H, side, side]
}

}  // namespace

AttentionCapture::AttentionCapture(const ModelConfig& cfg, long length, bool holdAll)
    : cfg_(cfg), impl_(std::make_unique<AttentionPatterns::Impl>()) {
    impl_->recipe = AttentionRecipe::of(cfg);
    impl_->T = static_cast<int>(length);
    impl_->side = static_cast<int>(std::min<long>(length, kSummaryMaxSide));
    impl_->holdsAll = holdAll;
    impl_->patterns.resize(static_cast<size_t>(cfg.nLayers));
    impl_->q.resize(static_cast<size_t>(cfg.nLayers));
    impl_->k.resize(static_cast<size_t>(cfg.nLayers));
    impl_->summaries = at::empty({cfg.nLayers, cfg.nHeads, impl_->side, impl_->side}, at::kFloat);
}

AttentionCapture::~AttentionCapture() = default;

void AttentionCapture::install(Hooks& hooks) {
    const bool rotary = cfg_.pos == PosKind::Rotary;
    for (int l = 0; l < cfg_.nLayers; ++l) {
        const BlockHookNames names(l);
        if (!impl_->holdsAll) {
            // [1, T, heads, d_head] -> [heads, T, d_head]: one head's rows contiguous.
            hooks.add(rotary ? names.rotQ : names.q, [this, l](at::Tensor& q, const HookContext&) {
                impl_->q[l] = q[0].transpose(0, 1).contiguous();
            });
            hooks.add(rotary ? names.rotK : names.k, [this, l](at::Tensor& k, const HookContext&) {
                impl_->k[l] = k[0].transpose(0, 1).contiguous();
            });
        }
        hooks.add(names.pattern, [this, l](at::Tensor& p, const HookContext&) { onPattern(l, p); });
    }
}

void AttentionCapture::onPattern(int l, const at::Tensor& pattern) {
    at::Tensor p = pattern[0].contiguous();  // [H, T, T]
    impl_->summaries[l].copy_(summarize(p, impl_->side));
    bool keep = impl_->holdsAll || !impl_->q[l].defined() || !impl_->k[l].defined();
    if (!keep) {
        // Two rows recomputed from the kept queries and keys must match what the model computed.
        const long T = impl_->T;
        const at::Tensor rows = at::tensor(std::vector<int64_t>{T - 1, (T - 1) / 2}, at::kLong);
        const int group = impl_->recipe.heads / impl_->recipe.kvHeads;
        const at::Tensor kvOf = at::arange(impl_->recipe.heads, at::kLong).div(group, "floor");
        const at::Tensor mine = impl_->recipe.patternRows(l, impl_->q[l].index_select(1, rows),
                                                          impl_->k[l].index_select(0, kvOf), rows);
        const double diff = (mine - p.index_select(1, rows)).abs().max().item<double>();
        keep = !(diff <= kRecomputeTolerance);  // NaN counts as a disagreement
    }
    if (keep) {
        impl_->patterns[l] = p;
        impl_->q[l] = at::Tensor();
        impl_->k[l] = at::Tensor();
    }
}

std::shared_ptr<const AttentionPatterns> AttentionCapture::finish() {
    return std::make_shared<const AttentionPatterns>(std::move(impl_));
}

}  // namespace cs
