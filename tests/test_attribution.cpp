// `circuitscope attribute` against an independent float64 reference (tests/reference/ref_attribution.py):
// a random GPT-2 with one random JumpReLU transcoder per layer (or skip transcoders, or random TopK
// residual-stream SAEs), nothing pruned, and every node and EVERY edge weight of the unpruned graph
// compared (a missing link counts as weight 0). The reference checks its own frozen model first
// (affine in the node writes, reproduces the clean forward), so a disagreement here points at the
// C++ side or at a convention, not at the reference. Plus the logit selection (--max-logits,
// --logit-probability, --target, --logit-diff), graph files read back, and the one-line errors.
#include "TestSupport.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QtTest>

#include <cmath>
#include <map>
#include <set>

using namespace cstest;
using Json = nlohmann::json;

namespace {

// "\nHello wor" as bytes. The random model's BOS is byte 0xFF, which is not UTF-8 text on its own;
// it has a test of its own so that a text problem does not hide the numbers.
const char* kTokens = "10,72,101,108,108,111,32,119,111,114";
const char* kBosTokens = "255,72,101,108,108,111";
constexpr int kLayers = 3;
// Relative tolerance on every edge and value; float32 against float64 on a small model.
constexpr double kRel = 1e-4;

struct CliResult {
    int rc = -1;
    std::string out, err;
};

// One line of what differs, or "".
struct Mismatches {
    int count = 0;
    std::string first;
    void add(const std::string& what) {
        if (count++ < 8) first += (first.empty() ? "" : "; ") + what;
    }
    std::string report(const std::string& what) const {
        return what + ": " + std::to_string(count) + " mismatch(es): " + first;
    }
};

bool close(double got, double want, double scale) { return std::abs(got - want) <= kRel * std::max(std::abs(want), scale); }

std::string num(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}

}  // namespace

class TestAttribution : public QObject {
    Q_OBJECT
    // The same weights twice: model_ has no tokenizer (labels are "<id>", so the numbers are tested
    // apart from any text handling), textModel_ has a byte-level one.
    std::string dir_, model_, textModel_;
    std::vector<std::string> transcoders_, skipTranscoders_, residualSaes_;

    CliResult cli(const std::string& args) {
        static int n = 0;
        const std::string errFile = dir_ + "/stderr" + std::to_string(n++);
        CliResult r;
        r.rc = run(shellQuote(CS_CLI_PATH) + " --threads 1 attribute " + args + " 2>" + shellQuote(errFile), &r.out);
        r.err = readFile(errFile);
        return r;
    }

    // " FLAG p1 p2 ...", as both the CLI and the reference take them.
    static std::string pathArgs(const char* flag, const std::vector<std::string>& paths) {
        std::string s = std::string(" ") + flag;
        for (const auto& p : paths) s += " " + shellQuote(p);
        return s;
    }
    std::string transcoderArgs() const { return pathArgs("--transcoders", transcoders_); }

    static Json readJson(const std::string& path) { return Json::parse(readFile(path)); }

    // The CLI's unpruned graph for `extra` (selection options), parsed; "" or why there is none.
    // `dicts`: the transcoder or SAE arguments (default: the JumpReLU transcoders).
    std::string cliGraph(const std::string& name, const std::string& extra, Json* graph, const char* tokens = kTokens,
                         const std::string& model = "", const std::string& dicts = "") {
        const std::string out = dir_ + "/" + name + ".json";
        const CliResult r = cli("--model " + shellQuote(model.empty() ? model_ : model) +
                                (dicts.empty() ? transcoderArgs() : dicts) + " --tokens " + tokens +
                                " --node-threshold 1 --edge-threshold 1 " + extra + " --out " + shellQuote(out));
        if (r.rc != 0) return name + ": attribute failed (" + std::to_string(r.rc) + "): " + r.err;
        try {
            *graph = Json::parse(readFile(out));
        } catch (const std::exception& e) {
            return name + ": " + out + " is not JSON: " + e.what();
        }
        return "";
    }

    Json reference(const std::string& name, const std::string& extra, const char* tokens = kTokens,
                   const std::string& dicts = "") {
        const std::string out = dir_ + "/" + name + "-ref.json";
        runReference("ref_attribution.py", "graph --model " + shellQuote(model_) + (dicts.empty() ? transcoderArgs() : dicts) +
                                               " --tokens " + tokens + " " + extra + " --out " + shellQuote(out));
        Json ref = Json::parse(readFile(out));
        // Near a JumpReLU threshold or a tie in the logit ranking, float32 and float64 may legitimately
        // choose different nodes; the fixture is chosen away from both, and this says so if it stops being.
        const double margin = ref["checks"]["threshold_margin"].get<double>();
        if (margin < 1e-4) QTest::qFail(("a pre-activation lies within " + num(margin) + " of its threshold; change the seed").c_str(), __FILE__, __LINE__);
        if (!ref["checks"]["logit_margin"].is_null() && ref["checks"]["logit_margin"].get<double>() < 1e-5)
            QTest::qFail("the logit selection is a near tie; change the seed or the options", __FILE__, __LINE__);
        return ref;
    }

    // Every node (id, kind, value) and every edge weight; returns "" when they agree.
    static std::string compare(const Json& got, const Json& ref) {
        // Nodes and edges apart, so that a missing node does not hide what the edges say.
        Mismatches m, e;
        std::map<std::string, const Json*> gotNodes;
        for (const auto& n : got["nodes"]) {
            const std::string id = n["node_id"].get<std::string>();
            if (!gotNodes.emplace(id, &n).second) m.add("duplicate node " + id);
        }
        std::set<std::string> refIds;
        static const std::map<std::string, std::string> kType = {{"feature", "cross layer transcoder"},
                                                                 {"error", "mlp reconstruction error"},
                                                                 {"residual error", "residual reconstruction error"},
                                                                 {"embedding", "embedding"},
                                                                 {"logit", "logit"}};
        for (const auto& r : ref["nodes"]) {
            const std::string id = r["node_id"].get<std::string>();
            refIds.insert(id);
            auto it = gotNodes.find(id);
            if (it == gotNodes.end()) {
                m.add("missing node " + id + " (activation " + num(r["activation"].get<double>()) + ")");
                continue;
            }
            const Json& n = *it->second;
            const std::string kind = r["kind"].get<std::string>();
            if (n.value("feature_type", "") != kType.at(kind)) m.add(id + ": feature_type '" + n.value("feature_type", "") + "'");
            if (n.value("layer", "?") != r["layer"].get<std::string>()) m.add(id + ": layer " + n["layer"].dump());
            if (n.value("ctx_idx", -1) != r["ctx_idx"].get<int>()) m.add(id + ": ctx_idx " + n["ctx_idx"].dump());
            if (kind == "feature" || kind == "logit") {
                const double want = r["activation"].get<double>(), g = n.value("activation", double(NAN));
                if (!close(g, want, 1e-3)) m.add(id + ": activation " + num(g) + ", reference " + num(want));
            }
            if (kind == "logit") {
                const double want = r["token_prob"].get<double>(), g = n.value("token_prob", double(NAN));
                if (!close(g, want, 1e-6)) m.add(id + ": token_prob " + num(g) + ", reference " + num(want));
            }
            // A feature node's `feature` is an encoding of (layer, index) whose form circuit-tracer
            // versions disagree on; the node_id already carries the index. A logit's is its token.
            if (kind == "logit" && n.value("feature", -2L) != r["feature"].get<long>()) m.add(id + ": feature " + n["feature"].dump());
        }
        for (const auto& [id, n] : gotNodes)
            if (!refIds.count(id)) m.add("extra node " + id + " (activation " + n->value("activation", Json()).dump() + ")");

        // Edges as a dense (target, source) comparison over the reference's nodes.
        std::map<std::pair<std::string, std::string>, double> gotLinks;  // (target, source) -> weight
        for (const auto& l : got["links"]) {
            const std::string s = l["source"].get<std::string>(), t = l["target"].get<std::string>();
            if (!gotLinks.emplace(std::make_pair(t, s), l["weight"].get<double>()).second) e.add("duplicate link " + s + " -> " + t);
        }
        const auto& nodes = ref["nodes"];
        std::map<int, std::map<int, double>> rows;  // target index -> source index -> weight
        for (const auto& e : ref["edges"]) rows[e[1].get<int>()][e[0].get<int>()] = e[2].get<double>();
        std::vector<int> sources;
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i]["kind"] != "logit") sources.push_back(static_cast<int>(i));
        size_t compared = 0, matchedLinks = 0;
        for (size_t t = 0; t < nodes.size(); ++t) {
            const std::string kind = nodes[t]["kind"].get<std::string>();
            if (kind != "feature" && kind != "logit") continue;
            const std::string tid = nodes[t]["node_id"].get<std::string>();
            if (!gotNodes.count(tid)) continue;  // already a node mismatch; its row says nothing more
            const auto& row = rows[static_cast<int>(t)];
            double rowMax = 0;
            for (const auto& [s, w] : row) rowMax = std::max(rowMax, std::abs(w));
            for (int s : sources) {
                const std::string sid = nodes[s]["node_id"].get<std::string>();
                if (!gotNodes.count(sid)) continue;
                auto r = row.find(s);
                const double want = r == row.end() ? 0.0 : r->second;
                auto g = gotLinks.find({tid, sid});
                const double have = g == gotLinks.end() ? 0.0 : g->second;
                if (g != gotLinks.end()) ++matchedLinks;
                ++compared;
                // Edges below 1% of their row are held to 1e-6 of the row max: float32 noise, not error.
                if (!close(have, want, 1e-2 * rowMax))
                    e.add(sid + " -> " + tid + ": " + num(have) + ", reference " + num(want) + " (row max " + num(rowMax) + ")");
            }
        }
        // Links between nodes the reference does not have, or into sources, are wrong whatever their weight.
        if (matchedLinks != gotLinks.size()) {
            auto typeOf = [&](const std::string& id) {
                auto it = gotNodes.find(id);
                return it == gotNodes.end() ? std::string("(no such node)") : it->second->value("feature_type", "");
            };
            for (const auto& [key, w] : gotLinks) {
                const std::string into = typeOf(key.first), from = typeOf(key.second);
                if (!refIds.count(key.first) || !refIds.count(key.second) || into == "embedding" ||
                    into == "mlp reconstruction error" || into == "residual reconstruction error" || from == "logit")
                    e.add("unexpected link " + key.second + " (" + from + ") -> " + key.first + " (" + into + "): " + num(w));
            }
        }
        if (compared == 0) e.add("nothing compared");
        std::string out = m.count ? m.report("nodes") : "";
        if (e.count) out += (out.empty() ? "" : " | ") + e.report("edges (absent = 0)");
        return out;
    }

    static std::vector<std::string> logitIds(const Json& g) {
        std::vector<std::string> ids;
        for (const auto& n : g["nodes"])
            if (n.value("feature_type", n.value("kind", "")) == "logit") ids.push_back(n["node_id"].get<std::string>());
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    void expectOneLineError(const CliResult& r, const std::vector<std::string>& mentions) {
        QCOMPARE(r.rc, 1);
        QVERIFY2(!r.err.empty() && r.err.find('\n') == r.err.size() - 1, ("not exactly one stderr line: " + r.err).c_str());
        for (const auto& s : mentions)
            QVERIFY2(r.err.find(s) != std::string::npos, ("'" + r.err + "' does not mention '" + s + "'").c_str());
    }

private Q_SLOTS:
    void initTestCase() {
        dir_ = makeTempDir("attribution");
        model_ = dir_ + "/model";
        runReference("make_random_model.py", "--arch gpt2 --seed 7 --layers " + std::to_string(kLayers) +
                                                 " --d-model 32 --heads 4 --vocab 256 --ctx 32 --out " + shellQuote(model_));
        textModel_ = dir_ + "/text-model";
        QVERIFY(QDir().mkpath(QString::fromStdString(textModel_)));
        for (const char* f : {"config.json", "model.safetensors"})
            writeFile(textModel_ + "/" + f, readFile(model_ + "/" + f));
        writeByteLevelTokenizer(textModel_);
        const Json paths = Json::parse(runReference("ref_attribution.py", "transcoders --model " + shellQuote(model_) +
                                                                              " --seed 5 --d-sae 48 --out " + shellQuote(dir_ + "/tc")));
        for (const auto& p : paths) transcoders_.push_back(p.get<std::string>());
        QCOMPARE(int(transcoders_.size()), kLayers);
        // Seeds where no pre-activation lies near its switching point (see reference()).
        for (const auto& p : Json::parse(runReference("ref_attribution.py", "transcoders --model " + shellQuote(model_) +
                                                                                " --seed 11 --d-sae 32 --arch skip_transcoder --out " +
                                                                                shellQuote(dir_ + "/skip"))))
            skipTranscoders_.push_back(p.get<std::string>());
        // One SAE on each kind of residual hook; the last layer's MLP output reaches the logits whole.
        for (const auto& p : Json::parse(runReference(
                 "ref_attribution.py", "saes --model " + shellQuote(model_) +
                                           " --seed 3 --d-sae 48 --k 8 --hooks blocks.0.hook_resid_pre blocks.1.hook_resid_post "
                                           "blocks.2.hook_resid_mid --out " + shellQuote(dir_ + "/res"))))
            residualSaes_.push_back(p.get<std::string>());
    }

    void unprunedGraphMatchesTheReference() {
        const Json ref = reference("default", "");
        // A fixture where the graph has something to say: several features at every position
        // (BOS included), and the full ten logits (the random model's next-token distribution is flat).
        for (const auto& layer : ref["checks"]["features_per_position"])
            for (const auto& n : layer) QVERIFY2(n.get<int>() >= 5 && n.get<int>() <= 30, ref["checks"].dump().c_str());
        QCOMPARE(int(logitIds(ref).size()), 10);
        Json got;
        const std::string failed = cliGraph("default", "", &got);
        QVERIFY2(failed.empty(), failed.c_str());
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());

        const Json& meta = got["metadata"];
        QCOMPARE(meta["schema_version"].get<int>(), 1);
        QCOMPARE(meta["prompt_tokens"].size(), size_t(10));
        QCOMPARE(meta["node_threshold"].get<double>(), 1.0);
        QVERIFY(got.contains("qParams"));
        for (const auto& n : got["nodes"]) {
            for (const char* key : {"node_id", "feature", "layer", "ctx_idx", "feature_type", "jsNodeId", "clerp",
                                    "token_prob", "is_target_logit", "influence", "activation"})
                QVERIFY2(n.contains(key), (n["node_id"].dump() + " has no " + key).c_str());
            QVERIFY(n["layer"].is_string());
        }
    }

    void logitSelectionMatchesTheReference() {
        // --max-logits caps the count; --logit-probability stops once the running sum reaches it
        // (here after two tokens: 0.095 + 0.034 >= 0.1).
        for (const auto& [name, opts] : std::vector<std::pair<std::string, std::string>>{
                 {"max3", "--max-logits 3"}, {"p01", "--logit-probability 0.1"}}) {
            const Json ref = reference(name, opts);
            Json got;
            const std::string failed = cliGraph(name, opts, &got);
            QVERIFY2(failed.empty(), failed.c_str());
            QCOMPARE(logitIds(got), logitIds(ref));
            const std::string diff = compare(got, ref);
            QVERIFY2(diff.empty(), (name + ": " + diff).c_str());
        }
        QCOMPARE(int(logitIds(reference("max3", "--max-logits 3")).size()), 3);
        QCOMPARE(int(logitIds(reference("p01", "--logit-probability 0.1")).size()), 2);
    }

    void explicitTargetsMatchTheReference() {
        // An id and a #id; none among the ten most likely, so the option is what chose them.
        const Json ref = reference("targets", "--target 65 200 97");
        Json got;
        const std::string failed = cliGraph("targets", "--target 65 --target '#200' --target 97", &got);
        QVERIFY2(failed.empty(), failed.c_str());
        const std::vector<std::string> want{"4_200_9", "4_65_9", "4_97_9"};
        QCOMPARE(logitIds(ref), want);
        QCOMPARE(logitIds(got), want);
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());
    }

    void skipTranscodersMatchTheReference() {
        // The skip term x W_skip is a path (linear in the frozen-normalised MLP input), not a node,
        // and the error node is the MLP output minus the transcoder's whole output, skip included.
        const std::string dicts = pathArgs("--transcoders", skipTranscoders_);
        const Json ref = reference("skip", "--max-logits 4", kTokens, dicts);
        Json got;
        const std::string failed = cliGraph("skip", "--max-logits 4", &got, kTokens, "", dicts);
        QVERIFY2(failed.empty(), failed.c_str());
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());
        QCOMPARE(got["metadata"]["circuitscope"]["replacement"].get<std::string>(), std::string("transcoders"));
    }

    void logitDifferenceMatchesTheReference() {
        // One target node, logit(65) - logit(97), whose id and JSON record survive a reload.
        const Json ref = reference("diff", "--logit-diff 65 97");
        Json got;
        const std::string failed = cliGraph("diff", "--logit-diff 65 '#97'", &got);
        QVERIFY2(failed.empty(), failed.c_str());
        QCOMPARE(logitIds(ref), std::vector<std::string>{"4_65-97_9"});
        QCOMPARE(logitIds(got), std::vector<std::string>{"4_65-97_9"});
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());
        const Json want = Json::array({{{"node_id", "4_65-97_9"}, {"token", 65}, {"minus_token", 97}}});
        QCOMPARE(got["metadata"]["circuitscope"]["logit_differences"], want);
        for (const auto& n : got["nodes"])
            if (n["node_id"] == "4_65-97_9") {
                QCOMPARE(n["feature"].get<long>(), 65L);
                QCOMPARE(n["clerp"].get<std::string>(), std::string("<65> \u2212 <97>"));
            }
        // Read back and written again, unpruned: the same file.
        const std::string again = dir_ + "/diff-again.json";
        const CliResult r = cli("--in " + shellQuote(dir_ + "/diff.json") + " --node-threshold 1 --edge-threshold 1 --out " +
                                shellQuote(again));
        QVERIFY2(r.rc == 0, r.err.c_str());
        const Json back = readJson(again);
        QCOMPARE(back["metadata"]["circuitscope"]["logit_differences"], want);
        QCOMPARE(back["nodes"], got["nodes"]);
        QCOMPARE(back["links"], got["links"]);
    }

    void residualSaesMatchTheReference() {
        // SAEs on blocks.0.hook_resid_pre, 1.hook_resid_post and 2.hook_resid_mid: each replaces the
        // stream by its features + b_dec + its error nodes ("{L}_-2_{pos}"), every MLP is an error
        // node "{L}_-1_{pos}" whole. Read back, the graph is the same file.
        const std::string dicts = pathArgs("--saes", residualSaes_);
        const Json ref = reference("residual", "--max-logits 4", kTokens, dicts);
        for (const auto& sae : ref["checks"]["features_per_position"])
            for (const auto& n : sae) QCOMPARE(n.get<int>(), 8);
        Json got;
        const std::string failed = cliGraph("residual", "--max-logits 4", &got, kTokens, "", dicts);
        QVERIFY2(failed.empty(), failed.c_str());
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());
        QCOMPARE(got["metadata"]["circuitscope"]["replacement"].get<std::string>(),
                 std::string("residual SAEs (with error nodes)"));
        QCOMPARE(got["metadata"]["circuitscope"]["sae_ids"], Json::array({"sae_0", "sae_1", "sae_2"}));
        const std::string again = dir_ + "/residual-again.json";
        const CliResult r = cli("--in " + shellQuote(dir_ + "/residual.json") + " --node-threshold 1 --edge-threshold 1 --out " +
                                shellQuote(again));
        QVERIFY2(r.rc == 0, r.err.c_str());
        const Json back = readJson(again);
        QCOMPARE(back["nodes"], got["nodes"]);
        QCOMPARE(back["links"], got["links"]);
        QCOMPARE(back["metadata"], got["metadata"]);
    }

    void residualSaesOnTheDemo() {
        // The demo's res-L0..L3 (TopK, on blocks.L.hook_resid_post) by their names.
        const std::string out = dir_ + "/demo-residual.json";
        const CliResult r = cli("--model demo --saes res-L0 res-L1 res-L2 res-L3 --prompt 'Once upon a time, there was a "
                                "little girl named' --out " + shellQuote(out));
        QVERIFY2(r.rc == 0, r.err.c_str());
        const Json g = readJson(out);
        QCOMPARE(g["metadata"]["circuitscope"]["replacement"].get<std::string>(), std::string("residual SAEs (with error nodes)"));
        QCOMPARE(g["metadata"]["transcoder_list"], Json::array({"res-L0", "res-L1", "res-L2", "res-L3"}));
        std::map<std::string, int> types;
        for (const auto& n : g["nodes"]) ++types[n["feature_type"].get<std::string>()];
        QVERIFY2(types["cross layer transcoder"] > 0 && types["residual reconstruction error"] > 0 && types["logit"] > 0,
                 Json(types).dump().c_str());
    }

    void minLinkShareDropsOnlySmallLinks() {
        // --min-link-share S keeps exactly the links of the whole graph whose |weight| reaches S
        // times their target's total |weight|, with the same weights; the nodes stay (their
        // influence does not: it is computed from the links).
        Json all, some;
        std::string failed = cliGraph("share-all", "--max-logits 3", &all);
        QVERIFY2(failed.empty(), failed.c_str());
        failed = cliGraph("share-some", "--max-logits 3 --min-link-share 0.02", &some);
        QVERIFY2(failed.empty(), failed.c_str());
        auto ids = [](const Json& g) {
            std::vector<std::string> out;
            for (const auto& n : g["nodes"]) out.push_back(n["node_id"].get<std::string>());
            return out;
        };
        QCOMPARE(ids(some), ids(all));
        std::map<std::string, double> total;
        for (const auto& l : all["links"]) total[l["target"].get<std::string>()] += std::abs(l["weight"].get<double>());
        std::set<std::string> want, got;
        for (const auto& l : all["links"])
            if (std::abs(l["weight"].get<double>()) >= 0.02 * total[l["target"].get<std::string>()]) want.insert(l.dump());
        for (const auto& l : some["links"]) got.insert(l.dump());
        QVERIFY2(got == want, (std::to_string(got.size()) + " links, expected " + std::to_string(want.size())).c_str());
        QVERIFY(want.size() > 100 && want.size() < all["links"].size() / 4);
    }

    void withATokenizer() {
        // Byte-level pieces above 0x7F (like GPT-2's parts of multi-byte characters) are not UTF-8
        // text on their own: here the BOS and most logits. The graph must still be written, with
        // the same numbers; and a one-token text ("a", byte 97) names a target.
        const Json ref = reference("text", "--target 97 255", kBosTokens);
        Json got;
        const std::string failed = cliGraph("text", "--target a --target 255", &got, kBosTokens, textModel_);
        QVERIFY2(failed.empty(), failed.c_str());
        QCOMPARE(logitIds(got), (std::vector<std::string>{"4_255_5", "4_97_5"}));
        const std::string diff = compare(got, ref);
        QVERIFY2(diff.empty(), diff.c_str());
        QCOMPARE(got["metadata"]["prompt_tokens"].size(), size_t(6));
        Json plain;
        const std::string failed2 = cliGraph("text-default", "", &plain, kBosTokens, textModel_);
        QVERIFY2(failed2.empty(), failed2.c_str());
        const std::string diff2 = compare(plain, reference("text-default", "", kBosTokens));
        QVERIFY2(diff2.empty(), diff2.c_str());
    }

    void badInputIsAOneLineError() {
        const std::string base = "--model " + shellQuote(model_) + " --node-threshold 1 --edge-threshold 1 --out " +
                                 shellQuote(dir_ + "/bad.json");
        expectOneLineError(cli(base + " --transcoders " + shellQuote(dir_ + "/no-such-transcoder") + " --tokens " + kTokens),
                           {"no-such-transcoder"});
        expectOneLineError(cli(base + transcoderArgs() + " --tokens 255,72,256"), {"256"});
        expectOneLineError(cli(base + transcoderArgs() + " --tokens " + kTokens + " --target 999"), {"999"});
        expectOneLineError(cli(base + transcoderArgs() + " --tokens " + kTokens + " --logit-diff 65 999"), {"--logit-diff", "999"});
        expectOneLineError(cli(base + transcoderArgs() + " --tokens " + kTokens + " --logit-diff 65 '#65'"), {"65", "itself"});
        // Transcoders and residual SAEs together; two SAEs on one point of the stream; an SAE on
        // a hook that is neither.
        expectOneLineError(cli(base + " --saes " + shellQuote(transcoders_[0]) + " " + shellQuote(residualSaes_[1]) +
                               " --tokens " + kTokens),
                           {"mixed", "sae_1"});
        const std::string pre2 = dir_ + "/res-pre2", onMlp = dir_ + "/res-mlp";
        for (const auto& [folder, hook] : {std::pair{pre2, "blocks.2.hook_resid_pre"}, std::pair{onMlp, "blocks.1.hook_mlp_out"}}) {
            QVERIFY(QDir().mkpath(QString::fromStdString(folder)));
            std::string cfg = readFile(residualSaes_[1] + "/cfg.json");
            const std::string from = "blocks.1.hook_resid_post";
            QVERIFY(cfg.find(from) != std::string::npos);
            writeFile(folder + "/cfg.json", cfg.replace(cfg.find(from), from.size(), hook));
            writeFile(folder + "/sae_weights.safetensors", readFile(residualSaes_[1] + "/sae_weights.safetensors"));
        }
        expectOneLineError(cli(base + " --saes " + shellQuote(residualSaes_[1]) + " " + shellQuote(pre2) + " --tokens " + kTokens),
                           {"res-pre2", "same point", "sae_1"});
        expectOneLineError(cli(base + " --saes " + shellQuote(onMlp) + " --tokens " + kTokens), {"res-mlp", "hook_mlp_out"});
        const std::string broken = dir_ + "/broken-graph.json";
        writeFile(broken, "{\"metadata\": {\"schema_version\": 1}, \"nodes\": [ {\"node_id\": ");
        expectOneLineError(cli("--in " + shellQuote(broken) + " --out " + shellQuote(dir_ + "/re.json")), {"broken-graph.json"});
        writeFile(broken, "{\"metadata\": {\"schema_version\": 1}, \"nodes\": [], \"links\": [{\"source\": \"x\", \"target\": \"y\", \"weight\": 1}]}");
        expectOneLineError(cli("--in " + shellQuote(broken) + " --out " + shellQuote(dir_ + "/re.json")), {});
    }
};

QTEST_GUILESS_MAIN(TestAttribution)
#include "test_attribution.moc"
