#pragma once
// The logit lens of one analysed sequence: each row's residual stream (the embeddings, then every
// block's output) read through the model's own final norm and unembedding. The analysis keeps
// each row's normed residual, which is cheap; the unembedding (rows x vocabulary x d_model per
// position: seconds for a long prompt or a large vocabulary) runs only for the positions someone
// asks for, on whichever thread asks, and each position's cells are kept once made.
//
// Thread-safe: a position's cells are written once, under a lock, and never change or move
// afterwards, so a LensColumn pointer stays valid for the lens' life. The lens holds the model
// and tokenizer that made it (shared), so it can fill itself in after the run that made it.
#include "analysis/TokenProbability.h"

#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace cs {

class Transformer;
class TokenTexts;

// Every row's cells at one position.
struct LensColumn {
    std::vector<std::vector<TokenProbability>> top;  // [row][k], most probable first
    std::vector<float> nextProbability;              // [row]: P(the actual next token); NaN at the last position
    std::vector<float> logNormalizer;                // [row]: log of the row's softmax normaliser
};

class LogitLens {
public:
    // normed: [rows, T, d_model] float32, each row's residual after the final norm. ids: the
    // sequence (for the actual next token). topK: predictions kept per cell.
    LogitLens(std::shared_ptr<const Transformer> model, std::shared_ptr<TokenTexts> texts, const at::Tensor& normed,
              std::vector<int> ids, std::vector<std::string> rowNames, int topK);
    ~LogitLens();
    LogitLens(const LogitLens&) = delete;
    LogitLens& operator=(const LogitLens&) = delete;

    int rows() const;
    int length() const;
    int topK() const;
    const std::vector<std::string>& rowNames() const;  // "embed", "L0", ...; the last is the model's output

    // Position t's cells, or null while nobody has asked for them.
    const LensColumn* column(int t) const;
    // Every position's column (null where not computed), read under one lock.
    std::vector<const LensColumn*> columns() const;
    int computedCount() const;
    // Those of `positions` not computed yet, in the order given (duplicates and out-of-range dropped).
    std::vector<int> missing(const std::vector<int>& positions) const;
    // Computes and keeps the missing positions among `positions`: blocking, on the calling thread,
    // rows x vocabulary x d_model multiply-adds per position. Batches of at most `batchPositions`
    // positions (0: a few, so that the logits in flight stay small; length(): one batch, as an
    // eager analysis did).
    void compute(const std::vector<int>& positions, int batchPositions = 0) const;
    void computeAll(int batchPositions = 0) const;
    // Position t's column, computed first when needed.
    const LensColumn& columnAt(int t) const;

    enum class Fill {
        ComputedOnly,  // NaN at positions nobody has asked for yet: cheap, for a view
        Everything,    // computes the missing positions first (the whole lens)
    };
    // P(tokenId) at every row and position, [row][t]: that token's logit against each cell's
    // normaliser (rows x positions x d_model; no unembedding of the whole vocabulary). Throws
    // cs::Error on an id outside the vocabulary.
    std::vector<std::vector<float>> probabilitiesOf(int tokenId, Fill fill) const;
    // The same, reading the token's unembedding column from `model`, which must have this lens'
    // model's shape (a copy of it): throws cs::Error otherwise.
    std::vector<std::vector<float>> probabilitiesOf(const Transformer& model, int tokenId, Fill fill) const;
    // P(the actual next token), [row][t]; NaN where not computed and at the last position.
    std::vector<std::vector<float>> nextProbabilities() const;

    // Bytes this lens holds: the normed residual and the computed cells.
    size_t heldBytes() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cs
