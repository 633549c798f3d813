#pragma once
// The merges of a BPE vocabulary: (left id, right id) -> (rank, merged id). An open-addressing
// table, because this lookup is the inner loop of BPE and std::unordered_map's node per entry
// costs a cache miss each (Gemma's 515k merges: encoding got about twice as fast with this).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cs {

class PairTable {
public:
    struct Merge {
        int rank;
        int merged;
    };

    void reserve(size_t count);
    // A pair added twice keeps the later value. Ids must be below 2^31.
    void insert(int left, int right, Merge m);
    // Null when the pair has no merge.
    const Merge* find(int left, int right) const {
        if (keys_.empty()) return nullptr;
        const uint64_t key = pack(left, right);
        for (size_t i = slot(key);; i = (i + 1) & mask_) {
            if (keys_[i] == key) return &values_[i];
            if (keys_[i] == kEmpty) return nullptr;
        }
    }
    size_t size() const { return count_; }

private:
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    static uint64_t pack(int left, int right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
               static_cast<uint32_t>(right);
    }
    size_t slot(uint64_t key) const {
        return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void grow(size_t capacity);

    std::vector<uint64_t> keys_;
    std::vector<Merge> values_;
    size_t count_ = 0, mask_ = 0;
    int shift_ = 64;
};

}  // namespace cs
