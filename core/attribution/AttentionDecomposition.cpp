#include "attribution/AttentionDecomposition.h"

#include "attribution/GraphJson.h"
#include "sae/Sae.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace cs {

namespace {

std::string blockHook(int l, const char* name) { return "blocks." + std::to_string(l) + "." + name; }

[[noreturn]] void fail(const std::string& message) { throw Error("attention decomposition: " + message); }

// An ordinary (non-inference) float copy, which autograd may save for a backward pass.
at::Tensor plain(const at::Tensor& t) {
    c10::InferenceMode off(false);
    return t.to(at::kFloat).clone();
}

// The transcoder of each layer, or null. The same rules as computeAttribution's (a transcoder must
// read ln2.hook_normalized and write hook_mlp_out of one layer, one per layer), so a decomposition
// exists exactly where a graph does. Shared with Attribution.cpp once both settle.
std::vector<const AttributionTranscoder*> transcodersByLayer(const ModelConfig& cfg,
                                                             const std::vector<AttributionTranscoder>& transcoders) {
    std::vector<const AttributionTranscoder*> byLayer(static_cast<size_t>(cfg.nLayers), nullptr);
    for (const auto& tc : transcoders) {
        const SaeConfig& c = tc.sae->config();
        int layer = -1;
        for (int l = 0; l < cfg.nLayers; ++l)
            if (c.hookName == blockHook(l, "ln2.hook_normalized") && c.hookNameOut == blockHook(l, "hook_mlp_out")) layer = l;
        if (layer < 0)
            failIn(c.source, "attention decomposition needs transcoders that read blocks.L.ln2.hook_normalized and "
                             "write blocks.L.hook_mlp_out (this one: '" + c.hookName + "' -> '" + c.hookNameOut + "')");
        if (c.architecture == SaeArch::SkipTranscoder)
            failIn(c.source, "skip transcoders are not supported in attention decomposition (the skip term is no node)");
        if (tc.sae->dIn() != cfg.dModel || tc.sae->dOut() != cfg.dModel)
            failIn(c.source, "transcoder width does not match the model's d_model " + std::to_string(cfg.dModel));
        if (byLayer[static_cast<size_t>(layer)]) failIn(c.source, "a second transcoder for layer " + std::to_string(layer));
        byLayer[static_cast<size_t>(layer)] = &tc;
    }
    return byLayer;
}

void checkArguments(const ModelConfig& cfg, const std::vector<long>& tokens, const AttentionEdge& e) {
    const long T = static_cast<long>(tokens.size());
    if (T == 0) fail("no tokens");
    if (T > cfg.nCtx) fail(std::to_string(T) + " tokens are more than the model's context of " + std::to_string(cfg.nCtx));
    for (long t : tokens)
        if (t < 0 || t >= cfg.vocabSize)
            fail("token id " + std::to_string(t) + " is out of range for a vocabulary of " + std::to_string(cfg.vocabSize));
    if (e.layer < 0 || e.layer >= cfg.nLayers)
        fail("layer " + std::to_string(e.layer) + " is out of range (the model has " + std::to_string(cfg.nLayers) + ")");
    if (e.head < 0 || e.head >= cfg.nHeads)
        fail("head " + std::to_string(e.head) + " is out of range (the model has " + std::to_string(cfg.nHeads) + " per layer)");
    if (e.query < 0 || e.query >= T)
        fail("query position " + std::to_string(e.query) + " is out of range for " + std::to_string(T) + " tokens");
    if (e.key < 0 || e.key > e.query)
        fail("key position " + std::to_string(e.key) + " must lie in 0.." + std::to_string(e.query) +
             " (a query attends to itself and earlier positions only)");
}

// Where the nodes of one layer write: per active feature its row activation x W_dec[feature] at
// its position, and the error vector at every position. The transcoder's b_dec is no node: it
// goes with the biases.
struct LayerWrites {
    std::vector<int> featureNode, errorNode;  // indices into the result's nodes
    at::Tensor writes;         // [n_active, d]
    at::Tensor positionIndex;  // [n_active] int64
    at::Tensor error;          // [T, d]
    at::Tensor bias;           // [d]: b_dec, or zeros without a transcoder
};

// The n largest |P| of P = Q K^T * scale without forming all of P at once when it is large.
std::vector<AttentionPair> largestPairs(const at::Tensor& Q, const at::Tensor& K, const std::vector<int>& queryNode,
                                        const std::vector<int>& keyNode, double scale, long n) {
    std::vector<AttentionPair> out;
    const long N = Q.size(0), M = K.size(0);
    if (n <= 0 || N == 0 || M == 0) return out;
    const long rowsPerChunk = std::max<long>(1, (1L << 22) / M);
    for (long r0 = 0; r0 < N; r0 += rowsPerChunk) {
        const long rows = std::min(rowsPerChunk, N - r0);
        const at::Tensor P = (Q.narrow(0, r0, rows).mm(K.t()) * scale).reshape({-1}).contiguous();
        const long k = std::min(n, P.numel());
        const at::Tensor idx = std::get<1>(P.abs().topk(k)).contiguous();
        const long* ip = idx.data_ptr<long>();
        const double* pp = P.data_ptr<double>();
        for (long i = 0; i < k; ++i) {
            const long row = r0 + ip[i] / M, col = ip[i] % M;
            out.push_back({queryNode[static_cast<size_t>(row)], keyNode[static_cast<size_t>(col)], pp[ip[i]]});
        }
    }
    std::sort(out.begin(), out.end(), [](const AttentionPair& a, const AttentionPair& b) {
        if (std::abs(a.value) != std::abs(b.value)) return std::abs(a.value) > std::abs(b.value);
        return std::tie(a.queryNode, a.keyNode) < std::tie(b.queryNode, b.keyNode);
    });
    if (static_cast<long>(out.size()) > n) out.resize(static_cast<size_t>(n));
    return out;
}

std::vector<AttentionContribution> sortedByMagnitude(const std::vector<double>& value, const std::vector<int>& nodes) {
    std::vector<AttentionContribution> out;
    for (int n : nodes) out.push_back({n, value[static_cast<size_t>(n)]});
    std::stable_sort(out.begin(), out.end(), [](const AttentionContribution& a, const AttentionContribution& b) {
        return std::abs(a.value) > std::abs(b.value);
    });
    return out;
}

}  // namespace

AttentionDecomposition decomposeAttention(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                          const std::vector<long>& allTokens, const AttentionEdge& edge,
                                          const AttentionOptions& options) {
    const ModelConfig& cfg = model.config();
    checkAttributionSupports(cfg, "attention decomposition");
    checkArguments(cfg, allTokens, edge);
    const std::vector<const AttributionTranscoder*> byLayer = transcodersByLayer(cfg, transcoders);
    const int L = edge.layer;
    const long dh = cfg.dHead, d = cfg.dModel;
    const long kvHead = edge.head / (cfg.nHeads / cfg.nKvHeads);
    const bool rotary = cfg.pos == PosKind::Rotary;
    // The model is causal: nothing after the query reaches it, so the run stops there.
    const std::vector<long> tokens(allTokens.begin(), allTokens.begin() + edge.query + 1);
    const long T = static_cast<long>(tokens.size());
    const at::Tensor input = at::tensor(tokens, at::kLong).unsqueeze(0);
    const std::string qName = blockHook(L, rotary ? "attn.hook_rot_q" : "attn.hook_q");
    const std::string kName = blockHook(L, rotary ? "attn.hook_rot_k" : "attn.hook_k");

    AttentionDecomposition r;
    r.edge = edge;
    r.scale = 1.0 / std::sqrt(static_cast<double>(dh));
    for (const AttributionTranscoder* tc : byLayer) r.saeIds.push_back(tc ? tc->id : "");

    // 1. The real run: the score, and every value the frozen model is linearised around.
    ActivationCache cache;
    {
        c10::InferenceMode guard;
        Hooks hooks;
        hooks.cache("blocks.0.hook_resid_pre");
        for (int l = 0; l <= L; ++l) {
            hooks.cache(blockHook(l, "ln1.hook_scale"));
            hooks.cache(blockHook(l, "attn.hook_pattern"));
        }
        for (int l = 0; l < L; ++l) {
            hooks.cache(blockHook(l, "ln2.hook_normalized"));
            hooks.cache(blockHook(l, "hook_mlp_out"));
        }
        hooks.cache(blockHook(L, "attn.hook_attn_scores"));
        RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        o.lastLayer = L;
        model.forward(input, o);
    }
    r.score = cache.at(blockHook(L, "attn.hook_attn_scores"))[0][edge.head][edge.query][edge.key].item<double>();
    r.pattern = cache.at(blockHook(L, "attn.hook_pattern"))[0][edge.head][edge.query][edge.key].item<double>();
    const at::Tensor embed = plain(cache.at("blocks.0.hook_resid_pre")[0]);  // [T, d]

    // 2. Nodes, in computeAttribution's order: embeddings, then per layer features and errors.
    auto addNode = [&](NodeKind kind, int layer, int pos, long feature, float activation) {
        GraphNode n;
        n.kind = kind;
        n.layer = layer;
        n.position = pos;
        n.feature = feature;
        n.activation = activation;
        n.id = canonicalNodeId(n, tokens[static_cast<size_t>(pos)], cfg.nLayers);
        r.nodes.push_back(std::move(n));
        return static_cast<int>(r.nodes.size() - 1);
    };
    const at::Tensor embedNorm = embed.norm(2, -1);
    for (long p = 0; p < T; ++p) addNode(NodeKind::Embedding, -1, static_cast<int>(p), -1, embedNorm[p].item<float>());
    std::vector<LayerWrites> layers(static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) {
        LayerWrites& lw = layers[static_cast<size_t>(l)];
        const at::Tensor mlpOut = plain(cache.at(blockHook(l, "hook_mlp_out"))[0]);
        at::Tensor recon = at::zeros_like(mlpOut);
        lw.bias = at::zeros({d});
        std::vector<long> pos, feature;
        std::vector<float> activation;
        if (const AttributionTranscoder* tc = byLayer[static_cast<size_t>(l)]) {
            at::Tensor f;
            {
                c10::InferenceMode guard;
                const at::Tensor x = cache.at(blockHook(l, "ln2.hook_normalized"))[0];
                f = tc->sae->encode(x).to(at::kFloat).contiguous();  // [T, d_sae]
                recon = tc->sae->reconstruct(x);
            }
            recon = plain(recon);
            lw.bias = plain(tc->sae->weights().b_dec);
            const float* fp = f.data_ptr<float>();
            const long dSae = f.size(1);
            for (long p = 0; p < T; ++p)
                for (long j = 0; j < dSae; ++j)
                    if (const float a = fp[p * dSae + j]; a > 0) {
                        lw.featureNode.push_back(addNode(NodeKind::Feature, l, static_cast<int>(p), j, a));
                        pos.push_back(p);
                        feature.push_back(j);
                        activation.push_back(a);
                    }
            lw.writes = plain(tc->sae->weights().W_dec.index_select(0, at::tensor(feature, at::kLong))) *
                        at::tensor(activation, at::kFloat).unsqueeze(1);
        } else {
            lw.writes = at::zeros({0, d});
        }
        lw.positionIndex = at::tensor(pos, at::kLong);
        lw.error = mlpOut - recon;
        const at::Tensor errNorm = lw.error.norm(2, -1);
        for (long p = 0; p < T; ++p)
            lw.errorNode.push_back(addNode(NodeKind::Error, l, static_cast<int>(p), -1, errNorm[p].item<float>()));
    }
    const long N = static_cast<long>(r.nodes.size());

    // 3. Per-node parts of Q and K. The frozen model (patterns, norm scales and MLP outputs are
    // constants from the real run; only the embeddings and MLP outputs vary) is affine in what the
    // nodes write, so its gradients do not depend on the point: the leaves hold the biases alone
    // (no embedding, each MLP output its b_dec), which makes the same forward give the constant
    // parts Q_bias and K_bias. Rows 0..dh-1 are Q's components, dh..2dh-1 K's; one row per copy
    // of the sequence, `batch` copies per backward pass.
    std::vector<at::Tensor> frozenScale, frozenPattern;
    for (int l = 0; l <= L; ++l) {
        frozenScale.push_back(plain(cache.at(blockHook(l, "ln1.hook_scale"))));
        frozenPattern.push_back(plain(cache.at(blockHook(l, "attn.hook_pattern"))));
    }
    cache.clear();
    std::unique_ptr<Transformer> grad = autogradCopy(model);
    const long rowsTotal = 2 * dh;
    const long batch = std::max(1, options.batch);
    at::Tensor parts = at::zeros({rowsTotal, N}, at::kDouble);  // row: a component of Q or K; column: a node
    at::Tensor queryBias, keyBias;
    for (long start = 0; start < rowsTotal; start += batch) {
        const long B = std::min(batch, rowsTotal - start);
        at::Tensor r0 = at::zeros({B, T, d}).requires_grad_(true);
        std::vector<at::Tensor> m;
        for (int l = 0; l < L; ++l)
            m.push_back(layers[static_cast<size_t>(l)].bias.expand({B, T, d}).clone().requires_grad_(true));
        at::Tensor qLive, kLive;
        Hooks hooks;
        hooks.add("blocks.0.hook_resid_pre", [&](at::Tensor& x, const HookContext&) { x = r0; });
        for (int l = 0; l <= L; ++l) {
            const at::Tensor s = frozenScale[static_cast<size_t>(l)], p = frozenPattern[static_cast<size_t>(l)];
            hooks.add(blockHook(l, "ln1.hook_scale"),
                      [s, B](at::Tensor& x, const HookContext&) { x = s.expand({B, -1, -1}); });
            if (l < L) {
                hooks.add(blockHook(l, "attn.hook_pattern"),
                          [p, B](at::Tensor& x, const HookContext&) { x = p.expand({B, -1, -1, -1}); });
                hooks.add(blockHook(l, "hook_mlp_out"),
                          [&m, l](at::Tensor& x, const HookContext&) { x = m[static_cast<size_t>(l)]; });
            }
        }
        hooks.add(qName, [&qLive](at::Tensor& x, const HookContext&) { qLive = x; });
        hooks.add(kName, [&kLive](at::Tensor& x, const HookContext&) { kLive = x; });
        RunOptions o;
        o.hooks = &hooks;
        o.withGrad = true;
        o.lastLayer = L;
        grad->forward(input.repeat({B, 1}), o);
        const at::Tensor q = qLive.select(1, edge.query).select(1, edge.head);  // [B, dh]
        const at::Tensor k = kLive.select(1, edge.key).select(1, kvHead);       // [B, dh]
        if (!queryBias.defined()) {
            queryBias = q[0].detach().to(at::kDouble);
            keyBias = k[0].detach().to(at::kDouble);
        }
        // Copy b's target: component (start + b) of Q, or of K past dh.
        at::Tensor pickQ = at::zeros({B, dh}), pickK = at::zeros({B, dh});
        for (long b = 0; b < B; ++b) {
            const long row = start + b;
            if (row < dh) pickQ[b][row] = 1;
            else pickK[b][row - dh] = 1;
        }
        const at::Tensor objective = (q * pickQ).sum() + (k * pickK).sum();
        std::vector<at::Tensor> leaves{r0};
        for (auto& t : m) leaves.push_back(t);
        const auto grads = torch::autograd::grad({objective}, leaves, {}, /*retain_graph=*/false,
                                                 /*create_graph=*/false, /*allow_unused=*/true);
        c10::InferenceMode guard;
        // A node's part of a component: what it writes, dotted with that component's gradient
        // where it writes.
        auto put = [&](const at::Tensor& values, const std::vector<int>& nodes) {  // values [B, n]
            if (nodes.empty()) return;
            const at::Tensor cols = at::tensor(std::vector<long>(nodes.begin(), nodes.end()), at::kLong);
            parts.narrow(0, start, B).index_copy_(1, cols, values.to(at::kDouble));
        };
        std::vector<int> embedNodes(static_cast<size_t>(T));
        for (long p = 0; p < T; ++p) embedNodes[static_cast<size_t>(p)] = static_cast<int>(p);
        if (grads[0].defined()) put((grads[0] * embed.unsqueeze(0)).sum(-1), embedNodes);
        for (int l = 0; l < L; ++l) {
            const at::Tensor& g = grads[static_cast<size_t>(l) + 1];
            if (!g.defined()) continue;
            const LayerWrites& lw = layers[static_cast<size_t>(l)];
            put((g * lw.error.unsqueeze(0)).sum(-1), lw.errorNode);
            put((g.index_select(1, lw.positionIndex) * lw.writes.unsqueeze(0)).sum(-1), lw.featureNode);
        }
    }

    // 4. The score's terms, in double from here on.
    const at::Tensor Qn = parts.narrow(0, 0, dh).t().contiguous();   // [N, dh]
    const at::Tensor Kn = parts.narrow(0, dh, dh).t().contiguous();  // [N, dh]
    const at::Tensor qSum = Qn.sum(0), kSum = Kn.sum(0);
    const at::Tensor Q = qSum + queryBias, K = kSum + keyBias;
    r.pairSum = qSum.dot(kSum).item<double>() * r.scale;
    r.queryNodesKeyBias = qSum.dot(keyBias).item<double>() * r.scale;
    r.queryBiasKeyNodes = queryBias.dot(kSum).item<double>() * r.scale;
    r.biasBias = queryBias.dot(keyBias).item<double>() * r.scale;
    const at::Tensor qv = (Qn.mv(K) * r.scale).contiguous(), kv = (Kn.mv(Q) * r.scale).contiguous();
    r.queryValue.assign(qv.data_ptr<double>(), qv.data_ptr<double>() + N);
    r.keyValue.assign(kv.data_ptr<double>(), kv.data_ptr<double>() + N);

    std::vector<int> all(static_cast<size_t>(N)), atKey;
    for (int i = 0; i < static_cast<int>(N); ++i) {
        all[static_cast<size_t>(i)] = i;
        if (r.nodes[static_cast<size_t>(i)].position <= edge.key) atKey.push_back(i);
        else r.keyValue[static_cast<size_t>(i)] = 0;  // exactly 0 already: a key never sees later positions
    }
    r.queryContributors = sortedByMagnitude(r.queryValue, all);
    r.keyContributors = sortedByMagnitude(r.keyValue, atKey);
    const at::Tensor keyRows = Kn.index_select(0, at::tensor(std::vector<long>(atKey.begin(), atKey.end()), at::kLong));
    r.topPairs = largestPairs(Qn, keyRows, all, atKey, r.scale, options.topPairs);
    return r;
}

}  // namespace cs
