#include "analysis/LogitLens.h"

#include "analysis/TokenTexts.h"
#include "model/Transformer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

namespace cs {

namespace {
// Logits in flight per batch when the caller leaves the batch size to the lens: a 50k vocabulary
// and 13 rows make 2.6 MB per position, so about 25 positions a batch.
constexpr size_t kBatchLogitBytes = size_t(64) << 20;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

struct LogitLens::Impl {
    std::shared_ptr<const Transformer> model;
    std::shared_ptr<TokenTexts> texts;
    at::Tensor normed;  // [R, T, d] float32, contiguous
    std::vector<int> ids;
    std::vector<std::string> rowNames;
    int topK = 10;
    int R = 0, T = 0;

    mutable std::mutex mutex;
    // Written once per position under the lock; never replaced, so pointers handed out stay valid.
    mutable std::vector<std::unique_ptr<const LensColumn>> columns;
    mutable size_t columnBytes = 0;

    int vocab() const { return model->config().vocabSize; }

    // One batch: the positions' logits at every row, their normalisers, top-k and the actual next
    // token, as plain columns.
    std::vector<std::unique_ptr<const LensColumn>> computeBatch(const std::vector<int>& positions) const {
        c10::InferenceMode guard;
        const long n = static_cast<long>(positions.size());
        at::Tensor index = at::tensor(std::vector<int64_t>(positions.begin(), positions.end()), at::kLong);
        at::Tensor x = normed.index_select(1, index);                                    // [R, n, d]
        at::Tensor logits = model->softcapLogits(model->unembedNormed(x)).to(at::kFloat);  // [R, n, V]
        at::Tensor logNorm = at::logsumexp(logits, -1).contiguous();                     // [R, n]
        // Ranked on logits; only the k kept are exponentiated (no [R, n, V] probability tensor).
        auto [val, idx] = logits.topk(std::min<long>(topK, logits.size(-1)), -1);
        val = (val - logNorm.unsqueeze(-1)).exp_().contiguous();
        idx = idx.contiguous();
        std::vector<int64_t> nextIds(static_cast<size_t>(n));
        for (long j = 0; j < n; ++j) nextIds[j] = positions[j] + 1 < T ? ids[positions[j] + 1] : 0;
        at::Tensor target = at::tensor(nextIds, at::kLong).view({1, n, 1}).expand({R, n, 1});
        at::Tensor next = (logits.gather(2, target).squeeze(2) - logNorm).exp_().contiguous();  // [R, n]
        const float* v = val.data_ptr<float>();
        const int64_t* ix = idx.data_ptr<int64_t>();
        const float* nx = next.data_ptr<float>();
        const float* ln = logNorm.data_ptr<float>();
        const long K = val.size(2);
        std::vector<std::unique_ptr<const LensColumn>> out;
        for (long j = 0; j < n; ++j) {
            auto c = std::make_unique<LensColumn>();
            c->top.resize(R);
            for (long r = 0; r < R; ++r) {
                for (long k = 0; k < K; ++k) {
                    const size_t at = (static_cast<size_t>(r) * n + j) * K + k;
                    const int id = static_cast<int>(ix[at]);
                    c->top[r].push_back({id, (*texts)(id), v[at]});
                }
                c->nextProbability.push_back(positions[j] + 1 < T ? nx[r * n + j] : kNaN);
                c->logNormalizer.push_back(ln[r * n + j]);
            }
            out.push_back(std::move(c));
        }
        return out;
    }

    static size_t bytesOf(const LensColumn& c) {
        size_t b = sizeof(LensColumn) + c.nextProbability.capacity() * 4 + c.logNormalizer.capacity() * 4;
        for (const auto& row : c.top) {
            b += sizeof(row) + row.capacity() * sizeof(TokenProbability);
            for (const auto& t : row) b += t.text.capacity() > 15 ? t.text.capacity() : 0;  // beyond the small-string buffer
        }
        return b;
    }
};

LogitLens::LogitLens(std::shared_ptr<const Transformer> model, std::shared_ptr<TokenTexts> texts,
                     const at::Tensor& normed, std::vector<int> ids, std::vector<std::string> rowNames, int topK)
    : impl_(std::make_unique<Impl>()) {
    if (!model || !texts) throw Error("a logit lens needs the model and tokenizer that made it");
    if (normed.dim() != 3 || normed.size(0) != static_cast<long>(rowNames.size()) ||
        normed.size(1) != static_cast<long>(ids.size()) || normed.size(2) != model->config().dModel)
        throw Error("logit lens: the normed residual is not [rows, positions, d_model]");
    impl_->model = std::move(model);
    impl_->texts = std::move(texts);
    impl_->normed = normed.to(at::kFloat).contiguous();
    impl_->ids = std::move(ids);
    impl_->rowNames = std::move(rowNames);
    impl_->topK = topK;
    impl_->R = static_cast<int>(impl_->rowNames.size());
    impl_->T = static_cast<int>(impl_->ids.size());
    impl_->columns.resize(static_cast<size_t>(impl_->T));
}

LogitLens::~LogitLens() = default;

int LogitLens::rows() const { return impl_->R; }
int LogitLens::length() const { return impl_->T; }
int LogitLens::topK() const { return impl_->topK; }
const std::vector<std::string>& LogitLens::rowNames() const { return impl_->rowNames; }

const LensColumn* LogitLens::column(int t) const {
    if (t < 0 || t >= impl_->T) return nullptr;
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->columns[static_cast<size_t>(t)].get();
}

std::vector<const LensColumn*> LogitLens::columns() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    std::vector<const LensColumn*> out;
    out.reserve(impl_->columns.size());
    for (const auto& c : impl_->columns) out.push_back(c.get());
    return out;
}

int LogitLens::computedCount() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return static_cast<int>(std::count_if(impl_->columns.begin(), impl_->columns.end(), [](const auto& c) { return c != nullptr; }));
}

std::vector<int> LogitLens::missing(const std::vector<int>& positions) const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    std::vector<int> out;
    std::vector<bool> seen(static_cast<size_t>(impl_->T), false);
    for (int t : positions)
        if (t >= 0 && t < impl_->T && !seen[static_cast<size_t>(t)] && !impl_->columns[static_cast<size_t>(t)]) {
            seen[static_cast<size_t>(t)] = true;
            out.push_back(t);
        }
    return out;
}

void LogitLens::compute(const std::vector<int>& positions, int batchPositions) const {
    const std::vector<int> todo = missing(positions);
    if (todo.empty()) return;
    size_t batch = batchPositions > 0 ? static_cast<size_t>(batchPositions)
                                      : std::max<size_t>(1, kBatchLogitBytes / (static_cast<size_t>(impl_->R) * impl_->vocab() * 4));
    for (size_t i = 0; i < todo.size(); i += batch) {
        const std::vector<int> part(todo.begin() + static_cast<long>(i), todo.begin() + static_cast<long>(std::min(todo.size(), i + batch)));
        auto made = impl_->computeBatch(part);
        std::lock_guard<std::mutex> lock(impl_->mutex);
        for (size_t j = 0; j < part.size(); ++j) {
            auto& slot = impl_->columns[static_cast<size_t>(part[j])];
            if (slot) continue;  // another thread made it meanwhile: keep the one already handed out
            impl_->columnBytes += Impl::bytesOf(*made[j]);
            slot = std::move(made[j]);
        }
    }
}

void LogitLens::computeAll(int batchPositions) const {
    std::vector<int> all(static_cast<size_t>(impl_->T));
    for (int t = 0; t < impl_->T; ++t) all[static_cast<size_t>(t)] = t;
    compute(all, batchPositions);
}

const LensColumn& LogitLens::columnAt(int t) const {
    if (t < 0 || t >= impl_->T)
        throw Error("position " + std::to_string(t) + " is outside the sequence (0.." + std::to_string(impl_->T - 1) + ")");
    compute({t});
    return *column(t);
}

std::vector<std::vector<float>> LogitLens::probabilitiesOf(int tokenId, Fill fill) const {
    return probabilitiesOf(*impl_->model, tokenId, fill);
}

std::vector<std::vector<float>> LogitLens::probabilitiesOf(const Transformer& model, int tokenId, Fill fill) const {
    const auto& cfg = model.config();
    if (tokenId < 0 || tokenId >= cfg.vocabSize)
        throw Error("token id " + std::to_string(tokenId) + " is out of range for a vocabulary of " +
                    std::to_string(cfg.vocabSize));
    if (cfg.dModel != impl_->model->config().dModel || cfg.vocabSize != impl_->vocab())
        throw Error("this analysis was not made with this model");
    if (fill == Fill::Everything) computeAll();
    const std::vector<const LensColumn*> cols = columns();
    std::vector<int64_t> done;
    for (int t = 0; t < impl_->T; ++t)
        if (cols[static_cast<size_t>(t)]) done.push_back(t);
    std::vector<std::vector<float>> out(static_cast<size_t>(impl_->R), std::vector<float>(static_cast<size_t>(impl_->T), kNaN));
    if (done.empty()) return out;
    c10::InferenceMode guard;
    // One column of the unembedding (whatever dtype the model holds it in) against each kept
    // residual: the token's logit, soft-capped as the model's own logits are.
    at::Tensor u = model.weights().unembed.select(1, tokenId).to(at::kFloat).contiguous();  // [d]
    at::Tensor x = impl_->normed.index_select(1, at::tensor(done, at::kLong));              // [R, n, d]
    at::Tensor logit = model.softcapLogits(at::matmul(x, u)).contiguous();                 // [R, n]
    const float* lg = logit.data_ptr<float>();
    const long n = static_cast<long>(done.size());
    for (int r = 0; r < impl_->R; ++r)
        for (long j = 0; j < n; ++j) {
            const LensColumn& c = *cols[static_cast<size_t>(done[j])];
            out[r][static_cast<size_t>(done[j])] = std::exp(lg[r * n + j] - c.logNormalizer[r]);
        }
    return out;
}

std::vector<std::vector<float>> LogitLens::nextProbabilities() const {
    const std::vector<const LensColumn*> cols = columns();
    std::vector<std::vector<float>> out(static_cast<size_t>(impl_->R), std::vector<float>(static_cast<size_t>(impl_->T), kNaN));
    for (int t = 0; t < impl_->T; ++t)
        if (const LensColumn* c = cols[static_cast<size_t>(t)])
            for (int r = 0; r < impl_->R; ++r) out[r][t] = c->nextProbability[r];
    return out;
}

size_t LogitLens::heldBytes() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return static_cast<size_t>(impl_->normed.numel()) * 4 + impl_->columns.size() * sizeof(void*) + impl_->columnBytes;
}

}  // namespace cs
