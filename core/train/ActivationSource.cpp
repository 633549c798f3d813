#include "train/ActivationSource.h"

#include "sae/SaeConfig.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>

namespace cs {

at::Tensor ActivationSource::idsAt(const std::vector<long>& starts) const {
    std::vector<int64_t> ids;
    ids.reserve(starts.size() * ctx);
    for (long s : starts) ids.insert(ids.end(), stream.begin() + s, stream.begin() + s + ctx);
    return at::tensor(ids, at::kLong).view({static_cast<long>(starts.size()), ctx});
}

std::vector<long> ActivationSource::randomStarts(long nTokens) {
    std::uniform_int_distribution<long> pick(0, static_cast<long>(stream.size()) - ctx - 1);
    std::vector<long> starts;
    for (long t = 0; t < nTokens; t += ctx) starts.push_back(pick(rng));
    return starts;
}

std::pair<at::Tensor, at::Tensor> ActivationSource::windows(const std::vector<long>& starts) const {
    c10::InferenceMode guard;
    at::Tensor batch = idsAt(starts);
    Hooks hooks;
    hooks.cache(in);
    hooks.cache(out);
    ActivationCache cache;
    RunOptions o;
    o.hooks = &hooks;
    o.cache = &cache;
    const int last = std::max(layerOfHook(in), layerOfHook(out));
    o.lastLayer = last >= 0 ? last : -1;  // "ln_final.*" / "hook_embed": -1 runs everything
    model.forward(batch, o);
    at::Tensor keep = batch.reshape({-1}).ne(bosId);
    auto flat = [&](const std::string& n) {
        at::Tensor a = cache.at(n);
        return a.reshape({a.size(0) * a.size(1), -1}).index({keep});
    };
    return {flat(in), flat(out)};
}

}  // namespace cs
