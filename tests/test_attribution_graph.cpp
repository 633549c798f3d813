// Attribution graphs as data (core/attribution: GraphPruning, GraphJson, GraphTraversal) on small
// hand-built graphs whose influence, pruning, scores and paths are worked out by hand in the
// comments below (circuit-tracer's and Neuronpedia's definitions), a dense power-sum recomputation
// of influence on random DAGs, exact JSON round trips, a circuit-tracer-style file, every
// malformed-input error, and a 10,000-node / 1,000,000-link graph end to end.
#include "TestSupport.h"
#include "SyntheticGraph.h"

#include "attribution/AttributionGraph.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "attribution/GraphTraversal.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <unordered_set>

using namespace cstest;
using Json = nlohmann::json;

namespace {


enum { E0, E1, F1, Err, F2, L, L2 };

// Graph B (2 layers, 2 positions):
//   E0 -1-> F1, E1 -(-3)-> F1, F1 -2-> F2, Err -(-2)-> F2, F2 -4-> L, E1 -(-1)-> L,
//   F1 -1-> L2, Err -1-> L2; p(L) = 0.6, p(L2) = 0.2.
// Row shares: F1 = {E0 .25, E1 .75}; F2 = {F1 .5, Err .5}; L = {F2 .8, E1 .2}; L2 = {F1 .5, Err .5}.
// wN = {F2 .48, E1 .12, F1 .1, Err .1}; wN^2 = {F1 .24, Err .24, E0 .025, E1 .075}; wN^3 = {E0 .06,
// E1 .18}. Influence: E0 .085, E1 .375, F1 .34, Err .34, F2 .48, logits 0 (total 1.62).
cs::AttributionGraph graphB() {
    cs::AttributionGraph g;
    g.slug = "b";
    g.layers = 2;
    g.tokens = {100, 101};
    g.tokenTexts = {"a", "b"};
    g.nodes = {node(cs::NodeKind::Embedding, -1, 0, -1, "E_100_0"),
               node(cs::NodeKind::Embedding, -1, 1, -1, "E_101_1"),
               node(cs::NodeKind::Feature, 0, 1, 7, "0_7_1"),
               node(cs::NodeKind::Error, 0, 1, -1, "0_-1_1"),
               node(cs::NodeKind::Feature, 1, 1, 3, "1_3_1"),
               node(cs::NodeKind::Logit, 2, 1, 42, "3_42_1", 0.6f),
               node(cs::NodeKind::Logit, 2, 1, 43, "3_43_1", 0.2f)};
    g.nodes[L].isTargetLogit = true;
    g.links = {{E0, F1, 1}, {E1, F1, -3}, {F1, F2, 2}, {Err, F2, -2},
               {F2, L, 4},  {E1, L, -1},  {F1, L2, 1}, {Err, L2, 1}};
    return g;
}

std::set<std::string> ids(const cs::AttributionGraph& g) {
    std::set<std::string> s;
    for (const auto& n : g.nodes) s.insert(n.id);
    return s;
}

std::set<std::pair<std::string, std::string>> linkIds(const cs::AttributionGraph& g) {
    std::set<std::pair<std::string, std::string>> s;
    for (const auto& l : g.links) s.insert({g.nodes[l.source].id, g.nodes[l.target].id});
    return s;
}

void expectNear(double got, double want, const char* what) {
    QVERIFY2(std::abs(got - want) < 1e-6,
             (std::string(what) + ": got " + std::to_string(got) + ", want " + std::to_string(want)).c_str());
}

bool sameFloat(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (a == b); }

void expectSameGraph(const cs::AttributionGraph& a, const cs::AttributionGraph& b) {
    QCOMPARE(b.slug, a.slug);
    QCOMPARE(b.scan, a.scan);
    QCOMPARE(b.prompt, a.prompt);
    QVERIFY(b.tokens == a.tokens);
    QVERIFY(b.tokenTexts == a.tokenTexts);
    QCOMPARE(b.replacement, a.replacement);
    QVERIFY(b.saeIds == a.saeIds);
    QCOMPARE(b.layers, a.layers);
    QVERIFY(sameFloat(b.nodeThreshold, a.nodeThreshold));
    QVERIFY(sameFloat(b.edgeThreshold, a.edgeThreshold));
    QVERIFY(sameFloat(b.replacementScore, a.replacementScore));
    QVERIFY(sameFloat(b.completenessScore, a.completenessScore));
    QVERIFY(b.pinnedIds == a.pinnedIds);
    QCOMPARE(b.clickedId, a.clickedId);
    QCOMPARE(b.supernodes.size(), a.supernodes.size());
    for (size_t i = 0; i < a.supernodes.size(); ++i) {
        QCOMPARE(b.supernodes[i].label, a.supernodes[i].label);
        QVERIFY(b.supernodes[i].nodeIds == a.supernodes[i].nodeIds);
    }
    QCOMPARE(b.nodes.size(), a.nodes.size());
    for (size_t i = 0; i < a.nodes.size(); ++i) {
        const auto &x = a.nodes[i], &y = b.nodes[i];
        const std::string at = "node " + std::to_string(i);
        QVERIFY2(x.kind == y.kind, at.c_str());
        QVERIFY2(x.layer == y.layer, at.c_str());
        QVERIFY2(x.position == y.position, at.c_str());
        QVERIFY2(x.feature == y.feature, at.c_str());
        QVERIFY2(x.id == y.id, at.c_str());
        QVERIFY2(x.label == y.label, at.c_str());
        QVERIFY2(x.isTargetLogit == y.isTargetLogit, at.c_str());
        QVERIFY2(sameFloat(x.activation, y.activation), at.c_str());
        QVERIFY2(sameFloat(x.tokenProb, y.tokenProb), at.c_str());
        QVERIFY2(sameFloat(x.influence, y.influence), at.c_str());
        QVERIFY2(sameFloat(x.influenceScore, y.influenceScore), at.c_str());
    }
    QCOMPARE(b.links.size(), a.links.size());
    for (size_t i = 0; i < a.links.size(); ++i) {
        QCOMPARE(b.links[i].source, a.links[i].source);
        QCOMPARE(b.links[i].target, a.links[i].target);
        QVERIFY(sameFloat(b.links[i].weight, a.links[i].weight));
    }
}

// A circuit-tracer-style file (create_graph_files' spelling: Cantor features, null influence on
// the logit, null activations, extra fields it writes), 2 layers, 2 positions.
Json ctSample() {
    // A plain string literal: moc does not read raw string literals.
    return Json::parse(
        "{\n"
        "  \"metadata\": {\"slug\": \"ct\", \"scan\": \"gemma-2-2b\", \"transcoder_list\": [],\n"
        "               \"prompt_tokens\": [\"<bos>\", \"Hi\"], \"prompt\": \"<bos>Hi\", \"node_threshold\": 0.8,\n"
        "               \"schema_version\": 1},\n"
        "  \"qParams\": {\"pinnedIds\": [\"1_5_1\", \"E_2_0\"], \"supernodes\": [[\"greeting\", \"1_5_1\", \"0_-1_1\"]],\n"
        "              \"linkType\": \"both\", \"clickedId\": \"1_5_1\", \"sg_pos\": \"\"},\n"
        "  \"nodes\": [\n"
        "    {\"node_id\": \"E_2_0\", \"feature\": 0, \"layer\": \"E\", \"ctx_idx\": 0, \"feature_type\": \"embedding\",\n"
        "     \"token_prob\": 0.0, \"is_target_logit\": false, \"run_idx\": 0, \"reverse_ctx_idx\": 0,\n"
        "     \"jsNodeId\": \"E_2-0\", \"clerp\": \"\", \"influence\": 0.9, \"activation\": null},\n"
        "    {\"node_id\": \"E_9259_1\", \"feature\": 1, \"layer\": \"E\", \"ctx_idx\": 1, \"feature_type\": \"embedding\",\n"
        "     \"token_prob\": 0.0, \"is_target_logit\": false, \"run_idx\": 0, \"reverse_ctx_idx\": 0,\n"
        "     \"jsNodeId\": \"E_9259-1\", \"clerp\": \"\", \"influence\": 0.5, \"activation\": null},\n"
        "    {\"node_id\": \"1_5_1\", \"feature\": 26, \"layer\": \"1\", \"ctx_idx\": 1,\n"
        "     \"feature_type\": \"cross layer transcoder\", \"token_prob\": 0.0, \"is_target_logit\": false,\n"
        "     \"run_idx\": 0, \"reverse_ctx_idx\": 0, \"jsNodeId\": \"1_5-0\", \"clerp\": \"greets\",\n"
        "     \"influence\": 0.25, \"activation\": 3.5},\n"
        "    {\"node_id\": \"0_-1_1\", \"feature\": -1, \"layer\": \"0\", \"ctx_idx\": 1,\n"
        "     \"feature_type\": \"mlp reconstruction error\", \"token_prob\": 0.0, \"is_target_logit\": false,\n"
        "     \"run_idx\": 0, \"reverse_ctx_idx\": 0, \"jsNodeId\": \"0_-1-1\", \"clerp\": \"\", \"influence\": 0.7,\n"
        "     \"activation\": null},\n"
        "    {\"node_id\": \"3_1234_1\", \"feature\": 1234, \"layer\": \"3\", \"ctx_idx\": 1, \"feature_type\": \"logit\",\n"
        "     \"token_prob\": 0.75, \"is_target_logit\": true, \"run_idx\": 0, \"reverse_ctx_idx\": 0,\n"
        "     \"jsNodeId\": \"L_1234-1\", \"clerp\": \"Output \\\" there\\\" (p=0.750)\", \"influence\": null,\n"
        "     \"activation\": null}\n"
        "  ],\n"
        "  \"links\": [\n"
        "    {\"source\": \"E_9259_1\", \"target\": \"1_5_1\", \"weight\": 1.5},\n"
        "    {\"source\": \"0_-1_1\", \"target\": \"1_5_1\", \"weight\": -0.5},\n"
        "    {\"source\": \"1_5_1\", \"target\": \"3_1234_1\", \"weight\": 2.0},\n"
        "    {\"source\": \"E_2_0\", \"target\": \"3_1234_1\", \"weight\": 0.25}\n"
        "  ]\n"
        "}\n");
}

// Influence by dense powers of the normalised matrix, written apart from the sparse code.
std::vector<double> denseInfluence(const cs::AttributionGraph& g) {
    const size_t n = g.nodes.size();
    std::vector<std::vector<double>> A(n, std::vector<double>(n, 0.0));
    for (const auto& l : g.links) A[l.target][l.source] += l.weight;
    for (auto& row : A) {
        double s = 0;
        for (double v : row) s += std::abs(v);
        for (double& v : row) v = std::abs(v) / std::max(s, 1e-10);
    }
    std::vector<double> w(n, 0.0), total(n, 0.0);
    for (size_t i = 0; i < n; ++i)
        if (g.nodes[i].kind == cs::NodeKind::Logit) w[i] = g.nodes[i].tokenProb;
    std::vector<double> cur = w;
    for (size_t p = 0; p < n + 1; ++p) {
        std::vector<double> next(n, 0.0);
        for (size_t t = 0; t < n; ++t)
            for (size_t s = 0; s < n; ++s) next[s] += cur[t] * A[t][s];
        for (size_t i = 0; i < n; ++i) total[i] += next[i];
        cur = next;
    }
    return total;
}

// A layered random DAG: every link goes from a lower row to a higher one.

}  // namespace

class TestAttributionGraph : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void influenceByHand() {
        const auto g = graphB();
        const auto infl = cs::nodeInfluence(g);
        const double want[] = {0.085, 0.375, 0.34, 0.34, 0.48, 0, 0};
        for (int i = 0; i < 7; ++i) expectNear(infl[i], want[i], g.nodes[i].id.c_str());
        const auto cum = cs::cumulativeInfluence(infl);
        // Sorted: F2 .48, E1 .375, F1 .34, Err .34, E0 .085 of 1.62.
        expectNear(cum[F2], 0.48 / 1.62, "cum F2");
        expectNear(cum[E1], 0.855 / 1.62, "cum E1");
        expectNear(cum[F1], 1.195 / 1.62, "cum F1");
        expectNear(cum[Err], 1.535 / 1.62, "cum Err");
        expectNear(cum[E0], 1.0, "cum E0");
        expectNear(cs::influenceThreshold(infl, 0.5), 0.375, "threshold .5");
        expectNear(cs::influenceThreshold(infl, 0.8), 0.34, "threshold .8");
    }

    void influenceMatchesDensePowers() {
        for (unsigned seed = 1; seed <= 5; ++seed) {
            const auto g = randomGraph(4, 3, 25, 150, seed);
            const auto sparse = cs::nodeInfluence(g);
            const auto dense = denseInfluence(g);
            double maxInfl = 0;
            for (size_t i = 0; i < g.nodes.size(); ++i) {
                QVERIFY2(std::abs(sparse[i] - dense[i]) < 1e-9 * std::max(1.0, dense[i]),
                         ("seed " + std::to_string(seed) + " node " + std::to_string(i)).c_str());
                maxInfl = std::max(maxInfl, dense[i]);
            }
            QVERIFY(maxInfl > 0);
        }
    }

    void scoresByHand() {
        // Graph B: tokens .46, errors .34 -> replacement .575. Completeness: errors make half of
        // F2's input (output .48) and half of L2's (.2): (2.42 - .24 - .1) / 2.42.
        const auto s = cs::graphScores(graphB());
        expectNear(s.replacement, 0.46 / 0.80, "replacement");
        expectNear(s.completeness, 2.08 / 2.42, "completeness");

        // Without errors in play both scores are 1: E0 -2-> F -3-> L, E0 -1-> L, an idle error.
        cs::AttributionGraph a;
        a.layers = 1;
        a.nodes = {node(cs::NodeKind::Embedding, -1, 0, -1, "E_1_0"), node(cs::NodeKind::Feature, 0, 0, 4, "0_4_0"),
                   node(cs::NodeKind::Error, 0, 0, -1, "0_-1_0"), node(cs::NodeKind::Logit, 1, 0, 9, "2_9_0", 1.0f)};
        a.links = {{0, 1, 2}, {1, 3, 3}, {0, 3, 1}};
        const auto sa = cs::graphScores(a);
        expectNear(sa.replacement, 1.0, "replacement without errors");
        expectNear(sa.completeness, 1.0, "completeness without errors");
        const auto ia = cs::nodeInfluence(a);
        expectNear(ia[0], 1.0, "E0 of the chain");
        expectNear(ia[1], 0.75, "F of the chain");
    }

    void subgraphScoresFoldUnpinnedFeatures() {
        const auto g = graphB();
        // Pinning every feature changes nothing.
        const auto all = cs::subgraphScores(g, {F1, F2});
        expectNear(all.replacement, 0.575, "all pinned: replacement");
        expectNear(all.completeness, 2.08 / 2.42, "all pinned: completeness");
        // F1 unpinned folds into Err (same layer, position): F1->F2 (2) cancels Err->F2 (-2),
        // F1->L2 (1) + Err->L2 (1) = 2; F1's inputs go. Then F2's row is all zero, L2's is all
        // error: influence F2 .48, E1 .12, Err .2 -> replacement .12/.32; completeness
        // (1.6 - .2) / 1.6. (Adding |w| instead of w would give other numbers.)
        const auto sub = cs::subgraphScores(g, {F2});
        expectNear(sub.replacement, 0.375, "F2 pinned: replacement");
        expectNear(sub.completeness, 0.875, "F2 pinned: completeness");
    }

    void pruningKeepsAllAtThresholdOne() {
        const auto g = graphB();
        const auto p = cs::pruneGraph(g, 1.0f, 1.0f);
        QCOMPARE(p.nodes.size(), g.nodes.size());
        QCOMPARE(p.links.size(), g.links.size());
        expectNear(p.nodes[F2].influence, 0.48 / 1.62, "influence F2");
        expectNear(p.nodes[E0].influence, 1.0, "influence E0");
        QCOMPARE(p.nodes[L].influence, 0.0f);
        QCOMPARE(p.nodes[L2].influence, 0.0f);
        expectNear(p.nodes[F1].influenceScore, 0.34, "influenceScore F1");
        expectNear(p.replacementScore, 0.575, "pruned graph carries the replacement score");
        expectNear(p.completenessScore, 2.08 / 2.42, "pruned graph carries the completeness score");
    }

    void pruningByEdgeInfluence() {
        // Edge scores share * (influence + w) of the target: E0->F1 .085, E1->F1 .255,
        // F1->F2 .24, Err->F2 .24, F2->L .48, E1->L .12, F1->L2 .1, Err->L2 .1 (sum 1.62).
        // Cumulative: .296 .454 .602 .750 .825 ... -> at .5 keep >= .24 (4 links), at .8 >= .12.
        const auto g = graphB();
        const auto p5 = cs::pruneGraph(g, 1.0f, 0.5f);
        const std::set<std::pair<std::string, std::string>> want5 = {
            {"E_101_1", "0_7_1"}, {"0_7_1", "1_3_1"}, {"0_-1_1", "1_3_1"}, {"1_3_1", "3_42_1"}};
        QVERIFY(linkIds(p5) == want5);
        QCOMPARE(p5.nodes.size(), g.nodes.size());  // E0 lost its link but embeddings stay
        auto want8 = want5;
        want8.insert({"E_101_1", "3_42_1"});
        QVERIFY(linkIds(cs::pruneGraph(g, 1.0f, 0.8f)) == want8);
    }

    void pruningByNodeInfluenceCascades() {
        // At .5 the node threshold is .375: F1 and Err go, F2 (.48) stays at first but has no
        // input left, so it goes too and takes F2->L with it. Embeddings and logits stay.
        auto g = graphB();
        g.pinnedIds = {"1_3_1", "E_101_1"};
        g.supernodes = {{"s", {"0_7_1", "E_100_0"}}};
        g.clickedId = "0_7_1";
        const auto p = cs::pruneGraph(g, 0.5f, 0.98f);
        QVERIFY((ids(p) == std::set<std::string>{"E_100_0", "E_101_1", "3_42_1", "3_43_1"}));
        QVERIFY((linkIds(p) == std::set<std::pair<std::string, std::string>>{{"E_101_1", "3_42_1"}}));
        QVERIFY(p.pinnedIds == std::vector<std::string>{"E_101_1"});
        QCOMPARE(p.supernodes.size(), size_t(1));
        QVERIFY(p.supernodes[0].nodeIds == std::vector<std::string>{"E_100_0"});
        QVERIFY(p.clickedId.empty());
        // At .8 (threshold .34) every node stays.
        QCOMPARE(cs::pruneGraph(g, 0.8f, 1.0f).nodes.size(), g.nodes.size());
        expectOneLineError([&] { cs::pruneGraph(g, 1.5f, 0.9f); }, {"node threshold"});
        expectOneLineError([&] { cs::pruneGraph(g, 0.5f, -0.1f); }, {"edge threshold"});
    }

    void cycleIsAnError() {
        cs::AttributionGraph g;
        g.nodes = {node(cs::NodeKind::Feature, 0, 0, 1, "0_1_0"), node(cs::NodeKind::Feature, 1, 0, 2, "1_2_0"),
                   node(cs::NodeKind::Logit, 2, 0, 5, "3_5_0", 1.0f)};
        g.links = {{0, 1, 1}, {1, 0, 1}, {1, 2, 1}};
        expectOneLineError([&] { cs::nodeInfluence(g); }, {"cycle"});
        expectOneLineError([&] { cs::GraphTraversal(g).strongestPaths(0, 3); }, {"cycle"});
        // Cones still work on a cyclic graph.
        QVERIFY((cs::GraphTraversal(g).upstream(2) == std::vector<int>{0, 1}));
    }

    void traversalByHand() {
        const auto g = graphB();
        const cs::GraphTraversal t(g);
        QVERIFY((t.upstream(F2) == std::vector<int>{E0, E1, F1, Err}));
        QVERIFY((t.downstream(E1) == std::vector<int>{F1, F2, L, L2}));
        QVERIFY(t.upstream(E0).empty());
        QVERIFY(t.downstream(L).empty());
        // From E1: ->F1->L2 .75*.5 = .375, ->F1->F2->L .75*.5*.8 = .3, ->L .2.
        const auto paths = t.strongestPaths(E1, 2);
        QCOMPARE(paths.size(), size_t(2));
        QVERIFY((paths[0].nodes == std::vector<int>{E1, F1, L2}));
        expectNear(paths[0].strength, 0.375, "strongest path");
        QVERIFY((paths[1].nodes == std::vector<int>{E1, F1, F2, L}));
        expectNear(paths[1].strength, 0.3, "second path");
        // Summed over every path, strength * p(logit) is the node's influence.
        for (int start : {E0, E1, F1, Err, F2}) {
            double sum = 0;
            for (const auto& p : t.strongestPaths(start, 100)) sum += p.strength * g.nodes[p.nodes.back()].tokenProb;
            expectNear(sum, cs::nodeInfluence(g)[start], ("paths of " + g.nodes[start].id).c_str());
        }
        const auto all = t.allPaths(E0, 10);
        QCOMPARE(all.size(), size_t(2));
        std::set<std::vector<int>> got;
        for (const auto& p : all) got.insert(p.nodes);
        QVERIFY((got == std::set<std::vector<int>>{{E0, F1, F2, L}, {E0, F1, L2}}));
        QCOMPARE(t.allPaths(E0, 1).size(), size_t(1));
        QCOMPARE(t.allPaths(E0, 10, 2).size(), size_t(1));  // only the 2-link path fits
        const auto xy = t.layeredLayout();
        QCOMPARE(xy[E0], std::make_pair(0.0f, 0.0f));
        QCOMPARE(xy[F2], std::make_pair(1.0f, 2.0f));
        QCOMPARE(xy[L], std::make_pair(1.0f, 3.0f));
        QCOMPARE(xy[L2], std::make_pair(1.5f, 3.0f));
        expectOneLineError([&] { t.upstream(99); }, {"99"});
    }

    void jsonSpellsNodesAsCircuitTracer() {
        const Json j = cs::graphToJson(graphB());
        for (const char* k : {"metadata", "qParams", "nodes", "links"}) QVERIFY(j.contains(k));
        QCOMPARE(j["metadata"]["schema_version"].get<int>(), 1);
        const auto& n = j["nodes"];
        QCOMPARE(n[F2]["node_id"].get<std::string>(), std::string("1_3_1"));
        QCOMPARE(n[F2]["feature"].get<long>(), 13L);  // cantor(1, 3) = 4*5/2 + 3
        QCOMPARE(n[F2]["layer"].get<std::string>(), std::string("1"));
        QCOMPARE(n[F2]["jsNodeId"].get<std::string>(), std::string("1_3-0"));
        QCOMPARE(n[F2]["feature_type"].get<std::string>(), std::string("cross layer transcoder"));
        QCOMPARE(n[Err]["feature"].get<long>(), -1L);
        QCOMPARE(n[Err]["jsNodeId"].get<std::string>(), std::string("0_-1-1"));
        QCOMPARE(n[Err]["feature_type"].get<std::string>(), std::string("mlp reconstruction error"));
        QCOMPARE(n[E1]["layer"].get<std::string>(), std::string("E"));
        QCOMPARE(n[E1]["feature"].get<long>(), 1L);
        QCOMPARE(n[E1]["feature_type"].get<std::string>(), std::string("embedding"));
        QCOMPARE(n[L]["layer"].get<std::string>(), std::string("3"));
        QCOMPARE(n[L]["feature"].get<long>(), 42L);
        QCOMPARE(n[L]["feature_type"].get<std::string>(), std::string("logit"));
        QCOMPARE(n[L]["is_target_logit"].get<bool>(), true);
        QCOMPARE(j["links"][0]["source"].get<std::string>(), std::string("E_100_0"));
        QCOMPARE(j["links"][0]["target"].get<std::string>(), std::string("0_7_1"));
        // Nodes without ids get circuit-tracer's.
        auto g = graphB();
        for (auto& nd : g.nodes) nd.id.clear();
        const Json k = cs::graphToJson(g);
        for (size_t i = 0; i < g.nodes.size(); ++i)
            QCOMPARE(k["nodes"][i]["node_id"], j["nodes"][i]["node_id"]);
        QCOMPARE(cs::cantorUnpair(cs::cantorPair(25, 16383)), std::make_pair(25LL, 16383LL));
        QCOMPARE(cs::cantorUnpair(cs::cantorPair(7, 1000000)), std::make_pair(7LL, 1000000LL));
    }

    void jsonRoundTripIsExact() {
        auto g = cs::pruneGraph(graphB(), 1.0f, 1.0f);
        g.scan = "demo";
        g.prompt = "a b";
        g.replacement = "transcoders";
        g.saeIds = {"tc0", "tc1"};
        g.nodeThreshold = 0.1f;
        g.edgeThreshold = 0.97f;
        g.nodes[F1].label = "quote \" and \\ and ünïcode";
        g.nodes[F1].activation = 1e-7f;
        g.nodes[F2].activation = -3.4028e38f;
        g.nodes[Err].activation = 0.1f;
        g.links[0].weight = 1.0f / 3.0f;
        g.pinnedIds = {"1_3_1", "E_100_0"};
        g.supernodes = {{"pair", {"0_7_1", "0_-1_1"}}, {"empty", {}}};
        g.clickedId = "1_3_1";
        const auto dir = makeTempDir("graphjson");
        const auto path = dir + "/g.json";
        cs::saveGraph(path, g);
        const auto back = cs::loadGraph(path);
        expectSameGraph(g, back);
        // And again, through the text alone.
        expectSameGraph(g, cs::graphFromJson(Json::parse(cs::graphToJson(back).dump()), "mem"));
        QVERIFY(!QFile::exists(QString::fromStdString(dir + "/.g.json.tmp")));
    }

    void readsCircuitTracerFile() {
        const auto g = cs::graphFromJson(ctSample(), "ct.json");
        QCOMPARE(g.slug, std::string("ct"));
        QCOMPARE(g.scan, std::string("gemma-2-2b"));
        QCOMPARE(g.layers, 2);  // logit layer "3" = n_layers + 1
        QVERIFY((g.tokens == std::vector<long>{2, 9259}));
        QVERIFY((g.tokenTexts == std::vector<std::string>{"<bos>", "Hi"}));
        QCOMPARE(g.nodes.size(), size_t(5));
        QVERIFY(g.nodes[0].kind == cs::NodeKind::Embedding);
        QCOMPARE(g.nodes[0].layer, -1);
        QVERIFY(g.nodes[2].kind == cs::NodeKind::Feature);
        QCOMPARE(g.nodes[2].layer, 1);
        QCOMPARE(g.nodes[2].feature, 5L);
        QCOMPARE(g.nodes[2].position, 1);
        QCOMPARE(g.nodes[2].label, std::string("greets"));
        QCOMPARE(g.nodes[2].activation, 3.5f);
        QCOMPARE(g.nodes[2].influence, 0.25f);
        QVERIFY(g.nodes[3].kind == cs::NodeKind::Error);
        QCOMPARE(g.nodes[3].layer, 0);
        QCOMPARE(g.nodes[3].activation, 0.0f);
        QVERIFY(g.nodes[4].kind == cs::NodeKind::Logit);
        QCOMPARE(g.nodes[4].layer, 2);
        QCOMPARE(g.nodes[4].feature, 1234L);
        QCOMPARE(g.nodes[4].tokenProb, 0.75f);
        QVERIFY(g.nodes[4].isTargetLogit);
        QCOMPARE(g.nodes[4].influence, 0.0f);
        QCOMPARE(g.links.size(), size_t(4));
        QCOMPARE(g.links[1].source, 3);
        QCOMPARE(g.links[1].target, 2);
        QCOMPARE(g.links[1].weight, -0.5f);
        QVERIFY((g.pinnedIds == std::vector<std::string>{"1_5_1", "E_2_0"}));
        QCOMPARE(g.supernodes.size(), size_t(1));
        QCOMPARE(g.supernodes[0].label, std::string("greeting"));
        QVERIFY((g.supernodes[0].nodeIds == std::vector<std::string>{"1_5_1", "0_-1_1"}));
        QCOMPARE(g.clickedId, std::string("1_5_1"));
        QCOMPARE(g.findNode("0_-1_1"), 3);
        QCOMPARE(g.findNode("nope"), -1);

        // A feature whose node_id is not circuit-tracer's: the index comes from the Cantor pair.
        Json j = ctSample();
        j["nodes"][2]["node_id"] = "f-a";
        j["nodes"][2]["feature"] = cs::cantorPair(1, 4321);
        for (auto& l : j["links"]) {
            if (l["source"] == "1_5_1") l["source"] = "f-a";
            if (l["target"] == "1_5_1") l["target"] = "f-a";
        }
        const auto h = cs::graphFromJson(j, "ct2.json");
        QCOMPARE(h.nodes[2].feature, 4321L);
        // pinnedIds as Neuronpedia's URL spells them; a null feature; a numeric layer.
        j = ctSample();
        j["qParams"]["pinnedIds"] = "1_5_1,E_2_0";
        j["nodes"][3]["feature"] = nullptr;
        j["nodes"][3]["layer"] = 0;
        const auto k = cs::graphFromJson(j, "ct3.json");
        QVERIFY((k.pinnedIds == std::vector<std::string>{"1_5_1", "E_2_0"}));
        QCOMPARE(k.nodes[3].layer, 0);
        // It prunes and scores like any other graph.
        const auto s = cs::graphScores(g);
        QVERIFY(s.replacement > 0 && s.replacement < 1);
        // Influence: F 2/3 (x .75 of L's input share .889), E1 .5, Err 1/6, E0 1/12 of 17/12:
        // cumulative .47, .82 -> at .8 the threshold is .5 and the error node goes.
        const auto pruned = cs::pruneGraph(g);
        QVERIFY((ids(pruned) == std::set<std::string>{"E_2_0", "E_9259_1", "1_5_1", "3_1234_1"}));
        expectNear(pruned.nodes[2].influence, (2.0 / 3) / (17.0 / 12), "influence of 1_5_1");
    }

    void malformedInputsAreOneLineErrors() {
        const auto dir = makeTempDir("graphjson-bad");
        const auto bad = dir + "/bad.json";
        writeFile(bad, "{\"metadata\": {}, \"nodes\": [");
        expectOneLineError([&] { cs::loadGraph(bad); }, {bad, "not valid JSON"});
        expectOneLineError([&] { cs::loadGraph(dir + "/absent.json"); }, {"absent.json"});
        for (const char* key : {"metadata", "qParams", "nodes", "links"}) {
            Json j = ctSample();
            j.erase(key);
            writeFile(bad, j.dump());
            expectOneLineError([&] { cs::loadGraph(bad); }, {bad, std::string("'") + key + "'"});
        }
        auto expectBad = [&](const std::function<void(Json&)>& edit, std::vector<std::string> words) {
            Json j = ctSample();
            edit(j);
            writeFile(bad, j.dump());
            words.push_back(bad);
            expectOneLineError([&] { cs::loadGraph(bad); }, words);
        };
        expectBad([](Json& j) { j["nodes"][2]["feature_type"] = "lorsa"; }, {"node 2", "lorsa"});
        expectBad([](Json& j) { j["nodes"][3]["node_id"] = "1_5_1"; }, {"node 3", "duplicate", "node 2"});
        expectBad([](Json& j) { j["links"][1]["target"] = "9_9_9"; }, {"link 1", "9_9_9"});
        expectBad([](Json& j) { j["links"][2]["source"] = "E_7_0"; }, {"link 2", "E_7_0"});
        expectBad([](Json& j) { j["links"][0].erase("weight"); }, {"link 0", "weight"});
        expectBad([](Json& j) { j["links"][0]["weight"] = "big"; }, {"link 0", "weight"});
        expectBad([](Json& j) { j["nodes"][1]["ctx_idx"] = "one"; }, {"node 1", "ctx_idx"});
        expectBad([](Json& j) { j["nodes"][4].erase("jsNodeId"); }, {"node 4", "jsNodeId"});
        expectBad([](Json& j) { j["nodes"][4].erase("node_id"); }, {"node 4", "node_id"});
        expectBad([](Json& j) { j["nodes"][2]["layer"] = "x"; }, {"node 2", "layer"});
        expectBad([](Json& j) { j["nodes"][2]["feature"] = "26"; }, {"node 2", "feature"});
        expectBad([](Json& j) { j["nodes"][2]["clerp"] = 5; }, {"node 2"});
        expectBad([](Json& j) { j["nodes"][0] = 3; }, {"node 0"});
        expectBad([](Json& j) { j["nodes"] = Json::object(); }, {"nodes"});
        expectBad([](Json& j) { j["qParams"]["supernodes"] = Json::array({"flat"}); }, {"supernode 0"});
        expectBad([](Json& j) { j["qParams"]["pinnedIds"] = Json::array({1}); }, {"pinnedIds"});
        expectBad([](Json& j) { j = Json::array(); }, {"object"});
        // Writing a graph whose links or ids do not hold together fails too, not the reader later.
        auto g = graphB();
        g.nodes[Err].id = "0_7_1";
        expectOneLineError([&] { cs::graphToJson(g); }, {"0_7_1", "nodes 2 and 3"});
        g = graphB();
        g.links[3].target = 77;
        expectOneLineError([&] { cs::graphToJson(g); }, {"link 3"});
        expectOneLineError([&] { cs::nodeInfluence(g); }, {"link 3"});
    }

    void largeGraphEndToEnd() {
        // 20 layers x 10 positions: 10 embeddings, 200 errors, 9780 features, 10 logits.
        const auto g = randomGraph(20, 10, 9780, 1000000, 7);
        QCOMPARE(g.nodes.size(), size_t(10000));
        const auto path = makeTempDir("graphjson-big") + "/big.json";
        QElapsedTimer timer;
        timer.start();
        cs::saveGraph(path, g);
        const auto loaded = cs::loadGraph(path);
        qInfo("save + load: %lld ms", static_cast<long long>(timer.restart()));
        QCOMPARE(loaded.nodes.size(), g.nodes.size());
        QCOMPARE(loaded.links.size(), g.links.size());
        QCOMPARE(loaded.links[123456].weight, g.links[123456].weight);

        const auto p = cs::pruneGraph(loaded);
        qInfo("prune: %lld ms -> %zu nodes, %zu links", static_cast<long long>(timer.restart()),
              p.nodes.size(), p.links.size());
        QVERIFY(p.links.size() < loaded.links.size());
        QVERIFY(p.nodes.size() < loaded.nodes.size());
        int logits = 0;
        for (const auto& n : p.nodes) logits += n.kind == cs::NodeKind::Logit;
        QCOMPARE(logits, 10);
        // The node threshold keeps at least 80% of the influence mass of the unpruned graph.
        double keptMass = 0, allMass = 0;
        const auto infl = cs::nodeInfluence(loaded);
        for (double v : infl) allMass += v;
        for (const auto& n : p.nodes) keptMass += n.influenceScore;
        QVERIFY2(keptMass >= 0.8 * allMass * 0.999, (std::to_string(keptMass) + " of " + std::to_string(allMass)).c_str());

        const cs::GraphTraversal full(loaded);
        const int target = static_cast<int>(loaded.nodes.size()) - 10;
        QVERIFY(full.upstream(target).size() > 1000);
        const cs::GraphTraversal pruned(p);
        const int prunedTarget = p.findNode(loaded.nodes[target].id);
        QVERIFY(prunedTarget >= 0);
        const auto up = pruned.upstream(prunedTarget);
        QVERIFY(!up.empty());
        const auto paths = pruned.strongestPaths(up.front(), 10);
        QVERIFY(!paths.empty());
        for (size_t i = 0; i < paths.size(); ++i) {
            QVERIFY(p.nodes[paths[i].nodes.back()].kind == cs::NodeKind::Logit);
            if (i) QVERIFY(paths[i].strength <= paths[i - 1].strength);
        }
        QVERIFY(!full.strongestPaths(0, 5).empty());
        QVERIFY(!pruned.allPaths(up.front(), 50).empty());
        qInfo("traversal: %lld ms", static_cast<long long>(timer.restart()));
    }
};

QTEST_GUILESS_MAIN(TestAttributionGraph)
#include "test_attribution_graph.moc"
