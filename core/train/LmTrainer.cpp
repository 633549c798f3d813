#include "train/LmTrainer.h"

#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "tokenize/SentencePieceTokenizer.h"
#include "tokenize/Tokenizer.h"
#include "train/TextCorpus.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

namespace cs {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct NamedParam {
    std::string name;
    at::Tensor t;
    bool decay;
};

// GPT-2 parameters under their Hugging Face names, Conv1D layout ([in, out]) as GPT-2 stores it.
std::vector<NamedParam> initParams(const LmTrainOptions& o) {
    const long d = o.dModel, V = o.vocab, m = 4L * o.dModel;
    const double std = 0.02, projStd = 0.02 / std::sqrt(2.0 * o.layers);
    std::vector<NamedParam> p;
    auto normal = [](std::vector<int64_t> shape, double s) { return (at::randn(shape) * s).requires_grad_(); };
    auto ones = [](long n) { return at::ones({n}).requires_grad_(); };
    auto zeros = [](long n) { return at::zeros({n}).requires_grad_(); };
    p.push_back({"transformer.wte.weight", normal({V, d}, std), false});
    p.push_back({"transformer.wpe.weight", normal({o.ctx, d}, 0.01), false});
    for (int l = 0; l < o.layers; ++l) {
        const std::string h = "transformer.h." + std::to_string(l) + ".";
        p.push_back({h + "ln_1.weight", ones(d), false});
        p.push_back({h + "ln_1.bias", zeros(d), false});
        p.push_back({h + "attn.c_attn.weight", normal({d, 3 * d}, std), true});
        p.push_back({h + "attn.c_attn.bias", zeros(3 * d), false});
        p.push_back({h + "attn.c_proj.weight", normal({d, d}, projStd), true});
        p.push_back({h + "attn.c_proj.bias", zeros(d), false});
        p.push_back({h + "ln_2.weight", ones(d), false});
        p.push_back({h + "ln_2.bias", zeros(d), false});
        p.push_back({h + "mlp.c_fc.weight", normal({d, m}, std), true});
        p.push_back({h + "mlp.c_fc.bias", zeros(m), false});
        p.push_back({h + "mlp.c_proj.weight", normal({m, d}, projStd), true});
        p.push_back({h + "mlp.c_proj.bias", zeros(d), false});
    }
    p.push_back({"transformer.ln_f.weight", ones(d), false});
    p.push_back({"transformer.ln_f.bias", zeros(d), false});
    return p;
}

ModelConfig configFor(const LmTrainOptions& o, int bosId, int eosId) {
    ModelConfig c;
    c.modelType = "gpt2";
    c.nLayers = o.layers;
    c.dModel = o.dModel;
    c.nHeads = o.heads;
    c.nKvHeads = o.heads;
    c.dHead = o.dModel / o.heads;
    c.dMlp = 4 * o.dModel;
    c.vocabSize = o.vocab;
    c.nCtx = o.ctx;
    c.bosTokenId = bosId;
    c.eosTokenId = eosId;
    return c;
}

ModelWeights weightsFrom(const std::vector<NamedParam>& p, int layers) {
    std::map<std::string, at::Tensor> by;
    for (const auto& x : p) by[x.name] = x.t;
    ModelWeights w;
    w.tokEmbed = by.at("transformer.wte.weight");
    w.posEmbed = by.at("transformer.wpe.weight");
    w.finalNormW = by.at("transformer.ln_f.weight");
    w.finalNormB = by.at("transformer.ln_f.bias");
    w.unembed = w.tokEmbed.t();
    for (int l = 0; l < layers; ++l) {
        const std::string h = "transformer.h." + std::to_string(l) + ".";
        BlockWeights b;
        b.ln1W = by.at(h + "ln_1.weight");
        b.ln1B = by.at(h + "ln_1.bias");
        b.wQkv = by.at(h + "attn.c_attn.weight");
        b.bQkv = by.at(h + "attn.c_attn.bias");
        b.wO = by.at(h + "attn.c_proj.weight");
        b.bO = by.at(h + "attn.c_proj.bias");
        b.ln2W = by.at(h + "ln_2.weight");
        b.ln2B = by.at(h + "ln_2.bias");
        b.wUp = by.at(h + "mlp.c_fc.weight");
        b.bUp = by.at(h + "mlp.c_fc.bias");
        b.wDown = by.at(h + "mlp.c_proj.weight");
        b.bDown = by.at(h + "mlp.c_proj.bias");
        w.blocks.push_back(b);
    }
    return w;
}

// Model, parameters and optimiser of one training run: the step that train-lm repeats and that
// the training benchmark times.
class LmStepper {
public:
    LmStepper(const LmTrainOptions& o, const ModelConfig& cfg) : LmStepper(o, cfg, initParams(o)) {}
    LmStepper(const LmTrainOptions& o, const ModelConfig& cfg, std::vector<NamedParam> start)
        : o_(o), params_(std::move(start)), model_(cfg, weightsFrom(params_, o.layers)) {
        std::vector<at::Tensor> decay, noDecay;
        for (const auto& p : params_) {
            (p.decay ? decay : noDecay).push_back(p.t);
            all_.push_back(p.t);
            parameters_ += p.t.numel();
        }
        using torch::optim::AdamWOptions;
        auto opts = [&](double wd) {
            return std::make_unique<AdamWOptions>(AdamWOptions(o.lr).betas(std::make_tuple(0.9, 0.95)).weight_decay(wd));
        };
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(decay, opts(o.weightDecay));
        groups.emplace_back(noDecay, opts(0.0));
        optimizer_ = std::make_unique<torch::optim::AdamW>(std::move(groups), AdamWOptions(o.lr));
        run_.withGrad = true;
        if (o.dropout > 0) {
            // Through the runtime's own hook points, so training and inference share one forward.
            const double p = o.dropout;
            auto drop = [p](at::Tensor& x, const HookContext&) { x = at::dropout(x, p, /*train=*/true); };
            dropoutHooks_.add("blocks.0.hook_resid_pre", drop);  // token + position embedding
            for (int l = 0; l < o.layers; ++l) {
                dropoutHooks_.add("blocks." + std::to_string(l) + ".hook_attn_out", drop);
                dropoutHooks_.add("blocks." + std::to_string(l) + ".hook_mlp_out", drop);
            }
            run_.hooks = &dropoutHooks_;
        }
    }

    // batch: [B, ctx + 1] token ids; returns the loss before the update.
    double step(const at::Tensor& batch, double lr) {
        for (auto& g : optimizer_->param_groups())
            static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
        at::Tensor logits = model_.forward(batch.narrow(1, 0, o_.ctx), run_);
        at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, o_.vocab}), batch.narrow(1, 1, o_.ctx).reshape({-1}));
        optimizer_->zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(all_, 1.0);
        optimizer_->step();
        return loss.item<double>();
    }

    const std::vector<NamedParam>& params() const { return params_; }
    long parameters() const { return parameters_; }

private:
    const LmTrainOptions& o_;
    std::vector<NamedParam> params_;
    Transformer model_;
    std::vector<at::Tensor> all_;
    long parameters_ = 0;
    std::unique_ptr<torch::optim::AdamW> optimizer_;
    Hooks dropoutHooks_;
    RunOptions run_;
};

void writeJson(const std::string& path, const nlohmann::json& j) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << j.dump(2) << "\n";
    fs::rename(tmp, path);
}

// Writes weights + config atomically enough that an interrupted run leaves a loadable directory.
void saveModel(const LmTrainOptions& o, const ModelConfig& c, const std::vector<NamedParam>& params,
               const nlohmann::json& trainInfo) {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& p : params) tensors.emplace_back(p.name, p.t.detach());
    const std::string st = o.outDir + "/model.safetensors";
    writeSafetensors(st + ".tmp", tensors, {{"format", "pt"}}, o.storeF16 ? DType::F16 : DType::F32);
    fs::rename(st + ".tmp", st);
    nlohmann::json cfg = {{"architectures", {"GPT2LMHeadModel"}},
                          {"model_type", "gpt2"},
                          {"n_layer", c.nLayers},
                          {"n_embd", c.dModel},
                          {"n_head", c.nHeads},
                          {"n_positions", c.nCtx},
                          {"n_ctx", c.nCtx},
                          {"n_inner", nullptr},
                          {"vocab_size", c.vocabSize},
                          {"activation_function", "gelu_new"},
                          {"layer_norm_epsilon", 1e-5},
                          {"tie_word_embeddings", true},
                          {"bos_token_id", c.bosTokenId},
                          {"eos_token_id", c.eosTokenId},
                          {"torch_dtype", o.storeF16 ? "float16" : "float32"}};
    writeJson(o.outDir + "/config.json", cfg);
    writeJson(o.outDir + "/circuitscope_train.json", trainInfo);
}

// Held-out cross-entropy in bits per byte: windows of ctx tokens with half-window overlap, each
// token scored once with at least ctx/2 tokens of context (except at the very start).
double heldOutBitsPerByte(const Transformer& model, const std::vector<int32_t>& stream, long bytes, int bosId) {
    const long ctx = model.config().nCtx, n = static_cast<long>(stream.size());
    const long stride = ctx / 2;
    at::Tensor all = at::tensor(std::vector<int64_t>(stream.begin(), stream.end()), at::kLong);
    double nats = 0;
    long scored = 0;
    for (long start = 0; start + 1 < n; start += stride) {
        const long len = std::min(ctx, n - start);
        if (len < 2) break;
        at::Tensor ids = all.narrow(0, start, len).unsqueeze(0);
        at::Tensor logits = model.forward(ids)[0];  // [len, V]
        at::Tensor logp = at::log_softmax(logits.narrow(0, 0, len - 1), -1);
        at::Tensor target = all.narrow(0, start + 1, len - 1);
        at::Tensor nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1);  // [len-1]
        const long from = start == 0 ? 0 : (ctx - stride - 1);  // first target not scored before
        if (from >= len - 1) continue;
        at::Tensor t = target.narrow(0, from, len - 1 - from);
        at::Tensor keep = t.ne(bosId);  // BOS stands for the newline, which is not counted in bytes
        nats += nll.narrow(0, from, len - 1 - from).masked_select(keep).sum().item<double>();
        scored += keep.sum().item<long>();
        if (start + len >= n) break;
    }
    (void)scored;
    return nats / std::log(2.0) / static_cast<double>(bytes);
}

// --init: the starting model's shape replaces the options' (a fine-tuning run keeps it).
void adoptInitShape(LmTrainOptions& o) {
    const ModelConfig c = loadModel(o.initDir)->config();
    if (c.modelType != "gpt2" || !c.tiedEmbeddings)
        throw Error("train-lm: --init " + o.initDir + ": expected a GPT-2 model with tied embeddings (as train-lm writes)");
    o.layers = c.nLayers;
    o.dModel = c.dModel;
    o.heads = c.nHeads;
    o.ctx = c.nCtx;
    o.vocab = c.vocabSize;
}

// --init: the fresh parameters' names and shapes, with the starting model's values (float32,
// trainable copies: the file's may be 16-bit or a read-only view of the map).
std::vector<NamedParam> paramsFromDir(const LmTrainOptions& o) {
    std::vector<NamedParam> p = initParams(o);
    WeightStore store = WeightStore::openModelDir(o.initDir);
    for (auto& x : p) {
        if (!store.has(x.name)) throw Error("train-lm: --init " + o.initDir + ": no tensor " + x.name);
        at::Tensor t = store.load(x.name).to(at::kFloat);
        if (t.sizes() != x.t.sizes())
            throw Error("train-lm: --init " + o.initDir + ": " + x.name + " has shape " +
                        shapeToString(t.sizes().vec()) + ", expected " + shapeToString(x.t.sizes().vec()));
        x.t = t.clone().requires_grad_();
    }
    return p;
}

}  // namespace

LmTrainReport trainLm(const LmTrainOptions& given, const std::function<void(const LmTrainProgress&)>& onProgress) {
    LmTrainOptions o = given;
    if (!o.initDir.empty()) adoptInitShape(o);
    if (o.dModel % o.heads != 0) throw Error("train-lm: --d-model must be a multiple of --heads");
    fs::create_directories(o.outDir);
    CorpusSplit corpus = readCorpus(o.corpus, o.heldOutFraction);

    // 1. Tokenizer: SentencePiece BPE on the training paragraphs only.
    // (BPE training reads every sentence and has no sampling: the same corpus gives the same vocabulary.)
    const std::string spInput = o.outDir + "/.sp-train.txt";
    struct RemoveOnExit {
        std::string path;
        ~RemoveOnExit() { std::error_code ec; fs::remove(path, ec); }
    } cleanup{spInput};
    {
        std::ofstream f(spInput, std::ios::binary);
        for (const auto& p : corpus.train) f << p << "\n";
    }
    if (!o.initDir.empty()) {
        // Fine-tuning keeps the starting model's tokenizer: the token ids must mean the same.
        fs::copy_file(o.initDir + "/tokenizer.model", o.outDir + "/tokenizer.model", fs::copy_options::overwrite_existing);
    } else {
        trainSentencePiece("--input=" + spInput + " --model_prefix=" + o.outDir + "/tokenizer --vocab_size=" +
                           std::to_string(o.vocab) +
                           " --model_type=bpe --character_coverage=1.0 --byte_fallback=true"
                           " --normalization_rule_name=identity --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1"
                           " --max_sentence_length=65536 --num_threads=2 --minloglevel=2");
        fs::remove(o.outDir + "/tokenizer.vocab");
    }
    std::unique_ptr<Tokenizer> tok = loadTokenizer(o.outDir + "/tokenizer.model");
    const std::vector<int32_t> train = tokenStream(*tok, corpus.train);
    const std::vector<int32_t> held = tokenStream(*tok, corpus.heldOut);
    if (static_cast<long>(train.size()) <= o.ctx + 1) throw Error(o.corpus + ": corpus too small for the context length");

    // 2. Model and optimiser.
    at::manual_seed(o.seed);
    const ModelConfig cfg = configFor(o, tok->bosId(), tok->eosId());
    auto stepperPtr = o.initDir.empty() ? std::make_unique<LmStepper>(o, cfg)
                                        : std::make_unique<LmStepper>(o, cfg, paramsFromDir(o));
    LmStepper& stepper = *stepperPtr;
    const std::vector<NamedParam>& params = stepper.params();
    const long nParams = stepper.parameters();

    at::Tensor trainT = at::tensor(std::vector<int64_t>(train.begin(), train.end()), at::kLong);
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<long> offset(0, static_cast<long>(train.size()) - o.ctx - 2);
    LmTrainReport rep;
    rep.parameters = nParams;
    const auto t0 = Clock::now();
    double smoothed = 0;
    auto info = [&]() {
        return nlohmann::json{{"corpus", o.corpus}, {"layers", o.layers}, {"d_model", o.dModel}, {"heads", o.heads},
                              {"ctx", o.ctx}, {"vocab", o.vocab}, {"batch", o.batch}, {"steps_planned", o.steps},
                              {"steps_done", rep.steps}, {"lr", o.lr}, {"weight_decay", o.weightDecay},
                              {"dropout", o.dropout}, {"seed", o.seed}, {"init", o.initDir},
                              {"train_loss", rep.trainLoss}, {"seconds", rep.seconds},
                              {"held_out_bits_per_byte", rep.heldOutBitsPerByte}, {"parameters", nParams}};
    };
    for (long step = 0; step < o.steps; ++step) {
        if (o.stop && o.stop->load()) {
            rep.stoppedEarly = true;
            break;
        }
        const double lr = step < o.warmupSteps
                              ? o.lr * (step + 1) / o.warmupSteps
                              : o.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * (step - o.warmupSteps) /
                                                                      std::max<long>(1, o.steps - o.warmupSteps))));
        std::vector<at::Tensor> rows;
        for (int b = 0; b < o.batch; ++b) rows.push_back(trainT.narrow(0, offset(rng), o.ctx + 1));
        const double l = stepper.step(at::stack(rows), lr);
        smoothed = step == 0 ? l : 0.98 * smoothed + 0.02 * l;
        rep.steps = step + 1;
        rep.tokensSeen += static_cast<long>(o.batch) * o.ctx;
        rep.trainLoss = smoothed;
        rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        if (onProgress && (step % 10 == 0 || step + 1 == o.steps)) {
            LmTrainProgress pr;
            pr.step = step + 1;
            pr.steps = o.steps;
            pr.loss = smoothed;
            pr.tokensPerSecond = rep.tokensSeen / rep.seconds;
            pr.secondsLeft = rep.seconds / (step + 1) * (o.steps - step - 1);
            onProgress(pr);
        }
        if (o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery == 0) saveModel(o, cfg, params, info());
    }
    rep.tokensPerSecond = rep.seconds > 0 ? rep.tokensSeen / rep.seconds : 0;
    saveModel(o, cfg, params, info());
    // Evaluate what was written (F16 rounding included), through the ordinary loader.
    auto saved = loadModel(o.outDir);
    rep.heldOutBitsPerByte = heldOutBitsPerByte(*saved, held, corpus.heldOutBytes, tok->bosId());
    saveModel(o, cfg, params, info());
    return rep;
}

std::unique_ptr<Transformer> initialGpt2(const LmTrainOptions& o) {
    std::vector<NamedParam> p = initParams(o);
    for (auto& x : p) x.t = x.t.detach();
    return std::make_unique<Transformer>(configFor(o, 1, 2), weightsFrom(p, o.layers));
}

double measureLmTrainingThroughput(const LmTrainOptions& o, int steps) {
    at::manual_seed(static_cast<int64_t>(o.seed));
    LmStepper stepper(o, configFor(o, 1, 2));
    auto batch = [&] { return at::randint(o.vocab, {o.batch, o.ctx + 1}, at::kLong); };
    for (int i = 0; i < 3; ++i) stepper.step(batch(), o.lr);  // warm-up
    std::vector<at::Tensor> batches;
    for (int i = 0; i < steps; ++i) batches.push_back(batch());
    const auto t0 = Clock::now();
    for (const auto& b : batches) stepper.step(b, o.lr);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(steps) * o.batch * o.ctx / s;
}

}  // namespace cs
