// Steering (core/steer, `circuitscope steer`) against an independent float64 reference
// (tests/reference/ref_steer.py): full recomputation every step, steering as Python hooks, greedy.
// On the embedded demo model the greedy tokens of the CLI and of the C++ API must equal the
// reference's for every mode, position form, condition, transcoder and multi-row case. Every case
// is also checked, on the reference alone, to change the continuation (and to differ from the
// setting it could be confused with), so a no-op or a mixed-up mode cannot pass.
// Plus the SPEC / COND parsers, the CLI's one-line errors, presets, vector files and
// meanDifferenceVector.
#include "SteeringAsserts.h"
#include "TestSupport.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "sae/SaeLoader.h"
#include "steer/Steering.h"
#include "steer/SteeringJson.h"
#include "steer/SteeringVector.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <filesystem>
#include <functional>
#include <map>

using namespace cstest;
namespace fs = std::filesystem;
using Json = nlohmann::json;
using Ids = std::vector<long>;

namespace {

// Where the reference's own top two logits are closer than this, float32 and float64 may pick
// different tokens; a first disagreement at such a step is a tie, not a bug.
constexpr double kTie = 1e-3;

const char* kPrompt = "Once upon a time, there was a little girl named Lily. She loved to play";
const char* kHappy = "Lily was very happy. She smiled and laughed with her mom.";
const char* kSad = "Lily was very sad. She cried and was angry at her mom.";
const char* kVectorHook = "blocks.1.hook_resid_post";
constexpr int kMaxNew = 16;

std::string joinIds(const Ids& ids) {
    std::string s;
    for (long id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

std::string show(const Ids& ids) { return "[" + joinIds(ids) + "]"; }

// "" when `got` equals the reference's `want`, or differs first at a step the reference calls a tie.
std::string tokenMismatch(const std::string& what, const Ids& got, const Ids& want, const std::vector<double>& margins) {
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
        if (got[i] == want[i]) continue;
        if (i < margins.size() && margins[i] < kTie) {
            qWarning("%s: first difference at step %zu is a near tie (margin %g); not compared further", what.c_str(), i,
                     margins[i]);
            return "";
        }
        return what + ": token " + std::to_string(i) + " differs (reference margin " +
               std::to_string(i < margins.size() ? margins[i] : 0.0) + "): got " + show(got) + ", reference " + show(want);
    }
    if (got.size() != want.size()) return what + ": got " + show(got) + ", reference " + show(want);
    return "";
}

struct CliResult {
    int rc = -1;
    std::string out, err;
};

CliResult steerCli(const std::string& args) {
    static const std::string dir = makeTempDir("steer-cli");
    static int n = 0;
    const std::string errFile = dir + "/stderr" + std::to_string(n++);
    CliResult r;
    r.rc = run(shellQuote(CS_CLI_PATH) + " --threads 1 steer " + args + " 2>" + shellQuote(errFile), &r.out);
    r.err = readFile(errFile);
    return r;
}

std::string steerArgs(const std::vector<std::string>& specs, const std::string& when) {
    std::string s;
    for (const auto& spec : specs) s += " --steer " + shellQuote(spec);
    if (!when.empty()) s += " --when " + shellQuote(when);
    return s;
}


// A steering setting as the CLI and the reference both take it.
struct Setting {
    std::vector<std::string> specs;
    std::string when;
    Json toJson() const { return {{"steer", specs}, {"when", when.empty() ? Json(nullptr) : Json(when)}}; }
};

struct SteerCase {
    std::string name;
    Setting setting;
    std::vector<Setting> contrasts;  // settings the reference must find different from this one
    std::string model;               // "demo" or a model directory
    std::vector<std::string> saes;   // --sae paths; empty: the demo's

    SteerCase(std::string n, Setting s, std::vector<Setting> c, std::string m = "demo", std::vector<std::string> paths = {})
        : name(std::move(n)), setting(std::move(s)), contrasts(std::move(c)), model(std::move(m)), saes(std::move(paths)) {}
};

}  // namespace

class TestSteer : public QObject {
    Q_OBJECT
    std::shared_ptr<cs::Transformer> model_;
    std::string demo_, modelDir_, vectors_;
    Ids prompt_, happy_, sad_;
    Json probe_;
    std::vector<SteerCase> cases_;
    Json vectorCases_;
    std::map<std::string, Json> ref_;  // case name -> reference result

    std::string saeDir(const std::string& id) const { return demo_ + "/saes/" + id; }

    const Json& features(const std::string& sae) const { return probe_["features"][sae]; }
    // The feature with the largest activation on the prompt.
    long peak(const std::string& sae) const { return features(sae)[0]["feature"].get<long>(); }
    // Among the strongest features, the one firing at the most prompt positions.
    long broad(const std::string& sae) const {
        const Json& f = features(sae);
        size_t best = 0;
        for (size_t i = 1; i < f.size(); ++i)
            if (f[i]["fires"].get<int>() > f[best]["fires"].get<int>()) best = i;
        return f[best]["feature"].get<long>();
    }
    static std::string feat(const std::string& sae, long f) { return sae + "/" + std::to_string(f); }

    Json demoSaes() const {
        Json s = Json::object();
        for (const std::string& dir : cs::demoSaeDirs()) s[fs::path(dir).filename().string()] = dir;
        return s;
    }

    // A copy of the demo model whose end-of-text token is the 5th token the demo generates
    // unsteered, so the baseline stops early and the stop rule is exercised.
    std::string modelWithEarlyEos() const {
        const std::string dir = makeTempDir("steer-eos") + "/model";
        fs::copy(modelDir_, dir, fs::copy_options::recursive);
        Json cfg = Json::parse(readFile(dir + "/config.json"));
        cfg["eos_token_id"] = probe_["baseline"][4];
        writeFile(dir + "/config.json", cfg.dump(2));
        return dir;
    }

    void buildCases() {
        const long p1 = peak("res-L1"), b1 = broad("res-L1"), b2 = broad("res-L2"), t0 = broad("tc-L0");
        const long r3 = peak("res-L3"), c0 = peak("res-L0"), c3 = broad("tc-L3");
        const std::string add = feat("res-L1", p1) + ":add=12";
        const std::string clamp2 = feat("res-L2", b2) + ":clamp=2";
        const long P = static_cast<long>(prompt_.size());
        const std::string span = "@" + std::to_string(P - 3) + "-" + std::to_string(P + 3);
        cases_ = {
            {"add", {{add}, ""}, {}},
            {"clamp", {{clamp2}, ""}, {{{feat("res-L2", b2) + ":add=2"}, ""}}},
            {"ablate two rows on one hook", {{feat("res-L1", p1) + ":ablate", feat("res-L1", b1) + ":ablate"}, ""},
             {{{feat("res-L1", p1) + ":ablate"}, ""}}},
            // Both rows read the coefficient as it arrives: together they clamp to 2 + 6, where
            // rows applied one after the other would end near plain clamp=2.
            {"add and clamp one feature", {{feat("res-L2", b2) + ":add=6", clamp2}, ""}, {{{clamp2}, ""}}},
            {"@prompt", {{add + "@prompt"}, ""}, {{{add}, ""}}},
            {"@generated", {{add + "@generated"}, ""}, {{{add}, ""}, {{add + "@prompt"}, ""}}},
            {"@I-J", {{add + span}, ""}, {{{add}, ""}, {{add + "@prompt"}, ""}, {{add + "@generated"}, ""}}},
            // The condition's transcoder reads block 3, downstream of the steered block 1.
            {"when, later layer", {{add}, feat("tc-L3", c3) + ">1"}, {{{add}, ""}}},
            {"when, earlier layer", {{clamp2}, feat("res-L0", c0) + ">0.5"}, {{{clamp2}, ""}}},
            {"transcoder clamp", {{feat("tc-L0", t0) + ":clamp=5"}, ""}, {{{feat("tc-L0", t0) + ":add=5"}, ""}}},
            {"several rows on several hooks",
             {{feat("res-L1", p1) + ":add=6", feat("res-L1", b1) + ":ablate", feat("tc-L0", t0) + ":clamp=5",
               feat("res-L3", r3) + ":add=8@generated"},
              ""},
             {}},
            {"one SAE, early end-of-text", {{std::to_string(p1) + ":add=12@generated"}, ""}, {}, modelWithEarlyEos(),
             {saeDir("res-L1")}},
        };
        vectorCases_ = Json::array({vectorCase("add", 4.0), vectorCase("clamp", 2.0)});
    }

    // A vector row (the reference's happy - sad direction) as the reference takes it; a clamp
    // must come out different from an add of the same value.
    Json vectorCase(const std::string& mode, double value) const {
        const Json row = {{"file", vectors_ + "/mean_difference.npy"}, {"hook", kVectorHook}, {"mode", mode}, {"value", value}};
        Json contrasts = Json::array();
        if (mode == "clamp") {
            Json asAdd = row;
            asAdd["mode"] = "add";
            contrasts.push_back({{"vectors", {asAdd}}});
        }
        return {{"name", "vector " + mode}, {"tokens", prompt_}, {"max_new", kMaxNew}, {"steer", Json::array()},
                {"vectors", {row}}, {"contrasts", contrasts}};
    }

    void runReferenceCases() {
        Json cases = vectorCases_;
        for (const SteerCase& c : cases_) {
            Json j = c.setting.toJson();
            j["name"] = c.name;
            j["tokens"] = prompt_;
            j["max_new"] = kMaxNew;
            j["contrasts"] = Json::array();
            for (const Setting& s : c.contrasts) j["contrasts"].push_back(s.toJson());
            if (c.model != "demo") j["model"] = c.model;
            if (!c.saes.empty()) {
                j["saes"] = Json::object();
                for (const auto& dir : c.saes) j["saes"][fs::path(dir).filename().string()] = dir;
            }
            cases.push_back(j);
        }
        const std::string dir = makeTempDir("steer-ref");
        writeFile(dir + "/job.json", Json({{"model", modelDir_}, {"saes", demoSaes()}, {"cases", cases}}).dump());
        runReference("ref_steer.py", "generate --job " + shellQuote(dir + "/job.json") + " --out " + shellQuote(dir + "/out.json"));
        const Json out = Json::parse(readFile(dir + "/out.json"));
        for (const Json& r : out["cases"]) ref_[r["name"].get<std::string>()] = r;
        QCOMPARE(ref_.size(), cases.size());
    }

    // What the reference says about one case, checked for being a case that can fail at all.
    const Json& reference(const std::string& name) {
        const Json& r = ref_.at(name);
        const Ids base = r["baseline"].get<Ids>(), steered = r["steered"].get<Ids>();
        const std::string hint = " (the demo changed? pick a stronger setting for '" + name + "')";
        if (steered == base) QTest::qFail(("the reference's steered output equals its baseline" + hint).c_str(), __FILE__, __LINE__);
        for (const Json& c : r["contrasts"])
            if (c.get<Ids>() == steered)
                QTest::qFail(("the reference cannot tell this case from its contrast " + show(steered) + hint).c_str(), __FILE__,
                             __LINE__);
        if (!r["condition"].is_null()) {
            const Json& cond = r["condition"];
            const int held = cond["held"].get<int>(), n = cond["positions"].get<int>();
            if (held == 0 || held == n)
                QTest::qFail(("the condition holds at " + std::to_string(held) + " of " + std::to_string(n) + " positions" + hint).c_str(),
                             __FILE__, __LINE__);
            if (cond["closest"].get<double>() < kTie)
                QTest::qFail(("a condition activation lies within " + std::to_string(kTie) + " of the threshold" + hint).c_str(),
                             __FILE__, __LINE__);
        }
        return r;
    }

private Q_SLOTS:
    void initTestCase() {
        // The work here and in each CLI run is many tiny matrix products; on a shared machine
        // a second thread mostly spin-waits.
        cs::setComputeThreads(1);
        demo_ = cs::demoBundleDir();
        if (demo_.empty()) QSKIP("the demo bundle is not installed");
        modelDir_ = cs::resolveModelDir("demo");
        model_ = cs::loadModel(modelDir_);
        auto tok = cs::loadTokenizer(modelDir_);
        auto ids = [&](const char* text) {
            auto v = tok->encodePrompt(text);
            return Ids(v.begin(), v.end());
        };
        prompt_ = ids(kPrompt);
        happy_ = ids(kHappy);
        sad_ = ids(kSad);
        QVERIFY(prompt_.size() > 8 && prompt_[0] == model_->config().bosTokenId);

        vectors_ = makeTempDir("steer-vectors");
        const std::string dir = makeTempDir("steer-probe");
        const Json job = {{"model", modelDir_}, {"saes", demoSaes()}, {"tokens", prompt_}, {"top", 6}, {"max_new", kMaxNew},
                          {"vectors", {{"dir", vectors_}, {"seed", 7}, {"hook", kVectorHook}, {"prompt_a", happy_},
                                       {"prompt_b", sad_}, {"skip_first", 1}}}};
        writeFile(dir + "/job.json", job.dump());
        runReference("ref_steer.py", "probe --job " + shellQuote(dir + "/job.json") + " --out " + shellQuote(dir + "/out.json"));
        probe_ = Json::parse(readFile(dir + "/out.json"));
        QCOMPARE(probe_["features"].size(), cs::demoSaeDirs().size());
        QVERIFY(probe_["baseline"].size() == size_t(kMaxNew));
        buildCases();
        runReferenceCases();
    }

    void specParserAcceptsEveryDocumentedForm() {
        cs::SteeringRule r = cs::parseSteerSpec("12:add=4");
        QCOMPARE(r.saeId, std::string());
        QCOMPARE(r.feature, 12L);
        QCOMPARE(r.mode, cs::SteerMode::Add);
        QCOMPARE(r.value, 4.0);
        QCOMPARE(r.positions.kind, cs::PositionRange::All);
        QVERIFY(!r.isVector());

        r = cs::parseSteerSpec("res-L2/77:ablate");
        QCOMPARE(r.saeId, std::string("res-L2"));
        QCOMPARE(r.feature, 77L);
        QCOMPARE(r.mode, cs::SteerMode::Ablate);
        QCOMPARE(r.value, 0.0);
        QCOMPARE(cs::parseSteerSpec("res-L2/77:ablate=0").mode, cs::SteerMode::Ablate);

        r = cs::parseSteerSpec("tc-L1/0:clamp=-2.5@prompt");
        QCOMPARE(r.saeId, std::string("tc-L1"));
        QCOMPARE(r.feature, 0L);
        QCOMPARE(r.mode, cs::SteerMode::Clamp);
        QCOMPARE(r.value, -2.5);
        QCOMPARE(r.positions.kind, cs::PositionRange::Prompt);

        QCOMPARE(cs::parseSteerSpec("3:add=1e1@generated").value, 10.0);
        QCOMPARE(cs::parseSteerSpec("3:add=1e1@generated").positions.kind, cs::PositionRange::Generated);
        QCOMPARE(cs::parseSteerSpec("3:add=1@all").positions.kind, cs::PositionRange::All);
        r = cs::parseSteerSpec("3:add=1@5-9");
        QCOMPARE(r.positions.kind, cs::PositionRange::Span);
        QCOMPARE(r.positions.first, 5L);
        QCOMPARE(r.positions.last, 9L);
        r = cs::parseSteerSpec("3:add=1@7");
        QCOMPARE(r.positions.first, 7L);
        QCOMPARE(r.positions.last, 7L);
        // An SAE id is everything before the last '/', so ids holding a '/' still work.
        QCOMPARE(cs::parseSteerSpec("group/sae/3:add=1").saeId, std::string("group/sae"));

        // Positions as parsed mean what the contract says.
        const long promptLength = 4;
        auto on = [&](const std::string& spec, long pos) { return cs::parseSteerSpec(spec).positions.contains(pos, promptLength); };
        QVERIFY(on("1:add=1", 0) && on("1:add=1", 99));
        QVERIFY(on("1:add=1@prompt", 3) && !on("1:add=1@prompt", 4));
        QVERIFY(!on("1:add=1@generated", 3) && on("1:add=1@generated", 4));
        QVERIFY(!on("1:add=1@2-5", 1) && on("1:add=1@2-5", 2) && on("1:add=1@2-5", 5) && !on("1:add=1@2-5", 6));

        // A spec printed and parsed again is the same row.
        for (const char* spec : {"res-L1/5:clamp=1.25@3-8", "7:ablate@generated", "x/9:add=-3"}) {
            const cs::SteeringRule a = cs::parseSteerSpec(spec);
            QCOMPARE(cs::toSpecString(a), std::string(spec));
        }

        cs::SteeringCondition c = cs::parseSteerCondition("42>1.5");
        QCOMPARE(c.saeId, std::string());
        QCOMPARE(c.feature, 42L);
        QCOMPARE(c.threshold, 1.5);
        c = cs::parseSteerCondition("res-L3/7>-0.25");
        QCOMPARE(c.saeId, std::string("res-L3"));
        QCOMPARE(c.feature, 7L);
        QCOMPARE(c.threshold, -0.25);
        QCOMPARE(cs::parseSteerCondition(c.toString()).threshold, -0.25);
    }

    void specParserRejectsMalformedSpecs() {
        for (const char* spec : {"", "3", "3:", ":add=1", "x:add=1", "-3:add=1", "3.5:add=1", "/3:add=1", "3:add", "3:clamp",
                                 "3:add=", "3:add=abc", "3:add=nan", "3:add=inf", "3:add=1x", "3:ablate=2", "3:mul=2",
                                 "3:ADD=1", "3:add=1@", "3:add=1@5-", "3:add=1@-5", "3:add=1@9-2", "3:add=1@middle",
                                 "3:add=1@1-2-3"}) {
            const std::string s = spec;
            expectOneLineError([&] { cs::parseSteerSpec(s); }, {"--steer '" + s + "'"});
        }
        for (const char* cond : {"", "42", ">1", "42>", "42>x", "x>1", "42<1", "/42>1", "42>>1", "42>nan", "-1>0"}) {
            const std::string s = cond;
            expectOneLineError([&] { cs::parseSteerCondition(s); }, {"--when '" + s + "'"});
        }
    }

    void cliErrorsAreOneLine() {
        const long width = cs::loadSae(saeDir("res-L1"))->dSae();
        const std::string outOfRange = "res-L1/" + std::to_string(width) + ":add=1";
        struct Bad {
            std::string args;
            std::vector<std::string> mention;
        };
        const std::vector<Bad> bad = {
            {steerArgs({outOfRange}, ""), {outOfRange, "out of range", std::to_string(width)}},
            {steerArgs({"no-such-sae/3:add=1"}, ""), {"no-such-sae", "res-L1"}},
            {steerArgs({"res-L1/3:add"}, ""), {"res-L1/3:add"}},
            {steerArgs({"res-L1/3:add=1@later"}, ""), {"res-L1/3:add=1@later"}},
            {steerArgs({"res-L1/3:add=1"}, "res-L1/3<2"), {"res-L1/3<2"}},
            {steerArgs({"res-L1/3:add=1"}, "res-L1/" + std::to_string(width) + ">1"), {"out of range"}},
            {steerArgs({"3:add=1"}, ""), {"3:add=1", "res-L0"}},  // 8 SAEs attached: the id is needed
        };
        for (const Bad& b : bad) {
            const std::string args = "--model demo --tokens " + joinIds(prompt_) + " --max-new 4 --json" + b.args;
            const CliResult r = steerCli(args);
            QVERIFY2(r.rc == 1, ("exit " + std::to_string(r.rc) + " for: " + args).c_str());
            QVERIFY2(r.out.empty(), ("stdout for a failed run: " + r.out).c_str());
            QVERIFY2(!r.err.empty() && r.err.find('\n') == r.err.size() - 1, ("not exactly one stderr line: " + r.err).c_str());
            QVERIFY2(r.err.find("error") != std::string::npos, r.err.c_str());
            for (const auto& m : b.mention)
                QVERIFY2(r.err.find(m) != std::string::npos, ("'" + r.err + "' does not mention '" + m + "'").c_str());
        }
    }

    void presetsRoundTrip() {
        cs::SteeringPlan plan;
        cs::SteeringRule f = cs::parseSteerSpec("res-L1/7:clamp=2.5@3-9");
        f.enabled = false;
        f.conditional = true;
        f.label = "boats";
        f.unit = 5.48;
        cs::SteeringRule v;
        v.vectorName = "happy";
        v.hook = kVectorHook;
        v.direction = at::randn({128});
        v.mode = cs::SteerMode::Add;
        v.value = -1.5;
        v.positions.kind = cs::PositionRange::Generated;
        cs::SteeringRule g = cs::parseSteerSpec("0:ablate@prompt");
        plan.rules = {f, v, g};
        plan.condition = cs::parseSteerCondition("tc-L3/56>0.75");

        const std::string path = makeTempDir("steer-preset") + "/plan.json";
        cs::saveSteeringPreset(path, plan);
        QCOMPARE(Json::parse(readFile(path))["format"].get<std::string>(), std::string("circuitscope-steering"));
        const cs::SteeringPlan back = cs::loadSteeringPreset(path);
        QCOMPARE(back.rules.size(), size_t(3));
        for (size_t i = 0; i < 3; ++i) {
            compareSteeringRules(plan.rules[i], back.rules[i]);
            if (QTest::currentTestFailed()) return;
        }
        QVERIFY(back.condition.has_value());
        QCOMPARE(back.condition->saeId, std::string("tc-L3"));
        QCOMPARE(back.condition->feature, 56L);
        QCOMPARE(back.condition->threshold, 0.75);

        Json j = cs::steeringPlanToJson(plan);
        j["format"] = "circuitscope-session";
        writeFile(path, j.dump());
        expectOneLineError([&] { cs::loadSteeringPreset(path); }, {path, "format"});
        j.erase("format");
        writeFile(path, j.dump());
        expectOneLineError([&] { cs::loadSteeringPreset(path); }, {path, "format"});
        j = cs::steeringPlanToJson(plan);
        j["version"] = 2;
        writeFile(path, j.dump());
        expectOneLineError([&] { cs::loadSteeringPreset(path); }, {path, "version"});
    }

    void tokensDifferingByHand() {
        using B = std::vector<bool>;
        QCOMPARE(cs::tokensDiffering({1, 2, 3}, {1, 2, 3}), (B{false, false, false}));
        QCOMPARE(cs::tokensDiffering({1, 2, 3}, {1, 9, 3}), (B{false, true, false}));
        QCOMPARE(cs::tokensDiffering({}, {4, 5}), (B{true, true}));
        QCOMPARE(cs::tokensDiffering({1, 2}, {}), B{});
        // A shift: the common run 2 3 4 stays plain, only the new token is marked.
        QCOMPARE(cs::tokensDiffering({1, 2, 3, 4}, {2, 3, 4, 5}), (B{false, false, false, true}));
        QCOMPARE(cs::tokensDiffering({1, 2, 3}, {1, 7, 7, 2, 3}), (B{false, true, true, false, false}));
        // Longest common subsequence of 1 2 1 2 and 2 1 2 1 has length 3: exactly one is new.
        const B d = cs::tokensDiffering({1, 2, 1, 2}, {2, 1, 2, 1});
        QCOMPARE(std::count(d.begin(), d.end(), true), 1L);
    }

    void steeringVectorFiles() {
        std::vector<float> want;
        for (const Json& x : probe_["vectors"]["values"]) want.push_back(x.get<float>());
        const at::Tensor expected = at::tensor(want, at::kFloat);
        auto same = [&](const at::Tensor& t) { return t.dim() == 1 && at::equal(t.to(at::kFloat), expected); };
        QVERIFY(same(cs::loadSteeringVector(vectors_ + "/direction.npy")));
        QVERIFY(same(cs::loadSteeringVector(vectors_ + "/direction_row.npy")));
        QVERIFY(same(cs::loadSteeringVector(vectors_ + "/direction.safetensors")));
        QVERIFY(same(cs::loadSteeringVector(vectors_ + "/direction.safetensors", "direction")));
        QVERIFY(same(cs::loadSteeringVector(vectors_ + "/two.safetensors", "b")));
        const std::string two = vectors_ + "/two.safetensors";
        expectOneLineError([&] { cs::loadSteeringVector(two); }, {two, "2 tensors"});
        expectOneLineError([&] { cs::loadSteeringVector(two, "c"); }, {two, "'c'"});
        const std::string npy = vectors_ + "/wrong_shape.npy";
        expectOneLineError([&] { cs::loadSteeringVector(npy); }, {npy, "[2,128]"});
        const std::string st = vectors_ + "/wrong_shape.safetensors";
        expectOneLineError([&] { cs::loadSteeringVector(st); }, {st, "[128,2]"});
        const std::string txt = vectors_ + "/direction.txt";
        writeFile(txt, "1 2 3");
        expectOneLineError([&] { cs::loadSteeringVector(txt); }, {txt});
        // A vector of the wrong width is refused when the plan is built, naming the hook.
        cs::SteeringPlan plan;
        cs::SteeringRule r;
        r.vectorName = "short";
        r.hook = kVectorHook;
        r.direction = at::ones({5});
        plan.rules = {r};
        expectOneLineError([&] { cs::Steering s(*model_, {}, plan); }, {"short", kVectorHook, "5"});
    }

    void meanDifferenceMatchesReference() {
        const at::Tensor got = cs::meanDifferenceVector(*model_, happy_, sad_, kVectorHook, 1);
        const Json& ref = probe_["vectors"]["mean_difference"];
        QCOMPARE(got.numel(), static_cast<int64_t>(ref.size()));
        const at::Tensor want = at::tensor(ref.get<std::vector<double>>(), at::kDouble);
        const double worst = (got.to(at::kDouble) - want).abs().max().item<double>();
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());
        QVERIFY(want.abs().max().item<double>() > 0.1);  // a real difference, not two equal prompts
        expectOneLineError([&] { cs::meanDifferenceVector(*model_, happy_, sad_, "blocks.9.hook_resid_post"); },
                    {"blocks.9.hook_resid_post"});
        expectOneLineError([&] { cs::meanDifferenceVector(*model_, {1}, sad_, kVectorHook, 1); }, {"prompt A"});
    }

    void cliMatchesReference() {
        for (const SteerCase& c : cases_) {
            const Json& r = reference(c.name);
            if (QTest::currentTestFailed()) return;
            std::string args = "--model " + shellQuote(c.model) + " --max-new " + std::to_string(kMaxNew) + " --json" +
                               steerArgs(c.setting.specs, c.setting.when);
            for (const auto& s : c.saes) args += " --sae " + shellQuote(s);
            // One case goes through --prompt (the tokenizer), the rest through --tokens.
            args += c.name == "add" ? " --prompt " + shellQuote(kPrompt) : " --tokens " + joinIds(prompt_);
            const CliResult out = steerCli(args);
            QVERIFY2(out.rc == 0, (c.name + ": exit " + std::to_string(out.rc) + ": " + out.err).c_str());
            const Json j = Json::parse(out.out);
            QCOMPARE(j["prompt_tokens"].get<Ids>(), prompt_);
            const Ids base = j["baseline"]["new_tokens"].get<Ids>(), steered = j["steered"]["new_tokens"].get<Ids>();
            std::string bad = tokenMismatch(c.name + " baseline", base, r["baseline"].get<Ids>(),
                                            r["baseline_margins"].get<std::vector<double>>());
            QVERIFY2(bad.empty(), bad.c_str());
            bad = tokenMismatch(c.name + " steered", steered, r["steered"].get<Ids>(),
                                r["steered_margins"].get<std::vector<double>>());
            QVERIFY2(bad.empty(), bad.c_str());
            QVERIFY2(steered != base, (c.name + ": steering changed nothing").c_str());
            QVERIFY(j["steered"]["text"].is_string() && !j["steered"]["text"].get<std::string>().empty());
        }
        // The early end-of-text case: both runs stop at that token.
        const Json& eos = ref_.at("one SAE, early end-of-text");
        const long eosId = probe_["baseline"][4].get<long>();
        QCOMPARE(eos["baseline"].back().get<long>(), eosId);
        QVERIFY(eos["baseline"].size() <= 5);
    }

    void vectorRowsMatchReference() {
        cs::SamplingOptions s;
        s.maxNewTokens = kMaxNew;
        s.greedy = true;
        const Ids base = cs::generate(*model_, prompt_, s);
        for (const Json& c : vectorCases_) {
            const std::string name = c["name"].get<std::string>();
            const Json& r = reference(name);
            if (QTest::currentTestFailed()) return;
            const Json& row = c["vectors"][0];
            cs::SteeringRule rule;
            rule.vectorName = "happy - sad";
            rule.hook = row["hook"].get<std::string>();
            rule.direction = cs::loadSteeringVector(row["file"].get<std::string>());
            rule.mode = cs::parseSteerMode(row["mode"].get<std::string>(), name);
            rule.value = row["value"].get<double>();
            cs::SteeringPlan plan;
            plan.rules = {rule};
            cs::Steering steering(*model_, {}, plan);
            const Ids steered = cs::generateSteered(*model_, prompt_, s, steering);
            std::string bad = tokenMismatch(name + " baseline", base, r["baseline"].get<Ids>(),
                                            r["baseline_margins"].get<std::vector<double>>());
            QVERIFY2(bad.empty(), bad.c_str());
            bad = tokenMismatch(name, steered, r["steered"].get<Ids>(), r["steered_margins"].get<std::vector<double>>());
            QVERIFY2(bad.empty(), bad.c_str());

            // The same row from a preset, through the CLI.
            const std::string preset = makeTempDir("steer-vector-preset") + "/plan.json";
            cs::saveSteeringPreset(preset, plan);
            const CliResult out = steerCli("--model demo --tokens " + joinIds(prompt_) + " --max-new " + std::to_string(kMaxNew) +
                                           " --json --preset " + shellQuote(preset));
            QVERIFY2(out.rc == 0, out.err.c_str());
            QCOMPARE(Json::parse(out.out)["steered"]["new_tokens"].get<Ids>(), steered);
        }
    }
};

QTEST_GUILESS_MAIN(TestSteer)
#include "test_steer.moc"
