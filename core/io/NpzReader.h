#pragma once
// numpy .npz archives (a zip of .npy files, as numpy.savez / savez_compressed write them), read
// through libzip. Gemma Scope ships its SAEs this way (params.npz).
//
// .npy layout (numpy's "NEP 1" format): the magic bytes \x93NUMPY, a major and a minor version
// byte, a little-endian header length (2 bytes in version 1, 4 bytes in versions 2 and 3), then an
// ASCII Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (16, 32), } and
// the raw array bytes. Only C-order, little-endian (or byte-sized) numeric arrays are accepted.
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace cs {

// One .npy array (the bytes of a whole .npy file) as a float32 tensor; `where` names it in errors.
at::Tensor parseNpy(const std::string& bytes, const std::string& where);
// A .npy file on disk (numpy.save), as a float32 tensor. Errors name the path.
at::Tensor loadNpy(const std::string& path);

class NpzFile {
public:
    // Throws cs::Error naming the file when it is missing or not a zip archive.
    static std::shared_ptr<NpzFile> open(const std::string& path);
    ~NpzFile();
    NpzFile(const NpzFile&) = delete;
    NpzFile& operator=(const NpzFile&) = delete;

    const std::string& path() const { return path_; }
    // Array names, without the ".npy" suffix.
    const std::vector<std::string>& names() const { return names_; }
    bool has(const std::string& name) const;
    // The array as a fresh float32 tensor of its stored shape. Errors name the file and the array:
    // a missing array, a bad magic, an unsupported dtype, Fortran order, truncated data.
    at::Tensor load(const std::string& name) const;

private:
    NpzFile() = default;
    std::string path_;
    void* zip_ = nullptr;  // zip_t*, kept out of this header so libzip stays a private dependency
    std::vector<std::string> names_;
};

}  // namespace cs
