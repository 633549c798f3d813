// The Patching dock, offscreen, on a small random GPT-2 with a byte-level tokenizer: Run patches
// on the session's model thread and the heatmap holds exactly what runActivationPatching gives
// for the same request (residual stream and heads); hovering a cell gives its exact values;
// clicking a cell moves the session's selection to that layer, position and head; the figure
// exports as valid PNG, SVG and PDF and the JSON carries the grid; prompts of different token
// lengths give one clear error and leave the dock usable; Cancel stops a run and keeps the last
// grid. Features of an attached SAE are checked on the demo, whose SAEs come attached.
#include "TestSupport.h"

#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "patching/ActivationPatching.h"
#include "runtime/DemoBundle.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/figures/PatchingFigure.h"
#include "ui/views/PatchingPlot.h"
#include "ui/views/PatchingView.h"

#include <QComboBox>
#include <QDockWidget>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QPushButton>
#include <QSemaphore>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QSvgRenderer>
#include <QtTest>

using namespace cstest;
using namespace cs::ui;

namespace {

constexpr int kWaitMs = 60000;
// Byte-level tokens: the prompts differ in one byte (position 4), so they have the same length.
const QString kClean = QStringLiteral("the cat sat on the");
const QString kCorrupted = QStringLiteral("the dog sat on the");

struct Fixture {
    SessionController session;
    MainWindow window{&session};
    explicit Fixture(const std::string& dir) {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1200, 800);
        window.applySettings(RunSettings{kClean, 4, false, 1.0, 0});
        window.show();
        window.openModel(QString::fromStdString(dir));
        if (!finished.wait(kWaitMs)) qFatal("the first run did not finish");
        window.patchingDock()->show();
        window.patchingDock()->raise();
    }
    PatchingView* view() const { return window.patchingView(); }
    // Sets the fields, presses Run and waits for the grid.
    bool run(const QString& site) {
        view()->setPrompts(kClean, kCorrupted, "m", "w");
        view()->siteBox()->setCurrentIndex(view()->siteBox()->findData(site));
        QSignalSpy done(view(), &PatchingView::patchingFinished);
        QTest::mouseClick(view()->runButton(), Qt::LeftButton);
        return done.wait(kWaitMs);
    }
};

QByteArray readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

}  // namespace

class TestPatchingGui : public QObject {
    Q_OBJECT
    std::string dir_;
    QString out_;
    std::shared_ptr<cs::Transformer> model_;
    std::shared_ptr<cs::Tokenizer> tok_;

    // What core gives for the request the dock makes from its fields.
    cs::PatchGrid corePatch(cs::PatchSite site) const {
        cs::PatchRequest r;
        r.cleanIds = tok_->encodePrompt(kClean.toStdString());
        r.corruptedIds = tok_->encodePrompt(kCorrupted.toStdString());
        r.answerId = tok_->encode("m").at(0);
        r.wrongId = tok_->encode("w").at(0);
        r.site = site;
        return cs::runActivationPatching(*model_, r);
    }

    static void compareGrids(const PatchingPlot* plot, const cs::PatchGrid& want) {
        const cs::PatchGrid* got = plot->grid();
        QVERIFY(got);
        QCOMPARE(got->rows, want.rows);
        QCOMPARE(got->columns, want.columns);
        QCOMPARE(got->rowLabels, want.rowLabels);
        QCOMPARE(got->cleanValue, want.cleanValue);
        QCOMPARE(got->corruptedValue, want.corruptedValue);
        for (int r = 0; r < want.rows; ++r)
            for (int c = 0; c < want.columns; ++c) {
                // The cell drawn is the value core computed for it.
                QCOMPARE(got->at(r, c), want.at(r, c));
                QCOMPARE(plot->cellValue(c, r), double(want.at(r, c)));
            }
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopePatchingTest");
        QSettings().clear();
        QSettings().setValue("autoIndexDemo", false);  // the demo fixture needs no feature store
        dir_ = makeTempDir("patching-gui");
        out_ = QString::fromStdString(makeTempDir("patching-gui-out"));
        runReference("make_random_model.py",
                     "--arch gpt2 --seed 41 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 64 --out " + shellQuote(dir_));
        writeByteLevelTokenizer(dir_);
        model_ = cs::loadModel(dir_);
        tok_ = cs::loadTokenizer(dir_);
    }

    void runShowsCoresGridAndClickSelects() {
        Fixture f(dir_);
        PatchingPlot* plot = f.view()->plot();
        // Tabbed with the feature docks: a wide minimum would squeeze the heatmaps beside them.
        QVERIFY2(f.view()->minimumSizeHint().width() <= 460, qPrintable(QString::number(f.view()->minimumSizeHint().width())));
        QVERIFY(f.run("resid"));
        const cs::PatchGrid want = corePatch(cs::PatchSite::Resid);
        QCOMPARE(want.rows, model_->config().nLayers + 1);  // resid_pre of each layer, then resid_post
        QCOMPARE(want.columns, static_cast<int>(kClean.size()));
        compareGrids(plot, want);
        // The clean and corrupted metric are in the status line; the position axis shows tokens.
        QVERIFY2(f.view()->statusLabel()->text().contains(QString::number(want.cleanValue, 'g', 5)),
                 qPrintable(f.view()->statusLabel()->text()));
        QCOMPARE(plot->columnLabel(4), QStringLiteral("c / d"));
        QCOMPARE(plot->columnLabel(0), QStringLiteral("t"));

        // Hover: the exact normalised and raw values of the cell under the mouse. (Laid out as
        // painted first: a user only points at a plot on screen.)
        plot->replot();
        const int row = 1, col = 4;
        const QString hover = plot->hoverText(col, row);
        QVERIFY2(hover.contains(QString::number(double(want.at(row, col)), 'g', 6)), qPrintable(hover));
        QVERIFY2(hover.contains(QString::number(want.raw[size_t(row * want.columns + col)], 'g', 6)), qPrintable(hover));
        QVERIFY2(hover.contains(QString::fromStdString(want.rowLabels[size_t(row)])), qPrintable(hover));
        int hc = -1, hr = -1;
        QVERIFY(plot->cellAt(plot->cellCenter(col, row), hc, hr));
        QCOMPARE(hc, col);
        QCOMPARE(hr, row);
        QSignalSpy hovered(plot, &PatchingPlot::cellHovered);
        QTest::mouseMove(plot, plot->cellCenter(col, row));
        QTRY_VERIFY(!hovered.isEmpty());
        QCOMPARE(hovered.last().at(0).toInt(), col);
        QCOMPARE(hovered.last().at(1).toInt(), row);

        // A click opens that layer and position in the other views.
        QSignalSpy selection(&f.session, &SessionController::selectionChanged);
        QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, plot->cellCenter(col, row));
        QCOMPARE(f.session.selection().layer, want.rowLayer[size_t(row)]);
        QCOMPARE(f.session.selection().position, want.columnPosition[size_t(col)]);
        QVERIFY(!selection.isEmpty());

        // Heads: layers x heads; a click selects that layer and head.
        QVERIFY(f.run("heads"));
        const cs::PatchGrid heads = corePatch(cs::PatchSite::Heads);
        QCOMPARE(heads.rows, model_->config().nLayers);
        QCOMPARE(heads.columns, model_->config().nHeads);
        compareGrids(plot, heads);
        plot->replot();
        QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, plot->cellCenter(1, 1));
        QCOMPARE(f.session.selection().layer, 1);
        QCOMPARE(f.session.selection().head, 1);
    }

    // Features, on the demo (its SAEs come attached): the dock patches the SAE picked in its box.
    void featuresOfAnAttachedSaeOnTheDemo() {
        Fixture f(cs::resolveModelDir("demo"));
        PatchingView* v = f.view();
        const QString clean = QStringLiteral("Once upon a time, there was a little girl. One day,");
        const QString corrupted = QStringLiteral("Once upon a time, there was a little boy. One day,");
        v->setPrompts(clean, corrupted, " she", " he");
        v->siteBox()->setCurrentIndex(v->siteBox()->findData("features"));
        QVERIFY(v->saeBox()->isVisibleTo(v));
        const int sae = v->saeBox()->findData("res-L2");
        QVERIFY2(sae >= 0, "the demo's res-L2 is not in the SAE box");
        v->saeBox()->setCurrentIndex(sae);
        QSignalSpy done(v, &PatchingView::patchingFinished);
        QTest::mouseClick(v->runButton(), Qt::LeftButton);
        QVERIFY(done.wait(kWaitMs));

        auto model = f.session.model();
        auto tok = f.session.tokenizer();
        cs::PatchRequest r;
        r.cleanIds = tok->encodePrompt(clean.toStdString());
        r.corruptedIds = tok->encodePrompt(corrupted.toStdString());
        r.answerId = f.session.tokenIdFor(" she", nullptr);
        r.wrongId = f.session.tokenIdFor(" he", nullptr);
        r.site = cs::PatchSite::Features;
        for (const cs::AnalysisSae& s : f.session.saes())
            if (s.id == "res-L2") {
                r.sae = s.sae;
                r.saeId = s.id;
            }
        const cs::PatchGrid want = cs::runActivationPatching(*model, r);
        QVERIFY(want.rows > 0);
        compareGrids(v->plot(), want);
        QCOMPARE(v->grid()->rowFeature, want.rowFeature);
        // A click opens the SAE's layer at that position, running the clean prompt first: the
        // session's run was of another prompt.
        QVERIFY(f.session.result().settings.prompt != clean);
        v->plot()->replot();
        QSignalSpy ran(&f.session, &SessionController::runFinished);
        QTest::mouseClick(v->plot(), Qt::LeftButton, Qt::NoModifier, v->plot()->cellCenter(10, 0));
        QVERIFY(ran.wait(kWaitMs));
        QCOMPARE(f.session.result().settings.prompt, clean);
        QCOMPARE(f.session.selection().layer, want.rowLayer[0]);
        QCOMPARE(f.session.selection().position, 10);
    }

    void exportsFigureAndJson() {
        Fixture f(dir_);
        QVERIFY(f.run("resid"));
        for (const QString ext : {"png", "svg", "pdf"}) {
            const QString path = out_ + "/patching." + ext;
            QCOMPARE(f.window.exportView(f.view(), path), QString());
            QVERIFY2(QFile::exists(path), qPrintable(path));
        }
        QImage image(out_ + "/patching.png");
        QVERIFY(!image.isNull());
        QCOMPARE(image.size(), f.view()->figureSize() * 3);
        QSet<QRgb> colours;  // not blank: the grid's cells differ
        for (int y = 0; y < 24; ++y)
            for (int x = 0; x < 24; ++x) colours.insert(image.pixel(x * image.width() / 24, y * image.height() / 24));
        QVERIFY(colours.size() >= 4);
        QVERIFY(QSvgRenderer(out_ + "/patching.svg").isValid());
        QVERIFY(readAll(out_ + "/patching.svg").contains("<text"));
        QVERIFY(readAll(out_ + "/patching.pdf").startsWith("%PDF-"));
        // The headless figure (`patch --out`) draws the same grid with the same plot.
        const QString headless = out_ + "/headless.png";
        QCOMPARE(exportPatchingFigure(*f.view()->grid(), f.view()->plot()->cleanTexts(), f.view()->plot()->corruptedTexts(), headless),
                 QString());
        QCOMPARE(QImage(headless).size(), image.size());
        QVERIFY(!exportPatchingFigure(*f.view()->grid(), {}, {}, out_ + "/x.bmp").isEmpty());
        // JSON: the grid as patchGridToJson writes it.
        const QString json = out_ + "/patching.json";
        QCOMPARE(f.view()->exportJson(json), QString());
        const nlohmann::json j = nlohmann::json::parse(readAll(json).toStdString());
        QCOMPARE(j, f.view()->toJson());
        QVERIFY(!j.is_null());
    }

    void mismatchedLengthsShowOneErrorAndStayUsable() {
        Fixture f(dir_);
        PatchingView* v = f.view();
        v->setPrompts(QStringLiteral("the cat"), QStringLiteral("the cats"), "m", "w");
        QSignalSpy failed(v, &PatchingView::patchingFailed);
        QSignalSpy sessionFailed(&f.session, &SessionController::failed);
        QTest::mouseClick(v->runButton(), Qt::LeftButton);
        QVERIFY(failed.wait(kWaitMs));
        const QString message = failed.at(0).at(0).toString();
        QVERIFY2(message.contains("7") && message.contains("8") && !message.contains('\n'), qPrintable(message));
        QCOMPARE(v->statusLabel()->text(), message);
        QVERIFY(sessionFailed.isEmpty());
        QVERIFY(v->runButton()->isEnabled());
        QVERIFY(!v->cancelButton()->isEnabled());
        QVERIFY(!v->grid());
        // A token that is not one token is refused before any run.
        v->setPrompts(kClean, kCorrupted, "mm", "w");
        QTest::mouseClick(v->runButton(), Qt::LeftButton);
        QCOMPARE(failed.size(), 2);
        QVERIFY2(failed.at(1).at(0).toString().startsWith("Answer"), qPrintable(failed.at(1).at(0).toString()));
        // Still usable.
        QVERIFY(f.run("attn"));
        QCOMPARE(v->grid()->site, cs::PatchSite::AttnOut);
    }

    void cancelStopsTheRunAndKeepsTheLastGrid() {
        Fixture f(dir_);
        PatchingView* v = f.view();
        QVERIFY(f.run("resid"));
        const cs::PatchGrid before = *v->grid();
        // Hold the model thread so the patch is still queued when Cancel is pressed.
        QSemaphore hold;
        f.session.runOnWorker(&f.window, [&hold](const cs::Transformer&, const cs::Tokenizer&) -> std::function<void()> {
            hold.acquire();
            return {};
        });
        v->siteBox()->setCurrentIndex(v->siteBox()->findData("heads-by-position"));
        QSignalSpy failed(v, &PatchingView::patchingFailed);
        QSignalSpy finished(v, &PatchingView::patchingFinished);
        QTest::mouseClick(v->runButton(), Qt::LeftButton);
        QVERIFY(v->isRunning());
        QVERIFY(!v->runButton()->isEnabled());
        QVERIFY(v->cancelButton()->isEnabled());
        QTest::mouseClick(v->cancelButton(), Qt::LeftButton);
        hold.release();
        QVERIFY(failed.wait(kWaitMs));
        QVERIFY2(failed.at(0).at(0).toString().contains("cancelled"), qPrintable(failed.at(0).at(0).toString()));
        QVERIFY(finished.isEmpty());
        QVERIFY(!v->isRunning());
        QVERIFY(v->runButton()->isEnabled());
        QCOMPARE(v->grid()->site, before.site);
        QCOMPARE(v->grid()->values, before.values);
    }
};

QTEST_MAIN(TestPatchingGui)
#include "test_patching_gui.moc"
