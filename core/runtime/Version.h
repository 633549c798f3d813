#pragma once
// The program's version (CMake's project(VERSION), one place) and the libraries it was built
// with, for `circuitscope --version` and an About box.
#include <string>
#include <utility>
#include <vector>

namespace cs {

// "0.1.0"
const char* circuitscopeVersion();

// "circuitscope 0.1.0" then one "NAME VERSION" line per library core/ uses (LibTorch, SQLite,
// libzip, nlohmann-json), then `extra` (what only the caller links, e.g. Qt), then the compute
// settings in effect (OpenBLAS kernels, OMP_WAIT_POLICY), newline-terminated.
std::string versionReport(const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace cs
