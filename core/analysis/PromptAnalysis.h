#pragma once
// Everything the first GUI views show about one token sequence, from a single forward pass:
// next-token predictions at every position, the attention patterns, and the logit lens (each
// layer's residual stream read through the model's own final norm and unembedding). Plain C++
// types, so the UI layer copies nothing from LibTorch. The two parts whose size grows with the
// sequence and the vocabulary are made where they are looked at: the lens' cells per position
// (LogitLens), and on long sequences each head's pattern (AttentionPatterns); both fill
// themselves in on whichever thread asks, from what the forward pass kept.
#include "analysis/AttentionPatterns.h"
#include "analysis/LogitLens.h"
#include "analysis/TokenProbability.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;
class Steering;

// An SAE or transcoder whose features the analysis reads from the same forward pass.
struct AnalysisSae {
    std::string id;  // the name views show (the SAE folder's name)
    std::shared_ptr<const Sae> sae;
};

struct AnalysisOptions {
    int topK = 10;  // predictions kept per position (and per layer for the lens)
    // Every head's pattern is kept while layers x heads x T^2 floats fit this; past it, each
    // layer's queries and keys are, and a head's pattern is computed when asked for.
    size_t attentionHoldBytes = size_t(64) << 20;
    // The whole lens is computed with the run when it costs at most this many multiply-adds
    // (rows x vocabulary x d_model x positions): on a small model that is cheaper than the second
    // hand-off a view's request would cost (the demo's 128 positions: 1.7e8). Else cells are
    // computed when asked for (GPT-2 small: 5e8 a position).
    double lensUpFrontMacs = 2.5e8;
    // Compute every lens cell during the analysis, in one batch, whatever it costs (what the
    // analysis did before the lens was filled on demand; kept to measure against).
    bool eagerLens = false;
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
    Forward,   // + next, the attention patterns and the features
    Complete,  // + the logit lens (its residuals; cells are computed when asked for)
};

struct PromptAnalysis {
    AnalysisStage stage = AnalysisStage::Complete;
    std::vector<int> ids;             // the whole sequence: prompt (with BOS if the model uses one) + generated
    std::vector<std::string> texts;   // each token's text as the tokenizer spells it
    int promptLength = 0;             // ids[0, promptLength) came from the prompt
    int layers = 0, heads = 0;
    // next[t]: the model's top predictions for the token after position t, descending.
    std::vector<std::vector<TokenProbability>> next;
    // The attention patterns. Shared and immutable (heads computed on demand are kept inside,
    // under a lock): the snapshots of a staged analysis hold the same object.
    std::shared_ptr<const AttentionPatterns> attention;
    // Features of every SAE in AnalysisOptions::saes, in the order given (from the Forward stage on).
    std::vector<SaeFeatureTrack> features;
    // Logit lens over layers+1 rows: row 0 reads the embeddings (hook_resid_pre of block 0), row
    // r > 0 reads blocks.(r-1).hook_resid_post; the last row is the model's own output. Its cells
    // are computed per position when asked for (LogitLens::compute), on any thread.
    std::shared_ptr<const LogitLens> lens;
    double modelSeconds = 0;   // the forward pass alone
    double totalSeconds = 0;   // forward pass plus everything derived here

    int length() const { return static_cast<int>(ids.size()); }
    bool hasAttention() const { return attention != nullptr; }
    bool hasLens() const { return lens != nullptr; }
    // One weight of one head's pattern; computes the head when it is not held (see
    // AttentionPatterns::head): for a whole pattern, take attention->head() once.
    float attentionWeight(int layer, int head, int query, int key) const {
        return attention->head(layer, head).weight(query, key);
    }
    // Bytes the analysis holds in its attention patterns and lens (the per-token lists aside).
    size_t heldBytes() const {
        return (attention ? attention->heldBytes() : 0) + (lens ? lens->heldBytes() : 0);
    }
};

// ids must be non-empty and fit the model's context; throws cs::Error otherwise. The analysis
// keeps `model` and `tok` (shared) for its logit lens, which fills itself in later.
PromptAnalysis analyzeTokens(std::shared_ptr<const Transformer> model, std::shared_ptr<const Tokenizer> tok,
                             const std::vector<int>& ids, int promptLength, const AnalysisOptions& opt = {});

// The same analysis, handed out as it is made: `onStage` gets an immutable snapshot after the
// tokens (before the model runs), after the forward pass, and the complete analysis, which is
// also returned. A viewer shows the tokens while the model runs. Snapshots share the attention
// patterns; each costs a copy of the per-token data only. `onStage` runs on the calling thread.
using AnalysisStageCallback = std::function<void(std::shared_ptr<const PromptAnalysis>)>;
std::shared_ptr<const PromptAnalysis> analyzeTokensInStages(std::shared_ptr<const Transformer> model,
                                                            std::shared_ptr<const Tokenizer> tok,
                                                            const std::vector<int>& ids, int promptLength,
                                                            const AnalysisStageCallback& onStage,
                                                            const AnalysisOptions& opt = {});

// The logit lens for one chosen token at every row and position ([row][t]), the whole lens:
// positions nobody has asked for yet are computed first (LogitLens::probabilitiesOf with
// Fill::ComputedOnly is the cheap read for a view). `model` must be the model that made `a` or a
// copy of it; throws cs::Error on an id outside the vocabulary, an analysis of another model, or
// one without a lens.
std::vector<std::vector<float>> lensProbabilities(const Transformer& model, const PromptAnalysis& a, int tokenId);

}  // namespace cs
