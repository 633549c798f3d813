// A model directory's config.json, every architecture's fields (ArchTable), and the checks that
// keep later shape arithmetic sound.
#include "FuzzInput.h"
#include "model/ModelLoader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    csfuzz::writeFile("config.json", data, size);
    try {
        (void)cs::readModelConfig(csfuzz::scratchDir());
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
