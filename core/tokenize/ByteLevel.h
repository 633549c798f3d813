#pragma once
// GPT-2's bytes_to_unicode, which every byte-level BPE vocabulary is written in: printable
// Latin-1 bytes stand for themselves, the other 68 bytes are moved to U+0100.. in byte order, so
// each byte is one visible character in vocab.json and tokenizer.json.
#include <string>
#include <string_view>

namespace cs::byte_level {

// The character (UTF-8) that stands for byte b.
const std::string& charOf(unsigned char b);

// Appends the bytes a vocabulary piece stands for, when every character of it is a byte
// character; false (out as it was) otherwise. Hugging Face's ByteLevel decoder keeps such a piece
// (an added token, say) as its own UTF-8 text.
bool appendBytesOf(std::string_view piece, std::string& out);
bool bytesOf(std::string_view piece, std::string* out);

// bytesOf, or the piece itself when it is not all byte characters.
std::string decodePiece(std::string_view piece);

}  // namespace cs::byte_level
