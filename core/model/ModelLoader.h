#pragma once
// Loads a Hugging Face model directory (config.json + safetensors) into a Transformer, using the
// architecture's table for tensor names and checking every shape against the config.
#include "model/Transformer.h"
#include "model/WeightPrecision.h"

#include <cstddef>
#include <memory>
#include <string>

namespace cs {

struct ModelLoadOptions {
    WeightPrecision precision = WeightPrecision::Stored;
    // Bytes the machine can give the model; 0 reads MemAvailable from /proc/meminfo. Loading
    // refuses, before reading any weight, a model whose weights would not fit.
    size_t availableBytes = 0;
};

// What loading a directory would hold in memory, from the safetensors headers alone.
struct ModelFootprint {
    size_t fileBytes = 0;      // stored bytes of every tensor
    size_t residentBytes = 0;  // weights in memory at the chosen precision
    size_t availableBytes = 0; // what the machine had free when asked
};
ModelFootprint modelFootprint(const std::string& dir, const ModelLoadOptions& opt = {});

// MemAvailable from /proc/meminfo, in bytes (0 when it cannot be read).
size_t availableMemoryBytes();

ModelConfig readModelConfig(const std::string& dir);
std::shared_ptr<Transformer> loadModel(const std::string& dir, const ModelLoadOptions& opt = {});

}  // namespace cs
