// Faults met through the window, offscreen. A corrupt model, SAE, feature store or graph opened
// from the GUI shows one error naming the file and leaves the session exactly as it was (the
// model, its SAEs, the store, the result on screen, the graph); running out of memory in the
// middle of a run fails that run and not the window, which runs the next prompt as before.
#include "TestSupport.h"
#include "SyntheticGraph.h"

#include "attribution/GraphJson.h"
#include "store/FeatureStore.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/GraphView.h"
#include "ui/views/TokenStreamView.h"

#include <c10/core/Allocator.h>
#include <c10/util/Exception.h>

#include <QMessageBox>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QtTest>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace cstest;
using namespace cs::ui;
namespace fs = std::filesystem;

namespace {

// Stands in for a machine that runs out of memory: once armed, LibTorch's allocations fail as its
// own CPU allocator fails (a c10::Error saying "not enough memory"), after `allowance` more
// allocations so that the failure lands in the middle of a run. Only off the GUI thread, where
// runs allocate: painting a widget never asks LibTorch for memory.
class ExhaustibleAllocator final : public c10::Allocator {
public:
    explicit ExhaustibleAllocator(c10::Allocator* real) : real_(real), guiThread_(std::this_thread::get_id()) {}
    c10::DataPtr allocate(size_t n) const override {
        if (armed_ && std::this_thread::get_id() != guiThread_ && allowance_.fetch_sub(1) <= 0) {
            failures_.fetch_add(1);
            TORCH_CHECK(false, "DefaultCPUAllocator: not enough memory: you tried to allocate ", n, " bytes.");
        }
        return real_->allocate(n);
    }
    c10::DeleterFnPtr raw_deleter() const override { return real_->raw_deleter(); }
    void arm(int allowance) {
        allowance_ = allowance;
        failures_ = 0;
        armed_ = true;
    }
    void disarm() { armed_ = false; }
    int failures() const { return failures_; }

private:
    c10::Allocator* real_;
    std::thread::id guiThread_;
    std::atomic<bool> armed_{false};
    mutable std::atomic<int> allowance_{0};
    mutable std::atomic<int> failures_{0};
};

ExhaustibleAllocator* exhaustible = nullptr;

void copyDir(const std::string& from, const std::string& to) {
    fs::create_directories(to);
    fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

void truncateFile(const std::string& path, double keep) {
    const auto size = fs::file_size(path);
    fs::resize_file(path, static_cast<uintmax_t>(static_cast<double>(size) * keep));
}

// The window shows an error box holding `mustContain`; closes every box for the next check (one
// fault can fail more than one job on the worker, each saying so).
void expectErrorBox(MainWindow& window, const QString& mustContain) {
    QTRY_VERIFY(!window.findChildren<QMessageBox*>().isEmpty());
    QString texts;
    bool named = false;
    for (QMessageBox* box : window.findChildren<QMessageBox*>()) {
        named = named || box->text().contains(mustContain);
        texts += box->text() + "\n";
        box->close();
    }
    QVERIFY2(named, qPrintable(texts + "does not name " + mustContain));
    QTRY_VERIFY(window.findChildren<QMessageBox*>().isEmpty());
}

// A window on the demo (with its SAEs), its first run done.
struct DemoWindow {
    SessionController session;
    MainWindow window{&session};
    explicit DemoWindow(const std::string& demo) {
        QSignalSpy finished(&session, &SessionController::runFinished);
        window.resize(1200, 800);
        window.show();
        window.openModel(QString::fromStdString(demo + "/model"));
        if (!finished.wait(60000)) qFatal("the demo's first run did not finish");
    }
};

}  // namespace

class TestGuiFaults : public QObject {
    Q_OBJECT
    std::string dir_, demo_;

    // What the session holds, to compare before and after a fault.
    struct Snapshot {
        std::shared_ptr<const cs::Transformer> model;
        QString modelDir;
        QStringList saePaths;
        cs::FeatureStore* store = nullptr;
        std::shared_ptr<const cs::PromptAnalysis> analysis;
        int chips = 0;
    };
    static Snapshot snapshot(SessionController& s, MainWindow& w) {
        return {s.model(), s.modelDir(), s.saePaths(), s.store(), s.result().analysis, w.tokenView()->chipCount()};
    }
    static void expectUnchanged(const Snapshot& before, SessionController& s, MainWindow& w) {
        QVERIFY(s.model() == before.model);
        QCOMPARE(s.modelDir(), before.modelDir);
        QCOMPARE(s.saePaths(), before.saePaths);
        QVERIFY(s.store() == before.store);
        QVERIFY(s.result().analysis == before.analysis);
        QCOMPARE(w.tokenView()->chipCount(), before.chips);
    }
    // The window still works: a prompt runs to the end.
    static void expectUsable(SessionController& s, MainWindow& w) {
        QSignalSpy finished(&s, &SessionController::runFinished);
        RunSettings r = w.currentSettings();
        r.prompt = "Lily had a red ball";
        r.maxNewTokens = 4;
        w.applySettings(r);
        w.runPrompt();
        QVERIFY(finished.wait(60000));
        QVERIFY(s.result().analysis && s.result().analysis->length() > 4);
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("CircuitscopeFaultTest");
        QSettings().clear();
        // The demo would start indexing its own store in the background on the same worker,
        // which is neither what these tests are about nor deterministic in time.
        QSettings().setValue("autoIndexDemo", false);
        dir_ = makeTempDir("gui-faults");
        demo_ = sourceDir() + "/resources/demo";
        static ExhaustibleAllocator allocator(c10::GetAllocator(c10::DeviceType::CPU));
        c10::SetAllocator(c10::DeviceType::CPU, &allocator, /*priority=*/100);
        exhaustible = &allocator;
    }

    void corruptFilesLeaveTheSessionAsItWas() {
        DemoWindow demo(demo_);
        SessionController& session = demo.session;
        MainWindow& window = demo.window;
        QSignalSpy failed(&session, &SessionController::failed);
        QVERIFY(!session.saes().empty());
        const std::string goodStore = dir_ + "/good.db";
        { cs::FeatureStore make(goodStore, cs::FeatureStore::Mode::Create); }
        QCOMPARE(window.openFeatureStore(QString::fromStdString(goodStore)), QString());
        const Snapshot before = snapshot(session, window);
        QVERIFY(before.store && before.analysis);

        // Models: weights cut short, a header that lies about its length, config.json not JSON.
        const std::string cut = dir_ + "/model-cut", header = dir_ + "/model-header", config = dir_ + "/model-config";
        for (const auto& d : {cut, header, config}) copyDir(demo_ + "/model", d);
        truncateFile(cut + "/model.safetensors", 0.6);
        {
            std::fstream f(header + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
            const unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00};
            f.write(reinterpret_cast<const char*>(huge), 8);
        }
        writeFile(config + "/config.json", "{\"model_type\": \"gpt2\", \"n_layer\": ");
        for (const auto& [d, named] : {std::pair{cut, "model.safetensors"}, {header, "model.safetensors"}, {config, "config.json"}}) {
            failed.clear();
            window.openModel(QString::fromStdString(d));
            QVERIFY(failed.wait(60000));
            const QString why = failed.last().at(0).toString();
            QVERIFY2(why.contains(named), qPrintable(why));
            expectErrorBox(window, named);
            expectUnchanged(before, session, window);
        }
        QVERIFY(!QSettings().value("recentModels").toStringList().contains(QString::fromStdString(cut)));

        // SAEs: cfg.json cut short, weights cut short. The attached ones stay attached.
        const std::string badCfg = dir_ + "/sae-cfg", badWeights = dir_ + "/sae-weights";
        copyDir(demo_ + "/saes/res-L0", badCfg);
        copyDir(demo_ + "/saes/res-L0", badWeights);
        writeFile(badCfg + "/cfg.json", "{\"d_in\": 128, \"d_sae\": ");
        for (const auto& entry : fs::directory_iterator(badWeights))
            if (entry.path().extension() == ".safetensors") truncateFile(entry.path().string(), 0.5);
        for (const auto& [d, named] : {std::pair{badCfg, "cfg.json"}, {badWeights, ".safetensors"}}) {
            failed.clear();
            session.attachSaes({QString::fromStdString(d)});
            QVERIFY(failed.wait(60000));
            const QString why = failed.last().at(0).toString();
            QVERIFY2(why.contains(named), qPrintable(why));
            expectErrorBox(window, named);
            expectUnchanged(before, session, window);
        }

        // Stores: not SQLite at all, SQLite cut short, and someone else's SQLite database, which
        // must not be turned into a store either.
        const std::string noise = dir_ + "/noise.db", cutStore = dir_ + "/cut.db", foreign = dir_ + "/foreign.db";
        writeFile(noise, std::string("SQLite format 3") + std::string(1, '\0') + std::string(3000, '\x5a'));
        {
            cs::FeatureStore make(cutStore, cs::FeatureStore::Mode::Create);
            make.setMeta("note", std::string(100000, 'x'));
        }
        truncateFile(cutStore, 0.3);
        {
            // Someone else's database, made with Python's sqlite3 rather than the project's code.
            const int rc = run(shellQuote(python()) + " -c \"import sqlite3; c = sqlite3.connect('" + foreign +
                               "'); c.execute('create table notes (t text)'); c.execute(\\\"insert into notes values ('mine')\\\"); c.commit()\"");
            QCOMPARE(rc, 0);
        }
        const auto foreignBytes = readFile(foreign);
        for (const std::string& path : {noise, cutStore, foreign}) {
            const QString error = window.openFeatureStore(QString::fromStdString(path));
            QVERIFY2(error.contains(QString::fromStdString(path)), qPrintable(error));
            expectUnchanged(before, session, window);
        }
        QCOMPARE(readFile(foreign), foreignBytes);

        // A graph file cut short: the graph dock keeps the graph it shows.
        GraphView* graph = window.findChild<GraphView*>();
        QVERIFY(graph);
        const std::string goodGraph = dir_ + "/graph.json", badGraph = dir_ + "/graph-cut.json";
        cs::saveGraph(goodGraph, cstest::randomGraph(3, 4, 30, 200, 7));
        QCOMPARE(graph->openGraph(QString::fromStdString(goodGraph)), QString());
        const size_t nodes = graph->canvas()->graph().nodes.size();
        QVERIFY(nodes > 0);
        writeFile(badGraph, readFile(goodGraph).substr(0, readFile(goodGraph).size() / 2));
        QSignalSpy graphFailed(graph, &GraphView::failed);
        graph->openGraphInBackground(QString::fromStdString(badGraph));
        QVERIFY(graphFailed.wait(30000));
        QVERIFY2(graphFailed.last().at(0).toString().contains("graph-cut.json"), qPrintable(graphFailed.last().at(0).toString()));
        expectErrorBox(window, "graph-cut.json");
        QCOMPARE(graph->canvas()->graph().nodes.size(), nodes);
        expectUnchanged(before, session, window);

        expectUsable(session, window);
    }

    void runningOutOfMemoryFailsTheRunNotTheWindow() {
        DemoWindow demo(demo_);
        SessionController& session = demo.session;
        MainWindow& window = demo.window;
        QSignalSpy failed(&session, &SessionController::failed);
        const auto before = session.result().analysis;
        QVERIFY(before);
        // Allocations start failing a little way into the next run (generation and analysis of a
        // prompt make thousands).
        RunSettings r = window.currentSettings();
        r.prompt = "Once upon a time, there was a big dog. The dog";
        r.maxNewTokens = 24;
        window.applySettings(r);
        exhaustible->arm(300);
        window.runPrompt();
        const bool gotError = failed.wait(60000);
        exhaustible->disarm();
        QVERIFY(gotError);
        QVERIFY(exhaustible->failures() > 0);
        const QString why = failed.last().at(0).toString();
        QVERIFY2(why.contains("not enough memory"), qPrintable(why));
        QCOMPARE(why.count('\n'), 0);
        expectErrorBox(window, "not enough memory");
        // The run failed as a whole: the last complete result is what the window shows.
        QTRY_VERIFY(!session.isBusy());
        QVERIFY(session.result().analysis == before);
        QCOMPARE(window.tokenView()->chipCount(), before->length());
        expectUsable(session, window);
    }
};

QTEST_MAIN(TestGuiFaults)
#include "test_gui_faults.moc"
