#include "tokenize/ByteLevel.h"

#include "tokenize/Utf8.h"

#include <array>
#include <cstdint>
#include <vector>

namespace cs::byte_level {
namespace {

struct ByteMap {
    std::array<std::string, 256> chars;  // byte -> its character, UTF-8
    std::vector<int> byteOf;             // code point (< 324) -> byte, or -1
    ByteMap() : byteOf(256 + 68, -1) {
        uint32_t moved = 0;
        for (int b = 0; b < 256; ++b) {
            const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            const uint32_t cp = keep ? b : 256 + moved++;
            utf8::append(chars[b], cp);
            byteOf[cp] = b;
        }
    }
};

const ByteMap& byteMap() {
    static const ByteMap m;
    return m;
}

}  // namespace

const std::string& charOf(unsigned char b) {
    return byteMap().chars[b];
}

bool appendBytesOf(std::string_view piece, std::string& out) {
    const auto& m = byteMap();
    const size_t start = out.size();
    out.resize(start + piece.size());  // never more bytes than characters
    char* w = &out[start];
    for (size_t i = 0; i < piece.size();) {
        const auto c = static_cast<unsigned char>(piece[i]);
        if (c >= 0x21 && c <= 0x7E) {  // printable ASCII stands for itself
            *w++ = static_cast<char>(c);
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const int k = utf8::scan(piece, i, &cp);
        if (k <= 0 || cp >= m.byteOf.size() || m.byteOf[cp] < 0) {
            out.resize(start);
            return false;
        }
        *w++ = static_cast<char>(m.byteOf[cp]);
        i += k;
    }
    out.resize(w - out.data());
    return true;
}

bool bytesOf(std::string_view piece, std::string* out) {
    std::string bytes;
    if (!appendBytesOf(piece, bytes)) return false;
    *out = std::move(bytes);
    return true;
}

std::string decodePiece(std::string_view piece) {
    std::string bytes;
    return bytesOf(piece, &bytes) ? bytes : std::string(piece);
}

}  // namespace cs::byte_level
