// The window, its views and its async session layer, offscreen: a model loads and a prompt runs on
// a worker thread and fills the token stream; clicking a token moves every view's selection;
// figures export as valid PNG, SVG and PDF; a cancelled run leaves the previous result; a failed
// load shows an error and leaves the window usable; a saved session restores the same view.
#include "TestSupport.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/Theme.h"
#include "ui/views/AttentionView.h"
#include "ui/views/HeatmapPlot.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/TokenLabel.h"
#include "ui/views/TokenStreamView.h"

#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMessageBox>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
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
    std::string dir_;
    QString out_;

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
        const int last = f.session.analysis()->length() - 1;
        QCOMPARE(f.window.attentionView()->selectedRow(), last);  // a new run selects its last token
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
        // The run's data: every head's pattern and every lens row, as the analysis holds them.
        QCOMPARE(f.window.exportData(out_ + "/run.json"), QString());
        const QJsonObject data = QJsonDocument::fromJson(readAll(out_ + "/run.json")).object();
        const cs::PromptAnalysis* a = f.session.analysis();
        QCOMPARE(data["ids"].toArray().size(), qsizetype(a->length()));
        QCOMPARE(data["attention"].toArray().size(), qsizetype(a->layers));
        QCOMPARE(data["attention"][1][1][4][2].toDouble(), double(a->attentionWeight(1, 1, 4, 2)));
        QCOMPARE(data["logit_lens"].toArray().size(), qsizetype(a->lensRows.size()));
        QVERIFY(data["logit_lens"][0]["next_probability"][a->length() - 1].isNull());
        // A bad extension is an error naming the file, and writes nothing.
        const QString bad = out_ + "/figure.bmp";
        QVERIFY(f.window.exportView(f.window.attentionView(), bad).contains(bad));
        QVERIFY(!QFile::exists(bad));
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
        // Still usable: a good model loads and runs afterwards.
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.openModel(QString::fromStdString(dir_));
        QVERIFY(finished.wait(20000));
        QVERIFY(window.tokenView()->chipCount() > 0);
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
