// .npz archives through libzip, and .npy arrays on their own (the input is taken as a bare .npy
// when it starts with numpy's magic, as a zip otherwise).
#include <ATen/ATen.h>

#include <cstring>

#include "FuzzInput.h"
#include "io/NpzReader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0) {
            (void)cs::parseNpy(std::string(reinterpret_cast<const char*>(data), size), "input.npy");
            return 0;
        }
        auto npz = cs::NpzFile::open(csfuzz::writeFile("params.npz", data, size));
        for (const auto& name : npz->names()) {
            try {
                at::Tensor t = npz->load(name);
                if (t.numel() > 0) (void)t.sum().item<double>();
            } catch (const std::exception& e) {
                // one bad array must not hide the others from the fuzzer
                csfuzz::note(e.what());
            }
        }
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
