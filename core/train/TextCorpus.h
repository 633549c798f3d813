#pragma once
// A plain-text corpus as the trainers see it: paragraphs (non-empty lines), split into a training
// part and a held-out tail, and turned into one token stream with BOS before each paragraph.
#include <cstdint>
#include <string>
#include <vector>

namespace cs {

class Tokenizer;

struct CorpusSplit {
    std::vector<std::string> train;    // paragraphs
    std::vector<std::string> heldOut;  // the last `heldOutFraction` of the file, by bytes
    long heldOutBytes = 0;             // UTF-8 bytes of the held-out paragraphs (no newlines)
};

// Throws cs::Error naming the file when it is missing, unreadable or has no text.
CorpusSplit readCorpus(const std::string& path, double heldOutFraction);

// BOS, paragraph tokens, BOS, ... (BOS marks the paragraph boundary the model must learn).
std::vector<int32_t> tokenStream(const Tokenizer& tok, const std::vector<std::string>& paragraphs);

}  // namespace cs
