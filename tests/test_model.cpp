// The transformer runtime against an independent PyTorch reference (tests/reference/), on random
// checkpoints the reference writes and, when ../shared is present, on real stories260K weights.
#include "TestSupport.h"

#include "attribution/AttentionDecomposition.h"
#include "attribution/Attribution.h"
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "runtime/Threads.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <set>
#include <tuple>

using namespace cstest;

namespace {

std::string makeModel(const std::string& tag, const std::string& args) {
    const std::string dir = makeTempDir(tag);
    runReference("make_random_model.py", "--out " + shellQuote(dir) + " " + args);
    return dir;
}

std::string idsArg(const std::vector<std::vector<long>>& rows) {
    std::string s;
    for (size_t r = 0; r < rows.size(); ++r) {
        if (r) s += ";";
        for (size_t i = 0; i < rows[r].size(); ++i) s += (i ? "," : "") + std::to_string(rows[r][i]);
    }
    return s;
}

nlohmann::json reference(const std::string& dir, const std::vector<std::vector<long>>& rows,
                         const std::string& extra = "") {
    const std::string out = makeTempDir("ref") + "/out.json";
    runReference("ref_transformer.py", "--model " + shellQuote(dir) + " --tokens " + shellQuote(idsArg(rows)) +
                                           " --out " + shellQuote(out) + " " + extra);
    return nlohmann::json::parse(readFile(out));
}

at::Tensor toTensor(const nlohmann::json& logits) {
    std::vector<double> flat;
    const long B = logits.size(), T = logits[0].size(), V = logits[0][0].size();
    for (const auto& b : logits)
        for (const auto& t : b)
            for (const auto& v : t) flat.push_back(v.get<double>());
    return at::tensor(flat, at::kDouble).view({B, T, V});
}

at::Tensor batch(const std::vector<std::vector<long>>& rows) {
    std::vector<long> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return at::tensor(flat, at::kLong).view({static_cast<long>(rows.size()), static_cast<long>(rows[0].size())});
}

std::vector<std::vector<long>> randomRows(long B, long T, long V, uint64_t seed) {
    std::vector<std::vector<long>> rows(B);
    uint64_t s = seed;
    for (auto& r : rows)
        for (long t = 0; t < T; ++t) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            r.push_back(static_cast<long>((s >> 33) % V));
        }
    return rows;
}

double maxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::string joined(const std::vector<std::string>& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ",") + n;
    return list;
}

// Logits of every position of `seq` as generation computes them: the first `promptLength` tokens
// in one call, then one token per call through the KV cache.
at::Tensor logitsThroughKvCache(const cs::Transformer& model, const std::vector<long>& seq, long promptLength) {
    cs::KvCache kv = model.makeKvCache(1, static_cast<long>(seq.size()));
    cs::RunOptions o;
    o.kv = &kv;
    std::vector<at::Tensor> parts{model.forward(at::tensor(std::vector<long>(seq.begin(), seq.begin() + promptLength), at::kLong).unsqueeze(0), o)};
    for (size_t i = static_cast<size_t>(promptLength); i < seq.size(); ++i)
        parts.push_back(model.forward(at::full({1, 1}, seq[i], at::kLong), o));
    return at::cat(parts, 1);
}

// A copy of the model directory with config.json edited by `edit`.
std::string withConfig(const std::string& dir, const std::string& tag, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = makeTempDir(tag);
    if (run("cp " + shellQuote(dir) + "/* " + shellQuote(d)) != 0) throw std::runtime_error("cp failed");
    auto cfg = nlohmann::json::parse(readFile(d + "/config.json"));
    edit(cfg);
    writeFile(d + "/config.json", cfg.dump());
    return d;
}

// Gemma 2 as the tests use it: head_dim 16 != 48 / 4, query_pre_attn_scalar 24 != head_dim, soft-caps
// small enough that tanh bends the scores (about N(0, 1)) and the logits (up to about 6), a window
// of 4 (layers 0 and 2) under the 13-token inputs, and norm weights N(0, 0.1^2) around Gemma's 0.
const char* const kGemma2 = "--arch gemma2 --layers 3 --d-model 48 --heads 4 --kv-heads 2 --head-dim 16 --vocab 61 "
                            "--ctx 64 --query-pre-attn-scalar 24 --attn-softcap 2 --sliding-window 4";

void expectThrows(const std::function<void()>& fn, const std::string& mustContain) {
    try {
        fn();
    } catch (const cs::Error& e) {
        const std::string msg = e.what();
        if (msg.find(mustContain) == std::string::npos)
            QFAIL(("error message '" + msg + "' does not mention '" + mustContain + "'").c_str());
        return;
    }
    QFAIL(("no cs::Error thrown; expected one mentioning '" + mustContain + "'").c_str());
}

}  // namespace

class TestModel : public QObject {
    Q_OBJECT
private:
    void compareWithReference(const std::string& dir, long B, long T, uint64_t seed) {
        // In fp32 whatever the file stores: the reference computes the file's own values in float64,
        // and a bf16 matmul would round the activations too (test_precision checks that mode).
        cs::ModelLoadOptions exact;
        exact.precision = cs::WeightPrecision::F32;
        auto model = cs::loadModel(dir, exact);
        auto rows = randomRows(B, T, model->config().vocabSize, seed);
        at::Tensor ours = model->forward(batch(rows));
        at::Tensor ref = toTensor(reference(dir, rows)["logits"]);
        QCOMPARE(ours.sizes().vec(), ref.sizes().vec());
        const double diff = maxAbsDiff(ours, ref);
        // Sanity: the logits must not be trivially small, or 1e-4 would prove nothing.
        QVERIFY2(ref.abs().max().item<double>() > 0.5, "reference logits are too small to be a real check");
        QVERIFY2(diff < 1e-4, ("max |ours - reference| = " + std::to_string(diff)).c_str());
    }

private Q_SLOTS:
    void initTestCase() { cs::setComputeThreads(2); }

    void gpt2Prefixed() { compareWithReference(makeModel("gpt2a", "--arch gpt2 --seed 1 --layers 2 --d-model 64 --heads 4 --vocab 101 --ctx 32"), 2, 11, 7); }
    void gpt2NoPrefixF16CustomMlp() {
        compareWithReference(makeModel("gpt2b", "--arch gpt2 --seed 2 --layers 3 --d-model 48 --heads 3 --d-mlp 80 --vocab 67 --ctx 24 --dtype f16 --no-prefix"), 1, 24, 8);
    }
    void llamaGqaTied() { compareWithReference(makeModel("llamaa", "--arch llama --seed 3 --layers 2 --d-model 64 --heads 4 --kv-heads 2 --vocab 97 --ctx 32"), 2, 13, 9); }
    void llamaUntiedBf16Sharded() {
        compareWithReference(makeModel("llamab", "--arch llama --seed 4 --layers 3 --d-model 32 --heads 4 --kv-heads 1 --d-mlp 72 --vocab 53 --ctx 40 --dtype bf16 --untied --shards 2 --rope-theta 500"), 1, 40, 10);
    }

    // Gemma 2 against the reference: logits, the activations its extra parts produce, and the hook
    // points TransformerLens gives it, in the order a forward pass fires them.
    void gemma2LogitsHooksAndNames() {
        const std::string dir = makeModel("gemma2", std::string(kGemma2) + " --seed 21 --final-softcap 5");
        compareWithReference(dir, 2, 13, 23);
        auto model = cs::loadModel(dir);
        const auto& cfg = model->config();
        QCOMPARE(cfg.dHead, 16);
        QCOMPARE(cfg.attentionWindow, (std::vector<int>{4, 0, 4}));

        std::vector<std::vector<long>> rows = randomRows(1, 13, cfg.vocabSize, 29);
        cs::Hooks hooks;
        hooks.cacheAll();
        std::vector<std::string> fired;
        for (const auto& hp : model->hookPoints())
            hooks.add(hp.name, [&fired](at::Tensor&, const cs::HookContext& c) { fired.push_back(c.name); });
        cs::ActivationCache cache;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        model->forward(batch(rows), o);
        std::vector<std::string> listed;
        for (const auto& hp : model->hookPoints()) listed.push_back(hp.name);
        QCOMPARE(fired, listed);  // steering relies on hookPoints() being the firing order
        for (const std::string n : {"blocks.0.ln1_post.hook_scale", "blocks.0.ln1_post.hook_normalized",
                                    "blocks.2.ln2_post.hook_scale", "blocks.2.ln2_post.hook_normalized"})
            QVERIFY2(cache.count(n), (n + " is not a hook point").c_str());
        // As in TransformerLens, hook_attn_out / hook_mlp_out are the post-normed outputs.
        QCOMPARE(maxAbsDiff(cache.at("blocks.1.hook_attn_out"), cache.at("blocks.1.ln1_post.hook_normalized")), 0.0);
        QCOMPARE(maxAbsDiff(cache.at("blocks.1.hook_mlp_out"), cache.at("blocks.1.ln2_post.hook_normalized")), 0.0);
        // The sliding layer's query 12 sees keys 9..12 only; the full layer sees all 13.
        const at::Tensor sliding = cache.at("blocks.0.attn.hook_pattern")[0].select(1, 12);  // [H, Tk]
        QCOMPARE(sliding.narrow(1, 0, 9).abs().max().item<double>(), 0.0);
        QVERIFY(cache.at("blocks.1.attn.hook_pattern")[0].select(1, 12).narrow(1, 0, 9).min().item<double>() > 0);

        const std::vector<std::string> names = {
            "hook_embed", "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "blocks.0.ln1_post.hook_scale",
            "blocks.0.ln1_post.hook_normalized", "blocks.0.hook_attn_out", "blocks.1.ln2.hook_normalized",
            "blocks.1.ln2_post.hook_scale", "blocks.1.hook_mlp_out", "blocks.2.hook_resid_post", "ln_final.hook_normalized"};
        auto ref = reference(dir, rows, "--dump-hooks " + joined(names))["hooks"];
        for (const auto& n : names) {
            at::Tensor r = at::tensor(ref[n]["data"].get<std::vector<double>>(), at::kDouble)
                               .view(ref[n]["shape"].get<std::vector<int64_t>>());
            QCOMPARE(cache.at(n).sizes().vec(), r.sizes().vec());
            const double d = maxAbsDiff(cache.at(n), r);
            QVERIFY2(d < 1e-4, (n + ": max diff " + std::to_string(d)).c_str());
        }

        std::string out;
        QCOMPARE(run(shellQuote(CS_CLI_PATH) + " hooks --model " + shellQuote(dir) + " 2>&1", &out), 0);
        for (const std::string n : {"blocks.2.ln1_post.hook_scale\t", "blocks.2.ln1_post.hook_normalized\t",
                                    "blocks.2.ln2_post.hook_scale\t", "blocks.2.ln2_post.hook_normalized\t"})
            QVERIFY2(out.find(n) != std::string::npos, ("`circuitscope hooks` does not list " + n).c_str());

        // Attribution freezes norm scales by name and reads the logits linearly: it refuses Gemma 2.
        expectOneLineError([&] { cs::computeAttribution(*model, {}, {1, 2, 3}); }, {"attribution", "gemma2"});
        expectOneLineError([&] { cs::decomposeAttention(*model, {}, {1, 2, 3}, cs::AttentionEdge{1, 0, 2, 1}); },
                           {"attention decomposition", "gemma2"});
    }

    // layer_types overrides the even/odd rule; soft-caps set to null are off.
    void gemma2LayerTypesAndNullSoftcaps() {
        compareWithReference(makeModel("gemma2lt", std::string(kGemma2) + " --seed 31 --layer-types fsf --final-softcap 0"), 1, 13, 37);
        auto model = cs::loadModel(makeModel("gemma2nc", std::string(kGemma2) + " --seed 31 --attn-softcap 0 --final-softcap 0"));
        QCOMPARE(model->config().attnSoftcap, 0.0);
        QCOMPARE(model->config().finalSoftcap, 0.0);
    }

    // The KV cache applies the window too: generating past it, every step's logits equal a full
    // recomputation's, and the greedy tokens equal the reference's (which has no cache at all).
    // Untied and with small embeddings, so that greedy decoding does not repeat one token.
    void gemma2KvCacheAcrossTheWindow() {
        const std::string dir = makeModel("gemma2kv", std::string(kGemma2) + " --seed 21 --final-softcap 2 --untied --std 0.1");
        auto model = cs::loadModel(dir);
        const std::vector<long> prompt = {1, 5, 9, 3, 7};
        cs::SamplingOptions s;
        s.maxNewTokens = 20;
        s.stopAtEos = false;
        const std::vector<long> withCache = cs::generate(*model, prompt, s);
        s.useKvCache = false;
        QCOMPARE(cs::generate(*model, prompt, s), withCache);
        QCOMPARE(withCache, reference(dir, {prompt}, "--generate 20")["generated"].get<std::vector<long>>());
        QVERIFY2(std::set<long>(withCache.begin(), withCache.end()).size() > 4, "generation repeats itself: a weak check");

        std::vector<long> seq = prompt;
        seq.insert(seq.end(), withCache.begin(), withCache.end());
        const at::Tensor full = model->forward(batch({seq}));
        const double d = maxAbsDiff(logitsThroughKvCache(*model, seq, static_cast<long>(prompt.size())), full);
        QVERIFY2(d < 1e-4, ("cached vs full logits: max diff " + std::to_string(d)).c_str());
    }

    // Llama 3.x's rope_scaling. With head_dim 16 and theta 1e4 the wavelengths are 6.3, 20, 63, 199,
    // 628, ... positions; against an original context of 256 (high_freq_factor 4, low 1) the first
    // three keep their frequency, 199 is interpolated and the rest are divided by the factor, so
    // every branch counts. 40 positions make the low frequencies' change visible.
    void llama3RopeScaling() {
        compareWithReference(makeModel("llama3", "--arch llama --seed 41 --layers 2 --d-model 64 --heads 4 --kv-heads 2 --vocab 67 --ctx 64 "
                                                 "--rope-scaling llama3 --rope-factor 8 --rope-original-ctx 256"), 1, 40, 43);
        compareWithReference(makeModel("llamalin", "--arch llama --seed 47 --layers 2 --d-model 32 --heads 2 --vocab 53 --ctx 48 "
                                                   "--rope-scaling linear --rope-factor 4"), 1, 40, 53);
    }

    // attention_bias: q, k, v and o biases, with a head_dim that is not d_model / heads.
    void llamaAttentionBiasAndHeadDim() {
        compareWithReference(makeModel("llamab", "--arch llama --seed 59 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --head-dim 12 "
                                                 "--vocab 53 --ctx 32 --attention-bias --untied"), 2, 11, 61);
    }

    // Qwen 2: biases on q, k and v, tied or not; the sliding window from max_window_layers on.
    void qwen2TiedUntiedAndSliding() {
        compareWithReference(makeModel("qwen2a", "--arch qwen2 --seed 67 --layers 2 --d-model 64 --heads 4 --kv-heads 2 --vocab 71 --ctx 32"), 2, 13, 71);
        compareWithReference(makeModel("qwen2b", "--arch qwen2 --seed 73 --layers 2 --d-model 32 --heads 4 --kv-heads 1 --vocab 53 --ctx 32 "
                                                 "--untied --dtype bf16"), 1, 17, 79);
        const std::string sliding = makeModel("qwen2s", "--arch qwen2 --seed 83 --layers 3 --d-model 32 --heads 4 --vocab 53 --ctx 32 "
                                                        "--sliding-window 5 --max-window-layers 1");
        QCOMPARE(cs::loadModel(sliding)->config().attentionWindow, (std::vector<int>{0, 5, 5}));
        compareWithReference(sliding, 1, 17, 89);
    }

    // Bad values in the new fields: one-line errors naming config.json and the field, no crash.
    void newFieldsGiveClearErrors() {
        const std::string gemma = makeModel("gemma2bad", std::string(kGemma2) + " --seed 3 --layers 2");
        const std::string llama = makeModel("llamabad", "--arch llama --seed 3 --layers 1 --d-model 16 --heads 2 --vocab 20 --ctx 8");
        const std::string qwen = makeModel("qwenbad", "--arch qwen2 --seed 3 --layers 1 --d-model 16 --heads 2 --vocab 20 --ctx 8");
        using Json = nlohmann::json;
        const std::vector<std::tuple<std::string, std::function<void(Json&)>, std::string>> cases = {
            {gemma, [](Json& c) { c["sliding_window"] = -3; }, "'sliding_window'"},
            {gemma, [](Json& c) { c["attn_logit_softcapping"] = 0; }, "'attn_logit_softcapping'"},
            {gemma, [](Json& c) { c["final_logit_softcapping"] = "big"; }, "'final_logit_softcapping'"},
            {gemma, [](Json& c) { c["query_pre_attn_scalar"] = 0; }, "'query_pre_attn_scalar'"},
            {gemma, [](Json& c) { c["head_dim"] = -16; }, "'head_dim'"},
            {gemma, [](Json& c) { c["layer_types"] = {"sliding_attention"}; }, "'layer_types'"},
            {gemma, [](Json& c) { c["layer_types"] = {"sliding_attention", "local"}; }, "'layer_types'"},
            {gemma, [](Json& c) { c["hidden_activation"] = "tanh"; }, "'hidden_activation'"},
            {llama, [](Json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, "'rope_scaling.rope_type' has unsupported value 'yarn'"},
            {llama, [](Json& c) { c["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}}; }, "'rope_scaling.type' has unsupported value 'dynamic'"},
            {llama, [](Json& c) { c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", -1}}; }, "'rope_scaling.factor'"},
            {llama, [](Json& c) { c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"high_freq_factor", 4},
                                                       {"original_max_position_embeddings", 8192}}; }, "'rope_scaling.low_freq_factor'"},
            {llama, [](Json& c) { c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 4},
                                                       {"high_freq_factor", 1}, {"original_max_position_embeddings", 8192}}; }, "'rope_scaling.high_freq_factor'"},
            {llama, [](Json& c) { c["rope_scaling"] = 3; }, "'rope_scaling'"},
            {llama, [](Json& c) { c["mlp_bias"] = true; }, "'mlp_bias'"},
            {qwen, [](Json& c) { c["use_sliding_window"] = true; c["sliding_window"] = 0; }, "'sliding_window'"},
            {qwen, [](Json& c) { c["use_sliding_window"] = true; c["sliding_window"] = 4; c["max_window_layers"] = -1; }, "'max_window_layers'"},
        };
        int i = 0;
        for (const auto& [dir, edit, field] : cases) {
            const std::string d = withConfig(dir, "field" + std::to_string(i++), edit);
            expectOneLineError([&] { cs::loadModel(d); }, {"config.json", field});
        }
        // attention_bias true promises biases the checkpoint does not have.
        const std::string noBias = withConfig(llama, "nobias", [](Json& c) { c["attention_bias"] = true; });
        expectOneLineError([&] { cs::loadModel(noBias); }, {"self_attn.q_proj.bias"});
        // A list of end-of-turn ids (instruction-tuned Llama 3) is read, not refused: the first stops generation.
        const std::string eosList = withConfig(llama, "eos", [](Json& c) { c["eos_token_id"] = {2, 7}; });
        QCOMPARE(cs::loadModel(eosList)->config().eosTokenId, 2);
    }

    // The logit lens reads a residual through the model's own head (logitsFromResidual): for the last
    // layer that is the model's output, Gemma 2's final soft-cap included.
    void logitLensOfTheLastLayerIsTheOutput() {
        for (const std::string& args : {std::string(kGemma2) + " --seed 21 --final-softcap 5",
                                       std::string("--arch qwen2 --seed 5 --layers 2 --d-model 32 --heads 4 --vocab 41 --ctx 16")}) {
            auto model = cs::loadModel(makeModel("lens", args));
            const std::string last = "blocks." + std::to_string(model->config().nLayers - 1) + ".hook_resid_post";
            cs::Hooks hooks;
            hooks.cache(last);
            cs::ActivationCache cache;
            cs::RunOptions o;
            o.hooks = &hooks;
            o.cache = &cache;
            const at::Tensor logits = model->forward(batch(randomRows(1, 9, model->config().vocabSize, 3)), o);
            const double d = maxAbsDiff(model->logitsFromResidual(cache.at(last)), logits);
            QVERIFY2(d < 1e-5, (args.substr(0, 13) + ": lens vs output, max diff " + std::to_string(d)).c_str());
        }
    }

    void stories260KLogitsAndGeneration() {
        const std::string shared = sharedDir();
        if (shared.empty()) QSKIP("../shared absent: skipping the real stories260K checkpoint check");
        const std::string dir = shared + "/models/stories260K-hf";
        auto model = cs::loadModel(dir);
        std::vector<std::vector<long>> rows = {{1, 403, 407, 261, 378, 267, 437, 282, 283, 306, 350}};
        auto ref = reference(dir, rows, "--generate 24");
        at::Tensor ours = model->forward(batch(rows));
        const double diff = maxAbsDiff(ours, toTensor(ref["logits"]));
        QVERIFY2(diff < 1e-4, ("stories260K max |ours - reference| = " + std::to_string(diff)).c_str());

        cs::SamplingOptions s;
        s.maxNewTokens = 24;
        s.stopAtEos = false;
        std::vector<long> withCache = cs::generate(*model, rows[0], s);
        s.useKvCache = false;
        std::vector<long> without = cs::generate(*model, rows[0], s);
        std::vector<long> refGen = ref["generated"].get<std::vector<long>>();
        QCOMPARE(withCache, refGen);
        QCOMPARE(without, refGen);
    }

    void kvCacheMatchesFullRecompute() {
        const std::string dir = makeModel("kv", "--arch llama --seed 5 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --vocab 41 --ctx 64");
        auto model = cs::loadModel(dir);
        std::vector<long> prompt = {1, 5, 9, 3};
        for (bool greedy : {true, false}) {
            cs::SamplingOptions s;
            s.greedy = greedy;
            s.temperature = 0.9;
            s.topP = 0.95;
            s.topK = 20;
            s.seed = 42;
            s.maxNewTokens = 30;
            s.stopAtEos = false;
            auto a = cs::generate(*model, prompt, s);
            s.useKvCache = false;
            auto b = cs::generate(*model, prompt, s);
            QCOMPARE(a.size(), size_t(30));
            QCOMPARE(a, b);
        }
        // Greedy generation against the reference (which has no cache at all).
        auto ref = reference(dir, {prompt}, "--generate 30");
        cs::SamplingOptions g;
        g.maxNewTokens = 30;
        g.stopAtEos = false;
        QCOMPARE(cs::generate(*model, prompt, g), ref["generated"].get<std::vector<long>>());
    }

    void samplingIsSeededAndRespectsTopK() {
        const std::string dir = makeModel("samp", "--arch gpt2 --seed 6 --layers 1 --d-model 32 --heads 2 --vocab 50 --ctx 64");
        auto model = cs::loadModel(dir);
        cs::SamplingOptions s;
        s.greedy = false;
        s.seed = 7;
        s.maxNewTokens = 40;
        s.stopAtEos = false;
        auto a = cs::generate(*model, {1, 2}, s);
        auto b = cs::generate(*model, {1, 2}, s);
        QCOMPARE(a, b);
        s.seed = 8;
        QVERIFY(cs::generate(*model, {1, 2}, s) != a);
        // top-k 1 is greedy whatever the temperature.
        s.topK = 1;
        s.temperature = 5.0;
        cs::SamplingOptions g;
        g.maxNewTokens = 40;
        g.stopAtEos = false;
        QCOMPARE(cs::generate(*model, {1, 2}, s), cs::generate(*model, {1, 2}, g));
    }

    void hookCacheShapesAndValues() {
        const std::string dir = makeModel("hooks", "--arch gpt2 --seed 9 --layers 2 --d-model 32 --heads 4 --vocab 40 --ctx 16");
        auto model = cs::loadModel(dir);
        std::vector<std::vector<long>> rows = {{3, 1, 4, 1, 5, 9}};
        cs::Hooks hooks;
        hooks.cacheAll();
        cs::ActivationCache cache;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        model->forward(batch(rows), o);
        const auto& cfg = model->config();
        QCOMPARE(cache.size(), model->hookPoints().size());
        QCOMPARE(cache.at("blocks.1.hook_resid_post").sizes().vec(), (std::vector<int64_t>{1, 6, cfg.dModel}));
        QCOMPARE(cache.at("blocks.0.attn.hook_pattern").sizes().vec(), (std::vector<int64_t>{1, cfg.nHeads, 6, 6}));
        QCOMPARE(cache.at("blocks.0.attn.hook_q").sizes().vec(), (std::vector<int64_t>{1, 6, cfg.nHeads, cfg.dHead}));
        QCOMPARE(cache.at("blocks.1.mlp.hook_post").sizes().vec(), (std::vector<int64_t>{1, 6, cfg.dMlp}));
        QCOMPARE(cache.at("ln_final.hook_scale").sizes().vec(), (std::vector<int64_t>{1, 6, 1}));
        // Values against the reference's own activations.
        const std::vector<std::string> names = {"hook_embed", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_post",
                                                "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_z",
                                                "blocks.0.mlp.hook_post", "blocks.1.hook_mlp_out",
                                                "ln_final.hook_normalized"};
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ",") + n;
        auto ref = reference(dir, rows, "--dump-hooks " + list)["hooks"];
        for (const auto& n : names) {
            std::vector<double> flat = ref[n]["data"].get<std::vector<double>>();
            at::Tensor r = at::tensor(flat, at::kDouble).view(ref[n]["shape"].get<std::vector<int64_t>>());
            QCOMPARE(cache.at(n).sizes().vec(), r.sizes().vec());
            const double d = maxAbsDiff(cache.at(n), r);
            QVERIFY2(d < 1e-4, (n + ": max diff " + std::to_string(d)).c_str());
        }
    }

    void replacingWithItselfChangesNothingZeroingAHeadDoes() {
        const std::string dir = makeModel("patch", "--arch llama --seed 11 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --vocab 40 --ctx 16");
        auto model = cs::loadModel(dir);
        std::vector<std::vector<long>> rows = {{1, 7, 3, 9, 2, 8, 4}};
        at::Tensor clean = model->forward(batch(rows));

        cs::Hooks identity;
        int calls = 0;
        identity.add("blocks.0.hook_resid_post", [&](at::Tensor& t, const cs::HookContext&) {
            t = t.clone();
            ++calls;
        });
        cs::RunOptions o;
        o.hooks = &identity;
        at::Tensor same = model->forward(batch(rows), o);
        QCOMPARE(calls, 1);
        QCOMPARE(maxAbsDiff(same, clean), 0.0);

        cs::Hooks zero;
        zero.add("blocks.1.attn.hook_pattern", [](at::Tensor& t, const cs::HookContext&) {
            t = t.clone();
            t.select(1, 2).zero_();
        });
        o.hooks = &zero;
        at::Tensor ablated = model->forward(batch(rows), o);
        QVERIFY2(maxAbsDiff(ablated, clean) > 1e-3, "zeroing a head's pattern left the logits unchanged");
        at::Tensor ref = toTensor(reference(dir, rows, "--zero-head 1,2")["logits"]);
        QVERIFY2(maxAbsDiff(ablated, ref) < 1e-4, "head ablation disagrees with the reference");
    }

    void lastLayerStopsEarlyWithTheSameActivations() {
        const std::string dir = makeModel("stop", "--arch gpt2 --seed 13 --layers 3 --d-model 32 --heads 2 --vocab 40 --ctx 16");
        auto model = cs::loadModel(dir);
        std::vector<std::vector<long>> rows = {{1, 2, 3, 4, 5}};
        cs::Hooks hooks;
        hooks.cache("blocks.1.hook_resid_post");
        int lateCalls = 0;
        hooks.add("blocks.2.hook_resid_pre", [&](at::Tensor&, const cs::HookContext&) { ++lateCalls; });
        cs::ActivationCache full, partial;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &full;
        QVERIFY(model->forward(batch(rows), o).defined());
        QCOMPARE(lateCalls, 1);
        o.cache = &partial;
        o.lastLayer = 1;
        QVERIFY(!model->forward(batch(rows), o).defined());
        QCOMPARE(lateCalls, 1);  // nothing past block 1 ran
        QCOMPARE(maxAbsDiff(partial.at("blocks.1.hook_resid_post"), full.at("blocks.1.hook_resid_post")), 0.0);
    }

    // Gradients with respect to an activation, through the rest of the model (SAE fine-tuning,
    // attribution), on the autograd copy: same logits as the loaded model, and the directional
    // derivative autograd gives equals a central finite difference of the loaded model's logits.
    void autogradCopyGivesGradientsThroughTheModel() {
        for (const std::string args : {"--arch gpt2 --seed 17 --layers 2 --d-model 32 --heads 2 --vocab 40 --ctx 16",
                                       "--arch llama --seed 19 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --vocab 40 --ctx 16"}) {
            const std::string dir = makeModel(args.substr(7, 5) + "grad", args);
            auto model = cs::loadModel(dir);
            auto trainable = cs::autogradCopy(*model);
            std::vector<std::vector<long>> rows = {{1, 7, 3, 9, 2, 8, 4}};
            const at::Tensor clean = model->forward(batch(rows));
            QCOMPARE(maxAbsDiff(trainable->forward(batch(rows)), clean), 0.0);
            at::manual_seed(5);
            const at::Tensor weight = at::randn(clean.sizes());
            const at::Tensor direction = at::randn({1, 7, 32});
            // Loss as a function of a shift added to the layer-0 residual stream.
            auto lossAt = [&](const cs::Transformer& m, const at::Tensor& shift, bool grad) {
                cs::Hooks h;
                h.add("blocks.0.hook_resid_post", [&](at::Tensor& t, const cs::HookContext&) { t = t + shift; });
                cs::RunOptions o;
                o.hooks = &h;
                o.withGrad = grad;
                return (m.forward(batch(rows), o) * weight).sum();
            };
            at::Tensor shift = at::zeros({1, 7, 32}).requires_grad_();
            lossAt(*trainable, shift, true).backward();
            const double analytic = (shift.grad() * direction).sum().item<double>();
            const double eps = 1e-2;
            const double numeric = (lossAt(*model, direction * eps, false).item<double>() -
                                    lossAt(*model, direction * -eps, false).item<double>()) / (2 * eps);
            QVERIFY2(std::abs(analytic) > 1e-2, (args + ": gradient too small to be a check").c_str());
            QVERIFY2(std::abs(analytic - numeric) < 1e-2 * std::abs(numeric),
                     (args + ": autograd " + std::to_string(analytic) + " vs finite difference " + std::to_string(numeric)).c_str());
        }
    }

    void badInputGivesClearErrors() {
        const std::string good = makeModel("bad", "--arch gpt2 --seed 12 --layers 1 --d-model 16 --heads 2 --vocab 20 --ctx 8");
        auto model = cs::loadModel(good);
        expectThrows([&] { cs::loadModel(makeTempDir("empty")); }, "config.json");
        expectThrows([&] { model->forward(at::full({1, 3}, 20, at::kLong)); }, "out of range");
        expectThrows([&] { model->forward(at::zeros({1, 9}, at::kLong)); }, "context");
        expectThrows([&] { model->forward(at::zeros({1, 0}, at::kLong)); }, "empty");
        expectThrows([&] { cs::generate(*model, {}, {}); }, "empty prompt");
        cs::Hooks h;
        h.cache("blocks.7.hook_resid_post");
        cs::RunOptions o;
        o.hooks = &h;
        expectThrows([&] { model->forward(at::zeros({1, 2}, at::kLong), o); }, "blocks.7.hook_resid_post");

        auto variant = [&](const std::string& tag) {
            const std::string d = makeTempDir(tag);
            if (run("cp " + shellQuote(good) + "/* " + shellQuote(d)) != 0) throw std::runtime_error("cp failed");
            return d;
        };
        const std::string cfgPath = "/config.json";
        // unknown model_type
        std::string d = variant("unk");
        auto cfg = nlohmann::json::parse(readFile(d + cfgPath));
        cfg["model_type"] = "mamba";
        writeFile(d + cfgPath, cfg.dump());
        expectThrows([&] { cs::loadModel(d); }, "unknown model_type 'mamba'");
        // shape mismatch: config says a wider model than the weights
        d = variant("shape");
        cfg["model_type"] = "gpt2";
        cfg["n_embd"] = 32;
        writeFile(d + cfgPath, cfg.dump());
        expectThrows([&] { cs::loadModel(d); }, "has shape");
        // truncated weights
        d = variant("trunc");
        const std::string st = readFile(d + "/model.safetensors");
        writeFile(d + "/model.safetensors", st.substr(0, st.size() - 100));
        expectThrows([&] { cs::loadModel(d); }, "model.safetensors");
        // header pointing past the end
        d = variant("hdr");
        std::string bad = st;
        bad[0] = '\xff';
        bad[1] = '\xff';
        bad[2] = '\x7f';
        writeFile(d + "/model.safetensors", bad);
        expectThrows([&] { cs::loadModel(d); }, "past the end");
        // corrupt JSON header
        d = variant("json");
        bad = st;
        bad[8] = '#';
        writeFile(d + "/model.safetensors", bad);
        expectThrows([&] { cs::loadModel(d); }, "not valid JSON");
        // missing tensor: rename one in the header (same length keeps offsets valid)
        d = variant("missing");
        bad = st;
        auto p = bad.find("ln_f.weight");
        QVERIFY(p != std::string::npos);
        bad.replace(p, 11, "ln_x.weight");
        writeFile(d + "/model.safetensors", bad);
        expectThrows([&] { cs::loadModel(d); }, "ln_f.weight");
        // missing config field
        d = variant("field");
        cfg = nlohmann::json::parse(readFile(good + cfgPath));
        cfg.erase("n_layer");
        writeFile(d + cfgPath, cfg.dump());
        expectThrows([&] { cs::loadModel(d); }, "n_layer");
    }
};

QTEST_GUILESS_MAIN(TestModel)
#include "test_model.moc"
