#include "model/ArchTable.h"

#include "io/JsonFile.h"
#include "util/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cs {

namespace {

void readGpt2(const JsonFields& j, ModelConfig& c) {
    c.nLayers = static_cast<int>(j.integer("n_layer"));
    c.dModel = static_cast<int>(j.integer("n_embd"));
    c.nHeads = static_cast<int>(j.integer("n_head"));
    c.nKvHeads = c.nHeads;
    c.vocabSize = static_cast<int>(j.integer("vocab_size"));
    c.nCtx = static_cast<int>(j.has("n_positions") ? j.integer("n_positions") : j.integer("n_ctx"));
    c.dMlp = static_cast<int>(j.integerOr("n_inner", 4L * c.dModel));
    c.normEps = j.numberOr("layer_norm_epsilon", 1e-5);
    c.tiedEmbeddings = j.booleanOr("tie_word_embeddings", true);
    c.bosTokenId = static_cast<int>(j.integerOr("bos_token_id", c.vocabSize - 1));
    c.eosTokenId = static_cast<int>(j.integerOr("eos_token_id", c.vocabSize - 1));
    const std::string act = j.stringOr("activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") c.act = ActKind::GeluTanh;
    else if (act == "gelu") c.act = ActKind::GeluExact;
    else if (act == "relu") c.act = ActKind::Relu;
    else failIn(j.file(), "field 'activation_function' has unsupported value '" + act + "'");
    c.norm = NormKind::LayerNorm;
    c.pos = PosKind::Learned;
    c.mlp = MlpKind::Plain;
    c.attnBias = c.mlpBias = true;
}

// A token id field: an integer, or a list of them (instruction-tuned Llama 3 and Gemma 2 list
// several end-of-turn ids); the first is the one generation stops at.
int tokenIdOr(const JsonFields& j, const std::string& key, int fallback) {
    if (!j.has(key)) return fallback;
    const nlohmann::json& v = j.json()[key];
    if (v.is_array()) {
        if (v.empty() || !v[0].is_number_integer())
            failIn(j.file(), "field '" + key + "' must be an integer or a non-empty list of integers");
        return v[0].get<int>();
    }
    return static_cast<int>(j.integer(key));
}

int positiveInteger(const JsonFields& j, const std::string& key) {
    const long v = j.integer(key);
    if (v <= 0 || v > std::numeric_limits<int>::max()) failIn(j.file(), "field '" + key + "' must be positive (got " + std::to_string(v) + ")");
    return static_cast<int>(v);
}

double positiveNumber(const JsonFields& j, const std::string& key, double v) {
    if (!(v > 0) || !std::isfinite(v))
        failIn(j.file(), "field '" + key + "' must be a positive number (got " + std::to_string(v) + ")");
    return v;
}

// A soft-cap: null turns it off, an absent field takes Hugging Face's default.
double softcap(const JsonFields& j, const std::string& key, double hfDefault) {
    if (!j.json().contains(key)) return hfDefault;
    if (j.json()[key].is_null()) return 0;
    const double v = j.number(key);
    if (!(v > 0) || !std::isfinite(v))
        failIn(j.file(), "field '" + key + "' must be a positive number or null (got " + std::to_string(v) + ")");
    return v;
}

// Fields of an object nested in config.json, named "outer.key" in errors.
class NestedFields {
public:
    NestedFields(const JsonFields& j, std::string outer) : j_(j), outer_(std::move(outer)), o_(j.json()[outer_]) {}
    bool has(const std::string& key) const { return o_.contains(key) && !o_[key].is_null(); }
    std::string name(const std::string& key) const { return outer_ + "." + key; }
    double positive(const std::string& key) const {
        if (!has(key)) failIn(j_.file(), "missing field '" + name(key) + "'");
        if (!o_[key].is_number()) failIn(j_.file(), "field '" + name(key) + "' must be a number");
        const double v = o_[key].get<double>();
        if (!(v > 0) || !std::isfinite(v))
            failIn(j_.file(), "field '" + name(key) + "' must be a positive number (got " + std::to_string(v) + ")");
        return v;
    }
    std::string string(const std::string& key) const {
        if (!o_[key].is_string()) failIn(j_.file(), "field '" + name(key) + "' must be a string");
        return o_[key].get<std::string>();
    }

private:
    const JsonFields& j_;
    std::string outer_;
    const nlohmann::json& o_;
};

// rope_scaling as Hugging Face's rope utilities read it: `rope_type` (older files: `type`)
// "default", "linear" (factor) or "llama3" (factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings). Other kinds (dynamic, yarn, longrope) are refused.
void readRopeScaling(const JsonFields& j, ModelConfig& c) {
    if (!j.has("rope_scaling")) return;
    if (!j.json()["rope_scaling"].is_object()) failIn(j.file(), "field 'rope_scaling' must be an object or null");
    const NestedFields rs(j, "rope_scaling");
    const std::string typeKey = rs.has("rope_type") ? "rope_type" : "type";
    if (!rs.has(typeKey)) failIn(j.file(), "missing field 'rope_scaling.rope_type'");
    const std::string type = rs.string(typeKey);
    RopeScaling& r = c.ropeScaling;
    if (type == "default") {
        r.kind = RopeScalingKind::None;
    } else if (type == "linear") {
        r.kind = RopeScalingKind::Linear;
        r.factor = rs.positive("factor");
    } else if (type == "llama3") {
        r.kind = RopeScalingKind::Llama3;
        r.factor = rs.positive("factor");
        r.lowFreqFactor = rs.positive("low_freq_factor");
        r.highFreqFactor = rs.positive("high_freq_factor");
        r.originalContext = rs.positive("original_max_position_embeddings");
        if (r.highFreqFactor <= r.lowFreqFactor)
            failIn(j.file(), "field 'rope_scaling.high_freq_factor' (" + std::to_string(r.highFreqFactor) +
                                 ") must be greater than 'rope_scaling.low_freq_factor' (" +
                                 std::to_string(r.lowFreqFactor) + ")");
    } else {
        failIn(j.file(), "field '" + rs.name(typeKey) + "' has unsupported value '" + type +
                             "' (supported: default, linear, llama3)");
    }
}

// Which layers slide, from config.json's layer_types ("sliding_attention" / "full_attention");
// false when the file has no such list.
bool readLayerTypes(const JsonFields& j, int nLayers, std::vector<bool>& sliding) {
    if (!j.has("layer_types")) return false;
    const nlohmann::json& v = j.json()["layer_types"];
    if (!v.is_array() || static_cast<long>(v.size()) != nLayers)
        failIn(j.file(), "field 'layer_types' must be a list of " + std::to_string(nLayers) + " entries (one per layer)");
    sliding.assign(static_cast<size_t>(nLayers), false);
    for (int l = 0; l < nLayers; ++l) {
        const std::string t = v[static_cast<size_t>(l)].is_string() ? v[static_cast<size_t>(l)].get<std::string>() : "";
        if (t == "sliding_attention") sliding[static_cast<size_t>(l)] = true;
        else if (t != "full_attention")
            failIn(j.file(), "field 'layer_types' entry " + std::to_string(l) + " must be \"sliding_attention\" or "
                             "\"full_attention\" (got " + v[static_cast<size_t>(l)].dump() + ")");
    }
    return true;
}

void setWindows(ModelConfig& c, const std::vector<bool>& sliding, int window) {
    c.attentionWindow.assign(sliding.size(), 0);
    for (size_t l = 0; l < sliding.size(); ++l)
        if (sliding[l]) c.attentionWindow[l] = window;
}

// What Llama, Qwen 2 and Gemma 2 name alike: the shape, context, epsilon and RoPE base.
void readDecoderShape(const JsonFields& j, ModelConfig& c, long defaultContext, bool defaultTied) {
    c.nLayers = static_cast<int>(j.integer("num_hidden_layers"));
    c.dModel = static_cast<int>(j.integer("hidden_size"));
    c.nHeads = static_cast<int>(j.integer("num_attention_heads"));
    c.nKvHeads = static_cast<int>(j.integerOr("num_key_value_heads", c.nHeads));
    c.dMlp = static_cast<int>(j.integer("intermediate_size"));
    c.vocabSize = static_cast<int>(j.integer("vocab_size"));
    c.nCtx = static_cast<int>(j.integerOr("max_position_embeddings", defaultContext));
    c.normEps = j.numberOr("rms_norm_eps", 1e-6);
    c.ropeTheta = positiveNumber(j, "rope_theta", j.numberOr("rope_theta", 10000.0));
    c.tiedEmbeddings = j.booleanOr("tie_word_embeddings", defaultTied);
    if (j.has("head_dim")) c.dHead = positiveInteger(j, "head_dim");
    readRopeScaling(j, c);
    c.norm = NormKind::RMSNorm;
    c.pos = PosKind::Rotary;
    c.mlp = MlpKind::Gated;
    c.attnBias = c.mlpBias = false;
}

ActKind gatedActivation(const JsonFields& j, const std::string& key, const std::string& fallback) {
    const std::string act = j.stringOr(key, fallback);
    if (act == "silu" || act == "swish") return ActKind::Silu;
    if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") return ActKind::GeluTanh;
    if (act == "gelu") return ActKind::GeluExact;
    failIn(j.file(), "field '" + key + "' has unsupported value '" + act + "'");
}

void readLlama(const JsonFields& j, ModelConfig& c) {
    readDecoderShape(j, c, 2048, false);
    c.bosTokenId = tokenIdOr(j, "bos_token_id", 1);
    c.eosTokenId = tokenIdOr(j, "eos_token_id", 2);
    c.attnBias = j.booleanOr("attention_bias", false);  // q, k, v and o biases
    if (j.booleanOr("mlp_bias", false))
        failIn(j.file(), "field 'mlp_bias' is true; Llama MLP biases are not supported");
    c.act = gatedActivation(j, "hidden_act", "silu");
}

// Qwen 2 / 2.5: Llama's layout with biases on q, k and v. With use_sliding_window, layers from
// max_window_layers on (or those layer_types marks) see only the last sliding_window positions.
void readQwen2(const JsonFields& j, ModelConfig& c) {
    readDecoderShape(j, c, 32768, false);
    c.bosTokenId = tokenIdOr(j, "bos_token_id", -1);
    c.eosTokenId = tokenIdOr(j, "eos_token_id", -1);
    c.attnBias = true;
    c.act = gatedActivation(j, "hidden_act", "silu");
    if (!j.booleanOr("use_sliding_window", false)) return;
    const int window = positiveInteger(j, "sliding_window");
    std::vector<bool> sliding;
    if (!readLayerTypes(j, c.nLayers, sliding)) {
        const long from = j.integerOr("max_window_layers", 28);
        if (from < 0) failIn(j.file(), "field 'max_window_layers' must not be negative (got " + std::to_string(from) + ")");
        sliding.assign(static_cast<size_t>(std::max(c.nLayers, 0)), false);
        for (int l = 0; l < c.nLayers; ++l) sliding[static_cast<size_t>(l)] = l >= from;
    }
    setWindows(c, sliding, window);
}

// Gemma 2: GeGLU, (1 + w) RMSNorms before and after each sublayer, embeddings scaled by
// sqrt(d_model), soft-capped attention scores and logits, queries scaled by
// query_pre_attn_scalar, and a sliding window on every other layer (the even ones), or on those
// layer_types marks. Absent fields take Gemma2Config's defaults.
void readGemma2(const JsonFields& j, ModelConfig& c) {
    readDecoderShape(j, c, 8192, true);
    if (!j.has("head_dim")) c.dHead = 256;
    c.bosTokenId = tokenIdOr(j, "bos_token_id", 2);
    c.eosTokenId = tokenIdOr(j, "eos_token_id", 1);
    if (j.booleanOr("attention_bias", false))
        failIn(j.file(), "field 'attention_bias' is true; Gemma 2 attention biases are not supported");
    // Gemma2MLP reads hidden_activation; older files have only hidden_act.
    c.act = j.has("hidden_activation") ? gatedActivation(j, "hidden_activation", "gelu_pytorch_tanh")
                                       : gatedActivation(j, "hidden_act", "gelu_pytorch_tanh");
    c.queryPreAttnScalar = positiveNumber(j, "query_pre_attn_scalar", j.numberOr("query_pre_attn_scalar", 256));
    c.attnSoftcap = softcap(j, "attn_logit_softcapping", 50.0);
    c.finalSoftcap = softcap(j, "final_logit_softcapping", 30.0);
    // Hugging Face rounds the normaliser to the activations' dtype: fp32 here.
    c.embedScale = static_cast<float>(std::sqrt(static_cast<double>(c.dModel)));
    c.normWeightsOffsetByOne = true;
    c.postNorms = true;
    std::vector<bool> sliding;
    if (!readLayerTypes(j, c.nLayers, sliding)) {
        sliding.assign(static_cast<size_t>(std::max(c.nLayers, 0)), false);
        for (int l = 0; l < c.nLayers; ++l) sliding[static_cast<size_t>(l)] = l % 2 == 0;
    }
    const bool anySliding = std::find(sliding.begin(), sliding.end(), true) != sliding.end();
    if (anySliding) setWindows(c, sliding, j.json().contains("sliding_window") ? positiveInteger(j, "sliding_window") : 4096);
}

const ArchSpec kGpt2{
    "gpt2",
    "transformer.",
    {
        {Param::TokEmbed, "wte.weight", Layout::OutIn, false, true},
        {Param::PosEmbed, "wpe.weight", Layout::OutIn, false, true},
        {Param::FinalNormW, "ln_f.weight", Layout::Vector, false, true},
        {Param::FinalNormB, "ln_f.bias", Layout::Vector, false, true},
        {Param::LmHead, "lm_head.weight", Layout::OutIn, false, false},
        {Param::Ln1W, "h.{L}.ln_1.weight", Layout::Vector, true, true},
        {Param::Ln1B, "h.{L}.ln_1.bias", Layout::Vector, true, true},
        {Param::QkvW, "h.{L}.attn.c_attn.weight", Layout::InOut, true, true},
        {Param::QkvB, "h.{L}.attn.c_attn.bias", Layout::Vector, true, true},
        {Param::OW, "h.{L}.attn.c_proj.weight", Layout::InOut, true, true},
        {Param::OB, "h.{L}.attn.c_proj.bias", Layout::Vector, true, true},
        {Param::Ln2W, "h.{L}.ln_2.weight", Layout::Vector, true, true},
        {Param::Ln2B, "h.{L}.ln_2.bias", Layout::Vector, true, true},
        {Param::UpW, "h.{L}.mlp.c_fc.weight", Layout::InOut, true, true},
        {Param::UpB, "h.{L}.mlp.c_fc.bias", Layout::Vector, true, true},
        {Param::DownW, "h.{L}.mlp.c_proj.weight", Layout::InOut, true, true},
        {Param::DownB, "h.{L}.mlp.c_proj.bias", Layout::Vector, true, true},
    },
    readGpt2,
};

bool hasAttentionBias(const ModelConfig& c) { return c.attnBias; }

// The tensors Hugging Face's Llama, Qwen 2 and Gemma 2 name alike (nn.Linear weights stored
// [out, in]); the norms between them differ.
const std::vector<TensorRule> kLlamaFamilyRules{
    {Param::TokEmbed, "embed_tokens.weight", Layout::OutIn, false, true},
    {Param::FinalNormW, "norm.weight", Layout::Vector, false, true},
    {Param::LmHead, "lm_head.weight", Layout::OutIn, false, false},
    {Param::Ln1W, "layers.{L}.input_layernorm.weight", Layout::Vector, true, true},
    {Param::QW, "layers.{L}.self_attn.q_proj.weight", Layout::OutIn, true, true},
    {Param::KW, "layers.{L}.self_attn.k_proj.weight", Layout::OutIn, true, true},
    {Param::VW, "layers.{L}.self_attn.v_proj.weight", Layout::OutIn, true, true},
    {Param::OW, "layers.{L}.self_attn.o_proj.weight", Layout::OutIn, true, true},
    {Param::GateW, "layers.{L}.mlp.gate_proj.weight", Layout::OutIn, true, true},
    {Param::UpW, "layers.{L}.mlp.up_proj.weight", Layout::OutIn, true, true},
    {Param::DownW, "layers.{L}.mlp.down_proj.weight", Layout::OutIn, true, true},
};

std::vector<TensorRule> plus(std::vector<TensorRule> rules, const std::vector<TensorRule>& more) {
    rules.insert(rules.end(), more.begin(), more.end());
    return rules;
}

// Llama and Qwen 2: one norm before the MLP, named after the attention.
const std::vector<TensorRule> kLlamaRules = plus(kLlamaFamilyRules, {
    {Param::Ln2W, "layers.{L}.post_attention_layernorm.weight", Layout::Vector, true, true},
});

const ArchSpec kLlama{
    "llama",
    "model.",
    plus(kLlamaRules,
         {
             {Param::QB, "layers.{L}.self_attn.q_proj.bias", Layout::Vector, true, true, hasAttentionBias},
             {Param::KB, "layers.{L}.self_attn.k_proj.bias", Layout::Vector, true, true, hasAttentionBias},
             {Param::VB, "layers.{L}.self_attn.v_proj.bias", Layout::Vector, true, true, hasAttentionBias},
             {Param::OB, "layers.{L}.self_attn.o_proj.bias", Layout::Vector, true, true, hasAttentionBias},
         }),
    readLlama,
};

const ArchSpec kQwen2{
    "qwen2",
    "model.",
    plus(kLlamaRules,
         {
             {Param::QB, "layers.{L}.self_attn.q_proj.bias", Layout::Vector, true, true},
             {Param::KB, "layers.{L}.self_attn.k_proj.bias", Layout::Vector, true, true},
             {Param::VB, "layers.{L}.self_attn.v_proj.bias", Layout::Vector, true, true},
         }),
    readQwen2,
};

// Gemma2ForCausalLM. Beware the names: post_attention_layernorm normalises the attention's
// output (Llama uses that name for the norm before the MLP, which Gemma 2 calls
// pre_feedforward_layernorm).
const ArchSpec kGemma2{
    "gemma2",
    "model.",
    plus(kLlamaFamilyRules,
         {
             {Param::Ln1PostW, "layers.{L}.post_attention_layernorm.weight", Layout::Vector, true, true},
             {Param::Ln2W, "layers.{L}.pre_feedforward_layernorm.weight", Layout::Vector, true, true},
             {Param::Ln2PostW, "layers.{L}.post_feedforward_layernorm.weight", Layout::Vector, true, true},
         }),
    readGemma2,
};

const ArchSpec* const kArchs[] = {&kGpt2, &kLlama, &kQwen2, &kGemma2};

}  // namespace

const ArchSpec& archFor(const std::string& modelType, const std::string& configPath) {
    for (const ArchSpec* a : kArchs)
        if (modelType == a->modelType) return *a;
    std::string list;
    for (const auto& n : supportedArchitectures()) list += (list.empty() ? "" : ", ") + n;
    failIn(configPath, "unknown model_type '" + modelType + "' (supported: " + list + ")");
}

std::vector<std::string> supportedArchitectures() {
    std::vector<std::string> out;
    for (const ArchSpec* a : kArchs) out.emplace_back(a->modelType);
    return out;
}

std::string tensorName(const TensorRule& rule, int layer) {
    std::string n = rule.name;
    auto p = n.find("{L}");
    if (p != std::string::npos) n.replace(p, 3, std::to_string(layer));
    return n;
}

std::vector<long> expectedShape(const ModelConfig& c, const TensorRule& r) {
    const long d = c.dModel, q = static_cast<long>(c.nHeads) * c.dHead,
               kv = static_cast<long>(c.nKvHeads) * c.dHead, m = c.dMlp, v = c.vocabSize;
    // [out, in] as nn.Linear stores it; flipped below for Conv1D.
    std::vector<long> outIn;
    switch (r.param) {
        case Param::TokEmbed: case Param::LmHead: return {v, d};
        case Param::PosEmbed: return {c.nCtx, d};
        case Param::FinalNormW: case Param::FinalNormB: case Param::Ln1W: case Param::Ln1B:
        case Param::Ln2W: case Param::Ln2B: case Param::OB: case Param::DownB:
        case Param::Ln1PostW: case Param::Ln2PostW: return {d};
        case Param::QkvB: return {q + 2 * kv};
        case Param::QB: return {q};
        case Param::KB: case Param::VB: return {kv};
        case Param::UpB: return {m};
        case Param::QkvW: outIn = {q + 2 * kv, d}; break;
        case Param::QW: outIn = {q, d}; break;
        case Param::KW: case Param::VW: outIn = {kv, d}; break;
        case Param::OW: outIn = {d, q}; break;
        case Param::UpW: case Param::GateW: outIn = {m, d}; break;
        case Param::DownW: outIn = {d, m}; break;
    }
    if (r.layout == Layout::InOut) return {outIn[1], outIn[0]};
    return outIn;
}

const char* actName(ActKind a) {
    switch (a) {
        case ActKind::GeluTanh: return "gelu_tanh";
        case ActKind::GeluExact: return "gelu";
        case ActKind::Silu: return "silu";
        case ActKind::Relu: return "relu";
    }
    return "?";
}

}  // namespace cs
