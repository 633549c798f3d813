#pragma once
// The shape and options of a transformer, read from a Hugging Face config.json.
#include <string>

namespace cs {

enum class NormKind { LayerNorm, RMSNorm };
enum class ActKind { GeluTanh, GeluExact, Silu, Relu };
enum class PosKind { Learned, Rotary };
enum class MlpKind { Plain, Gated };  // Gated: act(gate(x)) * up(x), as in SwiGLU

struct ModelConfig {
    std::string modelType;  // "gpt2", "llama"
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
    bool attnBias = true;  // q/k/v/o carry biases
    bool mlpBias = true;

    long parameterCount = 0;  // filled by the loader
};

const char* actName(ActKind a);

}  // namespace cs
