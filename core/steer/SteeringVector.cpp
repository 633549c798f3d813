#include "steer/SteeringVector.h"

#include "io/NpzReader.h"
#include "io/Safetensors.h"
#include "sae/SaeAttachment.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

namespace cs {

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

at::Tensor asVector(const at::Tensor& t, const std::string& where) {
    std::vector<long> shape(t.sizes().begin(), t.sizes().end());
    const bool ok = t.dim() == 1 || (t.dim() == 2 && t.size(0) == 1);
    if (!ok || t.numel() == 0)
        throw Error(where + ": expected a vector of shape [d_model] (or [1, d_model]), found " + shapeToString(shape));
    at::Tensor v = t.to(at::kFloat).reshape({t.numel()}).clone();
    if (!at::isfinite(v).all().item<bool>()) throw Error(where + ": the vector holds NaN or Inf");
    return v;
}

}  // namespace

at::Tensor loadSteeringVector(const std::string& path, const std::string& tensorName) {
    if (endsWith(path, ".npy")) return asVector(loadNpy(path), path);
    if (endsWith(path, ".safetensors")) {
        auto f = SafetensorsFile::open(path);
        std::string name = tensorName;
        if (name.empty()) {
            if (f->tensors().size() != 1) {
                std::string names;
                for (const auto& [n, info] : f->tensors()) names += (names.empty() ? "" : ", ") + n;
                failIn(path, "holds " + std::to_string(f->tensors().size()) + " tensors (" + names +
                                 "); say which one is the steering vector");
            }
            name = f->tensors().begin()->first;
        }
        if (!f->has(name)) failIn(path, "has no tensor '" + name + "'");
        return asVector(f->load(name), path + ": tensor '" + name + "'");
    }
    failIn(path, "a steering vector must be a .npy or .safetensors file");
}

at::Tensor meanDifferenceVector(const Transformer& model, const std::vector<long>& promptA,
                                const std::vector<long>& promptB, const std::string& hook, long skipFirst) {
    c10::InferenceMode guard;
    hookWidth(model, hook, "steering vector");
    auto meanAt = [&](const std::vector<long>& ids, const char* which) {
        if (static_cast<long>(ids.size()) <= skipFirst)
            throw Error(std::string("steering vector: prompt ") + which + " has no token after the first " +
                        std::to_string(skipFirst));
        Hooks hooks;
        hooks.cache(hook);
        ActivationCache cache;
        RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        o.lastPositionOnly = true;
        model.forward(at::tensor(ids, at::kLong).unsqueeze(0), o);
        at::Tensor a = cache.at(hook)[0];
        a = a.reshape({a.size(0), -1}).to(at::kDouble);
        return a.narrow(0, skipFirst, a.size(0) - skipFirst).mean(0);
    };
    return (meanAt(promptA, "A") - meanAt(promptB, "B")).to(at::kFloat);
}

}  // namespace cs
