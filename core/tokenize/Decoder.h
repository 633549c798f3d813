#pragma once
// A tokenizer.json decoder: pieces back to text, as Hugging Face's decode_chain does it step by
// step. Supported: ByteLevel, Replace, ByteFallback, Fuse, Strip and Sequence of them (GPT-2,
// Llama 3, Qwen: ByteLevel; Gemma, Llama 2: Replace("▁" -> " "), ByteFallback, Fuse, Strip).
#include "tokenize/TextPattern.h"

#include <string>
#include <string_view>
#include <vector>

namespace cs {

class JsonSite;

class Decoder {
public:
    // site is the "decoder" member (null: pieces joined with spaces, as Hugging Face does).
    static Decoder fromJson(const JsonSite& site);
    static Decoder byteLevel();

    // The text of a sequence of pieces; ill-formed UTF-8 comes out repaired (U+FFFD).
    std::string decode(const std::vector<std::string_view>& pieces) const;
    // What one piece stands for, to label it: the same steps, but bytes are left as they are
    // (half a character stays half a character) and Strip, which concerns a whole text, is
    // skipped.
    std::string pieceText(const std::string& piece) const;

private:
    struct Step {
        enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip } kind = ByteLevel;
        TextPattern pattern = TextPattern::literal("");
        std::string content;  // Replace: the replacement; Strip: the character stripped
        long start = 0, stop = 0;
    };
    void addFrom(const JsonSite& site);

    bool joinWithSpaces_ = false;
    std::vector<Step> steps_;
};

}  // namespace cs
