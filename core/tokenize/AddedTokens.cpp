#include "tokenize/AddedTokens.h"

#include "tokenize/Utf8.h"

#include <cctype>

namespace cs {
namespace {

// Hugging Face tests single_word with the regex \w (Unicode letters, marks, digits, connector
// punctuation). Every non-ASCII byte counts as a word byte here: right for letters, and towards
// not matching for non-ASCII punctuation next to the token.
bool isWordByte(unsigned char c) {
    return std::isalnum(c) || c == '_' || c >= 0x80;
}

// The start of the character that ends at `end`, not before `begin`.
size_t charStartBefore(std::string_view s, size_t begin, size_t end) {
    size_t i = end - 1;
    while (i > begin && end - i < 4 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return i;
}

bool isWhiteSpaceAt(std::string_view s, size_t i, size_t* len) {
    uint32_t cp = 0;
    const int k = utf8::scan(s, i, &cp);
    *len = k > 0 ? k : 1;
    return k > 0 && utf8::isWhiteSpace(cp);
}

}  // namespace

void AddedTokens::add(Token token) {
    const int index = static_cast<int>(tokens_.size());
    int node = 0;
    for (unsigned char c : token.content) {
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
            const int child = static_cast<int>(tokenAtNode_.size());
            tokenAtNode_.push_back(-1);
            it = edges_.emplace(key, child).first;
        }
        node = it->second;
    }
    // The same content twice: the later entry wins, as in a map built from the list.
    tokenAtNode_[node] = index;
    firstByte_[static_cast<unsigned char>(token.content[0])] = true;
    tokens_.push_back(std::move(token));
}

int AddedTokens::longestAt(std::string_view text, size_t pos) const {
    int node = 0, found = -1;
    for (size_t i = pos; i < text.size(); ++i) {
        auto it =
            edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
        if (it == edges_.end()) break;
        node = it->second;
        if (tokenAtNode_[node] >= 0) found = tokenAtNode_[node];
    }
    return found;
}

void AddedTokens::split(std::string_view text, std::vector<Piece>& out) const {
    size_t done = 0;  // end of the last piece written
    for (size_t pos = 0; pos < text.size();) {
        const int index =
            firstByte_[static_cast<unsigned char>(text[pos])] ? longestAt(text, pos) : -1;
        if (index < 0) {
            ++pos;
            continue;
        }
        const Token& t = tokens_[index];
        size_t begin = pos, end = pos + t.content.size(), len = 0;
        pos = end;  // the search goes on after this match, whether it is kept or not
        if (t.singleWord && ((begin > 0 && isWordByte(text[begin - 1])) ||
                             (end < text.size() && isWordByte(text[end]))))
            continue;
        if (t.lstrip) {
            while (begin > done) {
                const size_t start = charStartBefore(text, done, begin);
                if (!isWhiteSpaceAt(text, start, &len) || start + len != begin) break;
                begin = start;
            }
        }
        if (t.rstrip)
            while (end < text.size() && isWhiteSpaceAt(text, end, &len)) end += len;
        if (begin > done) out.push_back({done, begin, -1});
        out.push_back({begin, end, t.id});
        done = pos = end;
    }
    if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace cs
