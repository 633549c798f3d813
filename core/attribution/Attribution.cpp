#include "attribution/Attribution.h"

#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cs {

namespace {

std::string blockHook(int l, const char* name) { return "blocks." + std::to_string(l) + "." + name; }

// What one transcoder contributes to the graph at its layer: its active features as (position,
// feature, activation), the rows they write (activation x W_dec[feature]) and the error vectors.
struct LayerNodes {
    std::vector<int> position;
    std::vector<long> feature;
    std::vector<float> activation;
    std::vector<int> node;   // index into graph.nodes
    at::Tensor writes;       // [n_active, d]
    at::Tensor positionIndex;  // [n_active] int64
    at::Tensor error;        // [T, d]
    std::vector<int> errorNode;  // per position
};

}  // namespace

AttributionGraph computeAttribution(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const AttributionOptions& options) {
    const ModelConfig& cfg = model.config();
    const int L = cfg.nLayers;
    const long T = static_cast<long>(tokens.size());
    if (T == 0) throw Error("attribution: no tokens");
    if (T > cfg.nCtx)
        throw Error("attribution: " + std::to_string(T) + " tokens are more than the model's context of " +
                    std::to_string(cfg.nCtx));
    for (long t : tokens)
        if (t < 0 || t >= cfg.vocabSize)
            throw Error("attribution: token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                        std::to_string(cfg.vocabSize));

    // Which transcoder serves which layer.
    std::vector<const AttributionTranscoder*> byLayer(static_cast<size_t>(L), nullptr);
    for (const auto& tc : transcoders) {
        const SaeConfig& c = tc.sae->config();
        int layer = -1;
        for (int l = 0; l < L; ++l)
            if (c.hookName == blockHook(l, "ln2.hook_normalized") && c.hookNameOut == blockHook(l, "hook_mlp_out"))
                layer = l;
        if (layer < 0)
            failIn(c.source, "an attribution graph needs transcoders that read blocks.L.ln2.hook_normalized and "
                             "write blocks.L.hook_mlp_out (this one: '" + c.hookName + "' -> '" +
                             (c.hookNameOut.empty() ? c.hookName : c.hookNameOut) + "')");
        if (c.architecture == SaeArch::SkipTranscoder)
            failIn(c.source, "skip transcoders are not supported in attribution graphs yet (the skip term would be "
                             "neither a node nor part of the error)");
        if (tc.sae->dIn() != cfg.dModel || tc.sae->dOut() != cfg.dModel)
            failIn(c.source, "transcoder width " + std::to_string(tc.sae->dIn()) + " -> " + std::to_string(tc.sae->dOut()) +
                                 " does not match the model's d_model " + std::to_string(cfg.dModel));
        if (byLayer[static_cast<size_t>(layer)])
            failIn(c.source, "a second transcoder for layer " + std::to_string(layer) + " (the first: " +
                                 byLayer[static_cast<size_t>(layer)]->sae->config().source + ")");
        byLayer[static_cast<size_t>(layer)] = &tc;
    }

    AttributionGraph g;
    g.tokens = tokens;
    g.layers = L;
    g.replacement = "transcoders";
    for (int l = 0; l < L; ++l) g.saeIds.push_back(byLayer[static_cast<size_t>(l)] ? byLayer[static_cast<size_t>(l)]->id : "");

    // 1. The real run: every value the frozen model is linearised around.
    const at::Tensor input = at::tensor(tokens, at::kLong).unsqueeze(0);
    ActivationCache cache;
    at::Tensor logits;
    {
        c10::InferenceMode guard;
        Hooks hooks;
        hooks.cache("blocks.0.hook_resid_pre");
        for (int l = 0; l < L; ++l) {
            hooks.cache(blockHook(l, "ln2.hook_normalized"));
            hooks.cache(blockHook(l, "hook_mlp_out"));
        }
        RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        logits = model.forward(input, o)[0][T - 1].to(at::kDouble);  // [V]
    }
    auto plain = [](const at::Tensor& t) {
        c10::InferenceMode off(false);
        return t.to(at::kFloat).clone();  // an ordinary tensor autograd may use
    };
    const at::Tensor embed = plain(cache.at("blocks.0.hook_resid_pre")[0]);  // [T, d]
    std::vector<at::Tensor> mlpOut, ln2;
    for (int l = 0; l < L; ++l) {
        mlpOut.push_back(plain(cache.at(blockHook(l, "hook_mlp_out"))[0]));
        ln2.push_back(plain(cache.at(blockHook(l, "ln2.hook_normalized"))[0]));
    }

    // 2. Nodes. Order: embeddings, then per layer its features and errors, then logits.
    auto addNode = [&](GraphNode n) {
        g.nodes.push_back(std::move(n));
        return static_cast<int>(g.nodes.size() - 1);
    };
    std::vector<int> embedNode(static_cast<size_t>(T));
    {
        const at::Tensor norms = embed.norm(2, -1);
        for (long p = 0; p < T; ++p) {
            GraphNode n;
            n.kind = NodeKind::Embedding;
            n.layer = -1;
            n.position = static_cast<int>(p);
            n.feature = -1;
            n.id = "E_" + std::to_string(tokens[static_cast<size_t>(p)]) + "_" + std::to_string(p);
            n.activation = norms[p].item<float>();
            embedNode[static_cast<size_t>(p)] = addNode(n);
        }
    }
    std::vector<LayerNodes> layers(static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) {
        LayerNodes& ln = layers[static_cast<size_t>(l)];
        at::Tensor recon;
        if (const AttributionTranscoder* tc = byLayer[static_cast<size_t>(l)]) {
            at::Tensor f;
            {
                c10::InferenceMode guard;
                f = tc->sae->encode(ln2[static_cast<size_t>(l)]).to(at::kFloat).contiguous();  // [T, d_sae]
                recon = tc->sae->reconstruct(ln2[static_cast<size_t>(l)]);
            }
            recon = plain(recon);
            const long dSae = f.size(1);
            const float* fp = f.data_ptr<float>();
            for (long p = 0; p < T; ++p)
                for (long j = 0; j < dSae; ++j)
                    if (fp[p * dSae + j] > 0) {
                        ln.position.push_back(static_cast<int>(p));
                        ln.feature.push_back(j);
                        ln.activation.push_back(fp[p * dSae + j]);
                    }
            const long n = static_cast<long>(ln.feature.size());
            at::Tensor idx = at::tensor(ln.feature, at::kLong);
            at::Tensor act = at::tensor(ln.activation, at::kFloat);
            {
                c10::InferenceMode off(false);
                at::Tensor wdec = tc->sae->weights().W_dec.to(at::kFloat);
                ln.writes = n ? plain(wdec.index_select(0, idx)) * act.unsqueeze(1) : at::zeros({0, cfg.dModel});
            }
            std::vector<long> pos(ln.position.begin(), ln.position.end());
            ln.positionIndex = at::tensor(pos, at::kLong);
        } else {
            recon = at::zeros_like(mlpOut[static_cast<size_t>(l)]);
            ln.writes = at::zeros({0, cfg.dModel});
            ln.positionIndex = at::zeros({0}, at::kLong);
        }
        ln.error = mlpOut[static_cast<size_t>(l)] - recon;
        for (size_t i = 0; i < ln.feature.size(); ++i) {
            GraphNode n;
            n.kind = NodeKind::Feature;
            n.layer = l;
            n.position = ln.position[i];
            n.feature = ln.feature[i];
            n.id = std::to_string(l) + "_" + std::to_string(ln.feature[i]) + "_" + std::to_string(ln.position[i]);
            n.activation = ln.activation[i];
            ln.node.push_back(addNode(n));
        }
        const at::Tensor errNorm = ln.error.norm(2, -1);
        for (long p = 0; p < T; ++p) {
            GraphNode n;
            n.kind = NodeKind::Error;
            n.layer = l;
            n.position = static_cast<int>(p);
            n.feature = -1;
            n.id = std::to_string(l) + "_-1_" + std::to_string(p);
            n.activation = errNorm[p].item<float>();
            ln.errorNode.push_back(addNode(n));
        }
    }

    // Targets at the last position.
    const at::Tensor probs = at::softmax(logits, -1);
    const double meanLogit = logits.mean().item<double>();
    std::vector<long> targets = options.targets;
    if (targets.empty()) {
        at::Tensor order = std::get<1>(probs.sort(-1, /*descending=*/true));
        double mass = 0;
        for (long i = 0; i < order.size(0) && static_cast<int>(targets.size()) < std::max(1, options.maxLogits); ++i) {
            const long t = order[i].item<long>();
            targets.push_back(t);
            mass += probs[t].item<double>();
            if (mass >= options.logitProbability) break;
        }
    }
    std::vector<int> logitNode;
    for (long t : targets) {
        if (t < 0 || t >= cfg.vocabSize)
            throw Error("attribution: target token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                        std::to_string(cfg.vocabSize));
        GraphNode n;
        n.kind = NodeKind::Logit;
        n.layer = L;
        n.position = static_cast<int>(T - 1);
        n.feature = t;
        n.id = std::to_string(L + 1) + "_" + std::to_string(t) + "_" + std::to_string(T - 1);
        n.activation = static_cast<float>(logits[t].item<double>() - meanLogit);
        n.tokenProb = probs[t].item<float>();
        n.isTargetLogit = true;
        logitNode.push_back(addNode(n));
    }

    // 3. Direct effects. Target rows: every feature node (its pre-activation) and every logit node
    // (its logit minus the mean). Each backward pass runs `batch` copies of the sequence, one
    // target per copy; copies never interact, so one pass gives each its own gradients.
    struct TargetRow {
        int node;
        int layer;      // feature targets: the layer; logits: -1
        int position;
        long index;     // the feature or the token
    };
    std::vector<TargetRow> rows;
    for (int l = 0; l < L; ++l)
        for (size_t i = 0; i < layers[static_cast<size_t>(l)].node.size(); ++i)
            rows.push_back({layers[static_cast<size_t>(l)].node[i], l, layers[static_cast<size_t>(l)].position[i],
                            layers[static_cast<size_t>(l)].feature[i]});
    for (size_t i = 0; i < logitNode.size(); ++i) rows.push_back({logitNode[i], -1, static_cast<int>(T - 1), targets[i]});

    std::unique_ptr<Transformer> grad = autogradCopy(model);
    const int batch = std::max(1, options.batch);
    std::vector<at::Tensor> encCols(static_cast<size_t>(L));
    for (int l = 0; l < L; ++l)
        if (const AttributionTranscoder* tc = byLayer[static_cast<size_t>(l)]) encCols[static_cast<size_t>(l)] = plain(tc->sae->weights().W_enc);
    // Batches never mix layers: a batch of feature targets at layer l runs blocks 0..l only.
    std::vector<std::pair<size_t, long>> batches;  // (first row, rows)
    for (size_t start = 0; start < rows.size();) {
        size_t end = start;
        while (end < rows.size() && end - start < static_cast<size_t>(batch) && rows[end].layer == rows[start].layer) ++end;
        batches.push_back({start, static_cast<long>(end - start)});
        start = end;
    }
    for (const auto& [start, B] : batches) {
        const int lastLayer = rows[start].layer;  // -1 for logit targets: the whole model
        // Leaves where sources write: the residual entering block 0 and every MLP output.
        at::Tensor r0 = embed.unsqueeze(0).repeat({B, 1, 1}).requires_grad_(true);
        std::vector<at::Tensor> m;
        for (int l = 0; l < L; ++l) m.push_back(mlpOut[static_cast<size_t>(l)].unsqueeze(0).repeat({B, 1, 1}).requires_grad_(true));
        std::vector<at::Tensor> ln2Live(static_cast<size_t>(L));
        Hooks hooks;
        hooks.add("blocks.0.hook_resid_pre", [&](at::Tensor& x, const HookContext&) { x = r0; });
        for (int l = 0; l < L; ++l) {
            hooks.add(blockHook(l, "attn.hook_pattern"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
            hooks.add(blockHook(l, "ln1.hook_scale"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
            hooks.add(blockHook(l, "ln2.hook_scale"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
            hooks.add(blockHook(l, "ln2.hook_normalized"), [&ln2Live, l](at::Tensor& x, const HookContext&) { ln2Live[static_cast<size_t>(l)] = x; });
            hooks.add(blockHook(l, "hook_mlp_out"), [&m, l](at::Tensor& x, const HookContext&) { x = m[static_cast<size_t>(l)]; });
        }
        hooks.add("ln_final.hook_scale", [](at::Tensor& x, const HookContext&) { x = x.detach(); });
        RunOptions o;
        o.hooks = &hooks;
        o.withGrad = true;
        // Every target reads either the last position's logits or a layer's normalised input, so
        // the logits of other positions need not be unembedded.
        o.lastPositionOnly = true;
        o.lastLayer = lastLayer;
        at::Tensor out = grad->forward(input.repeat({B, 1}), o);  // [B, 1, V]; undefined when stopped early
        // Each copy's target, gathered at once: a batch holds one layer's features, or logits.
        std::vector<long> pos(static_cast<size_t>(B)), index(static_cast<size_t>(B));
        for (long b = 0; b < B; ++b) {
            pos[static_cast<size_t>(b)] = rows[start + static_cast<size_t>(b)].position;
            index[static_cast<size_t>(b)] = rows[start + static_cast<size_t>(b)].index;
        }
        const at::Tensor copies = at::arange(B, at::kLong), idx = at::tensor(index, at::kLong);
        at::Tensor objective;
        if (lastLayer < 0) {
            at::Tensor last = out.select(1, 0);  // [B, V]
            objective = (last.index({copies, idx}) - last.mean(-1)).sum();
        } else {
            at::Tensor x = ln2Live[static_cast<size_t>(lastLayer)].index({copies, at::tensor(pos, at::kLong)});  // [B, d]
            at::Tensor enc = encCols[static_cast<size_t>(lastLayer)].index_select(1, idx).t();  // [B, d]
            objective = (x * enc).sum();
        }
        std::vector<at::Tensor> leaves{r0};
        for (auto& t : m) leaves.push_back(t);
        auto grads = torch::autograd::grad({objective}, leaves, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                           /*allow_unused=*/true);
        c10::InferenceMode guard;
        // Embeddings: emb[p] . dT/dr0[p].
        std::vector<at::Tensor> sourceWeights;  // per kind, [B, n] for the rows of this batch
        auto addLinks = [&](const at::Tensor& w, const std::vector<int>& sourceNodes) {
            at::Tensor wc = w.to(at::kFloat).contiguous();
            const float* p = wc.data_ptr<float>();
            const long n = static_cast<long>(sourceNodes.size());
            for (long b = 0; b < B; ++b) {
                const int target = rows[start + static_cast<size_t>(b)].node;
                for (long j = 0; j < n; ++j) {
                    const float v = p[b * n + j];
                    if (v != 0.f) g.links.push_back({sourceNodes[static_cast<size_t>(j)], target, v});
                }
            }
        };
        if (grads[0].defined()) addLinks((grads[0] * embed.unsqueeze(0)).sum(-1), embedNode);
        for (int l = 0; l < L; ++l) {
            const at::Tensor& gl = grads[static_cast<size_t>(l) + 1];
            if (!gl.defined()) continue;
            const LayerNodes& ln = layers[static_cast<size_t>(l)];
            addLinks((gl * ln.error.unsqueeze(0)).sum(-1), ln.errorNode);
            if (!ln.node.empty())
                addLinks((gl.index_select(1, ln.positionIndex) * ln.writes.unsqueeze(0)).sum(-1), ln.node);
        }
        const long done = static_cast<long>(start) + B;
        if (options.progress && !options.progress(done, static_cast<long>(rows.size())))
            throw Error("attribution: cancelled");
    }
    return g;
}

}  // namespace cs
