#pragma once
// The shape and options of a transformer, read from a Hugging Face config.json.
#include <cstddef>
#include <string>
#include <vector>

namespace cs {

enum class NormKind { LayerNorm, RMSNorm };
enum class ActKind { GeluTanh, GeluExact, Silu, Relu };
enum class PosKind { Learned, Rotary };
enum class MlpKind { Plain, Gated };  // Gated: act(gate(x)) * up(x), as in SwiGLU and GeGLU

// config.json's rope_scaling: how RoPE's inverse frequencies are rescaled for long contexts.
enum class RopeScalingKind { None, Linear, Llama3 };
struct RopeScaling {
    RopeScalingKind kind = RopeScalingKind::None;
    double factor = 1.0;          // Linear: positions / factor; Llama3: long wavelengths' frequency / factor
    double lowFreqFactor = 1.0;   // Llama3 only: wavelengths above original / low are divided by factor,
    double highFreqFactor = 4.0;  // those below original / high are kept, those between interpolated
    double originalContext = 8192;  // Llama3: original_max_position_embeddings
};

struct ModelConfig {
    std::string modelType;  // "gpt2", "llama", "qwen2", "gemma2"
    std::string source;     // the directory it came from
    int nLayers = 0;
    int dModel = 0;
    int nHeads = 0;
    int nKvHeads = 0;
    int dHead = 0;
    int dMlp = 0;
    int vocabSize = 0;
    int nCtx = 0;
    double normEps = 1e-5;
    double ropeTheta = 10000.0;
    bool tiedEmbeddings = true;
    int bosTokenId = -1;
    int eosTokenId = -1;

    NormKind norm = NormKind::LayerNorm;
    ActKind act = ActKind::GeluTanh;
    PosKind pos = PosKind::Learned;
    MlpKind mlp = MlpKind::Plain;
    bool attnBias = true;  // attention projections carry biases (which ones: the architecture's table)
    bool mlpBias = true;
    RopeScaling ropeScaling;

    // Options Gemma 2 needs; each default leaves the other architectures unchanged.
    double embedScale = 1.0;          // token embeddings are multiplied by this (Gemma: sqrt(d_model))
    bool normWeightsOffsetByOne = false;  // files store w - 1 (Gemma's x * (1 + w)); the loader adds 1
    bool postNorms = false;           // a norm on each sublayer's output before the residual add
    double queryPreAttnScalar = 0;    // scores use 1/sqrt(this) instead of 1/sqrt(d_head); 0: d_head
    double attnSoftcap = 0;           // scores = cap * tanh(scores / cap), before the mask; 0: off
    double finalSoftcap = 0;          // logits = cap * tanh(logits / cap); 0: off
    // Per layer, the sliding window: a query at position i sees keys j with i - window < j <= i.
    // 0 (or a layer past the vector's end) means every j <= i.
    std::vector<int> attentionWindow;

    int windowOf(int layer) const {
        return layer >= 0 && layer < static_cast<int>(attentionWindow.size()) ? attentionWindow[layer] : 0;
    }

    long parameterCount = 0;  // filled by the loader
    std::string weightDtype = "f32";  // how the matrices are held: "f32" or "bf16" (loader)
    size_t weightBytes = 0;           // bytes of weights held in memory (loader)
};

const char* actName(ActKind a);

}  // namespace cs
