#include "tokenize/TokenIdPrompt.h"

#include "util/Error.h"

#include <cctype>
#include <sstream>

namespace cs {

std::optional<std::vector<int>> parseTokenIdPrompt(const std::string& text) {
    std::istringstream words(text);
    std::string w;
    std::vector<int> ids;
    while (words >> w) {
        if (w.size() < 2 || w[0] != '#') return std::nullopt;
        for (size_t i = 1; i < w.size(); ++i)
            if (!std::isdigit(static_cast<unsigned char>(w[i]))) return std::nullopt;
        // Nine digits always fit an int; no vocabulary comes near that.
        if (w.size() > 10) throw Error("token id '" + w + "' is too large");
        ids.push_back(std::stoi(w.substr(1)));
    }
    if (ids.empty()) return std::nullopt;
    return ids;
}

namespace {

void checkInVocabulary(const std::vector<int>& ids, int vocabSize) {
    for (int id : ids)
        if (id >= vocabSize)
            throw Error("token id #" + std::to_string(id) + " is out of range (the vocabulary has ids 0 to " +
                        std::to_string(vocabSize - 1) + ")");
}

}  // namespace

std::vector<int> promptTokenIds(const Tokenizer& tok, const std::string& text, int vocabSize) {
    if (auto ids = parseTokenIdPrompt(text)) {
        checkInVocabulary(*ids, vocabSize);
        return *ids;
    }
    return tok.encodePrompt(text);
}

std::string tokenIdPromptText(const std::vector<int>& ids) {
    std::string out;
    for (int id : ids) out += (out.empty() ? "#" : " #") + std::to_string(id);
    return out;
}

std::vector<int> TokenIdTokenizer::encode(const std::string& text) const {
    const auto ids = parseTokenIdPrompt(text);
    if (!ids)
        throw Error("this model has no tokenizer: write the prompt as token ids, e.g. #1 #403 #17");
    checkInVocabulary(*ids, vocabSize_);
    return *ids;
}

std::string TokenIdTokenizer::decode(const std::vector<int>& ids) const { return tokenIdPromptText(ids); }

int TokenIdTokenizer::idOf(const std::string& piece) const {
    const auto ids = parseTokenIdPrompt(piece);
    if (!ids || ids->size() != 1 || (*ids)[0] >= vocabSize_) return -1;
    return (*ids)[0];
}

}  // namespace cs
