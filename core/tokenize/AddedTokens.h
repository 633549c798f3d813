#pragma once
// The added tokens of a tokenizer.json (<|begin_of_text|>, <start_of_turn>, Gemma's runs of
// newlines ...), found in text as Hugging Face's AddedVocabulary finds them: leftmost-longest,
// the search going on after each match, with the lstrip / rstrip / single_word options.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cs {

class AddedTokens {
public:
    struct Token {
        std::string content;
        int id = -1;
        bool lstrip = false, rstrip = false, singleWord = false;
    };
    // A stretch of the text: an added token (id >= 0) or the text between two of them (id -1).
    struct Piece {
        size_t begin, end;
        int id;
    };

    void add(Token token);  // content must not be empty
    bool empty() const { return tokens_.empty(); }

    // Cuts text into pieces covering it; no piece is empty.
    void split(std::string_view text, std::vector<Piece>& out) const;

private:
    // The index in tokens_ of the longest token starting at text[pos], or -1.
    int longestAt(std::string_view text, size_t pos) const;

    std::vector<Token> tokens_;
    // A byte trie: node 0 is the root; (node << 8 | byte) -> child node.
    std::unordered_map<uint64_t, int> edges_;
    std::vector<int> tokenAtNode_{-1};  // node -> token index, or -1
    std::array<bool, 256> firstByte_{};
};

}  // namespace cs
