#pragma once
// Everything the first GUI views show about one token sequence, from a single forward pass:
// next-token predictions at every position, every attention pattern, and the logit lens (each
// layer's residual stream read through the model's own final norm and unembedding). Plain C++
// types, so the UI layer copies nothing from LibTorch and a figure export needs no model.
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;
class Steering;

struct TokenProbability {
    int id = 0;
    std::string text;
    float probability = 0;
};

// An SAE or transcoder whose features the analysis reads from the same forward pass.
struct AnalysisSae {
    std::string id;  // the name views show (the SAE folder's name)
    std::shared_ptr<const Sae> sae;
};

struct AnalysisOptions {
    int topK = 10;  // predictions kept per position (and per layer for the lens)
    std::vector<AnalysisSae> saes;  // read at their input hooks during the one forward pass
    // Analyse the sequence as a steered run saw it: the steering's hooks are installed on the one
    // forward pass (features, attention and the lens all read the steered activations). Not owned;
    // used on the calling thread only.
    Steering* steering = nullptr;
};

// One SAE's features over the whole sequence, sparse: a click on a token and a sparkline over the
// text both read this, so neither needs another model run.
struct SaeFeatureTrack {
    std::string id;
    std::string hook;   // input hook
    int layer = -1;     // of the input hook; -1 outside the blocks
    long dSae = 0;
    // byPosition[t]: every feature active at t as (index, activation), highest activation first.
    std::vector<std::vector<std::pair<int, float>>> byPosition;
    float activation(int t, int feature) const;
    std::vector<float> series(int feature) const;  // activation at every position
};

// How far an analysis has got; a viewer shows each part as soon as it is there (see
// analyzeTokensInStages).
enum class AnalysisStage {
    Tokens,    // ids, texts, promptLength, layers, heads: before the model runs
    Forward,   // + next and the attention patterns
    Complete,  // + the logit lens
};

struct PromptAnalysis {
    AnalysisStage stage = AnalysisStage::Complete;
    std::vector<int> ids;             // the whole sequence: prompt (with BOS if the model uses one) + generated
    std::vector<std::string> texts;   // each token's text as the tokenizer spells it
    int promptLength = 0;             // ids[0, promptLength) came from the prompt
    int layers = 0, heads = 0;
    // next[t]: the model's top predictions for the token after position t, descending.
    std::vector<std::vector<TokenProbability>> next;
    // Every head's pattern, [layer][head][query][key] contiguous. Shared, immutable storage: the
    // snapshots of a staged analysis hold the same patterns without copying them.
    std::shared_ptr<const std::vector<float>> attention;
    // Features of every SAE in AnalysisOptions::saes, in the order given (from the Forward stage on).
    std::vector<SaeFeatureTrack> features;
    // Logit lens over layers+1 rows: row 0 reads the embeddings (hook_resid_pre of block 0), row
    // r > 0 reads blocks.(r-1).hook_resid_post; the last row is the model's own output.
    std::vector<std::string> lensRows;                          // "embed", "L0", ...
    std::vector<std::vector<std::vector<TokenProbability>>> lensTop;  // [row][t][k]
    std::vector<std::vector<float>> lensNextProbability;        // [row][t]: P(ids[t+1]); NaN at the last t
    // Kept so any token can be read through the lens later (lensProbabilities) without another
    // forward pass: each row's residual after the final norm, [row][t][dModel] row-major, and the
    // log of each lens softmax's normaliser, [row][t].
    int dModel = 0;
    std::vector<float> lensNormed;
    std::vector<float> lensLogNormalizer;
    double modelSeconds = 0;   // the forward pass alone
    double totalSeconds = 0;   // forward pass plus everything derived here

    int length() const { return static_cast<int>(ids.size()); }
    bool hasAttention() const { return attention != nullptr; }
    bool hasLens() const { return !lensRows.empty(); }
    // One head's T x T pattern, row = query position, column = key position.
    const float* attentionPattern(int layer, int head) const {
        const size_t T = ids.size();
        return attention->data() + (static_cast<size_t>(layer) * heads + head) * T * T;
    }
    float attentionWeight(int layer, int head, int query, int key) const {
        return attentionPattern(layer, head)[static_cast<size_t>(query) * ids.size() + key];
    }
};

// ids must be non-empty and fit the model's context; throws cs::Error otherwise.
PromptAnalysis analyzeTokens(const Transformer& model, const Tokenizer& tok, const std::vector<int>& ids,
                             int promptLength, const AnalysisOptions& opt = {});

// The same analysis, handed out as it is made: `onStage` gets an immutable snapshot after the
// tokens (before the model runs), after the forward pass, and the complete analysis, which is
// also returned. A viewer shows the tokens while the model runs and the attention while the lens
// is computed (the lens is the slow part on a large vocabulary). Snapshots share the attention
// patterns; each costs a copy of the per-token data only. `onStage` runs on the calling thread.
using AnalysisStageCallback = std::function<void(std::shared_ptr<const PromptAnalysis>)>;
std::shared_ptr<const PromptAnalysis> analyzeTokensInStages(const Transformer& model, const Tokenizer& tok,
                                                            const std::vector<int>& ids, int promptLength,
                                                            const AnalysisStageCallback& onStage,
                                                            const AnalysisOptions& opt = {});

// The logit lens for one chosen token: [row][t] = the probability the lens row gives `tokenId` at
// position t. Costs rows x positions x d_model multiply-adds, so a view can call it on the GUI
// thread. `model` must be the one that made `a`; throws cs::Error on an id outside the
// vocabulary or an analysis of another model.
std::vector<std::vector<float>> lensProbabilities(const Transformer& model, const PromptAnalysis& a, int tokenId);

}  // namespace cs
