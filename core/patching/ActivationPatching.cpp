#include "patching/ActivationPatching.h"

#include "model/Transformer.h"
#include "patching/PatchMetric.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>

namespace cs {

namespace {

// One patched run: at hook slot `slot`, position `pos` (-1: every position), head `head` (-1: the
// whole activation); Features add `delta` instead of copying. Its result lands in grid cell
// (row, col), except for Features, whose rows are chosen after all runs.
struct Cell {
    int slot = 0;
    int pos = -1;
    int head = -1;
    long feature = -1;
    int row = 0, col = 0;
    at::Tensor delta;  // Features: (f_src - f_dst) * W_dec[feature]  [d_out]
};

// A hook point patched by some cells, and the source run's activation there ([1, T, ...]).
struct Slot {
    std::string hook;
    at::Tensor source;
};

void checkRequest(const Transformer& model, const PatchRequest& r) {
    if (r.cleanIds.empty() || r.corruptedIds.empty())
        throw Error("patching: the clean and the corrupted prompt must both have tokens");
    if (r.cleanIds.size() != r.corruptedIds.size())
        throw Error("patching: the clean prompt has " + std::to_string(r.cleanIds.size()) +
                    " tokens and the corrupted prompt " + std::to_string(r.corruptedIds.size()) +
                    "; they must have the same number of tokens");
    const long vocab = model.config().vocabSize;
    auto checkId = [&](int id, const char* what) {
        if (id < 0 || id >= vocab)
            throw Error(std::string("patching: the ") + what + " token id " + std::to_string(id) +
                        (id < 0 ? " is not set" : " is out of range for a vocabulary of " + std::to_string(vocab)));
    };
    if (r.metric != PatchMetric::KL) checkId(r.answerId, "answer");
    if (r.metric == PatchMetric::LogitDiff) {
        checkId(r.wrongId, "wrong");
        if (r.answerId == r.wrongId)
            throw Error("patching: the answer and the wrong token are the same token (id " + std::to_string(r.answerId) +
                        "); the logit difference would always be 0");
    }
    if (r.site == PatchSite::Features) {
        if (!r.sae) throw Error("patching: features need an SAE (none given)");
        const SaeConfig& c = r.sae->config();
        const std::string out = c.hookNameOut.empty() ? c.hookName : c.hookNameOut;
        const long wIn = hookWidth(model, c.hookName, c.source);
        const long wOut = hookWidth(model, out, c.source);
        if (wIn != c.dIn || wOut != c.dOut)
            throw Error(c.source + ": SAE widths " + std::to_string(c.dIn) + " -> " + std::to_string(c.dOut) +
                        " do not fit the model's hooks " + c.hookName + " (" + std::to_string(wIn) + ") -> " + out +
                        " (" + std::to_string(wOut) + ")");
    }
}

// Runs one prompt, caching `hooks` (and its keys and values in `kv` when given); returns the
// last position's logits [1, vocab].
at::Tensor runAndCache(const Transformer& model, const std::vector<int>& ids, const std::vector<std::string>& hooks,
                       ActivationCache& cache, KvCache* kv = nullptr) {
    Hooks h;
    for (const auto& n : hooks) h.cache(n);
    RunOptions o;
    o.hooks = &h;
    o.cache = &cache;
    o.kv = kv;
    o.lastPositionOnly = true;
    std::vector<int64_t> v(ids.begin(), ids.end());
    at::Tensor tokens = at::tensor(v, at::kLong).unsqueeze(0);
    return model.forward(tokens, o).select(1, 0);
}

int automaticBatch(const Transformer& model, long T, int total) {
    const ModelConfig& c = model.config();
    // Live activations of one batch row, in floats: a handful of [T, d_model] tensors, the MLP's
    // [T, d_mlp] pair, the attention scores and pattern [heads, T, T], and the last logits.
    const double perRow = 4.0 * (T * (8.0 * c.dModel + 3.0 * c.dMlp + 2.0 * c.nHeads * T) + 2.0 * c.vocabSize);
    const double budget = 512.0 * 1024 * 1024;
    // Past about 64 rows a CPU batch is no faster per row (bench_patching), and the progress
    // callback would come rarely.
    const int byMemory = int(std::max(1.0, std::floor(budget / perRow)));
    return std::max(1, std::min({byMemory, 64, total}));
}

std::string positionLabel(const PatchRequest& r, int p) {
    if (size_t(p) < r.positionLabels.size()) return r.positionLabels[p];
    return std::to_string(p);
}

// The grid's axes and the cells to run, for every site but Features.
void layOutSite(const Transformer& model, const PatchRequest& r, PatchGrid& g, std::vector<Slot>& slots,
                std::vector<Cell>& cells) {
    const ModelConfig& c = model.config();
    const int L = c.nLayers, H = int(c.nHeads), T = int(r.cleanIds.size());
    auto positionColumns = [&] {
        g.columns = T;
        g.columnAxis = "position";
        for (int p = 0; p < T; ++p) {
            g.columnLabels.push_back(positionLabel(r, p));
            g.columnPosition.push_back(p);
        }
    };
    auto layerRow = [&](const std::string& label, int layer) {
        g.rowLabels.push_back(label);
        g.rowLayer.push_back(layer);
        g.rowHead.push_back(-1);
        g.rowFeature.push_back(-1);
    };
    switch (r.site) {
    case PatchSite::Resid:
    case PatchSite::AttnOut:
    case PatchSite::MlpOut: {
        const std::string suffix = r.site == PatchSite::Resid ? "hook_resid_pre"
                                   : r.site == PatchSite::AttnOut ? "hook_attn_out" : "hook_mlp_out";
        for (int l = 0; l < L; ++l) {
            slots.push_back({"blocks." + std::to_string(l) + "." + suffix, {}});
            layerRow("L" + std::to_string(l), l);
        }
        // The stream after the last block: what the unembedding reads.
        if (r.site == PatchSite::Resid) {
            slots.push_back({"blocks." + std::to_string(L - 1) + ".hook_resid_post", {}});
            layerRow("post", L - 1);
        }
        g.rowAxis = "layer";
        positionColumns();
        for (int s = 0; s < int(slots.size()); ++s)
            for (int p = 0; p < T; ++p) cells.push_back({s, p, -1, -1, s, p, {}});
        break;
    }
    case PatchSite::Heads: {
        for (int l = 0; l < L; ++l) {
            slots.push_back({"blocks." + std::to_string(l) + ".attn.hook_z", {}});
            layerRow("L" + std::to_string(l), l);
        }
        g.rowAxis = "layer";
        g.columnAxis = "head";
        g.columns = H;
        for (int h = 0; h < H; ++h) {
            g.columnLabels.push_back("H" + std::to_string(h));
            g.columnPosition.push_back(-1);
        }
        for (int l = 0; l < L; ++l)
            for (int h = 0; h < H; ++h) cells.push_back({l, -1, h, -1, l, h, {}});
        break;
    }
    case PatchSite::HeadsByPosition: {
        for (int l = 0; l < L; ++l) slots.push_back({"blocks." + std::to_string(l) + ".attn.hook_z", {}});
        for (int l = 0; l < L; ++l)
            for (int h = 0; h < H; ++h) {
                g.rowLabels.push_back("L" + std::to_string(l) + ".H" + std::to_string(h));
                g.rowLayer.push_back(l);
                g.rowHead.push_back(h);
                g.rowFeature.push_back(-1);
            }
        g.rowAxis = "layer.head";
        positionColumns();
        for (int l = 0; l < L; ++l)
            for (int h = 0; h < H; ++h)
                for (int p = 0; p < T; ++p) cells.push_back({l, p, h, -1, l * H + h, p, {}});
        break;
    }
    case PatchSite::Features: break;
    }
    g.rows = int(g.rowLabels.size());
}

// Features: one cell per (feature, position) whose activation differs between the two runs.
void layOutFeatures(const PatchRequest& r, const ActivationCache& src, const ActivationCache& dst,
                    std::vector<Slot>& slots, std::vector<Cell>& cells) {
    const SaeConfig& c = r.sae->config();
    const std::string out = c.hookNameOut.empty() ? c.hookName : c.hookNameOut;
    slots.push_back({out, {}});
    // [T, d_in] whatever the hook's shape (hook_z is [1, T, heads, d_head]).
    auto input = [&](const ActivationCache& cache) {
        const at::Tensor x = cache.at(c.hookName);
        return x.reshape({x.size(1), -1}).to(at::kFloat);
    };
    const at::Tensor fSrc = r.sae->encode(input(src));  // [T, d_sae]
    const at::Tensor fDst = r.sae->encode(input(dst));
    const at::Tensor diff = (fSrc - fDst).contiguous();
    const at::Tensor changed = (diff != 0).nonzero();  // [n, 2]: position, feature (row-major order)
    const auto idx = changed.accessor<int64_t, 2>();
    const at::Tensor dec = r.sae->weights().W_dec.to(at::kFloat);
    const auto d = diff.accessor<float, 2>();
    for (int64_t i = 0; i < changed.size(0); ++i) {
        const int p = int(idx[i][0]);
        const long f = long(idx[i][1]);
        cells.push_back({0, p, -1, f, 0, p, dec[f] * d[p][f]});
    }
}

// Registers the hooks that apply `cells[begin, end)` to batch rows 0.. of a run that computes
// positions [from, T) (earlier ones come from the target's KV cache).
void installPatches(Hooks& hooks, const std::vector<Slot>& slots, const std::vector<Cell>& cells, size_t begin,
                    size_t end, long T, long heads, long from) {
    const long B = long(end - begin);
    std::map<int, std::vector<size_t>> bySlot;
    for (size_t i = begin; i < end; ++i) bySlot[cells[i].slot].push_back(i);
    for (const auto& [s, members] : bySlot) {
        const Slot& slot = slots[s];
        if (cells[members.front()].delta.defined()) {
            const long width = cells[members.front()].delta.size(0);
            at::Tensor delta = at::zeros({B, T, width}, at::kFloat);
            for (size_t i : members) delta[long(i - begin)][cells[i].pos].copy_(cells[i].delta);
            delta = delta.narrow(1, from, T - from);
            hooks.add(slot.hook, [delta](at::Tensor& x, const HookContext&) {
                x = x + delta.reshape(x.sizes()).to(x.scalar_type());
            });
            continue;
        }
        const bool perHead = cells[members.front()].head >= 0;
        at::Tensor mask = perHead ? at::zeros({B, T, heads}, at::kBool) : at::zeros({B, T}, at::kBool);
        for (size_t i : members) {
            const Cell& c = cells[i];
            at::Tensor row = mask[long(i - begin)];
            at::Tensor patched = c.pos >= 0 ? row.narrow(0, c.pos, 1) : row;
            if (perHead) patched = patched.narrow(1, c.head, 1);
            patched.fill_(true);
        }
        mask = mask.unsqueeze(-1).narrow(1, from, T - from);
        const at::Tensor source = slot.source.narrow(1, from, T - from);
        hooks.add(slot.hook, [mask, source](at::Tensor& x, const HookContext&) { x = at::where(mask, source, x); });
    }
}

}  // namespace

const char* patchSiteName(PatchSite s) {
    switch (s) {
    case PatchSite::Resid: return "resid";
    case PatchSite::AttnOut: return "attn";
    case PatchSite::MlpOut: return "mlp";
    case PatchSite::Heads: return "heads";
    case PatchSite::HeadsByPosition: return "heads-by-position";
    case PatchSite::Features: return "features";
    }
    return "?";
}

PatchSite parsePatchSite(const std::string& name) {
    for (PatchSite s : {PatchSite::Resid, PatchSite::AttnOut, PatchSite::MlpOut, PatchSite::Heads,
                        PatchSite::HeadsByPosition, PatchSite::Features})
        if (name == patchSiteName(s)) return s;
    throw Error("patching: unknown site '" + name + "' (valid: resid, attn, mlp, heads, heads-by-position, features)");
}

const char* patchDirectionName(PatchDirection d) { return d == PatchDirection::Denoise ? "denoise" : "noise"; }

PatchDirection parsePatchDirection(const std::string& name) {
    if (name == "denoise") return PatchDirection::Denoise;
    if (name == "noise") return PatchDirection::Noise;
    throw Error("patching: unknown direction '" + name + "' (valid: denoise, noise)");
}

const char* patchMetricName(PatchMetric m) {
    switch (m) {
    case PatchMetric::LogitDiff: return "logit-diff";
    case PatchMetric::Probability: return "prob";
    case PatchMetric::KL: return "kl";
    }
    return "?";
}

PatchMetric parsePatchMetric(const std::string& name) {
    for (PatchMetric m : {PatchMetric::LogitDiff, PatchMetric::Probability, PatchMetric::KL})
        if (name == patchMetricName(m)) return m;
    throw Error("patching: unknown metric '" + name + "' (valid: logit-diff, prob, kl)");
}

PatchGrid runActivationPatching(const Transformer& model, const PatchRequest& r) {
    const auto start = std::chrono::steady_clock::now();
    checkRequest(model, r);
    c10::InferenceMode guard;
    const long T = long(r.cleanIds.size());
    const long H = model.config().nHeads;
    const bool denoise = r.direction == PatchDirection::Denoise;
    const std::vector<int>& sourceIds = denoise ? r.cleanIds : r.corruptedIds;
    const std::vector<int>& targetIds = denoise ? r.corruptedIds : r.cleanIds;

    PatchGrid g;
    g.site = r.site;
    g.direction = r.direction;
    g.metric = r.metric;
    g.cleanIds = r.cleanIds;
    g.corruptedIds = r.corruptedIds;

    std::vector<Slot> slots;
    std::vector<Cell> cells;
    layOutSite(model, r, g, slots, cells);
    std::vector<std::string> cacheNames;
    for (const Slot& s : slots) cacheNames.push_back(s.hook);
    if (r.site == PatchSite::Features) cacheNames.push_back(r.sae->config().hookName);

    ActivationCache sourceCache, targetCache;
    KvCache targetKv = model.makeKvCache(1, T);
    const at::Tensor sourceLogits = runAndCache(model, sourceIds, cacheNames, sourceCache);
    const at::Tensor targetLogits = runAndCache(model, targetIds, cacheNames, targetCache, &targetKv);
    const at::Tensor cleanLogits = denoise ? sourceLogits : targetLogits;
    const MetricScorer score(r.metric, r.answerId, r.wrongId, cleanLogits);
    g.cleanValue = score(cleanLogits)[0];
    g.corruptedValue = score(denoise ? targetLogits : sourceLogits)[0];
    const double span = g.cleanValue - g.corruptedValue;
    if (!(std::abs(span) > 1e-12))
        throw Error("patching: the clean and the corrupted run score the same " + std::string(patchMetricName(r.metric)) +
                    " (" + std::to_string(g.cleanValue) + "); there is no difference to patch");
    auto normalise = [&](double m) { return float((m - g.corruptedValue) / span); };

    if (r.site == PatchSite::Features)
        layOutFeatures(r, sourceCache, targetCache, slots, cells);
    else
        for (Slot& s : slots) s.source = sourceCache.at(s.hook);

    // Cells by position: a batch whose cells patch nothing before position p0 starts there, from
    // the target's keys and values, since a patch cannot reach earlier positions (causal).
    std::stable_sort(cells.begin(), cells.end(), [](const Cell& a, const Cell& b) { return a.pos < b.pos; });
    const int total = int(cells.size());
    const int batch = r.batch > 0 ? std::min(r.batch, std::max(1, total)) : automaticBatch(model, T, std::max(1, total));
    std::vector<double> cellRaw(cells.size());
    std::vector<int64_t> target(targetIds.begin(), targetIds.end());
    const at::Tensor targetRow = at::tensor(target, at::kLong).unsqueeze(0);
    if (r.progress && !r.progress(0, total)) throw Error("patching: cancelled");
    for (int begin = 0; begin < total; begin += batch) {
        const int end = std::min(total, begin + batch);
        const long B = end - begin;
        const long from = r.reusePrefix ? std::max(0, cells[size_t(begin)].pos) : 0;
        Hooks hooks;
        installPatches(hooks, slots, cells, size_t(begin), size_t(end), T, H, from);
        RunOptions o;
        o.hooks = &hooks;
        o.lastPositionOnly = true;
        KvCache kv;
        if (from > 0) {
            kv = model.makeKvCache(B, T);
            for (size_t l = 0; l < kv.k.size(); ++l) {
                kv.k[l].copy_(targetKv.k[l].expand_as(kv.k[l]));
                kv.v[l].copy_(targetKv.v[l].expand_as(kv.v[l]));
            }
            kv.length = from;
            o.kv = &kv;
        }
        const at::Tensor logits = model.forward(targetRow.narrow(1, from, T - from).expand({B, T - from}), o).select(1, 0);
        const std::vector<double> m = score(logits);
        std::copy(m.begin(), m.end(), cellRaw.begin() + begin);
        ++g.forwardBatches;
        g.patchedRuns += end - begin;
        if (r.progress && !r.progress(end, total)) throw Error("patching: cancelled");
    }

    const double unpatchedRaw = denoise ? g.corruptedValue : g.cleanValue;
    if (r.site == PatchSite::Features) {
        // Rows: the features whose largest |effect| over positions is largest; a cell that was not
        // run (the feature is the same in both runs there) keeps the unpatched run's score.
        const float unpatched = normalise(unpatchedRaw);
        std::map<long, double> strongest;
        for (size_t i = 0; i < cells.size(); ++i) {
            double& e = strongest[cells[i].feature];
            e = std::max(e, double(std::abs(normalise(cellRaw[i]) - unpatched)));
        }
        std::vector<std::pair<long, double>> ranked(strongest.begin(), strongest.end());
        std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        if (int(ranked.size()) > std::max(0, r.maxFeatures)) ranked.resize(size_t(std::max(0, r.maxFeatures)));
        const SaeConfig& c = r.sae->config();
        const int layer = layerOfHook(c.hookNameOut.empty() ? c.hookName : c.hookNameOut);
        std::map<long, int> rowOf;
        for (const auto& [f, e] : ranked) {
            rowOf[f] = int(g.rowLabels.size());
            g.rowLabels.push_back((r.saeId.empty() ? "" : r.saeId + " ") + "#" + std::to_string(f));
            g.rowLayer.push_back(layer);
            g.rowHead.push_back(-1);
            g.rowFeature.push_back(f);
        }
        g.rows = int(g.rowLabels.size());
        g.rowAxis = "feature";
        g.columnAxis = "position";
        g.columns = int(T);
        for (int p = 0; p < T; ++p) {
            g.columnLabels.push_back(positionLabel(r, p));
            g.columnPosition.push_back(p);
        }
        g.raw.assign(size_t(g.rows) * g.columns, unpatchedRaw);
        for (size_t i = 0; i < cells.size(); ++i)
            if (auto it = rowOf.find(cells[i].feature); it != rowOf.end())
                g.raw[size_t(it->second) * g.columns + cells[i].col] = cellRaw[i];
    } else {
        g.raw.assign(size_t(g.rows) * g.columns, unpatchedRaw);
        for (size_t i = 0; i < cells.size(); ++i) g.raw[size_t(cells[i].row) * g.columns + cells[i].col] = cellRaw[i];
    }
    g.values.resize(g.raw.size());
    for (size_t i = 0; i < g.raw.size(); ++i) g.values[i] = normalise(g.raw[i]);
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return g;
}

}  // namespace cs
