#pragma once
// A tokenizer.json pre-tokenizer: cuts normalised text into the words BPE sees. Supported: Split
// (a String or Regex pattern, every behaviour, invert), ByteLevel (add_prefix_space, use_regex
// with GPT-2's pattern; last step only) and Sequence of them. That covers GPT-2's ByteLevel,
// Llama 3's and Qwen's Sequence[Split(regex), ByteLevel] and Gemma's Split(" ").
#include "tokenize/TextPattern.h"

#include <list>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cs {

class JsonSite;

class PreTokenizer {
public:
    // site is the "pre_tokenizer" member (null: the whole text is one word).
    static PreTokenizer fromJson(const JsonSite& site);
    // GPT-2's: ByteLevel with its regex, no prefix space.
    static PreTokenizer gpt2();

    // Whether the words are bytes for a byte-level BPE (a ByteLevel step ends the list).
    bool byteLevel() const { return !steps_.empty() && steps_.back().kind == Step::ByteLevel; }

    using OnWord = std::function<void(std::string_view)>;

    // Calls onWord with each non-empty word of text, in order; a word points into text, or into
    // a string kept in arena when a step had to build one (ByteLevel's prefix space).
    void split(std::string_view text, const OnWord& onWord, std::list<std::string>& arena) const;

private:
    enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
    struct Step {
        enum Kind { Split, ByteLevel } kind = Split;
        TextPattern pattern = TextPattern::literal("");
        Behavior behavior = Behavior::Isolated;
        bool invert = false;
        bool addPrefixSpace = false;
    };
    void addFrom(const JsonSite& site);
    static void splitOne(const Step& step, std::string_view piece, const OnWord& out,
                         std::list<std::string>& arena);

    std::vector<Step> steps_;
};

}  // namespace cs
