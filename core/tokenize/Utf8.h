#pragma once
// UTF-8 as the tokenizers meet it: text may hold bytes that are not well-formed UTF-8 (a prompt
// cut mid-character, a binary file), and every stage has to keep them rather than fail.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cs::utf8 {

// A well-formed character at p: its length, with *cp set. Otherwise minus the length of the
// maximal ill-formed subpart (at least 1): the unit a lossy decoder replaces by one U+FFFD.
int scan(const unsigned char* p, size_t n, uint32_t* cp);
inline int scan(std::string_view s, size_t at, uint32_t* cp) {
    return scan(reinterpret_cast<const unsigned char*>(s.data()) + at, s.size() - at, cp);
}

void append(std::string& s, uint32_t cp);

// Each ill-formed subpart becomes U+FFFD, as Python's errors='replace' and Rust's
// String::from_utf8_lossy both do it.
std::string repairLossy(std::string_view s);

bool isWellFormed(std::string_view s);
// A piece of text fit for a one-line error message: control characters and stray bytes escaped
// (\n, \x1F), cut after 60 characters.
std::string forMessage(std::string_view s);
bool isAscii(std::string_view s);

// Unicode White_Space, which Python's str.isspace, Rust's char::is_whitespace and Oniguruma's \s
// all use.
bool isWhiteSpace(uint32_t cp);

}  // namespace cs::utf8
