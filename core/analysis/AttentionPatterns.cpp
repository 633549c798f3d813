#include "analysis/AttentionPatterns.h"

#include "analysis/AttentionCapture.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>

namespace cs {

AttentionRecipe AttentionRecipe::of(const ModelConfig& cfg) {
    AttentionRecipe r;
    r.layers = cfg.nLayers;
    r.heads = cfg.nHeads;
    r.kvHeads = cfg.nKvHeads > 0 ? cfg.nKvHeads : cfg.nHeads;
    r.dHead = cfg.dHead;
    r.scale = 1.0 / std::sqrt(cfg.queryPreAttnScalar > 0 ? cfg.queryPreAttnScalar : static_cast<double>(cfg.dHead));
    r.softcap = cfg.attnSoftcap;
    for (int l = 0; l < cfg.nLayers; ++l) r.windows.push_back(cfg.windowOf(l));
    return r;
}

at::Tensor AttentionRecipe::patternRows(int layer, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& queryPositions) const {
    // In the order the model applies them: product, scale, soft-cap, mask, softmax.
    at::Tensor scores = at::bmm(q, k.transpose(1, 2));  // [h, n, T]
    scores.mul_(scale);
    if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
    const long T = k.size(1);
    const at::Tensor i = queryPositions.view({-1, 1});
    const at::Tensor j = at::arange(T, at::kLong).view({1, -1});
    at::Tensor hidden = j > i;
    const int window = layer < static_cast<int>(windows.size()) ? windows[layer] : 0;
    if (window > 0) hidden = hidden.logical_or((i - j) >= window);
    scores.masked_fill_(hidden, -std::numeric_limits<float>::infinity());
    return at::softmax(scores, -1);
}

HeadPattern AttentionPatterns::Impl::compute(int layer, int head) const {
    c10::InferenceMode guard;
    const int group = recipe.heads / recipe.kvHeads;
    at::Tensor qh = q[layer].narrow(0, head, 1);           // [1, T, dh]
    at::Tensor kh = k[layer].narrow(0, head / group, 1);  // [1, T, dh]
    at::Tensor p = recipe.patternRows(layer, qh, kh, at::arange(T, at::kLong))[0].contiguous();  // [T, T]
    const float* data = p.data_ptr<float>();
    return HeadPattern(std::make_shared<const at::Tensor>(std::move(p)), data, T);
}

AttentionPatterns::AttentionPatterns(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AttentionPatterns::~AttentionPatterns() = default;

int AttentionPatterns::layers() const { return impl_->recipe.layers; }
int AttentionPatterns::heads() const { return impl_->recipe.heads; }
int AttentionPatterns::length() const { return impl_->T; }
bool AttentionPatterns::holdsAll() const { return impl_->holdsAll; }
int AttentionPatterns::summarySide() const { return impl_->side; }

HeadPattern AttentionPatterns::held(int layer, int head) const {
    if (layer < 0 || layer >= layers() || head < 0 || head >= heads())
        throw Error("attention head L" + std::to_string(layer) + "H" + std::to_string(head) + " does not exist");
    if (const at::Tensor& p = impl_->patterns[layer]; p.defined()) {
        const float* data = p.data_ptr<float>() + static_cast<size_t>(head) * impl_->T * impl_->T;
        return HeadPattern(std::make_shared<const at::Tensor>(p), data, impl_->T);
    }
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->lastLayer == layer && impl_->lastHead == head ? impl_->last : HeadPattern();
}

HeadPattern AttentionPatterns::head(int layer, int head) const {
    if (HeadPattern p = held(layer, head)) return p;
    HeadPattern p = impl_->compute(layer, head);  // outside the lock: a reader of the held head need not wait
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->lastLayer = layer;
    impl_->lastHead = head;
    impl_->last = p;
    return p;
}

std::vector<std::pair<int, int>> AttentionPatterns::heldHeads() const {
    std::vector<std::pair<int, int>> out;
    for (int l = 0; l < layers(); ++l)
        if (impl_->patterns[l].defined())
            for (int h = 0; h < heads(); ++h) out.emplace_back(l, h);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->last) out.emplace_back(impl_->lastLayer, impl_->lastHead);
    return out;
}

const float* AttentionPatterns::summary(int layer, int head) const {
    const size_t cell = static_cast<size_t>(impl_->side) * impl_->side;
    return impl_->summaries.data_ptr<float>() + (static_cast<size_t>(layer) * heads() + head) * cell;
}

size_t AttentionPatterns::heldBytes() const {
    size_t floats = static_cast<size_t>(impl_->summaries.numel());
    for (const auto* list : {&impl_->patterns, &impl_->q, &impl_->k})
        for (const at::Tensor& t : *list)
            if (t.defined()) floats += static_cast<size_t>(t.numel());
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->last) floats += static_cast<size_t>(impl_->T) * impl_->T;
    return floats * sizeof(float);
}

}  // namespace cs
