#include "runtime/Version.h"

#include "runtime/ComputeVariables.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <torch/version.h>
#include <zip.h>

#ifndef CS_VERSION
#error "CS_VERSION comes from project(VERSION) in the top-level CMakeLists.txt (core/CMakeLists.txt)"
#endif

namespace cs {

const char* circuitscopeVersion() { return CS_VERSION; }

std::string versionReport(const std::vector<std::pair<std::string, std::string>>& extra) {
    std::vector<std::pair<std::string, std::string>> libs = {
        {"LibTorch", TORCH_VERSION},
        {"SQLite", sqlite3_libversion()},
        {"libzip", zip_libzip_version()},
        {"nlohmann-json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_MINOR) +
                              "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH)},
    };
    libs.insert(libs.end(), extra.begin(), extra.end());
    std::string out = std::string("circuitscope ") + circuitscopeVersion() + "\n";
    for (const auto& [name, version] : libs) out += "  " + name + " " + version + "\n";
    // What the launcher chose (app/launcher): the first thing to check when a report says "slow".
    const char* core = blasCoreName();
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    out += std::string("  compute: OpenBLAS ") + (*core ? core : "not loaded") + " kernels, OMP_WAIT_POLICY=" +
           (wait ? wait : "unset") + "\n";
    return out;
}

}  // namespace cs
