#include "model/ArchTable.h"

#include "io/JsonFile.h"
#include "util/Error.h"

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

void readLlama(const JsonFields& j, ModelConfig& c) {
    c.nLayers = static_cast<int>(j.integer("num_hidden_layers"));
    c.dModel = static_cast<int>(j.integer("hidden_size"));
    c.nHeads = static_cast<int>(j.integer("num_attention_heads"));
    c.nKvHeads = static_cast<int>(j.integerOr("num_key_value_heads", c.nHeads));
    c.dMlp = static_cast<int>(j.integer("intermediate_size"));
    c.vocabSize = static_cast<int>(j.integer("vocab_size"));
    c.nCtx = static_cast<int>(j.integerOr("max_position_embeddings", 2048));
    c.normEps = j.numberOr("rms_norm_eps", 1e-6);
    c.ropeTheta = j.numberOr("rope_theta", 10000.0);
    c.tiedEmbeddings = j.booleanOr("tie_word_embeddings", false);
    c.bosTokenId = static_cast<int>(j.integerOr("bos_token_id", 1));
    c.eosTokenId = static_cast<int>(j.integerOr("eos_token_id", 2));
    if (j.has("head_dim")) c.dHead = static_cast<int>(j.integer("head_dim"));
    if (j.has("rope_scaling"))
        failIn(j.file(), "field 'rope_scaling' is set; scaled RoPE is not supported yet");
    if (j.booleanOr("attention_bias", false))
        failIn(j.file(), "field 'attention_bias' is true; Llama attention biases are not supported yet");
    const std::string act = j.stringOr("hidden_act", "silu");
    if (act == "silu") c.act = ActKind::Silu;
    else if (act == "gelu_pytorch_tanh") c.act = ActKind::GeluTanh;
    else failIn(j.file(), "field 'hidden_act' has unsupported value '" + act + "'");
    c.norm = NormKind::RMSNorm;
    c.pos = PosKind::Rotary;
    c.mlp = MlpKind::Gated;
    c.attnBias = c.mlpBias = false;
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

const ArchSpec kLlama{
    "llama",
    "model.",
    {
        {Param::TokEmbed, "embed_tokens.weight", Layout::OutIn, false, true},
        {Param::FinalNormW, "norm.weight", Layout::Vector, false, true},
        {Param::LmHead, "lm_head.weight", Layout::OutIn, false, false},
        {Param::Ln1W, "layers.{L}.input_layernorm.weight", Layout::Vector, true, true},
        {Param::QW, "layers.{L}.self_attn.q_proj.weight", Layout::OutIn, true, true},
        {Param::KW, "layers.{L}.self_attn.k_proj.weight", Layout::OutIn, true, true},
        {Param::VW, "layers.{L}.self_attn.v_proj.weight", Layout::OutIn, true, true},
        {Param::OW, "layers.{L}.self_attn.o_proj.weight", Layout::OutIn, true, true},
        {Param::Ln2W, "layers.{L}.post_attention_layernorm.weight", Layout::Vector, true, true},
        {Param::GateW, "layers.{L}.mlp.gate_proj.weight", Layout::OutIn, true, true},
        {Param::UpW, "layers.{L}.mlp.up_proj.weight", Layout::OutIn, true, true},
        {Param::DownW, "layers.{L}.mlp.down_proj.weight", Layout::OutIn, true, true},
    },
    readLlama,
};

const ArchSpec* const kArchs[] = {&kGpt2, &kLlama};

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
        case Param::Ln2W: case Param::Ln2B: case Param::OB: case Param::DownB: return {d};
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
