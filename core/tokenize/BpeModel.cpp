#include "tokenize/BpeModel.h"

#include "tokenize/ByteLevel.h"
#include "tokenize/Utf8.h"
#include "util/Error.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

namespace cs {
namespace {

constexpr size_t kMaxCachedWord = 256;
constexpr size_t kMaxCacheEntries = 1 << 18;

}  // namespace

void BpeModel::reserve(size_t pieces, size_t merges) {
    pieces_.reserve(pieces);
    ids_.reserve(pieces);
    merges_.reserve(merges);
}

void BpeModel::addPiece(const std::string& file, const std::string& piece, long id) {
    if (id < 0 || id >= (1L << 24))
        failIn(file, "id " + std::to_string(id) + " of piece '" + utf8::forMessage(piece) +
                         "' is out of range");
    if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(id + 1);
    if (pieces_[id].empty()) pieces_[id] = piece;
    ids_[piece] = static_cast<int>(id);
}

bool BpeModel::splitMerge(const std::string& line, std::string* a, std::string* b) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string::npos)
        return false;
    a->assign(line, 0, sp);
    b->assign(line, sp + 1, std::string::npos);
    return true;
}

bool BpeModel::addMerge(const std::string& a, const std::string& b, int rank,
                        std::string* missing) {
    mergedScratch_.assign(a).append(b);
    const int left = idOf(a), right = idOf(b), merged = idOf(mergedScratch_);
    if (left < 0 || right < 0 || merged < 0) {
        *missing = left < 0    ? "piece '" + utf8::forMessage(a) + "'"
                   : right < 0 ? "piece '" + utf8::forMessage(b) + "'"
                               : "merged piece '" + utf8::forMessage(mergedScratch_) + "'";
        return false;
    }
    merges_.insert(left, right, {rank, merged});
    return true;
}

void BpeModel::finish() {
    byteIds_.fill(-1);
    fallbackIds_.fill(-1);
    asciiIds_.fill(-1);
    char name[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        fallbackIds_[b] = idOf(name);
        if (options_.byteLevel)
            byteIds_[b] = idOf(byte_level::charOf(static_cast<unsigned char>(b)));
    }
    if (options_.byteLevel) {
        if (options_.ignoreMerges) {
            std::string bytes;
            for (size_t id = 0; id < pieces_.size(); ++id)
                if (!pieces_[id].empty() && byte_level::bytesOf(pieces_[id], &bytes))
                    idsByBytes_.emplace(bytes, static_cast<int>(id));
        }
        return;
    }
    for (const auto& [piece, id] : ids_) {
        uint32_t cp = 0;
        if (piece.empty() || utf8::scan(piece, 0, &cp) != static_cast<int>(piece.size())) continue;
        if (cp < 128)
            asciiIds_[cp] = id;
        else
            charIds_[cp] = id;
    }
}

const std::string& BpeModel::piece(int id) const {
    static const std::string none;
    return id >= 0 && id < size() ? pieces_[id] : none;
}

int BpeModel::idOf(const std::string& piece) const {
    auto it = ids_.find(piece);
    return it == ids_.end() ? -1 : it->second;
}

void BpeModel::encodeWord(std::string_view word, std::vector<int>& out) const {
    if (word.empty()) return;
    if (options_.byteLevel && word.size() == 1) {  // a lone byte: no merge, no cache needed
        const int id = byteIds_[static_cast<unsigned char>(word[0])];
        if (id >= 0) return out.push_back(id);
    }
    if (options_.ignoreMerges) {
        if (options_.byteLevel) {
            auto it = idsByBytes_.find(std::string(word));
            if (it != idsByBytes_.end()) return out.push_back(it->second);
        } else if (const int id = idOf(std::string(word)); id >= 0) {
            return out.push_back(id);
        }
    }
    const bool cacheable = word.size() <= kMaxCachedWord;
    std::string key;
    if (cacheable) {
        key.assign(word.data(), word.size());
        std::shared_lock<std::shared_mutex> lock(cacheMutex_);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int> ids;
    initialSymbols(word, ids);
    merge(ids);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
        std::unique_lock<std::shared_mutex> lock(cacheMutex_);
        if (cache_.size() >= kMaxCacheEntries) cache_.clear();
        cache_.emplace(std::move(key), std::move(ids));
    }
}

// One symbol per byte (byte-level) or per character. A unit with no piece becomes its <0xXX>
// pieces (byte fallback, when all exist), else unk (runs of them fused on request), else nothing.
// As in Hugging Face, a pending unk is written only when the next known unit comes (or at the
// end), after any byte-fallback pieces in between.
void BpeModel::initialSymbols(std::string_view word, std::vector<int>& ids) const {
    ids.reserve(word.size());
    int pendingUnk = -1;
    for (size_t i = 0; i < word.size();) {
        size_t len = 1;
        int id = -1;
        const auto c = static_cast<unsigned char>(word[i]);
        if (options_.byteLevel) {
            id = byteIds_[c];
        } else if (c < 0x80) {
            id = asciiIds_[c];
        } else {
            uint32_t cp = 0;
            const int k = utf8::scan(word, i, &cp);
            if (k > 0) {
                len = k;
                auto it = charIds_.find(cp);
                if (it != charIds_.end()) id = it->second;
            }  // a stray byte is a unit of its own that no piece spells
        }
        const std::string_view unit = word.substr(i, len);
        i += len;
        if (id >= 0) {
            if (pendingUnk >= 0) ids.push_back(pendingUnk), pendingUnk = -1;
            ids.push_back(id);
            continue;
        }
        if (options_.byteFallback && std::all_of(unit.begin(), unit.end(), [&](char b) {
                return fallbackIds_[static_cast<unsigned char>(b)] >= 0;
            })) {
            for (char b : unit) ids.push_back(fallbackIds_[static_cast<unsigned char>(b)]);
            continue;
        }
        if (unkId_ < 0) continue;
        if (pendingUnk >= 0 && !options_.fuseUnk) ids.push_back(pendingUnk);
        pendingUnk = unkId_;
    }
    if (pendingUnk >= 0) ids.push_back(pendingUnk);
}

// A heap of candidate pairs ordered by (rank, position) over a linked list of symbols, so that
// nothing is quadratic in the word's length. Stale candidates are recognised and dropped.
void BpeModel::merge(std::vector<int>& ids) const {
    struct Sym {
        int id, prev, next;
    };
    struct Cand {
        int rank, pos, left, right, merged;
    };
    const int n = static_cast<int>(ids.size());
    if (n < 2) return;
    std::vector<Sym> syms(n);
    for (int i = 0; i < n; ++i) syms[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1};
    auto later = [](const Cand& a, const Cand& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    std::vector<Cand> heap, batch;
    auto consider = [&](int pos) {
        const int next = syms[pos].next;
        if (next < 0) return;
        const PairTable::Merge* m = merges_.find(syms[pos].id, syms[next].id);
        if (!m) return;
        heap.push_back({m->rank, pos, syms[pos].id, syms[next].id, m->merged});
        std::push_heap(heap.begin(), heap.end(), later);
    };
    // Whether c still describes the pair at its position: Hugging Face asks that the pair there
    // still merge into the same piece; OpenAI's batches ask for the very same two symbols.
    auto current = [&](const Cand& c) {
        const Sym& a = syms[c.pos];
        if (a.id < 0 || a.next < 0) return false;
        const Sym& b = syms[a.next];
        if (options_.order == MergeOrder::RankByRank) return a.id == c.left && b.id == c.right;
        const PairTable::Merge* m = merges_.find(a.id, b.id);
        return m && m->merged == c.merged;
    };
    auto apply = [&](const Cand& c) {
        Sym& a = syms[c.pos];
        const int dead = a.next;
        a.id = c.merged;
        a.next = syms[dead].next;
        if (a.next >= 0) syms[a.next].prev = c.pos;
        syms[dead].id = -1;
        if (a.prev >= 0) consider(a.prev);
        consider(c.pos);
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
        if (options_.order == MergeOrder::LowestFirst) {
            std::pop_heap(heap.begin(), heap.end(), later);
            const Cand c = heap.back();
            heap.pop_back();
            if (current(c)) apply(c);
            continue;
        }
        // One rank as a batch, so that merges it creates wait for the next round.
        const int rank = heap.front().rank;
        batch.clear();
        while (!heap.empty() && heap.front().rank == rank) {
            std::pop_heap(heap.begin(), heap.end(), later);
            batch.push_back(heap.back());
            heap.pop_back();
        }
        for (const Cand& c : batch)  // ascending position: left to right
            if (current(c)) apply(c);
    }
    ids.clear();
    for (int i = 0; i >= 0; i = syms[i].next) ids.push_back(syms[i].id);
}

}  // namespace cs
