#pragma once
// GPT-2 byte-level BPE. Byte-exact with OpenAI's original encoder (vocab.json + merges.txt) and
// with Hugging Face's BPE + ByteLevel tokenizer.json, whose added tokens are matched whole.
#include "tokenize/Tokenizer.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cs {

class Gpt2BpeTokenizer final : public Tokenizer {
public:
    // Both throw cs::Error naming the file (and line or field) on bad input. BOS and EOS default to
    // "<|endoftext|>" when the vocabulary has it; prependBos() is false.
    static std::unique_ptr<Gpt2BpeTokenizer> fromFiles(const std::string& vocabPath,
                                                       const std::string& mergesPath);
    static std::unique_ptr<Gpt2BpeTokenizer> fromTokenizerJson(const std::string& path,
                                                               const nlohmann::json& root);
    // Why a parsed tokenizer.json is not a byte-level BPE this class can run exactly, naming the
    // field; "" when it is.
    static std::string unsupportedReason(const nlohmann::json& root);

    ~Gpt2BpeTokenizer() override;

    std::vector<int> encode(const std::string& text) const override;
    std::string decode(const std::vector<int>& ids) const override;
    std::string piece(int id) const override;
    std::string tokenText(int id) const override;
    int vocabSize() const override { return static_cast<int>(pieces_.size()); }
    int idOf(const std::string& piece) const override;

private:
    struct Merge {
        int rank;
        int merged;
    };
    struct AddedToken {
        std::string content;
        int id;
        bool lstrip, rstrip, singleWord;
    };
    struct Regex;

    Gpt2BpeTokenizer();
    void addPiece(const std::string& file, const std::string& piece, long id);
    void addMerge(const std::string& where, const std::string& context, const std::string& a,
                  const std::string& b, int rank, const std::string& vocabName);
    void finish();

    void encodeOrdinary(std::string_view text, std::vector<int>& out) const;
    void encodeWord(std::string_view word, std::vector<int>& out) const;
    void bpe(std::string_view word, std::vector<int>& out) const;
    const AddedToken* addedAt(std::string_view text, size_t pos) const;

    std::vector<std::string> pieces_;  // id -> vocabulary string ("" for unused ids)
    std::vector<std::string> bytes_;   // id -> the bytes it stands for
    std::unordered_map<std::string, int> ids_;
    std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
    std::array<int, 256> byteIds_{};
    std::vector<AddedToken> added_;               // longest first, so the first match is longest
    std::array<bool, 256> addedFirstByte_{};
    bool addPrefixSpace_ = false;
    bool useRegex_ = true;
    bool ignoreMerges_ = false;
    int unkId_ = -1;
    std::unique_ptr<Regex> regex_;

    // Words repeat a lot in real text; BPE on each is the expensive part.
    mutable std::shared_mutex cacheMutex_;
    mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace cs
