// Features in the window, offscreen, on the embedded demo: clicking a token chip fills the
// Features dock with exactly the analysis' most active features at that position; selecting one
// shades the token chips by its activation; Enter opens its dashboard from a feature store (a
// small one this test indexes itself); a label typed there is saved at once and is still there
// in a new window and session; the feature browser lists and searches the store; the headless
// export writes the same data as the views.
#include "TestSupport.h"

#include "analysis/PromptAnalysis.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "store/FeatureIndexer.h"
#include "store/FeatureSearch.h"
#include "store/FeatureStore.h"
#include "store/StoreJson.h"
#include "tokenize/Tokenizer.h"
#include "ui/IndexJob.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/figures/FigureExport.h"
#include "ui/figures/HeadlessExport.h"
#include "ui/views/DashboardView.h"
#include "ui/views/ExampleList.h"
#include "ui/views/FeatureBrowser.h"
#include "ui/views/FeatureTableModel.h"
#include "ui/views/FeaturesView.h"
#include "ui/views/TokenStreamView.h"

#include <QComboBox>
#include <set>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QTabWidget>
#include <QtTest>

#include <filesystem>

using namespace cstest;
using namespace cs::ui;

namespace {

const QString kPrompt = QStringLiteral("Once upon a time, there was a little girl named Lily. She loved to play");

QString demoModelDir() { return QString::fromStdString(cs::resolveModelDir("demo")); }

// A fresh window on the demo model, after its first run (which carries the demo's SAEs).
struct Fixture {
    SessionController session;
    MainWindow window{&session};
    Fixture() {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1400, 900);
        window.show();
        window.applySettings(RunSettings{kPrompt, 0, true, 1.0, 0});
        window.openModel(demoModelDir());
        if (!finished.wait(60000)) qFatal("the first run did not finish");
    }
};

}  // namespace

class TestFeaturesGui : public QObject {
    Q_OBJECT
    QString db_;
    QString out_;
    QString sae_;     // the feature the first test labels
    long feature_ = -1;

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeFeaturesTest");
        QSettings().clear();
        QSettings().setValue("autoIndexDemo", false);  // this test indexes its own small store
        if (cs::demoBundleDir().empty()) QSKIP("the demo bundle is not installed");
        out_ = QString::fromStdString(makeTempDir("features-gui"));
        db_ = out_ + "/features.db";
        // A few generated documents through every demo SAE: a store in a few seconds.
        const std::string dir = demoModelDir().toStdString();
        auto model = cs::loadModel(dir);
        auto tok = cs::loadTokenizer(dir);
        std::vector<cs::IndexSae> saes;
        for (const std::string& p : cs::demoSaeDirs())
            saes.push_back({std::filesystem::path(p).filename().string(), p, cs::loadSae(p)});
        cs::IndexOptions o;
        o.modelDir = "demo";
        o.generateDocuments = 6;
        o.maxTokens = 600;
        const cs::IndexResult r = cs::indexFeatures(db_.toStdString(), *model, tok.get(), saes, o);
        QVERIFY(r.tokens > 0);
    }

    void clickTokenFeaturesDashboardAndLabel() {
        Fixture f;
        QCOMPARE(f.session.saes().size(), cs::demoSaeDirs().size());
        QCOMPARE(f.window.openFeatureStore(db_), QString());
        const cs::PromptAnalysis* a = f.session.analysis();
        QVERIFY(a);
        QCOMPARE(a->features.size(), f.session.saes().size());

        // Click a token chip: the Features dock shows that position's top features of every SAE.
        TokenStreamView* tokens = f.window.tokenView();
        const int t = 4;
        QVERIFY(tokens->chipCount() > t);
        QTest::mouseClick(tokens, Qt::LeftButton, {}, tokens->chipRect(t).center());
        QCOMPARE(f.session.selection().position, t);
        FeaturesView* view = f.window.featuresView();
        QCOMPARE(view->drawnPosition(), t);
        const auto& rows = view->rows();
        size_t r = 0;
        int firstFeatureRow = -1;
        for (size_t s = 0; s < a->features.size(); ++s) {
            QVERIFY(r < rows.size());
            QVERIFY(rows[r].header);
            QCOMPARE(rows[r].track, static_cast<int>(s));
            ++r;
            const auto& active = a->features[s].byPosition[t];
            const size_t n = std::min<size_t>(FeaturesView::kTopPerSae, active.size());
            QVERIFY(n > 0);
            for (size_t j = 0; j < n; ++j, ++r) {
                QVERIFY(r < rows.size());
                QVERIFY(!rows[r].header);
                QCOMPARE(rows[r].feature, active[j].first);
                QCOMPARE(rows[r].activation, active[j].second);
                QCOMPARE(rows[r].series, a->features[s].series(active[j].first));
                if (firstFeatureRow < 0) firstFeatureRow = static_cast<int>(r);
            }
        }
        QCOMPARE(r, rows.size());

        // Select a feature (a click on its row): the chips are shaded by its activation.
        QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, view->rowRect(firstFeatureRow).center());
        QCOMPARE(view->selectedRow(), firstFeatureRow);
        const auto& row = rows[firstFeatureRow];
        QCOMPARE(tokens->shading(), row.series);
        for (int i = 0; i < static_cast<int>(row.series.size()); ++i)
            if (row.series[i] == 0) QVERIFY(tokens->chipFill(i) != tokens->chipFill(t));  // t fires: shaded

        // Enter opens its dashboard, read from the store.
        sae_ = QString::fromStdString(a->features[row.track].id);
        feature_ = row.feature;
        view->setFocus();
        QTest::keyClick(view, Qt::Key_Return);
        QCOMPARE(f.window.dashboardTabs()->count(), 1);
        auto* dash = qobject_cast<DashboardView*>(f.window.dashboardTabs()->currentWidget());
        QVERIFY(dash);
        QCOMPARE(dash->saeId(), sae_);
        QCOMPARE(dash->featureIndex(), feature_);
        QVERIFY2(dash->hasDetail(), qPrintable(dash->missingText()));
        const cs::FeatureDetail expect = cs::FeatureStore(db_.toStdString()).feature(sae_.toStdString(), feature_);
        QCOMPARE(dash->detail().topExamples.size(), expect.topExamples.size());
        QCOMPARE(dash->detail().maxActivation, expect.maxActivation);
        QCOMPARE(dash->topExamples()->items().size(), expect.topExamples.size());
        QVERIFY(dash->labelEdit()->text().isEmpty());  // no label of the user's yet
        QCOMPARE(dash->autoTag()->isVisibleTo(dash), !expect.autoLabel.empty());

        // Type a label and press Enter: saved at once.
        dash->labelEdit()->setFocus();
        QTest::keyClicks(dash->labelEdit(), "little girl names");
        QTest::keyClick(dash->labelEdit(), Qt::Key_Return);
        dash->notesEdit()->setPlainText("fires on names");
        dash->saveNow();
        {
            cs::FeatureStore store(db_.toStdString());
            bool isAuto = true;
            QCOMPARE(QString::fromStdString(store.label(sae_.toStdString(), feature_, &isAuto)), QString("little girl names"));
            QVERIFY(!isAuto);
            QCOMPARE(QString::fromStdString(store.feature(sae_.toStdString(), feature_).notes), QString("fires on names"));
        }
        QVERIFY(!dash->autoTag()->isVisibleTo(dash));
        QCOMPARE(view->rows()[firstFeatureRow].label, QString("little girl names"));
        QVERIFY(!view->rows()[firstFeatureRow].labelIsAuto);

        // Both views export as figures.
        QCOMPARE(exportFigure(*view, out_ + "/features.png"), QString());
        QCOMPARE(exportFigure(*dash, out_ + "/dashboard.svg"), QString());
        QVERIFY(!QImage(out_ + "/features.png").isNull());
        QVERIFY(QFile(out_ + "/dashboard.svg").size() > 1000);
    }

    void labelPersistsAcrossARestart() {
        QVERIFY(feature_ >= 0);
        Fixture f;  // a new window and session: the store last opened with the demo comes back
        QCOMPARE(f.session.storePath(), db_);
        DashboardView* dash = f.window.openDashboard(sae_, feature_);
        QVERIFY(dash->hasDetail());
        QCOMPARE(dash->labelEdit()->text(), QString("little girl names"));
        QCOMPARE(dash->notesEdit()->toPlainText(), QString("fires on names"));
        QVERIFY(!dash->autoTag()->isVisibleTo(dash));

        // The browser lists the SAE's features and finds the label.
        FeatureBrowser* browser = f.window.featureBrowser();
        browser->saePicker()->setCurrentIndex(browser->saePicker()->findText(sae_));
        QCOMPARE(browser->currentSae(), sae_);
        QCOMPARE(static_cast<size_t>(browser->model()->rowCount()),
                 cs::FeatureStore(db_.toStdString()).summaries(sae_.toStdString()).size());
        browser->modePicker()->setCurrentIndex(0);  // by label
        browser->queryEdit()->setText("girl names");
        browser->search();
        QVERIFY(browser->model()->showingHits());
        bool found = false;
        for (int i = 0; i < browser->proxy()->rowCount(); ++i)
            found |= browser->proxy()->index(i, 0).data(FeatureTableModel::FeatureIndexRole).toLongLong() == feature_;
        QVERIFY(found);
    }

    // The two searches that run the model (by text, by contrast) run on the session's model
    // thread and list what the core search functions find on their own.
    void liveSearchesListWhatTheCoreFinds() {
        Fixture f;
        FeatureBrowser* browser = f.window.featureBrowser();
        const QString sae = "res-L1";
        browser->saePicker()->setCurrentIndex(browser->saePicker()->findText(sae));
        QCOMPARE(browser->currentSae(), sae);
        const std::string dir = demoModelDir().toStdString();
        auto model = cs::loadModel(dir);
        auto tok = cs::loadTokenizer(dir);
        const std::vector<cs::LiveSae> saes{{sae.toStdString(), cs::loadSae(dir + "/../saes/res-L1")}};
        auto shown = [&] {
            std::set<long> ids;
            long best = -1;
            double bestScore = -1e30;
            for (int i = 0; i < browser->proxy()->rowCount(); ++i) {
                const long id = browser->proxy()->index(i, 0).data(FeatureTableModel::FeatureIndexRole).toLongLong();
                const double score = browser->proxy()->index(i, FeatureTableModel::ScoreColumn).data(FeatureTableModel::SortRole).toDouble();
                ids.insert(id);
                if (score > bestScore) bestScore = score, best = id;
            }
            return std::make_pair(ids, best);
        };
        auto expectSame = [&](const std::vector<cs::FeatureHit>& want) {
            QVERIFY(!want.empty());
            const auto [ids, best] = shown();
            std::set<long> wantIds;
            for (const auto& h : want) wantIds.insert(h.index);
            QCOMPARE(ids, wantIds);
            QCOMPARE(best, want.front().index);
        };

        const std::string text = "Once upon a time there was a little girl named Lily";
        browser->modePicker()->setCurrentIndex(browser->modePicker()->findData(static_cast<int>(FeatureBrowser::Mode::Text)));
        browser->queryEdit()->setText(QString::fromStdString(text));
        QSignalSpy done(browser, &FeatureBrowser::searchFinished);
        browser->search();
        QVERIFY(done.wait(60000));
        QVERIFY(browser->model()->showingHits());
        expectSame(cs::searchPassage(*model, *tok, saes, text, 200, nullptr));

        const QString a = out_ + "/girls.txt", b = out_ + "/dogs.txt";
        QFile fa(a), fb(b);
        QVERIFY(fa.open(QIODevice::WriteOnly) && fb.open(QIODevice::WriteOnly));
        fa.write("The little girl smiled.\nA girl named Sue sang.\n");
        fb.write("The big dog barked.\nA dog ran in the park.\n");
        fa.close();
        fb.close();
        browser->modePicker()->setCurrentIndex(browser->modePicker()->findData(static_cast<int>(FeatureBrowser::Mode::Contrast)));
        browser->setContrastFiles(a, b);
        browser->search();
        QVERIFY(done.wait(60000));
        expectSame(cs::searchContrast(*model, *tok, saes, cs::readPromptFile(a.toStdString()),
                                      cs::readPromptFile(b.toStdString()), 200, nullptr));
    }

    // What File > Index a Corpus runs: a background job with progress, cancel after the batch in
    // flight, and a second start that resumes and completes the store.
    void indexJobReportsProgressCancelsAndResumes() {
        const QString corpus = out_ + "/corpus.jsonl";
        {
            QFile f(corpus);
            QVERIFY(f.open(QIODevice::WriteOnly));
            uint64_t x = 12345;
            for (int d = 0; d < 1100; ++d) {
                QByteArray line = "{\"tokens\": [";
                for (int t = 0; t < 40; ++t) {
                    x = x * 6364136223846793005ull + 1442695040888963407ull;
                    line += (t ? "," : "") + QByteArray::number(static_cast<qulonglong>(3 + (x >> 33) % 2045));
                }
                f.write(line + "]}\n");
            }
        }
        IndexRequest req;
        req.dbPath = out_ + "/job.db";
        req.modelDir = "demo";
        req.saeIds = {"res-L0"};
        req.saePaths = {QString::fromStdString(cs::demoBundleDir() + "/saes/res-L0")};
        req.corpusPath = corpus;
        req.maxTokens = 44000;  // 1100 windows of 40: five batches of 256

        IndexJob job;
        QSignalSpy finished(&job, &IndexJob::finished);
        connect(&job, &IndexJob::progress, &job, [&job](const QString& phase, qint64 done, qint64) {
            if (phase == "indexing" && done > 0) job.cancel();
        });
        QVERIFY(job.start(req));
        QVERIFY(!job.start(req));  // one at a time
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.last().at(1).toString(), QString());  // no error
        QVERIFY(finished.last().at(2).toBool());                // cancelled
        long partial = 0;
        {
            cs::FeatureStore store(req.dbPath.toStdString());
            QVERIFY(!store.isComplete());
            partial = store.sae("res-L0").tokens;
            QVERIFY(partial > 0 && partial < 44000);
        }

        IndexJob again;
        QSignalSpy done(&again, &IndexJob::finished);
        QVERIFY(again.start(req));
        QVERIFY(done.wait(120000));
        QCOMPARE(done.last().at(1).toString(), QString());
        QVERIFY(!done.last().at(2).toBool());
        QVERIFY(done.last().at(3).toBool());  // resumed
        cs::FeatureStore store(req.dbPath.toStdString());
        QVERIFY(store.isComplete());
        QCOMPARE(store.sae("res-L0").tokens, 44000L);  // no BOS among the ids, so every token counts
    }

    void dashboardWithoutAStoreSaysWhatIsMissing() {
        SessionController session;
        DashboardView dash(&session, "res-L0", 3);
        QVERIFY(!dash.hasDetail());
        QVERIFY(!dash.missingText().isEmpty());
        QVERIFY(dash.findChild<QWidget*>("indexCorpusButton")->isVisibleTo(&dash));
        QVERIFY(!dash.labelEdit()->isEnabled());
    }

    void headlessExportWritesTheViewsData() {
        QVERIFY(feature_ >= 0);
        HeadlessExportRequest r;
        r.view = "dashboard";
        r.db = db_;
        r.saeId = sae_;
        r.index = feature_;
        r.out = out_ + "/dash.json";
        QCOMPARE(exportHeadless(r), QString());
        const auto got = nlohmann::json::parse(readFile(r.out.toStdString()));
        QCOMPARE(QString::fromStdString(got.dump()),
                 QString::fromStdString(cs::featureJson(cs::FeatureStore(db_.toStdString()).feature(sae_.toStdString(), feature_)).dump()));
        r.out = out_ + "/dash.png";
        QCOMPARE(exportHeadless(r), QString());
        QVERIFY(QImage(r.out).height() > 300);

        HeadlessExportRequest fr;
        fr.modelDir = demoModelDir();
        fr.view = "features";
        fr.prompt = kPrompt;
        fr.position = 2;
        fr.out = out_ + "/features.json";
        QCOMPARE(exportHeadless(fr), QString());
        const auto j = nlohmann::json::parse(readFile(fr.out.toStdString()));
        QCOMPARE(j["position"].get<int>(), 2);
        QCOMPARE(j["saes"].size(), cs::demoSaeDirs().size());
        for (const auto& s : j["saes"]) {
            QVERIFY(!s["features"].empty());
            float last = 1e30f;
            for (const auto& feat : s["features"]) {
                QVERIFY(feat["activation"].get<float>() <= last);
                last = feat["activation"].get<float>();
                QCOMPARE(feat["series"][2].get<float>(), last);
            }
        }
    }
};

QTEST_MAIN(TestFeaturesGui)
#include "test_features_gui.moc"
