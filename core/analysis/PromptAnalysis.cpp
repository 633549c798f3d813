#include "analysis/PromptAnalysis.h"

#include "model/HookPoints.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "steer/Steering.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace cs {

namespace {

using Clock = std::chrono::steady_clock;

// Token texts by id, asked for once each: the same few hundred ids recur across layers and
// positions, and a SentencePiece piece costs a decode call.
class TokenTexts {
public:
    explicit TokenTexts(const Tokenizer& tok) : tok_(tok) {}
    const std::string& operator()(int id) {
        auto it = texts_.find(id);
        if (it == texts_.end()) it = texts_.emplace(id, tok_.tokenText(id)).first;
        return it->second;
    }

private:
    const Tokenizer& tok_;
    std::unordered_map<int, std::string> texts_;
};

// logits [T, V] and their log-normaliser [T] -> per position the top k as plain structs. Ranks on
// logits and exponentiates only the k kept: no [T, V] probability tensor is made.
std::vector<std::vector<TokenProbability>> topTokens(const at::Tensor& logits, const at::Tensor& logNorm, int k,
                                                     TokenTexts& tok) {
    auto [val, idx] = logits.topk(std::min<long>(k, logits.size(-1)), -1);
    val = (val - logNorm.unsqueeze(-1)).exp_().contiguous();
    idx = idx.contiguous();
    const float* v = val.data_ptr<float>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    const long T = val.size(0), K = val.size(1);
    std::vector<std::vector<TokenProbability>> out(T);
    for (long t = 0; t < T; ++t)
        for (long j = 0; j < K; ++j) {
            const int id = static_cast<int>(ix[t * K + j]);
            out[t].push_back({id, tok(id), v[t * K + j]});
        }
    return out;
}

}  // namespace

namespace {

SaeFeatureTrack featureTrack(const AnalysisSae& s, const at::Tensor& activation) {
    SaeFeatureTrack track;
    const SaeConfig& c = s.sae->config();
    track.id = s.id;
    track.hook = c.hookName;
    track.layer = layerOfHook(c.hookName);
    track.dSae = c.dSae;
    at::Tensor x = activation[0];
    x = x.reshape({x.size(0), -1});  // [T, d_in]
    const Sae::SparseCode code = s.sae->encodeSparse(x);
    const long T = x.size(0);
    track.byPosition.resize(T);
    for (long t = 0; t < T; ++t) {
        auto& row = track.byPosition[t];
        for (int64_t i = code.rowStart[t]; i < code.rowStart[t + 1]; ++i) row.emplace_back(code.index[i], code.value[i]);
        std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) {
            return a.second != b.second ? a.second > b.second : a.first < b.first;
        });
    }
    return track;
}

// Fills `a` stage by stage; `publish(stage)` is called after each earlier stage with `a` as far as
// it has got.
void analyze(PromptAnalysis& a, const Transformer& model, const Tokenizer& tok, const std::vector<int>& ids,
             int promptLength, const AnalysisOptions& opt, const std::function<void(AnalysisStage)>& publish) {
    if (ids.empty()) throw Error("nothing to analyse: the token sequence is empty");
    c10::InferenceMode guard;
    const auto t0 = Clock::now();
    const auto& cfg = model.config();
    const long T = static_cast<long>(ids.size());
    if (T > cfg.nCtx)
        throw Error("the sequence has " + std::to_string(T) + " tokens; the model's context is " +
                    std::to_string(cfg.nCtx));
    a.ids = ids;
    a.promptLength = promptLength;
    a.layers = cfg.nLayers;
    a.heads = cfg.nHeads;
    TokenTexts texts(tok);
    for (int id : ids) a.texts.push_back(texts(id));
    if (publish) publish(AnalysisStage::Tokens);

    Hooks hooks;
    for (const auto& s : opt.saes) hooks.cache(s.sae->config().hookName);
    hooks.cache("blocks.0.hook_resid_pre");
    for (int l = 0; l < cfg.nLayers; ++l) {
        hooks.cache("blocks." + std::to_string(l) + ".hook_resid_post");
        hooks.cache("blocks." + std::to_string(l) + ".attn.hook_pattern");
    }
    ActivationCache cache;
    RunOptions o;
    o.hooks = &hooks;
    o.cache = &cache;
    at::Tensor input = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
    if (opt.steering) {
        // Hooks::fire stores an activation after its functions ran: the views read it as steered.
        opt.steering->setPromptLength(promptLength);
        opt.steering->install(hooks);
        opt.steering->beforeForward(input, 0);
    }
    at::Tensor logits = model.forward(input, o)[0];  // [T, V]
    a.modelSeconds = std::chrono::duration<double>(Clock::now() - t0).count();

    a.next = topTokens(logits, at::logsumexp(logits, -1), opt.topK, texts);
    {
        auto patterns = std::make_shared<std::vector<float>>();
        patterns->reserve(static_cast<size_t>(cfg.nLayers) * cfg.nHeads * T * T);
        for (int l = 0; l < cfg.nLayers; ++l) {
            at::Tensor p = cache.at("blocks." + std::to_string(l) + ".attn.hook_pattern")[0].contiguous();  // [H, T, T]
            patterns->insert(patterns->end(), p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
        }
        a.attention = std::move(patterns);
    }
    for (const auto& s : opt.saes) a.features.push_back(featureTrack(s, cache.at(s.sae->config().hookName)));
    if (publish) publish(AnalysisStage::Forward);

    // Logit lens: every layer's residual through the final norm and unembedding, in one batch.
    std::vector<at::Tensor> rows{cache.at("blocks.0.hook_resid_pre")[0]};
    a.lensRows.push_back("embed");
    for (int l = 0; l < cfg.nLayers; ++l) {
        rows.push_back(cache.at("blocks." + std::to_string(l) + ".hook_resid_post")[0]);
        a.lensRows.push_back("L" + std::to_string(l));
    }
    at::Tensor normed = model.finalNorm(at::stack(rows)).contiguous();              // [R, T, d]
    at::Tensor logitsLens = model.unembedNormed(normed);                           // [R, T, V]
    at::Tensor logNorm = at::logsumexp(logitsLens, -1).contiguous();               // [R, T]
    a.dModel = static_cast<int>(cfg.dModel);
    a.lensNormed.assign(normed.data_ptr<float>(), normed.data_ptr<float>() + normed.numel());
    a.lensLogNormalizer.assign(logNorm.data_ptr<float>(), logNorm.data_ptr<float>() + logNorm.numel());
    at::Tensor target = input[0].narrow(0, 1, T - 1);
    for (long r = 0; r < logitsLens.size(0); ++r) {
        a.lensTop.push_back(topTokens(logitsLens[r], logNorm[r], opt.topK, texts));
        std::vector<float> p(T, std::numeric_limits<float>::quiet_NaN());
        if (T > 1) {
            at::Tensor got = (logitsLens[r].narrow(0, 0, T - 1).gather(1, target.unsqueeze(1)).squeeze(1) -
                              logNorm[r].narrow(0, 0, T - 1))
                                 .exp_()
                                 .contiguous();
            std::copy(got.data_ptr<float>(), got.data_ptr<float>() + T - 1, p.begin());
        }
        a.lensNextProbability.push_back(std::move(p));
    }
    a.totalSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

float SaeFeatureTrack::activation(int t, int feature) const {
    if (t < 0 || t >= static_cast<int>(byPosition.size())) return 0;
    for (const auto& [i, v] : byPosition[t])
        if (i == feature) return v;
    return 0;
}

std::vector<float> SaeFeatureTrack::series(int feature) const {
    std::vector<float> out(byPosition.size(), 0.0f);
    for (size_t t = 0; t < byPosition.size(); ++t) out[t] = activation(static_cast<int>(t), feature);
    return out;
}

PromptAnalysis analyzeTokens(const Transformer& model, const Tokenizer& tok, const std::vector<int>& ids,
                             int promptLength, const AnalysisOptions& opt) {
    PromptAnalysis a;
    analyze(a, model, tok, ids, promptLength, opt, nullptr);
    return a;
}

std::shared_ptr<const PromptAnalysis> analyzeTokensInStages(const Transformer& model, const Tokenizer& tok,
                                                            const std::vector<int>& ids, int promptLength,
                                                            const AnalysisStageCallback& onStage,
                                                            const AnalysisOptions& opt) {
    auto a = std::make_shared<PromptAnalysis>();
    std::function<void(AnalysisStage)> publish;
    if (onStage)
        publish = [&](AnalysisStage stage) {
            auto snapshot = std::make_shared<PromptAnalysis>(*a);
            snapshot->stage = stage;
            onStage(std::move(snapshot));
        };
    analyze(*a, model, tok, ids, promptLength, opt, publish);
    a->stage = AnalysisStage::Complete;
    if (onStage) onStage(a);
    return a;
}

std::vector<std::vector<float>> lensProbabilities(const Transformer& model, const PromptAnalysis& a, int tokenId) {
    const auto& cfg = model.config();
    if (tokenId < 0 || tokenId >= cfg.vocabSize)
        throw Error("token id " + std::to_string(tokenId) + " is out of range for a vocabulary of " +
                    std::to_string(cfg.vocabSize));
    const long R = static_cast<long>(a.lensRows.size()), T = a.length(), d = a.dModel;
    if (d != cfg.dModel || static_cast<long>(a.lensNormed.size()) != R * T * d ||
        static_cast<long>(a.lensLogNormalizer.size()) != R * T)
        throw Error("this analysis was not made with this model (or holds no logit-lens data)");
    c10::InferenceMode guard;
    at::Tensor column = model.weights().unembed.select(1, tokenId).to(at::kFloat).contiguous();  // [d]
    const float* u = column.data_ptr<float>();
    std::vector<std::vector<float>> out(R, std::vector<float>(T));
    for (long r = 0; r < R; ++r)
        for (long t = 0; t < T; ++t) {
            const float* x = a.lensNormed.data() + (r * T + t) * d;
            double logit = 0;
            for (long i = 0; i < d; ++i) logit += static_cast<double>(x[i]) * u[i];
            out[r][t] = static_cast<float>(std::exp(logit - a.lensLogNormalizer[r * T + t]));
        }
    return out;
}

}  // namespace cs
