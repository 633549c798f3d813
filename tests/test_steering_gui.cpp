// The Steering dock, offscreen, on the embedded demo: "Steer" on a feature adds a row; moving its
// slider continues the prompt steered, and the text shown is exactly what core's generateSteered
// makes for the same plan; a newer slider value supersedes the run in flight (only its result is
// shown); the session's own run can be steered too; presets and session files keep the rows.
#include "SteeringAsserts.h"
#include "TestSupport.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "steer/Steering.h"
#include "steer/SteeringJson.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/SessionFile.h"
#include "ui/SteeringJob.h"
#include "ui/views/DashboardView.h"
#include "ui/views/FeaturesView.h"
#include "ui/views/SteeringComparisonView.h"
#include "ui/views/SteeringRowDelegate.h"
#include "ui/views/SteeringRowModel.h"
#include "ui/views/SteeringView.h"

#include <ATen/ATen.h>

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QStandardPaths>
#include <QTableView>
#include <QtTest>

#include <filesystem>

using namespace cstest;
using namespace cs::ui;

namespace {

const QString kPrompt = QStringLiteral("Once upon a time, there was a little girl named Lily. She loved to play");
constexpr int kNewTokens = 24;
constexpr int kWaitMs = 30000;

QString demoModelDir() { return QString::fromStdString(cs::resolveModelDir("demo")); }

// A fresh window on the demo model, after its first run (which carries the demo's SAEs).
struct Fixture {
    SessionController session;
    MainWindow window{&session};
    Fixture() {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1400, 900);
        window.show();
        window.applySettings(RunSettings{kPrompt, kNewTokens, true, 1.0, 0});
        window.openModel(demoModelDir());
        if (!finished.wait(60000)) qFatal("the first run did not finish");
    }
    SteeringView* steering() const { return window.steeringView(); }
};

// Waits until the dock shows the result of a request made after now, and nothing is pending.
bool waitForComparison(SteeringView* v, int timeoutMs = kWaitMs) {
    QSignalSpy spy(v, &SteeringView::comparisonUpdated);
    return spy.wait(timeoutMs);
}

void comparePlans(const cs::SteeringPlan& a, const cs::SteeringPlan& b) {
    QCOMPARE(a.rules.size(), b.rules.size());
    for (size_t i = 0; i < a.rules.size(); ++i) compareSteeringRules(a.rules[i], b.rules[i]);
    QCOMPARE(a.condition.has_value(), b.condition.has_value());
    if (a.condition) QCOMPARE(a.condition->toString(), b.condition->toString());
}

}  // namespace

class TestSteeringGui : public QObject {
    Q_OBJECT
    QString out_;
    std::shared_ptr<cs::Transformer> model_;
    std::shared_ptr<cs::Tokenizer> tok_;
    std::vector<cs::SteeringSae> saes_;

    // What core makes of `plan` for the fixture's prompt and settings.
    std::vector<long> coreSteered(const cs::SteeringPlan& plan) {
        const std::vector<int> ids = tok_->encodePrompt(kPrompt.toStdString());
        const std::vector<long> prompt(ids.begin(), ids.end());
        const cs::SamplingOptions s = samplingFor(RunSettings{kPrompt, kNewTokens, true, 1.0, 0},
                                                  static_cast<long>(prompt.size()), model_->config().nCtx);
        cs::Steering steering(*model_, saes_, plan);
        return cs::generateSteered(*model_, prompt, s, steering);
    }
    std::vector<long> coreBaseline() {
        const std::vector<int> ids = tok_->encodePrompt(kPrompt.toStdString());
        cs::SamplingOptions s;
        s.maxNewTokens = kNewTokens;
        return cs::generate(*model_, std::vector<long>(ids.begin(), ids.end()), s);
    }
    // A feature that fires on the prompt: the most active one of the last demo SAE at the last token.
    std::pair<QString, int> firingFeature(const SessionController& session) {
        const cs::PromptAnalysis* a = session.analysis();
        const auto& track = a->features.at(a->features.size() / 2);
        const auto& active = track.byPosition.at(static_cast<size_t>(a->promptLength - 1));
        return {QString::fromStdString(track.id), active.at(0).first};
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeSteeringTest");
        QSettings().clear();
        QSettings().setValue("autoIndexDemo", false);  // no feature store: units come from the run
        QFile::remove(MainWindow::demoStorePath());
        if (cs::demoBundleDir().empty()) QSKIP("the demo bundle is not installed");
        out_ = QString::fromStdString(makeTempDir("steering-gui"));
        const std::string dir = demoModelDir().toStdString();
        model_ = cs::loadModel(dir);
        tok_ = cs::loadTokenizer(dir);
        for (const std::string& p : cs::demoSaeDirs())
            saes_.push_back({std::filesystem::path(p).filename().string(), cs::loadSae(p)});
    }

    void steerAddsARowAndTheSliderRegeneratesAsCoreDoes() {
        Fixture f;
        SteeringView* steering = f.steering();
        QCOMPARE(steering->rowModel()->rowCount(), 0);

        // S on a feature row of the Features dock adds it.
        const auto [sae, feature] = firingFeature(f.session);
        FeaturesView* features = f.window.featuresView();
        f.session.selectPosition(f.session.analysis()->promptLength - 1);
        int row = -1;
        for (int i = 0; i < static_cast<int>(features->rows().size()); ++i) {
            const auto& r = features->rows()[i];
            if (!r.header && r.feature == feature &&
                QString::fromStdString(f.session.analysis()->features[r.track].id) == sae)
                row = i;
        }
        QVERIFY(row >= 0);
        features->selectRow(row);
        features->setFocus();
        QTest::keyClick(features, Qt::Key_S);
        QCOMPARE(steering->rowModel()->rowCount(), 1);
        const cs::SteeringRule added = steering->rowModel()->rule(0);
        QCOMPARE(QString::fromStdString(added.saeId), sae);
        QCOMPARE(added.feature, static_cast<long>(feature));
        QCOMPARE(added.mode, cs::SteerMode::Add);
        QCOMPARE(added.value, 0.0);
        // No store: one unit is the feature's highest activation on this run.
        float max = 0;
        for (const auto& t : f.session.analysis()->features)
            if (QString::fromStdString(t.id) == sae)
                for (float v : t.series(feature)) max = std::max(max, v);
        QVERIFY(max > 0);
        QCOMPARE(added.unit, static_cast<double>(max));
        QVERIFY(waitForComparison(steering));  // strength 0: the live column is the baseline
        QCOMPARE(steering->comparisonView()->comparison().baseline.ids, coreBaseline());

        // Drag the slider to the top: 10x the unit. The continuation regenerates, steered.
        StrengthEditor* editor = steering->strengthEditor(0);
        QVERIFY(editor);
        QSignalSpy shown(steering, &SteeringView::comparisonUpdated);
        QElapsedTimer timer;
        timer.start();
        editor->slider()->setValue(editor->slider()->maximum());
        QVERIFY(shown.wait(kWaitMs));
        qInfo("slider move to repainted continuation: %lld ms", static_cast<long long>(timer.elapsed()));
        QCOMPARE(editor->spinBox()->value(), 10.0);
        QCOMPARE(steering->rowModel()->rule(0).value, 10.0 * max);
        const cs::SteeringComparison& c = steering->comparisonView()->comparison();
        QCOMPARE(c.columns.size(), size_t(1));
        QCOMPARE(c.baseline.ids, coreBaseline());
        const std::vector<long> expected = coreSteered(steering->plan());
        QCOMPARE(c.columns[0].output.ids, expected);
        QVERIFY2(expected != c.baseline.ids, "steering at 10x the max activation left the continuation unchanged");
        QVERIFY(!c.columns[0].output.text.empty());
        QCOMPARE(c.columns[0].rows.size(), size_t(1));

        // Pin it, then steer the other way: two settings side by side, the pinned one unchanged.
        QVERIFY(steering->pin());
        QVERIFY(waitForComparison(steering));
        editor->spinBox()->setValue(-5.0);
        QVERIFY(waitForComparison(steering));
        const cs::SteeringComparison& two = steering->comparisonView()->comparison();
        QCOMPARE(two.columns.size(), size_t(2));
        QCOMPARE(two.columns[1].output.ids, expected);
        QCOMPARE(two.columns[0].output.ids, coreSteered(steering->plan()));
        Q_EMIT steering->comparisonView()->unpinRequested(1);
        QCOMPARE(steering->pinnedCount(), 0);
        QCOMPARE(steering->comparisonView()->comparison().columns.size(), size_t(1));

        // A bad row is a column error, not a crash.
        cs::SteeringRule bad;
        bad.saeId = "no-such-sae";
        bad.feature = 1;
        bad.value = 1;
        steering->addRule(bad);
        QVERIFY(waitForComparison(steering));
        QVERIFY(steering->statusLabel()->text().contains("no-such-sae"));
        steering->removeRow(1);
        QVERIFY(waitForComparison(steering));

        // A dashboard's Steer button adds its feature too.
        DashboardView* dashboard = f.window.openDashboard(sae, feature + 1);
        QTest::mouseClick(dashboard->steerButton(), Qt::LeftButton);
        QCOMPARE(steering->rowModel()->rowCount(), 2);
        QCOMPARE(steering->rowModel()->rule(1).feature, static_cast<long>(feature + 1));
        QVERIFY(waitForComparison(steering));
    }

    void aNewerValueSupersedesTheRunInFlight() {
        Fixture f;
        SteeringView* steering = f.steering();
        const auto [sae, feature] = firingFeature(f.session);
        steering->addFeature(sae, feature);
        QVERIFY(waitForComparison(steering));
        StrengthEditor* editor = steering->strengthEditor(0);
        QVERIFY(editor);
        const int supersededBefore = f.session.steersSuperseded();
        const int startedBefore = f.session.steersStarted();

        // Two values back to back, each sent at once (no debounce): the first request is
        // superseded by the second, wherever it was (queued, generating, or on its way back).
        QSignalSpy shown(steering, &SteeringView::comparisonUpdated);
        editor->spinBox()->setValue(8.0);
        steering->regenerateNow();
        editor->spinBox()->setValue(-8.0);
        steering->regenerateNow();
        QVERIFY(shown.wait(kWaitMs));
        QTest::qWait(300);  // anything else on its way would have arrived by now
        QCOMPARE(shown.count(), 1);
        QCOMPARE(f.session.steersStarted(), startedBefore + 2);
        QCOMPARE(f.session.steersSuperseded(), supersededBefore + 1);

        cs::SteeringPlan first = steering->plan();
        first.rules[0].value = 8.0 * first.rules[0].unit;
        const std::vector<long> firstIds = coreSteered(first);
        const std::vector<long> lastIds = coreSteered(steering->plan());
        QVERIFY2(firstIds != lastIds, "+8x and -8x continue alike: the check below could not tell them apart");
        QCOMPARE(steering->comparisonView()->comparison().columns.at(0).output.ids, lastIds);
    }

    void theSessionRunCanBeSteered() {
        Fixture f;
        SteeringView* steering = f.steering();
        const auto [sae, feature] = firingFeature(f.session);
        steering->addFeature(sae, feature);
        steering->rowModel()->setMultiple(0, 10.0);
        QVERIFY(waitForComparison(steering));
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        steering->setShowSteeredRun(true);
        QVERIFY(finished.wait(kWaitMs));
        const RunResult& r = f.session.result();
        QVERIFY(r.steered);
        const cs::PromptAnalysis* a = f.session.analysis();
        const std::vector<long> continuation(a->ids.begin() + a->promptLength, a->ids.end());
        QCOMPARE(continuation, coreSteered(steering->plan()));
        QVERIFY(continuation != coreBaseline());

        steering->setShowSteeredRun(false);
        QVERIFY(finished.wait(kWaitMs));
        QVERIFY(!f.session.result().steered);
        const cs::PromptAnalysis* b = f.session.analysis();
        QCOMPARE(std::vector<long>(b->ids.begin() + b->promptLength, b->ids.end()), coreBaseline());
    }

    void presetsRoundTrip() {
        SessionController session;  // no model: presets are only data
        SteeringView view(&session);
        cs::SteeringRule a;
        a.saeId = "res-L1";
        a.feature = 17;
        a.unit = 2.5;
        a.label = "a label";
        view.addRule(a);
        view.rowModel()->setMultiple(0, -1.25);
        cs::SteeringRule b;
        b.saeId = "tc-L2";
        b.feature = 3;
        b.mode = cs::SteerMode::Clamp;
        b.value = 4;
        b.positions = cs::parsePositions("2-5", "test");
        b.conditional = true;
        b.enabled = false;
        view.addRule(b);
        cs::SteeringRule v;
        v.vectorName = "happy";
        v.hook = "blocks.1.hook_resid_post";
        v.direction = at::arange(8, at::kFloat) / 7;
        v.value = 1.5;
        v.unit = 1;
        v.positions = cs::parsePositions("generated", "test");
        view.addRule(v);
        cs::SteeringPlan withCondition = view.plan();
        withCondition.condition = cs::SteeringCondition{"res-L0", 42, 0.75};
        view.setPlan(withCondition);
        const cs::SteeringPlan saved = view.plan();
        QVERIFY(saved.condition.has_value());
        QCOMPARE(saved.rules.size(), size_t(3));
        QCOMPARE(saved.rules[0].value, -1.25 * 2.5);

        const QString path = out_ + "/preset.json";
        QCOMPARE(view.savePreset(path), QString());
        view.setPlan({});
        QCOMPARE(view.rowModel()->rowCount(), 0);
        QVERIFY(!view.plan().condition);
        QCOMPARE(view.loadPreset(path), QString());
        comparePlans(view.plan(), saved);
        // The editors show the loaded rows.
        QCOMPARE(view.strengthEditor(0)->spinBox()->value(), -1.25);
        auto* mode = qobject_cast<QComboBox*>(view.table()->indexWidget(view.rowModel()->index(1, SteeringRowModel::ModeColumn)));
        QVERIFY(mode);
        QCOMPARE(mode->currentData().toInt(), static_cast<int>(cs::SteerMode::Clamp));
        auto* positions = qobject_cast<PositionsEditor*>(
            view.table()->indexWidget(view.rowModel()->index(1, SteeringRowModel::PositionsColumn)));
        QVERIFY(positions);
        QCOMPARE(positions->positions(), QStringLiteral("2-5"));
        QVERIFY(view.strengthEditor(1)->isEnabled());  // clamp uses the strength
        mode->setCurrentIndex(mode->findData(static_cast<int>(cs::SteerMode::Ablate)));
        QCOMPARE(view.rowModel()->rule(1).mode, cs::SteerMode::Ablate);
        QVERIFY(!view.strengthEditor(1)->isEnabled());  // ablate ignores it
        view.setPlan(saved);

        QFile broken(out_ + "/broken.json");
        QVERIFY(broken.open(QIODevice::WriteOnly));
        broken.write("{\"format\": \"circuitscope-steering\", \"version\": 1, \"rows\": [{\"mode\": \"twist\"}]}");
        broken.close();
        QVERIFY(!view.loadPreset(broken.fileName()).isEmpty());
        comparePlans(view.plan(), saved);  // a bad preset changes nothing
    }

    void sessionFileKeepsTheRows() {
        const QString path = out_ + "/steered.csession";
        cs::SteeringPlan saved;
        {
            Fixture f;
            const auto [sae, feature] = firingFeature(f.session);
            f.steering()->addFeature(sae, feature);
            f.steering()->rowModel()->setMultiple(0, 3.5);
            cs::SteeringPlan p = f.steering()->plan();
            p.condition = cs::SteeringCondition{sae.toStdString(), feature, 0.5};
            p.rules[0].conditional = true;
            f.steering()->setPlan(p);
            saved = f.steering()->plan();
            QCOMPARE(f.window.saveSession(path), QString());
        }
        SessionState state;
        QCOMPARE(loadSessionFile(path, state), QString());
        comparePlans(state.steering, saved);

        Fixture g;
        QCOMPARE(g.steering()->rowModel()->rowCount(), 0);
        QSignalSpy finished(&g.session, &SessionController::runFinished);
        QCOMPARE(g.window.openSession(path), QString());
        comparePlans(g.steering()->plan(), saved);
        QVERIFY(finished.wait(kWaitMs));
        // The restored rows continue the restored prompt, exactly as core does.
        const std::vector<long> expected = coreSteered(saved);
        auto live = [&] {
            const auto& c = g.steering()->comparisonView()->comparison();
            return c.columns.empty() ? std::vector<long>() : c.columns[0].output.ids;
        };
        QTRY_COMPARE_WITH_TIMEOUT(live(), expected, kWaitMs);
    }
};

QTEST_MAIN(TestSteeringGui)
#include "test_steering_gui.moc"
