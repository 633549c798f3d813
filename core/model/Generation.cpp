#include "model/Generation.h"

#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace cs {

namespace {

// splitmix64: a small, portable generator so a seed means the same samples everywhere.
double nextUniform(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

long chooseToken(const at::Tensor& logitsRow, const SamplingOptions& s, uint64_t& rng) {
    at::Tensor row = logitsRow.to(at::kDouble).contiguous();
    if (s.greedy || s.temperature <= 0) return row.argmax().item<long>();
    const double* lg = row.data_ptr<double>();
    const long V = row.numel();
    std::vector<long> order(V);
    std::iota(order.begin(), order.end(), 0);
    const long keep = (s.topK > 0 && s.topK < V) ? s.topK : V;
    std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                      [&](long a, long b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
    order.resize(keep);
    std::vector<double> p(keep);
    const double maxLogit = lg[order[0]];
    double sum = 0;
    for (long i = 0; i < keep; ++i) sum += (p[i] = std::exp((lg[order[i]] - maxLogit) / s.temperature));
    for (double& x : p) x /= sum;
    long n = keep;
    if (s.topP < 1.0) {
        double mass = 0;
        for (n = 0; n < keep;) {
            mass += p[n++];
            if (mass >= s.topP) break;
        }
        double m = std::accumulate(p.begin(), p.begin() + n, 0.0);
        for (long i = 0; i < n; ++i) p[i] /= m;
    }
    double u = nextUniform(rng), acc = 0;
    for (long i = 0; i < n; ++i) {
        acc += p[i];
        if (u < acc) return order[i];
    }
    return order[n - 1];
}

std::vector<long> generate(const Transformer& model, const std::vector<long>& prompt,
                           const SamplingOptions& s, const Hooks* hooks,
                           const std::function<bool(long)>& onToken, const BeforeForward& beforeForward) {
    c10::InferenceMode guard;
    const ModelConfig& cfg = model.config();
    if (prompt.empty()) throw Error("empty prompt: nothing to continue");
    if (static_cast<long>(prompt.size()) > cfg.nCtx)
        throw Error("prompt of " + std::to_string(prompt.size()) + " tokens is longer than the model's context of " +
                    std::to_string(cfg.nCtx));
    const long budget = std::min<long>(s.maxNewTokens, cfg.nCtx - static_cast<long>(prompt.size()));
    uint64_t rng = s.seed;
    std::vector<long> seq(prompt), out;
    RunOptions opts;
    opts.hooks = hooks;
    opts.lastPositionOnly = true;
    KvCache kv;
    if (s.useKvCache) {
        kv = model.makeKvCache(1, static_cast<long>(prompt.size()) + budget);
        opts.kv = &kv;
    }
    at::Tensor input = at::tensor(seq, at::kLong).unsqueeze(0);
    for (long step = 0; step < budget; ++step) {
        if (beforeForward) beforeForward(input, s.useKvCache ? kv.length : 0);
        at::Tensor logits = model.forward(input, opts);
        long next = chooseToken(logits[0][logits.size(1) - 1], s, rng);
        out.push_back(next);
        seq.push_back(next);
        if (onToken && !onToken(next)) break;
        if (s.stopAtEos && next == cfg.eosTokenId) break;
        input = s.useKvCache ? at::full({1, 1}, next, at::kLong) : at::tensor(seq, at::kLong).unsqueeze(0);
    }
    return out;
}

}  // namespace cs
