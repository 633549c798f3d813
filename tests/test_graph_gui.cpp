// The attribution-graph dock, offscreen, on a graph the demo's transcoders compute for a short
// prompt: clicking a node where the canvas paints it focuses it and its links are exactly the
// graph's; Ctrl+click pins; pins and the focus survive save and reload; the thresholds re-prune
// from the unpruned graph; the SVG figure holds one vector shape per node; the Compute button
// gives what core computes; and `attribute --in g.json --out g.svg` renders through the canvas.
#include "TestSupport.h"

#include "attribution/Attribution.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/figures/FigureExport.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/GraphView.h"

#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTreeWidget>
#include <QtTest>

#include <algorithm>
#include <filesystem>
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
