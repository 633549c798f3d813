#include "model/ModelLoader.h"

#include "io/JsonFile.h"
#include "io/Safetensors.h"
#include "model/ArchTable.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

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

}  // namespace

std::shared_ptr<Transformer> loadModel(const std::string& dir) {
    c10::InferenceMode guard;
    ModelConfig cfg = readModelConfig(dir);
    const ArchSpec& arch = archFor(cfg.modelType, dir + "/config.json");
    WeightStore ws = WeightStore::openModelDir(dir);

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
        at::Tensor t = ws.load(name);
        params += t.numel();
        // Store every matrix as [in, out]; nn.Linear files get a transposed view, not a copy.
        if (rule.layout == Layout::OutIn && rule.param != Param::TokEmbed &&
            rule.param != Param::PosEmbed && rule.param != Param::LmHead)
            t = t.t();
        return t;
    };

    at::Tensor lmHead;
    for (const TensorRule& r : arch.rules) {
        if (r.perLayer) continue;
        at::Tensor t = fetch(r, 0);
        switch (r.param) {
            case Param::TokEmbed: w.tokEmbed = t; break;
            case Param::PosEmbed: w.posEmbed = t; break;
            case Param::FinalNormW: w.finalNormW = t; break;
            case Param::FinalNormB: w.finalNormB = t; break;
            case Param::LmHead: lmHead = t; break;
            default: break;
        }
    }
    for (int l = 0; l < cfg.nLayers; ++l) {
        BlockWeights& b = w.blocks[l];
        for (const TensorRule& r : arch.rules) {
            if (!r.perLayer) continue;
            at::Tensor t = fetch(r, l);
            switch (r.param) {
                case Param::Ln1W: b.ln1W = t; break;
                case Param::Ln1B: b.ln1B = t; break;
                case Param::Ln2W: b.ln2W = t; break;
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
                default: break;
            }
        }
    }
    if (lmHead.defined() && !cfg.tiedEmbeddings) {
        w.unembed = lmHead.t();
    } else {
        if (!lmHead.defined() && !cfg.tiedEmbeddings)
            failIn(ws.fileOf(""), "missing tensor 'lm_head.weight' (config.json says tie_word_embeddings is false)");
        if (lmHead.defined()) params -= lmHead.numel();  // a stored copy of the tied matrix
        w.unembed = w.tokEmbed.t();
    }
    cfg.parameterCount = params;
    return std::make_shared<Transformer>(std::move(cfg), std::move(w));
}

}  // namespace cs
