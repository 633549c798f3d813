// Saved sessions (*.csession), steering rows included. Errors come back as a message, not thrown.
#include <cstdlib>

#include "FuzzInput.h"
#include "ui/SessionFile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = csfuzz::writeFile("fuzz.csession", data, size);
    cs::ui::SessionState state;
    try {
        (void)cs::ui::loadSessionFile(QString::fromStdString(path), state);
    } catch (const std::exception&) {
        // The GUI calls this without a try: an exception escaping it is a bug.
        std::abort();
    }
    return 0;
}
