#pragma once
// safetensors: 8-byte little-endian header length, a JSON header, then raw little-endian data.
// Reading maps the file; F32 tensors are views into the map, F16/BF16 are converted to F32.
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cs {

class MappedFile;

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

const char* dtypeName(DType d);
size_t dtypeSize(DType d);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<long> shape;
    size_t begin = 0;  // absolute offsets into the file
    size_t end = 0;
    long numel() const;
};

class SafetensorsFile {
public:
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);

    const std::string& path() const;
    bool has(const std::string& name) const { return tensors_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const;
    const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // Float tensors come back as float32. An F32 tensor that is suitably aligned shares memory with
    // the map (read-only: never write into it); everything else is a fresh copy.
    at::Tensor load(const std::string& name) const;
    // The bytes as stored, converted to the given scalar type (for integer tensors).
    at::Tensor loadAs(const std::string& name, at::ScalarType type) const;

private:
    std::shared_ptr<MappedFile> file_;
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
};

// A model's weights: one safetensors file, or an index.json naming shards.
class WeightStore {
public:
    // `dir` holds model.safetensors or model.safetensors.index.json.
    static WeightStore openModelDir(const std::string& dir);
    static WeightStore openFile(const std::string& path);

    bool has(const std::string& name) const;
    const TensorInfo& info(const std::string& name) const;
    at::Tensor load(const std::string& name) const;
    // A float tensor in the given scalar type: a view into the map when the file stores exactly
    // that type (16-bit weights stay 16-bit), else a converted copy.
    at::Tensor loadAs(const std::string& name, at::ScalarType type) const;
    std::vector<std::string> names() const;
    // The file a tensor lives in (for error messages).
    std::string fileOf(const std::string& name) const;
    size_t totalBytes() const;  // stored bytes of all tensors

private:
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::map<std::string, size_t> where_;
};

// Writes tensors (any float/int dtype LibTorch holds) to a safetensors file, in name order.
// `storeAs` F16/BF16/F32 decides how float tensors are stored.
void writeSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      DType storeFloatsAs = DType::F32);

}  // namespace cs
