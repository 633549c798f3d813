#pragma once
// The attention patterns of one analysed sequence. Every head's T x T pattern costs
// layers x heads x T^2 floats (600 MB for GPT-2 small at 1024 tokens), so they are all kept only
// while that fits a budget (AnalysisOptions::attentionHoldBytes). Past it the analysis keeps each
// layer's queries and keys instead (T x (heads + kv heads) x d_head per layer) and a head's
// pattern is computed when someone asks for it (T^2 x d_head; milliseconds), holding only the
// last one asked for. A small max-pooled summary of every head (thumbnails) is kept either way.
//
// Thread-safe: what is kept never changes after the analysis; the one head held on demand is
// swapped under a lock, and a HeadPattern keeps its own storage alive.
#include <memory>
#include <utility>
#include <vector>

namespace cs {

// One head's pattern, [query][key] row-major, T x T; shares the storage it was read from.
class HeadPattern {
public:
    HeadPattern() = default;
    HeadPattern(std::shared_ptr<const void> owner, const float* data, int length)
        : owner_(std::move(owner)), data_(data), length_(length) {}
    explicit operator bool() const { return data_ != nullptr; }
    int length() const { return length_; }
    const float* data() const { return data_; }
    const float* row(int query) const { return data_ + static_cast<size_t>(query) * length_; }
    float weight(int query, int key) const { return row(query)[key]; }
    bool sameStorage(const HeadPattern& o) const { return data_ == o.data_; }

private:
    std::shared_ptr<const void> owner_;
    const float* data_ = nullptr;
    int length_ = 0;
};

class AttentionPatterns {
public:
    struct Impl;  // AttentionCapture.h: made by the analysis during its forward pass
    explicit AttentionPatterns(std::unique_ptr<Impl> impl);
    ~AttentionPatterns();
    AttentionPatterns(const AttentionPatterns&) = delete;
    AttentionPatterns& operator=(const AttentionPatterns&) = delete;

    int layers() const;
    int heads() const;
    int length() const;
    // Every head's pattern is kept (the sequence was short enough); else heads come on demand.
    bool holdsAll() const;
    // The pattern if it is at hand without computing; empty otherwise.
    HeadPattern held(int layer, int head) const;
    // The pattern, computed from the kept queries and keys when not held (blocking, any thread;
    // the result replaces the one head held on demand).
    HeadPattern head(int layer, int head) const;
    // The (layer, head) pairs whose full pattern is held now.
    std::vector<std::pair<int, int>> heldHeads() const;
    // Every head's pattern max-pooled to side x side (side = min(T, 80)): cell (y, x) is the
    // largest weight of queries [y*T/side, (y+1)*T/side) and keys [x*T/side, (x+1)*T/side).
    int summarySide() const;
    const float* summary(int layer, int head) const;  // [y][x], side x side
    // Bytes held: patterns, queries and keys, summaries.
    size_t heldBytes() const;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace cs
