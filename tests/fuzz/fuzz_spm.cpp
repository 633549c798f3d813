// SentencePiece tokenizer.model files, through the plug-in that holds libsentencepiece.
#include "FuzzInput.h"
#include "TokenizerUse.h"
#include "tokenize/SentencePieceTokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        cs::SentencePieceTokenizer tok(csfuzz::writeFile("tokenizer.model", data, size));
        csfuzz::exercise(tok);
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
