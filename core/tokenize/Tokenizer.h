#pragma once
// A tokenizer turns text into vocabulary ids and back. Implementations: HfTokenizer (BPE as
// Hugging Face's tokenizer.json describes it, byte-level or with byte fallback; also GPT-2's
// vocab.json + merges.txt) and SentencePiece (tokenizer.model).
// No LibTorch and no Qt here: the UI and the CLI both use this directly.
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Text to ids, without any BOS (callers decide about BOS; see prependBos()).
    virtual std::vector<int> encode(const std::string& text) const = 0;
    // Ids to text, as the reference decoder would print it (bytes joined, UTF-8 repaired lossily).
    virtual std::string decode(const std::vector<int>& ids) const = 0;
    // The vocabulary entry for an id as stored in the tokenizer files (e.g. "Ġworld", "▁world").
    virtual std::string piece(int id) const = 0;
    // The text an id stands for on its own (e.g. " world"); used to label token chips.
    virtual std::string tokenText(int id) const = 0;
    virtual int vocabSize() const = 0;
    // Id of a special or ordinary piece, or -1.
    virtual int idOf(const std::string& piece) const = 0;

    int bosId() const { return bosId_; }
    int eosId() const { return eosId_; }
    // Whether BOS goes in front of a prompt by default (tokenizer_config.json add_bos_token, a
    // TemplateProcessing in tokenizer.json, SentencePiece's own setting, or the model's
    // convention).
    bool prependBos() const { return prependBos_; }
    void setBos(int id) { bosId_ = id; }
    void setEos(int id) { eosId_ = id; }
    void setPrependBos(bool on) { prependBos_ = on; }

    // encode() plus BOS where the tokenizer says so.
    std::vector<int> encodePrompt(const std::string& text) const {
        std::vector<int> ids;
        if (prependBos_ && bosId_ >= 0) ids.push_back(bosId_);
        auto body = encode(text);
        ids.insert(ids.end(), body.begin(), body.end());
        return ids;
    }

protected:
    int bosId_ = -1;
    int eosId_ = -1;
    bool prependBos_ = false;
};

// Loads a tokenizer from a file (tokenizer.json, vocab.json, tokenizer.model) or a directory that
// holds one (tokenizer.json preferred, then vocab.json + merges.txt, then tokenizer.model; a
// tokenizer.json asking for a pipeline part not implemented here gives way to the others);
// applies config.json, special_tokens_map.json and tokenizer_config.json when they sit beside it.
// Throws cs::Error naming the file and field on bad input.
std::unique_ptr<Tokenizer> loadTokenizer(const std::string& path);

}  // namespace cs
