#pragma once
// One table per architecture: how config.json names its fields, how the checkpoint names each
// tensor, and the options that make the shared runtime behave like that architecture. Adding an
// architecture means adding a table here, not touching the runtime.
#include "model/ModelConfig.h"

#include <string>
#include <vector>

namespace cs {

class JsonFields;

enum class Param {
    TokEmbed, PosEmbed, FinalNormW, FinalNormB, LmHead,
    // per layer
    Ln1W, Ln1B, QkvW, QkvB, QW, QB, KW, KB, VW, VB, OW, OB, Ln2W, Ln2B,
    UpW, UpB, GateW, DownW, DownB,
    Ln1PostW, Ln2PostW,  // norms on the attention and MLP outputs (Gemma 2)
};

// How a weight matrix is stored: nn.Linear keeps [out, in], GPT-2's Conv1D keeps [in, out].
enum class Layout { OutIn, InOut, Vector };

struct TensorRule {
    Param param;
    const char* name;  // "{L}" stands for the layer index; no model prefix
    Layout layout;
    bool perLayer;
    bool required;
    // When set, the tensor exists only in models whose config makes this true (Llama's
    // attention_bias): it is then required if `required`, and never read otherwise.
    bool (*appliesTo)(const ModelConfig& cfg) = nullptr;
};

inline bool ruleApplies(const TensorRule& rule, const ModelConfig& cfg) {
    return !rule.appliesTo || rule.appliesTo(cfg);
}

struct ArchSpec {
    const char* modelType;
    // Checkpoints name tensors with or without this prefix (e.g. "transformer.", "model.").
    const char* prefix;
    std::vector<TensorRule> rules;
    // Reads config.json fields into cfg (shape, eps, options); throws naming the field.
    void (*readConfig)(const JsonFields& j, ModelConfig& cfg);
};

const ArchSpec& archFor(const std::string& modelType, const std::string& configPath);
std::vector<std::string> supportedArchitectures();

// Expected [rows, cols] (or [n]) of a parameter as the checkpoint stores it.
std::vector<long> expectedShape(const ModelConfig& cfg, const TensorRule& rule);

std::string tensorName(const TensorRule& rule, int layer);

}  // namespace cs
