#pragma once
// The last phase of SAE training: fine-tuning on the downstream loss. An SAE trained only to
// reconstruct spends its error budget evenly across directions, while the model's next-token
// prediction depends on some directions far more than others. Here the SAE's reconstruction is
// spliced into the model (BOS positions left as they are, as in evaluation) and its parameters
// follow the gradient of KL(clean next-token distribution || spliced one), back through the rest
// of the model, plus a weighted normalised reconstruction error so the features keep describing
// the activation. This is the KL fine-tuning of Karvonen et al. (2025), in the spirit of Braun et
// al.'s end-to-end SAEs (2024). A transcoder is fine-tuned the same way with its prediction
// spliced in place of the MLP output it replaces; JumpReLU and ReLU keep their sparsity term in
// the loss. Internal to core/train.
#include "train/SaeTrainer.h"

#include <functional>

namespace cs {

struct ActivationSource;
class SaeStepper;

struct KlFineTuneStats {
    long tokens = 0;
    double kl = 0, nmse = 0;  // running means of the last steps
};

// Runs o.klTokens tokens of fine-tuning on windows drawn from `src`. sIn / sOut are the training
// scales (the stepper works on scaled activations). Stops early when o.stop is set.
KlFineTuneStats klFineTune(SaeStepper& stepper, ActivationSource& src, double sIn, double sOut,
                           const SaeTrainOptions& o, const std::function<void(const SaeTrainProgress&)>& onProgress);

}  // namespace cs
