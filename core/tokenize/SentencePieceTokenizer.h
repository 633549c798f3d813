#pragma once
// SentencePiece (tokenizer.model, as Llama and Gemma ship it) through libsentencepiece, reached
// through a plug-in (see SentencePieceBackend.h for why it is not linked directly).
#include "tokenize/Tokenizer.h"

#include <memory>
#include <string>

namespace cs {

class SentencePieceBackend;

class SentencePieceTokenizer final : public Tokenizer {
public:
    // Throws cs::Error naming the file when it is missing or not a SentencePiece model. BOS/EOS
    // come from the model; prependBos() is true when it has a BOS (the Llama convention).
    explicit SentencePieceTokenizer(const std::string& modelPath);
    ~SentencePieceTokenizer() override;

    std::vector<int> encode(const std::string& text) const override;
    std::string decode(const std::vector<int>& ids) const override;
    std::string piece(int id) const override;
    // The decoded piece, with the leading space that "▁" stands for kept visible; control
    // pieces (<s>, </s>), which decode to nothing, show as written.
    std::string tokenText(int id) const override;
    int vocabSize() const override;
    int idOf(const std::string& piece) const override;

private:
    std::string path_;
    std::unique_ptr<SentencePieceBackend> sp_;
};

// Trains a SentencePiece model (SentencePieceTrainer flags, e.g. "--input=F --model_prefix=P
// --vocab_size=N --model_type=bpe"). Throws cs::Error with the library's message on failure.
void trainSentencePiece(const std::string& args);

}  // namespace cs
