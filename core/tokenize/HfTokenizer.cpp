#include "tokenize/HfTokenizer.h"

#include <algorithm>
#include <list>

namespace cs {

HfTokenizer::HfTokenizer(Parts parts) : parts_(std::move(parts)) {
    vocabSize_ = parts_.model->size();
    for (const auto& [id, content] : parts_.addedPieces) {
        addedIds_[content] = id;
        vocabSize_ = std::max(vocabSize_, id + 1);
    }
}

int HfTokenizer::idOf(const std::string& piece) const {
    auto it = addedIds_.find(piece);
    return it != addedIds_.end() ? it->second : parts_.model->idOf(piece);
}

std::string HfTokenizer::piece(int id) const {
    auto it = parts_.addedPieces.find(id);
    return it != parts_.addedPieces.end() ? it->second : parts_.model->piece(id);
}

std::string HfTokenizer::tokenText(int id) const {
    if (id < 0 || id >= vocabSize_) return "";
    return parts_.decoder.pieceText(piece(id));
}

std::string HfTokenizer::decode(const std::vector<int>& ids) const {
    std::vector<std::string_view> pieces;
    pieces.reserve(ids.size());
    for (int id : ids) {
        if (id < 0 || id >= vocabSize_) continue;  // as Hugging Face: unknown ids are skipped
        auto it = parts_.addedPieces.find(id);
        if (it != parts_.addedPieces.end())
            pieces.push_back(it->second);
        else if (!parts_.model->piece(id).empty())
            pieces.push_back(parts_.model->piece(id));
    }
    return parts_.decoder.decode(pieces);
}

std::vector<int> HfTokenizer::encode(const std::string& textIn) const {
    const std::string_view text(textIn);
    std::vector<int> out;
    out.reserve(text.size() / 3 + 1);
    if (parts_.rawAdded.empty()) {
        encodeNormalized(text, out);
        return out;
    }
    std::vector<AddedTokens::Piece> pieces;
    parts_.rawAdded.split(text, pieces);
    for (const auto& p : pieces) {
        if (p.id >= 0)
            out.push_back(p.id);
        else
            encodeNormalized(text.substr(p.begin, p.end - p.begin), out);
    }
    return out;
}

void HfTokenizer::encodeNormalized(std::string_view text, std::vector<int>& out) const {
    std::string normalized;
    if (!parts_.normalizer.empty()) {
        normalized = parts_.normalizer.apply(text);
        text = normalized;
    }
    if (parts_.normalizedAdded.empty()) return encodeWords(text, out);
    std::vector<AddedTokens::Piece> pieces;
    parts_.normalizedAdded.split(text, pieces);
    for (const auto& p : pieces) {
        if (p.id >= 0)
            out.push_back(p.id);
        else
            encodeWords(text.substr(p.begin, p.end - p.begin), out);
    }
}

void HfTokenizer::encodeWords(std::string_view text, std::vector<int>& out) const {
    std::list<std::string> arena;
    const BpeModel& model = *parts_.model;
    parts_.preTokenizer.split(
        text, [&](std::string_view w) { model.encodeWord(w, out); }, arena);
}

}  // namespace cs
