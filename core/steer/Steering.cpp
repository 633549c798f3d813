#include "steer/Steering.h"

#include "sae/SaeAttachment.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>

namespace cs {

namespace {

// The last block a side pass must run to fire `hook`: hooks before the blocks need block 0 only;
// the final norm's need the whole model (-1).
int lastBlockFor(const std::string& hook) {
    if (hook.rfind("blocks.", 0) == 0) return std::stoi(hook.substr(7));
    if (hook.rfind("ln_final", 0) == 0) return -1;
    return 0;
}

// Architectures whose feature j depends on column j of the encoder alone (all but TopK).
bool separable(const Sae& sae) { return sae.config().architecture != SaeArch::TopK; }

// The same SAE restricted to `features` (separable architectures): encoding through it gives
// exactly those features' activations, while a full encode of one decoding step's row would pay
// for packing the whole encoder, which on a small model costs more than the steered step itself.
std::shared_ptr<const Sae> subSae(const Sae& sae, const std::vector<long>& features) {
    const at::Tensor idx = at::tensor(features, at::kLong);
    const SaeWeights& w = sae.weights();
    auto cols = [&](const at::Tensor& t) { return t.defined() ? t.index_select(1, idx) : t; };
    auto rows = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, idx) : t; };
    SaeWeights sub = w;
    sub.W_enc = cols(w.W_enc);
    sub.W_dec = rows(w.W_dec);
    sub.b_enc = rows(w.b_enc);
    sub.threshold = rows(w.threshold);
    sub.b_gate = rows(w.b_gate);
    sub.b_mag = rows(w.b_mag);
    sub.r_mag = rows(w.r_mag);
    SaeConfig cfg = sae.config();
    cfg.dSae = static_cast<long>(features.size());
    // The skip term is not part of encoding; without it a skip transcoder encodes as a transcoder
    // does, and no copy of its [d_in, d_out] matrix is made per setting.
    if (cfg.architecture == SaeArch::SkipTranscoder) {
        cfg.architecture = SaeArch::Transcoder;
        sub.W_skip = at::Tensor();
    }
    return std::make_shared<const Sae>(cfg, sub);
}

std::string rowName(const SteeringRule& r, size_t i) {
    if (r.isVector()) return "steering row " + std::to_string(i + 1) + " (vector '" + r.vectorName + "')";
    return "steering row " + std::to_string(i + 1) + " ('" + toSpecString(r) + "')";
}

}  // namespace

at::Tensor featureActivation(const Sae& sae, const at::Tensor& x, long feature) {
    return sae.encode(x).select(-1, feature);
}

// The activations of a few features of one SAE, [..., n] for x [..., d_in], column j = features[j].
struct FeatureReader {
    std::shared_ptr<const Sae> sae;
    std::shared_ptr<const Sae> sub;  // separable architectures
    std::vector<long> features;
    at::Tensor encT;  // TopK: W_enc^T [d_sae, d_in] (a view) and the bias with b_dec folded in
    at::Tensor bias;

    FeatureReader() = default;
    FeatureReader(std::shared_ptr<const Sae> s, std::vector<long> f) : sae(std::move(s)), features(std::move(f)) {
        if (separable(*sae)) {
            sub = subSae(*sae, features);
            return;
        }
        const SaeWeights& w = sae->weights();
        encT = w.W_enc.t();
        bias = sae->config().applyBDecToInput ? w.b_enc - at::matmul(w.b_dec, w.W_enc) : w.b_enc;
    }

    at::Tensor read(const at::Tensor& x) const {
        if (sub) return sub->encode(x);
        // TopK needs every pre-activation to know which k win. One row (a decoding step) goes
        // through a matrix-vector product, which reads the encoder once instead of packing it.
        at::Tensor x2 = x.reshape({-1, x.size(-1)}).to(at::kFloat);
        const long rows = x2.size(0), k = sae->config().k, n = static_cast<long>(features.size());
        at::Tensor pre = rows == 1 ? at::addmv(bias, encT, x2[0]).unsqueeze(0) : at::addmm(bias, x2, encT.t());
        pre = pre.contiguous();
        // A feature's activation is relu(pre) where it is among the k winners, else 0. It wins when
        // fewer than k pre-activations beat it: one pass of comparisons, cheaper than a top-k
        // selection (exact ties at the k-th place are as arbitrary here as in topk itself).
        const long dSae = pre.size(1);
        at::Tensor out = at::zeros({rows, n}, at::kFloat);
        float* o = out.data_ptr<float>();
        const float* pr = pre.data_ptr<float>();
        for (long r = 0; r < rows; ++r) {
            const float* row = pr + r * dSae;
            for (long c = 0; c < n; ++c) {
                const float mine = row[features[static_cast<size_t>(c)]];
                long above = 0;
                for (long j = 0; j < dSae && above < k; ++j) above += row[j] > mine;
                if (above < k) o[r * n + c] = std::max(mine, 0.f);
            }
        }
        std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 1);
        shape.push_back(n);
        return out.view(shape);
    }
};

// One row as the hook function applies it.
struct RowPlan {
    SteerMode mode = SteerMode::Add;
    double value = 0;
    PositionRange positions;
    bool conditional = false;
    int sae = -1;        // feature rows: index into saes_
    long feature = -1;
    int code = -1;       // clamp and ablate feature rows: its column in the SAE's reader output
    at::Tensor dir;      // [d] float32
    double dirNorm2 = 1; // vector rows: <d, d>
};

struct HookPlan {
    std::string hook;
    std::vector<RowPlan> rows;
    at::Tensor dirs;    // [rows, d]
    at::Tensor values;  // [rows] float
    // Every row adds: a step where all rows apply adds this one vector, sum of value * d.
    bool allAdd = true;
    at::Tensor addSum;
};

struct Steering::State {
    long promptLength = 0;
    std::vector<HookPlan> hooks;
    std::vector<SteeringSae> saes;
    // Per SAE index with clamp, ablate or scale rows: reads just the features those rows steer.
    std::map<int, FeatureReader> readers;
    // Transcoder rows read their activation at the input hook; the output hook, later in the same
    // forward, finds it here: per SAE index, the reader's output at the input hook [B, P, n].
    std::map<int, at::Tensor> transcoderCodes;
    // The condition: evaluated on a side pass of the unsteered model, or in the steered pass itself
    // when that is still the unsteered model at the condition's hook (condInMain).
    bool hasCondition = false;
    int condSae = -1;
    long condFeature = -1;
    double condThreshold = 0;
    int condLayer = -1;
    FeatureReader condReader;
    std::string condHook;
    // No row writes upstream of the condition's hook: the steered pass itself sees the unsteered
    // activation there, so the condition is read in it and no side pass runs.
    bool condInMain = false;
    std::vector<float> condActs;
    KvCache sideKv;
    Hooks sideHooks;

    // The condition feature's unsteered activation at this call's positions, into condActs.
    void recordCondition(const at::Tensor& x, const HookContext& ctx) {
        if (x.size(0) != 1) throw Error("conditional steering runs one sequence at a time");
        at::Tensor a = condReader.read(x.reshape({1, x.size(1), -1}))[0].select(-1, 0).to(at::kFloat).contiguous();
        const long P = a.size(0);
        condActs.resize(static_cast<size_t>(ctx.positionOffset + P));
        const float* p = a.data_ptr<float>();
        for (long i = 0; i < P; ++i) condActs[static_cast<size_t>(ctx.positionOffset + i)] = p[i];
    }
};

Steering::Steering(const Transformer& model, std::vector<SteeringSae> saes, SteeringPlan plan)
    : model_(model), saes_(std::move(saes)), plan_(std::move(plan)), state_(std::make_shared<State>()) {
    State& st = *state_;
    st.saes = saes_;
    auto findSae = [&](const std::string& id, const std::string& where) -> int {
        if (id.empty()) {
            if (saes_.size() == 1) return 0;
            if (saes_.empty()) throw Error(where + ": no SAE is attached (give --sae PATH)");
            std::string ids;
            for (const auto& s : saes_) ids += (ids.empty() ? "" : ", ") + s.id;
            throw Error(where + ": " + std::to_string(saes_.size()) + " SAEs are attached; name one as SAE_ID/FEATURE (" + ids + ")");
        }
        for (size_t i = 0; i < saes_.size(); ++i)
            if (saes_[i].id == id) return static_cast<int>(i);
        std::string ids;
        for (const auto& s : saes_) ids += (ids.empty() ? "" : ", ") + s.id;
        throw Error(where + ": unknown SAE id '" + id + "' (attached: " + (ids.empty() ? "none" : ids) + ")");
    };

    bool anyConditional = false;
    std::map<std::string, size_t> hookIndex;
    for (size_t i = 0; i < plan_.rules.size(); ++i) {
        const SteeringRule& r = plan_.rules[i];
        if (!r.enabled) continue;
        const std::string where = rowName(r, i);
        RowPlan row;
        row.mode = r.mode;
        row.value = r.mode == SteerMode::Ablate ? 0.0 : r.value;
        row.positions = r.positions;
        row.conditional = r.conditional && plan_.condition.has_value();
        anyConditional = anyConditional || row.conditional;
        std::string hook;
        if (r.isVector()) {
            if (r.hook.empty()) throw Error(where + ": a vector row needs a hook");
            if (!r.direction.defined()) throw Error(where + ": the vector has no values");
            const long width = hookWidth(model_, r.hook, where);
            if (r.direction.numel() != width)
                throw Error(where + ": the vector has " + std::to_string(r.direction.numel()) + " values but hook '" +
                            r.hook + "' is " + std::to_string(width) + " wide");
            row.dir = r.direction.detach().to(at::kFloat).reshape({width}).contiguous();
            if (!at::isfinite(row.dir).all().item<bool>()) throw Error(where + ": the vector holds NaN or Inf");
            row.dirNorm2 = row.dir.dot(row.dir).item<double>();
            if (r.mode != SteerMode::Add && row.dirNorm2 <= 0)
                throw Error(where + ": clamp, ablate and scale need a non-zero vector");
            hook = r.hook;
        } else {
            row.sae = findSae(r.saeId, where);
            const Sae& sae = *saes_[row.sae].sae;
            if (r.feature >= sae.dSae())
                throw Error(where + ": feature " + std::to_string(r.feature) + " is out of range for SAE '" +
                            saes_[row.sae].id + "' (" + std::to_string(sae.dSae()) + " features: 0.." +
                            std::to_string(sae.dSae() - 1) + ")");
            row.feature = r.feature;
            const SaeConfig& c = sae.config();
            hook = isTranscoder(c.architecture) ? c.hookNameOut : c.hookName;
            const long width = hookWidth(model_, hook, c.source);
            if (sae.dOut() != width)
                throw Error(where + ": SAE '" + saes_[row.sae].id + "' writes " + std::to_string(sae.dOut()) +
                            " values but hook '" + hook + "' is " + std::to_string(width) + " wide");
            row.dir = sae.weights().W_dec[r.feature].detach().to(at::kFloat).contiguous();
        }
        auto it = hookIndex.find(hook);
        if (it == hookIndex.end()) {
            it = hookIndex.emplace(hook, st.hooks.size()).first;
            st.hooks.emplace_back();
            st.hooks.back().hook = hook;
        }
        st.hooks[it->second].rows.push_back(row);
    }
    std::map<int, std::vector<long>> readFeatures;
    for (HookPlan& h : st.hooks)
        for (RowPlan& r : h.rows) {
            if (r.sae < 0 || r.mode == SteerMode::Add) continue;
            std::vector<long>& f = readFeatures[r.sae];
            auto at = std::find(f.begin(), f.end(), r.feature);
            r.code = static_cast<int>(at - f.begin());
            if (at == f.end()) f.push_back(r.feature);
        }
    for (auto& [si, features] : readFeatures) st.readers.emplace(si, FeatureReader(saes_[si].sae, features));
    for (HookPlan& h : st.hooks) {
        std::vector<at::Tensor> d;
        std::vector<float> values;
        for (const RowPlan& r : h.rows) {
            d.push_back(r.dir);
            values.push_back(static_cast<float>(r.value));
            h.allAdd = h.allAdd && r.mode == SteerMode::Add;
        }
        h.dirs = at::stack(d);
        h.values = at::tensor(values, at::kFloat);
        h.addSum = at::matmul(h.values, h.dirs);
    }
    if (plan_.condition) {
        const SteeringCondition& c = *plan_.condition;
        const std::string where = "condition '" + c.toString() + "'";
        st.condSae = findSae(c.saeId, where);
        const Sae& sae = *saes_[st.condSae].sae;
        if (c.feature < 0 || c.feature >= sae.dSae())
            throw Error(where + ": feature " + std::to_string(c.feature) + " is out of range for SAE '" +
                        saes_[st.condSae].id + "' (" + std::to_string(sae.dSae()) + " features: 0.." +
                        std::to_string(sae.dSae() - 1) + ")");
        hookWidth(model_, sae.config().hookName, sae.config().source);
        st.hasCondition = anyConditional;
        st.condFeature = c.feature;
        st.condThreshold = c.threshold;
        st.condLayer = lastBlockFor(sae.config().hookName);
        st.condHook = sae.config().hookName;
        st.condReader = FeatureReader(saes_[st.condSae].sae, {c.feature});
        // Hooks fire in the order hookPoints() lists them; the reader goes first at its own hook.
        std::map<std::string, size_t> order;
        for (const HookPointInfo& p : model_.hookPoints()) order.emplace(p.name, order.size());
        st.condInMain = true;
        for (const HookPlan& h : st.hooks) st.condInMain = st.condInMain && order.at(h.hook) >= order.at(st.condHook);
        if (!st.condInMain) {
            State* s = &st;
            st.sideHooks.add(st.condHook, [s](at::Tensor& x, const HookContext& ctx) { s->recordCondition(x, ctx); });
        }
    }
}

Steering::~Steering() = default;

void Steering::setPromptLength(long n) { state_->promptLength = n; }

const std::vector<float>& Steering::conditionActivations() const { return state_->condActs; }

void Steering::beforeForward(const at::Tensor& tokens, long offset) {
    State& st = *state_;
    if (!st.hasCondition || st.condInMain) return;
    c10::InferenceMode guard;
    if (offset == 0) {
        st.sideKv = model_.makeKvCache(1, model_.config().nCtx);
        st.condActs.clear();
    } else if (offset != st.sideKv.length) {
        throw Error("conditional steering: tokens fed out of order (position " + std::to_string(offset) +
                    " after " + std::to_string(st.sideKv.length) + ")");
    }
    RunOptions o;
    o.hooks = &st.sideHooks;
    o.kv = &st.sideKv;
    o.lastLayer = st.condLayer;
    o.lastPositionOnly = true;
    model_.forward(tokens, o);
}

BeforeForward Steering::beforeForwardFn() {
    return [this](const at::Tensor& t, long offset) { beforeForward(t, offset); };
}

void Steering::install(Hooks& hooks) const {
    std::shared_ptr<State> st = state_;
    if (st->hasCondition && st->condInMain)
        hooks.add(st->condHook, [st](at::Tensor& x, const HookContext& ctx) { st->recordCondition(x, ctx); });
    // Transcoder inputs first: the input hook fires before the output hook in the same block.
    std::map<int, bool> transcoderInputs;
    for (const HookPlan& h : st->hooks)
        for (const RowPlan& r : h.rows)
            if (r.sae >= 0 && r.mode != SteerMode::Add && isTranscoder(st->saes[r.sae].sae->config().architecture))
                transcoderInputs[r.sae] = true;
    for (const auto& [saeIndex, unused] : transcoderInputs) {
        (void)unused;
        const int si = saeIndex;
        hooks.add(st->saes[si].sae->config().hookName, [st, si](at::Tensor& x, const HookContext&) {
            st->transcoderCodes[si] = st->readers.at(si).read(x.reshape({x.size(0), x.size(1), -1}));
        });
    }
    for (size_t hi = 0; hi < st->hooks.size(); ++hi) {
        hooks.add(st->hooks[hi].hook, [st, hi](at::Tensor& x, const HookContext& ctx) {
            const HookPlan& h = st->hooks[hi];
            const long B = x.size(0), P = x.size(1), R = static_cast<long>(h.rows.size());
            at::Tensor flat = x.reshape({B, P, -1});
            // Which rows apply at which of this call's positions.
            std::vector<float> m(static_cast<size_t>(P * R), 0.f);
            bool any = false, all = true;
            for (long p = 0; p < P; ++p) {
                const long pos = ctx.positionOffset + p;
                bool cond = true;
                if (st->hasCondition) {
                    if (pos >= static_cast<long>(st->condActs.size()))
                        throw Error("conditional steering: the condition was not evaluated at position " +
                                    std::to_string(pos) + " (Steering::beforeForward was not called)");
                    cond = st->condActs[static_cast<size_t>(pos)] > st->condThreshold;
                }
                for (long r = 0; r < R; ++r) {
                    const RowPlan& row = h.rows[static_cast<size_t>(r)];
                    const bool on = row.positions.contains(pos, st->promptLength) && (!row.conditional || cond);
                    m[static_cast<size_t>(p * R + r)] = on ? 1.f : 0.f;
                    any = any || on;
                    all = all && on;
                }
            }
            if (!any) return;
            if (h.allAdd && all) {
                x = (flat + h.addSum.to(x.scalar_type())).view(x.sizes());
                return;
            }
            std::map<int, at::Tensor> codes;  // this call's SAE activations, read once per SAE
            // The features of `sae` that this plan reads, [B, P, n] float32, contiguous.
            auto codesOf = [&](int sae) -> const at::Tensor& {
                auto it = codes.find(sae);
                if (it != codes.end()) return it->second;
                at::Tensor f;
                if (isTranscoder(st->saes[sae].sae->config().architecture)) {
                    auto t = st->transcoderCodes.find(sae);
                    if (t == st->transcoderCodes.end())
                        throw Error("steering: transcoder '" + st->saes[sae].id + "' was not read at its input hook");
                    f = t->second;
                } else {
                    f = st->readers.at(sae).read(flat);
                }
                return codes.emplace(sae, f.reshape({B, P, -1}).to(at::kFloat).contiguous()).first->second;
            };
            at::Tensor coef;
            if (B * P == 1) {
                // A decoding step: every coefficient is one number, so no [B, P, R] tensors are built
                // and a lone row is one scaled add (each tensor operation costs microseconds here).
                std::vector<float> c(static_cast<size_t>(R), 0.f);
                for (long r = 0; r < R; ++r) {
                    const RowPlan& row = h.rows[static_cast<size_t>(r)];
                    if (m[static_cast<size_t>(r)] == 0.f) continue;
                    double a = 0;
                    if (row.mode != SteerMode::Add && row.sae < 0)
                        a = at::dot(flat.reshape({-1}).to(at::kFloat), row.dir).item<double>() / row.dirNorm2;
                    else if (row.mode != SteerMode::Add)
                        a = codesOf(row.sae).data_ptr<float>()[row.code];
                    c[static_cast<size_t>(r)] = static_cast<float>(row.mode == SteerMode::Scale ? (row.value - 1) * a : row.value - a);
                }
                if (R == 1) {
                    x = at::add(flat, h.rows[0].dir.to(x.scalar_type()), c[0]).view(x.sizes());
                    return;
                }
                coef = at::tensor(c, at::kFloat).view({1, 1, R});
            } else {
                // coef = value - a (clamp, ablate), (value - 1) * a (scale) or value (add), per batch
                // row and position.
                coef = h.values.expand({B, P, R}).clone();
                for (long r = 0; r < R; ++r) {
                    const RowPlan& row = h.rows[static_cast<size_t>(r)];
                    if (row.mode == SteerMode::Add) continue;
                    const at::Tensor a = row.sae < 0 ? at::matmul(flat.to(at::kFloat), row.dir) / row.dirNorm2
                                                     : codesOf(row.sae).select(-1, row.code);
                    if (row.mode == SteerMode::Scale) coef.select(-1, r).copy_(a * (row.value - 1));
                    else coef.select(-1, r).sub_(a);
                }
                coef.mul_(at::from_blob(m.data(), {1, P, R}, at::kFloat));
            }
            at::Tensor delta = at::matmul(coef, h.dirs).to(x.scalar_type());
            x = (flat + delta).view(x.sizes());
        });
    }
}

std::vector<long> generateSteered(const Transformer& model, const std::vector<long>& prompt,
                                  const SamplingOptions& s, Steering& steering,
                                  const std::function<bool(long)>& onToken) {
    steering.setPromptLength(static_cast<long>(prompt.size()));
    Hooks hooks;
    steering.install(hooks);
    return generate(model, prompt, s, &hooks, onToken, steering.beforeForwardFn());
}

}  // namespace cs
