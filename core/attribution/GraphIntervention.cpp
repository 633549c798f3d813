#include "attribution/GraphIntervention.h"

#include "attribution/Attribution.h"
#include "model/Generation.h"
#include "steer/Steering.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

namespace cs {

namespace {

constexpr long kTopTokens = 5;

std::string blockHook(int l, const char* name) { return "blocks." + std::to_string(l) + "." + name; }

std::string describe(const NodeIntervention& iv, size_t i) {
    return "intervention " + std::to_string(i + 1) + " (" + (iv.saeId.empty() ? "" : iv.saeId + " ") + "layer " +
           std::to_string(iv.layer) + ", feature " + std::to_string(iv.feature) + ", position " +
           std::to_string(iv.position) + ")";
}

std::string idList(const std::vector<AttributionTranscoder>& tcs) {
    std::string s;
    for (const auto& t : tcs) s += (s.empty() ? "" : ", ") + t.id;
    return s.empty() ? "none" : s;
}

// The layer each transcoder serves (it must read ln2.hook_normalized and write hook_mlp_out of one
// block: that is where a graph's feature node lives).
std::vector<int> transcoderLayers(const Transformer& model, const std::vector<AttributionTranscoder>& tcs) {
    const int L = model.config().nLayers;
    std::vector<int> layers;
    for (const auto& tc : tcs) {
        if (!tc.sae) throw Error("interventions: transcoder '" + tc.id + "' is not loaded");
        const SaeConfig& c = tc.sae->config();
        int layer = -1;
        for (int l = 0; l < L; ++l)
            if (c.hookName == blockHook(l, "ln2.hook_normalized") && c.hookNameOut == blockHook(l, "hook_mlp_out")) layer = l;
        if (layer < 0)
            failIn(c.source, "interventions need transcoders that read blocks.L.ln2.hook_normalized and write "
                             "blocks.L.hook_mlp_out (this one: '" + c.hookName + "' -> '" +
                             (c.hookNameOut.empty() ? c.hookName : c.hookNameOut) + "')");
        layers.push_back(layer);
    }
    return layers;
}

// Which transcoder each intervention names; fills in a missing layer. Throws on what does not fit.
std::vector<size_t> resolve(const Transformer& model, const std::vector<AttributionTranscoder>& tcs,
                            const std::vector<int>& layers, std::vector<NodeIntervention>& ivs, long T) {
    const int L = model.config().nLayers;
    std::vector<size_t> which;
    for (size_t i = 0; i < ivs.size(); ++i) {
        NodeIntervention& iv = ivs[i];
        const std::string where = describe(iv, i);
        size_t t = tcs.size();
        if (!iv.saeId.empty()) {
            for (size_t j = 0; j < tcs.size(); ++j)
                if (tcs[j].id == iv.saeId) t = j;
            if (t == tcs.size())
                throw Error(where + ": unknown SAE id '" + iv.saeId + "' (transcoders: " + idList(tcs) + ")");
            if (iv.layer < 0) iv.layer = layers[t];
            if (iv.layer != layers[t])
                throw Error(where + ": transcoder '" + iv.saeId + "' serves layer " + std::to_string(layers[t]) +
                            ", not layer " + std::to_string(iv.layer));
        } else {
            if (iv.layer < 0 || iv.layer >= L)
                throw Error(where + ": layer " + std::to_string(iv.layer) + " is out of range for a model of " +
                            std::to_string(L) + " layers");
            for (size_t j = 0; j < tcs.size(); ++j)
                if (layers[j] == iv.layer) {
                    if (t != tcs.size())
                        throw Error(where + ": two transcoders serve layer " + std::to_string(iv.layer) + " ('" +
                                    tcs[t].id + "', '" + tcs[j].id + "'); name one");
                    t = j;
                }
            if (t == tcs.size())
                throw Error(where + ": no transcoder serves layer " + std::to_string(iv.layer) + " (transcoders: " +
                            idList(tcs) + ")");
        }
        if (iv.position < 0 || iv.position >= T)
            throw Error(where + ": position " + std::to_string(iv.position) + " is out of range for a prompt of " +
                        std::to_string(T) + " tokens (0.." + std::to_string(T - 1) + ")");
        const long dSae = tcs[t].sae->dSae();
        if (iv.feature < 0 || iv.feature >= dSae)
            throw Error(where + ": feature " + std::to_string(iv.feature) + " is out of range for transcoder '" +
                        tcs[t].id + "' (" + std::to_string(dSae) + " features: 0.." + std::to_string(dSae - 1) + ")");
        if (!std::isfinite(iv.value)) throw Error(where + ": the value is not a finite number");
        which.push_back(t);
    }
    return which;
}

SteerMode steerModeFor(NodeIntervention::Kind k) {
    switch (k) {
    case NodeIntervention::Kind::Set: return SteerMode::Clamp;
    case NodeIntervention::Kind::Scale: return SteerMode::Scale;
    case NodeIntervention::Kind::Ablate: return SteerMode::Ablate;
    }
    return SteerMode::Ablate;
}

// Replaces the query rows at prompt positions (< T) of a pattern [B, H, q, k] by the unintervened
// run's rows. Generated positions' rows are left as computed. Columns past the prompt are 0 in a
// prompt row (causal), so a longer key axis (generation without a KV cache) gets zeros there.
void freezePatterns(Hooks& hooks, const ActivationCache& clean, int layers, long T) {
    for (int l = 0; l < layers; ++l) {
        const at::Tensor frozen = clean.at(blockHook(l, "attn.hook_pattern"));
        hooks.add(blockHook(l, "attn.hook_pattern"), [frozen, T](at::Tensor& x, const HookContext& ctx) {
            const long q0 = ctx.positionOffset, rows = std::min<long>(x.size(2), T - q0);
            if (rows <= 0) return;
            const long cols = std::min<long>(x.size(3), T);
            at::Tensor out = x.clone();
            at::Tensor head = out.narrow(2, 0, rows);
            head.zero_();
            head.narrow(3, 0, cols).copy_(frozen.narrow(2, q0, rows).narrow(3, 0, cols));
            x = out;
        });
    }
}

std::vector<TopToken> topTokens(const at::Tensor& centred, const at::Tensor& probs) {
    const long k = std::min<long>(kTopTokens, probs.size(0));
    const at::Tensor idx = std::get<1>(probs.topk(k));
    std::vector<TopToken> out;
    for (long i = 0; i < k; ++i) {
        const long t = idx[i].item<long>();
        out.push_back({t, centred[t].item<double>(), probs[t].item<double>()});
    }
    return out;
}

}  // namespace

const char* interventionKindName(NodeIntervention::Kind k) {
    switch (k) {
    case NodeIntervention::Kind::Set: return "set";
    case NodeIntervention::Kind::Scale: return "scale";
    case NodeIntervention::Kind::Ablate: return "ablate";
    }
    return "ablate";
}

NodeIntervention::Kind parseInterventionKind(const std::string& s, const std::string& where) {
    if (s == "set") return NodeIntervention::Kind::Set;
    if (s == "scale") return NodeIntervention::Kind::Scale;
    if (s == "ablate") return NodeIntervention::Kind::Ablate;
    throw Error(where + ": unknown intervention '" + s + "' (expected set, scale or ablate)");
}

NodeIntervention interventionForNode(const GraphNode& node, NodeIntervention::Kind kind, double value,
                                     const std::string& saeId) {
    if (node.kind != NodeKind::Feature)
        throw Error("node '" + node.id + "' is " + (node.kind == NodeKind::Error || node.kind == NodeKind::Embedding ? "an " : "a ") + nodeKindName(node.kind) +
                    " node: only feature nodes can be intervened on");
    NodeIntervention iv;
    iv.saeId = saeId;
    iv.layer = node.layer;
    iv.position = node.position;
    iv.feature = node.feature;
    iv.kind = kind;
    iv.value = kind == NodeIntervention::Kind::Ablate ? 0.0 : value;
    return iv;
}

InterventionResult interveneOnGraph(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const std::vector<NodeIntervention>& interventions,
                                    const InterventionOptions& options) {
    const ModelConfig& cfg = model.config();
    const long T = static_cast<long>(tokens.size());
    if (T == 0) throw Error("interventions: no tokens");
    if (T > cfg.nCtx)
        throw Error("interventions: " + std::to_string(T) + " tokens are more than the model's context of " +
                    std::to_string(cfg.nCtx));
    for (long t : tokens)
        if (t < 0 || t >= cfg.vocabSize)
            throw Error("interventions: token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                        std::to_string(cfg.vocabSize));
    for (long t : options.targets)
        if (t < 0 || t >= cfg.vocabSize)
            throw Error("interventions: target token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                        std::to_string(cfg.vocabSize));
    if (interventions.empty()) throw Error("interventions: no node to intervene on");
    if (options.maxNewTokens < 0) throw Error("interventions: the number of new tokens is negative");
    const std::vector<int> layers = transcoderLayers(model, transcoders);
    std::vector<NodeIntervention> ivs = interventions;
    const std::vector<size_t> which = resolve(model, transcoders, layers, ivs, T);

    c10::InferenceMode guard;
    const at::Tensor input = at::tensor(tokens, at::kLong).unsqueeze(0);
    InterventionResult res;
    res.attentionFrozen = options.freezeAttention;

    // Each intervention's feature activation at its position, read from its transcoder's input
    // hook in whichever run `hooks` serves.
    auto readActivations = [&](Hooks& hooks, std::vector<double>& out) {
        out.assign(ivs.size(), 0.0);
        for (size_t i = 0; i < ivs.size(); ++i) {
            const std::shared_ptr<const Sae> sae = transcoders[which[i]].sae;
            const NodeIntervention iv = ivs[i];
            double* slot = &out[i];
            hooks.add(sae->config().hookName, [sae, iv, slot](at::Tensor& x, const HookContext& ctx) {
                const long p = iv.position - ctx.positionOffset;
                if (p < 0 || p >= x.size(1)) return;
                *slot = featureActivation(*sae, x[0][p].unsqueeze(0), iv.feature)[0].item<double>();
            });
        }
    };

    // The unintervened run: its logits, patterns and the features' activations.
    Hooks cleanHooks;
    for (int l = 0; l < cfg.nLayers; ++l) cleanHooks.cache(blockHook(l, "attn.hook_pattern"));
    readActivations(cleanHooks, res.activationsBefore);
    ActivationCache clean;
    RunOptions cleanRun;
    cleanRun.hooks = &cleanHooks;
    cleanRun.cache = &clean;
    const at::Tensor before = model.forward(input, cleanRun)[0][T - 1].to(at::kDouble);

    // The intervention as steering rows, each at its node's position only.
    std::vector<SteeringSae> saes;
    for (const auto& tc : transcoders) saes.push_back({tc.id, tc.sae});
    SteeringPlan plan;
    for (size_t i = 0; i < ivs.size(); ++i) {
        SteeringRule r;
        r.saeId = transcoders[which[i]].id;
        r.feature = ivs[i].feature;
        r.mode = steerModeFor(ivs[i].kind);
        r.value = ivs[i].kind == NodeIntervention::Kind::Ablate ? 0.0 : ivs[i].value;
        r.positions.kind = PositionRange::Span;
        r.positions.first = r.positions.last = ivs[i].position;
        plan.rules.push_back(r);
    }
    Steering steering(model, saes, plan);
    steering.setPromptLength(T);
    Hooks hooks;
    steering.install(hooks);
    if (options.freezeAttention) freezePatterns(hooks, clean, cfg.nLayers, T);

    // The intervened run; the arriving activations are read beside it, for the result only.
    Hooks measured = hooks;
    std::vector<double> arriving;
    readActivations(measured, arriving);
    RunOptions run;
    run.hooks = &measured;
    const at::Tensor after = model.forward(input, run)[0][T - 1].to(at::kDouble);
    for (size_t i = 0; i < ivs.size(); ++i) {
        const NodeIntervention& iv = ivs[i];
        res.activationsAfter.push_back(iv.kind == NodeIntervention::Kind::Set     ? iv.value
                                       : iv.kind == NodeIntervention::Kind::Scale ? iv.value * arriving[i]
                                                                                   : 0.0);
    }

    const at::Tensor centredBefore = before - before.mean(), centredAfter = after - after.mean();
    const at::Tensor probsBefore = at::softmax(before, -1), probsAfter = at::softmax(after, -1);
    res.topBefore = topTokens(centredBefore, probsBefore);
    res.topAfter = topTokens(centredAfter, probsAfter);
    std::vector<long> targets = options.targets;
    if (targets.empty()) targets.push_back(res.topBefore.front().token);
    for (long t : targets)
        res.targets.push_back({t, centredBefore[t].item<double>(), centredAfter[t].item<double>(),
                               probsBefore[t].item<double>(), probsAfter[t].item<double>()});

    if (options.maxNewTokens > 0) {
        SamplingOptions s;
        s.maxNewTokens = options.maxNewTokens;
        s.greedy = true;
        res.continuationBefore = generate(model, tokens, s);
        res.continuationAfter = generate(model, tokens, s, &hooks);
    }
    return res;
}

}  // namespace cs
