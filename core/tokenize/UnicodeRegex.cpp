#include "tokenize/UnicodeRegex.h"

#include "tokenize/Utf8.h"
#include "util/Error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace cs {
namespace {

// PCRE2 needs well-formed UTF-8, and Debian 12's PCRE2 (10.42) knows Unicode 14. The references
// see a stray byte as a lone surrogate (neither space, letter nor digit), know the letters and
// digits of Unicode 15 to 17, and do not count U+180E as \s (PCRE2 still does). Such characters
// get stand-ins of the same class before matching. The table is the set difference between
// PCRE2 10.42's \p{L} / \p{N} and those of Python's `regex` 2026.5 (Unicode 17), taken code
// point by code point on this machine. L: letter, D: decimal digit, N: other number.
struct CpRange {
    uint32_t lo, hi;
    char cls;
};
const CpRange kNewerLettersAndDigits[] = {
    {0x88F, 0x88F, 'L'},     {0xC5C, 0xC5C, 'L'},     {0xCDC, 0xCDC, 'L'},
    {0x1C89, 0x1C8A, 'L'},   {0xA7CB, 0xA7CF, 'L'},   {0xA7D2, 0xA7D2, 'L'},
    {0xA7D4, 0xA7D4, 'L'},   {0xA7DA, 0xA7DC, 'L'},   {0xA7F1, 0xA7F1, 'L'},
    {0x105C0, 0x105F3, 'L'}, {0x10940, 0x10959, 'L'}, {0x10D40, 0x10D49, 'D'},
    {0x10D4A, 0x10D65, 'L'}, {0x10D6F, 0x10D85, 'L'}, {0x10EC2, 0x10EC7, 'L'},
    {0x1123F, 0x11240, 'L'}, {0x11380, 0x11389, 'L'}, {0x1138B, 0x1138B, 'L'},
    {0x1138E, 0x1138E, 'L'}, {0x11390, 0x113B5, 'L'}, {0x113B7, 0x113B7, 'L'},
    {0x113D1, 0x113D1, 'L'}, {0x113D3, 0x113D3, 'L'}, {0x116D0, 0x116E3, 'D'},
    {0x11BC0, 0x11BE0, 'L'}, {0x11BF0, 0x11BF9, 'D'}, {0x11DB0, 0x11DDB, 'L'},
    {0x11DE0, 0x11DE9, 'D'}, {0x11F02, 0x11F02, 'L'}, {0x11F04, 0x11F10, 'L'},
    {0x11F12, 0x11F33, 'L'}, {0x11F50, 0x11F59, 'D'}, {0x1342F, 0x1342F, 'L'},
    {0x13441, 0x13446, 'L'}, {0x13460, 0x143FA, 'L'}, {0x16100, 0x1611D, 'L'},
    {0x16130, 0x16139, 'D'}, {0x16D40, 0x16D6C, 'L'}, {0x16D70, 0x16D79, 'D'},
    {0x16EA0, 0x16EB8, 'L'}, {0x16EBB, 0x16ED3, 'L'}, {0x16FF2, 0x16FF3, 'L'},
    {0x16FF4, 0x16FF6, 'N'}, {0x187F8, 0x187FF, 'L'}, {0x18CFF, 0x18CFF, 'L'},
    {0x18D09, 0x18D1E, 'L'}, {0x18D80, 0x18DF2, 'L'}, {0x1B132, 0x1B132, 'L'},
    {0x1B155, 0x1B155, 'L'}, {0x1CCF0, 0x1CCF9, 'D'}, {0x1D2C0, 0x1D2D3, 'N'},
    {0x1DF25, 0x1DF2A, 'L'}, {0x1E030, 0x1E06D, 'L'}, {0x1E4D0, 0x1E4EB, 'L'},
    {0x1E4F0, 0x1E4F9, 'D'}, {0x1E5D0, 0x1E5ED, 'L'}, {0x1E5F0, 0x1E5F0, 'L'},
    {0x1E5F1, 0x1E5FA, 'D'}, {0x1E6C0, 0x1E6DE, 'L'}, {0x1E6E0, 0x1E6E2, 'L'},
    {0x1E6E4, 0x1E6E5, 'L'}, {0x1E6E7, 0x1E6ED, 'L'}, {0x1E6F0, 0x1E6F4, 'L'},
    {0x1E6FE, 0x1E6FF, 'L'}, {0x2B739, 0x2B73F, 'L'}, {0x2CEA2, 0x2CEAD, 'L'},
    {0x2EBF0, 0x2EE5D, 'L'}, {0x31350, 0x33479, 'L'},
};

char newerClass(uint32_t c) {
    if (c < 0x88F) return 0;
    const auto* end = std::end(kNewerLettersAndDigits);
    const auto* it = std::upper_bound(std::begin(kNewerLettersAndDigits), end, c,
                                      [](uint32_t v, const CpRange& r) { return v < r.lo; });
    if (it == std::begin(kNewerLettersAndDigits)) return 0;
    --it;
    return c <= it->hi ? it->cls : 0;
}

// The stand-in for the character at s[i] (length *len), or empty when it needs none.
std::string_view standIn(std::string_view s, size_t i, size_t* len) {
    uint32_t cp = 0;
    const int k = utf8::scan(s, i, &cp);
    if (k <= 0) {
        *len = 1;               // one stray byte at a time, as surrogateescape sees them
        return "\xEE\x80\x80";  // U+E000, private use: an "other" character
    }
    *len = static_cast<size_t>(k);
    if (cp == 0x180E) return "\xE2\x80\x8B";  // U+200B, a format character like U+180E
    switch (newerClass(cp)) {
    case 'L': return "\xEA\x94\x80";  // U+A500, a Vai letter (Lo)
    case 'D': return "\xD9\xA0";      // U+0660, Arabic-Indic zero (Nd)
    case 'N': return "\xE2\x91\xA0";  // U+2460, circled one (No)
    default: return {};
    }
}

bool needsStandIns(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        size_t len = 0;
        if (!standIn(s, i, &len).empty()) return true;
        i += len;
    }
    return false;
}

// `origin` maps each byte offset of the rewritten text back to the original.
void withStandIns(std::string_view s, std::string& out, std::vector<size_t>& origin) {
    out.reserve(s.size() + 16);
    origin.reserve(s.size() + 17);
    for (size_t i = 0; i < s.size();) {
        size_t len = 0;
        std::string_view rep = standIn(s, i, &len);
        if (rep.empty()) rep = s.substr(i, len);
        out.append(rep.data(), rep.size());
        origin.insert(origin.end(), rep.size(), i);
        i += len;
    }
    origin.push_back(s.size());
}

}  // namespace

struct UnicodeRegex::Compiled {
    pcre2_code* code = nullptr;
    bool jit = false;
    ~Compiled() {
        if (code) pcre2_code_free(code);
    }
};

UnicodeRegex::UnicodeRegex(std::unique_ptr<Compiled> c) : compiled_(std::move(c)) {}
UnicodeRegex::~UnicodeRegex() = default;

std::unique_ptr<UnicodeRegex> UnicodeRegex::compile(const std::string& pattern,
                                                    std::string* error) {
    auto c = std::make_unique<Compiled>();
    int err = 0;
    PCRE2_SIZE at = 0;
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
    if (!c->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(err, message, sizeof message);
        *error = std::string(reinterpret_cast<const char*>(message)) + " at offset " +
                 std::to_string(at);
        return nullptr;
    }
    c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;
    return std::unique_ptr<UnicodeRegex>(new UnicodeRegex(std::move(c)));
}

void UnicodeRegex::forEachMatch(std::string_view text, const OnMatch& onMatch) const {
    std::string rewritten;
    std::vector<size_t> origin;
    const bool mapped = needsStandIns(text);
    if (mapped) withStandIns(text, rewritten, origin);
    const std::string_view subject = mapped ? std::string_view(rewritten) : text;
    auto orig = [&](size_t at) { return mapped ? origin[at] : at; };

    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
    if (!md) throw Error("out of memory for PCRE2 match data");
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    const size_t n = subject.size();
    size_t from = 0;
    size_t lastEnd = static_cast<size_t>(-1);
    while (from <= n) {
        const int rc =
            compiled_->jit
                ? pcre2_jit_match(compiled_->code, s, n, from, 0, md.get(), nullptr)
                : pcre2_match(compiled_->code, s, n, from, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0)
            throw Error("PCRE2 gave up matching a pre-tokenizer pattern (error " +
                        std::to_string(rc) + ")");
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t begin = ov[0], end = ov[1];
        if (begin == end && end == lastEnd) {
            if (from >= n) break;
            uint32_t cp = 0;
            const int k = utf8::scan(subject, from, &cp);
            from += k > 0 ? k : 1;
            continue;
        }
        onMatch(orig(begin), orig(end));
        from = lastEnd = end;
    }
}

}  // namespace cs
