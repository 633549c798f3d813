#include "sae/SaeConfig.h"

#include "io/JsonFile.h"
#include "util/Error.h"

#include <cmath>
#include <regex>
#include <set>

namespace cs {

namespace {

struct ArchName {
    SaeArch arch;
    const char* name;
};
const ArchName kArchNames[] = {
    {SaeArch::Standard, "standard"},
    {SaeArch::JumpReLU, "jumprelu"},
    {SaeArch::TopK, "topk"},
    {SaeArch::Gated, "gated"},
    {SaeArch::Transcoder, "transcoder"},
    {SaeArch::SkipTranscoder, "skip_transcoder"},
    {SaeArch::JumpReLUTranscoder, "jumprelu_transcoder"},
};

// v6 keeps the model-facing facts in a nested object (named `meta` in early 6.x, `metadata`
// since); pre-6 files keep them flat. Look in the nested object first, then at the top.
class Lookup {
public:
    Lookup(const nlohmann::json& top, std::string file) : top_(top), file_(std::move(file)) {
        for (const char* key : {"metadata", "meta"})
            if (top.contains(key) && top[key].is_object()) {
                meta_ = &top[key];
                metaKey_ = key;
                break;
            }
    }
    // The first present, non-null value among `keys`; null when none.
    const nlohmann::json* find(std::initializer_list<const char*> keys, std::string* where = nullptr) const {
        for (const char* key : keys) {
            if (meta_ && meta_->contains(key) && !(*meta_)[key].is_null()) {
                if (where) *where = metaKey_ + "." + key;
                return &(*meta_)[key];
            }
            if (top_.contains(key) && !top_[key].is_null()) {
                if (where) *where = key;
                return &top_[key];
            }
        }
        return nullptr;
    }
    std::string string(std::initializer_list<const char*> keys) const {
        std::string where;
        const nlohmann::json* v = find(keys, &where);
        if (!v) return "";
        if (!v->is_string()) failIn(file_, "field '" + where + "' must be a string");
        return v->get<std::string>();
    }
    long integer(std::initializer_list<const char*> keys, long fallback) const {
        std::string where;
        const nlohmann::json* v = find(keys, &where);
        if (!v) return fallback;
        // SAELens allows a float k for batch-topk; a whole number written as 64.0 is still fine.
        if (v->is_number_integer()) return v->get<long>();
        if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>())
            return static_cast<long>(v->get<double>());
        failIn(file_, "field '" + where + "' must be an integer");
    }
    bool boolean(std::initializer_list<const char*> keys, bool fallback) const {
        std::string where;
        const nlohmann::json* v = find(keys, &where);
        if (!v) return fallback;
        if (!v->is_boolean()) failIn(file_, "field '" + where + "' must be true or false");
        return v->get<bool>();
    }
    const nlohmann::json* meta() const { return meta_; }

private:
    const nlohmann::json& top_;
    std::string file_;
    const nlohmann::json* meta_ = nullptr;
    std::string metaKey_;
};

}  // namespace

int layerOfHook(const std::string& hook) {
    static const std::regex re(R"(^blocks\.(\d+)\.)");
    std::smatch m;
    return std::regex_search(hook, m, re) ? std::stoi(m[1]) : -1;
}

SaeArch parseSaeArch(const std::string& name, const std::string& file) {
    for (const auto& a : kArchNames)
        if (name == a.name) return a.arch;
    std::string known;
    for (const auto& a : kArchNames) known += std::string(known.empty() ? "" : ", ") + a.name;
    failIn(file, "unknown architecture '" + name + "' (supported: " + known + ")");
}

const char* saeArchName(SaeArch a) {
    for (const auto& n : kArchNames)
        if (n.arch == a) return n.name;
    return "?";
}

bool isTranscoder(SaeArch a) {
    return a == SaeArch::Transcoder || a == SaeArch::SkipTranscoder || a == SaeArch::JumpReLUTranscoder;
}

bool usesThreshold(SaeArch a) { return a == SaeArch::JumpReLU || a == SaeArch::JumpReLUTranscoder; }

SaeConfig parseSaeLensConfig(const nlohmann::json& j, const std::string& file) {
    if (!j.is_object()) failIn(file, "is not a JSON object");
    JsonFields f(j, file);
    Lookup look(j, file);
    SaeConfig c;
    c.format = "saelens";
    c.source = file;
    c.dIn = f.integer("d_in");
    c.dSae = f.integer("d_sae");
    if (c.dIn <= 0 || c.dSae <= 0) failIn(file, "d_in and d_sae must be positive");

    // Pre-6 files name the activation instead of the architecture ("relu" or "topk").
    const std::string act = look.string({"activation_fn_str", "activation_fn"});
    const std::string archName = f.stringOr("architecture", "standard");
    c.architecture = parseSaeArch(archName, file);
    if (c.architecture == SaeArch::Standard && act == "topk") c.architecture = SaeArch::TopK;
    else if (c.architecture == SaeArch::Standard && !act.empty() && act != "relu")
        failIn(file, "unknown activation function '" + act + "' in field 'activation_fn_str' (supported: relu, topk)");

    if (c.architecture == SaeArch::TopK) {
        c.k = look.integer({"k"}, 0);
        if (c.k == 0 && j.contains("activation_fn_kwargs") && j["activation_fn_kwargs"].is_object())
            c.k = Lookup(j["activation_fn_kwargs"], file).integer({"k"}, 0);
        if (c.k <= 0 || c.k > c.dSae)
            failIn(file, "topk needs 0 < k <= d_sae in field 'k' (or 'activation_fn_kwargs.k'), got " +
                             std::to_string(c.k));
    }

    c.dOut = c.dIn;
    if (isTranscoder(c.architecture)) {
        c.dOut = f.integer("d_out");
        if (c.dOut <= 0) failIn(file, "d_out must be positive");
        // SAELens transcoders never subtract b_dec (it lives in the output space).
        c.applyBDecToInput = false;
    } else {
        c.applyBDecToInput = f.booleanOr("apply_b_dec_to_input", true);
    }

    // Before 6.0 this was a boolean meaning "expected_average_only_in".
    if (j.contains("normalize_activations") && j["normalize_activations"].is_boolean())
        c.normalizeActivations = j["normalize_activations"].get<bool>() ? "expected_average_only_in" : "none";
    else
        c.normalizeActivations = f.stringOr("normalize_activations", "none");
    if (const nlohmann::json* s = look.find({"norm_scaling_factor"})) {
        if (!s->is_number() || s->get<double>() <= 0) failIn(file, "field 'norm_scaling_factor' must be a positive number");
        c.normScaleIn = c.normScaleOut = s->get<double>();
    }
    if (c.normalizeActivations == "expected_average_only_in" && !(c.normScaleIn > 0))
        failIn(file, "normalize_activations is 'expected_average_only_in' but no 'norm_scaling_factor' is given "
                     "(SAELens keeps it outside cfg.json); add it to cfg.json or fold it into the weights");
    if (c.normalizeActivations != "none" && c.normalizeActivations != "expected_average_only_in")
        failIn(file, "normalize_activations '" + c.normalizeActivations +
                         "' is not supported (supported: none, expected_average_only_in)");

    c.hookName = look.string({"hook_name", "hook_point"});
    c.hookNameOut = look.string({"hook_name_out", "hook_point_out"});
    c.hookLayer = static_cast<int>(look.integer({"hook_layer", "hook_point_layer"}, layerOfHook(c.hookName)));
    c.modelName = look.string({"model_name"});
    c.contextSize = look.integer({"context_size"}, 0);
    c.prependBos = look.boolean({"prepend_bos"}, true);

    static const std::set<std::string> interpreted = {
        "model_name", "hook_name", "hook_layer", "hook_name_out", "hook_layer_out", "context_size",
        "prepend_bos", "sae_lens_version", "sae_lens_training_version"};
    if (look.meta()) {
        for (const auto& [key, value] : look.meta()->items())
            if (!interpreted.count(key)) c.extraMetadata[key] = value;
    } else {
        for (const char* key : {"model_from_pretrained_kwargs", "dataset_path", "neuronpedia_id", "hook_head_index"})
            if (j.contains(key) && !j[key].is_null()) c.extraMetadata[key] = j[key];
    }
    return c;
}

// Llama Scope (OpenMOSS lm_saes). Fields relied on, as SAELens' get_llama_scope_config_from_hf
// and lm_saes' SparseAutoEncoder (encode, standardize_parameters_of_dataset_norm) read them:
//   d_model, d_sae (or expansion_factor), hook_point_in, hook_point_out (differs from the input for
//   the "TC" transcoders, e.g. blocks.L.ln2.hook_normalized -> blocks.L.hook_mlp_out), act_fn
//   ("jumprelu"; "topk" with top_k; "relu"), jump_relu_threshold (one scalar for all features),
//   norm_activation ("dataset-wise" with dataset_average_activation_norm {"in": .., "out": ..};
//   the input is scaled by sqrt(d_model)/norm_in during training and the output comes back scaled
//   by sqrt(d_model)/norm_out), apply_decoder_bias_to_pre_encoder (default false),
//   use_decoder_bias, sparsity_include_decoder_norm (handled by the loader: the JumpReLU gate
//   compares pre * ||W_dec row|| with the threshold).
SaeConfig parseLlamaScopeConfig(const nlohmann::json& j, const std::string& file) {
    if (!j.is_object()) failIn(file, "is not a JSON object");
    JsonFields f(j, file);
    SaeConfig c;
    c.format = "llamascope";
    c.source = file;
    c.dIn = f.integer("d_model");
    c.dSae = f.has("d_sae") ? f.integer("d_sae") : c.dIn * f.integer("expansion_factor");
    if (c.dIn <= 0 || c.dSae <= 0) failIn(file, "d_model and d_sae must be positive");
    c.dOut = c.dIn;
    c.hookName = f.string("hook_point_in");
    c.hookNameOut = f.stringOr("hook_point_out", c.hookName);
    const bool transcoder = c.hookNameOut != c.hookName;
    const std::string act = f.stringOr("act_fn", "jumprelu");
    if (act == "jumprelu") {
        c.architecture = transcoder ? SaeArch::JumpReLUTranscoder : SaeArch::JumpReLU;
    } else if (act == "relu") {
        c.architecture = transcoder ? SaeArch::Transcoder : SaeArch::Standard;
    } else if (act == "topk" && !transcoder) {
        c.architecture = SaeArch::TopK;
        c.k = f.integer("top_k");
    } else {
        failIn(file, "unsupported act_fn '" + act + "'" + (transcoder ? " for a transcoder" : "") +
                         " in field 'act_fn' (supported: jumprelu, relu, topk)");
    }
    if (!transcoder) c.hookNameOut.clear();
    c.applyBDecToInput = !transcoder && f.booleanOr("apply_decoder_bias_to_pre_encoder", false);

    const bool haveNorms = f.has("dataset_average_activation_norm");
    const std::string norm = f.stringOr("norm_activation", haveNorms ? "dataset-wise" : "inference");
    if (norm == "dataset-wise") {
        if (!haveNorms || !j["dataset_average_activation_norm"].is_object())
            failIn(file, "norm_activation is 'dataset-wise' but field 'dataset_average_activation_norm' "
                         "(an object with 'in' and 'out') is missing, so the input scale is unknown");
        const auto& norms = j["dataset_average_activation_norm"];
        // The released files key the norms "in"/"out"; newer lm_saes keys them by hook name.
        auto normFor = [&](const char* side, const std::string& hook) {
            const nlohmann::json* v = nullptr;
            if (norms.contains(side)) v = &norms[side];
            else if (norms.contains(hook)) v = &norms[hook];
            if (!v || !v->is_number() || v->get<double>() <= 0)
                failIn(file, std::string("field 'dataset_average_activation_norm.") + side +
                                 "' must be a positive number");
            return v->get<double>();
        };
        const double root = std::sqrt(static_cast<double>(c.dIn));
        c.normalizeActivations = "expected_average_only_in";
        c.normScaleIn = root / normFor("in", c.hookName);
        c.normScaleOut = root / normFor("out", transcoder ? c.hookNameOut : c.hookName);
    } else if (norm != "inference" && norm != "none") {
        failIn(file, "norm_activation '" + norm + "' is not supported (supported: dataset-wise, inference)");
    }
    c.hookLayer = layerOfHook(c.hookName);
    c.modelName = f.stringOr("model_name", "meta-llama/Llama-3.1-8B");
    c.contextSize = f.integerOr("context_size", 1024);
    return c;
}

std::string guessGemmaScopeHook(const std::string& path) {
    // Only the release folder (gemma-scope-2b-pt-res / -mlp / -att, maybe with -canonical, as
    // SAELens' gemma_2 loader reads it) and the layer_N folder count: other parts of the path are the user's own names.
    static const std::regex layerRe(R"(^layer_(\d+)$)");
    std::string release, layer;
    bool embedding = false;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        const std::string part = path.substr(start, end - start);
        std::smatch m;
        if (part.find("gemma-scope") != std::string::npos) release = part;
        if (std::regex_match(part, m, layerRe)) layer = m[1];
        if (part == "embedding") embedding = true;
        start = end + 1;
    }
    if (embedding) return "hook_embed";
    if (layer.empty()) return "";
    const std::string b = "blocks." + layer + ".";
    if (release.find("-mlp") != std::string::npos) return b + "hook_mlp_out";
    if (release.find("-att") != std::string::npos) return b + "attn.hook_z";
    return b + "hook_resid_post";
}

nlohmann::json toSaeLensJson(const SaeConfig& c) {
    nlohmann::json meta = c.extraMetadata.is_object() ? c.extraMetadata : nlohmann::json::object();
    meta["model_name"] = c.modelName;
    meta["hook_name"] = c.hookName;
    meta["hook_layer"] = c.hookLayer >= 0 ? nlohmann::json(c.hookLayer) : nlohmann::json();
    meta["context_size"] = c.contextSize > 0 ? nlohmann::json(c.contextSize) : nlohmann::json();
    meta["prepend_bos"] = c.prependBos;
    meta["sae_lens_version"] = "6.0.0";
    meta["sae_lens_training_version"] = "6.0.0";

    nlohmann::json j;
    j["architecture"] = saeArchName(c.architecture);
    j["d_in"] = c.dIn;
    j["d_sae"] = c.dSae;
    j["dtype"] = "float32";
    j["device"] = "cpu";
    j["apply_b_dec_to_input"] = isTranscoder(c.architecture) ? false : c.applyBDecToInput;
    j["normalize_activations"] = c.normalizeActivations;
    j["reshape_activations"] = "none";
    if (c.architecture == SaeArch::TopK) j["k"] = c.k;
    if (isTranscoder(c.architecture)) {
        j["d_out"] = c.dOut;
        meta["hook_name_out"] = c.hookNameOut;
        // Early 6.x transcoder configs kept the output hook at the top level.
        j["hook_name_out"] = c.hookNameOut;
        const int outLayer = layerOfHook(c.hookNameOut);
        j["hook_layer_out"] = outLayer >= 0 ? nlohmann::json(outLayer) : nlohmann::json();
    }
    j["metadata"] = meta;
    return j;
}

}  // namespace cs
