#include "FuzzInput.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace csfuzz {

const std::string& scratchDir() {
    // Never destroyed: the atexit cleanup below runs after static destructors would have.
    static const std::string& dir = *new std::string([] {
        // Memory-backed when possible: rewriting a file in place on ext4 costs a block flush
        // each time (auto_da_alloc), which made every target 50x slower on disk.
        std::string base = "/dev/shm";
        if (const char* env = std::getenv("CS_FUZZ_TMPDIR"); env && *env)
            base = env;
        else if (::access(base.c_str(), W_OK) != 0)
            base = std::getenv("TMPDIR") && *std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
        std::string d = base + "/cs-fuzz-" + std::to_string(::getpid());
        std::filesystem::create_directories(d);
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(scratchDir(), ignored);
        });
        return d;
    }());
    return dir;
}

std::string writeFile(const std::string& name, const uint8_t* data, size_t size) {
    const std::string path = scratchDir() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
        // A harness that silently fuzzes an empty file would report success for nothing.
        std::fprintf(stderr, "fuzz harness: cannot write %s\n", path.c_str());
        std::abort();
    }
    return path;
}

std::string writeFile(const std::string& name, const std::string& bytes) {
    return writeFile(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::pair<std::string, std::string> splitAtNul(const uint8_t* data, size_t size) {
    const std::string all(reinterpret_cast<const char*>(data), size);
    const size_t nul = all.find('\0');
    if (nul == std::string::npos) return {all, std::string()};
    return {all.substr(0, nul), all.substr(nul + 1)};
}

void note(const char* what) {
    static const bool verbose = std::getenv("CS_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "  expected error: %s\n", what);
}

}  // namespace csfuzz
