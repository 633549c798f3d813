#include "model/ModelLoader.h"

#include "io/JsonFile.h"
#include "io/Safetensors.h"
#include "model/ArchTable.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <fstream>

namespace cs {

ModelConfig readModelConfig(const std::string& dir) {
    const std::string path = dir + "/config.json";
    nlohmann::json j = readJsonFile(path);
    if (!j.is_object()) failIn(path, "expected a JSON object");
    JsonFields f(j, path);
    ModelConfig c;
    c.source = dir;
    c.modelType = f.string("model_type");
    const ArchSpec& arch = archFor(c.modelType, path);
    arch.readConfig(f, c);
    auto positive = [&](const char* what, int v) {
        if (v <= 0) failIn(path, std::string(what) + " must be positive (got " + std::to_string(v) + ")");
    };
    positive("number of layers", c.nLayers);
    positive("hidden size", c.dModel);
    positive("number of heads", c.nHeads);
    positive("number of key/value heads", c.nKvHeads);
    positive("vocab_size", c.vocabSize);
    positive("context length", c.nCtx);
    positive("MLP width", c.dMlp);
    if (c.dHead == 0) {
        if (c.dModel % c.nHeads != 0)
            failIn(path, "hidden size " + std::to_string(c.dModel) + " is not divisible by " +
                             std::to_string(c.nHeads) + " heads");
        c.dHead = c.dModel / c.nHeads;
    }
    if (c.nHeads % c.nKvHeads != 0)
        failIn(path, "num_attention_heads " + std::to_string(c.nHeads) +
                         " is not a multiple of num_key_value_heads " + std::to_string(c.nKvHeads));
    if (c.pos == PosKind::Rotary && c.dHead % 2 != 0) failIn(path, "rotary embeddings need an even head size");
    return c;
}

namespace {

// Finds a tensor under its plain or prefixed name.
std::string resolveName(const WeightStore& ws, const ArchSpec& arch, const std::string& plain) {
    if (ws.has(plain)) return plain;
    const std::string prefixed = std::string(arch.prefix) + plain;
    if (ws.has(prefixed)) return prefixed;
    return "";
}

// Matrices carry nearly all the bytes and go through matmuls that accept bf16; vectors and learned
// positions are added to fp32 activations, so they are held in fp32.
bool isMatrix(const TensorRule& rule) { return rule.layout != Layout::Vector && rule.param != Param::PosEmbed; }

at::ScalarType heldType(DType stored, bool matrix, WeightPrecision p) {
    if (!matrix || p == WeightPrecision::F32) return at::kFloat;
    if (p == WeightPrecision::BF16) return at::kBFloat16;
    return stored == DType::BF16 || stored == DType::F16 ? at::kBFloat16 : at::kFloat;
}

ModelFootprint footprintOf(const WeightStore& ws, const ModelLoadOptions& opt) {
    ModelFootprint f;
    for (const std::string& n : ws.names()) {
        const TensorInfo& ti = ws.info(n);
        f.fileBytes += ti.end - ti.begin;
        // From the header alone we cannot tell learned positions from other matrices; they are a
        // small share of any real model.
        const bool matrix = ti.shape.size() >= 2;
        f.residentBytes += static_cast<size_t>(ti.numel()) * (heldType(ti.dtype, matrix, opt.precision) == at::kBFloat16 ? 2 : 4);
    }
    f.availableBytes = opt.availableBytes ? opt.availableBytes : availableMemoryBytes();
    return f;
}

std::string gigabytes(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
    return buf;
}

// Refusing up front beats being killed by the kernel halfway through a 10 GB read. The margin
// leaves room for activations, the KV cache and the rest of the process.
void refuseIfTooLarge(const std::string& dir, const ModelFootprint& f) {
    if (f.availableBytes == 0) return;  // unknown: do not guess
    const size_t need = f.residentBytes + f.residentBytes / 10 + (size_t(256) << 20);
    if (need <= f.availableBytes) return;
    std::string hint = f.residentBytes > f.fileBytes / 2 + f.fileBytes / 8
                           ? " (--dtype bf16 would hold it in about " + gigabytes(f.fileBytes / 2) + ")"
                           : "";
    failIn(dir, "the model's weights need about " + gigabytes(need) + " of memory with working room, but only " +
                    gigabytes(f.availableBytes) + " is available" + hint);
}

}  // namespace

WeightPrecision parseWeightPrecision(const std::string& text) {
    if (text == "auto" || text == "stored") return WeightPrecision::Stored;
    if (text == "f32" || text == "fp32" || text == "float32") return WeightPrecision::F32;
    if (text == "bf16" || text == "bfloat16") return WeightPrecision::BF16;
    throw Error("unknown dtype '" + text + "' (expected auto, f32 or bf16)");
}

const char* weightPrecisionName(WeightPrecision p) {
    switch (p) {
        case WeightPrecision::Stored: return "auto";
        case WeightPrecision::F32: return "f32";
        case WeightPrecision::BF16: return "bf16";
    }
    return "?";
}

size_t availableMemoryBytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    size_t kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return 0;
}

ModelFootprint modelFootprint(const std::string& dir, const ModelLoadOptions& opt) {
    return footprintOf(WeightStore::openModelDir(dir), opt);
}

std::shared_ptr<Transformer> loadModel(const std::string& dir, const ModelLoadOptions& opt) {
    c10::InferenceMode guard;
    ModelConfig cfg = readModelConfig(dir);
    const ArchSpec& arch = archFor(cfg.modelType, dir + "/config.json");
    WeightStore ws = WeightStore::openModelDir(dir);
    refuseIfTooLarge(dir, footprintOf(ws, opt));
    size_t heldBytes = 0;

    ModelWeights w;
    w.blocks.resize(cfg.nLayers);
    long params = 0;
    auto fetch = [&](const TensorRule& rule, int layer) -> at::Tensor {
        const std::string plain = tensorName(rule, layer);
        const std::string name = resolveName(ws, arch, plain);
        if (name.empty()) {
            if (!rule.required) return at::Tensor();
            failIn(ws.fileOf(""), "missing tensor '" + std::string(arch.prefix) + plain + "' (or '" + plain +
                                      "') required by the " + cfg.modelType + " architecture");
        }
        const TensorInfo& ti = ws.info(name);
        const std::vector<long> want = expectedShape(cfg, rule);
        if (ti.shape != want)
            failIn(ws.fileOf(name), "tensor '" + name + "' has shape " + shapeToString(ti.shape) +
                                        " but config.json implies " + shapeToString(want));
        at::Tensor t = ws.loadAs(name, heldType(ti.dtype, isMatrix(rule), opt.precision));
        params += t.numel();
        heldBytes += static_cast<size_t>(t.numel()) * t.element_size();
        // Store every matrix as [in, out]; nn.Linear files get a transposed view, not a copy.
        if (rule.layout == Layout::OutIn && rule.param != Param::TokEmbed &&
            rule.param != Param::PosEmbed && rule.param != Param::LmHead)
            t = t.t();
        return t;
    };

    // Gemma stores norm weights centred at 0 and scales by (1 + w): adding the 1 here (to small
    // fp32 vectors) lets one RMSNorm serve every architecture, and weights() and hook_normalized
    // hold the weight actually applied, as TransformerLens' Gemma conversion does.
    auto normWeight = [&](const at::Tensor& t) { return cfg.normWeightsOffsetByOne ? t.to(at::kFloat) + 1 : t; };
    at::Tensor lmHead;
    for (const TensorRule& r : arch.rules) {
        if (r.perLayer || !ruleApplies(r, cfg)) continue;
        at::Tensor t = fetch(r, 0);
        switch (r.param) {
            case Param::TokEmbed: w.tokEmbed = t; break;
            case Param::PosEmbed: w.posEmbed = t; break;
            case Param::FinalNormW: w.finalNormW = normWeight(t); break;
            case Param::FinalNormB: w.finalNormB = t; break;
            case Param::LmHead: lmHead = t; break;
            default: break;
        }
    }
    for (int l = 0; l < cfg.nLayers; ++l) {
        BlockWeights& b = w.blocks[l];
        for (const TensorRule& r : arch.rules) {
            if (!r.perLayer || !ruleApplies(r, cfg)) continue;
            at::Tensor t = fetch(r, l);
            switch (r.param) {
                case Param::Ln1W: b.ln1W = normWeight(t); break;
                case Param::Ln1B: b.ln1B = t; break;
                case Param::Ln2W: b.ln2W = normWeight(t); break;
                case Param::Ln2B: b.ln2B = t; break;
                case Param::QkvW: b.wQkv = t; break;
                case Param::QkvB: b.bQkv = t; break;
                case Param::QW: b.wQ = t; break;
                case Param::KW: b.wK = t; break;
                case Param::VW: b.wV = t; break;
                case Param::QB: b.bQ = t; break;
                case Param::KB: b.bK = t; break;
                case Param::VB: b.bV = t; break;
                case Param::OW: b.wO = t; break;
                case Param::OB: b.bO = t; break;
                case Param::UpW: b.wUp = t; break;
                case Param::UpB: b.bUp = t; break;
                case Param::GateW: b.wGate = t; break;
                case Param::DownW: b.wDown = t; break;
                case Param::DownB: b.bDown = t; break;
                case Param::Ln1PostW: b.ln1PostW = normWeight(t); break;
                case Param::Ln2PostW: b.ln2PostW = normWeight(t); break;
                default: break;
            }
        }
    }
    if (lmHead.defined() && !cfg.tiedEmbeddings) {
        w.unembed = lmHead.t();
    } else {
        if (!lmHead.defined() && !cfg.tiedEmbeddings)
            failIn(ws.fileOf(""), "missing tensor 'lm_head.weight' (config.json says tie_word_embeddings is false)");
        if (lmHead.defined()) {  // a stored copy of the tied matrix
            params -= lmHead.numel();
            heldBytes -= static_cast<size_t>(lmHead.numel()) * lmHead.element_size();
        }
        w.unembed = w.tokEmbed.t();
    }
    cfg.parameterCount = params;
    cfg.weightBytes = heldBytes;
    cfg.weightDtype = w.tokEmbed.scalar_type() == at::kBFloat16 ? "bf16" : "f32";
    return std::make_shared<Transformer>(std::move(cfg), std::move(w));
}

}  // namespace cs
