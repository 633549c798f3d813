#include "tokenize/PairTable.h"

namespace cs {

void PairTable::reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;  // at most half full
    if (capacity > keys_.size()) grow(capacity);
}

void PairTable::grow(size_t capacity) {
    std::vector<uint64_t> keys(capacity, kEmpty);
    std::vector<Merge> values(capacity);
    keys_.swap(keys);
    values_.swap(values);
    mask_ = capacity - 1;
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1) --shift_;
    count_ = 0;
    for (size_t i = 0; i < keys.size(); ++i)
        if (keys[i] != kEmpty)
            insert(static_cast<int>(keys[i] >> 32), static_cast<int>(keys[i] & 0xFFFFFFFFu),
                   values[i]);
}

void PairTable::insert(int left, int right, Merge m) {
    if ((count_ + 1) * 2 > keys_.size()) grow(keys_.empty() ? 16 : keys_.size() * 2);
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
        if (keys_[i] == key) {
            values_[i] = m;
            return;
        }
        if (keys_[i] == kEmpty) {
            keys_[i] = key;
            values_[i] = m;
            ++count_;
            return;
        }
    }
}

}  // namespace cs
