#include "io/Safetensors.h"

#include "io/MappedFile.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace cs {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

bool parseDType(const std::string& s, DType& out) {
    static const std::pair<const char*, DType> table[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
        {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
        {"U8", DType::U8},   {"BOOL", DType::BOOL}};
    for (const auto& [name, d] : table)
        if (s == name) {
            out = d;
            return true;
        }
    return false;
}

at::ScalarType scalarTypeOf(DType d) {
    switch (d) {
        case DType::F32: return at::kFloat;
        case DType::F16: return at::kHalf;
        case DType::BF16: return at::kBFloat16;
        case DType::F64: return at::kDouble;
        case DType::I64: return at::kLong;
        case DType::I32: return at::kInt;
        case DType::I16: return at::kShort;
        case DType::I8: return at::kChar;
        case DType::U8: return at::kByte;
        case DType::BOOL: return at::kBool;
    }
    return at::kFloat;
}

bool fileExists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

const char* dtypeName(DType d) {
    switch (d) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
        case DType::F64: return "F64";
        case DType::I64: return "I64";
        case DType::I32: return "I32";
        case DType::I16: return "I16";
        case DType::I8: return "I8";
        case DType::U8: return "U8";
        case DType::BOOL: return "BOOL";
    }
    return "?";
}

size_t dtypeSize(DType d) {
    switch (d) {
        case DType::F64: case DType::I64: return 8;
        case DType::F32: case DType::I32: return 4;
        case DType::F16: case DType::BF16: case DType::I16: return 2;
        default: return 1;
    }
}

long TensorInfo::numel() const {
    long n = 1;
    for (long s : shape) n *= s;
    return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    auto st = std::make_shared<SafetensorsFile>();
    st->file_ = MappedFile::open(path);
    const size_t size = st->file_->size();
    if (size < 8) failIn(path, "not a safetensors file (shorter than its 8-byte header length)");
    uint64_t headerLen = 0;
    std::memcpy(&headerLen, st->file_->data(), 8);  // little-endian on every target we build for
    if (headerLen > kMaxHeaderBytes || headerLen > size - 8)
        failIn(path, "safetensors header length " + std::to_string(headerLen) +
                         " runs past the end of the file (" + std::to_string(size) +
                         " bytes): truncated or not a safetensors file");
    const char* hdr = reinterpret_cast<const char*>(st->file_->data() + 8);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(hdr, hdr + headerLen);
    } catch (const std::exception& e) {
        failIn(path, std::string("safetensors header is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) failIn(path, "safetensors header is not a JSON object");
    const size_t dataStart = 8 + headerLen;
    const size_t dataSize = size - dataStart;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            if (v.is_object())
                for (auto m = v.begin(); m != v.end(); ++m)
                    if (m.value().is_string()) st->metadata_[m.key()] = m.value().get<std::string>();
            continue;
        }
        auto bad = [&](const std::string& what) {
            failIn(path, "tensor '" + name + "': " + what);
        };
        if (!v.is_object()) bad("header entry is not an object");
        if (!v.contains("dtype") || !v["dtype"].is_string()) bad("missing field 'dtype'");
        if (!v.contains("shape") || !v["shape"].is_array()) bad("missing field 'shape'");
        if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
            v["data_offsets"].size() != 2)
            bad("missing field 'data_offsets' [begin, end]");
        TensorInfo ti;
        ti.name = name;
        const std::string dt = v["dtype"].get<std::string>();
        if (!parseDType(dt, ti.dtype)) bad("unsupported dtype '" + dt + "'");
        for (const auto& d : v["shape"]) {
            if (!d.is_number_integer() || d.get<long long>() < 0) bad("shape has a non-integer or negative dimension");
            ti.shape.push_back(d.get<long>());
        }
        const auto& off = v["data_offsets"];
        if (!off[0].is_number_unsigned() && !off[0].is_number_integer()) bad("data_offsets are not integers");
        if (!off[1].is_number_unsigned() && !off[1].is_number_integer()) bad("data_offsets are not integers");
        long long b = off[0].get<long long>(), e = off[1].get<long long>();
        if (b < 0 || e < b) bad("data_offsets [" + std::to_string(b) + "," + std::to_string(e) + "] are invalid");
        if (static_cast<size_t>(e) > dataSize)
            bad("data_offsets end " + std::to_string(e) + " points past the end of the data (" +
                std::to_string(dataSize) + " bytes): file truncated?");
        // Multiplied with an overflow check: a huge shape could otherwise wrap to the stored size.
        size_t expect = dtypeSize(ti.dtype);
        for (long d : ti.shape)
            if (__builtin_mul_overflow(expect, static_cast<size_t>(d), &expect))
                bad("shape " + shapeToString(ti.shape) + " is too large");
        if (static_cast<size_t>(e - b) != expect)
            bad("holds " + std::to_string(e - b) + " bytes but shape " + shapeToString(ti.shape) +
                " of " + dt + " needs " + std::to_string(expect));
        ti.begin = dataStart + static_cast<size_t>(b);
        ti.end = dataStart + static_cast<size_t>(e);
        st->tensors_.emplace(name, std::move(ti));
    }
    return st;
}

const std::string& SafetensorsFile::path() const { return file_->path(); }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) failIn(path(), "no tensor named '" + name + "'");
    return it->second;
}

at::Tensor SafetensorsFile::loadAs(const std::string& name, at::ScalarType type) const {
    const TensorInfo& ti = info(name);
    const uint8_t* p = file_->data() + ti.begin;
    std::vector<int64_t> shape(ti.shape.begin(), ti.shape.end());
    const at::ScalarType stored = scalarTypeOf(ti.dtype);
    const bool aligned = reinterpret_cast<uintptr_t>(p) % dtypeSize(ti.dtype) == 0;
    if (stored == type && aligned) {
        // Zero-copy: the tensor keeps the map alive through its deleter.
        auto keep = new std::shared_ptr<MappedFile>(file_);
        return at::from_blob(const_cast<uint8_t*>(p), shape,
                             [keep](void*) { delete keep; },
                             at::TensorOptions().dtype(stored));
    }
    at::Tensor raw = at::empty(shape, at::TensorOptions().dtype(stored));
    if (ti.end > ti.begin) std::memcpy(raw.data_ptr(), p, ti.end - ti.begin);
    at::Tensor out = raw.to(type);
    if (stored != type) file_->release(ti.begin, ti.end - ti.begin);
    return out;
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
    const TensorInfo& ti = info(name);
    switch (ti.dtype) {
        case DType::F32: case DType::F16: case DType::BF16: case DType::F64:
            return loadAs(name, at::kFloat);
        default:
            failIn(path(), "tensor '" + name + "' has dtype " + dtypeName(ti.dtype) +
                               ", expected a float type (F32, F16 or BF16)");
    }
}

WeightStore WeightStore::openFile(const std::string& path) {
    WeightStore ws;
    ws.files_.push_back(SafetensorsFile::open(path));
    for (const auto& [name, ti] : ws.files_[0]->tensors()) ws.where_[name] = 0;
    return ws;
}

WeightStore WeightStore::openModelDir(const std::string& dir) {
    const std::string single = dir + "/model.safetensors";
    const std::string index = dir + "/model.safetensors.index.json";
    if (fileExists(single)) return openFile(single);
    if (!fileExists(index))
        failIn(dir, "no model.safetensors or model.safetensors.index.json in the model directory");
    std::ifstream in(index);
    nlohmann::json j;
    try {
        in >> j;
    } catch (const std::exception& e) {
        failIn(index, std::string("not valid JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
        failIn(index, "missing field 'weight_map'");
    WeightStore ws;
    std::map<std::string, size_t> shardIndex;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string()) failIn(index, "weight_map['" + it.key() + "'] is not a file name");
        const std::string shard = it.value().get<std::string>();
        if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
            failIn(index, "weight_map['" + it.key() + "'] names a file outside the model directory");
        auto s = shardIndex.find(shard);
        if (s == shardIndex.end()) {
            ws.files_.push_back(SafetensorsFile::open(dir + "/" + shard));
            s = shardIndex.emplace(shard, ws.files_.size() - 1).first;
        }
        if (!ws.files_[s->second]->has(it.key()))
            failIn(dir + "/" + shard, "tensor '" + it.key() + "' listed in the index is not in this shard");
        ws.where_[it.key()] = s->second;
    }
    return ws;
}

bool WeightStore::has(const std::string& name) const { return where_.count(name) != 0; }

const TensorInfo& WeightStore::info(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the model weights");
    return files_[it->second]->info(name);
}

at::Tensor WeightStore::load(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the model weights");
    return files_[it->second]->load(name);
}

at::Tensor WeightStore::loadAs(const std::string& name, at::ScalarType type) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the model weights");
    const SafetensorsFile& f = *files_[it->second];
    const DType d = f.info(name).dtype;
    if (d != DType::F32 && d != DType::F16 && d != DType::BF16 && d != DType::F64)
        failIn(f.path(), "tensor '" + name + "' has dtype " + dtypeName(d) +
                             ", expected a float type (F32, F16 or BF16)");
    return f.loadAs(name, type);
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> out;
    for (const auto& [n, i] : where_) out.push_back(n);
    return out;
}

std::string WeightStore::fileOf(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) return files_.empty() ? std::string("weights") : files_[0]->path();
    return files_[it->second]->path();
}

size_t WeightStore::totalBytes() const {
    size_t n = 0;
    for (const auto& f : files_)
        for (const auto& [name, ti] : f->tensors()) n += ti.end - ti.begin;
    return n;
}

void writeSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata, DType storeFloatsAs) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::vector<at::Tensor> stored;
    size_t offset = 0;
    for (const auto& [name, t0] : tensors) {
        at::Tensor t = t0.detach().cpu();
        DType dt;
        switch (t.scalar_type()) {
            case at::kFloat: case at::kHalf: case at::kBFloat16: case at::kDouble:
                dt = storeFloatsAs;
                break;
            case at::kLong: dt = DType::I64; break;
            case at::kInt: dt = DType::I32; break;
            case at::kShort: dt = DType::I16; break;
            case at::kChar: dt = DType::I8; break;
            case at::kByte: dt = DType::U8; break;
            case at::kBool: dt = DType::BOOL; break;
            default: throw Error(path + ": tensor '" + name + "' has an unsupported dtype");
        }
        t = t.to(scalarTypeOf(dt)).contiguous();
        const size_t bytes = static_cast<size_t>(t.numel()) * dtypeSize(dt);
        header[name] = {{"dtype", dtypeName(dt)},
                        {"shape", t.sizes().vec()},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
        stored.push_back(t);
    }
    std::string h = header.dump();
    while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // keep the data 8-byte aligned
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot open for writing");
    uint64_t n = h.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& t : stored)
        out.write(static_cast<const char*>(t.data_ptr()),
                  static_cast<std::streamsize>(t.numel() * t.element_size()));
    if (!out) throw Error(path + ": write failed");
}

}  // namespace cs
