#include "io/JsonFile.h"

#include "util/Error.h"

#include <fstream>
#include <sstream>

namespace cs {

nlohmann::json readJsonFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failIn(path, "cannot open (missing file?)");
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const std::exception& e) {
        failIn(path, std::string("not valid JSON: ") + e.what());
    }
}

long JsonFields::integer(const std::string& key) const {
    if (!has(key)) failIn(file_, "missing field '" + key + "'");
    const auto& v = j_[key];
    if (!v.is_number_integer()) failIn(file_, "field '" + key + "' must be an integer");
    return v.get<long>();
}

long JsonFields::integerOr(const std::string& key, long fallback) const {
    return has(key) ? integer(key) : fallback;
}

double JsonFields::number(const std::string& key) const {
    if (!has(key)) failIn(file_, "missing field '" + key + "'");
    const auto& v = j_[key];
    if (!v.is_number()) failIn(file_, "field '" + key + "' must be a number");
    return v.get<double>();
}

double JsonFields::numberOr(const std::string& key, double fallback) const {
    return has(key) ? number(key) : fallback;
}

std::string JsonFields::string(const std::string& key) const {
    if (!has(key)) failIn(file_, "missing field '" + key + "'");
    const auto& v = j_[key];
    if (!v.is_string()) failIn(file_, "field '" + key + "' must be a string");
    return v.get<std::string>();
}

std::string JsonFields::stringOr(const std::string& key, const std::string& fallback) const {
    return has(key) ? string(key) : fallback;
}

bool JsonFields::booleanOr(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const auto& v = j_[key];
    if (!v.is_boolean()) failIn(file_, "field '" + key + "' must be true or false");
    return v.get<bool>();
}

}  // namespace cs
