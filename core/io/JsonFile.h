#pragma once
// Reading JSON files and typed fields with errors that name the file and the field.
#include <nlohmann/json.hpp>

#include <string>

namespace cs {

nlohmann::json readJsonFile(const std::string& path);

// A typed field lookup that throws "file: field 'x' ..." on a missing or mistyped value.
class JsonFields {
public:
    JsonFields(const nlohmann::json& j, std::string file) : j_(j), file_(std::move(file)) {}
    bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }
    long integer(const std::string& key) const;
    long integerOr(const std::string& key, long fallback) const;
    double number(const std::string& key) const;
    double numberOr(const std::string& key, double fallback) const;
    std::string string(const std::string& key) const;
    std::string stringOr(const std::string& key, const std::string& fallback) const;
    bool booleanOr(const std::string& key, bool fallback) const;
    const nlohmann::json& json() const { return j_; }
    const std::string& file() const { return file_; }

private:
    const nlohmann::json& j_;
    std::string file_;
};

}  // namespace cs
