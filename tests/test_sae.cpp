// SAEs and transcoders in every supported format against an independent float64 reference
// (tests/reference/ref_sae.py), spliced into a random GPT-2, saved and reloaded, and fed broken
// files that must fail with messages naming the file, tensor or field.
#include "TestSupport.h"

#include "io/NpzReader.h"
#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "runtime/Threads.h"
#include "sae/SaeAttachment.h"
#include "sae/SaeLoader.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <filesystem>
#include <functional>
#include <map>

using namespace cstest;
namespace fs = std::filesystem;

namespace {

double maxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

at::Tensor randomInput(long width, uint64_t seed, double scale = 1.0) {
    at::Generator g = at::detail::createCPUGenerator(seed);
    return at::randn({2, 5, width}, g) * scale;
}

struct RefOut {
    at::Tensor features, reconstruction, folded;
};

struct Job {
    std::string key, sae, format;
    at::Tensor x;
};

// One reference process for many SAEs: starting Python and torch dominates its cost.
std::map<std::string, RefOut> reference(const std::vector<Job>& jobs) {
    const std::string dir = makeTempDir("sae-ref");
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < jobs.size(); ++i) {
        const std::string in = dir + "/in" + std::to_string(i) + ".safetensors";
        cs::writeSafetensors(in, {{"x", jobs[i].x}});
        list.push_back({{"sae", jobs[i].sae}, {"format", jobs[i].format}, {"input", in},
                        {"out", dir + "/out" + std::to_string(i) + ".safetensors"}});
    }
    writeFile(dir + "/jobs.json", list.dump());
    runReference("ref_sae.py", "compute --jobs " + shellQuote(dir + "/jobs.json"));
    std::map<std::string, RefOut> out;
    for (size_t i = 0; i < jobs.size(); ++i) {
        auto st = cs::SafetensorsFile::open(list[i]["out"].get<std::string>());
        out[jobs[i].key] = {st->loadAs("features", at::kDouble), st->loadAs("reconstruction", at::kDouble),
                            st->loadAs("features_folded", at::kDouble)};
    }
    return out;
}


at::Tensor tokens(const std::vector<long>& ids) {
    return at::tensor(ids, at::kLong).view({1, static_cast<long>(ids.size())});
}

std::string copyDir(const std::string& from, const std::string& tag) {
    const std::string to = makeTempDir(tag) + "/sae";
    fs::copy(from, to, fs::copy_options::recursive);
    return to;
}

}  // namespace

class TestSae : public QObject {
    Q_OBJECT
private:
    std::string saes_;   // ref_sae.py write output
    std::string model_;  // random GPT-2, d_model 32 = the SAEs' d_in
    std::map<std::string, std::string> formats_;  // folder -> format
    std::map<std::string, at::Tensor> inputs_;
    std::map<std::string, RefOut> ref_;

    std::string path(const std::string& name) const { return saes_ + "/" + name; }

    std::vector<Job> jobsFor(const std::string& root, const std::string& suffix, bool asSaeLens) {
        std::vector<Job> jobs;
        for (const auto& [name, format] : formats_)
            jobs.push_back({name, root + "/" + name + suffix, asSaeLens ? "saelens" : format, inputs_.at(name)});
        return jobs;
    }

private Q_SLOTS:
    void initTestCase() {
        cs::setComputeThreads(2);
        saes_ = makeTempDir("saes");
        const std::string listed = runReference("ref_sae.py", "write --seed 3 --out " + shellQuote(saes_));
        formats_ = nlohmann::json::parse(listed).get<std::map<std::string, std::string>>();
        QVERIFY(formats_.size() >= 13);
        uint64_t seed = 100;
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            inputs_[name] = randomInput(sae->dIn(), ++seed);
        }
        ref_ = reference(jobsFor(saes_, "", false));
        model_ = makeTempDir("sae-model");
        runReference("make_random_model.py", "--arch gpt2 --seed 1 --layers 2 --d-model 32 --heads 2 --vocab 50 "
                                             "--ctx 16 --out " + shellQuote(model_));
    }

    void configsAreReadAsWritten() {
        auto flat = cs::loadSae(path("saelens_flat"));
        QCOMPARE(int(flat->config().architecture), int(cs::SaeArch::Standard));
        QVERIFY(flat->config().applyBDecToInput);  // pre-6 default
        QCOMPARE(flat->config().hookName, std::string("blocks.0.hook_resid_post"));
        QCOMPARE(flat->config().hookLayer, 0);
        QCOMPARE(flat->config().modelName, std::string("gpt2-small"));
        auto flatTopk = cs::loadSae(path("saelens_flat_topk"));
        QCOMPARE(int(flatTopk->config().architecture), int(cs::SaeArch::TopK));
        QCOMPARE(flatTopk->config().k, 7L);
        QVERIFY(!flatTopk->config().applyBDecToInput);
        auto v6 = cs::loadSae(path("saelens_jumprelu"));
        QCOMPARE(int(v6->config().architecture), int(cs::SaeArch::JumpReLU));
        QCOMPARE(v6->config().contextSize, 16L);
        QCOMPARE(v6->config().extraMetadata.value("dataset_path", ""), std::string("none"));
        auto skip = cs::loadSae(path("saelens_skip_transcoder"));
        QCOMPARE(skip->dIn(), 128L);
        QCOMPARE(skip->dOut(), 32L);
        QCOMPARE(skip->config().hookNameOut, std::string("blocks.0.hook_mlp_out"));
        QCOMPARE(skip->weights().W_skip.sizes().vec(), (std::vector<int64_t>{128, 32}));
        auto gemma = cs::loadSae(path("gemma-scope-res/layer_0/width_1k/average_l0_9"));
        QCOMPARE(gemma->config().format, std::string("gemmascope"));
        QCOMPARE(gemma->config().hookName, std::string("blocks.0.hook_resid_post"));  // guessed from the path
        QVERIFY(!gemma->config().applyBDecToInput);
        auto gemmaFile = cs::loadSae(path("gemma-scope-res/layer_0/width_1k/average_l0_9/params.npz"), "blocks.1.hook_resid_post");
        QCOMPARE(gemmaFile->config().hookName, std::string("blocks.1.hook_resid_post"));
        QCOMPARE(gemmaFile->config().hookLayer, 1);
        QCOMPARE(cs::guessGemmaScopeHook("/d/gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_71/params.npz"),
                 std::string("blocks.12.hook_resid_post"));
        QCOMPARE(cs::guessGemmaScopeHook("/my-attempt/gemma-scope-2b-pt-mlp-canonical/layer_3/width_16k/canonical"),
                 std::string("blocks.3.hook_mlp_out"));
        QCOMPARE(cs::guessGemmaScopeHook("/x/gemma-scope-9b-pt-att/layer_5/width_16k/average_l0_9/params.npz"),
                 std::string("blocks.5.attn.hook_z"));
        QCOMPARE(cs::guessGemmaScopeHook("/x/gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6/params.npz"),
                 std::string("hook_embed"));
        QCOMPARE(cs::guessGemmaScopeHook("/x/layer_mine/params.npz"), std::string());
        auto llama = cs::loadSae(path("llamascope_tc"));
        QCOMPARE(int(llama->config().architecture), int(cs::SaeArch::JumpReLUTranscoder));
        QCOMPARE(llama->config().hookName, std::string("blocks.0.ln2.hook_normalized"));
        QCOMPARE(llama->config().hookNameOut, std::string("blocks.0.hook_mlp_out"));
        auto standard = cs::loadSae(path("saelens_standard"));
        QVERIFY(standard->sparsity.defined());
        QCOMPARE(standard->sparsity.size(0), 48L);
        // numpy's own writer, in float64 and compressed float16, reads to the same values.
        auto f64 = cs::loadSae(path("bad/f64.npz"), "blocks.0.hook_resid_post");
        auto f16 = cs::loadSae(path("bad/f16z.npz"), "blocks.0.hook_resid_post");
        QVERIFY(maxAbsDiff(f64->weights().W_enc, f16->weights().W_enc) < 2e-3);
        QVERIFY(f64->weights().W_enc.abs().max().item<double>() > 0.1);
    }

    void encodeDecodeMatchReferenceEveryFormat() {
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            const at::Tensor& x = inputs_.at(name);
            const RefOut& r = ref_.at(name);
            at::Tensor f = sae->encode(x);
            at::Tensor rec = sae->reconstruct(x);
            QCOMPARE(f.sizes().vec(), r.features.sizes().vec());
            QCOMPARE(rec.sizes().vec(), r.reconstruction.sizes().vec());
            // The check must mean something: some features fire, not all, and outputs are O(1).
            const double firing = (r.features != 0).to(at::kDouble).mean().item<double>();
            QVERIFY2(firing > 0.05 && firing < 0.9, (name + ": reference firing fraction " + std::to_string(firing)).c_str());
            QVERIFY2(r.reconstruction.abs().max().item<double>() > 0.3, (name + ": reconstruction too small").c_str());
            const double df = maxAbsDiff(f, r.features), dr = maxAbsDiff(rec, r.reconstruction);
            QVERIFY2(df < 1e-5, (name + ": features differ from the reference by " + std::to_string(df)).c_str());
            QVERIFY2(dr < 1e-5, (name + ": reconstruction differs from the reference by " + std::to_string(dr)).c_str());
            // decode(encode) + skip is what reconstruct means.
            at::Tensor viaDecode = sae->decode(f);
            if (at::Tensor s = sae->skip(x); s.defined()) viaDecode = viaDecode + s;
            QVERIFY(maxAbsDiff(viaDecode, rec) < 1e-6);
        }
    }

    // The indexer reads features through encodeSparse: every format's non-zeros must be the
    // reference's, at the reference's values, with ascending indices per row.
    void sparseEncodeMatchesReferenceEveryFormat() {
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            const at::Tensor x = inputs_.at(name).reshape({-1, sae->dIn()});
            const at::Tensor want = ref_.at(name).features.reshape({x.size(0), sae->dSae()});
            const auto code = sae->encodeSparse(x);
            QCOMPARE(static_cast<long>(code.rowStart.size()), x.size(0) + 1);
            at::Tensor dense = at::zeros({x.size(0), sae->dSae()}, at::kFloat);
            for (long r = 0; r < x.size(0); ++r)
                for (int64_t i = code.rowStart[r]; i < code.rowStart[r + 1]; ++i) {
                    if (i > code.rowStart[r]) QVERIFY(code.index[i] > code.index[i - 1]);
                    QVERIFY(code.value[i] > 0);
                    dense[r][code.index[i]] = code.value[i];
                }
            const double d = maxAbsDiff(dense, want);
            QVERIFY2(d < 1e-5, (name + ": sparse features differ from the reference by " + std::to_string(d)).c_str());
            QCOMPARE(static_cast<long>(code.index.size()), (want > 0).sum().item<long>());
        }
    }

    void decoderNormFoldingKeepsReconstructions() {
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            if (sae->config().architecture == cs::SaeArch::TopK) {
                expectOneLineError([&] { sae->foldDecoderNorm(); }, {sae->config().source, "topk"});
                continue;
            }
            sae->foldDecoderNorm();
            const at::Tensor norms = sae->weights().W_dec.norm(2, {1});
            QVERIFY2(maxAbsDiff(norms, at::ones_like(norms)) < 1e-5, (name + ": decoder rows are not unit norm").c_str());
            const RefOut& r = ref_.at(name);
            const double df = maxAbsDiff(sae->encode(inputs_.at(name)), r.folded);
            const double dr = maxAbsDiff(sae->reconstruct(inputs_.at(name)), r.reconstruction);
            QVERIFY2(df < 1e-5, (name + ": folded features differ by " + std::to_string(df)).c_str());
            QVERIFY2(dr < 1e-5, (name + ": folding changed the reconstruction by " + std::to_string(dr)).c_str());
        }
    }

    void saveSaeLensRoundTripsAndTheReferenceReadsIt() {
        const std::string out = makeTempDir("sae-saved");
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            cs::saveSaeLens(*sae, out + "/" + name);
            auto back = cs::loadSae(out + "/" + name);
            const auto& a = sae->config();
            const auto& b = back->config();
            QCOMPARE(int(b.architecture), int(a.architecture));
            QCOMPARE(b.format, std::string("saelens"));
            QCOMPARE(b.dIn, a.dIn);
            QCOMPARE(b.dSae, a.dSae);
            QCOMPARE(b.dOut, a.dOut);
            QCOMPARE(b.k, a.k);
            QCOMPARE(b.applyBDecToInput, a.applyBDecToInput);
            QCOMPARE(b.hookName, a.hookName);
            QCOMPARE(b.hookNameOut, a.hookNameOut);
            QCOMPARE(b.modelName, a.modelName);
            QCOMPARE(back->sparsity.defined(), sae->sparsity.defined());
            const at::Tensor& x = inputs_.at(name);
            QVERIFY2(maxAbsDiff(back->encode(x), sae->encode(x)) < 1e-6, name.c_str());
            QVERIFY2(maxAbsDiff(back->reconstruct(x), sae->reconstruct(x)) < 1e-6, name.c_str());
            const auto cfg = nlohmann::json::parse(readFile(out + "/" + name + "/cfg.json"));
            QCOMPARE(cfg["metadata"]["hook_name"].get<std::string>(), a.hookName);
        }
        // Half precision: half the bytes, dtype in cfg.json, and the same features to f16 rounding.
        for (const auto& [name, format] : formats_) {
            auto sae = cs::loadSae(path(name));
            const std::string half = out + "/" + name + "-f16";
            cs::saveSaeLens(*sae, half, true);
            auto back = cs::loadSae(half);
            QCOMPARE(nlohmann::json::parse(readFile(half + "/cfg.json"))["dtype"].get<std::string>(), std::string("float16"));
            const auto full = std::filesystem::file_size(out + "/" + name + "/sae_weights.safetensors");
            const auto small = std::filesystem::file_size(half + "/sae_weights.safetensors");
            QVERIFY2(small < full * 0.6, name.c_str());
            const at::Tensor& x = inputs_.at(name);
            const at::Tensor f = sae->encode(x), g = back->encode(x);
            const double rel = maxAbsDiff(g, f) / std::max(1e-6, f.abs().max().item<double>());
            QVERIFY2(rel < 1e-2, (name + " " + std::to_string(rel)).c_str());
        }
        // The reference reads the saved folders as SAELens files (strict names and orientation),
        // and must agree with what it computed from the originals in their own formats.
        auto saved = reference(jobsFor(out, "", true));
        for (const auto& [name, format] : formats_) {
            const double df = maxAbsDiff(saved.at(name).features, ref_.at(name).features);
            const double dr = maxAbsDiff(saved.at(name).reconstruction, ref_.at(name).reconstruction);
            QVERIFY2(df < 1e-5 && dr < 1e-5, (name + ": saved SAELens copy disagrees: " + std::to_string(df) + ", " +
                                              std::to_string(dr)).c_str());
        }
    }

    void splicingWithErrorTermKeepsLogitsWithoutChangesThem() {
        auto model = cs::loadModel(model_);
        const at::Tensor ids = tokens({3, 14, 15, 9, 26, 5, 35, 8});
        const at::Tensor clean = model->forward(ids);
        QVERIFY(clean.abs().max().item<double>() > 0.5);
        for (const std::string name : {"saelens_standard", "saelens_jumprelu", "saelens_gated", "saelens_topk",
                                       "llamascope", "saelens_transcoder", "saelens_skip_transcoder",
                                       "saelens_jumprelu_transcoder", "llamascope_tc"}) {
            auto sae = cs::loadSae(path(name));
            for (bool keepError : {true, false}) {
                cs::Hooks hooks;
                cs::AttachOptions opt;
                opt.splice = true;
                opt.keepError = keepError;
                cs::attachSae(hooks, *model, sae, opt, nullptr);
                const std::string in = sae->config().hookName;
                const std::string out = cs::isTranscoder(sae->config().architecture) ? sae->config().hookNameOut : in;
                hooks.cache(in);
                hooks.cache(out);
                cs::ActivationCache cache;
                cs::RunOptions o;
                o.hooks = &hooks;
                o.cache = &cache;
                const double d = maxAbsDiff(model->forward(ids, o), clean);
                if (keepError) {
                    QVERIFY2(d < 1e-4, (name + ": splicing with the error term moved logits by " + std::to_string(d)).c_str());
                } else {
                    QVERIFY2(d > 1e-3, (name + ": splicing without the error term left logits unchanged").c_str());
                    // What the model saw at the output hook is the SAE's estimate from the input hook.
                    // (For SAEs the cache holds the replaced value, so compare with the clean run's input.)
                    cs::Hooks plain;
                    plain.cache(in);
                    cs::ActivationCache cleanCache;
                    cs::RunOptions p;
                    p.hooks = &plain;
                    p.cache = &cleanCache;
                    model->forward(ids, p);
                    const at::Tensor expected = sae->reconstruct(cleanCache.at(in).flatten(2));
                    QVERIFY2(maxAbsDiff(cache.at(out).flatten(2), expected) < 1e-5, (name + ": spliced value is not the reconstruction").c_str());
                }
            }
        }
    }

    // Evaluation splices everywhere but BOS: masked positions keep the model's own activation,
    // the rest get the reconstruction; a mask of the wrong shape is refused with the SAE named.
    void splicingLeavesMaskedPositionsAlone() {
        auto model = cs::loadModel(model_);
        const at::Tensor ids = tokens({3, 14, 15, 9, 26, 5, 35, 8});
        for (const std::string name : {"saelens_topk", "saelens_transcoder"}) {
            auto sae = cs::loadSae(path(name));
            const std::string in = sae->config().hookName;
            const std::string out = cs::isTranscoder(sae->config().architecture) ? sae->config().hookNameOut : in;
            cs::Hooks plain;
            plain.cache(in);
            plain.cache(out);
            cs::ActivationCache clean;
            cs::RunOptions p;
            p.hooks = &plain;
            p.cache = &clean;
            model->forward(ids, p);
            const at::Tensor reconstructed = sae->reconstruct(clean.at(in).flatten(2));
            at::Tensor keep = at::zeros({1, 8}, at::kBool);
            keep[0][0] = true;
            keep[0][5] = true;
            cs::Hooks hooks;
            cs::AttachOptions opt;
            opt.splice = true;
            opt.keepError = false;
            opt.keep = keep;
            cs::attachSae(hooks, *model, sae, opt, nullptr);
            hooks.cache(out);
            cs::ActivationCache cache;
            cs::RunOptions o;
            o.hooks = &hooks;
            o.cache = &cache;
            model->forward(ids, o);
            const at::Tensor seen = cache.at(out).flatten(2)[0];
            for (long t = 0; t < 8; ++t) {
                const bool kept = t == 0 || t == 5;
                const at::Tensor expected = kept ? clean.at(out).flatten(2)[0][t] : reconstructed[0][t];
                QVERIFY2(maxAbsDiff(seen[t], expected) < 1e-5, (name + ": position " + std::to_string(t)).c_str());
            }
            QVERIFY2(maxAbsDiff(seen[1], clean.at(out).flatten(2)[0][1]) > 1e-3, (name + ": nothing was spliced").c_str());
            cs::Hooks bad;
            opt.keep = at::zeros({1, 3}, at::kBool);
            cs::attachSae(bad, *model, sae, opt, nullptr);
            cs::RunOptions b;
            b.hooks = &bad;
            expectOneLineError([&] { model->forward(ids, b); }, {sae->config().source, "mask of positions to keep"});
        }
    }

    void attachedFeaturesEqualEncodeOfTheActivation() {
        auto model = cs::loadModel(model_);
        const std::vector<long> ids = {7, 1, 4, 22, 9, 30};
        const at::Tensor clean = model->forward(tokens(ids));
        for (const std::string name : {"saelens_standard", "saelens_skip_transcoder"}) {
            auto sae = cs::loadSae(path(name));
            cs::Hooks hooks;
            cs::FeatureSink sink;
            cs::attachSae(hooks, *model, sae, {}, &sink);
            hooks.cache(sae->config().hookName);
            cs::ActivationCache cache;
            cs::RunOptions o;
            o.hooks = &hooks;
            o.cache = &cache;
            QCOMPARE(maxAbsDiff(model->forward(tokens(ids), o), clean), 0.0);  // reading changes nothing
            QVERIFY(sink.features.defined());
            QCOMPARE(sink.features.sizes().vec(), (std::vector<int64_t>{1, 6, sae->dSae()}));
            const at::Tensor expected = sae->encode(cache.at(sae->config().hookName));
            QVERIFY(expected.abs().max().item<double>() > 0.01);
            QVERIFY2(maxAbsDiff(sink.features, expected) < 1e-6, name.c_str());

            // With a KV cache the sink appends each step's features along pos.
            cs::FeatureSink stepSink;
            cs::Hooks stepHooks;
            cs::attachSae(stepHooks, *model, sae, {}, &stepSink);
            cs::KvCache kv = model->makeKvCache(1, 16);
            cs::RunOptions s;
            s.hooks = &stepHooks;
            s.kv = &kv;
            model->forward(tokens({ids.begin(), ids.begin() + 4}), s);
            model->forward(tokens({ids[4]}), s);
            model->forward(tokens({ids[5]}), s);
            QCOMPARE(stepSink.features.sizes().vec(), sink.features.sizes().vec());
            QVERIFY2(maxAbsDiff(stepSink.features, sink.features) < 1e-4, (name + ": KV-cache features differ").c_str());
        }
    }

    void badInputGivesClearErrors() {
        auto model = cs::loadModel(model_);
        cs::Hooks hooks;
        const std::string standard = path("saelens_standard");
        // d_in does not match the hook's width (mlp.hook_post is d_mlp = 128 wide).
        auto wrongHook = cs::loadSae(standard, "blocks.0.mlp.hook_post");
        expectOneLineError([&] { cs::attachSae(hooks, *model, wrongHook, {}, nullptr); },
                     {wrongHook->config().source, "blocks.0.mlp.hook_post", "32", "128"});
        // A hook the model does not have.
        auto noHook = cs::loadSae(standard, "blocks.9.hook_resid_post");
        expectOneLineError([&] { cs::attachSae(hooks, *model, noHook, {}, nullptr); },
                     {noHook->config().source, "blocks.9.hook_resid_post"});
        // Transcoders: reading needs only the input hook; splicing checks the output hook too.
        cs::AttachOptions splice;
        splice.splice = true;
        auto early = cs::loadSae(path("saelens_skip_transcoder"), "blocks.1.mlp.hook_post");
        cs::attachSae(hooks, *model, early, {}, nullptr);
        expectOneLineError([&] { cs::attachSae(hooks, *model, early, splice, nullptr); },
                     {early->config().source, "blocks.0.hook_mlp_out", "does not come after"});
        std::string d = copyDir(path("saelens_transcoder"), "tcout");
        auto cfg = nlohmann::json::parse(readFile(d + "/cfg.json"));
        cfg["metadata"]["hook_name_out"] = "blocks.0.mlp.hook_post";
        writeFile(d + "/cfg.json", cfg.dump());
        auto wideOut = cs::loadSae(d);
        expectOneLineError([&] { cs::attachSae(hooks, *model, wideOut, splice, nullptr); },
                     {wideOut->config().source, "blocks.0.mlp.hook_post", "d_out = 32", "128"});

        // Unknown architecture.
        d = copyDir(standard, "arch");
        cfg = nlohmann::json::parse(readFile(d + "/cfg.json"));
        cfg["architecture"] = "mamba_sae";
        writeFile(d + "/cfg.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/cfg.json", "mamba_sae"});
        // Unknown old-style activation function.
        d = copyDir(path("saelens_flat"), "act");
        cfg = nlohmann::json::parse(readFile(d + "/cfg.json"));
        cfg["activation_fn_str"] = "gelu";
        writeFile(d + "/cfg.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/cfg.json", "activation_fn_str", "gelu"});
        // Normalisation we cannot reproduce, or a scale that is not given.
        cfg["activation_fn_str"] = "relu";
        cfg["normalize_activations"] = "constant_norm_rescale";
        writeFile(d + "/cfg.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/cfg.json", "constant_norm_rescale"});
        cfg["normalize_activations"] = true;
        writeFile(d + "/cfg.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/cfg.json", "norm_scaling_factor"});
        // d_sae in cfg.json disagrees with the weights.
        d = copyDir(standard, "shape");
        cfg = nlohmann::json::parse(readFile(d + "/cfg.json"));
        cfg["d_sae"] = 40;
        writeFile(d + "/cfg.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors", "W_enc", "[32,48]", "[32,40]"});
        // Missing files and tensors.
        d = copyDir(standard, "nofile");
        fs::remove(d + "/sae_weights.safetensors");
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors"});
        expectOneLineError([&] { cs::loadSae(makeTempDir("empty")); }, {"no SAE found"});
        expectOneLineError([&] { cs::loadSae(saes_ + "/nowhere"); }, {saes_ + "/nowhere", "missing"});
        auto rewrite = [&](const std::string& from, const std::string& tag,
                           const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
            const std::string to = copyDir(from, tag);
            auto st = cs::SafetensorsFile::open(from + "/sae_weights.safetensors");
            std::vector<std::pair<std::string, at::Tensor>> ts;
            for (const auto& [n, info] : st->tensors()) ts.push_back({n, st->load(n).clone()});
            edit(ts);
            cs::writeSafetensors(to + "/sae_weights.safetensors", ts);
            return to;
        };
        d = rewrite(path("saelens_jumprelu"), "notensor", [](auto& ts) {
            for (size_t i = 0; i < ts.size(); ++i)
                if (ts[i].first == "threshold") ts.erase(ts.begin() + i);
        });
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors", "threshold"});
        // NaN and Inf weights.
        d = rewrite(standard, "nan", [](auto& ts) {
            for (auto& [n, t] : ts)
                if (n == "W_enc") t[3][7] = std::nan("");
        });
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors", "W_enc", "NaN"});
        d = rewrite(path("saelens_jumprelu"), "inf", [](auto& ts) {
            for (auto& [n, t] : ts)
                if (n == "threshold") t[5] = INFINITY;
        });
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors", "threshold", "Inf"});
        // W_skip stored in our orientation instead of SAELens' [d_out, d_in].
        d = rewrite(path("saelens_skip_transcoder"), "skip", [](auto& ts) {
            for (auto& [n, t] : ts)
                if (n == "W_skip") t = t.t().contiguous();
        });
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/sae_weights.safetensors", "W_skip", "[32,128]"});
        // Llama Scope: a missing norm and a missing tensor.
        d = copyDir(path("llamascope"), "llamanorm");
        cfg = nlohmann::json::parse(readFile(d + "/hyperparams.json"));
        cfg.erase("dataset_average_activation_norm");
        cfg["norm_activation"] = "dataset-wise";
        writeFile(d + "/hyperparams.json", cfg.dump());
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/hyperparams.json", "dataset_average_activation_norm"});
        d = copyDir(path("llamascope"), "llamaw");
        fs::remove(d + "/checkpoints/final.safetensors");
        expectOneLineError([&] { cs::loadSae(d); }, {d + "/checkpoints/final.safetensors"});

        // Broken .npz files.
        const std::string bad = path("bad");
        const std::string gemma = path("gemma-scope-res/layer_0/width_1k/average_l0_9/params.npz");
        const std::string hook = "blocks.0.hook_resid_post";
        expectOneLineError([&] { cs::loadSae(bad + "/fortran.npz", hook); }, {bad + "/fortran.npz", "W_enc", "Fortran"});
        expectOneLineError([&] { cs::loadSae(bad + "/dtype.npz", hook); }, {bad + "/dtype.npz", "W_enc", "dtype '<c8'"});
        expectOneLineError([&] { cs::loadSae(bad + "/truncated.npz", hook); }, {bad + "/truncated.npz", "W_enc", "truncated"});
        expectOneLineError([&] { cs::loadSae(bad + "/magic.npz", hook); }, {bad + "/magic.npz", "W_enc", "magic"});
        expectOneLineError([&] { cs::loadSae(bad + "/nothreshold.npz", hook); }, {bad + "/nothreshold.npz", "threshold"});
        const std::string npzDir = makeTempDir("npz");
        writeFile(npzDir + "/text.npz", "this is not a zip archive at all");
        expectOneLineError([&] { cs::loadSae(npzDir + "/text.npz", hook); }, {npzDir + "/text.npz", "zip"});
        const std::string bytes = readFile(gemma);
        writeFile(npzDir + "/cut.npz", bytes.substr(0, bytes.size() / 2));
        expectOneLineError([&] { cs::loadSae(npzDir + "/cut.npz", hook); }, {npzDir + "/cut.npz"});
        // Gemma Scope with no hook given and none in the path.
        writeFile(npzDir + "/params.npz", bytes);
        expectOneLineError([&] { cs::loadSae(npzDir + "/params.npz"); }, {npzDir + "/params.npz", "hook"});
        // NpzFile directly: names and a missing array.
        auto npz = cs::NpzFile::open(gemma);
        QCOMPARE(npz->names().size(), size_t(5));
        expectOneLineError([&] { npz->load("W_gate"); }, {gemma, "W_gate"});
    }
};

QTEST_GUILESS_MAIN(TestSae)
#include "test_sae.moc"
