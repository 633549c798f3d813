// Runs a fuzz target's LLVMFuzzerTestOneInput over every file of the directories given, so the
// seed corpus and every input that once crashed are checked by the normal test suite. A crash or
// a sanitizer report ends the process, which fails the test; a missing directory is not an error
// (a target may have no regressions yet).
//
// The fuzzer also fails an input that allocates more than 2 GB at once (-rss_limit_mb=2048) or
// runs past its timeout; the replay applies the same allocation cap and a generous time limit,
// so an out-of-memory or hang input fails here too instead of passing on a big machine.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
constexpr size_t kMaxAllocMb = 2048;
constexpr double kMaxSecondsPerInput = 10;
}  // namespace

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CS_REPLAY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CS_REPLAY_ASAN 1
#endif

#ifdef CS_REPLAY_ASAN
// ASan owns operator new; it enforces the cap itself.
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=2048"; }
#else
void* operator new(size_t n) {
    if (n > (kMaxAllocMb << 20)) {
        std::fprintf(stderr, "replay: out-of-memory: one allocation of %zu bytes (limit %zu MB)\n", n, kMaxAllocMb);
        std::abort();
    }
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    long ran = 0;
    for (int i = 1; i < argc; ++i) {
        if (!fs::is_directory(argv[i])) continue;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(argv[i]))
            if (e.is_regular_file()) files.push_back(e.path());
        std::sort(files.begin(), files.end());  // a failure names the same file on every run
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
            const auto start = std::chrono::steady_clock::now();
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (secs > kMaxSecondsPerInput) {
                std::fprintf(stderr, "replay: %s took %.1f s (limit %.0f s): a hang\n", f.c_str(), secs,
                             kMaxSecondsPerInput);
                return 1;
            }
            ++ran;
        }
    }
    if (ran == 0) {
        // An empty corpus would make this test pass while checking nothing.
        std::fprintf(stderr, "replay: no input files found\n");
        return 1;
    }
    std::printf("replay: %ld inputs, no crash\n", ran);
    return 0;
}
