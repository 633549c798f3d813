#include "runtime/ComputeEnvironment.h"

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

namespace {

const char* betterBlasCore() {
    if (std::getenv("OPENBLAS_CORETYPE")) return nullptr;
    const char* core = blasCoreName();
    if (!core || !*core) return nullptr;
    const bool generic = std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                         std::strcmp(core, "Unknown") == 0 || std::strcmp(core, "Nehalem") == 0;
    if (!generic) return nullptr;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return nullptr;
}

}  // namespace

void prepareComputeEnvironment(char** argv) {
    if (std::getenv("CIRCUITSCOPE_KEEP_ENV")) return;
    bool changed = false;
    if (!std::getenv("OMP_WAIT_POLICY")) {
        ::setenv("OMP_WAIT_POLICY", "passive", 1);
        changed = true;
    }
    if (const char* core = betterBlasCore()) {
        ::setenv("OPENBLAS_CORETYPE", core, 1);
        changed = true;
    }
    if (!changed) return;
    ::setenv("CIRCUITSCOPE_KEEP_ENV", "1", 1);  // never loop
    ::execv("/proc/self/exe", argv);
    // exec failed: carry on at the slower speed rather than not at all
}

}  // namespace cs
