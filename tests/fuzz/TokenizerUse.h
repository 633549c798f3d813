#pragma once
// What the tokenizer targets do with a tokenizer that loaded: encode and decode a few texts that
// reach the byte-level, Unicode and added-token paths, and look up ids at the vocabulary's edges.
#include "tokenize/Tokenizer.h"

namespace csfuzz {

inline void exercise(const cs::Tokenizer& tok) {
    static const char* texts[] = {"", "Hello world", " the  cat\n\nsat\t", "<|endoftext|>a<s></s>",
                                  "\xC3\xA9t\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80", "\xFF\xFE broken \xC3"};
    for (const char* t : texts) {
        const std::vector<int> ids = tok.encode(t);
        (void)tok.decode(ids);
        for (int id : ids) (void)tok.tokenText(id);
    }
    const int n = tok.vocabSize();
    for (int id : {0, 1, n - 1, n, -1}) {
        if (id < 0 || id >= n) continue;  // the interface leaves out-of-range ids to the caller
        (void)tok.piece(id);
        (void)tok.tokenText(id);
        (void)tok.decode({id});
    }
    (void)tok.idOf("a");
}

}  // namespace csfuzz
