// GPT-2's vocab.json + merges.txt. One input holds both files: vocab.json, a NUL byte, merges.txt.
#include "FuzzInput.h"
#include "TokenizerUse.h"
#include "tokenize/Gpt2BpeFiles.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto [vocab, merges] = csfuzz::splitAtNul(data, size);
    try {
        auto tok = cs::loadGpt2BpeFiles(csfuzz::writeFile("vocab.json", vocab),
                                        csfuzz::writeFile("merges.txt", merges));
        csfuzz::exercise(*tok);
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
