// The Diff dock, offscreen, on the embedded demo against a copy of it whose layer-2 MLP output is
// scaled by 3 (tests/reference/scale_tensor.py): after a run the dock lists each layer's residual
// shift (untouched before layer 2, moved from layer 2 on), the attached SAEs' most changed
// features (the same ranking diffModels gives for the run's tokens), and shades the token stream
// by KL on request; a model of another shape is refused with the folder named; Stop Comparing
// clears it all. The diff's numbers themselves are checked against a reference in test_diff.
#include "TestSupport.h"

#include "diff/ModelDiff.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/views/DiffFeatureModel.h"
#include "ui/views/DiffView.h"
#include "ui/views/TokenStreamView.h"

#include <QCheckBox>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTableWidget>
#include <QtTest>

using namespace cstest;
using namespace cs::ui;

namespace {

const QString kPrompt = QStringLiteral("Once upon a time, there was a little dog named Max. He loved to");

struct Fixture {
    SessionController session;
    MainWindow window{&session};
    Fixture() {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1400, 900);
        window.show();
        window.applySettings(RunSettings{kPrompt, 4, true, 1.0, 0});
        window.openModel(QString::fromStdString(cs::resolveModelDir("demo")));
        if (!finished.wait(60000)) qFatal("the first run did not finish");
    }
};

}  // namespace

class TestDiffGui : public QObject {
    Q_OBJECT
    std::string scaled_, other_;
    QString out_;

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeDiffTest");
        QSettings().clear();
        QSettings().setValue("autoIndexDemo", false);  // no background indexing beside the diff
        const std::string base = cs::resolveModelDir("demo");
        scaled_ = makeTempDir("diff-scaled");
        runReference("scale_tensor.py", "--model " + shellQuote(base) + " --out " + shellQuote(scaled_) +
                                            " --tensor transformer.h.2.mlp.c_proj.weight --tensor transformer.h.2.mlp.c_proj.bias --factor 3");
        other_ = makeTempDir("diff-other");
        runReference("make_random_model.py", "--arch gpt2 --seed 5 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 64 --out " + shellQuote(other_));
        out_ = QString::fromStdString(makeTempDir("diff-out"));
    }

    void comparingFillsTheDiffDock() {
        Fixture f;
        DiffView* view = f.window.diffView();
        QSignalSpy ready(view, &DiffView::diffReady);
        f.window.compareWith(QString::fromStdString(scaled_));
        QVERIFY(ready.wait(60000));
        QVERIFY(f.session.compareModel());
        QVERIFY(view->diff());
        const cs::ModelDiff& d = *view->diff();

        // Layers: the scaled MLP is layer 2's; nothing before it moves, everything from it does.
        QTableWidget* layers = view->layerTable();
        QCOMPARE(layers->rowCount(), 4);
        const double cos1 = layers->item(1, 1)->text().toDouble();
        const double cos2 = layers->item(2, 1)->text().toDouble();
        QCOMPARE(layers->item(0, 1)->text(), QString("1.0000"));
        QCOMPARE(layers->item(1, 1)->text(), QString("1.0000"));
        QVERIFY2(cos2 < 0.999 && cos2 < cos1, qPrintable(layers->item(2, 1)->text()));
        QVERIFY(d.layers[2].normRatio > 1.0f);

        // The features: what diffModels gives for the run's tokens with the session's SAEs.
        cs::DiffRequest request;
        request.sequences = {f.session.result().analysis->ids};
        request.saes = f.session.saes();
        request.topFeatures = 200;
        const cs::ModelDiff direct = cs::diffModels(*f.session.model(), *f.session.compareModel(), request);
        DiffFeatureModel* model = view->featureModel();
        QVERIFY(model->rowCount() > 0);
        QCOMPARE(model->rowCount(), int(direct.features.size()));
        for (int r = 0; r < std::min(10, model->rowCount()); ++r) {
            QCOMPARE(model->features()[r].saeId, direct.features[r].saeId);
            QCOMPARE(model->features()[r].index, direct.features[r].index);
            QCOMPARE(model->features()[r].meanB, direct.features[r].meanB);
        }
        // Layers 0 and 1 did not move, so no feature of their SAEs may lead the ranking.
        QVERIFY2(model->features()[0].saeId.find("L0") == std::string::npos &&
                     model->features()[0].saeId.find("L1") == std::string::npos,
                 model->features()[0].saeId.c_str());
        QVERIFY(view->summaryText().contains("mean KL"));

        // KL shading of the token stream, on request, and off again.
        const std::vector<float> kl = view->tokenKl();
        QCOMPARE(int(kl.size()), f.session.result().analysis->length());
        QCOMPARE(int(direct.tokens.front().size()), int(kl.size()));
        for (size_t i = 0; i < kl.size(); ++i) QCOMPARE(kl[i], direct.tokens.front()[i].kl);
        view->shadeCheck()->setChecked(true);
        QCOMPARE(f.window.tokenView()->shading(), kl);
        QVERIFY(f.window.tokenView()->shadingCaption().contains("KL"));
        view->shadeCheck()->setChecked(false);
        QVERIFY(f.window.tokenView()->shading().empty());

        // A double-click asks for the feature's dashboard.
        QSignalSpy open(view, &DiffView::openFeature);
        QTableView* table = view->featureTable();
        const QModelIndex first = table->model()->index(0, DiffFeatureModel::IndexColumn);
        const QRect cell = table->visualRect(first);
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, cell.center());
        QTest::mouseDClick(table->viewport(), Qt::LeftButton, {}, cell.center());
        QVERIFY(open.count() >= 1);
        const long index = open.first().at(1).value<long>();
        const QString sae = open.first().at(0).toString();
        const auto& shown = model->features();
        QVERIFY(std::any_of(shown.begin(), shown.end(), [&](const cs::FeatureShift& s) {
            return s.index == index && QString::fromStdString(s.saeId) == sae;
        }));

        // Data export, as `diff --json` writes it.
        const QString json = out_ + "/diff.json";
        QCOMPARE(view->exportJson(json), QString());
        QFile file(json);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QJsonObject doc = QJsonDocument::fromJson(file.readAll()).object();
        QCOMPARE(doc["layers"].toArray().size(), 4);
        QVERIFY(view->exportJson(out_ + "/no-such-dir/diff.json").contains("no-such-dir"));

        // A new run is compared again.
        QSignalSpy again(view, &DiffView::diffReady);
        f.window.applySettings(RunSettings{QStringLiteral("The dog ran to the park"), 0, true, 1.0, 0});
        f.window.runPrompt();
        QVERIFY(again.wait(60000));
        QCOMPARE(int(view->tokenKl().size()), f.session.result().analysis->length());

        // It shares the feature docks' column: never wider than that column's minimum.
        QVERIFY2(view->minimumSizeHint().width() <= 460, qPrintable(QString::number(view->minimumSizeHint().width())));

        // Stop Comparing clears the dock.
        f.session.clearCompareModel();
        QVERIFY(!view->diff());
        QCOMPARE(view->featureModel()->rowCount(), 0);
    }

    void anotherShapeIsRefused() {
        Fixture f;
        QSignalSpy failed(&f.session, &SessionController::failed);
        f.window.compareWith(QString::fromStdString(other_));
        QVERIFY(failed.wait(60000));
        QVERIFY2(failed.first().at(0).toString().contains(QString::fromStdString(other_)), qPrintable(failed.first().at(0).toString()));
        QVERIFY(!f.session.compareModel());
        QVERIFY(!f.window.diffView()->diff());
    }
};

QTEST_MAIN(TestDiffGui)
#include "test_diff_gui.moc"
