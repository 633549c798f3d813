// The window and its async session layer, offscreen: a model loads and a prompt runs on a worker
// thread, a failed load shows an error and leaves the window usable, and a newer or cancelled
// request never overwrites the screen with a stale result.
#include "TestSupport.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"

#include <QMessageBox>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QtTest>

using namespace cstest;
using cs::ui::GenerationResult;
using cs::ui::MainWindow;
using cs::ui::SessionController;

class TestGui : public QObject {
    Q_OBJECT
    std::string dir_;

private Q_SLOTS:
    void initTestCase() {
        // Never read or write the user's real settings.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeTest");
        QSettings().clear();
        dir_ = makeTempDir("gui");
        runReference("make_random_model.py", "--arch gpt2 --seed 31 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 64 --out " + shellQuote(dir_));
        writeByteLevelTokenizer(dir_);
    }

    void loadsAndRunsThePromptOffTheGuiThread() {
        SessionController session;
        MainWindow window(&session);
        QSignalSpy loaded(&session, &SessionController::modelLoaded);
        QSignalSpy generated(&session, &SessionController::generated);
        window.openModel(QString::fromStdString(dir_));
        QVERIFY(loaded.wait(20000));
        QVERIFY(session.hasModel());
        // Loading runs the prompt from the settings (a fresh test profile: "Once upon a time").
        QVERIFY(generated.count() > 0 || generated.wait(20000));
        auto r = generated.last().at(0).value<GenerationResult>();
        // The same continuation as the core API gives for the same prompt and settings.
        auto model = cs::loadModel(dir_);
        auto tok = cs::loadTokenizer(dir_);
        std::vector<int> ids = tok->encodePrompt(QSettings().value("prompt", "Once upon a time").toString().toStdString());
        cs::SamplingOptions s;
        s.maxNewTokens = 32;
        std::vector<long> expect = cs::generate(*model, std::vector<long>(ids.begin(), ids.end()), s);
        QCOMPARE(r.newTokens.size(), static_cast<qsizetype>(expect.size()));
        QCOMPARE(r.text.toStdString(), tok->decode(std::vector<int>(expect.begin(), expect.end())));
        QVERIFY(window.findChild<QPlainTextEdit*>("output")->toPlainText().endsWith(r.text));
    }

    void failedLoadShowsAnErrorAndKeepsTheWindowUsable() {
        SessionController session;
        MainWindow window(&session);
        window.show();
        QSignalSpy failed(&session, &SessionController::failed);
        window.openModel("/nonexistent/model-dir");
        QVERIFY(failed.wait(20000));
        QVERIFY(failed.last().at(0).toString().contains("/nonexistent/model-dir"));
        QTRY_VERIFY(window.findChild<QMessageBox*>() != nullptr);
        QVERIFY(!session.hasModel());
        // Still usable: a good model loads afterwards.
        QSignalSpy loaded(&session, &SessionController::modelLoaded);
        window.openModel(QString::fromStdString(dir_));
        QVERIFY(loaded.wait(20000));
        QVERIFY(session.hasModel());
    }

    void newerRequestSupersedesAndCancelKeepsThePreviousResult() {
        SessionController session;
        QSignalSpy loaded(&session, &SessionController::modelLoaded);
        session.loadModel(QString::fromStdString(dir_));
        QVERIFY(loaded.wait(20000));
        QSignalSpy generated(&session, &SessionController::generated);
        session.generate("first", 40, true, 1.0, 0);
        session.generate("second", 3, true, 1.0, 0);
        QVERIFY(generated.wait(20000));
        QTest::qWait(500);
        QCOMPARE(generated.count(), 1);  // the first result was dropped, not shown late
        QCOMPARE(generated.last().at(0).value<GenerationResult>().newTokens.size(), qsizetype(3));

        session.generate("cancelled", 60, true, 1.0, 0);
        session.cancel();
        QTest::qWait(1500);
        QCOMPARE(generated.count(), 1);  // nothing arrived after cancel
    }
};

QTEST_MAIN(TestGui)
#include "test_gui.moc"
