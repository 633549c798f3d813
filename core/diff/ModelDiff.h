#pragma once
// Two checkpoints of one architecture (a base model A and a fine-tuned B) run on the same token
// sequences and compared three ways: per token, how far their next-token distributions moved
// (KL(P_A || P_B)); per layer, how far the residual streams moved (cosine and norm ratio at
// blocks.L.hook_resid_post); per SAE feature (the same SAE read on both models), which features'
// activations changed most. Plain C++ types: the CLI's JSON and the GUI's Diff dock read these.
#include "analysis/PromptAnalysis.h"  // AnalysisSae

#include <functional>
#include <string>
#include <vector>

namespace cs {

class Transformer;

struct DiffRequest {
    std::vector<std::vector<int>> sequences;  // token ids (a prompt, or a corpus' windows)
    std::vector<AnalysisSae> saes;            // read on both models, at each SAE's input hook
    int topFeatures = 20;                     // features kept, over all SAEs, ranked by |meanB - meanA|
    // Asked after each sequence with (done, total); false cancels (throws cs::Error "cancelled").
    std::function<bool(int done, int total)> progress;
};

// KL(P_A || P_B) in nats of the next-token distributions after that position.
struct TokenKl {
    int id = 0;     // the token at this position
    float kl = 0;
};

// blocks.L.hook_resid_post, mean over all tokens of cos(a, b) and |b| / |a|.
struct LayerShift {
    int layer = 0;
    float cosine = 0;
    float normRatio = 0;
};

struct FeatureShift {
    std::string saeId;   // AnalysisSae::id
    long index = 0;      // feature index in that SAE
    double meanA = 0, meanB = 0;      // mean activation over all tokens
    float maxA = 0, maxB = 0;         // largest activation over all tokens
    double firingA = 0, firingB = 0;  // fraction of tokens where it is active (> 0)
};

struct ModelDiff {
    std::vector<std::vector<TokenKl>> tokens;  // per sequence, per position
    std::vector<LayerShift> layers;            // one per block, in order
    std::vector<FeatureShift> features;        // ranked by |meanB - meanA|, largest first
    long tokenCount = 0;                       // positions over all sequences
    double meanKl = 0;                         // mean of every TokenKl::kl
    double maxKl = 0;                          // largest TokenKl::kl
};

// Throws cs::Error when the two models differ in architecture or shape (naming the field), when a
// sequence is empty or does not fit the context, when an SAE's hook is missing, or "cancelled".
ModelDiff diffModels(const Transformer& a, const Transformer& b, const DiffRequest& request);

// Checks that A and B share architecture and shape; throws cs::Error naming the first field that
// differs ("model-b: n_layer is 6, model A has 4").
void checkSameArchitecture(const Transformer& a, const Transformer& b);

}  // namespace cs
