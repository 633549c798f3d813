#pragma once
// A BPE vocabulary and its merges, turning one pre-tokenized word into ids. Shared by GPT-2's
// vocab.json + merges.txt and every tokenizer.json: over bytes (byte-level BPE: GPT-2, Llama 3,
// Qwen) or over Unicode characters with byte fallback (SentencePiece-style: Gemma, Llama 2).
#include "tokenize/PairTable.h"

#include <array>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cs {

class BpeModel {
public:
    enum class MergeOrder {
        // OpenAI's GPT-2 encoder: every occurrence of the best-ranked pair, left to right, then
        // the pairs again.
        RankByRank,
        // Hugging Face: one merge at a time, the lowest (rank, position) among the current
        // pairs, so a pair a merge creates can go before other occurrences of that merge. The two
        // agree when every merge's parts come from earlier merges; converted files (Gemma's)
        // break that rule.
        LowestFirst,
    };
    struct Options {
        bool byteLevel = false;     // words are raw bytes, symbols the vocabulary's byte characters
        bool ignoreMerges = false;  // a word that is itself a piece is that piece
        bool byteFallback = false;  // a character not in the vocabulary becomes <0xXX> pieces
        bool fuseUnk = false;       // consecutive unknown characters become one unk
        MergeOrder order = MergeOrder::LowestFirst;
    };

    explicit BpeModel(const Options& options) : options_(options) {}

    // Room for this many pieces and merges, so that reading a large file does not rehash.
    void reserve(size_t pieces, size_t merges);

    // Throws cs::Error naming `file` on an id out of range.
    void addPiece(const std::string& file, const std::string& piece, long id);
    // False, with *missing saying which piece ("piece 'x'", "merged piece 'xy'") when a part or
    // the result is not in the vocabulary. A repeated pair takes its last rank, as a map built
    // from the list does in both references.
    bool addMerge(const std::string& a, const std::string& b, int rank, std::string* missing);
    // A merge written "a b" (merges.txt, older tokenizer.json): false unless it is exactly two
    // non-empty pieces around one space.
    static bool splitMerge(const std::string& line, std::string* a, std::string* b);
    void setUnknown(int id) { unkId_ = id; }
    // Builds the lookup tables; call once, after the last piece and merge.
    void finish();

    // Appends the ids of one word (bytes for byte-level BPE, UTF-8 otherwise).
    void encodeWord(std::string_view word, std::vector<int>& out) const;

    int size() const { return static_cast<int>(pieces_.size()); }
    // "" for an id no piece has.
    const std::string& piece(int id) const;
    int idOf(const std::string& piece) const;
    const Options& options() const { return options_; }

private:
    void initialSymbols(std::string_view word, std::vector<int>& ids) const;
    void merge(std::vector<int>& ids) const;

    Options options_;
    int unkId_ = -1;
    std::vector<std::string> pieces_;  // id -> piece ("" for unused ids)
    std::unordered_map<std::string, int> ids_;
    PairTable merges_;
    std::array<int, 256> byteIds_{};                   // byte-level: byte -> id of its character
    std::array<int, 256> fallbackIds_{};               // byte -> id of <0xXX>
    std::array<int, 128> asciiIds_{};                  // character-level: ASCII character -> id
    std::unordered_map<uint32_t, int> charIds_;        // character-level: other characters -> id
    std::unordered_map<std::string, int> idsByBytes_;  // byte-level + ignore_merges: bytes -> id

    // Words repeat a lot in real text; BPE on each is the expensive part.
    mutable std::shared_mutex cacheMutex_;
    mutable std::unordered_map<std::string, std::vector<int>> cache_;
    std::string mergedScratch_;  // addMerge's a + b, kept to save an allocation per merge
};

}  // namespace cs
