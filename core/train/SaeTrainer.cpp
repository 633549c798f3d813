#include "train/SaeTrainer.h"

#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "train/LmTrainer.h"
#include "train/SparseCode.h"
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

// Parameters, optimiser and update of one SAE training run on scaled activations: the step that
// train-sae repeats and that the SAE-training benchmark times.
class SaeStepper {
public:
    struct Stats {
        double mse = 0;  // per dimension, on the scaled activations
        double l0 = 0;
    };

    SaeStepper(const SaeTrainOptions& o, long dIn, long dOut, const at::Tensor& meanOut)
        : o_(o), transcoder_(!o.hookOut.empty()), jump_(o.arch == "jumprelu"), dOut_(dOut),
          bandwidth_(kJumpBandwidth * std::sqrt(static_cast<double>(dIn))) {
        Wdec_ = at::randn({o.dSae, dOut});
        Wdec_ = Wdec_ / Wdec_.norm(2, -1, true);
        Wenc_ = transcoder_ ? at::randn({dIn, o.dSae}) / std::sqrt(static_cast<double>(dIn)) : Wdec_.t().clone();
        Wdec_.requires_grad_();
        Wenc_.requires_grad_();
        bEnc_ = at::zeros({o.dSae}).requires_grad_();
        bDec_ = meanOut.detach().clone().requires_grad_();
        // JumpReLU thresholds live in log space so they stay positive (Rajamanoharan et al. 2024).
        logTheta_ = at::full({o.dSae}, std::log(kJumpInitThreshold * std::sqrt(static_cast<double>(dIn)))).requires_grad_();
        // Thresholds get their own, faster group: Adam moves a log-threshold by about lr per
        // step, and thresholds must climb orders of magnitude from their initial value within a
        // few thousand steps (Gemma Scope trained for hundreds of thousands).
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(std::vector<at::Tensor>{Wenc_, Wdec_, bEnc_, bDec_},
                            std::make_unique<torch::optim::AdamOptions>(o.lr));
        if (jump_)
            groups.emplace_back(std::vector<at::Tensor>{logTheta_},
                                std::make_unique<torch::optim::AdamOptions>(o.lr * kJumpThresholdLrScale));
        adam_ = std::make_unique<torch::optim::Adam>(std::move(groups),
                                                     torch::optim::AdamOptions(o.lr).betas(std::make_tuple(0.9, 0.999)));
        lastFired_ = at::zeros({o.dSae}, at::kLong);
        deadWindow_ = std::min<long>(o.tokens / 4, 500'000);
        nextResample_ = 2 * deadWindow_;  // the first check that can find a dead feature
        kAux_ = static_cast<int>(std::min<long>(dOut / 2, o.dSae / 2));
    }

    // x, y: [batch, d] scaled activations. sparsityRamp scales the JumpReLU L0 coefficient.
    Stats step(const at::Tensor& x, const at::Tensor& y, double lr, double sparsityRamp) {
        for (size_t g = 0; g < adam_->param_groups().size(); ++g)
            static_cast<torch::optim::AdamOptions&>(adam_->param_groups()[g].options()).lr(g == 0 ? lr : lr * kJumpThresholdLrScale);
        const long n = x.size(0);
        at::Tensor xin = transcoder_ ? x : x - bDec_;
        at::Tensor f, l0Ste, recon, active, pre;
        if (o_.arch == "topk" || o_.arch == "batchtopk") {
            // The backward pass touches only the selected features (train/SparseCode.h).
            const SparseCode c = o_.arch == "topk" ? topKCode(xin, Wenc_, bEnc_, Wdec_, bDec_, o_.k)
                                                   : batchTopKCode(xin, Wenc_, bEnc_, Wdec_, bDec_, o_.k);
            recon = c.recon;
            at::NoGradGuard ng;
            at::Tensor on = c.act > 0;
            lastFired_.index_fill_(0, c.features.masked_select(on), tokens_ + n);
            active = c.rows.defined() ? at::bincount(c.rows.masked_select(on), {}, n) : on.sum(-1);
        } else {
            pre = at::addmm(bEnc_, xin, Wenc_);
            if (jump_) {
                JumpReluStep j = jumpReluStep(pre, logTheta_, bandwidth_);
                f = j.features;
                l0Ste = j.l0;
            } else {
                f = at::relu(pre);
            }
            recon = at::addmm(bDec_, f, Wdec_);
            at::NoGradGuard ng;
            at::Tensor on = f > 0;
            lastFired_.masked_fill_(on.any(0), tokens_ + n);
            active = on.sum(-1);
        }
        at::Tensor mse = (recon - y).pow(2).sum(-1).mean();
        at::Tensor loss = mse;
        if (o_.arch == "relu") {
            loss = loss + o_.l1 * (f * Wdec_.norm(2, -1)).sum(-1).mean();
        } else if (jump_) {
            loss = loss + o_.l1 * sparsityRamp * l0Ste;
        } else if (at::Tensor dead = deadFeatures(); dead.defined()) {
            // AuxK: let the dead features explain what the live ones missed. Computed densely
            // over the dead features only (a few percent of them): gathering kAux encoder
            // columns per token instead moved tens of megabytes a step and halved throughput.
            at::Tensor residual = (y - recon).detach();
            at::Tensor preDead = at::addmm(bEnc_.index_select(0, dead), xin, Wenc_.index_select(1, dead));
            auto [val, pos] = preDead.topk(std::min<long>(kAux_, dead.size(0)), -1);
            at::Tensor code = at::zeros_like(preDead).scatter(-1, pos, at::relu(val));
            at::Tensor auxRecon = at::mm(code, Wdec_.index_select(0, dead));
            at::Tensor aux = (auxRecon - residual).pow(2).sum(-1).mean() / residual.pow(2).sum(-1).mean().clamp_min(1e-8);
            loss = loss + aux / 32.0;
        }
        adam_->zero_grad();
        loss.backward();
        adam_->step();
        if (o_.arch != "relu") {
            at::NoGradGuard ng;
            Wdec_.div_(Wdec_.norm(2, -1, true).clamp_min(1e-8));
        }
        tokens_ += n;
        if ((o_.arch == "topk" || o_.arch == "batchtopk") && tokens_ >= nextResample_) {
            nextResample_ += deadWindow_;
            // Not once the learning rate decays (the last 20%): a resampled feature needs time.
            if (tokens_ < 0.8 * static_cast<double>(o_.tokens)) resampleDead(y - recon.detach());
        }
        Stats s;
        s.mse = mse.item<double>() / dOut_;
        s.l0 = active.to(at::kDouble).mean().item<double>();
        return s;
    }

    // BatchTopK at inference: the threshold at which the features fire k times per token on
    // average over x (scaled activations), i.e. the (k * n)-th largest pre-activation.
    double batchTopKThreshold(const at::Tensor& x) const {
        at::NoGradGuard ng;
        at::Tensor pre = at::addmm(bEnc_, transcoder_ ? x : x - bDec_, Wenc_).reshape({-1});
        return std::get<0>(pre.topk(x.size(0) * o_.k, -1, true, false)).min().item<double>();
    }

    // Fraction of features that have not fired within the dead window (0 before one has passed).
    long resampled() const { return resampled_; }

    double deadFraction() const {
        if (tokens_ <= deadWindow_) return 0.0;
        return ((tokens_ - lastFired_) > deadWindow_).to(at::kDouble).mean().item<double>();
    }

    // The weights for raw activations: the training scales folded back in.
    SaeWeights rawWeights(double sIn, double sOut) const {
        at::NoGradGuard ng;
        SaeWeights w;
        // Encoder on raw x: (x*sIn - bDec) W = (x - bDec/sIn)(sIn W); SAEs have sIn == sOut.
        w.W_enc = (Wenc_ * sIn).detach().clone();
        w.W_dec = (Wdec_ / sOut).detach().clone();
        w.b_enc = bEnc_.detach().clone();
        w.b_dec = (bDec_ / sOut).detach().clone();
        // Pre-activations on raw x equal those on scaled x, so thresholds carry over unchanged.
        if (jump_) w.threshold = logTheta_.exp().detach().clone();
        return w;
    }

private:
    // Dead features start again from directions the SAE reconstructs worst (Bricken et al.
    // 2023): AuxK keeps most features alive, but at the learning rates that train best, a few
    // percent still die and stay dead. Each gets a decoder row along the residual of an input
    // drawn with probability proportional to its squared error, a matching encoder column at a
    // fifth of the live columns' mean norm, a zero bias, fresh Adam moments, and a new window.
    void resampleDead(const at::Tensor& residual) {
        at::NoGradGuard ng;
        at::Tensor dead = deadFeatures();
        if (!dead.defined()) return;
        const long m = dead.size(0);
        at::Tensor err = residual.pow(2).sum(-1);
        if (err.sum().item<double>() <= 0) return;
        at::Tensor dirs = residual.index_select(0, at::multinomial(err, m, true));
        dirs = dirs / dirs.norm(2, -1, true).clamp_min(1e-8);
        at::Tensor alive = ((tokens_ - lastFired_) <= deadWindow_);
        const double encNorm = Wenc_.norm(2, 0).masked_select(alive).mean().item<double>();
        Wdec_.index_copy_(0, dead, dirs);
        Wenc_.index_copy_(1, dead, dirs.t() * (0.2 * encNorm));
        bEnc_.index_fill_(0, dead, 0.0);
        for (const at::Tensor& p : {Wdec_, Wenc_, bEnc_}) {
            auto it = adam_->state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
            if (it == adam_->state().end()) continue;
            auto& st = static_cast<torch::optim::AdamParamState&>(*it->second);
            const long dim = p.is_same(Wenc_) ? 1 : 0;
            st.exp_avg().index_fill_(dim, dead, 0.0);
            st.exp_avg_sq().index_fill_(dim, dead, 0.0);
        }
        lastFired_.index_fill_(0, dead, tokens_);
        resampled_ += m;
    }

    // Indices of the features that have not fired within the dead window (undefined when there
    // are none, or before a window has passed).
    at::Tensor deadFeatures() const {
        if (tokens_ <= deadWindow_) return {};
        at::Tensor dead = ((tokens_ - lastFired_) > deadWindow_).nonzero().squeeze(1);
        return dead.size(0) > 0 ? dead : at::Tensor();
    }

    const SaeTrainOptions& o_;
    bool transcoder_, jump_;
    long dOut_;
    double bandwidth_;
    at::Tensor Wenc_, Wdec_, bEnc_, bDec_, logTheta_, lastFired_;
    std::unique_ptr<torch::optim::Adam> adam_;
    long tokens_ = 0, deadWindow_ = 0, nextResample_ = 0;
    long resampled_ = 0;
    int kAux_ = 0;
};

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
    const long steps = std::max<long>(1, o.tokens / o.batch);
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
        {"arch", o.arch}, {"l1", o.l1}, {"seconds", rep.seconds}, {"pool_tokens", o.poolTokens},
        {"resampled_features", rep.resampledFeatures}};
    withMetrics.extraMetadata["circuitscope_metrics"] = {
        {"l0", rep.metrics.l0}, {"variance_explained", rep.metrics.varianceExplained},
        {"dead_fraction", rep.metrics.deadFraction}, {"ce_clean", rep.metrics.ceClean},
        {"ce_spliced", rep.metrics.ceSpliced}, {"ce_zero_ablated", rep.metrics.ceZeroAblated},
        {"ce_loss_recovered", rep.metrics.ceLossRecovered}, {"ce_increase", rep.metrics.ceIncrease},
        {"eval_tokens", rep.metrics.evalTokens}};
    Sae out(withMetrics, sae->weights());
    out.sparsity = sae->sparsity;
    saveSaeLens(out, o.outDir, o.storeF16);
    return rep;
}

}  // namespace cs
