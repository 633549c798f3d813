#pragma once
// A steering plan turned into hook functions on the model's one forward pass (KV cache included),
// so a steered generation costs what a plain one costs plus a few small tensor operations per hook.
//
// At each hook that rows write to, every row's coefficient is read from the activation as it
// arrives there (upstream hooks' steering included, this hook's not yet), then all rows' changes
// are added at once:
//   add:    x += value * d
//   clamp:  x += (value - a) * d
//   ablate: x += (0 - a) * d
//   scale:  x += (value - 1) * a * d   (the coefficient becomes value x a)
// Feature rows: d = W_dec[feature] as loaded (the hook is the SAE's output hook) and a = the SAE's
// activation of that feature at that position (transcoders: encoded from their input hook). This is
// splicing with the error term kept: only the steered feature's contribution changes.
// Vector rows: d = the direction, a = <x, d> / <d, d> (clamp sets the component along d).
//
// A condition ("feature A above x") is evaluated before any steering: on a side pass of the
// unsteered model over the same tokens, up to the condition's layer, with its own KV cache. When
// every row writes at the condition's hook or after it in forward order (at the same hook the
// condition is read first), the steered pass is still the unsteered model there, so the condition
// is read in that pass and no side pass runs. Rows marked conditional apply only where it holds.
#include "model/Generation.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "steer/SteeringRule.h"

#include <memory>
#include <string>
#include <vector>

namespace cs {

struct SteeringSae {
    std::string id;  // as `features --json` and the feature store name it
    std::shared_ptr<const Sae> sae;
};

class Steering {
public:
    // Resolves each feature row's SAE (an empty id means the only SAE there is), checks feature
    // indices, hooks and vector widths. Throws cs::Error naming the row and what is wrong.
    Steering(const Transformer& model, std::vector<SteeringSae> saes, SteeringPlan plan);
    ~Steering();
    Steering(const Steering&) = delete;
    Steering& operator=(const Steering&) = delete;

    const SteeringPlan& plan() const { return plan_; }
    // Positions [0, n) are the prompt (for @prompt / @generated).
    void setPromptLength(long n);
    // Registers the hook functions. This object must outlive every run that uses `hooks`.
    void install(Hooks& hooks) const;
    // Call before each forward of a steered run with the tokens it feeds ([1, pos]) and the position
    // of the first; a run that starts again at 0 starts afresh. Does nothing without a condition.
    void beforeForward(const at::Tensor& tokens, long positionOffset);
    BeforeForward beforeForwardFn();
    // The condition feature's unsteered activation at every position seen so far (empty without one).
    const std::vector<float>& conditionActivations() const;

private:
    struct State;
    const Transformer& model_;
    std::vector<SteeringSae> saes_;
    SteeringPlan plan_;
    std::shared_ptr<State> state_;
};

// Generates as cs::generate does, with `steering` applied (its prompt length set to the prompt's).
std::vector<long> generateSteered(const Transformer& model, const std::vector<long>& prompt,
                                  const SamplingOptions& s, Steering& steering,
                                  const std::function<bool(long)>& onToken = {});

// The activation one SAE feature would have: encode(x)[..., feature] for x [..., d_in].
at::Tensor featureActivation(const Sae& sae, const at::Tensor& x, long feature);

}  // namespace cs
