#include "tokenize/TextPattern.h"

#include "tokenize/JsonSite.h"

namespace cs {

TextPattern TextPattern::fromJson(const JsonSite& site) {
    const auto& j = site.json();
    if (j.is_object() && j.size() == 1 && j.contains("String") && j.at("String").is_string())
        return literal(j.at("String").get<std::string>());
    if (j.is_object() && j.size() == 1 && j.contains("Regex") && j.at("Regex").is_string()) {
        std::string error;
        auto r = UnicodeRegex::compile(j.at("Regex").get<std::string>(), &error);
        if (!r) site.failAt("Regex", "is not a pattern PCRE2 can compile: " + error);
        return regex(std::move(r));
    }
    site.fail("must be {\"String\": ...} or {\"Regex\": ...}");
}

TextPattern TextPattern::literal(std::string s) {
    TextPattern p;
    p.literal_ = std::move(s);
    return p;
}

TextPattern TextPattern::regex(std::shared_ptr<const UnicodeRegex> r) {
    TextPattern p;
    p.regex_ = std::move(r);
    return p;
}

void TextPattern::forEachMatch(std::string_view text, const UnicodeRegex::OnMatch& onMatch) const {
    if (regex_) return regex_->forEachMatch(text, onMatch);
    if (literal_.empty()) return;
    for (size_t at = text.find(literal_); at != std::string_view::npos;
         at = text.find(literal_, at + literal_.size()))
        onMatch(at, at + literal_.size());
}

std::string TextPattern::replaceAll(std::string_view text, const std::string& content) const {
    std::string out;
    size_t done = 0;
    forEachMatch(text, [&](size_t begin, size_t end) {
        out.append(text.data() + done, begin - done);
        out += content;
        done = end;
    });
    if (done == 0 && out.empty()) return std::string(text);
    out.append(text.data() + done, text.size() - done);
    return out;
}

}  // namespace cs
