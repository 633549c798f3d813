#pragma once
// Parameters, optimiser and update of one SAE or transcoder training run on scaled activations:
// the step that train-sae repeats, that the SAE-training benchmark times, and that the KL
// fine-tuning phase (train/KlFineTune.h) drives with its own loss. Internal to core/train.
#include "sae/Sae.h"
#include "train/SaeTrainer.h"

#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <memory>

namespace cs {

class SaeStepper {
public:
    struct Stats {
        double mse = 0;  // per dimension, on the scaled activations
        double l0 = 0;
    };

    SaeStepper(const SaeTrainOptions& o, long dIn, long dOut, const at::Tensor& meanOut);

    // x, y: [batch, d] scaled activations. sparsityRamp scales the JumpReLU L0 coefficient.
    // One optimiser step on the reconstruction loss (plus the architecture's sparsity or AuxK
    // term); dead features are restarted on schedule.
    Stats step(const at::Tensor& x, const at::Tensor& y, double lr, double sparsityRamp);

    // The reconstruction (a transcoder's prediction) of scaled x [n, d_in] with autograd to the
    // parameters, recording which features fired (they count as alive). `penalty`, if given,
    // receives the architecture's sparsity term as step() weighs it at full ramp (ReLU: L1,
    // JumpReLU: L0 through the threshold's pseudo-derivative; TopK: undefined, none).
    at::Tensor reconstruct(const at::Tensor& x, at::Tensor* penalty = nullptr);
    // The AuxK loss term for scaled x, its target y and reconstruct(x)'s output, weighted as
    // step() weighs it (undefined while no feature is dead): how well the dead features alone
    // reconstruct the residual, normalised by its size.
    at::Tensor auxKLoss(const at::Tensor& x, const at::Tensor& y, const at::Tensor& recon) const;
    // One optimiser step on a loss built from reconstruct()'s outputs, for `tokens` activations.
    void update(const at::Tensor& loss, double lr, long tokens);

    // BatchTopK at inference: the threshold at which the features fire k times per token on
    // average over x (scaled activations), i.e. the (k * n)-th largest pre-activation.
    double batchTopKThreshold(const at::Tensor& x) const;

    // JumpReLU thresholds learn at this multiple of the learning rate (10 by default: they must
    // climb orders of magnitude from their initial value). Fine-tuning from a trained file uses 1.
    void setThresholdLrScale(double scale) { thresholdLrScale_ = scale; }

    long resampled() const { return resampled_; }
    // Fraction of features that have not fired within the dead window (0 before one has passed).
    double deadFraction() const;

    // Starts from saved weights for raw activations (rawWeights' inverse), fresh optimiser state.
    void loadRaw(const SaeWeights& w, double sIn, double sOut);
    // The weights for raw activations: the training scales folded back in.
    SaeWeights rawWeights(double sIn, double sOut) const;

private:
    struct Pass {
        at::Tensor recon;    // [n, d_out], with autograd to the parameters
        at::Tensor active;   // [n] features firing per row (no autograd)
        at::Tensor penalty;  // the sparsity term (undefined for TopK / BatchTopK)
    };
    // Encode and decode x minus the decoder bias (SAEs) or x (transcoders), marking fired features.
    Pass pass(const at::Tensor& xin, double sparsityRamp);
    void setLearningRate(double lr);
    void resampleDead(const at::Tensor& xin, const at::Tensor& residual);
    at::Tensor deadFeatures() const;
    at::Tensor auxK(const at::Tensor& xin, const at::Tensor& residual) const;

    const SaeTrainOptions& o_;
    bool transcoder_, jump_;
    long dOut_;
    double bandwidth_;
    double thresholdLrScale_;
    at::Tensor Wenc_, Wdec_, bEnc_, bDec_, logTheta_, lastFired_;
    std::unique_ptr<torch::optim::Adam> adam_;
    long tokens_ = 0, deadWindow_ = 0, nextResample_ = 0;
    long resampled_ = 0;
    int kAux_ = 0;
};

}  // namespace cs
