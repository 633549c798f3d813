// Hugging Face tokenizer.json: model, normalizer, pre-tokenizer, decoder, added tokens and
// post-processor, through the loader the app uses.
#include "FuzzInput.h"
#include "TokenizerUse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto tok = cs::loadTokenizer(csfuzz::writeFile("tokenizer.json", data, size));
        csfuzz::exercise(*tok);
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
