#include "train/SaeTrainer.h"

#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "train/TextCorpus.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/types.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

namespace cs {

namespace {

using Clock = std::chrono::steady_clock;

// Windows of ctx tokens from a token stream, run through the model, returning the activations at
// `in` and `out` hooks flattened to [n, d], without the BOS positions (attention-sink outliers
// that would dominate the reconstruction loss).
struct ActivationSource {
    const Transformer& model;
    std::vector<int32_t> stream;
    std::string in, out;
    int bosId;
    long ctx;
    std::mt19937_64 rng;

    std::pair<at::Tensor, at::Tensor> windows(const std::vector<long>& starts) {
        c10::InferenceMode guard;
        std::vector<int64_t> ids;
        for (long s : starts) ids.insert(ids.end(), stream.begin() + s, stream.begin() + s + ctx);
        at::Tensor batch = at::tensor(ids, at::kLong).view({static_cast<long>(starts.size()), ctx});
        Hooks hooks;
        hooks.cache(in);
        hooks.cache(out);
        ActivationCache cache;
        RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        const int last = std::max(layerOfHook(in), layerOfHook(out));
        o.lastLayer = last >= 0 ? last : -1;  // "ln_final.*" / "hook_embed": -1 runs everything
        model.forward(batch, o);
        at::Tensor keep = batch.reshape({-1}).ne(bosId);
        auto flat = [&](const std::string& n) {
            at::Tensor a = cache.at(n);
            return a.reshape({a.size(0) * a.size(1), -1}).index({keep});
        };
        return {flat(in), flat(out)};
    }
    std::pair<at::Tensor, at::Tensor> sample(long nTokens) {
        std::uniform_int_distribution<long> pick(0, static_cast<long>(stream.size()) - ctx - 1);
        std::vector<long> starts;
        for (long t = 0; t < nTokens; t += ctx) starts.push_back(pick(rng));
        return windows(starts);
    }
};

// Gemma Scope's threshold initialisation and kernel width, given for activations scaled to a mean
// squared norm of 1; ours are scaled to sqrt(d), so both are multiplied by sqrt(d) to match.
constexpr double kJumpInitThreshold = 1e-3;
constexpr double kJumpBandwidth = 1e-3;
constexpr double kJumpThresholdLrScale = 10.0;

struct JumpReluStep {
    at::Tensor features;  // pre * (pre > theta)
    at::Tensor l0;        // mean active features per token
};

// JumpReLU forward values with straight-through pseudo-derivatives for the threshold: the step
// function's derivative is replaced by a rectangle kernel of width kJumpBandwidth around theta.
// Written as value + (theta - theta.detach()) * coefficient so ordinary autograd carries it:
// the added term is zero in value, and its gradient with respect to theta is the coefficient.
JumpReluStep jumpReluStep(const at::Tensor& pre, const at::Tensor& logTheta, double bandwidth) {
    at::Tensor theta = logTheta.exp();
    at::Tensor active, kernel;
    {
        at::NoGradGuard ng;
        at::Tensor p = pre.detach(), t = theta.detach();
        active = (p > t).to(pre.scalar_type());
        kernel = ((p - t).abs() < bandwidth / 2).to(pre.scalar_type()) / bandwidth;
    }
    at::Tensor thetaDelta = theta - theta.detach();  // zero, with d/dtheta = 1
    JumpReluStep r;
    // d f / d theta = -theta * K((pre - theta) / eps) / eps
    r.features = pre * active - (kernel * theta.detach()) * thetaDelta;
    // d H(pre - theta) / d theta = -K((pre - theta) / eps) / eps
    r.l0 = (active - kernel * thetaDelta).sum(-1).mean();
    return r;
}

double meanNll(const at::Tensor& logits, const at::Tensor& ids) {
    const long T = ids.size(1);
    at::Tensor lp = at::log_softmax(logits.narrow(1, 0, T - 1), -1);
    return -lp.gather(2, ids.narrow(1, 1, T - 1).unsqueeze(2)).mean().item<double>();
}

}  // namespace

SaeMetrics evaluateSae(const Transformer& model, const Tokenizer& tok, std::shared_ptr<Sae> sae,
                       const std::vector<std::string>& paragraphs, long maxTokens) {
    c10::InferenceMode guard;
    const SaeConfig& c = sae->config();
    const std::string in = c.hookName, out = c.hookNameOut.empty() ? c.hookName : c.hookNameOut;
    std::vector<int32_t> stream = tokenStream(tok, paragraphs);
    const long ctx = model.config().nCtx;
    const long n = std::min<long>(maxTokens, static_cast<long>(stream.size())) / ctx;
    if (n < 1) throw Error("held-out text too short to evaluate the SAE");
    at::Tensor ids = at::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + n * ctx), at::kLong).view({n, ctx});
    SaeMetrics m;
    m.evalTokens = n * ctx;
    // Clean run, caching the SAE's activations.
    Hooks cacheHooks;
    cacheHooks.cache(in);
    cacheHooks.cache(out);
    ActivationCache cache;
    RunOptions o;
    o.hooks = &cacheHooks;
    o.cache = &cache;
    m.ceClean = meanNll(model.forward(ids, o), ids);
    at::Tensor keep = ids.reshape({-1}).ne(tok.bosId());
    at::Tensor x = cache.at(in).reshape({n * ctx, -1}).index({keep});
    at::Tensor y = cache.at(out).reshape({n * ctx, -1}).index({keep});
    at::Tensor f = sae->encode(x);
    at::Tensor yHat = sae->reconstruct(x);
    m.l0 = (f > 0).sum(-1).to(at::kDouble).mean().item<double>();
    m.varianceExplained = 1.0 - (y - yHat).pow(2).sum().item<double>() / (y - y.mean(0)).pow(2).sum().item<double>();
    // Spliced without the error term: the model runs on the SAE's reconstruction.
    Hooks spliced;
    AttachOptions ao;
    ao.splice = true;
    ao.keepError = false;
    attachSae(spliced, model, sae, ao, nullptr);
    RunOptions so;
    so.hooks = &spliced;
    m.ceSpliced = meanNll(model.forward(ids, so), ids);
    Hooks zero;
    zero.add(out, [](at::Tensor& t, const HookContext&) { t = at::zeros_like(t); });
    RunOptions zo;
    zo.hooks = &zero;
    m.ceZeroAblated = meanNll(model.forward(ids, zo), ids);
    m.ceIncrease = m.ceSpliced - m.ceClean;
    m.ceLossRecovered = (m.ceZeroAblated - m.ceSpliced) / (m.ceZeroAblated - m.ceClean);
    return m;
}

SaeTrainReport trainSae(const SaeTrainOptions& o, const std::function<void(const SaeTrainProgress&)>& onProgress) {
    if (o.arch != "topk" && o.arch != "relu" && o.arch != "jumprelu")
        throw Error("train-sae: unknown --arch '" + o.arch + "' (topk, relu or jumprelu)");
    auto model = loadModel(o.modelDir);
    auto tok = loadTokenizer(o.modelDir);
    CorpusSplit corpus = readCorpus(o.corpus, o.heldOutFraction);
    const bool transcoder = !o.hookOut.empty();
    // Checked before any work: SAELens has no TopK-transcoder layout to save the result in.
    if (transcoder && o.arch == "topk")
        throw Error("train-sae: TopK transcoders cannot be written in a SAELens layout yet; use --arch relu");
    const std::string outHook = transcoder ? o.hookOut : o.hook;
    const long dIn = hookWidth(*model, o.hook, o.outDir), dOut = hookWidth(*model, outHook, o.outDir);
    const long ctx = model->config().nCtx;
    ActivationSource src{*model, tokenStream(*tok, corpus.train), o.hook, outHook, tok->bosId(), ctx,
                         std::mt19937_64(o.seed)};
    if (static_cast<long>(src.stream.size()) <= ctx + 1) throw Error(o.corpus + ": corpus too small");
    at::manual_seed(static_cast<int64_t>(o.seed));

    // Scale so activations average a norm of sqrt(d): one learning rate fits every hook and model.
    auto [x0, y0] = src.sample(o.bufferTokens);
    const double sIn = std::sqrt(static_cast<double>(dIn)) / x0.norm(2, -1).mean().item<double>();
    const double sOut = std::sqrt(static_cast<double>(dOut)) / y0.norm(2, -1).mean().item<double>();

    at::Tensor Wdec = at::randn({o.dSae, dOut});
    Wdec = Wdec / Wdec.norm(2, -1, true);
    at::Tensor Wenc = transcoder ? at::randn({dIn, o.dSae}) / std::sqrt(static_cast<double>(dIn)) : Wdec.t().clone();
    Wdec.requires_grad_();
    Wenc.requires_grad_();
    at::Tensor bEnc = at::zeros({o.dSae}).requires_grad_();
    at::Tensor bDec = (y0 * sOut).mean(0).detach().clone().requires_grad_();
    // JumpReLU thresholds live in log space so they stay positive (Rajamanoharan et al. 2024).
    const bool jump = o.arch == "jumprelu";
    at::Tensor logTheta = at::full({o.dSae}, std::log(kJumpInitThreshold * std::sqrt(static_cast<double>(dIn)))).requires_grad_();
    // Thresholds get their own, faster group: Adam moves a log-threshold by about lr per step, and
    // thresholds must climb orders of magnitude from their initial value within a few thousand
    // steps (Gemma Scope trained for hundreds of thousands).
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>{Wenc, Wdec, bEnc, bDec},
                        std::make_unique<torch::optim::AdamOptions>(o.lr));
    if (jump)
        groups.emplace_back(std::vector<at::Tensor>{logTheta},
                            std::make_unique<torch::optim::AdamOptions>(o.lr * kJumpThresholdLrScale));
    torch::optim::Adam adam(groups, torch::optim::AdamOptions(o.lr).betas(std::make_tuple(0.9, 0.999)));

    // Shuffling buffer, refilled with fresh windows when half of it has been used.
    at::Tensor bufX = x0 * sIn, bufY = y0 * sOut;
    at::Tensor order = at::randperm(bufX.size(0));
    long cursor = 0;
    const long steps = std::max<long>(1, o.tokens / o.batch);
    const long warmup = std::min<long>(100, steps / 10 + 1);
    const long deadWindow = std::min<long>(o.tokens / 4, 500'000);
    at::Tensor lastFired = at::zeros({o.dSae}, at::kLong);  // tokens seen when each feature last fired
    const int kAux = static_cast<int>(std::min<long>(dOut / 2, o.dSae / 2));
    SaeTrainReport rep;
    const auto t0 = Clock::now();
    double mseAvg = 0, l0Avg = 0;
    for (long step = 0; step < steps; ++step) {
        if (o.stop && o.stop->load()) {
            rep.stoppedEarly = true;
            break;
        }
        if (cursor + o.batch > order.size(0) / 2 || order.size(0) < o.batch) {
            auto [nx, ny] = src.sample(o.bufferTokens / 2);
            const long keepN = std::max<long>(0, order.size(0) - cursor);
            at::Tensor rest = order.narrow(0, cursor, keepN);
            bufX = at::cat({bufX.index({rest}), nx * sIn});
            bufY = at::cat({bufY.index({rest}), ny * sOut});
            order = at::randperm(bufX.size(0));
            cursor = 0;
        }
        at::Tensor idx = order.narrow(0, cursor, o.batch);
        cursor += o.batch;
        at::Tensor x = bufX.index({idx}), y = bufY.index({idx});
        const double lr = step < warmup ? o.lr * (step + 1) / warmup
                          : step > steps * 0.8 ? o.lr * std::max(0.0, (steps - step) / (steps * 0.2)) : o.lr;
        for (size_t g = 0; g < adam.param_groups().size(); ++g)
            static_cast<torch::optim::AdamOptions&>(adam.param_groups()[g].options()).lr(g == 0 ? lr : lr * kJumpThresholdLrScale);

        at::Tensor xin = transcoder ? x : x - bDec;
        at::Tensor pre = at::addmm(bEnc, xin, Wenc);
        at::Tensor f, l0Ste;
        if (o.arch == "topk") {
            auto top = pre.topk(o.k, -1);
            f = at::zeros_like(pre).scatter(-1, std::get<1>(top), at::relu(std::get<0>(top)));
        } else if (jump) {
            JumpReluStep j = jumpReluStep(pre, logTheta, kJumpBandwidth * std::sqrt(static_cast<double>(dIn)));
            f = j.features;
            l0Ste = j.l0;
        } else {
            f = at::relu(pre);
        }
        at::Tensor recon = at::addmm(bDec, f, Wdec);
        at::Tensor err = recon - y;
        at::Tensor mse = err.pow(2).sum(-1).mean();
        at::Tensor loss = mse;
        at::Tensor fired = (f > 0).any(0);
        {
            at::NoGradGuard ng;
            lastFired.masked_fill_(fired, rep.tokens + o.batch);
        }
        at::Tensor dead = (rep.tokens - lastFired) > deadWindow;
        if (o.arch == "relu") {
            loss = loss + o.l1 * (f * Wdec.norm(2, -1)).sum(-1).mean();
        } else if (jump) {
            // The L0 coefficient ramps up over the first 10% of training, as in Gemma Scope, so
            // features find directions before being pushed to fire rarely.
            loss = loss + o.l1 * std::min(1.0, (step + 1) / (0.1 * steps)) * l0Ste;
        } else if (rep.tokens > deadWindow) {
            const long nDead = dead.sum().item<long>();
            if (nDead > 0) {
                // AuxK: let the dead features explain what the live ones missed.
                at::Tensor deadPre = pre.masked_fill(~dead, -std::numeric_limits<float>::infinity());
                auto top = deadPre.topk(std::min<long>(kAux, nDead), -1);
                at::Tensor fa = at::zeros_like(pre).scatter(-1, std::get<1>(top), at::relu(std::get<0>(top)));
                at::Tensor residual = (y - recon).detach();
                at::Tensor auxRecon = at::mm(fa, Wdec);
                at::Tensor aux = (auxRecon - residual).pow(2).sum(-1).mean() / residual.pow(2).sum(-1).mean().clamp_min(1e-8);
                loss = loss + aux / 32.0;
            }
        }
        adam.zero_grad();
        loss.backward();
        adam.step();
        if (o.arch == "topk" || jump) {
            at::NoGradGuard ng;
            Wdec.div_(Wdec.norm(2, -1, true).clamp_min(1e-8));
        }
        rep.tokens += o.batch;
        rep.steps = step + 1;
        const double m = mse.item<double>() / dOut;  // per dimension, on the scaled activations
        mseAvg = step == 0 ? m : 0.98 * mseAvg + 0.02 * m;
        const double l0 = (f > 0).sum(-1).to(at::kDouble).mean().item<double>();
        l0Avg = step == 0 ? l0 : 0.98 * l0Avg + 0.02 * l0;
        if (onProgress && (step % 20 == 0 || step + 1 == steps)) {
            rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            SaeTrainProgress p;
            p.tokens = rep.tokens;
            p.totalTokens = steps * o.batch;
            p.mse = mseAvg;
            p.l0 = l0Avg;
            p.deadFraction = rep.tokens > deadWindow ? dead.to(at::kDouble).mean().item<double>() : 0.0;
            p.tokensPerSecond = rep.tokens / rep.seconds;
            p.secondsLeft = rep.seconds / rep.tokens * (p.totalTokens - rep.tokens);
            onProgress(p);
        }
    }
    rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    rep.tokensPerSecond = rep.tokens / std::max(rep.seconds, 1e-9);

    // Fold the training scales back in: the saved SAE reads and writes raw activations.
    SaeConfig cfg;
    cfg.dIn = dIn;
    cfg.dSae = o.dSae;
    cfg.dOut = dOut;
    cfg.architecture = transcoder ? (jump ? SaeArch::JumpReLUTranscoder : SaeArch::Transcoder)
                                  : (o.arch == "topk" ? SaeArch::TopK : jump ? SaeArch::JumpReLU : SaeArch::Standard);
    cfg.k = o.arch == "topk" ? o.k : 0;
    cfg.applyBDecToInput = !transcoder;
    cfg.hookName = o.hook;
    cfg.hookNameOut = transcoder ? o.hookOut : "";
    cfg.hookLayer = layerOfHook(o.hook);
    cfg.modelName = std::filesystem::path(o.modelDir).filename().string();
    cfg.contextSize = ctx;
    cfg.prependBos = true;
    cfg.format = "saelens";
    cfg.source = o.outDir;
    SaeWeights w;
    {
        at::NoGradGuard ng;
        // Encoder on raw x: (x*sIn - bDec) W = (x - bDec/sIn)(sIn W); SAEs have sIn == sOut.
        w.W_enc = (Wenc * sIn).detach().clone();
        w.W_dec = (Wdec / sOut).detach().clone();
        w.b_enc = bEnc.detach().clone();
        w.b_dec = (bDec / sOut).detach().clone();
        // Pre-activations on raw x equal those on scaled x, so thresholds carry over unchanged.
        if (jump) w.threshold = logTheta.exp().detach().clone();
    }
    auto sae = std::make_shared<Sae>(cfg, w);
    std::vector<std::string> held(corpus.heldOut.begin(), corpus.heldOut.end());
    rep.metrics = evaluateSae(*model, *tok, sae, held, o.evalTokens);
    at::Tensor lastDead = (rep.tokens - lastFired) > deadWindow;
    rep.metrics.deadFraction = lastDead.to(at::kDouble).mean().item<double>();
    // Firing frequency over the held-out text, as SAELens' sparsity.safetensors (log10).
    {
        c10::InferenceMode guard;
        ActivationSource ev{*model, tokenStream(*tok, held), o.hook, outHook, tok->bosId(), ctx, std::mt19937_64(1)};
        const long n = std::min<long>(o.evalTokens, static_cast<long>(ev.stream.size()) - 1) / ctx;
        std::vector<long> starts;
        for (long i = 0; i < n; ++i) starts.push_back(i * ctx);
        if (!starts.empty()) {
            at::Tensor fx = sae->encode(ev.windows(starts).first);
            sae->sparsity = at::log10((fx > 0).to(at::kFloat).mean(0) + 1e-10);
        }
    }
    SaeConfig withMetrics = sae->config();
    withMetrics.extraMetadata["circuitscope_training"] = {
        {"corpus", o.corpus}, {"tokens", rep.tokens}, {"seed", o.seed}, {"lr", o.lr}, {"batch", o.batch},
        {"arch", o.arch}, {"l1", o.l1}, {"seconds", rep.seconds}};
    withMetrics.extraMetadata["circuitscope_metrics"] = {
        {"l0", rep.metrics.l0}, {"variance_explained", rep.metrics.varianceExplained},
        {"dead_fraction", rep.metrics.deadFraction}, {"ce_clean", rep.metrics.ceClean},
        {"ce_spliced", rep.metrics.ceSpliced}, {"ce_zero_ablated", rep.metrics.ceZeroAblated},
        {"ce_loss_recovered", rep.metrics.ceLossRecovered}, {"ce_increase", rep.metrics.ceIncrease},
        {"eval_tokens", rep.metrics.evalTokens}};
    Sae out(withMetrics, sae->weights());
    out.sparsity = sae->sparsity;
    saveSaeLens(out, o.outDir);
    return rep;
}

}  // namespace cs
