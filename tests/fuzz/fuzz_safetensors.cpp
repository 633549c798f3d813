// safetensors: the 8-byte header length, the JSON header, dtypes, shapes and data offsets, then
// every tensor read back (bounds are only proven by reading).
#include <ATen/ATen.h>

#include "FuzzInput.h"
#include "io/Safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto st = cs::SafetensorsFile::open(csfuzz::writeFile("model.safetensors", data, size));
        for (const auto& [name, info] : st->tensors()) {
            at::Tensor t = info.dtype == cs::DType::F32 || info.dtype == cs::DType::F16 ||
                                   info.dtype == cs::DType::BF16 || info.dtype == cs::DType::F64
                               ? st->load(name)
                               : st->loadAs(name, at::kLong);
            if (t.numel() > 0) (void)t.sum().item<double>();  // touches every byte
        }
    } catch (const std::exception& e) {
        // cs::Error for a malformed file is the expected outcome.
        csfuzz::note(e.what());
    }
    return 0;
}
