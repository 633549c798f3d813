#include "runtime/ComputeVariables.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

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

bool setComputeVariables() {
    bool changed = false;
    if (!std::getenv("OMP_WAIT_POLICY")) {
        ::setenv("OMP_WAIT_POLICY", "passive", 1);
        changed = true;
    }
    if (const char* core = betterBlasCore()) {
        ::setenv("OPENBLAS_CORETYPE", core, 1);
        changed = true;
    }
    return changed;
}

}  // namespace cs
