// Attention edges in the attribution graph (core/attribution/AttentionDecomposition) against an
// independent float64 reference (tests/reference/ref_attention_decomp.py, which propagates every
// node on its own through its own frozen model): a random GPT-2 and a random grouped-query Llama
// (RoPE) with random JumpReLU transcoders, every node's query and key contribution and the top
// pairs compared; the score = the sum of its terms, checked against the model's own score; the
// one-line errors; and the side panel (AttentionEdgePanel) on the demo model against the core.
#include "TestSupport.h"

#include "attribution/AttentionDecomposition.h"
#include "model/ModelLoader.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/AttentionEdgePanel.h"

#include <nlohmann/json.hpp>

#include <QLabel>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <map>

using namespace cstest;
using Json = nlohmann::json;

namespace {

// "\nHello wor" as bytes.
const std::vector<long> kTokens = {10, 72, 101, 108, 108, 111, 32, 119, 111, 114};
// float32 against float64: relative, with a floor of 1% of the largest value of the list.
constexpr double kRel = 1e-4;
constexpr double kFloor = 1e-2;

std::string num(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}

std::string tokenList() {
    std::string s;
    for (long t : kTokens) s += (s.empty() ? "" : ",") + std::to_string(t);
    return s;
}

struct Fixture {
    std::string model;
    std::vector<std::string> transcoderPaths;
    std::shared_ptr<cs::Transformer> transformer;
    std::vector<cs::AttributionTranscoder> transcoders;
};

// One line of what differs, or "".
struct Mismatches {
    int count = 0;
    std::string first;
    void check(bool ok, const std::string& what) {
        if (!ok && count++ < 6) first += (first.empty() ? "" : "; ") + what;
    }
    std::string report() const { return count ? std::to_string(count) + " mismatch(es): " + first : ""; }
};

bool close(double got, double want, double floor) { return std::abs(got - want) <= kRel * std::max(std::abs(want), floor); }

// Every node's query and key value, the scalar terms and the top pairs of one edge.
std::string compare(const cs::AttentionDecomposition& got, const Json& ref) {
    Mismatches m;
    const std::string where = "edge " + ref["layer"].dump() + "," + ref["head"].dump() + "," + ref["query"].dump() + "," +
                              ref["key"].dump() + ": ";
    const double score = ref["score"].get<double>();
    double termScale = std::abs(score);
    for (const char* k : {"pair_sum", "query_nodes_key_bias", "query_bias_key_nodes", "bias_bias"})
        termScale = std::max(termScale, std::abs(ref[k].get<double>()));
    auto scalar = [&](const char* name, double g) {
        const double want = ref[name].get<double>();
        m.check(close(g, want, kFloor * termScale), std::string(name) + " " + num(g) + ", reference " + num(want));
    };
    scalar("score", got.score);
    scalar("pair_sum", got.pairSum);
    scalar("query_nodes_key_bias", got.queryNodesKeyBias);
    scalar("query_bias_key_nodes", got.queryBiasKeyNodes);
    scalar("bias_bias", got.biasBias);
    m.check(std::abs(got.pattern - ref["pattern"].get<double>()) < 1e-5, "pattern " + num(got.pattern));

    std::map<std::string, int> index;
    for (size_t i = 0; i < got.nodes.size(); ++i) index[got.nodes[i].id] = static_cast<int>(i);
    m.check(got.nodes.size() == ref["nodes"].size(),
            std::to_string(got.nodes.size()) + " nodes, reference " + std::to_string(ref["nodes"].size()));
    double qMax = 0, kMax = 0;
    for (const auto& r : ref["nodes"]) {
        qMax = std::max(qMax, std::abs(r["query_value"].get<double>()));
        if (!r["key_value"].is_null()) kMax = std::max(kMax, std::abs(r["key_value"].get<double>()));
    }
    for (const auto& r : ref["nodes"]) {
        const std::string id = r["node_id"].get<std::string>();
        auto it = index.find(id);
        if (it == index.end()) {
            m.check(false, "missing node " + id);
            continue;
        }
        const cs::GraphNode& n = got.nodes[static_cast<size_t>(it->second)];
        m.check(n.layer == r["layer"].get<int>() && n.position == r["ctx_idx"].get<int>() &&
                    n.feature == r["feature"].get<long>() && cs::nodeKindName(n.kind) == r["kind"].get<std::string>(),
                id + ": fields");
        const double q = got.queryValue[static_cast<size_t>(it->second)], k = got.keyValue[static_cast<size_t>(it->second)];
        const double wantQ = r["query_value"].get<double>();
        m.check(close(q, wantQ, kFloor * qMax), id + ": query " + num(q) + ", reference " + num(wantQ));
        if (r["key_value"].is_null()) {
            m.check(k == 0, id + ": key " + num(k) + " after the key position");
        } else {
            const double wantK = r["key_value"].get<double>();
            m.check(close(k, wantK, kFloor * kMax), id + ": key " + num(k) + ", reference " + num(wantK));
        }
    }
    // Rank by rank the same magnitudes; each pair named has the reference's value for that pair
    // (or ties at the tail, below every pair the reference lists).
    const Json& pairs = ref["top_pairs"];
    std::map<std::pair<std::string, std::string>, double> refPair;
    for (const auto& p : pairs) refPair[{p[0].get<std::string>(), p[1].get<std::string>()}] = p[2].get<double>();
    const double pMax = pairs.empty() ? 0 : std::abs(pairs[0][2].get<double>());
    const double tail = pairs.empty() ? 0 : std::abs(pairs.back()[2].get<double>());
    m.check(got.topPairs.size() == std::min<size_t>(20, pairs.size()), "top pairs: " + std::to_string(got.topPairs.size()));
    for (size_t i = 0; i < got.topPairs.size() && i < pairs.size(); ++i) {
        const cs::AttentionPair& p = got.topPairs[i];
        const double wantRank = pairs[i][2].get<double>();
        m.check(close(std::abs(p.value), std::abs(wantRank), kFloor * pMax),
                "pair rank " + std::to_string(i) + ": " + num(p.value) + ", reference " + num(wantRank));
        const std::string qid = got.nodes[static_cast<size_t>(p.queryNode)].id, kid = got.nodes[static_cast<size_t>(p.keyNode)].id;
        auto it = refPair.find({qid, kid});
        const std::string name = "pair " + qid + " x " + kid;
        if (it != refPair.end())
            m.check(close(p.value, it->second, kFloor * pMax), name + ": " + num(p.value) + ", reference " + num(it->second));
        else
            m.check(std::abs(p.value) <= tail + kRel * pMax, name + " is not among the reference's largest");
    }
    const std::string r = m.report();
    return r.empty() ? "" : where + r;
}

}  // namespace

class TestAttentionDecomp : public QObject {
    Q_OBJECT
    std::string dir_;
    Fixture gpt2_, llama_;

    Fixture make(const std::string& name, const std::string& modelArgs) {
        Fixture f;
        f.model = dir_ + "/" + name;
        runReference("make_random_model.py", modelArgs + " --out " + shellQuote(f.model));
        const Json paths = Json::parse(runReference("ref_attribution.py", "transcoders --model " + shellQuote(f.model) +
                                                                              " --seed 5 --d-sae 48 --out " + shellQuote(f.model + "-tc")));
        f.transformer = cs::loadModel(f.model);
        for (const auto& p : paths) {
            f.transcoderPaths.push_back(p.get<std::string>());
            f.transcoders.push_back({std::filesystem::path(p.get<std::string>()).filename().string(), cs::loadSae(p.get<std::string>())});
        }
        return f;
    }

    Json reference(const Fixture& f, const std::vector<cs::AttentionEdge>& edges) {
        std::string args = "--model " + shellQuote(f.model) + " --transcoders";
        for (const auto& p : f.transcoderPaths) args += " " + shellQuote(p);
        args += " --tokens " + tokenList();
        for (const auto& e : edges)
            args += " --edge " + std::to_string(e.layer) + "," + std::to_string(e.head) + "," + std::to_string(e.query) + "," +
                    std::to_string(e.key);
        const std::string out = dir_ + "/ref-" + std::filesystem::path(f.model).filename().string() + ".json";
        runReference("ref_attention_decomp.py", args + " --out " + shellQuote(out));
        Json ref = Json::parse(readFile(out));
        // Near a JumpReLU threshold float32 and float64 may pick different features.
        if (ref["checks"]["threshold_margin"].get<double>() < 1e-4)
            QTest::qFail("a pre-activation lies within 1e-4 of its threshold; change the seed", __FILE__, __LINE__);
        return ref;
    }

    // Every edge against the reference, and the identities that hold whatever the reference says.
    void matchesTheReference(const Fixture& f, const std::vector<cs::AttentionEdge>& edges) {
        const Json ref = reference(f, edges);
        for (size_t i = 0; i < edges.size(); ++i) {
            const cs::AttentionDecomposition got = cs::decomposeAttention(*f.transformer, f.transcoders, kTokens, edges[i]);
            const std::string diff = compare(got, ref["edges"][i]);
            QVERIFY2(diff.empty(), diff.c_str());
            sumsToTheScore(got);
        }
    }

    // The score the model computed = the sum of the decomposition's terms (float32 rounding apart).
    static void sumsToTheScore(const cs::AttentionDecomposition& d) {
        const double tol = 1e-5 * std::max({1.0, std::abs(d.score), std::abs(d.pairSum), std::abs(d.queryNodesKeyBias),
                                            std::abs(d.queryBiasKeyNodes), std::abs(d.biasBias)});
        QVERIFY2(std::abs(d.reconstructed() - d.score) <= tol, (num(d.reconstructed()) + " vs score " + num(d.score)).c_str());
        double q = d.queryBias(), k = d.keyBias();
        for (double v : d.queryValue) q += v;
        for (double v : d.keyValue) k += v;
        QVERIFY2(std::abs(q - d.score) <= tol, ("query side " + num(q) + " vs score " + num(d.score)).c_str());
        QVERIFY2(std::abs(k - d.score) <= tol, ("key side " + num(k) + " vs score " + num(d.score)).c_str());
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeAttentionTest");
        QSettings().clear();
        dir_ = makeTempDir("attention-decomp");
        gpt2_ = make("gpt2", "--arch gpt2 --seed 7 --layers 3 --d-model 32 --heads 4 --vocab 256 --ctx 32");
        llama_ = make("llama", "--arch llama --seed 8 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --vocab 256 --ctx 32");
    }

    // Layer 0 (only embeddings upstream), a query attending to itself, and the first position.
    void gpt2MatchesTheReference() { matchesTheReference(gpt2_, {{0, 1, 9, 3}, {1, 2, 7, 7}, {2, 0, 9, 0}}); }

    // RoPE on Q and K, and a query head reading a shared key head (heads 2, 3 share kv head 1).
    void llamaMatchesTheReference() { matchesTheReference(llama_, {{1, 3, 9, 4}, {1, 0, 6, 2}}); }

    // All pairs add up to pairSum; the top pairs are the largest of them, in order; a batch smaller
    // than 2 d_head (several backward passes) gives the same numbers.
    void pairsAndBatches() {
        const cs::AttentionEdge e{2, 1, 8, 5};
        cs::AttentionOptions all;
        all.topPairs = 1 << 30;
        const cs::AttentionDecomposition full = cs::decomposeAttention(*gpt2_.transformer, gpt2_.transcoders, kTokens, e, all);
        size_t atKey = 0;
        for (const auto& n : full.nodes) atKey += n.position <= e.key;
        QCOMPARE(full.topPairs.size(), full.nodes.size() * atKey);
        QCOMPARE(full.keyContributors.size(), atKey);
        QCOMPARE(full.queryContributors.size(), full.nodes.size());
        QVERIFY(full.saeIds == std::vector<std::string>({"layer_0", "layer_1", "layer_2"}));
        double sum = 0;
        for (const auto& p : full.topPairs) sum += p.value;
        QVERIFY2(std::abs(sum - full.pairSum) <= 1e-9 * std::max(1.0, std::abs(full.pairSum)),
                 (num(sum) + " vs " + num(full.pairSum)).c_str());
        for (size_t i = 1; i < full.topPairs.size(); ++i)
            QVERIFY(std::abs(full.topPairs[i - 1].value) >= std::abs(full.topPairs[i].value));
        for (size_t i = 1; i < full.queryContributors.size(); ++i)
            QVERIFY(std::abs(full.queryContributors[i - 1].value) >= std::abs(full.queryContributors[i].value));

        cs::AttentionOptions small;
        small.batch = 5;
        const cs::AttentionDecomposition d = cs::decomposeAttention(*gpt2_.transformer, gpt2_.transcoders, kTokens, e, small);
        QCOMPARE(d.topPairs.size(), size_t(20));
        for (size_t i = 0; i < d.topPairs.size(); ++i) {
            QCOMPARE(d.topPairs[i].queryNode, full.topPairs[i].queryNode);
            QCOMPARE(d.topPairs[i].keyNode, full.topPairs[i].keyNode);
            QVERIFY(std::abs(d.topPairs[i].value - full.topPairs[i].value) <= 1e-6 * std::abs(full.topPairs[0].value));
        }
        sumsToTheScore(d);
    }

    void errorsAreOneLine() {
        const auto& m = *gpt2_.transformer;
        const auto& tc = gpt2_.transcoders;
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {3, 0, 1, 0}); }, {"layer 3", "out of range"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {-1, 0, 1, 0}); }, {"layer -1"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {0, 4, 1, 0}); }, {"head 4", "out of range"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {0, 0, 10, 0}); }, {"query position 10", "10 tokens"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {0, 0, 3, 4}); }, {"key position 4", "0..3"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, kTokens, {0, 0, 3, -1}); }, {"key position -1"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, {}, {0, 0, 0, 0}); }, {"no tokens"});
        expectOneLineError([&] { cs::decomposeAttention(m, tc, {1, 999}, {0, 0, 1, 0}); }, {"token id 999"});
        // Two transcoders for one layer.
        std::vector<cs::AttributionTranscoder> twice{tc[0], tc[0]};
        expectOneLineError([&] { cs::decomposeAttention(m, twice, kTokens, {1, 0, 1, 0}); }, {"second transcoder", "layer 0"});
    }

    // The panel on the demo: its tables hold exactly what the core computes for the session's prompt.
    void panelShowsTheCoreNumbers() {
        if (cs::demoBundleDir().empty()) QSKIP("the demo bundle is not installed");
        const std::string prompt = "Once upon a time, there was a little girl";
        cs::ui::SessionController session;
        QSignalSpy loaded(&session, &cs::ui::SessionController::modelLoaded);
        session.loadModel(QString::fromStdString(cs::resolveModelDir("demo")));
        QVERIFY(loaded.wait(60000));
        QSignalSpy finished(&session, &cs::ui::SessionController::runFinished);
        session.run(cs::ui::RunSettings{QString::fromStdString(prompt), 0, true, 1.0, 0});
        QVERIFY(finished.wait(60000));

        cs::ui::AttentionEdgePanel panel(&session);
        const cs::AttentionEdge e{2, 1, 9, 4};
        panel.setEdge(e.layer, e.head, e.query, e.key);
        QCOMPARE(panel.edge().layer, e.layer);
        QCOMPARE(panel.edge().key, e.key);
        QSignalSpy computed(&panel, &cs::ui::AttentionEdgePanel::computed);
        QSignalSpy failed(&session, &cs::ui::SessionController::failed);
        panel.run();
        QVERIFY2(computed.wait(60000), failed.isEmpty() ? "no result" : qPrintable(failed.front().front().toString()));

        // The core, on the same tokens and transcoders.
        const std::string modelDir = cs::resolveModelDir("demo");
        auto model = cs::loadModel(modelDir);
        auto tok = cs::loadTokenizer(modelDir);
        std::vector<cs::AttributionTranscoder> tcs;
        for (const cs::AnalysisSae& s : session.saes())
            if (s.sae->config().hookNameOut.find("hook_mlp_out") != std::string::npos) tcs.push_back({s.id, s.sae});
        QVERIFY(!tcs.empty());
        const std::vector<int> ids = tok->encodePrompt(prompt);
        const cs::AttentionDecomposition want = cs::decomposeAttention(*model, tcs, std::vector<long>(ids.begin(), ids.end()), e);

        // Node ids in column 0 (pairs: the query node), the value in `col`, its share next to it.
        auto checkTable = [&](QTableWidget* t, const std::vector<std::pair<std::string, double>>& rows, int col) {
            QVERIFY(t->rowCount() > 0);
            QCOMPARE(t->rowCount(), static_cast<int>(std::min<size_t>(rows.size(), panel.rowsShown())));
            for (int i = 0; i < t->rowCount(); ++i) {
                QCOMPARE(t->item(i, 0)->data(Qt::UserRole).toString().toStdString(), rows[static_cast<size_t>(i)].first);
                const double v = t->item(i, col)->data(Qt::UserRole).toDouble();
                QVERIFY2(std::abs(v - rows[static_cast<size_t>(i)].second) <= 1e-9 * std::max(1.0, std::abs(v)),
                         (num(v) + " vs " + num(rows[static_cast<size_t>(i)].second)).c_str());
                // The share column: the value over the score.
                QCOMPARE(t->item(i, col + 1)->data(Qt::UserRole).toDouble(), v / want.score);
            }
        };
        std::vector<std::pair<std::string, double>> q, k, pairs;
        for (const auto& c : want.queryContributors) q.push_back({want.nodes[static_cast<size_t>(c.node)].id, c.value});
        for (const auto& c : want.keyContributors) k.push_back({want.nodes[static_cast<size_t>(c.node)].id, c.value});
        for (const auto& p : want.topPairs) pairs.push_back({want.nodes[static_cast<size_t>(p.queryNode)].id, p.value});
        checkTable(panel.queryTable(), q, 1);
        checkTable(panel.keyTable(), k, 1);
        checkTable(panel.pairTable(), pairs, 2);
        for (int i = 0; i < panel.pairTable()->rowCount(); ++i)
            QCOMPARE(panel.pairTable()->item(i, 1)->data(Qt::UserRole).toString().toStdString(),
                     want.nodes[static_cast<size_t>(want.topPairs[static_cast<size_t>(i)].keyNode)].id);
        QVERIFY(panel.summary()->text().contains(QString::number(want.score, 'f', 3)));
        // Labels without a store: "L{layer} #{feature} @{pos}", "L{layer} error @{pos}", "Emb "text" @{pos}".
        for (int i = 0; i < panel.queryTable()->rowCount(); ++i) {
            const cs::GraphNode& n = want.nodes[static_cast<size_t>(want.queryContributors[static_cast<size_t>(i)].node)];
            const QString text = panel.queryTable()->item(i, 0)->text();
            QVERIFY2(text.endsWith(QStringLiteral(" @%1").arg(n.position)), qPrintable(text));
            if (n.kind == cs::NodeKind::Feature)
                QVERIFY2(text.startsWith(QStringLiteral("L%1 #%2").arg(n.layer).arg(n.feature)), qPrintable(text));
        }

        // Clicking a row names its node.
        QSignalSpy chosen(&panel, &cs::ui::AttentionEdgePanel::nodeChosen);
        QTableWidget* t = panel.keyTable();
        t->show();
        QTest::mouseClick(t->viewport(), Qt::LeftButton, Qt::NoModifier, t->visualItemRect(t->item(1, 0)).center());
        QCOMPARE(chosen.count(), 1);
        QCOMPARE(chosen.front().front().toString().toStdString(), k[1].first);

        // A bad edge reports in the panel, in one line.
        panel.setEdge(e.layer, e.head, 2, 5);
        QSignalSpy failed2(&panel, &cs::ui::AttentionEdgePanel::failed);
        panel.run();
        QVERIFY(failed2.wait(60000));
        QVERIFY(failed2.front().front().toString().contains("key position"));
        QVERIFY(panel.summary()->text().contains("key position"));
    }
};

QTEST_MAIN(TestAttentionDecomp)
#include "test_attention_decomp.moc"
