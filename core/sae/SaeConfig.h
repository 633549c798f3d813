#pragma once
// What an SAE or transcoder file says about itself, in one struct whatever the format: SAELens
// cfg.json (v6 with nested metadata, and the older flat layouts), Llama Scope hyperparams.json,
// and Gemma Scope (no config at all: shapes and the path are all there is).
#include <nlohmann/json.hpp>

#include <string>

namespace cs {

enum class SaeArch { Standard, JumpReLU, TopK, Gated, Transcoder, SkipTranscoder, JumpReLUTranscoder };

// SAELens architecture names: standard, jumprelu, topk, gated, transcoder, skip_transcoder,
// jumprelu_transcoder. Throws cs::Error naming `file` for anything else.
SaeArch parseSaeArch(const std::string& name, const std::string& file);
const char* saeArchName(SaeArch a);
bool isTranscoder(SaeArch a);
bool usesThreshold(SaeArch a);  // JumpReLU and JumpReLUTranscoder

struct SaeConfig {
    long dIn = 0;
    long dSae = 0;
    long dOut = 0;  // output width: dIn for SAEs, the output hook's width for transcoders
    SaeArch architecture = SaeArch::Standard;
    long k = 0;  // TopK only
    bool applyBDecToInput = true;
    // "none", or "expected_average_only_in": the input is multiplied by normScaleIn and the output
    // divided by normScaleOut. SAELens keeps its one factor outside cfg.json (in its pretrained
    // directory), so we read it from a `norm_scaling_factor` field when one is there and refuse
    // the file otherwise; Llama Scope derives both factors from its dataset norms. Sae folds the
    // factors into the weights at construction, after which this is "none". SAELens'
    // per-token modes (constant_norm_rescale, layer_norm) are refused: decode alone could not undo them.
    std::string normalizeActivations = "none";
    double normScaleIn = 0.0;   // 0: not given
    double normScaleOut = 0.0;
    std::string hookName;     // where the input is read (and, for SAEs, where output goes)
    std::string hookNameOut;  // transcoders: where the output is predicted
    int hookLayer = -1;
    std::string modelName;
    long contextSize = 0;
    bool prependBos = true;
    std::string format;  // "saelens" | "gemmascope" | "llamascope"
    std::string source;  // the file or folder it came from (for error messages)
    // SAELens metadata fields we do not interpret (model_from_pretrained_kwargs, dataset_path,
    // neuronpedia_id, ...), written back unchanged by saveSaeLens.
    nlohmann::json extraMetadata = nlohmann::json::object();
};

// L from "blocks.L.<...>", or -1.
int layerOfHook(const std::string& hook);

// SAELens cfg.json, v6 (`metadata` or `meta` object) or a flat pre-6 layout. `file` names errors.
SaeConfig parseSaeLensConfig(const nlohmann::json& j, const std::string& file);
// Llama Scope hyperparams.json (see SaeConfig.cpp for the fields relied on).
SaeConfig parseLlamaScopeConfig(const nlohmann::json& j, const std::string& file);
// The hook a Gemma Scope path implies (".../gemma-scope-2b-pt-res/layer_12/width_16k/..." ->
// "blocks.12.hook_resid_post"), or "" when the path says nothing usable.
std::string guessGemmaScopeHook(const std::string& path);
// cfg.json in SAELens v6 layout (nested `metadata`), as SAELens' own save_model writes it.
nlohmann::json toSaeLensJson(const SaeConfig& cfg);

}  // namespace cs
