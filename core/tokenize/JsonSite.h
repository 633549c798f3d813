#pragma once
// A place in a tokenizer.json ("pre_tokenizer.pretokenizers[0]"), so that every error names the
// file and the field, and a pipeline part we do not run is told apart from a broken file.
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cs {

// A tokenizer.json that is well formed but asks for something not implemented here (a Unigram
// model, a Metaspace pre-tokenizer ...). The loader may fall back to a tokenizer.model beside it.
class UnsupportedTokenizer : public Error {
public:
    using Error::Error;
};

class JsonSite {
public:
    JsonSite(const nlohmann::json& j, std::string file, std::string path)
        : j_(j), file_(std::move(file)), path_(std::move(path)) {}

    const nlohmann::json& json() const { return j_; }
    const std::string& file() const { return file_; }
    const std::string& path() const { return path_; }
    bool isNull() const { return j_.is_null(); }
    bool has(const std::string& key) const {
        return j_.is_object() && j_.contains(key) && !j_.at(key).is_null();
    }
    // A member (null when absent) or an element.
    JsonSite at(const std::string& key) const;
    JsonSite at(size_t index) const;

    // The "type" member, required.
    std::string type() const;
    std::string string(const std::string& key) const;
    bool boolean(const std::string& key, bool fallback) const;
    long integer(const std::string& key, long fallback) const;
    // An array member, required; its size.
    size_t arraySize(const std::string& key) const;

    [[noreturn]] void fail(const std::string& message) const;
    [[noreturn]] void failAt(const std::string& key, const std::string& message) const;
    // "field 'x.type' is 'Y'; supported: ..." as an UnsupportedTokenizer.
    [[noreturn]] void unsupportedType(const std::string& supported) const;

private:
    std::string fieldName(const std::string& key) const {
        return path_.empty() ? key : path_ + "." + key;
    }
    const nlohmann::json& j_;
    std::string file_, path_;
};

}  // namespace cs
