#include "util/Error.h"

namespace cs {

void failIn(const std::string& file, const std::string& message) {
    throw Error(file + ": " + message);
}

std::string shapeToString(const std::vector<long>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ",";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace cs
