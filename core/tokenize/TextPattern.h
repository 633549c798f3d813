#pragma once
// What a tokenizer.json Split, Replace normalizer or Replace decoder looks for: {"String": s}
// (found literally) or {"Regex": r} (run by UnicodeRegex).
#include "tokenize/UnicodeRegex.h"

#include <memory>
#include <string>
#include <string_view>

namespace cs {

class JsonSite;

class TextPattern {
public:
    // site is the "pattern" member; a pattern PCRE2 refuses fails naming it, with PCRE2's
    // message and offset.
    static TextPattern fromJson(const JsonSite& site);
    static TextPattern literal(std::string s);
    static TextPattern regex(std::shared_ptr<const UnicodeRegex> r);

    // Neither a regex nor a non-empty literal: finds nothing.
    bool empty() const { return !regex_ && literal_.empty(); }
    // Every match left to right, as Hugging Face finds them (an empty literal finds nothing).
    void forEachMatch(std::string_view text, const UnicodeRegex::OnMatch& onMatch) const;
    std::string replaceAll(std::string_view text, const std::string& content) const;

private:
    std::string literal_;
    std::shared_ptr<const UnicodeRegex> regex_;
};

}  // namespace cs
