#pragma once
// What an SAE's weights alone say about its features: the tokens each one promotes and
// suppresses (decoder row times unembedding) and its nearest features by decoder cosine.
#include "store/FeatureRecord.h"

#include <utility>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;

// Top/bottom `k` entries of W_dec[feature] . W_U. Empty when the SAE's output width is not the
// model's d_model (it does not write to the residual stream directly).
void logitEffects(const Transformer& model, const Tokenizer* tok, const Sae& sae, long feature, int k,
                  std::vector<LogitEffect>* positive, std::vector<LogitEffect>* negative);

// Top/bottom `k` logit effects of every feature at once, computed in blocks of decoder rows;
// empty when the SAE does not write d_model-wide activations.
struct FeatureLogits {
    std::vector<std::pair<int, float>> positive, negative;  // (token id, effect)
};
std::vector<FeatureLogits> allLogitEffects(const Transformer& model, const Sae& sae, int k);

// For every feature: the `k` other features of highest decoder cosine (zero rows: cosine 0).
// Computed in blocks of rows, so a 16k x 16k similarity is never held at once.
std::vector<std::vector<FeatureNeighbour>> decoderNeighbours(const Sae& sae, int k);

}  // namespace cs
