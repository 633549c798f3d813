#pragma once
// How an analysis fills AttentionPatterns from its one forward pass (core-internal: LibTorch
// types). Short sequences keep every pattern as the model made it; long ones keep each layer's
// queries and keys (after rotary embedding) and recompute a head on demand with the model's own
// score recipe (scale, soft-cap, causal mask, sliding window). During the forward pass two rows
// of every layer are recomputed and compared with the model's pattern; a layer that disagrees (an
// attention variant this recipe does not know) keeps its patterns whole, so what a view shows is
// always what the model computed.
#include "analysis/AttentionPatterns.h"
#include "model/HookPoints.h"
#include "model/ModelConfig.h"

#include <ATen/core/Tensor.h>

#include <mutex>
#include <string>
#include <vector>

namespace cs {

// The model's attention scores as a function of queries and keys.
struct AttentionRecipe {
    int layers = 0, heads = 0, kvHeads = 0, dHead = 0;
    double scale = 1;    // scores = q.k * scale
    double softcap = 0;  // scores = softcap * tanh(scores / softcap) before the mask; 0: none
    std::vector<int> windows;  // per layer: a query at i sees keys j > i - window; 0: every j <= i

    static AttentionRecipe of(const ModelConfig& cfg);
    // q [h, n, d_head] (the queries at positions `queryPositions`, [n] int64), k [h, T, d_head]
    // -> the pattern's rows [h, n, T].
    at::Tensor patternRows(int layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& queryPositions) const;
};

struct AttentionPatterns::Impl {
    AttentionRecipe recipe;
    int T = 0;
    int side = 0;  // of the summaries
    bool holdsAll = false;
    std::vector<at::Tensor> patterns;  // per layer [H, T, T] where held, else undefined
    std::vector<at::Tensor> q, k;      // per layer [H, T, d_head] and [kvHeads, T, d_head] where not held
    at::Tensor summaries;              // [L, H, side, side]

    mutable std::mutex mutex;
    mutable int lastLayer = -1, lastHead = -1;  // the one head held on demand
    mutable HeadPattern last;

    HeadPattern compute(int layer, int head) const;
};

class AttentionCapture {
public:
    // holdAll: keep every head's pattern; otherwise queries and keys (see above).
    AttentionCapture(const ModelConfig& cfg, long length, bool holdAll);
    ~AttentionCapture();
    // Reads each layer's queries, keys and pattern as the pass used them: install after any hook
    // that replaces them (steering). This object must outlive the forward pass.
    void install(Hooks& hooks);
    // After the forward pass.
    std::shared_ptr<const AttentionPatterns> finish();

private:
    void onPattern(int layer, const at::Tensor& pattern);  // [1, H, T, T]

    ModelConfig cfg_;
    std::unique_ptr<AttentionPatterns::Impl> impl_;
};

}  // namespace cs
