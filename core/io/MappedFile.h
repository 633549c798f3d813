#pragma once
// A read-only memory map of a whole file. Weights are used straight from the map where their
// dtype allows, so loading a checkpoint costs page-cache residency, not a second copy.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cs {

class MappedFile {
public:
    static std::shared_ptr<MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

    // Tell the kernel a byte range will not be read again (after converting it to another dtype).
    void release(size_t offset, size_t length) const;

private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace cs
