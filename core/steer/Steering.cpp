#include "steer/Steering.h"

#include "sae/SaeAttachment.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

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

std::string rowName(const SteeringRule& r, size_t i) {
    if (r.isVector()) return "steering row " + std::to_string(i + 1) + " (vector '" + r.vectorName + "')";
    return "steering row " + std::to_string(i + 1) + " ('" + toSpecString(r) + "')";
}

}  // namespace

at::Tensor featureActivation(const Sae& sae, const at::Tensor& x, long feature) {
    return sae.encode(x).select(-1, feature);
}

// One row as the hook function applies it.
struct RowPlan {
    SteerMode mode = SteerMode::Add;
    double value = 0;
    PositionRange positions;
    bool conditional = false;
    int sae = -1;        // feature rows: index into saes_
    long feature = -1;
    at::Tensor dir;      // [d] float32
    double dirNorm2 = 1; // vector rows: <d, d>
};

struct HookPlan {
    std::string hook;
    std::vector<RowPlan> rows;
    at::Tensor dirs;  // [rows, d]
};

struct Steering::State {
    long promptLength = 0;
    std::vector<HookPlan> hooks;
    std::vector<SteeringSae> saes;
    // Transcoder rows read their activation at the input hook; the output hook, later in the same
    // forward, finds it here: per SAE index, encode(x) at the input hook [B, P, d_sae].
    std::map<int, at::Tensor> transcoderCodes;
    // The condition: evaluated on a side pass of the unsteered model.
    bool hasCondition = false;
    int condSae = -1;
    long condFeature = -1;
    double condThreshold = 0;
    int condLayer = -1;
    std::vector<float> condActs;
    KvCache sideKv;
    Hooks sideHooks;
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
                throw Error(where + ": clamp and ablate need a non-zero vector");
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
            st.hooks.push_back(HookPlan{hook, {}, {}});
        }
        st.hooks[it->second].rows.push_back(row);
    }
    for (HookPlan& h : st.hooks) {
        std::vector<at::Tensor> d;
        for (const RowPlan& r : h.rows) d.push_back(r.dir);
        h.dirs = at::stack(d);
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
        auto sae_ = saes_[st.condSae].sae;
        State* s = &st;
        st.sideHooks.add(sae.config().hookName, [s, sae_](at::Tensor& x, const HookContext& ctx) {
            if (x.size(0) != 1) throw Error("conditional steering runs one sequence at a time");
            at::Tensor a = featureActivation(*sae_, x, s->condFeature)[0].to(at::kFloat).contiguous();
            const long P = a.size(0);
            s->condActs.resize(static_cast<size_t>(ctx.positionOffset + P));
            const float* p = a.data_ptr<float>();
            for (long i = 0; i < P; ++i) s->condActs[static_cast<size_t>(ctx.positionOffset + i)] = p[i];
        });
    }
}

Steering::~Steering() = default;

void Steering::setPromptLength(long n) { state_->promptLength = n; }

const std::vector<float>& Steering::conditionActivations() const { return state_->condActs; }

void Steering::beforeForward(const at::Tensor& tokens, long offset) {
    State& st = *state_;
    if (!st.hasCondition) return;
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
            st->transcoderCodes[si] = st->saes[si].sae->encode(x.reshape({x.size(0), x.size(1), -1}));
        });
    }
    for (size_t hi = 0; hi < st->hooks.size(); ++hi) {
        hooks.add(st->hooks[hi].hook, [st, hi](at::Tensor& x, const HookContext& ctx) {
            const HookPlan& h = st->hooks[hi];
            const long B = x.size(0), P = x.size(1), R = static_cast<long>(h.rows.size());
            at::Tensor flat = x.reshape({B, P, -1});
            // Which rows apply at which of this call's positions.
            at::Tensor mask = at::zeros({P, R}, at::kFloat);
            float* m = mask.data_ptr<float>();
            bool any = false;
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
                    m[p * R + r] = on ? 1.f : 0.f;
                    any = any || on;
                }
            }
            if (!any) return;
            // coef = value - a (clamp, ablate) or value (add), per batch row and position.
            std::vector<double> values(static_cast<size_t>(R));
            for (long r = 0; r < R; ++r) values[static_cast<size_t>(r)] = h.rows[static_cast<size_t>(r)].value;
            at::Tensor coef = at::tensor(values, at::kDouble).to(at::kFloat).expand({B, P, R}).clone();
            std::map<int, at::Tensor> codes;  // this call's SAE activations, encoded once per SAE
            for (long r = 0; r < R; ++r) {
                const RowPlan& row = h.rows[static_cast<size_t>(r)];
                if (row.mode == SteerMode::Add) continue;
                at::Tensor a;
                if (row.sae < 0) {
                    a = at::matmul(flat.to(at::kFloat), row.dir) / row.dirNorm2;
                } else {
                    auto it = codes.find(row.sae);
                    if (it == codes.end()) {
                        const Sae& sae = *st->saes[row.sae].sae;
                        at::Tensor f;
                        if (isTranscoder(sae.config().architecture)) {
                            auto t = st->transcoderCodes.find(row.sae);
                            if (t == st->transcoderCodes.end())
                                throw Error("steering: transcoder '" + st->saes[row.sae].id + "' was not read at its input hook");
                            f = t->second;
                        } else {
                            f = sae.encode(flat);
                        }
                        it = codes.emplace(row.sae, f.reshape({B, P, -1})).first;
                    }
                    a = it->second.select(-1, row.feature);
                }
                coef.select(-1, r).sub_(a.to(at::kFloat));
            }
            coef.mul_(mask.unsqueeze(0));
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
