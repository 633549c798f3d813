#pragma once
// Loads a Hugging Face model directory (config.json + safetensors) into a Transformer, using the
// architecture's table for tensor names and checking every shape against the config.
#include "model/Transformer.h"

#include <memory>
#include <string>

namespace cs {

ModelConfig readModelConfig(const std::string& dir);
std::shared_ptr<Transformer> loadModel(const std::string& dir);

}  // namespace cs
