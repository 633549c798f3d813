#pragma once
// A BPE tokenizer run as Hugging Face's tokenizers pipeline runs it: added tokens are found whole
// first, the text between them is normalised, pre-tokenized into words and each word turned into
// ids by BPE; the decoder turns pieces back into text. tokenizer.json files (GPT-2, Llama 3,
// Qwen 2/2.5/3, Gemma 2/3, Llama 2 style) and GPT-2's vocab.json + merges.txt are both read
// into one.
#include "tokenize/AddedTokens.h"
#include "tokenize/BpeModel.h"
#include "tokenize/Decoder.h"
#include "tokenize/Normalizer.h"
#include "tokenize/PreTokenizer.h"
#include "tokenize/Tokenizer.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace cs {

class HfTokenizer final : public Tokenizer {
public:
    struct Parts {
        std::unique_ptr<BpeModel> model;  // finished
        Normalizer normalizer;
        PreTokenizer preTokenizer;
        Decoder decoder;
        AddedTokens rawAdded;         // matched in the text as written (normalized: false)
        AddedTokens normalizedAdded;  // matched in normalised text; content already normalised
        std::unordered_map<int, std::string> addedPieces;  // id -> content as the file has it
    };
    explicit HfTokenizer(Parts parts);

    // A parsed tokenizer.json. Throws UnsupportedTokenizer (JsonSite.h) when it asks for a part
    // not implemented here, cs::Error naming the file and field when it is broken. BOS comes
    // from a TemplateProcessing post-processor; see templateDecidesBos().
    static std::unique_ptr<HfTokenizer> fromTokenizerJson(const std::string& path,
                                                          const nlohmann::json& root);

    // Whether the file said what goes in front of a text (a TemplateProcessing post-processor),
    // so that bosId() and prependBos() are its word rather than defaults.
    bool templateDecidesBos() const { return templateDecidesBos_; }

    std::vector<int> encode(const std::string& text) const override;
    std::string decode(const std::vector<int>& ids) const override;
    std::string piece(int id) const override;
    std::string tokenText(int id) const override;
    int vocabSize() const override { return vocabSize_; }
    int idOf(const std::string& piece) const override;

private:
    void encodeNormalized(std::string_view text, std::vector<int>& out) const;
    void encodeWords(std::string_view text, std::vector<int>& out) const;

    Parts parts_;
    std::unordered_map<std::string, int> addedIds_;
    int vocabSize_ = 0;
    bool templateDecidesBos_ = false;
};

}  // namespace cs
