#include "sae/Sae.h"

#include <ATen/Parallel.h>

#include "util/Error.h"

#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace cs {

namespace {

struct Expected {
    const char* name;
    at::Tensor SaeWeights::*member;
    std::vector<long> shape;
};

std::vector<long> shapeOf(const at::Tensor& t) {
    return std::vector<long>(t.sizes().begin(), t.sizes().end());
}

}  // namespace

Sae::Sae(SaeConfig cfg, SaeWeights w) : cfg_(std::move(cfg)), w_(std::move(w)) {
    if (!isTranscoder(cfg_.architecture)) cfg_.dOut = cfg_.dIn;
    // Own float32 copies: files may be memory-mapped or half precision, and folding writes in place.
    for (at::Tensor* t : {&w_.W_enc, &w_.W_dec, &w_.b_enc, &w_.b_dec, &w_.threshold, &w_.b_gate,
                          &w_.b_mag, &w_.r_mag, &w_.W_skip})
        if (t->defined()) *t = t->to(at::kFloat).contiguous().clone();
    check();
    foldInputNormalisation();
    if (cfg_.architecture == SaeArch::Gated) wMag_ = w_.W_enc * w_.r_mag.exp();
}

void Sae::check() const {
    const std::string& src = cfg_.source;
    const long i = cfg_.dIn, s = cfg_.dSae, o = cfg_.dOut;
    const SaeArch a = cfg_.architecture;
    std::vector<Expected> need = {{"W_enc", &SaeWeights::W_enc, {i, s}},
                                  {"W_dec", &SaeWeights::W_dec, {s, o}},
                                  {"b_dec", &SaeWeights::b_dec, {o}}};
    if (a == SaeArch::Gated) {
        need.push_back({"b_gate", &SaeWeights::b_gate, {s}});
        need.push_back({"b_mag", &SaeWeights::b_mag, {s}});
        need.push_back({"r_mag", &SaeWeights::r_mag, {s}});
    } else {
        need.push_back({"b_enc", &SaeWeights::b_enc, {s}});
    }
    if (usesThreshold(a)) need.push_back({"threshold", &SaeWeights::threshold, {s}});
    // W_skip is checked in our orientation but named with the shape SAELens files store.
    if (a == SaeArch::SkipTranscoder) need.push_back({"W_skip", &SaeWeights::W_skip, {i, o}});

    for (const auto& e : need) {
        const at::Tensor& t = w_.*(e.member);
        if (!t.defined())
            failIn(src, std::string("missing tensor '") + e.name + "' (needed by architecture '" + saeArchName(a) + "')");
        if (shapeOf(t) != e.shape)
            failIn(src, std::string("tensor '") + e.name + "' has shape " + shapeToString(shapeOf(t)) +
                            ", expected " + shapeToString(e.shape) + " from d_in=" + std::to_string(i) +
                            ", d_sae=" + std::to_string(s) + (isTranscoder(a) ? ", d_out=" + std::to_string(o) : ""));
        const long bad = (~at::isfinite(t)).sum().item<long>();
        if (bad > 0)
            failIn(src, std::string("tensor '") + e.name + "' contains " + std::to_string(bad) + " NaN or Inf value(s)");
    }
    if (a == SaeArch::TopK && (cfg_.k <= 0 || cfg_.k > s))
        failIn(src, "topk needs 0 < k <= d_sae, got k=" + std::to_string(cfg_.k));
    const std::string& norm = cfg_.normalizeActivations;
    if (norm == "expected_average_only_in") {
        if (!(cfg_.normScaleIn > 0) || !(cfg_.normScaleOut > 0))
            failIn(src, "normalize_activations is 'expected_average_only_in' but no scaling factor is known "
                        "(SAELens keeps it outside cfg.json): add 'norm_scaling_factor' to cfg.json or fold it into the weights");
        if (cfg_.applyBDecToInput && cfg_.normScaleIn != cfg_.normScaleOut)
            failIn(src, "apply_b_dec_to_input with different input and output scales cannot be represented");
    } else if (norm != "none") {
        failIn(src, "normalize_activations '" + norm + "' is not supported (supported: none, expected_average_only_in)");
    }
}

// The input scale multiplies W_enc and the output scale divides W_dec and b_dec, as SAELens'
// fold_activation_norm_scaling_factor does; pre-activations (so thresholds and TopK choices) are
// those of the normalised space the SAE was trained in.
void Sae::foldInputNormalisation() {
    if (cfg_.normalizeActivations != "expected_average_only_in") return;
    w_.W_enc.mul_(cfg_.normScaleIn);
    w_.W_dec.div_(cfg_.normScaleOut);
    w_.b_dec.div_(cfg_.normScaleOut);
    cfg_.normalizeActivations = "none";
    cfg_.normScaleIn = cfg_.normScaleOut = 0.0;
}

at::Tensor Sae::encode(const at::Tensor& xIn) const {
    if (xIn.dim() < 1 || xIn.size(-1) != cfg_.dIn)
        failIn(cfg_.source, "encode got an input of width " + std::to_string(xIn.dim() ? xIn.size(-1) : 0) +
                                ", but d_in is " + std::to_string(cfg_.dIn));
    at::Tensor x = xIn.to(at::kFloat);
    if (cfg_.applyBDecToInput) x = x - w_.b_dec;
    switch (cfg_.architecture) {
        case SaeArch::Gated: {
            at::Tensor gate = (at::matmul(x, w_.W_enc) + w_.b_gate) > 0;
            return gate.to(at::kFloat) * at::relu(at::matmul(x, wMag_) + w_.b_mag);
        }
        case SaeArch::JumpReLU:
        case SaeArch::JumpReLUTranscoder: {
            at::Tensor pre = at::matmul(x, w_.W_enc) + w_.b_enc;
            return at::relu(pre) * (pre > w_.threshold).to(at::kFloat);
        }
        case SaeArch::TopK: {
            at::Tensor pre = at::matmul(x, w_.W_enc) + w_.b_enc;
            auto top = pre.topk(cfg_.k, -1);
            return at::zeros_like(pre).scatter(-1, std::get<1>(top), at::relu(std::get<0>(top)));
        }
        default:
            return at::relu(at::matmul(x, w_.W_enc) + w_.b_enc);
    }
}

Sae::SparseCode Sae::encodeSparse(const at::Tensor& xIn) const {
    SparseCode out;
    if (xIn.dim() != 2 || xIn.size(1) != cfg_.dIn)
        failIn(cfg_.source, "encodeSparse takes [rows, d_in] with d_in " + std::to_string(cfg_.dIn));
    const long rows = xIn.size(0);
    out.rowStart.assign(rows + 1, 0);
    if (cfg_.architecture == SaeArch::Gated) {
        // Two projections; rare enough to take the dense path and gather from it.
        return sparseRows(encode(xIn).contiguous());
    }
    at::Tensor x = xIn.to(at::kFloat);
    if (cfg_.applyBDecToInput) x = x - w_.b_dec;
    // The [rows, d_sae] pre-activations are the one large temporary: a per-thread buffer reused
    // across calls, instead of fresh pages for every run (which made the indexer's encoders
    // 1.4x slower than the same calls back to back).
    thread_local at::Tensor buffer;
    if (!buffer.defined() || buffer.size(0) < rows || buffer.size(1) != cfg_.dSae)
        buffer = at::empty({rows, cfg_.dSae}, at::kFloat);
    at::Tensor pre = buffer.narrow(0, 0, rows);
    at::addmm_out(pre, w_.b_enc, x, w_.W_enc);
    if (cfg_.architecture == SaeArch::TopK) {
        auto top = pre.topk(cfg_.k, -1, true, false);
        auto sorted = std::get<1>(top).sort(-1);  // ascending feature order, as the dense path gives
        at::Tensor idx = std::get<0>(sorted).contiguous();
        at::Tensor val = std::get<0>(top).gather(-1, std::get<1>(sorted)).contiguous();
        const int64_t* ip = idx.data_ptr<int64_t>();
        const float* vp = val.data_ptr<float>();
        const long k = idx.size(1);
        out.index.reserve(rows * k);
        out.value.reserve(rows * k);
        for (long r = 0; r < rows; ++r) {
            for (long j = 0; j < k; ++j)
                if (vp[r * k + j] > 0) {
                    out.index.push_back(static_cast<int32_t>(ip[r * k + j]));
                    out.value.push_back(vp[r * k + j]);
                }
            out.rowStart[r + 1] = static_cast<int64_t>(out.index.size());
        }
        return out;
    }
    // ReLU: pre > 0; JumpReLU: relu(pre) * (pre > threshold), i.e. pre > max(threshold, 0).
    const bool jump = usesThreshold(cfg_.architecture);
    at::Tensor thr = jump ? w_.threshold.to(at::kFloat).clamp_min(0).contiguous() : at::zeros({cfg_.dSae}, at::kFloat);
    return sparseRows(pre, thr.data_ptr<float>());
}

Sae::SparseCode Sae::sparseRows(const at::Tensor& f, const float* threshold) const {
    SparseCode out;
    const long rows = f.size(0), D = f.size(1);
    out.rowStart.assign(rows + 1, 0);
    const float* fp = f.data_ptr<float>();
    const long stride = f.stride(0);
    // Each thread gathers a block of rows; the blocks are then joined in row order.
    const long blocks = std::max<long>(1, std::min<long>(rows, 4L * at::get_num_threads()));
    std::vector<std::vector<int32_t>> bi(blocks);
    std::vector<std::vector<float>> bv(blocks);
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const long r0 = rows * b / blocks, r1 = rows * (b + 1) / blocks;
            for (long r = r0; r < r1; ++r) {
                const float* row = fp + r * stride;
                for (long j = 0; j < D; ++j) {
                    const float v = row[j];
                    if (v > 0 && (!threshold || v > threshold[j])) {
                        bi[b].push_back(static_cast<int32_t>(j));
                        bv[b].push_back(v);
                    }
                }
                out.rowStart[r + 1] = static_cast<int64_t>(bi[b].size());  // within the block for now
            }
        }
    });
    int64_t offset = 0;
    for (long b = 0; b < blocks; ++b) {
        const long r0 = rows * b / blocks, r1 = rows * (b + 1) / blocks;
        for (long r = r0; r < r1; ++r) out.rowStart[r + 1] += offset;
        offset += static_cast<int64_t>(bi[b].size());
        out.index.insert(out.index.end(), bi[b].begin(), bi[b].end());
        out.value.insert(out.value.end(), bv[b].begin(), bv[b].end());
    }
    return out;
}

at::Tensor Sae::decode(const at::Tensor& f) const {
    if (f.dim() < 1 || f.size(-1) != cfg_.dSae)
        failIn(cfg_.source, "decode got features of width " + std::to_string(f.dim() ? f.size(-1) : 0) +
                                ", but d_sae is " + std::to_string(cfg_.dSae));
    return at::matmul(f.to(at::kFloat), w_.W_dec) + w_.b_dec;
}

at::Tensor Sae::skip(const at::Tensor& x) const {
    if (cfg_.architecture != SaeArch::SkipTranscoder) return at::Tensor();
    return at::matmul(x.to(at::kFloat), w_.W_skip);
}

at::Tensor Sae::reconstruct(const at::Tensor& x) const {
    at::Tensor out = decode(encode(x));
    if (cfg_.architecture == SaeArch::SkipTranscoder) out = out + skip(x);
    return out;
}

void Sae::foldDecoderNorm() {
    if (cfg_.architecture == SaeArch::TopK)
        failIn(cfg_.source, "decoder-norm folding is refused for topk: scaling the pre-activations "
                            "would change which k features are kept");
    at::Tensor n = w_.W_dec.norm(2, {1});
    n = at::where(n > 0, n, at::ones_like(n));
    w_.W_dec.div_(n.unsqueeze(1));
    w_.W_enc.mul_(n);
    // Positive per-feature scales commute with relu, with the jump comparison (when the threshold
    // moves too) and with the gate's sign test, so features scale by n and f W_dec is unchanged.
    // r_mag is not touched: W_enc * exp(r_mag) already carries the factor through W_enc.
    for (at::Tensor* t : {&w_.b_enc, &w_.threshold, &w_.b_gate, &w_.b_mag})
        if (t->defined()) t->mul_(n);
    if (cfg_.architecture == SaeArch::Gated) wMag_ = w_.W_enc * w_.r_mag.exp();
}

}  // namespace cs
