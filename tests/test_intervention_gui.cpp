// The graph's intervention panel, offscreen, on the demo: ablating a real node of a demo graph
// (the strongest feature at the last position) through the panel shows, in its table, exactly the
// numbers core interveneOnGraph gives, and the continuations as the tokenizer decodes them; Set
// and Scale with frozen or free attention reach the core as chosen; Ctrl+Return runs; an error
// node is refused with the core's message. The nodes are the demo graph's feature nodes as the
// unpruned graph holds them (every active transcoder feature at every position), read from the
// transcoders directly: computing the whole graph would cost this test most of its time.
#include "TestSupport.h"

#include "attribution/Attribution.h"
#include "attribution/AttributionGraph.h"
#include "attribution/GraphIntervention.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "tokenize/ContinuationText.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/GraphInterventionPanel.h"

#include <ATen/ATen.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest>

#include <filesystem>

using namespace cstest;
using namespace cs::ui;
using Kind = cs::NodeIntervention::Kind;

namespace {

const std::string kPrompt = "Once upon a time, there was a little girl named";
constexpr int kWaitMs = 60000;

}  // namespace

class TestInterventionGui : public QObject {
    Q_OBJECT
    std::shared_ptr<cs::Transformer> model_;
    std::shared_ptr<cs::Tokenizer> tok_;
    std::vector<cs::AttributionTranscoder> tcs_;
    cs::AttributionGraph graph_;
    std::vector<long> targets_;
    std::unique_ptr<SessionController> session_;

    // The graph's feature node with the largest activation at the last position.
    const cs::GraphNode& strongestLastFeature() const {
        const cs::GraphNode* best = nullptr;
        for (const cs::GraphNode& n : graph_.nodes)
            if (n.kind == cs::NodeKind::Feature && n.position == static_cast<int>(graph_.tokens.size()) - 1 &&
                (!best || n.activation > best->activation))
                best = &n;
        return *best;
    }

    // Runs the panel and waits for its result.
    static bool runPanel(GraphInterventionPanel& p) {
        QSignalSpy done(&p, &GraphInterventionPanel::finished), failed(&p, &GraphInterventionPanel::failed);
        p.runButton()->click();
        if (done.isEmpty() && failed.isEmpty()) done.wait(kWaitMs);
        if (!failed.isEmpty()) qWarning("%s", qPrintable(failed.front().front().toString()));
        return done.count() == 1 && failed.isEmpty();
    }

    // The panel's table and labels against core's result for the same request.
    void expectShows(const GraphInterventionPanel& p, const cs::InterventionResult& want) {
        QTableWidget* t = p.resultTable();
        QCOMPARE(t->rowCount(), static_cast<int>(want.targets.size()));
        for (int r = 0; r < t->rowCount(); ++r) {
            const cs::TargetChange& w = want.targets[static_cast<size_t>(r)];
            QCOMPARE(t->item(r, 0)->data(Qt::UserRole).toLongLong(), static_cast<qlonglong>(w.token));
            QCOMPARE(t->item(r, 0)->text(), QStringLiteral("\"%1\"").arg(QString::fromStdString(tok_->tokenText(static_cast<int>(w.token)))));
            const double values[] = {w.logitBefore, w.logitAfter, w.logitAfter - w.logitBefore, w.probBefore, w.probAfter};
            for (int c = 1; c <= 5; ++c) {
                const double got = t->item(r, c)->data(Qt::UserRole).toDouble(), v = values[c - 1];
                // The same computation on another thread: equal up to float rounding in the BLAS split.
                QVERIFY2(std::abs(got - v) <= 1e-5 * std::max(1.0, std::abs(v)),
                         qPrintable(QString("row %1 column %2: %3, core %4").arg(r).arg(c).arg(got).arg(v)));
            }
            QCOMPARE(t->item(r, 1)->text(), QString::number(w.logitBefore, 'f', 3));
            QCOMPARE(t->item(r, 5)->text(), QString::number(100 * w.probAfter, 'f', 2) + "%");
        }
        // As the continuation reads after the prompt (its leading space dropped after the label).
        auto text = [&](const std::vector<long>& ids) {
            return QString::fromStdString(cs::continuationText(*tok_, graph_.tokens, ids)).trimmed();
        };
        QCOMPARE(p.continuationBeforeLabel()->text(), "Before: " + text(want.continuationBefore));
        QCOMPARE(p.continuationAfterLabel()->text(), "After: " + text(want.continuationAfter));
        QVERIFY(p.result());
        QVERIFY(p.result()->continuationAfter == want.continuationAfter);
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeInterventionGuiTest");
        QSettings().clear();
        if (cs::demoBundleDir().empty()) QSKIP("the demo bundle is not installed");
        const std::string dir = cs::resolveModelDir("demo");
        model_ = cs::loadModel(dir);
        tok_ = cs::loadTokenizer(dir);
        for (const std::string& p : cs::demoSaeDirs()) {
            const std::string name = std::filesystem::path(p).filename().string();
            if (name.rfind("tc-", 0) == 0) tcs_.push_back({name, cs::loadSae(p)});
        }
        const std::vector<int> ids = tok_->encodePrompt(kPrompt);
        graph_.tokens.assign(ids.begin(), ids.end());
        graph_.layers = model_->config().nLayers;
        // The feature nodes (id "{layer}_{feature}_{pos}"), one error node, and as targets the three
        // most likely next tokens.
        cs::Hooks hooks;
        for (const auto& tc : tcs_) hooks.cache(tc.sae->config().hookName);
        cs::ActivationCache cache;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        const at::Tensor logits = model_->forward(at::tensor(graph_.tokens, at::kLong).unsqueeze(0), o)[0][-1];
        for (size_t l = 0; l < tcs_.size(); ++l) {
            graph_.saeIds.push_back(tcs_[l].id);
            const at::Tensor codes = tcs_[l].sae->encode(cache.at(tcs_[l].sae->config().hookName)[0]).contiguous();
            for (long p = 0; p < codes.size(0); ++p)
                for (long f = 0; f < codes.size(1); ++f) {
                    const float a = codes[p][f].item<float>();
                    if (a <= 0) continue;
                    cs::GraphNode n;
                    n.kind = cs::NodeKind::Feature;
                    n.layer = static_cast<int>(l);
                    n.position = static_cast<int>(p);
                    n.feature = f;
                    n.activation = a;
                    n.id = std::to_string(l) + "_" + std::to_string(f) + "_" + std::to_string(p);
                    graph_.nodes.push_back(n);
                }
        }
        cs::GraphNode error;
        error.kind = cs::NodeKind::Error;
        error.layer = 1;
        error.position = 3;
        error.id = "1_-1_3";
        graph_.nodes.push_back(error);
        const at::Tensor top = std::get<1>(logits.topk(3));
        for (long i = 0; i < 3; ++i) targets_.push_back(top[i].item<long>());
        QVERIFY(graph_.nodes.size() > 50);
        session_ = std::make_unique<SessionController>();
        QSignalSpy loaded(session_.get(), &SessionController::modelLoaded);
        session_->loadModel(QString::fromStdString(dir));
        QVERIFY(loaded.wait(kWaitMs));
        QVERIFY(!session_->saes().empty());
    }

    void ablationShowsWhatCoreComputes() {
        GraphInterventionPanel panel(session_.get());
        QVERIFY(!panel.runButton()->isEnabled());  // nothing to change yet
        const cs::GraphNode node = strongestLastFeature();
        panel.setNodes({node}, graph_.tokens, targets_, graph_.saeIds);
        QVERIFY(panel.runButton()->isEnabled());
        QCOMPARE(panel.modeBox()->currentData().toInt(), static_cast<int>(Kind::Ablate));
        QVERIFY(panel.freezeBox()->isChecked());
        QVERIFY(!panel.valueBox()->isEnabled());
        QVERIFY(runPanel(panel));
        cs::InterventionOptions o;
        o.targets = targets_;
        const cs::InterventionResult want =
            cs::interveneOnGraph(*model_, tcs_, graph_.tokens, {cs::interventionForNode(node, Kind::Ablate, 0)}, o);
        expectShows(panel, want);
        QVERIFY(panel.result()->attentionFrozen);
        QCOMPARE(panel.result()->activationsAfter.at(0), 0.0);
        // The ablated feature fired: the summary says what it was.
        QVERIFY(panel.summary()->text().contains(QString::number(want.activationsBefore.at(0), 'f', 3) + " -> 0.000"));
        QVERIFY(want.targets.at(0).logitAfter != want.targets.at(0).logitBefore);
    }

    // A supernode (two nodes) scaled with attention free, run with Ctrl+Return from the value box.
    void scaleFreeByKeyboard() {
        GraphInterventionPanel panel(session_.get());
        std::vector<cs::GraphNode> nodes;
        for (const cs::GraphNode& n : graph_.nodes)
            if (n.kind == cs::NodeKind::Feature && nodes.size() < 2) nodes.push_back(n);
        panel.setNodes(nodes, graph_.tokens, targets_, graph_.saeIds);
        panel.modeBox()->setCurrentIndex(panel.modeBox()->findData(static_cast<int>(Kind::Scale)));
        QVERIFY(panel.valueBox()->isEnabled());
        QCOMPARE(panel.valueBox()->value(), 2.0);  // Scale's default
        panel.valueBox()->setValue(-1.5);
        panel.freezeBox()->setChecked(false);
        QSignalSpy done(&panel, &GraphInterventionPanel::finished);
        QTest::keyClick(panel.valueBox(), Qt::Key_Return, Qt::ControlModifier);
        QVERIFY(!done.isEmpty() || done.wait(kWaitMs));
        cs::InterventionOptions o;
        o.targets = targets_;
        o.freezeAttention = false;
        std::vector<cs::NodeIntervention> ivs;
        for (const auto& n : nodes) ivs.push_back(cs::interventionForNode(n, Kind::Scale, -1.5));
        expectShows(panel, cs::interveneOnGraph(*model_, tcs_, graph_.tokens, ivs, o));
        QVERIFY(!panel.result()->attentionFrozen);
        // Switching modes keeps each mode's value.
        panel.modeBox()->setCurrentIndex(panel.modeBox()->findData(static_cast<int>(Kind::Set)));
        QCOMPARE(panel.valueBox()->value(), 0.0);
        panel.valueBox()->setValue(5);
        panel.modeBox()->setCurrentIndex(panel.modeBox()->findData(static_cast<int>(Kind::Scale)));
        QCOMPARE(panel.valueBox()->value(), -1.5);
    }

    void setChangesTheFeature() {
        GraphInterventionPanel panel(session_.get());
        const cs::GraphNode node = strongestLastFeature();
        panel.setNodes({node}, graph_.tokens, {}, graph_.saeIds);
        panel.modeBox()->setCurrentIndex(panel.modeBox()->findData(static_cast<int>(Kind::Set)));
        panel.valueBox()->setValue(20);
        QVERIFY(runPanel(panel));
        QCOMPARE(panel.result()->activationsAfter.at(0), 20.0);
        QCOMPARE(panel.resultTable()->rowCount(), 1);  // no targets given: the most likely token
        cs::InterventionOptions o;
        expectShows(panel, cs::interveneOnGraph(*model_, tcs_, graph_.tokens, {cs::interventionForNode(node, Kind::Set, 20)}, o));
    }

    void errorNodesAreRefused() {
        GraphInterventionPanel panel(session_.get());
        const cs::GraphNode* error = nullptr;
        for (const cs::GraphNode& n : graph_.nodes)
            if (n.kind == cs::NodeKind::Error && !error) error = &n;
        QVERIFY(error);
        panel.setNodes({*error}, graph_.tokens, targets_, graph_.saeIds);
        QSignalSpy failed(&panel, &GraphInterventionPanel::failed);
        panel.runButton()->click();
        QCOMPARE(failed.count(), 1);
        const QString message = failed.front().front().toString();
        QVERIFY2(message.contains("only feature nodes"), qPrintable(message));
        QCOMPARE(panel.summary()->text(), message);
        QVERIFY(!panel.result());
    }
};

QTEST_MAIN(TestInterventionGui)
#include "test_intervention_gui.moc"
