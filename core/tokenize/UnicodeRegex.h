#pragma once
// A pre-tokenizer pattern (GPT-2's, or the one a tokenizer.json names) run by PCRE2 with UTF and
// UCP, answering as Oniguruma (Hugging Face) and Python's `regex` (the GPT-2 reference) do on
// any bytes: see UnicodeRegex.cpp for the stand-ins that make that so.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace cs {

class UnicodeRegex {
public:
    // Null when PCRE2 refuses the pattern, with *error set to its message and the offset.
    static std::unique_ptr<UnicodeRegex> compile(const std::string& pattern, std::string* error);
    ~UnicodeRegex();
    UnicodeRegex(const UnicodeRegex&) = delete;
    UnicodeRegex& operator=(const UnicodeRegex&) = delete;

    using OnMatch = std::function<void(size_t begin, size_t end)>;

    // Every match left to right, as Oniguruma's find_iter reports them: an empty match right
    // where the previous match ended is skipped, and the search moves on by one character.
    void forEachMatch(std::string_view text, const OnMatch& onMatch) const;

private:
    struct Compiled;
    explicit UnicodeRegex(std::unique_ptr<Compiled> c);
    std::unique_ptr<Compiled> compiled_;
};

}  // namespace cs
