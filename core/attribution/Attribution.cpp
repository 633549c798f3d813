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

// Points along the residual stream, numbered in the order a forward pass meets them, so that two
// SAEs on one point are caught: blocks.L.hook_resid_post is the same tensor as
// blocks.(L+1).hook_resid_pre, so both get 4(L+1).
int residPreOrder(int l) { return 4 * l; }
int residMidOrder(int l) { return 4 * l + 1; }
int mlpOrder(int l) { return 4 * l + 2; }
int residPostOrder(int l) { return 4 * l + 4; }

// Where one set of nodes writes into the frozen model. An MLP site is a layer's hook_mlp_out: its
// transcoder's active features plus an error node per position, or (no transcoder) the whole MLP
// output as error nodes. A residual site is a point of the residual stream where an SAE replaces
// the stream by its active features' writes + b_dec + an error node per position, so everything
// upstream reaches past it only through its features' encoders.
struct Site {
    int layer = 0;
    int order = 0;  // along the stream
    bool residual = false;
    const AttributionTranscoder* dict = nullptr;  // its features' transcoder or SAE; null: error nodes only
    std::string writeHook;  // the leaf of the backward passes replaces this activation
    std::string readHook;   // what `dict` encodes: ln2.hook_normalized, or writeHook for a residual SAE
    at::Tensor clean;       // [T, d] the activation at writeHook in the real run (the leaf's value)
    at::Tensor input;       // [T, d] dict's input in the real run
    at::Tensor encoder;     // [d, d_sae] the columns a feature's target value reads
    at::Tensor skip;        // [d, d] a skip transcoder's W_skip, else undefined

    // The nodes: active features as (position, feature, activation), the rows they write
    // (activation x W_dec[feature]), and one error vector per position.
    std::vector<int> position;
    std::vector<long> feature;
    std::vector<float> activation;
    std::vector<int> node;     // index into graph.nodes
    at::Tensor writes;         // [n_active, d]
    at::Tensor positionIndex;  // [n_active] int64
    at::Tensor error;          // [T, d]
    std::vector<int> errorNode;  // per position
};

// A target row of the adjacency: a feature's value (its pre-activation without the bias) or a
// logit node's (logit - mean logit, or logit(index) - logit(minus)).
struct TargetRow {
    int node;
    int site;       // feature targets: index into the sites; logits: -1
    int position;
    long index;     // the feature or the token
    long minus;     // a logit difference's subtracted token, else -1
};

void checkTokens(const ModelConfig& cfg, const std::vector<long>& tokens) {
    const long T = static_cast<long>(tokens.size());
    if (T == 0) throw Error("attribution: no tokens");
    if (T > cfg.nCtx)
        throw Error("attribution: " + std::to_string(T) + " tokens are more than the model's context of " +
                    std::to_string(cfg.nCtx));
    for (long t : tokens)
        if (t < 0 || t >= cfg.vocabSize)
            throw Error("attribution: token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                        std::to_string(cfg.vocabSize));
}

// The layer and stream order of a residual-stream hook, or false.
bool residualHook(const std::string& hook, int nLayers, int* layer, int* order) {
    for (int l = 0; l < nLayers; ++l) {
        if (hook == blockHook(l, "hook_resid_pre")) *order = residPreOrder(l);
        else if (hook == blockHook(l, "hook_resid_mid")) *order = residMidOrder(l);
        else if (hook == blockHook(l, "hook_resid_post")) *order = residPostOrder(l);
        else continue;
        *layer = l;
        return true;
    }
    return false;
}

int transcoderLayer(const SaeConfig& c, int nLayers) {
    for (int l = 0; l < nLayers; ++l)
        if (c.hookName == blockHook(l, "ln2.hook_normalized") && c.hookNameOut == blockHook(l, "hook_mlp_out")) return l;
    return -1;
}

// What a feature's target value reads: the encoder columns of its pre-activation. A gated SAE's
// activation is its magnitude path (gate x relu(x W_enc exp(r_mag) + b_mag)), so those columns.
at::Tensor encoderOf(const Sae& sae) {
    c10::InferenceMode off(false);
    const SaeWeights& w = sae.weights();
    at::Tensor e = sae.config().architecture == SaeArch::Gated ? w.W_enc * w.r_mag.exp() : w.W_enc;
    return e.to(at::kFloat).clone();
}

// The layer a transcoder or residual SAE serves (and a residual SAE's point of the stream in
// `order`), after checking its hooks and widths.
int dictionaryLayer(const AttributionTranscoder& d, const ModelConfig& cfg, int* order) {
    const SaeConfig& c = d.sae->config();
    const bool transcoder = isTranscoder(c.architecture);
    int layer = -1;
    if (transcoder) layer = transcoderLayer(c, cfg.nLayers);
    else if (!residualHook(c.hookName, cfg.nLayers, &layer, order)) layer = -1;
    if (layer < 0)
        failIn(c.source, "an attribution graph needs transcoders that read blocks.L.ln2.hook_normalized and write "
                         "blocks.L.hook_mlp_out, or SAEs on blocks.L.hook_resid_pre, _mid or _post (this one: '" +
                             c.hookName + "' -> '" + (c.hookNameOut.empty() ? c.hookName : c.hookNameOut) + "')");
    if (d.sae->dIn() != cfg.dModel || d.sae->dOut() != cfg.dModel)
        failIn(c.source, std::string(transcoder ? "transcoder" : "SAE") + " width " + std::to_string(d.sae->dIn()) + " -> " +
                             std::to_string(d.sae->dOut()) + " does not match the model's d_model " + std::to_string(cfg.dModel));
    return layer;
}

// One site per layer's MLP, plus one per residual SAE; the dictionaries checked.
// `replacement` and `saeIds` are the graph's.
std::vector<Site> planSites(const ModelConfig& cfg, const std::vector<AttributionTranscoder>& dicts,
                            std::string* replacement, std::vector<std::string>* saeIds) {
    const int L = cfg.nLayers;
    std::vector<Site> sites(static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) {
        sites[static_cast<size_t>(l)].layer = l;
        sites[static_cast<size_t>(l)].order = mlpOrder(l);
        sites[static_cast<size_t>(l)].writeHook = blockHook(l, "hook_mlp_out");
        sites[static_cast<size_t>(l)].readHook = blockHook(l, "ln2.hook_normalized");
    }
    saeIds->assign(static_cast<size_t>(L), "");
    const AttributionTranscoder* firstTranscoder = nullptr;
    const AttributionTranscoder* firstResidual = nullptr;
    std::vector<const AttributionTranscoder*> byLayer(static_cast<size_t>(L), nullptr);
    for (const auto& d : dicts) {
        const SaeConfig& c = d.sae->config();
        const bool transcoder = isTranscoder(c.architecture);
        int order = 0;
        const int layer = dictionaryLayer(d, cfg, &order);
        const AttributionTranscoder*& firstOfKind = transcoder ? firstTranscoder : firstResidual;
        if (!firstOfKind) firstOfKind = &d;
        if (firstTranscoder && firstResidual)
            failIn(c.source, "transcoders and residual SAEs cannot be mixed in one attribution graph (one of the other kind: " +
                                 (transcoder ? firstResidual : firstTranscoder)->sae->config().source + ")");
        if (const AttributionTranscoder* other = byLayer[static_cast<size_t>(layer)])
            failIn(c.source, std::string("a second ") + (transcoder ? "transcoder" : "residual SAE") + " for layer " +
                                 std::to_string(layer) + " (the first: " + other->sae->config().source + ")");
        byLayer[static_cast<size_t>(layer)] = &d;
        (*saeIds)[static_cast<size_t>(layer)] = d.id;
        if (transcoder) {
            Site& s = sites[static_cast<size_t>(layer)];
            s.dict = &d;
            s.encoder = encoderOf(*d.sae);
            continue;
        }
        for (const Site& s : sites)
            if (s.residual && s.order == order)
                failIn(c.source, "reads the same point of the residual stream as " + s.dict->sae->config().source);
        Site s;
        s.layer = layer;
        s.order = order;
        s.residual = true;
        s.dict = &d;
        s.writeHook = s.readHook = c.hookName;
        s.encoder = encoderOf(*d.sae);
        sites.push_back(std::move(s));
    }
    *replacement = firstResidual ? kResidualSaeReplacement : "transcoders";
    // Node order: per layer, the MLP's nodes, then its residual SAE's. Consumers that look an error
    // node up by (layer, position) and keep the last one (subgraphScores folds an unpinned feature
    // into it) then find the SAE's error, the one its features belong to.
    std::stable_sort(sites.begin(), sites.end(), [](const Site& a, const Site& b) {
        return a.layer != b.layer ? a.layer < b.layer : a.residual < b.residual;
    });
    return sites;
}

at::Tensor plain(const at::Tensor& t) {
    c10::InferenceMode off(false);
    return t.to(at::kFloat).clone();  // an ordinary tensor autograd may use
}

// The real run: every value the frozen model is linearised around. Returns the last position's
// logits (float64) and fills each site's clean activation and input, and `embed`.
at::Tensor cleanRun(const Transformer& model, const at::Tensor& input, std::vector<Site>& sites, at::Tensor* embed) {
    c10::InferenceMode guard;
    ActivationCache cache;
    Hooks hooks;
    hooks.cache("blocks.0.hook_resid_pre");
    for (const Site& s : sites) {
        hooks.cache(s.writeHook);
        hooks.cache(s.readHook);
    }
    RunOptions o;
    o.hooks = &hooks;
    o.cache = &cache;
    const long T = input.size(1);
    at::Tensor logits = model.forward(input, o)[0][T - 1].to(at::kDouble);  // [V]
    *embed = plain(cache.at("blocks.0.hook_resid_pre")[0]);
    for (Site& s : sites) {
        s.clean = plain(cache.at(s.writeHook)[0]);
        s.input = plain(cache.at(s.readHook)[0]);
    }
    return logits;
}

// Encodes the site's input: its active features, their writes and the error vectors. The error is
// the true activation at the write hook minus the dictionary's whole output there (b_dec and a
// skip transcoder's x W_skip included), so features + biases + skip + error = the real activation.
void encodeSite(Site& s, long dModel) {
    at::Tensor recon;
    if (s.dict) {
        const Sae& sae = *s.dict->sae;
        at::Tensor f;
        {
            c10::InferenceMode guard;
            f = sae.encode(s.input).to(at::kFloat).contiguous();  // [T, d_sae]
            recon = sae.reconstruct(s.input);
        }
        recon = plain(recon);
        const long T = f.size(0), dSae = f.size(1);
        const float* fp = f.data_ptr<float>();
        for (long p = 0; p < T; ++p)
            for (long j = 0; j < dSae; ++j)
                if (fp[p * dSae + j] > 0) {
                    s.position.push_back(static_cast<int>(p));
                    s.feature.push_back(j);
                    s.activation.push_back(fp[p * dSae + j]);
                }
        const long n = static_cast<long>(s.feature.size());
        {
            c10::InferenceMode off(false);
            const at::Tensor idx = at::tensor(s.feature, at::kLong);
            const at::Tensor act = at::tensor(s.activation, at::kFloat);
            s.writes = n ? plain(sae.weights().W_dec.index_select(0, idx)) * act.unsqueeze(1) : at::zeros({0, dModel});
            if (sae.config().architecture == SaeArch::SkipTranscoder) s.skip = plain(sae.weights().W_skip);
        }
        std::vector<long> pos(s.position.begin(), s.position.end());
        s.positionIndex = at::tensor(pos, at::kLong);
    } else {
        recon = at::zeros_like(s.clean);
        s.writes = at::zeros({0, dModel});
        s.positionIndex = at::zeros({0}, at::kLong);
    }
    s.error = s.clean - recon;
}

int addNode(AttributionGraph& g, GraphNode n) {
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size() - 1);
}

void addSiteNodes(AttributionGraph& g, Site& s) {
    for (size_t i = 0; i < s.feature.size(); ++i) {
        GraphNode n;
        n.kind = NodeKind::Feature;
        n.layer = s.layer;
        n.position = s.position[i];
        n.feature = s.feature[i];
        n.id = std::to_string(s.layer) + "_" + std::to_string(s.feature[i]) + "_" + std::to_string(s.position[i]);
        n.activation = s.activation[i];
        n.residual = s.residual;
        s.node.push_back(addNode(g, n));
    }
    const at::Tensor errNorm = s.error.norm(2, -1);
    for (long p = 0; p < s.error.size(0); ++p) {
        GraphNode n;
        n.kind = NodeKind::Error;
        n.layer = s.layer;
        n.position = static_cast<int>(p);
        n.feature = -1;
        // A residual SAE's error and its layer's MLP error are different nodes.
        n.id = std::to_string(s.layer) + (s.residual ? "_-2_" : "_-1_") + std::to_string(p);
        n.activation = errNorm[p].item<float>();
        n.residual = s.residual;
        s.errorNode.push_back(addNode(g, n));
    }
}

void checkTargetToken(long t, const ModelConfig& cfg) {
    if (t < 0 || t >= cfg.vocabSize)
        throw Error("attribution: target token id " + std::to_string(t) + " is out of range for a vocabulary of " +
                    std::to_string(cfg.vocabSize));
}

// The logit nodes at the last position, with their target rows.
std::vector<TargetRow> addLogitNodes(AttributionGraph& g, const ModelConfig& cfg, const at::Tensor& logits,
                                     const AttributionOptions& options) {
    const int L = cfg.nLayers;
    const int last = static_cast<int>(g.tokens.size()) - 1;
    const at::Tensor probs = at::softmax(logits, -1);
    std::vector<TargetRow> rows;
    if (options.logitDifference) {
        const auto [plus, minus] = *options.logitDifference;
        if (!options.targets.empty()) throw Error("attribution: give target tokens or a logit difference, not both");
        checkTargetToken(plus, cfg);
        checkTargetToken(minus, cfg);
        if (plus == minus) throw Error("attribution: a logit difference of token " + std::to_string(plus) + " with itself");
        GraphNode n;
        n.kind = NodeKind::Logit;
        n.layer = L;
        n.position = last;
        n.feature = plus;
        n.minusToken = minus;
        n.id = std::to_string(L + 1) + "_" + std::to_string(plus) + "-" + std::to_string(minus) + "_" + std::to_string(last);
        n.activation = static_cast<float>(logits[plus].item<double>() - logits[minus].item<double>());
        n.tokenProb = 0;  // a difference has no probability; pruning weighs a graph's only logit 1
        n.isTargetLogit = true;
        rows.push_back({addNode(g, n), -1, last, plus, minus});
        return rows;
    }
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
    const double meanLogit = logits.mean().item<double>();
    for (long t : targets) {
        checkTargetToken(t, cfg);
        GraphNode n;
        n.kind = NodeKind::Logit;
        n.layer = L;
        n.position = last;
        n.feature = t;
        n.id = std::to_string(L + 1) + "_" + std::to_string(t) + "_" + std::to_string(last);
        n.activation = static_cast<float>(logits[t].item<double>() - meanLogit);
        n.tokenProb = probs[t].item<float>();
        n.isTargetLogit = true;
        rows.push_back({addNode(g, n), -1, last, t, -1});
    }
    return rows;
}

// The sum of the batch's target values, one per copy of the sequence. `live` holds each site's
// input as the batch's forward pass computed it; `out` the last position's logits.
at::Tensor objectiveOf(const std::vector<TargetRow>& rows, size_t start, long B, const std::vector<Site>& sites,
                       const std::vector<at::Tensor>& live, const at::Tensor& out) {
    std::vector<long> pos(static_cast<size_t>(B)), index(static_cast<size_t>(B)), minus(static_cast<size_t>(B));
    for (long b = 0; b < B; ++b) {
        const TargetRow& r = rows[start + static_cast<size_t>(b)];
        pos[static_cast<size_t>(b)] = r.position;
        index[static_cast<size_t>(b)] = r.index;
        minus[static_cast<size_t>(b)] = r.minus;
    }
    const at::Tensor copies = at::arange(B, at::kLong), idx = at::tensor(index, at::kLong);
    const int site = rows[start].site;
    if (site < 0) {
        at::Tensor last = out.select(1, 0);  // [B, V]
        const at::Tensor m = at::tensor(minus, at::kLong);
        const at::Tensor subtracted = at::where(m >= 0, last.index({copies, m.clamp_min(0)}), last.mean(-1));
        return (last.index({copies, idx}) - subtracted).sum();
    }
    const Site& s = sites[static_cast<size_t>(site)];
    at::Tensor x = live[static_cast<size_t>(site)].index({copies, at::tensor(pos, at::kLong)});  // [B, d]
    at::Tensor enc = s.encoder.index_select(1, idx).t();                                         // [B, d]
    return (x * enc).sum();
}

// Direct effects of one batch's sources on its targets: per source group, a [B, n] weight matrix.
struct SourceWeights {
    at::Tensor weights;  // [B, n] float32, contiguous
    const std::vector<int>* nodes;
};

// Appends each row's links, dropping zeros and (minLinkShare > 0) those below that share of the
// row's total |weight|.
void appendLinks(AttributionGraph& g, const std::vector<SourceWeights>& groups, const std::vector<TargetRow>& rows,
                 size_t start, long B, double minLinkShare) {
    for (long b = 0; b < B; ++b) {
        double total = 0;
        if (minLinkShare > 0)
            for (const auto& sw : groups) {
                const float* p = sw.weights.data_ptr<float>() + b * sw.weights.size(1);
                for (long j = 0; j < sw.weights.size(1); ++j) total += std::abs(p[j]);
            }
        const float cut = static_cast<float>(minLinkShare * total);
        const int target = rows[start + static_cast<size_t>(b)].node;
        for (const auto& sw : groups) {
            const long n = sw.weights.size(1);
            const float* p = sw.weights.data_ptr<float>() + b * n;
            for (long j = 0; j < n; ++j)
                if (p[j] != 0.f && std::abs(p[j]) >= cut) g.links.push_back({(*sw.nodes)[static_cast<size_t>(j)], target, p[j]});
        }
    }
}

}  // namespace

void checkAttributionSupports(const ModelConfig& cfg, const std::string& what) {
    if (cfg.postNorms || cfg.finalSoftcap > 0)
        throw Error(what + ": " + cfg.modelType + " models are not supported (their norms on the attention and MLP "
                    "outputs and the final-logit soft-cap are not linearised yet)");
}

AttributionGraph computeAttribution(const Transformer& model, const std::vector<AttributionTranscoder>& transcoders,
                                    const std::vector<long>& tokens, const AttributionOptions& options) {
    const ModelConfig& cfg = model.config();
    checkAttributionSupports(cfg, "attribution");
    const long T = static_cast<long>(tokens.size());
    checkTokens(cfg, tokens);

    AttributionGraph g;
    g.tokens = tokens;
    g.layers = cfg.nLayers;
    std::vector<Site> sites = planSites(cfg, transcoders, &g.replacement, &g.saeIds);

    // 1. The real run.
    const at::Tensor input = at::tensor(tokens, at::kLong).unsqueeze(0);
    at::Tensor embed;
    const at::Tensor logits = cleanRun(model, input, sites, &embed);

    // 2. Nodes. Order: embeddings, then per site its features and errors, then logits.
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
            embedNode[static_cast<size_t>(p)] = addNode(g, n);
        }
    }
    for (Site& s : sites) {
        encodeSite(s, cfg.dModel);
        addSiteNodes(g, s);
    }
    const std::vector<TargetRow> logitRows = addLogitNodes(g, cfg, logits, options);

    // 3. Direct effects. Target rows: every feature node (its pre-activation without the bias) and
    // every logit node. Each backward pass runs `batch` copies of the sequence, one target per
    // copy; copies never interact, so one pass gives each its own gradients.
    std::vector<TargetRow> rows;
    for (size_t si = 0; si < sites.size(); ++si)
        for (size_t i = 0; i < sites[si].node.size(); ++i)
            rows.push_back({sites[si].node[i], static_cast<int>(si), sites[si].position[i], sites[si].feature[i], -1});
    rows.insert(rows.end(), logitRows.begin(), logitRows.end());

    std::unique_ptr<Transformer> grad = autogradCopy(model);
    const int batch = std::max(1, options.batch);
    // Batches never mix sites: a batch of feature targets at layer l runs blocks 0..l only.
    std::vector<std::pair<size_t, long>> batches;  // (first row, rows)
    for (size_t start = 0; start < rows.size();) {
        size_t end = start;
        while (end < rows.size() && end - start < static_cast<size_t>(batch) && rows[end].site == rows[start].site) ++end;
        batches.push_back({start, static_cast<long>(end - start)});
        start = end;
    }
    for (const auto& [start, B] : batches) {
        const int site = rows[start].site;
        const int lastLayer = site < 0 ? -1 : sites[static_cast<size_t>(site)].layer;  // -1: the whole model
        // Leaves where sources write: the residual entering block 0 and every site.
        at::Tensor r0 = embed.unsqueeze(0).repeat({B, 1, 1}).requires_grad_(true);
        std::vector<at::Tensor> leaf, live(sites.size());
        for (const Site& s : sites) leaf.push_back(s.clean.unsqueeze(0).repeat({B, 1, 1}).requires_grad_(true));
        Hooks hooks;
        // First, so that an SAE on blocks.0.hook_resid_pre reads the leaf.
        hooks.add("blocks.0.hook_resid_pre", [&](at::Tensor& x, const HookContext&) { x = r0; });
        for (int l = 0; l < cfg.nLayers; ++l) {
            hooks.add(blockHook(l, "attn.hook_pattern"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
            hooks.add(blockHook(l, "ln1.hook_scale"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
            hooks.add(blockHook(l, "ln2.hook_scale"), [](at::Tensor& x, const HookContext&) { x = x.detach(); });
        }
        hooks.add("ln_final.hook_scale", [](at::Tensor& x, const HookContext&) { x = x.detach(); });
        for (size_t i = 0; i < sites.size(); ++i) {
            const Site& s = sites[i];
            if (s.residual) {
                // The SAE reads the stream, then the stream downstream is its (constant-valued) leaf.
                hooks.add(s.writeHook, [&live, &leaf, i](at::Tensor& x, const HookContext&) {
                    live[i] = x;
                    x = leaf[i];
                });
                continue;
            }
            if (s.dict)
                hooks.add(s.readHook, [&live, i](at::Tensor& x, const HookContext&) { live[i] = x; });
            hooks.add(s.writeHook, [&live, &leaf, &s, i](at::Tensor& x, const HookContext&) {
                // A skip transcoder's x W_skip is linear in its input: part of the linear path, as
                // attention is. Added as (x - x.detach()) W_skip, a zero that carries its gradient,
                // so the value stays exactly the real MLP output.
                x = s.skip.defined() ? leaf[i] + at::matmul(live[i] - live[i].detach(), s.skip) : leaf[i];
            });
        }
        RunOptions o;
        o.hooks = &hooks;
        o.withGrad = true;
        // Every target reads either the last position's logits or a site's input, so the logits
        // of other positions need not be unembedded.
        o.lastPositionOnly = true;
        o.lastLayer = lastLayer;
        at::Tensor out = grad->forward(input.repeat({B, 1}), o);  // [B, 1, V]; undefined when stopped early
        const at::Tensor objective = objectiveOf(rows, start, B, sites, live, out);
        std::vector<at::Tensor> leaves{r0};
        leaves.insert(leaves.end(), leaf.begin(), leaf.end());
        auto grads = torch::autograd::grad({objective}, leaves, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                           /*allow_unused=*/true);
        c10::InferenceMode guard;
        // A source's direct effect: what it writes, dotted with the target's gradient where it writes.
        std::vector<SourceWeights> groups;
        auto add = [&](const at::Tensor& w, const std::vector<int>& nodes) {
            groups.push_back({w.to(at::kFloat).contiguous(), &nodes});
        };
        if (grads[0].defined()) add((grads[0] * embed.unsqueeze(0)).sum(-1), embedNode);
        for (size_t i = 0; i < sites.size(); ++i) {
            const at::Tensor& gs = grads[i + 1];
            if (!gs.defined()) continue;
            const Site& s = sites[i];
            add((gs * s.error.unsqueeze(0)).sum(-1), s.errorNode);
            if (!s.node.empty()) add((gs.index_select(1, s.positionIndex) * s.writes.unsqueeze(0)).sum(-1), s.node);
        }
        appendLinks(g, groups, rows, start, B, options.minLinkShare);
        const long done = static_cast<long>(start) + B;
        if (options.progress && !options.progress(done, static_cast<long>(rows.size())))
            throw Error("attribution: cancelled");
    }
    return g;
}

}  // namespace cs
