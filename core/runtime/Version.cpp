#include "runtime/Version.h"

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
    return out;
}

}  // namespace cs
