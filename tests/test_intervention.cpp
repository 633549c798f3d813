// Interventions from an attribution graph (cs::interveneOnGraph) against an independent float64
// reference (tests/reference/ref_intervene.py): a random GPT-2 with one random JumpReLU transcoder
// per layer, features set, scaled and ablated at their positions, with attention frozen and free,
// several at once. Compared: every target's logit (minus the mean) and probability before and
// after, the top five tokens after, the features' activations, and the greedy continuations token
// for token. Plus the scale mode's identities and the one-line errors.
#include "TestSupport.h"

#include "attribution/Attribution.h"
#include "attribution/GraphIntervention.h"
#include "model/ModelLoader.h"
#include "sae/SaeLoader.h"
#include "steer/Steering.h"
#include "steer/SteeringRule.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

using namespace cstest;
using Json = nlohmann::json;
using Kind = cs::NodeIntervention::Kind;

namespace {

// "\nHello wor" as bytes, as in test_attribution.
const std::vector<long> kTokens = {10, 72, 101, 108, 108, 111, 32, 119, 111, 114};
constexpr int kLayers = 3;
constexpr int kMaxNew = 8;
// Relative tolerance (float32 against float64 on a small model); logits below 0.1 and
// probabilities below 1e-3 are held to that much absolutely.
constexpr double kRel = 1e-4;

bool close(double got, double want, double floor) { return std::abs(got - want) <= kRel * std::max(std::abs(want), floor); }

std::string num(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}

std::string ids(const std::vector<long>& v) {
    std::string s;
    for (long t : v) s += (s.empty() ? "" : ",") + std::to_string(t);
    return "[" + s + "]";
}

struct Case {
    std::string name;
    std::vector<cs::NodeIntervention> ivs;
    bool freeze = true;
};

Json caseJson(const Case& c, const std::vector<long>& targets) {
    Json ivs = Json::array();
    for (const auto& iv : c.ivs)
        ivs.push_back({{"sae", iv.saeId}, {"position", iv.position}, {"feature", iv.feature},
                       {"kind", cs::interventionKindName(iv.kind)}, {"value", iv.value}});
    return {{"name", c.name}, {"targets", targets}, {"freeze", c.freeze}, {"max_new", kMaxNew}, {"interventions", ivs}};
}

}  // namespace

class TestIntervention : public QObject {
    Q_OBJECT
    std::string dir_, modelDir_;
    std::shared_ptr<cs::Transformer> model_;
    std::vector<cs::AttributionTranscoder> tcs_;
    Json jobBase_;
    Json probe_;
    std::vector<long> targets_;
    std::vector<long> topBefore_;

    // Which features fire where in the clean run, strongest first, and the most likely next tokens:
    // only to choose the fixture's interventions and targets (the reference checks the numbers).
    void probe() {
        cs::Hooks hooks;
        for (int l = 0; l < kLayers; ++l) hooks.cache("blocks." + std::to_string(l) + ".ln2.hook_normalized");
        cs::ActivationCache cache;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        const at::Tensor logits = model_->forward(at::tensor(kTokens, at::kLong).unsqueeze(0), o)[0][-1];
        const at::Tensor top = std::get<1>(logits.topk(3));
        for (long i = 0; i < 3; ++i) topBefore_.push_back(top[i].item<long>());
        std::vector<Json> feats;
        for (int l = 0; l < kLayers; ++l) {
            const at::Tensor codes = tcs_[l].sae->encode(cache.at("blocks." + std::to_string(l) + ".ln2.hook_normalized")[0]);
            for (long p = 0; p < codes.size(0); ++p)
                for (long f = 0; f < codes.size(1); ++f)
                    if (codes[p][f].item<double>() > 0)
                        feats.push_back({{"sae", tcs_[l].id}, {"layer", l}, {"position", p}, {"feature", f},
                                         {"activation", codes[p][f].item<double>()}});
        }
        std::stable_sort(feats.begin(), feats.end(), [](const Json& a, const Json& b) { return a["activation"] > b["activation"]; });
        probe_["features"] = feats;
    }

    // The strongest active feature of `layer` at `position` in the clean run (its `rank`-th).
    cs::NodeIntervention active(int layer, int position, int rank = 0) const {
        int seen = 0;
        for (const auto& f : probe_["features"])
            if (f["layer"] == layer && f["position"] == position && seen++ == rank) {
                cs::NodeIntervention iv;
                iv.saeId = f["sae"].get<std::string>();
                iv.layer = layer;
                iv.position = position;
                iv.feature = f["feature"].get<long>();
                return iv;
            }
        QTest::qFail("the fixture has too few active features at a position", __FILE__, __LINE__);
        return {};
    }

    // A feature of `layer` that does not fire at `position` in the clean run.
    cs::NodeIntervention inactive(int layer, int position) const {
        for (long f = 0;; ++f) {
            bool fires = false;
            for (const auto& r : probe_["features"])
                fires = fires || (r["layer"] == layer && r["position"] == position && r["feature"] == f);
            if (!fires) return {"layer_" + std::to_string(layer), layer, position, f, Kind::Set, 0};
        }
    }

    static cs::NodeIntervention with(cs::NodeIntervention iv, Kind k, double v) {
        iv.kind = k;
        iv.value = v;
        return iv;
    }

    cs::InterventionResult ours(const Case& c) const {
        cs::InterventionOptions o;
        o.targets = targets_;
        o.freezeAttention = c.freeze;
        o.maxNewTokens = kMaxNew;
        return cs::interveneOnGraph(*model_, tcs_, kTokens, c.ivs, o);
    }

    std::vector<Json> reference(const std::vector<Case>& cases) {
        Json job = jobBase_;
        job["cases"] = Json::array();
        for (const auto& c : cases) job["cases"].push_back(caseJson(c, targets_));
        static int n = 0;
        const std::string jobFile = dir_ + "/job" + std::to_string(n) + ".json", out = dir_ + "/out" + std::to_string(n++) + ".json";
        writeFile(jobFile, job.dump());
        runReference("ref_intervene.py", "run --job " + shellQuote(jobFile) + " --out " + shellQuote(out));
        const Json r = Json::parse(readFile(out));
        return {r["cases"].begin(), r["cases"].end()};
    }

    // "" when `got` agrees with the reference's case; else what differs.
    static std::string compare(const cs::InterventionResult& got, const Json& ref) {
        std::string d;
        auto add = [&](const std::string& s) { d += (d.empty() ? "" : "; ") + s; };
        if (!ref["threshold_margin"].is_null() && ref["threshold_margin"].get<double>() < 1e-4)
            return "an intervened feature's pre-activation is within " + num(ref["threshold_margin"].get<double>()) +
                   " of its threshold; change the fixture";
        if (got.targets.size() != ref["targets"].size()) return "target count " + std::to_string(got.targets.size());
        for (size_t i = 0; i < got.targets.size(); ++i) {
            const auto& g = got.targets[i];
            const Json& r = ref["targets"][i];
            const std::string t = "token " + std::to_string(g.token);
            if (g.token != r["token"].get<long>()) add(t + ": reference has token " + r["token"].dump());
            auto check = [&](const char* key, double have, double floor) {
                const double want = r[key].get<double>();
                if (!close(have, want, floor)) add(t + " " + key + ": " + num(have) + ", reference " + num(want));
            };
            check("logit_before", g.logitBefore, 0.1);
            check("logit_after", g.logitAfter, 0.1);
            check("prob_before", g.probBefore, 1e-3);
            check("prob_after", g.probAfter, 1e-3);
        }
        for (size_t i = 0; i < got.activationsBefore.size(); ++i) {
            if (!close(got.activationsBefore[i], ref["activations_before"][i].get<double>(), 0.1))
                add("activation before " + std::to_string(i) + ": " + num(got.activationsBefore[i]) + ", reference " +
                    ref["activations_before"][i].dump());
            if (!close(got.activationsAfter[i], ref["activations_after"][i].get<double>(), 0.1))
                add("activation after " + std::to_string(i) + ": " + num(got.activationsAfter[i]) + ", reference " +
                    ref["activations_after"][i].dump());
        }
        std::vector<long> top;
        for (const auto& t : got.topAfter) top.push_back(t.token);
        if (ref["top_after_margin"].get<double>() > 1e-5 && top != ref["top_after"].get<std::vector<long>>())
            add("top after " + ids(top) + ", reference " + ref["top_after"].dump());
        // Tokens exactly, unless the reference's step was a near tie (then the rest cannot be compared).
        auto tokens = [&](const std::vector<long>& have, const char* key, const char* margins) {
            const auto want = ref[key].get<std::vector<long>>();
            const auto m = ref[margins].get<std::vector<double>>();
            for (size_t s = 0; s < std::max(have.size(), want.size()); ++s) {
                if (s < have.size() && s < want.size() && have[s] == want[s]) continue;
                if (s < m.size() && m[s] < 1e-4) return;
                add(std::string(key) + " " + ids(have) + ", reference " + ids(want) + " (step " + std::to_string(s) + ")");
                return;
            }
        };
        tokens(got.continuationBefore, "continuation_before", "margins_before");
        tokens(got.continuationAfter, "continuation_after", "margins_after");
        return d;
    }

private Q_SLOTS:
    void initTestCase() {
        dir_ = makeTempDir("intervention");
        modelDir_ = dir_ + "/model";
        // A projection gain of 3: with the default the random model repeats one token whatever is
        // done to it, and the continuations would compare nothing.
        runReference("make_random_model.py", "--arch gpt2 --seed 7 --layers " + std::to_string(kLayers) +
                                                 " --d-model 32 --heads 4 --vocab 256 --ctx 32 --gain 3 --out " +
                                                 shellQuote(modelDir_));
        const Json paths = Json::parse(runReference("ref_attribution.py", "transcoders --model " + shellQuote(modelDir_) +
                                                                              " --seed 5 --d-sae 48 --out " + shellQuote(dir_ + "/tc")));
        QCOMPARE(int(paths.size()), kLayers);
        model_ = cs::loadModel(modelDir_);
        jobBase_ = {{"model", modelDir_}, {"tokens", kTokens}, {"transcoders", Json::object()}};
        for (int l = 0; l < kLayers; ++l) {
            const std::string id = "layer_" + std::to_string(l);
            tcs_.push_back({id, cs::loadSae(paths[l].get<std::string>())});
            jobBase_["transcoders"][id] = paths[l];
        }
        probe();
        // The three most likely tokens and one unlikely one.
        targets_ = {topBefore_[0], topBefore_[1], topBefore_[2], 65};
    }

    // Every kind, frozen and free, one and several at once, in one reference run.
    void matchesTheReference() {
        const long last = static_cast<long>(kTokens.size()) - 1;
        const cs::NodeIntervention f1 = active(1, static_cast<int>(last)), g1 = active(1, static_cast<int>(last), 1);
        const cs::NodeIntervention f0 = active(0, 5), f2 = active(2, static_cast<int>(last));
        std::vector<Case> cases;
        for (bool freeze : {true, false}) {
            const std::string m = freeze ? "-frozen" : "-free";
            cases.push_back({"ablate" + m, {with(f1, Kind::Ablate, 0)}, freeze});
            cases.push_back({"set" + m, {with(f0, Kind::Set, 12)}, freeze});
            cases.push_back({"scale" + m, {with(f2, Kind::Scale, -3)}, freeze});
            // A supernode ablated (two features of one layer and position), with a change upstream
            // of it and a feature that did not fire switched on.
            cases.push_back({"several" + m,
                             {with(f1, Kind::Ablate, 0), with(g1, Kind::Ablate, 0), with(f0, Kind::Scale, 2.5),
                              with(inactive(2, 7), Kind::Set, 6)},
                             freeze});
        }
        // Here freezing the prompt's patterns while generating, not only on the prompt pass, changes
        // the continuation from its sixth token (found by trying the reference both ways).
        cases.push_back({"scale-early-frozen", {with(active(0, 3), Kind::Scale, -3)}, true});
        const std::vector<Json> refs = reference(cases);
        QCOMPARE(refs.size(), cases.size());
        std::map<std::string, cs::InterventionResult> got;
        for (size_t i = 0; i < cases.size(); ++i) {
            got[cases[i].name] = ours(cases[i]);
            const std::string diff = compare(got[cases[i].name], refs[i]);
            QVERIFY2(diff.empty(), (cases[i].name + ": " + diff).c_str());
        }
        // The comparison has teeth: ablation moves the target logits, freezing attention matters,
        // and a continuation changes.
        bool moved = false, freezingMatters = false, continuationChanged = false;
        bool frozenFreeDiffer = false;
        for (const auto& [name, r] : got) {
            for (const auto& t : r.targets) moved = moved || std::abs(t.logitAfter - t.logitBefore) > 1e-2;
            continuationChanged = continuationChanged || r.continuationAfter != r.continuationBefore;
            QVERIFY(r.attentionFrozen == (name.find("frozen") != std::string::npos));
            QCOMPARE(int(r.continuationBefore.size()), kMaxNew);
            if (name.find("-free") != std::string::npos) {
                const std::string frozen = name.substr(0, name.find("-free")) + "-frozen";
                frozenFreeDiffer = frozenFreeDiffer || got[frozen].continuationAfter != r.continuationAfter;
            }
        }
        QVERIFY(frozenFreeDiffer);
        for (const char* kind : {"ablate", "set", "scale", "several"})
            freezingMatters = freezingMatters || std::abs(got[std::string(kind) + "-frozen"].targets[0].logitAfter -
                                                          got[std::string(kind) + "-free"].targets[0].logitAfter) > 1e-3;
        QVERIFY(moved);
        QVERIFY(freezingMatters);
        QVERIFY(continuationChanged);
        // The continuation starts where the reported logits point, frozen or not.
        for (const auto& [name, r] : got) QCOMPARE(r.continuationAfter.front(), r.topAfter.front().token);
    }

    // scale=1 changes nothing, scale=0 is ablate, set to the feature's own activation changes nothing.
    void scaleIdentities() {
        const cs::NodeIntervention f = active(1, 9);
        auto run = [&](Kind k, double v) { return ours({"", {with(f, k, v)}, true}); };
        const cs::InterventionResult one = run(Kind::Scale, 1), zero = run(Kind::Scale, 0), ablate = run(Kind::Ablate, 0);
        for (size_t i = 0; i < one.targets.size(); ++i) {
            QVERIFY(std::abs(one.targets[i].logitAfter - one.targets[i].logitBefore) < 1e-5);
            QVERIFY(std::abs(zero.targets[i].logitAfter - ablate.targets[i].logitAfter) < 1e-5);
        }
        QVERIFY(one.continuationAfter == one.continuationBefore);
        QVERIFY(zero.continuationAfter == ablate.continuationAfter);
        const cs::InterventionResult same = run(Kind::Set, one.activationsBefore[0]);
        QVERIFY(std::abs(same.targets[0].logitAfter - same.targets[0].logitBefore) < 1e-4);
        QCOMPARE(zero.activationsAfter[0], 0.0);
        // A layer-less id and an id-less layer name the same transcoder.
        cs::NodeIntervention byLayer = with(f, Kind::Ablate, 0), byId = byLayer;
        byLayer.saeId.clear();
        byId.layer = -1;
        QCOMPARE(ours({"", {byLayer}, true}).targets[0].logitAfter, ablate.targets[0].logitAfter);
        QCOMPARE(ours({"", {byId}, true}).targets[0].logitAfter, ablate.targets[0].logitAfter);
        // Without targets: the unintervened top token; without new tokens: no continuation.
        cs::InterventionOptions o;
        o.maxNewTokens = 0;
        const cs::InterventionResult plain = cs::interveneOnGraph(*model_, tcs_, kTokens, {with(f, Kind::Ablate, 0)}, o);
        QCOMPARE(int(plain.targets.size()), 1);
        QCOMPARE(plain.targets[0].token, plain.topBefore[0].token);
        QVERIFY(plain.continuationAfter.empty());
    }

    // `circuitscope intervene --json` prints what the core function gives, and refuses what is not a
    // feature node in one line.
    void commandLine() {
        const cs::NodeIntervention f = active(1, 9), g = active(0, 4);
        const std::string node = std::to_string(f.layer) + "_" + std::to_string(f.feature) + "_" + std::to_string(f.position);
        const std::string other = std::to_string(g.layer) + "_" + std::to_string(g.feature) + "_" + std::to_string(g.position);
        std::string tcs, tokens;
        for (const auto& [id, path] : jobBase_["transcoders"].items()) tcs += " " + shellQuote(path.get<std::string>());
        for (long t : kTokens) tokens += (tokens.empty() ? "" : ",") + std::to_string(t);
        const std::string base = shellQuote(CS_CLI_PATH) + " --threads 1 intervene --model " + shellQuote(modelDir_) +
                                 " --transcoders" + tcs + " --tokens " + tokens;
        std::string out;
        QCOMPARE(run(base + " --node " + node + ":ablate --node " + other + ":scale=2.5 --target " + std::to_string(targets_[0]) +
                         " --target 65 --free-attention --max-new 5 --json",
                     &out),
                 0);
        const Json j = Json::parse(out);
        cs::InterventionOptions o;
        o.targets = {targets_[0], 65};
        o.freezeAttention = false;
        o.maxNewTokens = 5;
        const cs::InterventionResult want =
            cs::interveneOnGraph(*model_, tcs_, kTokens, {with(f, Kind::Ablate, 0), with(g, Kind::Scale, 2.5)}, o);
        QCOMPARE(j["attention"].get<std::string>(), std::string("free"));
        QCOMPARE(j["interventions"][1]["node"].get<std::string>(), other);
        QCOMPARE(j["interventions"][1]["mode"].get<std::string>(), std::string("scale"));
        QVERIFY(close(j["interventions"][1]["activation_after"].get<double>(), want.activationsAfter[1], 0.1));
        for (size_t i = 0; i < 2; ++i) {
            const Json& t = j["targets"][i];
            QCOMPARE(t["token"].get<long>(), want.targets[i].token);
            QVERIFY(close(t["logit_after"].get<double>(), want.targets[i].logitAfter, 0.1));
            QVERIFY(close(t["prob_before"].get<double>(), want.targets[i].probBefore, 1e-3));
        }
        QVERIFY(j["continuation_after"]["new_tokens"].get<std::vector<long>>() == want.continuationAfter);
        QVERIFY(j["continuation_before"]["new_tokens"].get<std::vector<long>>() == want.continuationBefore);
        // Errors: one line on stderr, exit status 1.
        const std::string err = dir_ + "/cli-err";
        for (const auto& [spec, says] : std::vector<std::pair<std::string, std::string>>{
                 {"1_-1_9:ablate", "node '1_-1_9' is an error node"},
                 {"4_65_9:set=1", "is a logit node"},  // layer n_layers + 1
                 {node + ":set", "set needs a value"},
                 {"1_2:ablate", "is not {layer}_{feature}_{position}"}}) {
            QCOMPARE(run(base + " --node " + shellQuote(spec) + " 2>" + shellQuote(err)), 1);
            const std::string msg = readFile(err);
            QVERIFY2(msg.find(says) != std::string::npos && msg.find('\n') == msg.size() - 1, msg.c_str());
        }
    }

    void steeringSpecsSpellScale() {
        const cs::SteeringRule r = cs::parseSteerSpec("layer_1/3:scale=2.5@4");
        QCOMPARE(r.mode, cs::SteerMode::Scale);
        QCOMPARE(r.value, 2.5);
        QCOMPARE(cs::toSpecString(r), std::string("layer_1/3:scale=2.5@4-4"));
        expectOneLineError([] { cs::parseSteerSpec("3:scale"); }, {"scale needs a value"});
        // A decoding step (one position, the KV cache's path) scales as a whole-sequence pass does:
        // the last logits of the prompt plus one token, steered there, both ways.
        std::vector<cs::SteeringSae> saes;
        for (const auto& t : tcs_) saes.push_back({t.id, t.sae});
        std::map<long, int> count;  // a layer-1 feature that fires at most prompt positions
        for (const auto& f : probe_["features"])
            if (f["layer"] == 1) ++count[f["feature"].get<long>()];
        const long busiest = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
        cs::SteeringPlan plan;
        plan.rules.push_back(cs::parseSteerSpec("layer_1/" + std::to_string(busiest) + ":scale=-4@generated"));
        cs::Steering steering(*model_, saes, plan);
        const long T = static_cast<long>(kTokens.size());
        steering.setPromptLength(T);
        cs::Hooks hooks;
        steering.install(hooks);
        std::vector<long> seq = kTokens;
        seq.push_back(85);
        cs::RunOptions o;
        const at::Tensor plain = model_->forward(at::tensor(seq, at::kLong).unsqueeze(0), o)[0][-1];
        o.hooks = &hooks;
        const at::Tensor whole = model_->forward(at::tensor(seq, at::kLong).unsqueeze(0), o)[0][-1];
        cs::KvCache kv = model_->makeKvCache(1, T + 1);
        o.kv = &kv;
        model_->forward(at::tensor(kTokens, at::kLong).unsqueeze(0), o);
        const at::Tensor step = model_->forward(at::full({1, 1}, 85L, at::kLong), o)[0][-1];
        QVERIFY2((whole - plain).abs().max().item<double>() > 1e-2, "the scaled feature does not fire at the new token");
        QVERIFY2((step - whole).abs().max().item<double>() < 1e-4,
                 qPrintable(QString("decoding step and whole pass differ by %1").arg((step - whole).abs().max().item<double>())));
    }

    void errorsAreOneLine() {
        const cs::NodeIntervention f = with(active(1, 9), Kind::Ablate, 0);
        auto fails = [&](cs::NodeIntervention iv, const std::vector<std::string>& what) {
            expectOneLineError([&] { cs::interveneOnGraph(*model_, tcs_, kTokens, {iv}); }, what);
        };
        cs::NodeIntervention bad = f;
        bad.position = 10;
        fails(bad, {"position 10 is out of range for a prompt of 10 tokens (0..9)"});
        bad.position = -1;
        fails(bad, {"position -1 is out of range"});
        bad = f;
        bad.saeId = "layer_9";
        fails(bad, {"unknown SAE id 'layer_9'", "layer_0, layer_1, layer_2"});
        bad = f;
        bad.feature = 48;
        fails(bad, {"feature 48 is out of range for transcoder 'layer_1' (48 features: 0..47)"});
        bad = f;
        bad.layer = 2;
        fails(bad, {"transcoder 'layer_1' serves layer 1, not layer 2"});
        bad = f;
        bad.saeId.clear();
        bad.layer = 3;
        fails(bad, {"layer 3 is out of range"});
        bad = with(f, Kind::Set, std::numeric_limits<double>::infinity());
        fails(bad, {"not a finite number"});
        expectOneLineError([&] { cs::interveneOnGraph(*model_, {tcs_[0], tcs_[2]}, kTokens, {with(active(1, 9), Kind::Ablate, 0)}); },
                           {"unknown SAE id 'layer_1'"});
        cs::NodeIntervention noId = f;
        noId.saeId.clear();
        expectOneLineError([&] { cs::interveneOnGraph(*model_, {tcs_[0], tcs_[2]}, kTokens, {noId}); },
                           {"no transcoder serves layer 1"});
        expectOneLineError([&] { cs::interveneOnGraph(*model_, tcs_, kTokens, {}); }, {"no node to intervene on"});
        expectOneLineError([&] { cs::interveneOnGraph(*model_, tcs_, {}, {f}); }, {"no tokens"});
        expectOneLineError([&] { cs::interveneOnGraph(*model_, tcs_, {1, 256}, {f}); }, {"token id 256 is out of range"});
        cs::InterventionOptions o;
        o.targets = {300};
        expectOneLineError([&] { cs::interveneOnGraph(*model_, tcs_, kTokens, {f}, o); }, {"target token id 300"});

        // Only feature nodes can be intervened on.
        cs::GraphNode n;
        n.kind = cs::NodeKind::Error;
        n.id = "1_-1_9";
        expectOneLineError([&] { cs::interventionForNode(n, Kind::Ablate, 0); }, {"node '1_-1_9' is an error node", "only feature nodes"});
        n.kind = cs::NodeKind::Embedding;
        n.id = "E_114_9";
        expectOneLineError([&] { cs::interventionForNode(n, Kind::Ablate, 0); }, {"'E_114_9' is an embedding node"});
        n.kind = cs::NodeKind::Logit;
        n.id = "4_65_9";
        expectOneLineError([&] { cs::interventionForNode(n, Kind::Set, 1); }, {"'4_65_9' is a logit node"});
        n.kind = cs::NodeKind::Feature;
        n.layer = 1;
        n.position = 9;
        n.feature = 7;
        const cs::NodeIntervention iv = cs::interventionForNode(n, Kind::Scale, 2, "layer_1");
        QCOMPARE(iv.saeId, std::string("layer_1"));
        QCOMPARE(iv.layer, 1);
        QCOMPARE(iv.position, 9);
        QCOMPARE(iv.feature, 7L);
        QCOMPARE(iv.value, 2.0);
        expectOneLineError([] { cs::parseInterventionKind("zero", "--node 1_2_3:zero"); }, {"--node 1_2_3:zero", "unknown intervention 'zero'"});
    }
};

QTEST_GUILESS_MAIN(TestIntervention)
#include "test_intervention.moc"
