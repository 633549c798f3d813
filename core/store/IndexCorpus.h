#pragma once
// The documents an index is built from, as token ids: a .txt file (documents separated by blank
// lines), a .jsonl file ({"text": ...} or pretokenized {"tokens": [...]} per line, as SAELens
// datasets come), or documents the model samples itself. Then cut into the windows the model runs.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;

// Reads documents until `maxTokens` tokens are collected (the rest of the file is not read).
// `tok` may be null for a .jsonl file of tokens only. Text documents get the tokenizer's usual
// BOS; token documents are used as given. Throws cs::Error naming the file and line: not UTF-8,
// an empty document, bad JSON, a missing field, ids outside [0, vocabSize).
std::vector<std::vector<int>> readIndexCorpus(const std::string& path, const Tokenizer* tok, long vocabSize,
                                              long maxTokens);

// `count` documents sampled from the model: BOS, then temperature-1 sampling until EOS or
// `maxLength` tokens. Runs `batch` documents at once with a KV cache; document i draws from its
// own seed (seed, i), so the text does not depend on the batching.
std::vector<std::vector<int>> sampleIndexCorpus(const Transformer& model, const Tokenizer& tok, long count,
                                                int maxLength, uint64_t seed,
                                                const std::function<void(long done)>& progress = {},
                                                const std::atomic<bool>* cancel = nullptr);

struct IndexWindow {
    long document = 0;
    long start = 0;  // position of tokens[0] in the document
    std::vector<int> tokens;
};

// Consecutive windows of at most `context` tokens, no overlap; the last one cut so that at most
// `maxTokens` tokens are taken in all.
std::vector<IndexWindow> cutWindows(const std::vector<std::vector<int>>& documents, int context, long maxTokens);

// Position of the first byte that is not valid UTF-8, or -1.
long firstInvalidUtf8(const std::string& s);

}  // namespace cs
