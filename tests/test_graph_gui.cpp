// The attribution-graph dock, offscreen, on a graph the demo's transcoders compute for a short
// prompt: clicking a node where the canvas paints it focuses it and its links are exactly the
// graph's; Ctrl+click pins; pins and the focus survive save and reload; the thresholds re-prune
// from the unpruned graph; the SVG figure holds one vector shape per node; the Compute button
// gives what core computes; and `attribute --in g.json --out g.svg` renders through the canvas.
// Supernodes: G groups the pinned nodes, the label is edited in place, the subgraph pane's links
// are the sums of the members' links, and pins, supernodes, labels and the focus come back from
// the file exactly; a suggestion's Group button makes its supernode; hovering a feature marks it
// at its other positions; a clicked feature's dashboard opens in the side panel; the subgraph
// exports as vector shapes.
#include "TestSupport.h"

#include "attribution/Attribution.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "attribution/Subgraph.h"
#include "attribution/SupernodeSuggestions.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/figures/FigureExport.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/DashboardView.h"
#include "ui/views/GraphView.h"
#include "ui/views/AttentionEdgePanel.h"
#include "ui/views/GraphInterventionPanel.h"
#include "ui/views/SubgraphCanvas.h"

#include <QDoubleSpinBox>
#include <QLabel>
#include <QApplication>
#include <QLineEdit>
#include <QMouseEvent>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QToolButton>
#include <QTreeWidget>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

using namespace cstest;
using namespace cs::ui;

namespace {

const std::string kPrompt = "Once upon a time, there was a little girl";

std::set<int> asSet(const std::vector<int>& v) { return {v.begin(), v.end()}; }

// Clicks at a node's painted centre.
void clickNode(GraphCanvas* c, int node, Qt::KeyboardModifiers mods = Qt::NoModifier) {
    QTest::mouseClick(c, Qt::LeftButton, mods, c->nodeCenter(node).toPoint());
}

// Runs `change` and waits until the view shows its pruning (big graphs prune off the GUI thread).
template <typename F>
bool shown(GraphView& view, F change) {
    QSignalSpy spy(&view, &GraphView::graphShown);
    change();
    return !spy.isEmpty() || spy.wait(60000);
}

// A shown, active dock with the demo graph pruned at the default thresholds (shortcuts need an
// active window).
bool showView(GraphView& view, const cs::AttributionGraph& full) {
    view.resize(1200, 800);
    view.show();
    view.activateWindow();
    return QTest::qWaitForWindowActive(&view) && shown(view, [&] { view.setFullGraph(full); });
}

// A mouse move without buttons, sent to the widget: QTest::mouseMove moves the platform cursor,
// which the offscreen platform does not turn into events at the widget.
void moveMouse(QWidget* w, const QPointF& at) {
    QMouseEvent move(QEvent::MouseMove, at, w->mapToGlobal(at), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
    QApplication::sendEvent(w, &move);
}

// The item of the subgraph pane that shows supernode `k`, or -1.
int supernodeItem(const SubgraphCanvas* s, int k) {
    const auto& nodes = s->subgraph().nodes;
    for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].supernode == k) return static_cast<int>(i);
    return -1;
}

int countOf(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

class TestGraphGui : public QObject {
    Q_OBJECT

    std::string dir_;
    cs::AttributionGraph full_;

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeGraphTest");
        QSettings().clear();
        if (cs::demoBundleDir().empty()) QSKIP("the demo bundle is not installed");
        dir_ = makeTempDir("graph-gui");
        const std::string modelDir = cs::resolveModelDir("demo");
        auto model = cs::loadModel(modelDir);
        auto tok = cs::loadTokenizer(modelDir);
        std::vector<cs::AttributionTranscoder> tcs;
        for (const std::string& p : cs::demoSaeDirs()) {
            const std::string name = std::filesystem::path(p).filename().string();
            if (name.rfind("tc-", 0) == 0) tcs.push_back({name, cs::loadSae(p)});
        }
        QVERIFY(!tcs.empty());
        const std::vector<int> ids = tok->encodePrompt(kPrompt);
        full_ = cs::computeAttribution(*model, tcs, std::vector<long>(ids.begin(), ids.end()));
        for (long t : full_.tokens) full_.tokenTexts.push_back(tok->tokenText(static_cast<int>(t)));
        QVERIFY(full_.nodes.size() > 20);
    }

    void clickFocusesAndShowsTheGraphsLinks() {
        GraphView view(nullptr);
        view.resize(1200, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.setThresholds(0.8, 0.98);
        QSignalSpy failed(&view, &GraphView::failed);
        QVERIFY(shown(view, [&] { view.setFullGraph(full_); }));
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.front().front().toString()));
        GraphCanvas* c = view.canvas();
        const cs::AttributionGraph& g = c->graph();
        QVERIFY(!g.nodes.empty());
        QVERIFY(g.nodes.size() < full_.nodes.size());
        // The feature with the most links, so the check has something to compare.
        int node = -1;
        size_t most = 0;
        for (size_t i = 0; i < g.nodes.size(); ++i) {
            if (g.nodes[i].kind != cs::NodeKind::Feature) continue;
            const size_t links = c->inputLinks(static_cast<int>(i)).size() + c->outputLinks(static_cast<int>(i)).size();
            if (links > most) { most = links; node = static_cast<int>(i); }
        }
        QVERIFY(node >= 0 && most > 0);
        QCOMPARE(c->nodeAt(c->nodeCenter(node)), node);
        QSignalSpy clicked(c, &GraphCanvas::nodeClicked);
        clickNode(c, node);
        QCOMPARE(c->focusedNode(), node);
        QCOMPARE(clicked.count(), 1);
        QCOMPARE(c->graph().clickedId, g.nodes[static_cast<size_t>(node)].id);
        std::vector<int> in, out;
        for (size_t i = 0; i < g.links.size(); ++i) {
            if (g.links[i].target == node) in.push_back(static_cast<int>(i));
            if (g.links[i].source == node) out.push_back(static_cast<int>(i));
        }
        QVERIFY(asSet(c->inputLinks(node)) == asSet(in));
        QVERIFY(asSet(c->outputLinks(node)) == asSet(out));
        // The side panel lists every one of them (the demo's are well under the row cap).
        int rows = 0;
        for (int t = 0; t < view.connections()->topLevelItemCount(); ++t) rows += view.connections()->topLevelItem(t)->childCount();
        QCOMPARE(rows, static_cast<int>(in.size() + out.size()));
        // Empty space unfocuses.
        QTest::mouseClick(c, Qt::LeftButton, Qt::NoModifier, QPoint(2, 2));
        QCOMPARE(c->focusedNode(), -1);
        QVERIFY(c->graph().clickedId.empty());
    }

    void pinsAndFocusSurviveSaveAndReload() {
        GraphView view(nullptr);
        view.resize(1200, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QVERIFY(shown(view, [&] { view.setFullGraph(full_); }));
        GraphCanvas* c = view.canvas();
        const auto& nodes = c->graph().nodes;
        std::vector<int> features;
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].kind == cs::NodeKind::Feature) features.push_back(static_cast<int>(i));
        QVERIFY(features.size() >= 3);
        QSignalSpy pins(c, &GraphCanvas::pinsChanged);
        clickNode(c, features[0], Qt::ControlModifier);
        clickNode(c, features[1], Qt::ControlModifier);
        clickNode(c, features[2], Qt::ControlModifier);
        clickNode(c, features[2], Qt::ControlModifier);  // unpinned again
        QCOMPARE(pins.count(), 4);
        QCOMPARE(c->focusedNode(), -1);  // Ctrl+click pins without focusing
        const std::vector<std::string> wantPins = {nodes[static_cast<size_t>(features[0])].id, nodes[static_cast<size_t>(features[1])].id};
        QVERIFY(c->graph().pinnedIds == wantPins);
        QVERIFY(view.scoresLabel()->text().contains("Pinned subgraph (2 nodes)"));
        clickNode(c, features[2]);
        const std::string clicked = nodes[static_cast<size_t>(features[2])].id;

        const QString path = QString::fromStdString(dir_ + "/pinned.json");
        QCOMPARE(view.saveGraph(path), QString());
        GraphView again(nullptr);
        QCOMPARE(again.openGraph(path), QString());
        QVERIFY(again.canvas()->graph().pinnedIds == wantPins);
        QCOMPARE(again.canvas()->graph().clickedId, clicked);
        QCOMPARE(again.canvas()->focusedNode(), again.canvas()->graph().findNode(clicked));
        QCOMPARE(again.canvas()->pinnedNodes().size(), size_t(2));
        QCOMPARE(again.canvas()->graph().nodes.size(), c->graph().nodes.size());
        QCOMPARE(again.openGraph(QString::fromStdString(dir_ + "/missing.json")).isEmpty(), false);
    }

    // Click, pin, group (G), rename in place, check the summed links, save, reopen: everything the
    // viewer keeps comes back as it was; then ungroup and unpin a member.
    void groupRenameSaveAndReload() {
        GraphView view(nullptr);
        QVERIFY(showView(view, full_));
        GraphCanvas* c = view.canvas();
        SubgraphCanvas* sub = view.subgraphCanvas();
        const cs::AttributionGraph& g = c->graph();
        // Two features that both feed the most likely logit, a third that feeds one of them.
        int logit = -1;
        for (size_t i = 0; i < g.nodes.size(); ++i)
            if (g.nodes[i].kind == cs::NodeKind::Logit && (logit < 0 || g.nodes[i].tokenProb > g.nodes[static_cast<size_t>(logit)].tokenProb))
                logit = static_cast<int>(i);
        QVERIFY(logit >= 0);
        std::vector<int> feeders;
        for (int li : c->inputLinks(logit)) {
            const int s = g.links[static_cast<size_t>(li)].source;
            if (g.nodes[static_cast<size_t>(s)].kind == cs::NodeKind::Feature && !c->inputLinks(s).empty()) feeders.push_back(s);
        }
        QVERIFY(feeders.size() >= 2);
        const int a = feeders[0], b = feeders[1];
        int third = -1;
        for (int li : c->inputLinks(a)) {
            const int s = g.links[static_cast<size_t>(li)].source;
            if (s != b && g.nodes[static_cast<size_t>(s)].kind == cs::NodeKind::Feature) third = s;
        }
        if (third < 0) third = g.links[static_cast<size_t>(c->inputLinks(a).front())].source;
        QVERIFY(third != a && third != b && third != logit);

        clickNode(c, third);
        QCOMPARE(c->focusedNode(), third);
        for (int n : {a, b, third, logit}) clickNode(c, n, Qt::ControlModifier);
        QVERIFY((c->pinnedNodes() == std::vector<int>{a, b, third, logit}));
        QCOMPARE(sub->itemCount(), 4);
        QVERIFY(view.isModified());

        // G groups the selected boxes: select a's and b's (Ctrl+click in the pane), then G.
        const int ia = sub->subgraph().owner[static_cast<size_t>(a)], ib = sub->subgraph().owner[static_cast<size_t>(b)];
        QTest::mouseClick(sub, Qt::LeftButton, Qt::NoModifier, sub->itemCenter(ia).toPoint());
        QCOMPARE(c->focusedNode(), a);  // a single node's box focuses it on the canvas
        QTest::mouseClick(sub, Qt::LeftButton, Qt::ControlModifier, sub->itemCenter(ib).toPoint());
        QVERIFY((sub->selection() == std::vector<int>{std::min(ia, ib), std::max(ia, ib)}));
        // The Intervene tab acts on the selected boxes' members; the Attention tab's edge is the
        // focused node's layer and position.
        {
            std::set<std::string> want{g.nodes[static_cast<size_t>(a)].id, g.nodes[static_cast<size_t>(b)].id}, got;
            for (const auto& n : view.interventionPanel()->nodes()) got.insert(n.id);
            QVERIFY(got == want);
            const cs::AttentionEdge e = view.attentionPanel()->edge();
            QCOMPARE(e.layer, g.nodes[static_cast<size_t>(a)].layer);
            QCOMPARE(e.query, g.nodes[static_cast<size_t>(a)].position);
            QCOMPARE(e.key, g.nodes[static_cast<size_t>(a)].position);
        }
        QSignalSpy grouped(c, &GraphCanvas::supernodesChanged);
        QTest::keyClick(sub, Qt::Key_G);
        QCOMPARE(grouped.count(), 1);
        QCOMPARE(c->supernodes().size(), size_t(1));
        const std::vector<std::string> members = {g.nodes[static_cast<size_t>(a)].id, g.nodes[static_cast<size_t>(b)].id};
        QVERIFY(c->supernodes()[0].nodeIds == members);
        QCOMPARE(c->supernodes()[0].label, cs::proposeSupernodeLabel(g, {a, b}));
        // The label editor opened on the new supernode: type over the proposal.
        QLineEdit* editor = sub->labelEditor();
        QVERIFY(editor->isVisible());
        QTest::keyClicks(editor, "say a name");
        QTest::keyClick(editor, Qt::Key_Return);
        QVERIFY(!editor->isVisible());
        QCOMPARE(c->supernodes()[0].label, std::string("say a name"));
        // Double-click renames too.
        const int is = supernodeItem(sub, 0);
        QVERIFY(is >= 0);
        QTest::mouseDClick(sub, Qt::LeftButton, Qt::NoModifier, sub->itemCenter(is).toPoint());
        QVERIFY(editor->isVisible());
        editor->selectAll();
        QTest::keyClicks(editor, "names");
        QTest::keyClick(editor, Qt::Key_Return);
        QCOMPARE(c->supernodes()[0].label, std::string("names"));
        QCOMPARE(c->graph().supernodes[0].label, std::string("names"));

        // The pane's links are the sums of the graph's, computed here from the link list.
        const cs::SubgraphView& v = sub->subgraph();
        QCOMPARE(v.nodes.size(), size_t(3));
        std::map<int, int> groupOf = {{a, 0}, {b, 0}, {third, 1}, {logit, 2}};  // test-side grouping
        std::map<std::pair<int, int>, double> want;
        for (const cs::GraphLink& l : g.links) {
            if (!groupOf.count(l.source) || !groupOf.count(l.target) || groupOf[l.source] == groupOf[l.target]) continue;
            want[{groupOf[l.source], groupOf[l.target]}] += l.weight;
        }
        QVERIFY(want.count({0, 2}) && want.count({1, 0}));  // the supernode reads from `third` and feeds the logit
        const int item[3] = {is, v.owner[static_cast<size_t>(third)], v.owner[static_cast<size_t>(logit)]};
        QCOMPARE(v.links.size(), want.size());
        for (const auto& [key, w] : want) {
            const auto it = std::find_if(v.links.begin(), v.links.end(), [&](const cs::SubgraphLink& l) {
                return l.source == item[key.first] && l.target == item[key.second];
            });
            QVERIFY(it != v.links.end());
            QVERIFY2(std::abs(it->weight - w) <= 1e-6 * std::max(1.0, std::abs(w)), qPrintable(QString("%1 vs %2").arg(it->weight).arg(w)));
        }

        const QString path = QString::fromStdString(dir_ + "/supernodes.json");
        QCOMPARE(view.saveGraph(path), QString());
        QVERIFY(!view.isModified());
        GraphView again(nullptr);
        QCOMPARE(again.openGraph(path), QString());
        const cs::AttributionGraph& r = again.canvas()->graph();
        QVERIFY(r.pinnedIds == c->graph().pinnedIds);
        QCOMPARE(r.clickedId, g.nodes[static_cast<size_t>(a)].id);
        QCOMPARE(again.canvas()->focusedNode(), r.findNode(r.clickedId));
        QCOMPARE(r.supernodes.size(), size_t(1));
        QCOMPARE(r.supernodes[0].label, std::string("names"));
        QVERIFY(r.supernodes[0].nodeIds == members);
        QCOMPARE(again.subgraphCanvas()->itemCount(), 3);
        QCOMPARE(again.subgraphCanvas()->subgraph().links.size(), v.links.size());
        QVERIFY(!again.isModified());
        QVERIFY(again.renameSupernode(0, "renamed"));  // a label edit is a change to save
        QVERIFY(again.isModified());

        // Shift+G ungroups the selected supernode; the members stay pinned.
        sub->setSelection({supernodeItem(sub, 0)});
        QTest::keyClick(sub, Qt::Key_G, Qt::ShiftModifier);
        QVERIFY(c->supernodes().empty());
        QCOMPARE(c->pinnedNodes().size(), size_t(4));
        QCOMPARE(sub->itemCount(), 4);
        // Unpinning a member takes it out of its supernode.
        sub->setSelection({0});
        QVERIFY(view.groupSelection() < 0);  // one single node is not a group
        sub->setSelection({});
        QCOMPARE(view.groupSelection(), 0);  // no selection: every pinned node not in a supernode
        QCOMPARE(c->supernodes()[0].nodeIds.size(), size_t(4));
        clickNode(c, a, Qt::ControlModifier);
        QCOMPARE(c->supernodes()[0].nodeIds.size(), size_t(3));
        QCOMPARE(c->supernodeOf(a), -1);
    }

    void suggestionGroupButtonMakesTheSupernode() {
        GraphView view(nullptr);
        QVERIFY(showView(view, full_));
        GraphCanvas* c = view.canvas();
        view.sidePanel()->setCurrentIndex(view.sidePanel()->indexOf(view.suggestionList()->parentWidget()));
        const std::vector<cs::SupernodeSuggestion> want = cs::suggestSupernodes(c->graph());
        QVERIFY(!want.empty());
        QCOMPARE(view.suggestions().size(), want.size());
        QCOMPARE(view.suggestionList()->topLevelItemCount(), static_cast<int>(want.size()));
        QVERIFY(view.suggestions()[0].members == want[0].members);
        auto* button = qobject_cast<QToolButton*>(view.suggestionList()->itemWidget(view.suggestionList()->topLevelItem(0), 2));
        QVERIFY(button);
        QTest::mouseClick(button, Qt::LeftButton);
        QTRY_COMPARE(c->supernodes().size(), size_t(1));
        std::vector<std::string> ids;
        for (int m : want[0].members) {
            ids.push_back(c->graph().nodes[static_cast<size_t>(m)].id);
            QVERIFY(c->isPinned(m));
        }
        QVERIFY(c->supernodes()[0].nodeIds == ids);
        QCOMPARE(c->supernodes()[0].label, want[0].label);
        QVERIFY(view.isModified());
        // The list is recomputed without the grouped members.
        for (const auto& s : view.suggestions())
            for (int m : s.members) QCOMPARE(c->supernodeOf(m), -1);
        QCOMPARE(view.subgraphCanvas()->itemCount(), 1);
    }

    void hoverMarksTheSameFeatureElsewhere() {
        GraphView view(nullptr);
        QVERIFY(showView(view, full_));
        GraphCanvas* c = view.canvas();
        const cs::AttributionGraph& g = c->graph();
        std::map<std::pair<int, long>, std::vector<int>> byFeature;
        for (size_t i = 0; i < g.nodes.size(); ++i)
            if (g.nodes[i].kind == cs::NodeKind::Feature) byFeature[{g.nodes[i].layer, g.nodes[i].feature}].push_back(static_cast<int>(i));
        std::vector<int> repeated;
        for (const auto& [key, nodes] : byFeature)
            if (nodes.size() > repeated.size()) repeated = nodes;
        QVERIFY2(repeated.size() >= 2, "no feature fires at two positions of the prompt");
        const int n = repeated.front();
        moveMouse(c, c->nodeCenter(n));
        QCOMPARE(c->hoveredNode(), n);
        const std::set<int> others(repeated.begin() + 1, repeated.end());
        QVERIFY(asSet(c->sameFeatureNodes(n)) == others);
        for (size_t i = 0; i < g.nodes.size(); ++i)
            QCOMPARE(c->isSameFeatureMarked(static_cast<int>(i)), others.count(static_cast<int>(i)) > 0);
        moveMouse(c, QPointF(2, 2));
        QCOMPARE(c->hoveredNode(), -1);
        QVERIFY(!c->isSameFeatureMarked(repeated[1]));
        // Hovering the node's row in the connections list marks it the same way.
        int consumer = -1;
        for (int li : c->outputLinks(n)) consumer = g.links[static_cast<size_t>(li)].target;
        QVERIFY(consumer >= 0);
        view.sidePanel()->setCurrentIndex(0);
        c->focusNode(consumer);
        QTreeWidgetItem* row = nullptr;
        for (int t = 0; t < view.connections()->topLevelItemCount() && !row; ++t)
            for (int k = 0; k < view.connections()->topLevelItem(t)->childCount(); ++k)
                if (view.connections()->topLevelItem(t)->child(k)->data(0, Qt::UserRole).toInt() == n) row = view.connections()->topLevelItem(t)->child(k);
        QVERIFY(row);
        view.connections()->scrollToItem(row);
        moveMouse(view.connections()->viewport(), view.connections()->visualItemRect(row).center());
        QCOMPARE(c->hoveredNode(), n);
        QVERIFY(c->isSameFeatureMarked(repeated[1]));
    }

    void dashboardOfTheClickedFeature() {
        SessionController session;
        GraphView view(&session);
        QVERIFY(showView(view, full_));
        GraphCanvas* c = view.canvas();
        const cs::AttributionGraph& g = c->graph();
        view.sidePanel()->setCurrentIndex(1);
        QVERIFY(!view.dashboard());
        int feature = -1, error = -1;
        for (size_t i = 0; i < g.nodes.size(); ++i) {
            if (feature < 0 && g.nodes[i].kind == cs::NodeKind::Feature) feature = static_cast<int>(i);
            if (error < 0 && g.nodes[i].kind == cs::NodeKind::Error) error = static_cast<int>(i);
        }
        QVERIFY(feature >= 0 && error >= 0);
        clickNode(c, feature);
        QVERIFY(view.dashboard());
        const cs::GraphNode& f = g.nodes[static_cast<size_t>(feature)];
        QCOMPARE(view.dashboard()->saeId(), QString::fromStdString(g.saeIds[static_cast<size_t>(f.layer)]));
        QCOMPARE(view.dashboard()->featureIndex(), f.feature);
        QVERIFY(view.dashboard()->isVisibleTo(&view));
        clickNode(c, error);
        QVERIFY(!view.dashboard());
        QVERIFY(view.dashboardNote()->isVisibleTo(&view));
        QVERIFY(view.dashboardNote()->text().contains("error node"));
        // Not built while another tab shows.
        view.sidePanel()->setCurrentIndex(0);
        clickNode(c, feature);
        QVERIFY(!view.dashboard());
        view.sidePanel()->setCurrentIndex(1);
        QVERIFY(view.dashboard());
    }

    void subgraphExportsVectorShapes() {
        GraphView view(nullptr);
        QVERIFY(showView(view, full_));
        GraphCanvas* c = view.canvas();
        std::vector<int> features;
        for (size_t i = 0; i < c->graph().nodes.size() && features.size() < 5; ++i)
            if (c->graph().nodes[i].kind == cs::NodeKind::Feature && !c->outputLinks(static_cast<int>(i)).empty()) features.push_back(static_cast<int>(i));
        QVERIFY(features.size() == 5);
        for (int n : features) c->togglePin(n);
        QCOMPARE(c->groupNodes({features[0], features[1]}, "pair"), 0);
        SubgraphCanvas* sub = view.subgraphCanvas();
        QCOMPARE(sub->itemCount(), 4);
        const QString svgPath = QString::fromStdString(dir_ + "/subgraph.svg");
        QCOMPARE(exportFigure(*sub, svgPath), QString());
        const std::string svg = readFile(svgPath.toStdString());
        // A rect per box (and the background's), a path per link, the label as text.
        QCOMPARE(countOf(svg, "<rect"), sub->itemCount() + 1);
        QCOMPARE(countOf(svg, "<path"), static_cast<int>(sub->subgraph().links.size()));
        QVERIFY(svg.find("pair") != std::string::npos);
        const QString png = QString::fromStdString(dir_ + "/subgraph.png");
        QCOMPARE(exportFigure(*sub, png), QString());
        QImage image(png);
        QVERIFY(!image.isNull());
        QVERIFY(image.width() >= sub->figureSize().width());
    }

    // The Open button reads off the GUI thread; a corrupt file fails with its name and leaves the
    // graph shown as it was.
    void openInBackgroundAndCorruptFiles() {
        GraphView view(nullptr);
        QVERIFY(showView(view, full_));
        const size_t before = view.canvas()->graph().nodes.size();
        const std::string good = dir_ + "/whole.json";
        cs::saveGraph(good, full_);
        QSignalSpy opened(&view, &GraphView::graphOpened);
        QSignalSpy failed(&view, &GraphView::failed);
        view.openGraphInBackground(QString::fromStdString(good));
        QVERIFY(opened.wait(30000));
        QCOMPARE(view.canvas()->graph().nodes.size(), full_.nodes.size());  // shown as it is
        QVERIFY(view.canvas()->graph().nodes.size() != before);
        const std::string bad = dir_ + "/bad.json";
        writeFile(bad, "{\"metadata\": {}, \"nodes\": [");
        view.openGraphInBackground(QString::fromStdString(bad));
        QVERIFY(failed.wait(30000));
        QVERIFY(failed.front().front().toString().contains("bad.json"));
        QCOMPARE(view.canvas()->graph().nodes.size(), full_.nodes.size());
    }

    // Tabbed with the other feature docks, the view must not force the dock area wider.
    void staysNarrow() {
        GraphView view(nullptr);
        QVERIFY2(view.minimumSizeHint().width() <= 400, qPrintable(QString::number(view.minimumSizeHint().width())));
    }

    void thresholdsRepruneFromTheFullGraph() {
        GraphView view(nullptr);
        QVERIFY(shown(view, [&] { view.setFullGraph(full_); }));
        QCOMPARE(view.nodeThresholdBox()->value(), 0.8);
        const size_t at08 = view.canvas()->graph().nodes.size();
        QCOMPARE(at08, cs::pruneGraph(full_, 0.8f, static_cast<float>(view.edgeThresholdBox()->value())).nodes.size());
        QVERIFY(shown(view, [&] { view.nodeThresholdBox()->setValue(0.5); }));
        const size_t at05 = view.canvas()->graph().nodes.size();
        QVERIFY2(at05 < at08, qPrintable(QString("%1 nodes at 0.5, %2 at 0.8").arg(at05).arg(at08)));
        QVERIFY(shown(view, [&] { view.nodeThresholdBox()->setValue(0.8); }));  // back up: from the full graph, not the 0.5 one
        QCOMPARE(view.canvas()->graph().nodes.size(), at08);
        QVERIFY(shown(view, [&] { view.nodeThresholdBox()->setValue(1.0); }));
        QVERIFY(shown(view, [&] { view.edgeThresholdBox()->setValue(1.0); }));
        QCOMPARE(view.canvas()->graph().nodes.size(), full_.nodes.size());
    }

    void searchHighlightsMatches() {
        GraphView view(nullptr);
        QVERIFY(shown(view, [&] { view.setFullGraph(full_); }));
        const cs::GraphNode& n = view.canvas()->graph().nodes.front();
        view.searchBox()->setText(QString::fromStdString(n.id));
        QVERIFY(!view.canvas()->highlighted().empty());
        for (int i : view.canvas()->highlighted())
            QVERIFY(QString::fromStdString(view.canvas()->graph().nodes[static_cast<size_t>(i)].id).contains(QString::fromStdString(n.id)));
        view.searchBox()->setText("no node is called this");
        QVERIFY(view.canvas()->highlighted().empty());
    }

    void svgHasAShapePerNode() {
        GraphView view(nullptr);
        QVERIFY(shown(view, [&] { view.setFullGraph(full_); }));
        GraphCanvas* c = view.canvas();
        int features = 0, squares = 0, errors = 0;
        for (const auto& n : c->graph().nodes) {
            if (n.kind == cs::NodeKind::Feature) ++features;
            else if (n.kind == cs::NodeKind::Error) ++errors;
            else ++squares;
        }
        const QString path = QString::fromStdString(dir_ + "/graph.svg");
        QCOMPARE(exportFigure(*c, path), QString());
        const std::string svg = readFile(path.toStdString());
        // Features are circles (<circle> or <ellipse>), embeddings and logits rects, errors polygons.
        QCOMPARE(countOf(svg, "<circle") + countOf(svg, "<ellipse"), features);
        QVERIFY(countOf(svg, "<rect") >= squares);
        QVERIFY(countOf(svg, "<polygon") + countOf(svg, "<polyline") + countOf(svg, "<path") >= errors);
    }

    void computeButtonMatchesCore() {
        SessionController session;
        QSignalSpy loaded(&session, &SessionController::modelLoaded);
        session.loadModel(QString::fromStdString(cs::resolveModelDir("demo")));
        QVERIFY(loaded.wait(60000));
        QSignalSpy finished(&session, &SessionController::runFinished);
        session.run(RunSettings{QString::fromStdString(kPrompt), 0, true, 1.0, 0});
        QVERIFY(finished.wait(60000));
        GraphView view(&session);
        QSignalSpy computed(&view, &GraphView::graphComputed);
        QSignalSpy failed(&session, &SessionController::failed);
        view.computeGraph();
        QVERIFY2(computed.wait(120000), failed.isEmpty() ? "no graph" : qPrintable(failed.front().front().toString()));
        QVERIFY(view.fullGraph());
        QCOMPARE(view.fullGraph()->nodes.size(), full_.nodes.size());
        QCOMPARE(view.fullGraph()->links.size(), full_.links.size());
        QVERIFY(view.fullGraph()->tokenTexts == full_.tokenTexts);
    }

    void attributeCommandRendersSvg() {
        const std::string json = dir_ + "/cli.json", svg = dir_ + "/cli.svg";
        cs::saveGraph(json, cs::pruneGraph(full_));
        std::string out;
        const int rc = run(std::string(CS_CLI_PATH) + " attribute --in " + shellQuote(json) + " --out " + shellQuote(svg) + " 2>&1", &out);
        QVERIFY2(rc == 0, out.c_str());
        const std::string text = readFile(svg);
        QVERIFY(text.find("<svg") != std::string::npos);
        QVERIFY(countOf(text, "<circle") + countOf(text, "<ellipse") > 0);
        QVERIFY(out.find("\"nodes\"") != std::string::npos);
        // An unknown extension is still refused.
        QVERIFY(run(std::string(CS_CLI_PATH) + " attribute --in " + shellQuote(json) + " --out " + shellQuote(dir_ + "/x.txt") + " 2>/dev/null") != 0);
    }
};

QTEST_MAIN(TestGraphGui)
#include "test_graph_gui.moc"
