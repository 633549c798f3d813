#pragma once
// How weight matrices are held in memory; its own header so views can name it without LibTorch.
#include <string>

namespace cs {

// Vectors (norm weights, biases) and learned position embeddings are always fp32: they are small
// and added to fp32 activations.
enum class WeightPrecision {
    Stored,  // as the file has them: F32 stays F32 (a view of the map), BF16 stays BF16 (a view),
             // F16 becomes BF16 (LibTorch 1.13 has no CPU half-precision matmul)
    F32,     // every matrix converted to fp32 (the reference precision; twice a 16-bit file)
    BF16,    // every matrix bfloat16: halves an fp32 checkpoint, about twice the decode speed
};

// "auto" / "stored", "f32" / "fp32" / "float32", "bf16" / "bfloat16"; throws cs::Error naming the value.
WeightPrecision parseWeightPrecision(const std::string& text);
const char* weightPrecisionName(WeightPrecision p);

}  // namespace cs
