// `circuitscope` as users run it. LibTorch's OpenMP runtime and OpenBLAS read their settings
// from the environment once, when they are loaded, and the right settings make the program up
// to 3x faster (core/runtime/ComputeEnvironment.h). This launcher links neither library nor Qt:
// it sets those variables and then executes the program proper, which loads everything once
// with them in place. The program re-executing itself instead cost 0.6 s on every command
// (bench/bench_startup prints both).
#include "runtime/ComputeVariables.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <unistd.h>

namespace {

std::string ownDirectory() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    const std::string path(buf, static_cast<size_t>(n));
    return path.substr(0, path.rfind('/'));
}

}  // namespace

int main(int, char** argv) {
    if (!std::getenv("CIRCUITSCOPE_KEEP_ENV")) {
        // Which kernels OpenBLAS picks on this CPU is only known by asking it; loading it alone
        // takes milliseconds, and executing the program below discards it again.
        ::dlopen("libblas.so.3", RTLD_NOW | RTLD_GLOBAL);
        cs::setComputeVariables();
        ::setenv("CIRCUITSCOPE_KEEP_ENV", "1", 1);  // the program must not re-execute itself
    }
    // Beside the launcher in the build tree; in libexec when installed (bin/../libexec keeps the
    // program's own look-ups relative to bin/.. working: the demo, the SentencePiece plug-in).
    const std::string dir = ownDirectory();
    const std::string candidates[] = {dir + "/circuitscope-main", dir + "/../libexec/circuitscope-main"};
    for (const auto& program : candidates) {
        if (::access(program.c_str(), X_OK) != 0) continue;
        ::execv(program.c_str(), argv);
        std::fprintf(stderr, "circuitscope: cannot start %s: %s\n", program.c_str(), std::strerror(errno));
        return 127;
    }
    std::fprintf(stderr, "circuitscope: the program is missing (looked for %s and %s)\n", candidates[0].c_str(),
                 candidates[1].c_str());
    return 127;
}
