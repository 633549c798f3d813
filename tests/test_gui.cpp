// The window, its views and its async session layer, offscreen: a model loads and a prompt runs on
// a worker thread and fills the token stream; clicking a token moves every view's selection;
// figures export as valid PNG, SVG and PDF; a cancelled run leaves the previous result; a failed
// load shows an error and leaves the window usable; a saved session restores the same view; on a
// long prompt the logit lens fills in where it is looked at and only the picked head's attention
// pattern is held.
#include "TestSupport.h"

#include "analysis/PromptAnalysis.h"
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/Theme.h"
#include "ui/views/AttentionView.h"
#include "ui/views/HeatmapPlot.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/TokenLabel.h"
#include "ui/views/TokenStreamView.h"

#include <QAction>
#include <QFile>
#include <QIcon>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QRegularExpression>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStatusBar>
#include <QStandardPaths>
#include <QScrollBar>
#include <QSvgRenderer>
#include <QTableWidget>
#include <QtTest>

using namespace cstest;
using namespace cs::ui;

namespace {

// Loads the model into a fresh window and waits for the automatic first run.
struct Fixture {
    SessionController session;
    MainWindow window{&session};
    explicit Fixture(const std::string& dir) {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1200, 800);
        window.show();
        window.openModel(QString::fromStdString(dir));
        if (!finished.wait(30000)) qFatal("the first run did not finish");
    }
};

QByteArray readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

}  // namespace

class TestGui : public QObject {
    Q_OBJECT
    std::string dir_, longDir_;
    QString out_;

    // A prompt of `n` byte-level tokens (one per character), run with no continuation, the last
    // token selected; through the session, so that the window does not remember the prompt for
    // the next test's fixture (whose model has a shorter context).
    static void runLongPrompt(Fixture& f, int n) {
        f.session.restoreSelectionAfterNextRun(Selection());
        RunSettings s = f.window.currentSettings();
        s.prompt.clear();
        for (int i = 0; i < n; ++i) s.prompt += QChar('a' + (i * 7) % 26);
        s.maxNewTokens = 0;
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        f.session.run(s);
        QVERIFY(finished.wait(30000));
    }

private Q_SLOTS:
    void initTestCase() {
        // Never read or write the user's real settings.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeTest");
        QSettings().clear();
        dir_ = makeTempDir("gui");
        out_ = QString::fromStdString(makeTempDir("gui-out"));
        runReference("make_random_model.py", "--arch gpt2 --seed 31 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 64 --out " + shellQuote(dir_));
        writeByteLevelTokenizer(dir_);
        longDir_ = makeTempDir("gui-long");
        runReference("make_random_model.py", "--arch gpt2 --seed 32 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 256 --out " + shellQuote(longDir_));
        writeByteLevelTokenizer(longDir_);
    }

    void runningAPromptFillsTheTokenStream() {
        Fixture f(dir_);
        const RunResult& r = f.session.result();
        QVERIFY(r.analysis);
        // The same continuation as the core API gives for the same prompt and settings.
        auto model = cs::loadModel(dir_);
        auto tok = cs::loadTokenizer(dir_);
        std::vector<int> ids = tok->encodePrompt("Once upon a time");
        cs::SamplingOptions s;
        s.maxNewTokens = 32;
        std::vector<long> expect = cs::generate(*model, std::vector<long>(ids.begin(), ids.end()), s);
        QCOMPARE(r.analysis->length(), static_cast<int>(ids.size() + expect.size()));
        QCOMPARE(r.continuation.toStdString(), tok->decode(std::vector<int>(expect.begin(), expect.end())));
        // One chip per token, prompt and continuation, labelled with the token's text.
        TokenStreamView* view = f.window.tokenView();
        QCOMPARE(view->chipCount(), r.analysis->length());
        for (size_t i = 0; i < ids.size(); ++i) QCOMPARE(view->chipText(static_cast<int>(i)), tokenLabel(tok->tokenText(ids[i])));
        QVERIFY(view->chipText(4).contains(QChar(0x00B7)));  // the space of "Once upon", made visible
        QCOMPARE(tokenLabel("a\x01"), QString("<0x01>").prepend('a'));  // control bytes spelled out
        QVERIFY(view->chipRect(0).isValid());
        // Hovering shows the id and the top predictions with their probabilities.
        const QString tip = view->tooltipFor(2);
        QVERIFY2(tip.contains(QString("id %1").arg(ids[2])), qPrintable(tip));
        QCOMPARE(tip.count("%</td>"), 10);
        // The status bar names the model and the run's time.
        QVERIFY(f.window.findChild<QLabel*>("modelLabel")->text().contains("gpt2"));
        QVERIFY(f.window.findChild<QLabel*>("runTimeLabel")->text().contains("ms"));
    }

    void clickingATokenSelectsItInEveryView() {
        Fixture f(dir_);
        TokenStreamView* tokens = f.window.tokenView();
        // A new prompt selects its last prompt token (where the continuation's first prediction is made).
        QCOMPARE(f.window.attentionView()->selectedRow(), f.session.analysis()->promptLength - 1);
        QTest::mouseClick(tokens, Qt::LeftButton, Qt::NoModifier, tokens->chipRect(3).center());
        QCOMPARE(f.session.selection().position, 3);
        QCOMPARE(f.window.attentionView()->selectedRow(), 3);
        QCOMPARE(f.window.logitLensView()->plot()->highlightedColumn(), 3);
        // The attention view lists what position 3 attends to: only keys 0..3 (causal), sorted.
        auto* top = f.window.attentionView()->findChild<QTableWidget*>("attentionTop");
        QCOMPARE(top->rowCount(), 4);
        QVERIFY(top->item(0, 1)->text().toDouble() >= top->item(1, 1)->text().toDouble());
        // Clicking a heatmap row selects that query position.
        HeatmapPlot* plot = f.window.attentionView()->plot();
        plot->replot();
        QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, plot->cellCenter(2, 5));
        QCOMPARE(f.session.selection().position, 5);
        // Hover text carries the exact weight of the cell.
        const float w = f.session.analysis()->attentionWeight(0, 0, 5, 2);
        QVERIFY(f.window.attentionView()->hoverText(2, 5).endsWith(QString::number(w, 'f', 4)));
        // Keyboard: next / previous token, next layer.
        QTest::keyClick(&f.window, Qt::Key_Right, Qt::AltModifier);
        QCOMPARE(f.session.selection().position, 6);
        QTest::keyClick(&f.window, Qt::Key_Left, Qt::AltModifier);
        QTest::keyClick(&f.window, Qt::Key_Left, Qt::AltModifier);
        QCOMPARE(f.session.selection().position, 4);
        QTest::keyClick(&f.window, Qt::Key_Down, Qt::AltModifier);
        QCOMPARE(f.session.selection().layer, 1);
        QTest::keyClick(&f.window, Qt::Key_Down, Qt::AltModifier);
        QCOMPARE(f.session.selection().layer, 1);  // clamped: the model has two layers
        // The heatmap now shows layer 1's pattern.
        QCOMPARE(plot->cellValue(1, 4), double(f.session.analysis()->attentionWeight(1, 0, 4, 1)));
    }

    void exportsValidPngSvgAndPdf() {
        Fixture f(dir_);
        f.session.selectPosition(4);
        const std::vector<std::pair<QString, FigureSource*>> views{
            {"tokens", f.window.tokenView()}, {"attention", f.window.attentionView()}, {"lens", f.window.logitLensView()}};
        for (const auto& [name, view] : views) {
            const QString png = out_ + "/" + name + ".png", svg = out_ + "/" + name + ".svg", pdf = out_ + "/" + name + ".pdf";
            QCOMPARE(f.window.exportView(view, png), QString());
            QCOMPARE(f.window.exportView(view, svg), QString());
            QCOMPARE(f.window.exportView(view, pdf), QString());
            QImage image(png);
            QVERIFY2(!image.isNull(), qPrintable(png));
            QCOMPARE(image.size(), view->figureSize() * 3);
            // Not blank: a figure shows several colours across a grid of samples.
            QSet<QRgb> colours;
            for (int y = 0; y < 24; ++y)
                for (int x = 0; x < 24; ++x) colours.insert(image.pixel(x * image.width() / 24, y * image.height() / 24));
            QVERIFY2(colours.size() >= 3, qPrintable(name));
            QSvgRenderer renderer(svg);
            QVERIFY2(renderer.isValid(), qPrintable(svg));
            const QByteArray svgText = readAll(svg);
            QVERIFY2(svgText.contains("<text"), "SVG text should stay vector text");
            const QByteArray pdfBytes = readAll(pdf);
            QVERIFY(pdfBytes.startsWith("%PDF-"));
            QVERIFY(pdfBytes.trimmed().endsWith("%%EOF"));
        }
        // The token figure spells the tokens as text, so it stays searchable and sharp.
        QVERIFY(readAll(out_ + "/tokens.svg").contains(">O</text>"));
        // A figure stands alone: the attention figure names its layer and head, as the dock's header does.
        const int layer = f.session.selection().layer, head = f.session.selection().head;
        QVERIFY(readAll(out_ + "/attention.svg").contains(QString("Attention, layer %1, head %2").arg(layer).arg(head).toUtf8()));
        QVERIFY(readAll(out_ + "/lens.svg").contains("Logit lens"));
        // The run's data: every head's pattern and every lens row, as the analysis holds them.
        // Written on the model thread, reported by dataExported.
        QSignalSpy exported(&f.window, &cs::ui::MainWindow::dataExported);
        QCOMPARE(f.window.exportData(out_ + "/run.json"), QString());
        QVERIFY(exported.wait(60000));
        QCOMPARE(exported.at(0).at(0).toString(), out_ + "/run.json");
        QCOMPARE(exported.at(0).at(1).toString(), QString());
        const QJsonObject data = QJsonDocument::fromJson(readAll(out_ + "/run.json")).object();
        const cs::PromptAnalysis* a = f.session.analysis();
        QCOMPARE(data["ids"].toArray().size(), qsizetype(a->length()));
        QCOMPARE(data["attention"].toArray().size(), qsizetype(a->layers));
        QCOMPARE(data["attention"][1][1][4][2].toDouble(), double(a->attentionWeight(1, 1, 4, 2)));
        QCOMPARE(data["logit_lens"].toArray().size(), qsizetype(a->lens->rows()));
        QVERIFY(data["logit_lens"][0]["next_probability"][a->length() - 1].isNull());
        // A bad extension is an error naming the file, and writes nothing.
        const QString bad = out_ + "/figure.bmp";
        QVERIFY(f.window.exportView(f.window.attentionView(), bad).contains(bad));
        QVERIFY(!QFile::exists(bad));
        // A folder that is not there: the error says so, and nothing is left behind.
        const QString nowhere = out_ + "/no-such-folder/figure.svg";
        const QString why = f.window.exportView(f.window.attentionView(), nowhere);
        QVERIFY2(why.contains(nowhere) && why.contains("No such file or directory"), qPrintable(why));
    }

    void cancelledRunLeavesThePreviousResult() {
        Fixture f(dir_);
        auto before = f.session.result().analysis;
        const int chips = f.window.tokenView()->chipCount();
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        RunSettings s;
        s.prompt = "A different and longer prompt";
        s.maxNewTokens = 60;
        f.session.run(s);
        QVERIFY(f.session.isBusy());
        f.session.cancel();
        QVERIFY(!f.session.isBusy());
        QTest::qWait(1500);
        QCOMPARE(finished.count(), 0);
        QCOMPARE(f.session.result().analysis.get(), before.get());
        QCOMPARE(f.window.tokenView()->chipCount(), chips);
    }

    // A run's analysis is shown in stages (tokens, attention, lens), each from the same run; the
    // token stream has the new tokens from the first stage on, while the lens view keeps the last
    // complete analysis until the lens arrives. A cancel after a stage has been shown puts the
    // previous result back in every view, with its selected position.
    void stagesArriveInOrderAndACancelMidRunRestores() {
        Fixture f(dir_);
        f.session.setStagesAbove(0);  // this model's analysis is far quicker than the default threshold
        f.session.selectPosition(2);
        QTRY_VERIFY(f.window.logitLensView()->isFilled());
        const QString lensHoverBefore = f.window.logitLensView()->hoverText(0, 0);
        const int chips = f.window.tokenView()->chipCount();
        struct Seen {
            cs::AnalysisStage stage;
            int run, chips;
            bool lensFromBefore;
        };
        std::vector<Seen> seen;
        auto c = connect(&f.session, &SessionController::shownAnalysisChanged, this, [&] {
            const auto& a = f.session.shownAnalysis();
            seen.push_back({a->stage, f.session.shownRun(), f.window.tokenView()->chipCount(),
                            f.window.logitLensView()->table()->rowCount() > 0 &&
                                f.window.logitLensView()->hoverText(0, 0) == lensHoverBefore});
        });
        RunSettings s;
        s.prompt = "Tom had a big red ball and a small blue kite";
        s.maxNewTokens = 0;
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        f.session.run(s);
        QVERIFY(finished.wait(20000));
        QCOMPARE(seen.size(), size_t(3));
        QCOMPARE(int(seen[0].stage), int(cs::AnalysisStage::Tokens));
        QCOMPARE(int(seen[1].stage), int(cs::AnalysisStage::Forward));
        QCOMPARE(int(seen[2].stage), int(cs::AnalysisStage::Complete));
        QCOMPARE(seen[0].run, seen[2].run);
        const int newChips = f.session.analysis()->length();
        QVERIFY(newChips != chips);
        QCOMPARE(seen[0].chips, newChips);   // tokens shown at the first stage
        QVERIFY(seen[0].lensFromBefore);     // the lens still the previous run's until its stage
        QVERIFY(seen[1].lensFromBefore);
        QVERIFY(!seen[2].lensFromBefore);
        QVERIFY(f.session.shownAnalysis() == f.session.result().analysis);
        disconnect(c);

        // Cancelled as soon as its tokens are on screen.
        auto complete = f.session.result().analysis;
        f.session.selectPosition(3);
        int tokensShown = 0;
        c = connect(&f.session, &SessionController::shownAnalysisChanged, this, [&] {
            if (f.session.shownAnalysis()->stage != cs::AnalysisStage::Tokens) return;
            ++tokensShown;
            QCOMPARE(f.window.tokenView()->chipCount(), f.session.shownAnalysis()->length());
            f.session.cancel();
        });
        s.prompt = "Once upon a time there was a dog";
        QSignalSpy finished2(&f.session, &SessionController::runFinished);
        f.session.run(s);
        QTRY_COMPARE_WITH_TIMEOUT(tokensShown, 1, 20000);
        QTest::qWait(300);
        disconnect(c);
        QCOMPARE(finished2.count(), 0);
        QVERIFY(f.session.shownAnalysis() == complete);
        QCOMPARE(f.window.tokenView()->chipCount(), complete->length());
        QCOMPARE(f.session.selection().position, 3);
        QCOMPARE(f.window.attentionView()->selectedRow(), 3);
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
        // Neither remembered for the next launch nor left in File > Open Recent.
        QVERIFY(!QSettings().value("recentModels").toStringList().contains("/nonexistent/model-dir"));
        QVERIFY(QSettings().value("lastModel").toString() != "/nonexistent/model-dir");
        // Still usable: a good model loads and runs afterwards.
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.openModel(QString::fromStdString(dir_));
        QVERIFY(finished.wait(20000));
        QVERIFY(window.tokenView()->chipCount() > 0);
    }

    void dataExportErrorsNameTheFile() {
        Fixture f(dir_);
        QSignalSpy exported(&f.window, &MainWindow::dataExported);
        const QString bad = out_ + "/no-such-folder/run.json";
        QCOMPARE(f.window.exportData(bad), QString());
        QVERIFY(exported.wait(60000));
        QVERIFY2(exported.at(0).at(1).toString().contains(bad), qPrintable(exported.at(0).at(1).toString()));
        QTRY_VERIFY(f.window.findChild<QMessageBox*>() != nullptr);
        QVERIFY(!QFile::exists(bad));
        // Before any run there is nothing to export, said at once.
        SessionController empty;
        MainWindow window(&empty);
        QVERIFY(window.exportData(out_ + "/none.json").contains("run a prompt first"));
    }

    void weightPrecisionReloadsAndShowsInTheStatusBar() {
        Fixture f(dir_);
        auto* label = f.window.findChild<QLabel*>("modelLabel");
        QVERIFY(label);
        QVERIFY2(label->text().contains("f32"), qPrintable(label->text()));
        const double fp32Bytes = double(f.session.model()->config().weightBytes);
        QAction* bf16 = nullptr;
        for (QAction* a : f.window.findChildren<QAction*>())
            if (a->data().toString() == "bf16") bf16 = a;
        QVERIFY(bf16);
        // The menu reloads the open model in bf16, remembers the choice, and reruns the prompt.
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        bf16->trigger();
        QVERIFY(finished.wait(30000));
        QCOMPARE(f.session.weightPrecision(), cs::WeightPrecision::BF16);
        QCOMPARE(f.session.model()->config().weightDtype, std::string("bf16"));
        QVERIFY2(label->text().contains("bf16"), qPrintable(label->text()));
        QCOMPARE(QSettings().value("weightPrecision").toString(), QString("bf16"));
        // Matrices halve; the small fp32 rest (norms, biases) does not.
        const double bf16Bytes = double(f.session.model()->config().weightBytes);
        QVERIFY2(bf16Bytes < 0.6 * fp32Bytes && bf16Bytes > 0.45 * fp32Bytes,
                 qPrintable(QString("%1 vs %2").arg(bf16Bytes).arg(fp32Bytes)));
        QVERIFY(f.window.tokenView()->chipCount() > 0);
        // A new window starts with the remembered choice.
        {
            SessionController session;
            MainWindow window(&session);
            QCOMPARE(session.weightPrecision(), cs::WeightPrecision::BF16);
        }
        QSettings().setValue("weightPrecision", "auto");
    }

    void aNewPromptSelectsItsLastPromptToken() {
        Fixture f(dir_);
        // The same prompt again keeps the position the user picked.
        f.session.selectPosition(1);
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        f.window.runPrompt();
        QVERIFY(finished.wait(20000));
        QCOMPARE(f.session.selection().position, 1);
        // Another prompt lands on its own last prompt token, not the old index.
        RunSettings s = f.window.currentSettings();
        s.prompt = "A new and longer prompt";
        f.window.applySettings(s);
        f.window.runPrompt();
        QVERIFY(finished.wait(20000));
        QCOMPARE(f.session.selection().position, f.session.result().analysis->promptLength - 1);
        QVERIFY(f.session.result().analysis->promptLength > 2);
        // An empty prompt is not run: the status bar says why and the last result stays.
        s.prompt.clear();
        f.window.applySettings(s);
        f.window.runPrompt();
        QVERIFY(!finished.wait(500));
        QVERIFY(f.window.statusBar()->currentMessage().contains("prompt"));
        QCOMPARE(f.session.result().settings.prompt, QString("A new and longer prompt"));
    }

    void generationSaysWhenTheContextStopsIt() {
        Fixture f(dir_);  // context 64
        auto* spin = f.window.findChild<QSpinBox*>("maxNewTokens");
        QVERIFY(spin);
        QCOMPARE(spin->maximum(), 64);  // more could never be generated
        RunSettings s = f.window.currentSettings();
        s.prompt = "ten tokens";
        s.maxNewTokens = 60;
        f.window.applySettings(s);
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        f.window.runPrompt();
        QVERIFY(finished.wait(20000));
        QCOMPARE(f.session.result().analysis->length(), 64);
        auto* time = f.window.findChild<QLabel*>("runTimeLabel");
        QVERIFY2(time->text().contains("context of 64"), qPrintable(time->text()));
        // A continuation that fits says nothing of the context.
        s.maxNewTokens = 3;
        f.window.applySettings(s);
        f.window.runPrompt();
        QVERIFY(finished.wait(20000));
        QVERIFY(!time->text().contains("context"));
    }

    // A bare checkpoint (no tokenizer files) opens with a prompt of token ids and runs; ids work
    // for any model; after a model change no plot keeps the old prompt's labels or layers.
    void aModelWithoutATokenizerTakesTokenIds() {
        const std::string bare = makeTempDir("gui-bare");
        runReference("make_random_model.py", "--arch gpt2 --seed 33 --layers 3 --d-model 32 --heads 2 --vocab 256 --ctx 64 --out " + shellQuote(bare));
        Fixture f(dir_);
        QVERIFY(!f.window.attentionView()->plot()->columnLabels().isEmpty());
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        QSignalSpy failed(&f.session, &SessionController::failed);
        f.window.openModel(QString::fromStdString(bare));
        QVERIFY(finished.wait(30000));
        QVERIFY(f.session.takesOnlyTokenIds());
        QVERIFY2(f.window.currentSettings().prompt.startsWith('#'), qPrintable(f.window.currentSettings().prompt));
        QCOMPARE(f.session.result().analysis->layers, 3);
        // Ids as typed, labelled as ids, the continuation written as ids too.
        RunSettings s = f.window.currentSettings();
        s.prompt = "#5 #17  #200";
        s.maxNewTokens = 2;
        f.window.applySettings(s);
        f.window.runPrompt();
        QVERIFY(finished.wait(30000));
        const RunResult& r = f.session.result();
        QCOMPARE(r.analysis->promptLength, 3);
        QCOMPARE(r.analysis->ids[0], 5);
        QCOMPARE(r.analysis->ids[2], 200);
        QCOMPARE(f.window.tokenView()->chipText(1), QString("#17"));
        QVERIFY2(QRegularExpression("^ #\\d+ #\\d+$").match(r.continuation).hasMatch(), qPrintable(r.continuation));
        // Text cannot run here, and an id outside the vocabulary is named.
        for (const char* bad : {"Once upon a time", "#300"}) {
            s.prompt = bad;
            f.window.applySettings(s);
            f.window.runPrompt();
            QVERIFY(failed.wait(30000));
            const QString why = failed.last().at(0).toString();
            QVERIFY2(why.contains(s.prompt.startsWith('#') ? "#300" : "token ids"), qPrintable(why));
        }
        QCOMPARE(f.session.result().analysis->ids[0], 5);  // the last good run stays
        // Back to a model with a tokenizer and no prompt to run: the plots are empty, not the
        // 3-layer model's prompt.
        s.prompt.clear();
        f.window.applySettings(s);
        QSignalSpy loaded(&f.session, &SessionController::modelLoaded);
        f.window.openModel(QString::fromStdString(dir_));
        QVERIFY(loaded.wait(30000));
        QVERIFY(f.window.attentionView()->plot()->columnLabels().isEmpty());
        QVERIFY(f.window.logitLensView()->plot()->rowLabels().isEmpty());
        QVERIFY(!f.session.takesOnlyTokenIds());
        QSettings().setValue("prompt", "Once upon a time");  // the next fixture's first run must run
    }

    void helpNamesTheVersionAndEveryShortcut() {
        SessionController session;
        MainWindow window(&session);
        const QString about = window.aboutText();
        QVERIFY2(about.contains("circuitscope 0.1.0") && about.contains("LibTorch") && about.contains("Qt"), qPrintable(about));
        // Read from the menus: a shortcut added anywhere shows up here.
        const QString keys = window.shortcutsText();
        for (const char* want : {"Ctrl+Return", "Ctrl+Alt+M", "Ctrl+Shift+E", "Ctrl+Shift+M"})
            QVERIFY2(keys.contains(want), want);
        QVERIFY(keys.contains("Run &gt; Run Prompt"));
        // The window icon is built in (the SVG the .deb installs for the desktop).
        QVERIFY(QFile::exists(":/circuitscope.svg"));
        QVERIFY(!QIcon(":/circuitscope.svg").pixmap(32, 32).isNull());
    }

    void newerRequestSupersedesAnOlderOne() {
        SessionController session;
        QSignalSpy loaded(&session, &SessionController::modelLoaded);
        session.loadModel(QString::fromStdString(dir_));
        QVERIFY(loaded.wait(20000));
        QSignalSpy finished(&session, &SessionController::runFinished);
        RunSettings first, second;
        first.prompt = "first";
        first.maxNewTokens = 40;
        second.prompt = "second";
        second.maxNewTokens = 3;
        session.run(first);
        session.run(second);
        QVERIFY(finished.wait(20000));
        QTest::qWait(500);
        QCOMPARE(finished.count(), 1);  // the first result was dropped, not shown late
        QCOMPARE(session.result().settings.prompt, QString("second"));
    }

    void savedSessionRestoresTheSameView() {
        const QString file = out_ + "/s.csession";
        std::vector<int> ids;
        {
            Fixture f(dir_);
            RunSettings s = f.window.currentSettings();
            s.prompt = "Hello there";
            s.maxNewTokens = 5;
            f.window.applySettings(s);
            QSignalSpy finished(&f.session, &SessionController::runFinished);
            f.window.runPrompt();
            QVERIFY(finished.wait(20000));
            f.session.select(3, 1, 1);
            f.session.selectLensToken(101);
            ids = f.session.analysis()->ids;
            QCOMPARE(f.window.saveSession(file), QString());
        }
        QSettings().clear();  // nothing may come from remembered settings
        SessionController session;
        MainWindow window(&session);
        window.show();
        QSignalSpy selection(&session, &SessionController::selectionChanged);
        QCOMPARE(window.openSession(file), QString());
        QTRY_VERIFY_WITH_TIMEOUT(session.analysis() != nullptr, 20000);
        QTRY_COMPARE(session.selection().position, 3);
        QCOMPARE(session.selection().layer, 1);
        QCOMPARE(session.selection().head, 1);
        QCOMPARE(session.selection().lensToken, 101);
        QVERIFY(window.logitLensView()->findChild<QLabel*>()->text().contains("id 101"));
        QCOMPARE(session.analysis()->ids, ids);
        QCOMPARE(window.currentSettings().prompt, QString("Hello there"));
        QCOMPARE(window.attentionView()->selectedRow(), 3);
        // A broken file is an error naming it, and the window keeps its state.
        const QString broken = out_ + "/broken.csession";
        QFile b(broken);
        QVERIFY(b.open(QIODevice::WriteOnly));
        b.write("{\"format\": \"something-else\"}");
        b.close();
        QVERIFY(window.openSession(broken).contains(broken));
        QCOMPARE(session.selection().position, 3);
    }

    void logitLensTracksAChosenToken() {
        Fixture f(dir_);
        LogitLensView* lens = f.window.logitLensView();
        HeatmapPlot* plot = lens->plot();
        auto model = cs::loadModel(dir_);
        auto compareWith = [&](const std::vector<std::vector<float>>& expect) {
            QTRY_VERIFY(lens->isFilled());  // every position is on screen at this length
            const cs::PromptAnalysis* a = f.session.analysis();
            QCOMPARE(plot->rows(), static_cast<int>(expect.size()));
            for (int r = 0; r < plot->rows(); ++r)
                for (int t = 0; t + 1 < a->length(); ++t)
                    QVERIFY2(std::abs(plot->cellValue(t, r) - expect[r][t]) < 1e-6, qPrintable(QString("row %1 t %2").arg(r).arg(t)));
        };
        // Typed text that is one token ("e", id 101 in the byte-level vocabulary).
        QLineEdit* edit = lens->trackEdit();
        edit->setFocus();
        QTest::keyClicks(edit, "e");
        QTest::keyClick(edit, Qt::Key_Return);
        QCOMPARE(f.session.selection().lensToken, 101);
        compareWith(cs::lensProbabilities(*model, *f.session.analysis(), 101));
        QVERIFY(lens->hoverText(2, 1).contains("P(e)"));
        // Several tokens are refused with the reason; the tracked token stays.
        edit->selectAll();
        QTest::keyClicks(edit, "abc");
        QTest::keyClick(edit, Qt::Key_Return);
        QVERIFY2(lens->trackError()->text().contains("3 tokens"), qPrintable(lens->trackError()->text()));
        QCOMPARE(f.session.selection().lensToken, 101);
        // An id, and a new run keeps tracking it.
        edit->selectAll();
        QTest::keyClicks(edit, "#7");
        QTest::keyClick(edit, Qt::Key_Return);
        QCOMPARE(f.session.selection().lensToken, 7);
        RunSettings s = f.window.currentSettings();
        s.prompt = "Another prompt";
        f.window.applySettings(s);
        QSignalSpy finished(&f.session, &SessionController::runFinished);
        f.window.runPrompt();
        QVERIFY(finished.wait(20000));
        QCOMPARE(f.session.selection().lensToken, 7);
        compareWith(cs::lensProbabilities(*model, *f.session.analysis(), 7));
        // Double-clicking a prediction in the table tracks that token.
        QTableWidget* table = lens->table();
        QTRY_VERIFY(lens->isFilled());
        QTableWidgetItem* item = table->item(0, 3);
        QVERIFY(item);
        const int id = item->data(Qt::UserRole).toInt();
        table->scrollToItem(item);
        const QPoint at = table->visualItemRect(item).center();
        // A real double-click is a click and then a double-click event; Qt 6's mouseDClick sends only the second.
        QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier, at);
        QTest::mouseDClick(table->viewport(), Qt::LeftButton, Qt::NoModifier, at);
        QCOMPARE(f.session.selection().lensToken, id);
        compareWith(cs::lensProbabilities(*model, *f.session.analysis(), id));
        // Clearing the box goes back to the actual next token.
        edit->clear();
        QCOMPARE(f.session.selection().lensToken, -1);
        const cs::PromptAnalysis* a = f.session.analysis();
        compareWith(a->lens->nextProbabilities());
    }

    // A prompt longer than the heatmap shows: only the positions on screen (and the selected one)
    // are computed, on the worker, and scrolling or selecting elsewhere fills those in; the cells
    // equal the ones an eager analysis computes.
    void logitLensFillsInWhereItIsLooked() {
        Fixture f(longDir_);
        cs::AnalysisOptions onDemand;
        onDemand.lensUpFrontMacs = 0;  // this tiny model's whole lens would otherwise come with the run
        f.session.setAnalysisOptions(onDemand);
        runLongPrompt(f, 250);
        LogitLensView* view = f.window.logitLensView();
        HeatmapPlot* plot = view->plot();
        const cs::PromptAnalysis* a = f.session.analysis();
        const int T = a->length(), R = a->lens->rows();
        std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(longDir_);
        cs::AnalysisOptions eager;
        eager.eagerLens = true;
        const cs::PromptAnalysis all = cs::analyzeTokens(cs::loadModel(longDir_), tok, a->ids, a->promptLength, eager);
        const auto expect = all.lens->nextProbabilities();
        auto cellsMatch = [&](int t) {
            for (int r = 0; r < R; ++r)
                if (t + 1 < T && std::abs(plot->cellValue(t, r) - expect[r][t]) > 1e-6) return false;
            return true;
        };
        // The last token is selected: the screen ends there, and that is all the lens computed.
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
        // As many positions as fit the dock with room for each label, within the limits.
        const int shown = view->shownPositions();
        QVERIFY2(shown >= LogitLensView::kMinShownPositions && shown <= LogitLensView::kMaxShownPositions,
                 qPrintable(QString::number(shown)));
        QVERIFY2(shown == LogitLensView::kMinShownPositions || plot->width() / shown >= LogitLensView::kMinCellWidth,
                 qPrintable(QString("%1 positions in %2 px").arg(shown).arg(plot->width())));
        QVERIFY(T > 3 * shown);
        QCOMPARE(view->firstShownPosition(), T - shown);
        QVERIFY(view->positionScroll()->isVisible());
        QCOMPARE(a->lens->computedCount(), shown);
        QVERIFY(std::isnan(plot->cellValue(0, 1)));
        for (int t = T - shown; t < T; ++t) QVERIFY2(cellsMatch(t), qPrintable(QString("position %1").arg(t)));
        // Scrolled to the start: those positions are computed and drawn.
        view->positionScroll()->setValue(0);
        QCOMPARE(view->firstShownPosition(), 0);
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
        for (int t = 0; t < shown; ++t) QVERIFY2(cellsMatch(t), qPrintable(QString("position %1").arg(t)));
        QCOMPARE(a->lens->computedCount(), 2 * shown);
        // Selecting a position off screen brings it on screen; the table lists its predictions.
        const int pos = T / 2 + 3;
        f.session.selectPosition(pos);
        QVERIFY(view->firstShownPosition() <= pos && pos < view->firstShownPosition() + shown);
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
        QVERIFY(cellsMatch(pos));
        QCOMPARE(view->table()->item(0, 2)->data(Qt::UserRole).toInt(), all.lens->column(pos)->top.back()[0].id);
        QVERIFY(a->lens->computedCount() < T);
        QVERIFY(!view->hoverText(pos, 1).contains("computing"));
        // A figure shows the screen's positions, complete.
        QCOMPARE(view->figureSize().width(), std::clamp(shown * 22, 300, 1400) + 170);
        QCOMPARE(f.window.exportView(view, out_ + "/long-lens.png"), QString());
        // A narrower dock shows fewer positions, the selected one still on screen.
        const int wide = plot->width();
        plot->parentWidget()->setFixedWidth(plot->parentWidget()->width() / 2);
        QTRY_VERIFY(plot->width() < wide);
        QTRY_VERIFY2(view->shownPositions() == LogitLensView::kMinShownPositions || view->shownPositions() < shown,
                     qPrintable(QString("%1 positions in %2 px").arg(view->shownPositions()).arg(plot->width())));
        QVERIFY(view->firstShownPosition() <= pos && pos < view->firstShownPosition() + view->shownPositions());
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
    }

    // Past the byte budget a run holds no attention pattern: the picked head is computed on the
    // worker when the view asks for it, and it is the only one held.
    void longPromptHoldsOnlyThePickedHead() {
        Fixture f(longDir_);
        cs::AnalysisOptions budget;
        budget.attentionHoldBytes = 100'000;  // 2 layers x 2 heads x 150^2 floats are 360 kB
        f.session.setAnalysisOptions(budget);
        runLongPrompt(f, 150);
        AttentionView* view = f.window.attentionView();
        HeatmapPlot* plot = view->plot();
        const cs::PromptAnalysis* a = f.session.analysis();
        QVERIFY(!a->attention->holdsAll());
        std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(longDir_);
        const cs::PromptAnalysis all = cs::analyzeTokens(cs::loadModel(longDir_), tok, a->ids, a->promptLength);
        QVERIFY(all.attention->holdsAll());
        const int T = a->length();
        auto drawnIs = [&](int layer, int head) {
            const cs::HeadPattern expect = all.attention->held(layer, head);
            for (int q = 0; q < T; q += 7)
                for (int k = 0; k <= q; k += 5)
                    if (std::abs(plot->cellValue(k, q) - expect.weight(q, k)) > 1e-6) return false;
            return true;
        };
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
        QCOMPARE(a->attention->heldHeads(), (std::vector<std::pair<int, int>>{{0, 0}}));
        QVERIFY(drawnIs(0, 0));
        f.session.select(T - 1, 1, 1);
        QTRY_VERIFY_WITH_TIMEOUT(view->isFilled(), 20000);
        QCOMPARE(a->attention->heldHeads(), (std::vector<std::pair<int, int>>{{1, 1}}));
        QVERIFY(drawnIs(1, 1));
        QVERIFY(view->hoverText(3, T - 1).endsWith(QString::number(all.attention->held(1, 1).weight(T - 1, 3), 'f', 4)));
        QCOMPARE(view->topTable()->rowCount(), 8);
        // The thumbnails draw from the summaries: nothing more is held for them.
        QCOMPARE(a->attention->heldHeads().size(), size_t(1));
        QCOMPARE(f.window.exportView(view, out_ + "/long-attention.svg"), QString());
    }

    // The screen blits each chip's background from a cache; a figure draws the same chips as
    // vectors. At the same width both must give the same picture (outlines where the text is).
    void screenChipsMatchTheirVectorDrawing() {
        Fixture f(dir_);
        applyTheme(ThemeKind::Light);  // what figures use
        TokenStreamView view(&f.session);
        const int width = view.figureSize().width();
        view.resize(width, view.heightForWidth(width));
        const QImage screen = view.grab().toImage().convertToFormat(QImage::Format_RGB32);
        QImage figure(screen.size(), QImage::Format_RGB32);
        {
            QCPPainter p(&figure);
            view.paintFigure(p, figure.size());
        }
        QVERIFY(view.chipCount() > 10);
        long differing = 0, inked = 0;
        const QRgb background = figure.pixel(0, 0);
        for (int y = 0; y < figure.height(); ++y)
            for (int x = 0; x < figure.width(); ++x) {
                const QRgb a = screen.pixel(x, y), b = figure.pixel(x, y);
                if (b != background) ++inked;
                const int d = std::max({std::abs(qRed(a) - qRed(b)), std::abs(qGreen(a) - qGreen(b)), std::abs(qBlue(a) - qBlue(b))});
                if (d > 48) ++differing;
            }
        QVERIFY2(inked > 1000, "the figure drew no chips");
        // Antialiased edges may round differently; a chip a pixel off moves every outline.
        QVERIFY2(differing * 200 < inked, qPrintable(QString("%1 of %2 drawn pixels differ").arg(differing).arg(inked)));
    }

    void darkThemeChangesThePalette() {
        Fixture f(dir_);
        const QColor light = QApplication::palette().color(QPalette::Base);
        QTest::keyClick(&f.window, Qt::Key_T, Qt::ControlModifier | Qt::ShiftModifier);
        QCOMPARE(currentTheme(), ThemeKind::Dark);
        const QColor dark = QApplication::palette().color(QPalette::Base);
        QVERIFY(dark.lightness() < light.lightness() - 100);
        // Readable: text contrasts with its background.
        QVERIFY(std::abs(QApplication::palette().color(QPalette::Text).lightness() - dark.lightness()) > 150);
        applyTheme(ThemeKind::Light);
    }
};

QTEST_MAIN(TestGui)
#include "test_gui.moc"
