#pragma once
// Prompts written as token ids ("#1 #403 #17"): the way to run a model whose directory has no
// tokenizer (a bare checkpoint such as stories260K), and to feed any model an exact sequence.
#include "tokenize/Tokenizer.h"

#include <optional>
#include <string>
#include <vector>

namespace cs {

// The ids when every whitespace-separated word of `text` is '#' and digits (at least one word);
// otherwise nothing, and the text is ordinary text. Throws cs::Error naming a '#' word whose
// number is too large for an id.
std::optional<std::vector<int>> parseTokenIdPrompt(const std::string& text);

// What a prompt box means: a token-id prompt as written (each id checked against vocabSize),
// else the tokenizer's encodePrompt(text). Throws cs::Error naming an id out of range.
std::vector<int> promptTokenIds(const Tokenizer& tok, const std::string& text, int vocabSize);

// "#1 #403 #17"
std::string tokenIdPromptText(const std::vector<int>& ids);

// Stands in for the tokenizer of a model that has none: every id is written "#N", and text is
// accepted only in that form, so every view that labels tokens works unchanged.
class TokenIdTokenizer : public Tokenizer {
public:
    explicit TokenIdTokenizer(int vocabSize) : vocabSize_(vocabSize) {}
    // Throws cs::Error unless `text` is a token-id prompt within the vocabulary.
    std::vector<int> encode(const std::string& text) const override;
    std::string decode(const std::vector<int>& ids) const override;  // "#1 #403", space-separated
    std::string piece(int id) const override { return tokenText(id); }
    std::string tokenText(int id) const override { return "#" + std::to_string(id); }
    int vocabSize() const override { return vocabSize_; }
    int idOf(const std::string& piece) const override;

private:
    int vocabSize_;
};

}  // namespace cs
