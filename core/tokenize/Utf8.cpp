#include "tokenize/Utf8.h"

#include <cstdio>

namespace cs::utf8 {

int scan(const unsigned char* p, size_t n, uint32_t* cp) {
    const unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // no encoded surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i < len; ++i) {
        if (static_cast<size_t>(i) >= n || p[i] < lo || p[i] > hi) return -i;
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

void append(std::string& s, uint32_t c) {
    if (c < 0x80) {
        s += static_cast<char>(c);
    } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::string repairLossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t ascii = i;
        while (ascii < s.size() && static_cast<unsigned char>(s[ascii]) < 0x80) ++ascii;
        out.append(s.data() + i, ascii - i);
        if ((i = ascii) == s.size()) break;
        uint32_t cp = 0;
        const int k = scan(s, i, &cp);
        if (k > 0)
            out.append(s.data() + i, k);
        else
            out += "\xEF\xBF\xBD";
        i += k > 0 ? k : -k;
    }
    return out;
}

bool isWellFormed(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const int k = scan(s, i, &cp);
        if (k <= 0) return false;
        i += k;
    }
    return true;
}

std::string forMessage(std::string_view s) {
    std::string out;
    char hex[8];
    size_t chars = 0;
    for (size_t i = 0; i < s.size(); ++chars) {
        if (chars == 60) return out + "...";
        uint32_t cp = 0;
        const int k = scan(s, i, &cp);
        if (k <= 0 || cp < 0x20 || cp == 0x7F) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c == '\n')
                out += "\\n";
            else if (c == '\t')
                out += "\\t";
            else
                std::snprintf(hex, sizeof hex, "\\x%02X", c), out += hex;
            ++i;
            continue;
        }
        out.append(s.data() + i, k);
        i += k;
    }
    return out;
}

bool isAscii(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

bool isWhiteSpace(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

}  // namespace cs::utf8
