// The pinned subgraph and supernode suggestions (core/attribution: Subgraph,
// SupernodeSuggestions) on small hand-built graphs whose summed links, profiles and clusters are
// worked out in the comments below.
#include "SyntheticGraph.h"

#include "attribution/AttributionGraph.h"
#include "attribution/Subgraph.h"
#include "attribution/SupernodeSuggestions.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

namespace {

cs::GraphNode node(cs::NodeKind k, int layer, int pos, long feature, const std::string& id, const std::string& label = {},
                   float influenceScore = 0) {
    cs::GraphNode n = cstest::node(k, layer, pos, feature, id);
    n.label = label;
    n.influenceScore = influenceScore;
    return n;
}

// Graph S: E0 -1-> Fa, E1 -2-> Fb, Fa -3-> Fb, Fa -.5-> Fc, Fb -(-.25)-> Fc, E0 -.125-> Fc,
// Fc -4-> L, Fa -1-> L, Fb -(-2)-> L, Err -.5-> L.
enum { E0, E1, Fa, Fb, Fc, Err, L };
cs::AttributionGraph graphS() {
    cs::AttributionGraph g;
    g.layers = 2;
    g.nodes = {node(cs::NodeKind::Embedding, -1, 0, -1, "E_1_0"), node(cs::NodeKind::Embedding, -1, 1, -1, "E_2_1"),
               node(cs::NodeKind::Feature, 0, 0, 1, "0_1_0", "a"),  node(cs::NodeKind::Feature, 0, 1, 2, "0_2_1"),
               node(cs::NodeKind::Feature, 1, 1, 3, "1_3_1", "c"),  node(cs::NodeKind::Error, 1, 1, -1, "1_-1_1"),
               node(cs::NodeKind::Logit, 2, 1, 9, "3_9_1", "tok")};
    g.links = {{E0, Fa, 1}, {E1, Fb, 2}, {Fa, Fb, 3}, {Fa, Fc, 0.5f}, {Fb, Fc, -0.25f}, {E0, Fc, 0.125f},
               {Fc, L, 4}, {Fa, L, 1}, {Fb, L, -2}, {Err, L, 0.5f}};
    return g;
}

// Graph C, for suggestions: embeddings E0..E3, error nodes X0..X2, logits L1..L3, and
//   A1, A2, A3: inputs E0 ~1, E1 ~.5; output L1            (one cluster, similarity ~.99)
//   B1, B2:     inputs E2 ~1, E3 ~-.45; output L2 negative  (another, ~.995)
//   U1: input E1, output L2 positive (.22 with A, -.5 with B); U2: input E3, output L1 negative
//   D1, D2: one feature (layer 1, #40) at positions 1 and 2: inputs X0 1, X1 .5 and X2 1, X1 .5
//           (input cosine .25 / 1.25 = .2), output L3 both: similarity .5 * .2 + .5 * 1 = .6, and
//           with the same-feature bonus .15, .75.
cs::AttributionGraph graphC() {
    using K = cs::NodeKind;
    cs::AttributionGraph g;
    g.layers = 2;
    auto add = [&](cs::GraphNode n) { g.nodes.push_back(std::move(n)); return static_cast<int>(g.nodes.size() - 1); };
    int e[4], x[3];
    for (int i = 0; i < 4; ++i) e[i] = add(node(K::Embedding, -1, i, -1, "E_" + std::to_string(i) + "_" + std::to_string(i)));
    for (int i = 0; i < 3; ++i) x[i] = add(node(K::Error, 0, i, -1, "0_-1_" + std::to_string(i)));
    const int l1 = add(node(K::Logit, 2, 3, 1, "3_1_3")), l2 = add(node(K::Logit, 2, 3, 2, "3_2_3")), l3 = add(node(K::Logit, 2, 3, 3, "3_3_3"));
    auto feature = [&](int layer, long f, int pos, const std::string& label, float infl) {
        return add(node(K::Feature, layer, pos, f, std::to_string(layer) + "_" + std::to_string(f) + "_" + std::to_string(pos), label, infl));
    };
    const int a1 = feature(0, 10, 1, "say Lily", 0.9f), a2 = feature(0, 11, 2, "Lily again", 0.8f),
              a3 = feature(1, 12, 3, "peak: Lily | logits: girl", 0.7f);
    const int b1 = feature(0, 20, 2, "", 0.5f), b2 = feature(1, 21, 3, "", 0.3f);
    const int u1 = feature(0, 30, 0, "one", 0.2f), u2 = feature(1, 31, 3, "two", 0.1f);
    const int d1 = feature(1, 40, 1, "d", 0.05f), d2 = feature(1, 40, 2, "d", 0.04f);
    auto link = [&](int s, int t, float w) { g.links.push_back({s, t, w}); };
    const float a[3][3] = {{1.0f, 0.5f, 2.0f}, {1.1f, 0.45f, 2.2f}, {0.9f, 0.55f, 1.8f}};
    const int as[3] = {a1, a2, a3};
    for (int i = 0; i < 3; ++i) {
        link(e[0], as[i], a[i][0]);
        link(e[1], as[i], a[i][1]);
        link(as[i], l1, a[i][2]);
    }
    link(e[2], b1, 1.0f); link(e[3], b1, -0.5f); link(b1, l2, -1.0f);
    link(e[2], b2, 1.2f); link(e[3], b2, -0.4f); link(b2, l2, -1.1f);
    link(e[1], u1, 1.0f); link(u1, l2, 1.0f);
    link(e[3], u2, 1.0f); link(u2, l1, -1.0f);
    link(x[0], d1, 1.0f); link(x[1], d1, 0.5f); link(d1, l3, 1.0f);
    link(x[2], d2, 1.0f); link(x[1], d2, 0.5f); link(d2, l3, 2.0f);
    return g;
}

std::set<std::set<std::string>> groupsOf(const cs::AttributionGraph& g, const std::vector<cs::SupernodeSuggestion>& s) {
    std::set<std::set<std::string>> out;
    for (const auto& x : s) {
        std::set<std::string> ids;
        for (int m : x.members) ids.insert(g.nodes[static_cast<size_t>(m)].id);
        out.insert(ids);
    }
    return out;
}

using Groups = std::set<std::set<std::string>>;
const std::set<std::string> kA = {"0_10_1", "0_11_2", "1_12_3"}, kB = {"0_20_2", "1_21_3"}, kD = {"1_40_1", "1_40_2"};

}  // namespace

class TestSubgraph : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void supernodeLinksAreSums() {
        const cs::AttributionGraph g = graphS();
        // "missing" is not in the graph; Fb listed again by the second supernode stays in the first;
        // the third has no member present and is left out; pin 99 is out of range.
        const std::vector<cs::Supernode> sn = {{"ab", {"0_1_0", "missing", "0_2_1"}}, {"b again", {"0_2_1", "1_-1_1"}}, {"gone", {"x"}}};
        const cs::SubgraphView v = cs::buildSubgraph(g, {Fc, Fa, 99, Fb, L}, sn);
        QCOMPARE(v.nodes.size(), size_t(4));
        QCOMPARE(v.nodes[0].supernode, 0);
        QCOMPARE(v.nodes[0].label, std::string("ab"));
        QVERIFY((v.nodes[0].members == std::vector<int>{Fa, Fb}));
        QCOMPARE(v.nodes[1].supernode, 1);  // Err alone: its only member not already taken
        QVERIFY((v.nodes[1].members == std::vector<int>{Err}));
        QCOMPARE(v.nodes[2].supernode, -1);
        QVERIFY((v.nodes[2].members == std::vector<int>{Fc}));
        QCOMPARE(v.nodes[2].label, std::string("c"));
        QVERIFY((v.nodes[3].members == std::vector<int>{L}));
        QCOMPARE(v.owner[static_cast<size_t>(Fb)], 0);
        QCOMPARE(v.owner[static_cast<size_t>(E0)], -1);
        // ab -> Fc: .5 - .25; ab -> L: 1 - 2; Err -> L: .5; Fc -> L: 4. Fa -> Fb is internal, the
        // embeddings are not in the subgraph.
        struct Want { int s, t; double w; int count; };
        const Want want[] = {{0, 2, 0.25, 2}, {0, 3, -1.0, 2}, {1, 3, 0.5, 1}, {2, 3, 4.0, 1}};
        QCOMPARE(v.links.size(), std::size(want));
        for (size_t i = 0; i < v.links.size(); ++i) {
            QCOMPARE(v.links[i].source, want[i].s);
            QCOMPARE(v.links[i].target, want[i].t);
            QCOMPARE(v.links[i].weight, want[i].w);
            QCOMPARE(v.links[i].count, want[i].count);
        }
    }

    void withoutSupernodesLinksAreTheGraphs() {
        // Random graphs: with every node pinned and no supernodes, the subgraph's links are the
        // graph's own (duplicates summed), node for node.
        std::mt19937 rng(7);
        for (int trial = 0; trial < 5; ++trial) {
            cs::AttributionGraph g;
            const int n = 30;
            for (int i = 0; i < n; ++i) g.nodes.push_back(node(cs::NodeKind::Feature, 0, i, i, "0_" + std::to_string(i) + "_" + std::to_string(i)));
            std::map<std::pair<int, int>, double> want;
            std::uniform_int_distribution<int> pick(0, n - 1);
            std::normal_distribution<float> w;
            for (int k = 0; k < 200; ++k) {
                const int s = pick(rng), t = pick(rng);
                if (s == t) continue;
                const float x = w(rng);
                g.links.push_back({s, t, x});
                want[{s, t}] += x;
            }
            std::vector<int> all(n);
            for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = n - 1 - i;  // pin order reversed
            const cs::SubgraphView v = cs::buildSubgraph(g, all, {});
            QCOMPARE(v.links.size(), want.size());
            for (const auto& l : v.links) {
                const int s = v.nodes[static_cast<size_t>(l.source)].members.front(), t = v.nodes[static_cast<size_t>(l.target)].members.front();
                QVERIFY(std::abs(l.weight - want[{s, t}]) < 1e-9);
            }
            QCOMPARE(v.nodes.front().members.front(), n - 1);
        }
    }

    void profileSimilarityByHand() {
        const cs::AttributionGraph g = graphC();
        const int b1 = g.findNode("0_20_2"), b2 = g.findNode("1_21_3"), d1 = g.findNode("1_40_1"), d2 = g.findNode("1_40_2");
        const int u1 = g.findNode("0_30_0"), a1 = g.findNode("0_10_1");
        // B: inputs (1, -.5) and (1.2, -.4) normalised, outputs (-1) and (-1.1): .5 cos + .5 * 1.
        const double in = (1.0 * 1.2 + 0.5 * 0.4) / (std::hypot(1.0, 0.5) * std::hypot(1.2, 0.4));
        QVERIFY(std::abs(cs::edgeProfileSimilarity(g, b1, b2) - (0.5 * in + 0.5)) < 1e-9);
        QVERIFY(std::abs(cs::edgeProfileSimilarity(g, d1, d2) - 0.6) < 1e-9);
        // U1 and A1 share only E1: .5 * (.5 / |(1, .5)|).
        QVERIFY(std::abs(cs::edgeProfileSimilarity(g, u1, a1) - 0.5 * 0.5 / std::hypot(1.0, 0.5)) < 1e-9);
        QVERIFY(cs::edgeProfileSimilarity(g, u1, b1) < 0);
        QVERIFY(std::abs(cs::edgeProfileSimilarity(g, a1, a1) - 1.0) < 1e-9);
    }

    void suggestsTheClustersAndNothingElse() {
        const cs::AttributionGraph g = graphC();
        const auto s = cs::suggestSupernodes(g);
        QVERIFY((groupsOf(g, s) == Groups{kA, kB, kD}));
        // Best first: A and B near 1, D .75 by the bonus.
        QCOMPARE(groupsOf(g, {s.back()}), Groups{kD});
        QVERIFY(std::abs(s.back().score - 0.75) < 1e-9);
        for (const auto& x : s) QVERIFY(x.score >= 0.7 && x.score <= 1.0 + 1e-12);
        // Members most influential first; labels from the words they share, else the strongest's.
        for (const auto& x : s) {
            if (x.members.size() == 3) {
                QCOMPARE(g.nodes[static_cast<size_t>(x.members.front())].id, std::string("0_10_1"));
                QCOMPARE(x.label, std::string("lily"));
            } else if (g.nodes[static_cast<size_t>(x.members.front())].id == "0_20_2") {
                QCOMPARE(x.label, std::string("L0 #20"));
            }
        }

        cs::SuggestionOptions noBonus;
        noBonus.sameFeatureBonus = 0;
        QVERIFY((groupsOf(g, cs::suggestSupernodes(g, noBonus)) == Groups{kA, kB}));
        cs::SuggestionOptions strict;
        strict.minSimilarity = 0.9999;
        QVERIFY(cs::suggestSupernodes(g, strict).empty());
    }

    void capsAndExistingSupernodes() {
        cs::AttributionGraph g = graphC();
        cs::SuggestionOptions pairs;
        pairs.maxGroupSize = 2;
        const auto s = cs::suggestSupernodes(g, pairs);
        for (const auto& x : s) QCOMPARE(x.members.size(), size_t(2));
        QCOMPARE(s.size(), size_t(3));  // one pair out of A, B, D
        cs::SuggestionOptions one;
        one.maxSuggestions = 1;
        QCOMPARE(cs::suggestSupernodes(g, one).size(), size_t(1));
        // A node already grouped is not suggested again; the rest of its cluster still is.
        g.supernodes.push_back({"taken", {"0_10_1"}});
        const Groups got = groupsOf(g, cs::suggestSupernodes(g));
        QVERIFY((got == Groups{{"0_11_2", "1_12_3"}, kB, kD}));
        // No links, nothing to compare.
        g.links.clear();
        QVERIFY(cs::suggestSupernodes(g).empty());
    }

    void labelsFromSharedWords() {
        cs::AttributionGraph g;
        g.nodes = {node(cs::NodeKind::Feature, 0, 0, 5, "0_5_0", "Say Lily", 0.1f), node(cs::NodeKind::Feature, 1, 0, 6, "1_6_0", "lily, the NAME", 0.9f),
                   node(cs::NodeKind::Feature, 1, 1, 7, "1_7_1", "name of a girl", 0.5f), node(cs::NodeKind::Feature, 2, 1, 8, "2_8_1", "", 0.0f)};
        // "lily" and "name" in two members each (of three: at least two), "lily" first as the
        // strongest member spells them; "the", "say", "girl" in one, "of" and "a" too short.
        QCOMPARE(cs::proposeSupernodeLabel(g, {0, 1, 2}), std::string("lily, name"));
        QCOMPARE(cs::proposeSupernodeLabel(g, {0, 2}), std::string("name of a girl"));  // nothing shared: the strongest's label
        QCOMPARE(cs::proposeSupernodeLabel(g, {3}), std::string("L2 #8"));
        // Automatic labels: what they fire on first, what they promote when that shares nothing.
        g.nodes[0].label = "peak: upon, once | logits: year, time";
        g.nodes[1].label = "peak: upon | logits: time";
        g.nodes[2].label = "peak: girl | logits: named, time";
        QCOMPARE(cs::proposeSupernodeLabel(g, {0, 1}), std::string("upon"));
        QCOMPARE(cs::proposeSupernodeLabel(g, {0, 2}), std::string("time"));
        // Replacement characters and symbols are not words; letters beyond ASCII are.
        g.nodes[0].label = "peak: \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xe2\x82\xac\xe2\x84\xa2\xe2\x82\xac na\xc3\xafve";
        g.nodes[1].label = "peak: \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xe2\x82\xac\xe2\x84\xa2\xe2\x82\xac NA\xc3\xafVE";
        QCOMPARE(cs::proposeSupernodeLabel(g, {0, 1}), std::string("na\xc3\xafve"));
        QCOMPARE(cs::proposeSupernodeLabel(g, {}), std::string());
    }
};

QTEST_GUILESS_MAIN(TestSubgraph)
#include "test_subgraph.moc"
