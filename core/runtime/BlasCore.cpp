#include "runtime/BlasCore.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <unistd.h>

namespace cs {

const char* blasCoreName() {
    using CoreName = char* (*)();
    auto fn = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    return fn ? fn() : "";
}

void ensureFastBlas(int argc, char** argv) {
    (void)argc;
    if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("CIRCUITSCOPE_NO_BLAS_FIX")) return;
    const char* core = blasCoreName();
    if (!core || !*core) return;
    const bool generic = std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                         std::strcmp(core, "Unknown") == 0 || std::strcmp(core, "Nehalem") == 0;
    if (!generic) return;
    __builtin_cpu_init();
    const char* want = nullptr;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    ::setenv("OPENBLAS_CORETYPE", want, 1);
    ::setenv("CIRCUITSCOPE_NO_BLAS_FIX", "1", 1);  // never loop
    ::execv("/proc/self/exe", argv);
    // exec failed: carry on with the slow kernels rather than not at all
}

}  // namespace cs
