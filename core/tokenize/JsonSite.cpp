#include "tokenize/JsonSite.h"

#include "tokenize/Utf8.h"

namespace cs {
namespace {

const nlohmann::json& nullJson() {
    static const nlohmann::json j;
    return j;
}

}  // namespace

JsonSite JsonSite::at(const std::string& key) const {
    const bool present = j_.is_object() && j_.contains(key);
    return JsonSite(present ? j_.at(key) : nullJson(), file_, fieldName(key));
}

JsonSite JsonSite::at(size_t index) const {
    const bool present = j_.is_array() && index < j_.size();
    return JsonSite(present ? j_.at(index) : nullJson(), file_,
                    path_ + "[" + std::to_string(index) + "]");
}

std::string JsonSite::type() const {
    if (!j_.is_object()) fail("must be an object with a 'type'");
    if (!has("type") || !j_.at("type").is_string()) failAt("type", "must be a string");
    return j_.at("type").get<std::string>();
}

std::string JsonSite::string(const std::string& key) const {
    if (!has(key) || !j_.at(key).is_string()) failAt(key, "must be a string");
    return j_.at(key).get<std::string>();
}

bool JsonSite::boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_boolean()) failAt(key, "must be true or false");
    return j_.at(key).get<bool>();
}

long JsonSite::integer(const std::string& key, long fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_number_integer()) failAt(key, "must be an integer");
    return j_.at(key).get<long>();
}

size_t JsonSite::arraySize(const std::string& key) const {
    if (!has(key) || !j_.at(key).is_array()) failAt(key, "must be an array");
    return j_.at(key).size();
}

void JsonSite::fail(const std::string& message) const {
    failIn(file_, "field '" + path_ + "' " + message);
}

void JsonSite::failAt(const std::string& key, const std::string& message) const {
    failIn(file_, "field '" + fieldName(key) + "' " + message);
}

void JsonSite::unsupportedType(const std::string& supported) const {
    throw UnsupportedTokenizer(file_ + ": field '" + fieldName("type") + "' is '" +
                               utf8::forMessage(type()) +
                               "', which is not supported (supported: " + supported + ")");
}

}  // namespace cs
