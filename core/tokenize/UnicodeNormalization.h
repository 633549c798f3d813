#pragma once
// Unicode normalisation forms (NFC for Qwen's tokenizer.json), the one use core/ makes of QtCore:
// Qt's tables are a maintained Debian library, and writing them again here buys nothing.
#include <string>
#include <string_view>

namespace cs {

enum class NormalizationForm { Nfc, Nfd, Nfkc, Nfkd };

// The text in the given form. ASCII is returned as it is (every form leaves it alone), and bytes
// that are not well-formed UTF-8 are kept where they are, with the text between them normalised.
std::string normalizeUnicode(std::string_view text, NormalizationForm form);

}  // namespace cs
