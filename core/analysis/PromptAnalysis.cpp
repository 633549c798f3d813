#include "analysis/PromptAnalysis.h"

#include "analysis/AttentionCapture.h"
#include "analysis/TokenTexts.h"

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

namespace cs {

namespace {

using Clock = std::chrono::steady_clock;

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
void analyze(PromptAnalysis& a, const std::shared_ptr<const Transformer>& modelPtr,
             const std::shared_ptr<const Tokenizer>& tok, const std::vector<int>& ids, int promptLength,
             const AnalysisOptions& opt, const std::function<void(AnalysisStage)>& publish) {
    if (!modelPtr || !tok) throw Error("an analysis needs a model and its tokenizer");
    if (ids.empty()) throw Error("nothing to analyse: the token sequence is empty");
    const Transformer& model = *modelPtr;
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
    auto texts = std::make_shared<TokenTexts>(tok);
    for (int id : ids) a.texts.push_back((*texts)(id));
    if (publish) publish(AnalysisStage::Tokens);

    Hooks hooks;
    for (const auto& s : opt.saes) hooks.cache(s.sae->config().hookName);
    hooks.cache("blocks.0.hook_resid_pre");
    for (int l = 0; l < cfg.nLayers; ++l) hooks.cache("blocks." + std::to_string(l) + ".hook_resid_post");
    const double patternBytes = 4.0 * cfg.nLayers * cfg.nHeads * static_cast<double>(T) * static_cast<double>(T);
    AttentionCapture attention(cfg, T, patternBytes <= static_cast<double>(opt.attentionHoldBytes));
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
    attention.install(hooks);  // after the steering's hooks: the patterns the steered pass used
    // The model's own output is the lens' last row: unless something reads the final norm's hooks
    // (or the eager analysis is measured as it was), the pass stops after the last block and the
    // next-token predictions are unembedded a few positions at a time, so no [T, vocab] logits
    // (200 MB at 1024 tokens of a 50k vocabulary, twice over with the softmax normaliser) exist.
    const bool headHooked = hooks.wants("ln_final.hook_scale") || hooks.wants("ln_final.hook_normalized");
    const bool ownHead = !opt.eagerLens && !headHooked;
    if (ownHead) o.lastLayer = cfg.nLayers - 1;
    at::Tensor logits = model.forward(input, o);
    a.modelSeconds = std::chrono::duration<double>(Clock::now() - t0).count();

    // Logit lens: every layer's residual through the final norm, kept; the unembedding waits
    // until a position is asked for.
    std::vector<at::Tensor> rows{cache.at("blocks.0.hook_resid_pre")[0]};
    std::vector<std::string> rowNames{"embed"};
    for (int l = 0; l < cfg.nLayers; ++l) {
        rows.push_back(cache.at("blocks." + std::to_string(l) + ".hook_resid_post")[0]);
        rowNames.push_back("L" + std::to_string(l));
    }
    at::Tensor normed = model.finalNorm(at::stack(rows));  // [R, T, d]
    rows.clear();

    if (ownHead) {
        const at::Tensor last = normed[cfg.nLayers];  // [T, d]
        constexpr long kPositionsPerBatch = 64;
        for (long from = 0; from < T; from += kPositionsPerBatch) {
            at::Tensor part = model.softcapLogits(model.unembedNormed(last.narrow(0, from, std::min(kPositionsPerBatch, T - from))))
                                  .to(at::kFloat);
            for (auto& top : topTokens(part, at::logsumexp(part, -1), opt.topK, *texts)) a.next.push_back(std::move(top));
        }
    } else {
        logits = logits[0];  // [T, V]
        a.next = topTokens(logits, at::logsumexp(logits, -1), opt.topK, *texts);
    }
    logits = at::Tensor();
    a.attention = attention.finish();
    for (const auto& s : opt.saes) a.features.push_back(featureTrack(s, cache.at(s.sae->config().hookName)));
    cache.clear();
    if (publish) publish(AnalysisStage::Forward);

    auto lens = std::make_shared<const LogitLens>(modelPtr, texts, normed, ids, std::move(rowNames), opt.topK);
    const double lensMacs = static_cast<double>(lens->rows()) * cfg.vocabSize * cfg.dModel * static_cast<double>(T);
    if (opt.eagerLens || lensMacs <= opt.lensUpFrontMacs) lens->computeAll(static_cast<int>(T));
    a.lens = std::move(lens);
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

PromptAnalysis analyzeTokens(std::shared_ptr<const Transformer> model, std::shared_ptr<const Tokenizer> tok,
                             const std::vector<int>& ids, int promptLength, const AnalysisOptions& opt) {
    PromptAnalysis a;
    analyze(a, model, tok, ids, promptLength, opt, nullptr);
    return a;
}

std::shared_ptr<const PromptAnalysis> analyzeTokensInStages(std::shared_ptr<const Transformer> model,
                                                            std::shared_ptr<const Tokenizer> tok,
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
    if (!a.lens) throw Error("this analysis holds no logit lens (yet)");
    return a.lens->probabilitiesOf(model, tokenId, LogitLens::Fill::Everything);
}

}  // namespace cs
