#include "train/SaeStepper.h"

#include "train/SparseCode.h"

#include <c10/util/StringUtil.h>

#include <cmath>
#include <vector>

namespace cs {

namespace {

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

}  // namespace

SaeStepper::SaeStepper(const SaeTrainOptions& o, long dIn, long dOut, const at::Tensor& meanOut)
    : o_(o), transcoder_(!o.hookOut.empty()), jump_(o.arch == "jumprelu"), dOut_(dOut),
      bandwidth_(kJumpBandwidth * std::sqrt(static_cast<double>(dIn))), thresholdLrScale_(kJumpThresholdLrScale) {
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
    deadWindow_ = std::min<long>((o.tokens + o.klTokens) / 4, 500'000);
    nextResample_ = 2 * deadWindow_;  // the first check that can find a dead feature
    kAux_ = static_cast<int>(std::min<long>(dOut / 2, o.dSae / 2));
}

void SaeStepper::setLearningRate(double lr) {
    for (size_t g = 0; g < adam_->param_groups().size(); ++g)
        static_cast<torch::optim::AdamOptions&>(adam_->param_groups()[g].options()).lr(g == 0 ? lr : lr * thresholdLrScale_);
}

SaeStepper::Pass SaeStepper::pass(const at::Tensor& xin, double sparsityRamp) {
    const long n = xin.size(0);
    Pass r;
    if (o_.arch == "topk" || o_.arch == "batchtopk") {
        // The backward pass touches only the selected features (train/SparseCode.h).
        const SparseCode c = o_.arch == "topk" ? topKCode(xin, Wenc_, bEnc_, Wdec_, bDec_, o_.k)
                                               : batchTopKCode(xin, Wenc_, bEnc_, Wdec_, bDec_, o_.k);
        r.recon = c.recon;
        at::NoGradGuard ng;
        at::Tensor on = c.act > 0;
        lastFired_.index_fill_(0, c.features.masked_select(on), tokens_ + n);
        r.active = c.rows.defined() ? at::bincount(c.rows.masked_select(on), {}, n) : on.sum(-1);
        return r;
    }
    const at::Tensor pre = at::addmm(bEnc_, xin, Wenc_);
    at::Tensor f;
    if (jump_) {
        JumpReluStep j = jumpReluStep(pre, logTheta_, bandwidth_);
        f = j.features;
        r.penalty = o_.l1 * sparsityRamp * j.l0;
    } else {
        f = at::relu(pre);
        r.penalty = o_.l1 * (f * Wdec_.norm(2, -1)).sum(-1).mean();
    }
    r.recon = at::addmm(bDec_, f, Wdec_);
    at::NoGradGuard ng;
    at::Tensor on = f > 0;
    lastFired_.masked_fill_(on.any(0), tokens_ + n);
    r.active = on.sum(-1);
    return r;
}

SaeStepper::Stats SaeStepper::step(const at::Tensor& x, const at::Tensor& y, double lr, double sparsityRamp) {
    const long n = x.size(0);
    at::Tensor xin = transcoder_ ? x : x - bDec_;
    const Pass p = pass(xin, sparsityRamp);
    at::Tensor mse = (p.recon - y).pow(2).sum(-1).mean();
    at::Tensor loss = mse;
    if (p.penalty.defined()) loss = loss + p.penalty;
    else if (at::Tensor aux = auxK(xin, (y - p.recon).detach()); aux.defined()) loss = loss + aux;
    update(loss, lr, n);
    if ((o_.arch == "topk" || o_.arch == "batchtopk") && tokens_ >= nextResample_) {
        nextResample_ += deadWindow_;
        // Not once the learning rate decays (the last 20%): a resampled feature needs time.
        if (tokens_ < 0.8 * static_cast<double>(o_.tokens)) resampleDead(xin.detach(), y - p.recon.detach());
    }
    Stats s;
    s.mse = mse.item<double>() / dOut_;
    s.l0 = p.active.to(at::kDouble).mean().item<double>();
    return s;
}

// AuxK: let the dead features explain what the live ones missed. Computed densely over the dead
// features only (a few percent of them): gathering kAux encoder columns per token instead moved
// tens of megabytes a step and halved throughput.
at::Tensor SaeStepper::auxK(const at::Tensor& xin, const at::Tensor& residual) const {
    at::Tensor dead = deadFeatures();
    if (!dead.defined()) return {};
    at::Tensor preDead = at::addmm(bEnc_.index_select(0, dead), xin, Wenc_.index_select(1, dead));
    auto [val, pos] = preDead.topk(std::min<long>(kAux_, dead.size(0)), -1);
    at::Tensor code = at::zeros_like(preDead).scatter(-1, pos, at::relu(val));
    at::Tensor auxRecon = at::mm(code, Wdec_.index_select(0, dead));
    // Weighted 1/32, OpenAI's TopK paper's AuxK coefficient.
    return (auxRecon - residual).pow(2).sum(-1).mean() / residual.pow(2).sum(-1).mean().clamp_min(1e-8) / 32.0;
}

at::Tensor SaeStepper::auxKLoss(const at::Tensor& x, const at::Tensor& y, const at::Tensor& recon) const {
    return auxK(transcoder_ ? x : x - bDec_, (y - recon).detach());
}

at::Tensor SaeStepper::reconstruct(const at::Tensor& x, at::Tensor* penalty) {
    Pass p = pass(transcoder_ ? x : x - bDec_, 1.0);
    if (penalty) *penalty = p.penalty;
    return p.recon;
}

void SaeStepper::update(const at::Tensor& loss, double lr, long tokens) {
    setLearningRate(lr);
    adam_->zero_grad();
    loss.backward();
    adam_->step();
    if (o_.arch != "relu") {
        at::NoGradGuard ng;
        Wdec_.div_(Wdec_.norm(2, -1, true).clamp_min(1e-8));
    }
    tokens_ += tokens;
}

double SaeStepper::batchTopKThreshold(const at::Tensor& x) const {
    at::NoGradGuard ng;
    at::Tensor pre = at::addmm(bEnc_, transcoder_ ? x : x - bDec_, Wenc_).reshape({-1});
    return std::get<0>(pre.topk(x.size(0) * o_.k, -1, true, false)).min().item<double>();
}

double SaeStepper::deadFraction() const {
    if (tokens_ <= deadWindow_) return 0.0;
    return ((tokens_ - lastFired_) > deadWindow_).to(at::kDouble).mean().item<double>();
}

void SaeStepper::loadRaw(const SaeWeights& w, double sIn, double sOut) {
    at::NoGradGuard ng;
    Wenc_.copy_(w.W_enc.to(at::kFloat) / sIn);
    Wdec_.copy_(w.W_dec.to(at::kFloat) * sOut);
    Wdec_.div_(Wdec_.norm(2, -1, true).clamp_min(1e-8));
    bEnc_.copy_(w.b_enc.to(at::kFloat));
    bDec_.copy_(w.b_dec.to(at::kFloat) * sOut);
    if (jump_ && w.threshold.defined()) logTheta_.copy_(w.threshold.to(at::kFloat).clamp_min(1e-12).log());
}

SaeWeights SaeStepper::rawWeights(double sIn, double sOut) const {
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

// Dead features start again from directions the SAE reconstructs worst (Bricken et al.
// 2023): AuxK keeps most features alive, but at the learning rates that train best, a few
// percent still die and stay dead. Each gets a decoder row along the residual of an input
// drawn with probability proportional to its squared error, a matching encoder column (its
// norm set by SaeTrainOptions::restart), a zero bias, fresh Adam moments, and a new window.
void SaeStepper::resampleDead(const at::Tensor& xin, const at::Tensor& residual) {
    at::NoGradGuard ng;
    at::Tensor dead = deadFeatures();
    if (!dead.defined()) return;
    const long m = dead.size(0);
    at::Tensor err = residual.pow(2).sum(-1);
    if (err.sum().item<double>() <= 0) return;
    at::Tensor rows = at::multinomial(err, m, true);
    at::Tensor dirs = residual.index_select(0, rows);
    dirs = dirs / dirs.norm(2, -1, true).clamp_min(1e-8);
    at::Tensor alive = ((tokens_ - lastFired_) <= deadWindow_);
    const double encNorm = Wenc_.norm(2, 0).masked_select(alive).mean().item<double>();
    at::Tensor enc = dirs.t() * (0.2 * encNorm);
    if (o_.restart == "topk") {
        // Norm so that the pre-activation on its own input is 1.1x that input's k-th largest (a
        // TopK feature below the k-th pre-activation gets no reconstruction gradient at all), at
        // most the live columns' mean norm: up to 10x that, restarted features won every top k
        // and the reconstruction error jumped 10-100x at each restart.
        at::Tensor x = xin.index_select(0, rows);
        at::Tensor kth = std::get<0>(at::addmm(bEnc_, x, Wenc_).topk(o_.k, -1)).select(-1, o_.k - 1);
        at::Tensor along = (x * dirs).sum(-1).clamp_min(1e-6);
        at::Tensor scale = (1.1 * kth.clamp_min(0) / along).clamp(0.2 * encNorm, encNorm);
        enc = dirs.t() * scale.unsqueeze(0);
    }
    Wdec_.index_copy_(0, dead, dirs);
    Wenc_.index_copy_(1, dead, enc);
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
at::Tensor SaeStepper::deadFeatures() const {
    if (tokens_ <= deadWindow_) return {};
    at::Tensor dead = ((tokens_ - lastFired_) > deadWindow_).nonzero().squeeze(1);
    return dead.size(0) > 0 ? dead : at::Tensor();
}

}  // namespace cs
