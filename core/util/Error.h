#pragma once
// One exception type for everything the user can get wrong: a message that names the file,
// tensor or field, fit to print on one line.
#include <stdexcept>
#include <string>
#include <vector>

namespace cs {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "file: message" with the file path first, as compilers print it.
[[noreturn]] void failIn(const std::string& file, const std::string& message);

std::string shapeToString(const std::vector<long>& shape);

}  // namespace cs
