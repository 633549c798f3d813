#pragma once
// Activation patching: which activations carry the difference between a clean and a corrupted
// prompt. Each cell of the result is one patched run: the corrupted run with one activation (a
// site at one layer, position or head) replaced by the clean run's (Denoise), or the reverse
// (Noise), scored by a metric normalised so the clean run scores 1 and the corrupted run 0.
//
// Sites (TransformerLens hook names; docs/patching.md has the exact semantics):
//   Resid:           blocks.L.hook_resid_pre for L = 0..n_layers-1, then the last row is
//                    blocks.{n-1}.hook_resid_post (labelled "post"); rows x positions
//   AttnOut, MlpOut: blocks.L.hook_attn_out, blocks.L.hook_mlp_out; layers x positions
//   Heads:           blocks.L.attn.hook_z, one head's slice at every position; layers x heads
//   HeadsByPosition: blocks.L.attn.hook_z, one head at one position; (layer.head) x positions
//   Features:        at the SAE's output hook, x += (f_src - f_dst) * W_dec[f] at one position
//                    (one feature set to its value in the source run); features x positions
// Many patched runs go through one forward pass as a batch: row b of the batch is the target
// prompt with patch b applied by a hook; the source run's activations are cached once, and a
// batch starts at the first position it patches (earlier keys and values: the target run's).
//
// Normalisation: value = (m(patched) - m(corrupted)) / (m(clean) - m(corrupted)) for LogitDiff
// and Probability in both directions (Noise cells start near 1 and fall where a patch matters).
// KL: m = KL(P_clean || P_run) at the last position; value = 1 - m(patched) / m(corrupted).
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Sae;
class Transformer;

enum class PatchSite { Resid, AttnOut, MlpOut, Heads, HeadsByPosition, Features };
// Denoise: clean activations patched into the corrupted run (default). Noise: corrupted
// activations patched into the clean run.
enum class PatchDirection { Denoise, Noise };
// LogitDiff: logit[answer] - logit[wrong] at the last position. Probability: softmax[answer] at
// the last position. KL: KL(P_clean || P_run) at the last position, in nats.
enum class PatchMetric { LogitDiff, Probability, KL };

struct PatchRequest {
    std::vector<int> cleanIds, corruptedIds;  // same length (cs::Error naming both lengths otherwise)
    int answerId = -1;  // LogitDiff and Probability
    int wrongId = -1;   // LogitDiff
    PatchMetric metric = PatchMetric::LogitDiff;
    PatchSite site = PatchSite::Resid;
    PatchDirection direction = PatchDirection::Denoise;
    std::shared_ptr<const Sae> sae;  // Features: the SAE whose features are patched (at its hook)
    std::string saeId;               // Features: names the SAE in row labels ("res-L1 #123")
    int maxFeatures = 32;            // Features: rows kept (largest |effect| first)
    int batch = 0;                   // patched runs per forward batch; 0: automatic
    // A batch of runs that patch nothing before position p starts at p, reading the earlier
    // positions' keys and values from the target run. false: every run recomputes the whole
    // prompt (bench_patching's baseline: one plain patched forward per cell).
    bool reusePrefix = true;
    // Optional, one per position: the position columns' labels (callers pass token texts);
    // empty: "0", "1", ...
    std::vector<std::string> positionLabels;
    // Called between batches with (done, total) patched runs; returning false cancels:
    // runActivationPatching then throws a cs::Error saying "patching: cancelled".
    std::function<bool(int, int)> progress;
};

// The result: a grid of the normalised metric, plain data (circuit-tracer style).
struct PatchGrid {
    PatchSite site = PatchSite::Resid;
    PatchDirection direction = PatchDirection::Denoise;
    PatchMetric metric = PatchMetric::LogitDiff;
    int rows = 0, columns = 0;
    std::vector<float> values;   // [row * columns + col]: normalised, 1 = clean, 0 = corrupted
    std::vector<double> raw;     // the metric before normalising, same layout
    std::string rowAxis;         // "layer", "layer.head" or "feature"
    std::string columnAxis;      // "position" or "head"
    // Row labels: "L0".. ("post" for the final resid_post row), "L0.H3"..,
    // "res-L1 #123"; column labels: "0".. for positions (callers show token texts) or "H0"..
    std::vector<std::string> rowLabels, columnLabels;
    std::vector<int> rowLayer;   // the layer of each row (for a click to open that layer)
    std::vector<int> rowHead;    // -1 where rows are not heads
    std::vector<long> rowFeature;// -1 where rows are not features
    std::vector<int> columnPosition;  // -1 where columns are not positions
    double cleanValue = 0, corruptedValue = 0;  // the raw metric on the clean and corrupted runs
    std::vector<int> cleanIds, corruptedIds;
    int patchedRuns = 0, forwardBatches = 0; double seconds = 0;
    float at(int row, int col) const { return values[size_t(row) * columns + col]; }
};

// Throws cs::Error on prompts of different lengths (naming both), an empty prompt, answer/wrong
// ids missing or out of the vocabulary, Features without an SAE, or "patching: cancelled".
PatchGrid runActivationPatching(const Transformer& model, const PatchRequest& request);

const char* patchSiteName(PatchSite);        // "resid", "attn", "mlp", "heads", "heads-by-position", "features"
PatchSite parsePatchSite(const std::string&); // throws cs::Error listing the valid names
const char* patchDirectionName(PatchDirection);         // "denoise", "noise"
PatchDirection parsePatchDirection(const std::string&); // throws cs::Error listing the valid names
const char* patchMetricName(PatchMetric);               // "logit-diff", "prob", "kl"
PatchMetric parsePatchMetric(const std::string&);       // throws cs::Error listing the valid names

}  // namespace cs
