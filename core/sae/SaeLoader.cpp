#include "sae/SaeLoader.h"

#include "io/JsonFile.h"
#include "io/NpzReader.h"
#include "io/Safetensors.h"
#include "util/Error.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace cs {

namespace {

std::vector<long> shapeOf(const at::Tensor& t) { return std::vector<long>(t.sizes().begin(), t.sizes().end()); }

// A tensor from a safetensors file, or a one-line error naming the file and the tensor.
at::Tensor need(const SafetensorsFile& st, const std::string& name, const std::string& why) {
    if (!st.has(name)) failIn(st.path(), "missing tensor '" + name + "' (" + why + ")");
    return st.load(name);
}

void expectShape(const at::Tensor& t, const std::vector<long>& shape, const std::string& file,
                 const std::string& name, const std::string& meaning) {
    if (shapeOf(t) != shape)
        failIn(file, "tensor '" + name + "' has shape " + shapeToString(shapeOf(t)) + ", expected " +
                         shapeToString(shape) + " (" + meaning + ")");
}

at::Tensor loadSparsity(const fs::path& dir, long dSae) {
    const fs::path p = dir / "sparsity.safetensors";
    if (!fs::exists(p)) return at::Tensor();
    auto st = SafetensorsFile::open(p.string());
    at::Tensor s = need(*st, "sparsity", "log10 feature firing frequency");
    expectShape(s, {dSae}, p.string(), "sparsity", "[d_sae]");
    return s.contiguous().clone();
}

std::shared_ptr<Sae> loadSaeLens(const fs::path& dir, const std::string& hookOverride) {
    const std::string cfgPath = (dir / "cfg.json").string();
    SaeConfig cfg = parseSaeLensConfig(readJsonFile(cfgPath), cfgPath);
    const std::string weightsPath = (dir / "sae_weights.safetensors").string();
    if (!fs::exists(weightsPath)) failIn(weightsPath, "cannot open (missing file?)");
    auto st = SafetensorsFile::open(weightsPath);
    const std::string arch = std::string("architecture '") + saeArchName(cfg.architecture) + "'";

    SaeWeights w;
    w.W_enc = need(*st, "W_enc", arch);
    w.W_dec = need(*st, "W_dec", arch);
    w.b_dec = need(*st, "b_dec", arch);
    if (cfg.architecture == SaeArch::Gated) {
        w.b_gate = need(*st, "b_gate", arch);
        w.b_mag = need(*st, "b_mag", arch);
        w.r_mag = need(*st, "r_mag", arch);
    } else {
        w.b_enc = need(*st, "b_enc", arch);
    }
    if (usesThreshold(cfg.architecture))  // training checkpoints keep log_threshold instead
        w.threshold = st->has("log_threshold") && !st->has("threshold") ? st->load("log_threshold").exp()
                                                                        : need(*st, "threshold", arch);
    if (cfg.architecture == SaeArch::SkipTranscoder) {
        at::Tensor skip = need(*st, "W_skip", arch);
        expectShape(skip, {cfg.dOut, cfg.dIn}, weightsPath, "W_skip", "SAELens stores it [d_out, d_in]");
        w.W_skip = skip.t();
    }
    // Old SAELens fine-tuned a per-feature output scale; it only multiplies features before W_dec.
    if (st->has("scaling_factor")) {
        at::Tensor s = st->load("scaling_factor");
        expectShape(s, {cfg.dSae}, weightsPath, "scaling_factor", "[d_sae]");
        if (shapeOf(w.W_dec) == std::vector<long>{cfg.dSae, cfg.dOut}) w.W_dec = w.W_dec * s.unsqueeze(1);
    }
    if (!hookOverride.empty()) {
        cfg.hookName = hookOverride;
        cfg.hookLayer = layerOfHook(hookOverride);
    }
    cfg.source = weightsPath;
    auto sae = std::make_shared<Sae>(std::move(cfg), std::move(w));
    sae->sparsity = loadSparsity(dir, sae->dSae());
    return sae;
}

std::shared_ptr<Sae> loadGemmaScope(const fs::path& file, const std::string& hookOverride) {
    auto npz = NpzFile::open(file.string());
    // Gemma Scope 2 writes lower-case w_enc / w_dec; the first release W_enc / W_dec.
    auto get = [&](const std::string& name) {
        std::string lower = name;
        lower[0] = static_cast<char>(std::tolower(lower[0]));
        return npz->load(npz->has(name) || !npz->has(lower) ? name : lower);
    };
    SaeWeights w;
    w.W_enc = get("W_enc");
    if (w.W_enc.dim() != 2) failIn(file.string(), "array 'W_enc' must be 2-D [d_in, d_sae], has shape " +
                                                      shapeToString(shapeOf(w.W_enc)));
    w.W_dec = get("W_dec");
    w.b_enc = get("b_enc");
    w.b_dec = get("b_dec");
    w.threshold = get("threshold");

    SaeConfig cfg;
    cfg.format = "gemmascope";
    cfg.source = file.string();
    cfg.architecture = SaeArch::JumpReLU;
    cfg.dIn = cfg.dOut = w.W_enc.size(0);
    cfg.dSae = w.W_enc.size(1);
    cfg.applyBDecToInput = false;
    cfg.hookName = hookOverride.empty() ? guessGemmaScopeHook(fs::absolute(file).string()) : hookOverride;
    if (cfg.hookName.empty())
        failIn(file.string(), "a Gemma Scope params.npz does not name its hook and the path has no layer_N; "
                              "give the hook name (e.g. blocks.12.hook_resid_post)");
    cfg.hookLayer = layerOfHook(cfg.hookName);
    cfg.contextSize = 1024;
    return std::make_shared<Sae>(std::move(cfg), std::move(w));
}

std::shared_ptr<Sae> loadLlamaScope(const fs::path& dir, const std::string& hookOverride) {
    const std::string hpPath = (dir / "hyperparams.json").string();
    const nlohmann::json hp = readJsonFile(hpPath);
    SaeConfig cfg = parseLlamaScopeConfig(hp, hpPath);
    JsonFields f(hp, hpPath);
    const std::string weightsPath = (dir / "checkpoints" / "final.safetensors").string();
    if (!fs::exists(weightsPath)) failIn(weightsPath, "cannot open (missing file?)");
    auto st = SafetensorsFile::open(weightsPath);
    const long d = cfg.dIn, s = cfg.dSae;
    const std::string why = "Llama Scope weights";

    SaeWeights w;
    // Released checkpoints hold nn.Linear weights ([out, in]); newer lm_saes saves W_E / W_D
    // already in [in, out].
    if (st->has("W_E")) {
        w.W_enc = need(*st, "W_E", why);
        w.W_dec = need(*st, "W_D", why);
        w.b_enc = need(*st, "b_E", why);
        if (st->has("b_D")) w.b_dec = st->load("b_D");
    } else {
        at::Tensor enc = need(*st, "encoder.weight", why), dec = need(*st, "decoder.weight", why);
        expectShape(enc, {s, d}, weightsPath, "encoder.weight", "[d_sae, d_model]");
        expectShape(dec, {d, s}, weightsPath, "decoder.weight", "[d_model, d_sae]");
        w.W_enc = enc.t();
        w.W_dec = dec.t();
        w.b_enc = need(*st, "encoder.bias", why);
        if (st->has("decoder.bias")) w.b_dec = st->load("decoder.bias");
    }
    if (!w.b_dec.defined()) {
        if (f.booleanOr("use_decoder_bias", true)) failIn(weightsPath, "missing tensor 'decoder.bias' (use_decoder_bias is true)");
        w.b_dec = at::zeros({d});
    }
    const bool decoderNormGates = f.booleanOr("sparsity_include_decoder_norm", true);
    if (cfg.architecture == SaeArch::TopK && decoderNormGates)
        failIn(hpPath, "topk with sparsity_include_decoder_norm is not supported (it ranks pre * ||W_dec row||)");
    if (usesThreshold(cfg.architecture)) {
        if (st->has("log_jumprelu_threshold")) {
            w.threshold = st->load("log_jumprelu_threshold").exp();
        } else {
            const double t = f.number("jump_relu_threshold");
            w.threshold = at::full({s}, t);
        }
        // lm_saes gates on pre * ||W_dec row|| > threshold: the same as pre > threshold / ||row||.
        if (decoderNormGates && shapeOf(w.W_dec) == std::vector<long>{s, d}) {
            at::Tensor n = w.W_dec.to(at::kFloat).norm(2, {1});
            w.threshold = w.threshold.to(at::kFloat) / at::where(n > 0, n, at::ones_like(n));
        }
    }
    if (!hookOverride.empty()) {
        cfg.hookName = hookOverride;
        cfg.hookLayer = layerOfHook(hookOverride);
    }
    cfg.source = weightsPath;
    return std::make_shared<Sae>(std::move(cfg), std::move(w));
}

}  // namespace

std::shared_ptr<Sae> loadSae(const std::string& pathIn, const std::string& hookOverride) {
    const fs::path path(pathIn);
    std::error_code ec;
    if (!fs::exists(path, ec)) failIn(pathIn, "cannot open (missing file?)");
    if (fs::is_directory(path)) {
        if (fs::exists(path / "cfg.json")) return loadSaeLens(path, hookOverride);
        if (fs::exists(path / "hyperparams.json")) return loadLlamaScope(path, hookOverride);
        if (fs::exists(path / "params.npz")) return loadGemmaScope(path / "params.npz", hookOverride);
        failIn(pathIn, "no SAE found: expected cfg.json + sae_weights.safetensors (SAELens), params.npz "
                       "(Gemma Scope) or hyperparams.json + checkpoints/final.safetensors (Llama Scope)");
    }
    const std::string name = path.filename().string();
    if (path.extension() == ".npz") return loadGemmaScope(path, hookOverride);
    if (name == "cfg.json" || name == "sae_weights.safetensors") return loadSaeLens(path.parent_path(), hookOverride);
    if (name == "hyperparams.json") return loadLlamaScope(path.parent_path(), hookOverride);
    failIn(pathIn, "not a recognised SAE file (expected a folder, cfg.json, hyperparams.json or a .npz)");
}

void saveSaeLens(const Sae& sae, const std::string& dirIn, bool f16) {
    const fs::path dir(dirIn);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) failIn(dirIn, "cannot create folder: " + ec.message());
    const SaeConfig& c = sae.config();
    const SaeWeights& w = sae.weights();

    std::vector<std::pair<std::string, at::Tensor>> tensors = {
        {"W_enc", w.W_enc}, {"W_dec", w.W_dec}, {"b_dec", w.b_dec}};
    if (w.b_enc.defined()) tensors.push_back({"b_enc", w.b_enc});
    if (usesThreshold(c.architecture)) tensors.push_back({"threshold", w.threshold});
    if (c.architecture == SaeArch::Gated)
        for (auto& [n, t] : {std::pair<const char*, at::Tensor>{"b_gate", w.b_gate}, {"b_mag", w.b_mag}, {"r_mag", w.r_mag}})
            tensors.push_back({n, t});
    if (c.architecture == SaeArch::SkipTranscoder) tensors.push_back({"W_skip", w.W_skip.t().contiguous()});
    writeSafetensors((dir / "sae_weights.safetensors").string(), tensors, {}, f16 ? DType::F16 : DType::F32);
    if (sae.sparsity.defined()) writeSafetensors((dir / "sparsity.safetensors").string(), {{"sparsity", sae.sparsity}});

    const std::string cfgPath = (dir / "cfg.json").string();
    std::ofstream out(cfgPath, std::ios::binary | std::ios::trunc);
    nlohmann::json cfg = toSaeLensJson(c);
    if (f16) cfg["dtype"] = "float16";
    out << cfg.dump(2) << "\n";
    if (!out) failIn(cfgPath, "cannot write");
}

}  // namespace cs
