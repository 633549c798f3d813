#include "tokenize/SentencePieceTokenizer.h"

#include "util/Error.h"

#include <sentencepiece_processor.h>

namespace cs {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& modelPath)
    : path_(modelPath), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
    const auto status = sp_->Load(modelPath);
    if (!status.ok()) {
        // libsentencepiece's own messages point into its sources; say what the user can act on.
        if (status.code() == sentencepiece::util::StatusCode::kNotFound)
            failIn(modelPath, "cannot open (missing file?)");
        failIn(modelPath, "not a valid SentencePiece model file");
    }
    if (sp_->GetPieceSize() <= 0) failIn(modelPath, "SentencePiece model has no pieces");
    bosId_ = sp_->bos_id();
    eosId_ = sp_->eos_id();
    prependBos_ = bosId_ >= 0;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int> SentencePieceTokenizer::encode(const std::string& text) const {
    std::vector<int> ids;
    const auto status = sp_->Encode(text, &ids);
    if (!status.ok()) failIn(path_, "encoding failed: " + status.ToString());
    return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
    std::vector<int> known;
    known.reserve(ids.size());
    for (int id : ids)
        if (id >= 0 && id < vocabSize()) known.push_back(id);  // libsentencepiece rejects the rest
    std::string text;
    const auto status = sp_->Decode(known, &text);
    if (!status.ok()) failIn(path_, "decoding failed: " + status.ToString());
    return text;
}

std::string SentencePieceTokenizer::piece(int id) const {
    return id >= 0 && id < vocabSize() ? sp_->IdToPiece(id) : std::string();
}

std::string SentencePieceTokenizer::tokenText(int id) const {
    if (id < 0 || id >= vocabSize()) return {};
    const std::string& p = sp_->IdToPiece(id);
    if (sp_->IsControl(id)) return p;
    std::string text = decode({id});
    // Decoding strips the word-initial space of the first piece; a chip label should show it.
    static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581
    if (p.compare(0, kSpaceMark.size(), kSpaceMark) == 0 && (text.empty() || text[0] != ' '))
        text.insert(0, " ");
    return text;
}

int SentencePieceTokenizer::vocabSize() const {
    return sp_->GetPieceSize();
}

int SentencePieceTokenizer::idOf(const std::string& piece) const {
    const int id = sp_->PieceToId(piece);
    // Unknown pieces come back as the unk id; only an exact round trip counts.
    return id >= 0 && id < vocabSize() && sp_->IdToPiece(id) == piece ? id : -1;
}

}  // namespace cs
