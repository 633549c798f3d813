#include "store/FeatureSearch.h"

#include "model/Transformer.h"
#include "sae/Sae.h"
#include "store/FeatureStore.h"
#include "store/IndexCorpus.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace cs {

namespace {

// Each SAE's per-feature maximum over the text's tokens (BOS excluded): one [d_sae] tensor per SAE.
std::vector<at::Tensor> maxOverText(const Transformer& model, const Tokenizer& tok, const std::vector<LiveSae>& saes,
                                    const std::string& text) {
    std::vector<int> ids = tok.encodePrompt(text);
    if (ids.empty()) throw Error("search: the text has no tokens");
    if (static_cast<long>(ids.size()) > model.config().nCtx) ids.resize(model.config().nCtx);
    Hooks hooks;
    for (const auto& s : saes) hooks.cache(s.sae->config().hookName);
    ActivationCache cache;
    RunOptions o;
    o.hooks = &hooks;
    o.cache = &cache;
    o.lastPositionOnly = true;
    std::vector<int64_t> ids64(ids.begin(), ids.end());
    at::Tensor input = at::tensor(ids64, at::kLong).unsqueeze(0);
    model.forward(input, o);
    at::Tensor keep = (input[0] != tok.bosId()).to(at::kFloat).unsqueeze(1);  // [T, 1]
    std::vector<at::Tensor> out;
    for (const auto& s : saes) {
        at::Tensor x = cache.at(s.sae->config().hookName)[0];
        x = x.reshape({x.size(0), -1});
        out.push_back(std::get<0>((s.sae->encode(x) * keep).max(0)).contiguous());
    }
    return out;
}

std::vector<FeatureHit> best(std::vector<FeatureHit> hits, int top, const FeatureStore* store) {
    const size_t k = std::min<size_t>(static_cast<size_t>(std::max(top, 0)), hits.size());
    std::partial_sort(hits.begin(), hits.begin() + k, hits.end(), [](const FeatureHit& a, const FeatureHit& b) {
        return a.score != b.score ? a.score > b.score : (a.sae != b.sae ? a.sae < b.sae : a.index < b.index);
    });
    hits.resize(k);
    if (store) {
        const auto known = store->saes();
        for (auto& h : hits)
            if (std::any_of(known.begin(), known.end(), [&](const StoredSae& s) { return s.id == h.sae; }))
                h.label = store->label(h.sae, h.index, &h.labelIsAuto);
    }
    return hits;
}

}  // namespace

std::vector<FeatureHit> searchPassage(const Transformer& model, const Tokenizer& tok, const std::vector<LiveSae>& saes,
                                      const std::string& text, int top, const FeatureStore* store) {
    c10::InferenceMode guard;
    const auto maxima = maxOverText(model, tok, saes, text);
    std::vector<FeatureHit> hits;
    for (size_t s = 0; s < saes.size(); ++s) {
        std::vector<float> indexedMax;
        if (store) {
            const auto known = store->saes();
            if (std::any_of(known.begin(), known.end(), [&](const StoredSae& e) { return e.id == saes[s].id; }))
                for (const auto& f : store->summaries(saes[s].id)) indexedMax.push_back(f.maxActivation);
        }
        const float* m = maxima[s].data_ptr<float>();
        for (long f = 0; f < maxima[s].numel(); ++f) {
            if (!(m[f] > 0)) continue;
            FeatureHit h;
            h.sae = saes[s].id;
            h.index = f;
            h.score = m[f];
            h.a = m[f];
            h.b = f < static_cast<long>(indexedMax.size()) && indexedMax[f] > 0 ? m[f] / indexedMax[f] : 0.0;
            hits.push_back(h);
        }
    }
    return best(std::move(hits), top, store);
}

std::vector<FeatureHit> searchContrast(const Transformer& model, const Tokenizer& tok, const std::vector<LiveSae>& saes,
                                       const std::vector<std::string>& promptsA, const std::vector<std::string>& promptsB,
                                       int top, const FeatureStore* store) {
    if (promptsA.empty() || promptsB.empty()) throw Error("search --contrast: both prompt sets need at least one prompt");
    c10::InferenceMode guard;
    auto meanOf = [&](const std::vector<std::string>& prompts) {
        std::vector<at::Tensor> sum;
        for (const auto& p : prompts) {
            auto m = maxOverText(model, tok, saes, p);
            if (sum.empty()) sum = m;
            else
                for (size_t s = 0; s < m.size(); ++s) sum[s] = sum[s] + m[s];
        }
        for (auto& t : sum) t = (t / static_cast<double>(prompts.size())).contiguous();
        return sum;
    };
    const auto a = meanOf(promptsA), b = meanOf(promptsB);
    std::vector<FeatureHit> hits;
    for (size_t s = 0; s < saes.size(); ++s) {
        const float* pa = a[s].data_ptr<float>();
        const float* pb = b[s].data_ptr<float>();
        for (long f = 0; f < a[s].numel(); ++f) {
            if (pa[f] == 0 && pb[f] == 0) continue;
            FeatureHit h;
            h.sae = saes[s].id;
            h.index = f;
            h.a = pa[f];
            h.b = pb[f];
            h.score = static_cast<double>(pa[f]) - pb[f];
            hits.push_back(h);
        }
    }
    return best(std::move(hits), top, store);
}

std::vector<std::string> readPromptFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failIn(path, "cannot read the prompt file");
    std::vector<std::string> out;
    std::string line;
    long n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (firstInvalidUtf8(line) >= 0) failIn(path + ":" + std::to_string(n), "not UTF-8");
        if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(line);
    }
    if (out.empty()) failIn(path, "no prompt in the file (one prompt per line)");
    return out;
}

}  // namespace cs
