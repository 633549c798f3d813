#pragma once
// GPT-2's own tokenizer files, vocab.json + merges.txt, run byte-exact with OpenAI's original
// encoder (its regex, its rank-by-rank merges), on the same pipeline as tokenizer.json files.
#include "tokenize/Tokenizer.h"

#include <memory>
#include <string>

namespace cs {

// Throws cs::Error naming the file (and line) on bad input. BOS and EOS are "<|endoftext|>" when
// the vocabulary has it; prependBos() is false.
std::unique_ptr<Tokenizer> loadGpt2BpeFiles(const std::string& vocabPath,
                                            const std::string& mergesPath);

}  // namespace cs
