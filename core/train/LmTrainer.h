#pragma once
// Trains a small GPT-2-architecture language model and its SentencePiece BPE tokenizer on a text
// corpus, and writes an ordinary Hugging Face directory (config.json, model.safetensors,
// tokenizer.model) that ModelLoader reads back. The model is trained through the same
// Transformer runtime that serves inference, so what is trained is exactly what is run.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace cs {

struct LmTrainOptions {
    std::string corpus;
    std::string outDir;
    int layers = 4;
    int dModel = 128;
    int heads = 4;
    int ctx = 128;
    int vocab = 2048;
    int batch = 32;
    long steps = 2000;
    double lr = 3e-3;
    double weightDecay = 0.1;
    // GPT-2's residual dropout (on the embeddings and on each attention and MLP output) during
    // training only; the saved model has none. Regularises the small corpora the demo trains on.
    double dropout = 0.0;
    int warmupSteps = 100;
    double heldOutFraction = 0.1;
    uint64_t seed = 0;
    bool storeF16 = false;     // model.safetensors in F16 (smaller bundles)
    // A GPT-2 directory train-lm wrote to start from (fine-tuning): its weights, shape (layers,
    // d_model, heads, ctx, vocab override the options above) and tokenizer.model, copied as is
    // instead of training a new tokenizer. Empty: fresh weights and a new tokenizer.
    std::string initDir;
    int checkpointEvery = 500; // steps; the directory is always a loadable model after each
    const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to stop after the current step
};

struct LmTrainProgress {
    long step = 0;
    long steps = 0;
    double loss = 0;
    double tokensPerSecond = 0;
    double secondsLeft = 0;
};

struct LmTrainReport {
    long steps = 0;
    long tokensSeen = 0;
    double seconds = 0;
    double tokensPerSecond = 0;
    double trainLoss = 0;
    double heldOutBitsPerByte = 0;
    long parameters = 0;
    bool stoppedEarly = false;
};

class Transformer;

// A GPT-2 model of the options' shape with freshly initialised weights (the state train-lm
// starts from), for benchmarks and tests that need a model of a given shape and no file.
std::unique_ptr<Transformer> initialGpt2(const LmTrainOptions& opt);

// Tokens per second of the training step alone (forward, backward, AdamW, clipping) on random
// tokens, for the benchmark.
double measureLmTrainingThroughput(const LmTrainOptions& opt, int steps);

LmTrainReport trainLm(const LmTrainOptions& opt, const std::function<void(const LmTrainProgress&)>& onProgress = {});

}  // namespace cs
