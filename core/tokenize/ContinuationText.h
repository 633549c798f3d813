#pragma once
// The text a continuation adds after its prompt, as a reader sees it. Decoding the continuation
// alone loses what depends on the token before it (SentencePiece drops a leading "▁" as the start
// of a text, so " there" after "Once upon a time" came out as "there"), and a BOS or EOS the
// model emitted between two stories showed up as a literal "<s>".
#include "tokenize/Tokenizer.h"

#include <string>
#include <vector>

namespace cs {

// decode(prompt + continuation) after decode(prompt), with the tokenizer's BOS and EOS left out
// of the continuation; decode(continuation) alone where the two decodings do not line up.
std::string continuationText(const Tokenizer& tok, const std::vector<int>& prompt, const std::vector<int>& continuation);
std::string continuationText(const Tokenizer& tok, const std::vector<long>& prompt, const std::vector<long>& continuation);

}  // namespace cs
