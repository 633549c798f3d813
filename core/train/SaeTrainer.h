#pragma once
// Trains an SAE (input and output at one hook) or a transcoder (input at --hook, output predicted
// at --hook-out) on a model's activations over a text corpus, and writes a SAELens folder.
// Activations stream from the model through a shuffling buffer (or come from a pool filled once);
// training uses Adam with warm-up and a final decay. TopK SAEs get the AuxK loss on dead features
// (Gao et al. 2024) to keep them alive; BatchTopK SAEs (Bussmann et al. 2024) keep the k * batch
// largest activations of a whole batch while training, and are saved as JumpReLU with the one
// threshold that gives k per token on average; JumpReLU SAEs learn per-feature thresholds through
// a straight-through estimator with an L0 penalty (Rajamanoharan et al. 2024). Activations are
// scaled to an average norm of sqrt(d) while training, and the scale is folded back into the
// weights before saving, so the file works on raw activations.
#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;

struct SaeTrainOptions {
    std::string modelDir;
    std::string hook;
    std::string hookOut;  // non-empty: a transcoder from hook to hookOut
    std::string corpus;
    std::string outDir;
    long dSae = 1024;
    std::string arch = "topk";  // topk | batchtopk | relu | jumprelu
    int k = 8;
    double l1 = 5.0;            // relu: coefficient on f * ||W_dec row||; jumprelu: on L0
    long tokens = 2'000'000;    // training activations
    int batch = 4096;           // activations per step
    double lr = 1e-3;
    long bufferTokens = 65536;
    // > 0: run the model once for this many activations and train over them in shuffled passes,
    // instead of refreshing the buffer from the model. On a small corpus the stream repeats
    // anyway, and the model run is about half of each step's cost.
    long poolTokens = 0;
    double heldOutFraction = 0.1;
    long evalTokens = 65536;  // held-out tokens for the metrics (at most the held-out text)
    uint64_t seed = 0;
    // > 0: after the reconstruction training, this many tokens of fine-tuning on the KL
    // divergence between the clean model's next-token distribution and the spliced model's,
    // plus klMseWeight times the normalised reconstruction error (TopK / BatchTopK SAEs).
    long klTokens = 0;
    // Non-empty: start from this saved TopK SAE (same hook, d_sae and k) instead of random
    // weights; with tokens = 0, only the KL fine-tuning runs.
    std::string initFrom;
    double klLr = 0;            // 0: a third of lr
    double klMseWeight = 1.0;
    // Keep the AuxK term (dead features reconstructing the residual) while fine-tuning.
    bool klAuxK = false;
    // How a dead TopK / BatchTopK feature restarts: "bricken" gives its encoder column a fifth of
    // the live columns' mean norm (Bricken et al. 2023, made for ReLU SAEs, where any positive
    // pre-activation fires); "topk" scales it so the feature enters the top k on the input it
    // was restarted from, so the reconstruction loss, not only AuxK, trains it from the start.
    std::string restart = "bricken";
    bool storeF16 = false;  // write the SAE in float16 (metrics are measured in float32 first)
    const std::atomic<bool>* stop = nullptr;
};

struct SaeMetrics {
    double l0 = 0;
    double varianceExplained = 0;
    double deadFraction = 0;      // never fired over the last training window
    double ceClean = 0, ceSpliced = 0, ceZeroAblated = 0;
    // Spliced and zero-ablated runs leave the BOS positions as they are: the SAE is trained
    // without them, and SAEBench evaluates likewise (exclude_special_tokens_from_reconstruction).
    double ceLossRecovered = 0;   // (zero - spliced) / (zero - clean)
    double ceIncrease = 0;        // spliced - clean, nats per token
    double ceSplicedWithBos = 0;  // the SAE spliced at the BOS positions too
    double ceIncreaseWithBos = 0;
    long evalTokens = 0;
    // Per feature, the fraction of evaluated (non-BOS) tokens it fired on: sparsity.safetensors
    // (as log10) and silentFraction come from it.
    std::vector<double> firingFrequency;
    double silentFraction = 0;  // never fired on the evaluated tokens
};

// The metrics as written to an SAE's metadata and printed by train-sae / eval-sae.
nlohmann::json metricsJson(const SaeMetrics& m);

struct SaeTrainProgress {
    long pooled = 0, poolTokens = 0;  // while a pool fills (then tokens is 0)
    long tokens = 0, totalTokens = 0;
    double mse = 0, l0 = 0, deadFraction = 0, tokensPerSecond = 0, secondsLeft = 0;
    bool klPhase = false;  // KL fine-tuning: tokens count that phase's tokens, mse its normalised error
    double kl = 0;
};

struct SaeTrainReport {
    long steps = 0, tokens = 0;
    double seconds = 0, tokensPerSecond = 0;
    bool stoppedEarly = false;
    long resampledFeatures = 0;  // dead features restarted during training (TopK, BatchTopK)
    long klTokens = 0;           // tokens of KL fine-tuning done
    SaeMetrics metrics;
};

struct LmTrainOptions;

// Activations per second of training (the model run that makes them plus the SAE step) on a
// freshly initialised GPT-2 of `shape` fed random tokens, for the benchmark. Uses o.hook,
// o.hookOut, o.arch, o.dSae, o.k, o.batch, o.lr.
double measureSaeTrainingThroughput(const SaeTrainOptions& o, const LmTrainOptions& shape, int steps);

SaeTrainReport trainSae(const SaeTrainOptions& opt, const std::function<void(const SaeTrainProgress&)>& onProgress = {});

// Held-out evaluation (L0, variance explained, CE with the SAE spliced in without its error term
// against the clean and the zero-ablated model), over windows of the model's context cut from the
// paragraphs' token stream (each paragraph starts with BOS, so BOS falls anywhere in a window).
SaeMetrics evaluateSae(const Transformer& model, const Tokenizer& tok, std::shared_ptr<Sae> sae,
                       const std::vector<std::string>& paragraphs, long maxTokens);

}  // namespace cs
