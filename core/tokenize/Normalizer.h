#pragma once
// A tokenizer.json normalizer: the steps Hugging Face runs on the text between added tokens
// before pre-tokenizing it. Supported: NFC, NFD, NFKC, NFKD, Replace, Prepend and Sequence of
// them (Qwen's NFC; Gemma's Replace(" " -> "▁"); Llama 2's Prepend("▁") + Replace).
#include "tokenize/TextPattern.h"
#include "tokenize/UnicodeNormalization.h"

#include <string>
#include <string_view>
#include <vector>

namespace cs {

class JsonSite;

class Normalizer {
public:
    // site is the "normalizer" member (null: none). An unsupported type throws
    // UnsupportedTokenizer; a broken field, cs::Error naming it.
    static Normalizer fromJson(const JsonSite& site);

    bool empty() const { return steps_.empty(); }
    std::string apply(std::string_view text) const;

private:
    struct Step {
        enum Kind { Unicode, Replace, Prepend } kind = Unicode;
        NormalizationForm form = NormalizationForm::Nfc;
        TextPattern pattern = TextPattern::literal("");
        std::string content;  // Replace: the replacement; Prepend: what goes in front
    };
    void addFrom(const JsonSite& site);

    std::vector<Step> steps_;
};

}  // namespace cs
