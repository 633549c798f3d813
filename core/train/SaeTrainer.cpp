#include "train/SaeTrainer.h"

#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "train/LmTrainer.h"
#include "train/ActivationSource.h"
#include "train/KlFineTune.h"
#include "train/SaeStepper.h"
#include "train/TextCorpus.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/types.h>
#include <torch/optim/adam.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

namespace cs {

namespace {

using Clock = std::chrono::steady_clock;

// Negative log-likelihood of each next token, summed over the batch's positions.
double summedNll(const at::Tensor& logits, const at::Tensor& ids) {
    const long T = ids.size(1);
    at::Tensor lp = at::log_softmax(logits.narrow(1, 0, T - 1), -1);
    return -lp.gather(2, ids.narrow(1, 1, T - 1).unsqueeze(2)).to(at::kDouble).sum().item<double>();
}

// The saved SAE that --init names, checked against what this run trains.
SaeWeights initialWeights(const SaeTrainOptions& o, const Sae& sae, long dIn, long dOut) {
    const SaeConfig& c = sae.config();
    // The architecture this run would save (BatchTopK is saved as JumpReLU, so a BatchTopK file
    // cannot be told from one, and has no k to start from).
    const bool transcoder = !o.hookOut.empty();
    SaeArch want;
    if (o.arch == "topk" && !transcoder) want = SaeArch::TopK;
    else if (o.arch == "jumprelu") want = transcoder ? SaeArch::JumpReLUTranscoder : SaeArch::JumpReLU;
    else if (o.arch == "relu") want = transcoder ? SaeArch::Transcoder : SaeArch::Standard;
    else failIn(o.initFrom, "--init is for --arch topk, jumprelu or relu, not " + o.arch);
    if (c.architecture != want)
        failIn(o.initFrom, std::string("is a ") + saeArchName(c.architecture) + " file; this run trains a " + saeArchName(want));
    if (c.hookName != o.hook || c.hookNameOut != o.hookOut)
        failIn(o.initFrom, "reads hook '" + c.hookName + "'" + (c.hookNameOut.empty() ? "" : " and writes '" + c.hookNameOut + "'") +
                               ", not '" + o.hook + "'" + (transcoder ? " and '" + o.hookOut + "'" : ""));
    if (c.dSae != o.dSae || c.dIn != dIn || c.dOut != dOut || (want == SaeArch::TopK && c.k != o.k))
        failIn(o.initFrom, "has d_sae " + std::to_string(c.dSae) + ", k " + std::to_string(c.k) +
                               "; this run asks for d_sae " + std::to_string(o.dSae) + ", k " + std::to_string(o.k));
    return sae.weights();
}

}  // namespace

nlohmann::json metricsJson(const SaeMetrics& m) {
    return {{"l0", m.l0},
            {"variance_explained", m.varianceExplained},
            {"dead_fraction", m.deadFraction},
            {"ce_clean", m.ceClean},
            {"ce_spliced", m.ceSpliced},
            {"ce_zero_ablated", m.ceZeroAblated},
            {"ce_loss_recovered", m.ceLossRecovered},
            {"ce_increase", m.ceIncrease},
            {"ce_spliced_with_bos", m.ceSplicedWithBos},
            {"ce_increase_with_bos", m.ceIncreaseWithBos},
            {"bos_kept_when_spliced", true},
            {"silent_fraction", m.silentFraction},
            {"eval_tokens", m.evalTokens}};
}

SaeMetrics evaluateSae(const Transformer& model, const Tokenizer& tok, std::shared_ptr<Sae> sae,
                       const std::vector<std::string>& paragraphs, long maxTokens) {
    c10::InferenceMode guard;
    const SaeConfig& c = sae->config();
    const std::string in = c.hookName, out = c.hookNameOut.empty() ? c.hookName : c.hookNameOut;
    std::vector<int32_t> stream = tokenStream(tok, paragraphs);
    const long ctx = model.config().nCtx;
    const long n = std::min<long>(maxTokens, static_cast<long>(stream.size())) / ctx;
    if (n < 1) throw Error("held-out text too short to evaluate the SAE");
    at::Tensor all = at::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + n * ctx), at::kLong).view({n, ctx});
    // Summed over chunks of windows, so memory stays bounded (the logits of a chunk are the
    // largest tensor) however much text is evaluated.
    double nllClean = 0, nllSpliced = 0, nllSplicedBos = 0, nllZero = 0, active = 0, sqErr = 0, sqNorm = 0;
    at::Tensor sumY, fired;
    long rows = 0;
    constexpr long kChunk = 16;
    for (long w0 = 0; w0 < n; w0 += kChunk) {
        const at::Tensor ids = all.narrow(0, w0, std::min(kChunk, n - w0));
        const long b = ids.size(0);
        // Clean run, caching the SAE's activations.
        Hooks cacheHooks;
        cacheHooks.cache(in);
        cacheHooks.cache(out);
        ActivationCache cache;
        RunOptions o;
        o.hooks = &cacheHooks;
        o.cache = &cache;
        nllClean += summedNll(model.forward(ids, o), ids);
        const at::Tensor keep = ids.reshape({-1}).ne(tok.bosId());
        const at::Tensor x = cache.at(in).reshape({b * ctx, -1}).index({keep});
        const at::Tensor y = cache.at(out).reshape({b * ctx, -1}).index({keep}).to(at::kDouble);
        const at::Tensor on = sae->encode(x) > 0;  // bool: a [rows, d_sae] double copy would be 8x the memory
        const at::Tensor perFeature = on.sum(0);  // int64
        active += perFeature.sum().item<double>();
        fired = fired.defined() ? fired + perFeature : perFeature;
        sqErr += (y - sae->reconstruct(x).to(at::kDouble)).pow(2).sum().item<double>();
        sqNorm += y.pow(2).sum().item<double>();
        sumY = sumY.defined() ? sumY + y.sum(0) : y.sum(0);
        rows += y.size(0);
        // Spliced without the error term: the model runs on the SAE's reconstruction, except at
        // BOS (and once with BOS spliced too).
        const at::Tensor isBos = ids.eq(tok.bosId());
        auto splicedNll = [&](const at::Tensor& keepMask) {
            Hooks spliced;
            AttachOptions ao;
            ao.splice = true;
            ao.keepError = false;
            ao.keep = keepMask;
            attachSae(spliced, model, sae, ao, nullptr);
            RunOptions so;
            so.hooks = &spliced;
            return summedNll(model.forward(ids, so), ids);
        };
        nllSpliced += splicedNll(isBos);
        nllSplicedBos += splicedNll(at::Tensor());
        Hooks zero;
        zero.add(out, [&isBos](at::Tensor& t, const HookContext&) {
            at::Tensor k = isBos;
            while (k.dim() < t.dim()) k = k.unsqueeze(-1);
            t = at::where(k, t, at::zeros_like(t));
        });
        RunOptions zo;
        zo.hooks = &zero;
        nllZero += summedNll(model.forward(ids, zo), ids);
    }
    SaeMetrics m;
    m.evalTokens = n * ctx;
    const double predictions = static_cast<double>(n * (ctx - 1));
    m.ceClean = nllClean / predictions;
    m.ceSpliced = nllSpliced / predictions;
    m.ceSplicedWithBos = nllSplicedBos / predictions;
    m.ceZeroAblated = nllZero / predictions;
    m.l0 = active / static_cast<double>(rows);
    // Variance about the mean activation: sum |y|^2 - rows * |mean|^2.
    const double variance = sqNorm - sumY.pow(2).sum().item<double>() / static_cast<double>(rows);
    m.varianceExplained = 1.0 - sqErr / variance;
    m.ceIncrease = m.ceSpliced - m.ceClean;
    m.ceIncreaseWithBos = m.ceSplicedWithBos - m.ceClean;
    m.ceLossRecovered = (m.ceZeroAblated - m.ceSpliced) / (m.ceZeroAblated - m.ceClean);
    const at::Tensor freq = (fired.to(at::kDouble) / static_cast<double>(std::max<long>(rows, 1))).contiguous();
    m.firingFrequency.assign(freq.data_ptr<double>(), freq.data_ptr<double>() + freq.numel());
    m.silentFraction = fired.eq(0).to(at::kDouble).mean().item<double>();
    return m;
}

double measureSaeTrainingThroughput(const SaeTrainOptions& o, const LmTrainOptions& shape, int steps) {
    at::manual_seed(static_cast<int64_t>(o.seed));
    auto model = initialGpt2(shape);
    const std::string outHook = o.hookOut.empty() ? o.hook : o.hookOut;
    const long dIn = hookWidth(*model, o.hook, "benchmark"), dOut = hookWidth(*model, outHook, "benchmark");
    at::Tensor ids = at::randint(shape.vocab, {1 << 20}, at::kLong);
    std::vector<int32_t> stream(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
    ActivationSource src{*model, std::move(stream), o.hook, outHook, -1, shape.ctx, std::mt19937_64(o.seed)};
    SaeStepper stepper(o, dIn, dOut, at::zeros({dOut}));
    // Each step generates its own batch of activations, as training does on average.
    auto once = [&] {
        auto [x, y] = src.sample(o.batch);
        stepper.step(x.narrow(0, 0, o.batch), y.narrow(0, 0, o.batch), o.lr, 1.0);
    };
    for (int i = 0; i < 3; ++i) once();
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) once();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(steps) * o.batch / s;
}

SaeTrainReport trainSae(const SaeTrainOptions& o, const std::function<void(const SaeTrainProgress&)>& onProgress) {
    if (o.arch != "topk" && o.arch != "batchtopk" && o.arch != "relu" && o.arch != "jumprelu")
        throw Error("train-sae: unknown --arch '" + o.arch + "' (topk, batchtopk, relu or jumprelu)");
    if (o.tokens <= 0 && o.initFrom.empty())
        throw Error("train-sae: --tokens 0 needs --init (an SAE to fine-tune)");
    if (o.tokens < 0 || o.klTokens < 0) throw Error("train-sae: token counts must not be negative");
    auto model = loadModel(o.modelDir);
    auto tok = loadTokenizer(o.modelDir);
    CorpusSplit corpus = readCorpus(o.corpus, o.heldOutFraction);
    const bool transcoder = !o.hookOut.empty();
    // Checked before any work: SAELens has no TopK-transcoder layout to save the result in.
    if (transcoder && o.arch == "topk")
        throw Error("train-sae: TopK transcoders cannot be written in a SAELens layout yet; use --arch relu or jumprelu");
    const std::string outHook = transcoder ? o.hookOut : o.hook;
    const long dIn = hookWidth(*model, o.hook, o.outDir), dOut = hookWidth(*model, outHook, o.outDir);
    const long ctx = model->config().nCtx;
    ActivationSource src{*model, tokenStream(*tok, corpus.train), o.hook, outHook, tok->bosId(), ctx,
                         std::mt19937_64(o.seed)};
    if (static_cast<long>(src.stream.size()) <= ctx + 1) throw Error(o.corpus + ": corpus too small");
    at::manual_seed(static_cast<int64_t>(o.seed));

    const auto t0 = Clock::now();
    // Scale so activations average a norm of sqrt(d): one learning rate fits every hook and model.
    const long bufferTokens = std::max<long>(o.bufferTokens, 2L * o.batch);  // refills at half
    auto [x0, y0] = src.sample(o.poolTokens > 0 ? std::min(bufferTokens, o.poolTokens) : bufferTokens);
    const double sIn = std::sqrt(static_cast<double>(dIn)) / x0.norm(2, -1).mean().item<double>();
    const double sOut = std::sqrt(static_cast<double>(dOut)) / y0.norm(2, -1).mean().item<double>();
    SaeStepper stepper(o, dIn, dOut, (y0 * sOut).mean(0));
    nlohmann::json initRecord;  // how the starting SAE was made, kept in the output's metadata
    if (!o.initFrom.empty()) {
        auto init = loadSae(o.initFrom);
        stepper.loadRaw(initialWeights(o, *init, dIn, dOut), sIn, sOut);
        const auto& meta = init->config().extraMetadata;
        initRecord = {{"path", o.initFrom}};
        for (const char* key : {"circuitscope_training", "circuitscope_metrics"})
            if (meta.contains(key)) initRecord[key] = meta[key];
    }

    // Shuffling buffer, refilled with fresh windows when half of it has been used; or, with a
    // pool, filled once, a buffer's worth of windows per model run (to bound the run's memory)
    // written into one preallocated tensor. An SAE reads and writes one hook, so its targets are
    // its inputs: one tensor serves as both.
    at::Tensor bufX, bufY;
    if (o.poolTokens > 0) {
        const long capacity = o.poolTokens + ctx;  // a sample may overshoot by part of a window
        bufX = at::empty({capacity, dIn});
        bufY = transcoder ? at::empty({capacity, dOut}) : bufX;
        long have = 0;
        auto append = [&](const at::Tensor& nx, const at::Tensor& ny) {
            const long m = std::min(nx.size(0), capacity - have);
            bufX.narrow(0, have, m).copy_(nx.narrow(0, 0, m)).mul_(sIn);
            if (transcoder) bufY.narrow(0, have, m).copy_(ny.narrow(0, 0, m)).mul_(sOut);
            have += m;
        };
        append(x0, y0);
        while (have < o.poolTokens && !(o.stop && o.stop->load())) {
            auto [nx, ny] = src.sample(std::min(bufferTokens, o.poolTokens - have));
            append(nx, ny);
            if (onProgress) {
                SaeTrainProgress p;
                p.pooled = have;
                p.poolTokens = o.poolTokens;
                p.totalTokens = o.tokens;
                onProgress(p);
            }
        }
        bufX = bufX.narrow(0, 0, have);
        bufY = bufY.narrow(0, 0, have);
    } else {
        bufX = x0 * sIn;
        bufY = transcoder ? y0 * sOut : bufX;
    }
    x0 = y0 = at::Tensor();
    if (bufX.size(0) < o.batch)
        throw Error("train-sae: the activation pool holds " + std::to_string(bufX.size(0)) +
                    " activations, fewer than one batch of " + std::to_string(o.batch) + " (raise --pool)");
    at::Tensor order = at::randperm(bufX.size(0));
    long cursor = 0;
    const long steps = o.tokens > 0 ? std::max<long>(1, o.tokens / o.batch) : 0;
    const long warmup = std::min<long>(100, steps / 10 + 1);
    SaeTrainReport rep;
    const auto tLoop = Clock::now();  // the progress line's rate and ETA: training steps only
    double mseAvg = 0, l0Avg = 0;
    for (long step = 0; step < steps; ++step) {
        if (o.stop && o.stop->load()) {
            rep.stoppedEarly = true;
            break;
        }
        if (o.poolTokens > 0) {
            if (cursor + o.batch > order.size(0)) {
                order = at::randperm(bufX.size(0));
                cursor = 0;
            }
        } else if (cursor + o.batch > order.size(0) / 2 || order.size(0) < o.batch) {
            auto [nx, ny] = src.sample(bufferTokens / 2);
            const long keepN = std::max<long>(0, order.size(0) - cursor);
            at::Tensor rest = order.narrow(0, cursor, keepN);
            bufX = at::cat({bufX.index({rest}), nx * sIn});
            bufY = transcoder ? at::cat({bufY.index({rest}), ny * sOut}) : bufX;
            order = at::randperm(bufX.size(0));
            cursor = 0;
        }
        at::Tensor idx = order.narrow(0, cursor, o.batch);
        cursor += o.batch;
        const double lr = step < warmup ? o.lr * (step + 1) / warmup
                          : step > steps * 0.8 ? o.lr * std::max(0.0, (steps - step) / (steps * 0.2)) : o.lr;
        // A sparsity coefficient that ramps up over the first 10% of training, as in Gemma Scope,
        // so features find directions before being pushed to fire rarely (JumpReLU only).
        const double ramp = std::min(1.0, (step + 1) / (0.1 * steps));
        const SaeStepper::Stats st = stepper.step(bufX.index({idx}), bufY.index({idx}), lr, ramp);
        rep.tokens += o.batch;
        rep.steps = step + 1;
        mseAvg = step == 0 ? st.mse : 0.98 * mseAvg + 0.02 * st.mse;
        l0Avg = step == 0 ? st.l0 : 0.98 * l0Avg + 0.02 * st.l0;
        if (onProgress && (step % 20 == 0 || step + 1 == steps)) {
            const double loopSeconds = std::chrono::duration<double>(Clock::now() - tLoop).count();
            SaeTrainProgress p;
            p.tokens = rep.tokens;
            p.totalTokens = steps * o.batch;
            p.mse = mseAvg;
            p.l0 = l0Avg;
            p.deadFraction = stepper.deadFraction();
            p.tokensPerSecond = rep.tokens / std::max(loopSeconds, 1e-9);
            p.secondsLeft = loopSeconds / rep.tokens * (p.totalTokens - rep.tokens);
            onProgress(p);
        }
    }
    if (o.klTokens > 0 && !rep.stoppedEarly) {
        const KlFineTuneStats kl = klFineTune(stepper, src, sIn, sOut, o, onProgress);
        rep.klTokens = kl.tokens;
        rep.stoppedEarly = o.stop && o.stop->load();
    }
    rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    rep.tokensPerSecond = rep.tokens / std::max(rep.seconds, 1e-9);

    // Fold the training scales back in: the saved SAE reads and writes raw activations.
    SaeConfig cfg;
    cfg.dIn = dIn;
    cfg.dSae = o.dSae;
    cfg.dOut = dOut;
    // BatchTopK is saved as JumpReLU with one threshold for every feature, as SAELens does: a
    // per-token top-k of a batch has no meaning for a single token at inference.
    const bool jump = o.arch == "jumprelu" || o.arch == "batchtopk";
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
    SaeWeights w = stepper.rawWeights(sIn, sOut);
    if (o.arch == "batchtopk") {
        const long m = std::min<long>(bufX.size(0), 16384);
        const double t = stepper.batchTopKThreshold(bufX.index({at::randperm(bufX.size(0)).narrow(0, 0, m)}));
        w.threshold = at::full({o.dSae}, t);
    }
    auto sae = std::make_shared<Sae>(cfg, w);
    std::vector<std::string> held(corpus.heldOut.begin(), corpus.heldOut.end());
    rep.metrics = evaluateSae(*model, *tok, sae, held, o.evalTokens);
    rep.metrics.deadFraction = stepper.deadFraction();
    rep.resampledFeatures = stepper.resampled();
    // Firing frequency over the held-out text, as SAELens' sparsity.safetensors (log10).
    sae->sparsity = at::log10(at::tensor(rep.metrics.firingFrequency, at::kDouble).to(at::kFloat) + 1e-10);
    SaeConfig withMetrics = sae->config();
    withMetrics.extraMetadata["circuitscope_training"] = {
        {"corpus", o.corpus}, {"tokens", rep.tokens}, {"seed", o.seed}, {"lr", o.lr}, {"batch", o.batch},
        {"arch", o.arch}, {"l1", o.l1}, {"seconds", rep.seconds}, {"pool_tokens", o.poolTokens},
        {"resampled_features", rep.resampledFeatures}, {"kl_tokens", rep.klTokens},
        {"kl_lr", o.klLr > 0 ? o.klLr : o.lr / 3.0}, {"kl_mse_weight", o.klMseWeight}, {"kl_auxk", o.klAuxK}, {"restart", o.restart}};
    withMetrics.extraMetadata["circuitscope_metrics"] = metricsJson(rep.metrics);
    if (!initRecord.is_null()) withMetrics.extraMetadata["circuitscope_init"] = initRecord;
    Sae out(withMetrics, sae->weights());
    out.sparsity = sae->sparsity;
    saveSaeLens(out, o.outDir, o.storeF16);
    return rep;
}

}  // namespace cs
