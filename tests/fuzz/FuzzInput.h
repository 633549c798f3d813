#pragma once
// What every fuzz target shares: most parsers read a path, so the input is written to a file in
// a directory of this process's own (parallel fuzzing jobs must not overwrite each other).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace csfuzz {

// The per-process scratch directory, created on first use.
const std::string& scratchDir();
// Writes the bytes to scratchDir()/name (replacing it) and returns the path.
std::string writeFile(const std::string& name, const uint8_t* data, size_t size);
std::string writeFile(const std::string& name, const std::string& bytes);
// Two files in one input: the bytes before the first NUL and those after it (none: all first).
std::pair<std::string, std::string> splitAtNul(const uint8_t* data, size_t size);
// Prints an expected error when CS_FUZZ_VERBOSE is set: to see that a seed is accepted, or why not.
void note(const char* what);

}  // namespace csfuzz
