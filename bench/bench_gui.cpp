// The GUI's own cost: a 32-token prompt submitted to the window until all three views (tokens,
// attention, logit lens) have painted its analysis (each as soon as its stage arrives), against the same model work done by core/ directly in
// the same process (generation, then the analysis the views show), for a prompt-only run and for
// the window's default (32 greedy tokens). Also a bare forward pass for scale, and the time from
// launching the real binary to its first run on screen. Medians over --runs. Offscreen unless a
// display is set.
//
//   bench_gui [--model DIR|demo] [--runs 30] [--threads 2] [--paint-report] [--event-report]
//
// --event-report: for each scenario, the GUI thread's time per run by event and receiver, from
// submission to the last view's paint (event 43 is a queued call or replot, 77 the window's paint).
#include "analysis/PromptAnalysis.h"
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/views/AttentionView.h"
#include "ui/views/HeatmapPlot.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/TokenStreamView.h"

#include <QDockWidget>
#include <QTableWidget>

#include <ATen/ATen.h>

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QPaintEvent>
#include <QSettings>
#include <QStandardPaths>
#include <QThread>

#include <algorithm>
#include <map>
#include <set>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Milliseconds a fixed run of dependent floating-point arithmetic takes on each of `threads`
// threads started together (median of their times). Beside one thread's time it says whether this
// machine's cores compute side by side at full speed (or are, say, two hyperthreads of one core),
// which bears on whether painting on the GUI thread can overlap the worker's model run for free.
double arithmeticMs(int threads) {
    std::vector<double> ms(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&ms, t] {
            QElapsedTimer timer;
            timer.start();
            volatile double x = 0;
            for (long i = 0; i < 40'000'000; ++i) x = x + static_cast<double>(i) * 0.5;
            ms[static_cast<size_t>(t)] = timer.nsecsElapsed() / 1e6;
        });
    for (auto& th : pool) th.join();
    return median(ms);
}

// Times every event the GUI thread dispatches at the top level while `recording` (--event-report):
// where the GUI's own milliseconds go between a submission and the last view's paint.
class TimedApplication : public QApplication {
public:
    using QApplication::QApplication;
    bool recording = false;
    std::map<std::string, std::pair<double, int>> spent;  // what -> (ms, count)
    bool notify(QObject* o, QEvent* e) override {
        if (!recording || depth_ > 0 || QThread::currentThread() != thread()) return QApplication::notify(o, e);
        ++depth_;
        QElapsedTimer t;
        t.start();
        const bool r = QApplication::notify(o, e);
        const double ms = t.nsecsElapsed() / 1e6;
        --depth_;
        std::string what = std::string(o->metaObject()->className());
        if (!o->objectName().isEmpty()) what += " '" + o->objectName().toStdString() + "'";
        what += " event " + std::to_string(static_cast<int>(e->type()));
        auto& slot = spent[what];
        slot.first += ms;
        ++slot.second;
        return r;
    }

private:
    int depth_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    if (!std::getenv("QT_QPA_PLATFORM") && !std::getenv("DISPLAY")) setenv("QT_QPA_PLATFORM", "offscreen", 1);
    std::string model = "demo";
    int runs = 30, threads = 2;
    bool paintReport = false, eventReport = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--paint-report") paintReport = true;
        else if (a == "--event-report") eventReport = true;
        else if (i + 1 >= argc) break;
        else if (a == "--model") model = argv[++i];
        else if (a == "--runs") runs = std::atoi(argv[++i]);
        else if (a == "--threads") threads = std::atoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    TimedApplication app(argc, argv);
    QStandardPaths::setTestModeEnabled(true);  // leave the user's settings alone
    QCoreApplication::setOrganizationName("CircuitscopeBench");
    QSettings().clear();
    const std::string dir = cs::resolveModelDir(model);

    // A prompt of exactly 32 tokens as the window will tokenize it: the longest prefix of a story
    // (cut at a token boundary) that encodes back to 32 tokens.
    std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
    const std::string text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                             "sunshine with her dog and her friends. One day, she found a big red ball in the park "
                             "and she was very happy.";
    const std::vector<int> all = tok->encodePrompt(text);
    const size_t skip = !all.empty() && all[0] == tok->bosId() ? 1 : 0;
    std::vector<int> ids;
    std::string promptText;
    for (size_t n = skip + 1; n <= all.size() && ids.size() != 32; ++n) {
        promptText = tok->decode(std::vector<int>(all.begin() + skip, all.begin() + n));
        ids = tok->encodePrompt(promptText);
    }
    if (ids.size() != 32) {
        std::fprintf(stderr, "bench_gui: no prefix of the story encodes to 32 tokens with this tokenizer\n");
        return 1;
    }
    const QString prompt = QString::fromStdString(promptText);

    cs::ui::SessionController session;
    // Connected before the window's views and after them: slots run in connection order, so the
    // two bracket every view's handling of each stage of a run (rebuilding its data and layout).
    QElapsedTimer rebuildTimer;
    double rebuildMs = 0;
    QObject::connect(&session, &cs::ui::SessionController::shownAnalysisChanged, [&] { rebuildTimer.start(); });
    cs::ui::MainWindow window(&session);
    QObject::connect(&session, &cs::ui::SessionController::shownAnalysisChanged,
                     [&] { rebuildMs += rebuildTimer.nsecsElapsed() / 1e6; });
    window.resize(1400, 900);
    window.show();
    {
        QEventLoop loop;
        QObject::connect(&session, &cs::ui::SessionController::runFinished, &loop, &QEventLoop::quit);
        QObject::connect(&session, &cs::ui::SessionController::failed, &loop, [&](const QString& m) {
            std::fprintf(stderr, "bench_gui: %s\n", qPrintable(m));
            std::exit(1);
        });
        window.openModel(QString::fromStdString(dir));
        loop.exec();
    }
    // Narrower than its feature-column threshold, the window tabs the logit lens behind the
    // Features dock on its first layout; the benchmark times all three views, so the lens in front.
    if (auto* dock = qobject_cast<QDockWidget*>(window.logitLensView()->parentWidget())) dock->raise();
    cs::ui::RunSettings s;
    s.prompt = prompt;
    s.maxNewTokens = 0;

    // For each scenario, the same work done by core/ directly (the model run: generation, then
    // the analysis the views show) alternates with the GUI doing it (worker thread, hand-off,
    // every view updated and repainted), so both see the same machine state.
    auto m = cs::loadModel(dir);
    int replots = 0;
    for (QCustomPlot* p : {static_cast<QCustomPlot*>(window.attentionView()->plot()),
                           static_cast<QCustomPlot*>(window.logitLensView()->plot())})
        QObject::connect(p, &QCustomPlot::afterReplot, [&replots] { ++replots; });
    // Which of the views have painted the current run's analysis (or a stage of it) since `painted`
    // was last cleared: the run's stages are shown as they arrive, so a view may paint before the
    // run has finished; a paint of the previous run's picture does not count.
    std::set<const cs::PromptAnalysis*> runStages;
    QObject::connect(&session, &cs::ui::SessionController::shownAnalysisChanged,
                     [&] { runStages.insert(session.shownAnalysis().get()); });
    const std::vector<std::pair<QWidget*, std::function<const cs::PromptAnalysis*()>>> views{
        {window.tokenView(), [&] { return window.tokenView()->drawnAnalysis(); }},
        {window.attentionView()->thumbnails(), [&] { return window.attentionView()->thumbnails()->drawnAnalysis(); }},
        {window.attentionView()->plot(), [&] { return window.attentionView()->drawnAnalysis(); }},
        {window.attentionView()->topTable()->viewport(), [&] { return window.attentionView()->drawnAnalysis(); }},
        {window.logitLensView()->plot(), [&] { return window.logitLensView()->drawnAnalysis(); }},
        {window.logitLensView()->table()->viewport(), [&] { return window.logitLensView()->drawnAnalysis(); }}};
    std::set<QObject*> painted;
    struct PaintSpy : QObject {
        std::function<void(QObject*)> onPaint;
        bool eventFilter(QObject* o, QEvent* e) override {
            if (e->type() == QEvent::Paint) onPaint(o);
            return false;
        }
    } spy;
    // When each view first painted the current run (ms since submission): the token stream, the
    // attention heatmap and the logit-lens heatmap.
    QElapsedTimer sinceSubmit;
    double tokensAt = 0, attentionAt = 0, lensAt = 0;
    spy.onPaint = [&](QObject* o) {
        // The lens counts once its cells (computed on the worker after the run) are drawn.
        if (o == window.logitLensView()->plot() && !window.logitLensView()->isFilled()) return;
        for (const auto& [w, drawn] : views)
            if (w == o && runStages.count(drawn()) && painted.insert(o).second) {
                const double at = sinceSubmit.nsecsElapsed() / 1e6;
                if (o == window.tokenView()) tokensAt = at;
                if (o == window.attentionView()->plot()) attentionAt = at;
                if (o == window.logitLensView()->plot()) lensAt = at;
            }
    };
    for (const auto& v : views) v.first->installEventFilter(&spy);
    // --paint-report: every widget painted after the last default run, with its region, to find
    // what repaints beyond the views.
    struct PaintLog : QObject {
        std::vector<std::string> lines;
        bool eventFilter(QObject* o, QEvent* e) override {
            if (e->type() == QEvent::Paint) {
                const QRect r = static_cast<QPaintEvent*>(e)->rect();
                lines.push_back(std::string(o->metaObject()->className()) + " '" + o->objectName().toStdString() + "' " +
                                std::to_string(r.width()) + "x" + std::to_string(r.height()));
            }
            return false;
        }
    } paintLog;
    std::printf("circuitscope bench_gui: %s, 32-token prompt, %d runs, %d threads, window 1400x900 (%s)\n", dir.c_str(),
                runs, threads, qPrintable(QGuiApplication::platformName()));
    std::printf("  %-40s %10s %10s %12s %10s\n", "scenario", "forward", "model run", "GUI total", "GUI's own");
    // The third scenario shows each stage of the analysis as it arrives (what the window does for
    // slow models; SessionController::setStagesAbove), to measure whether painting beside the
    // worker pays here.
    for (const auto& [newTokens, staged] : std::vector<std::pair<int, bool>>{{0, false}, {32, false}, {0, true}}) {
        s.maxNewTokens = newTokens;
        session.setStagesAbove(staged ? 0.0 : 1e9);
        std::vector<double> tokensShown, attentionShown, lensShown;
        std::vector<double> gui, core, forward, untilFinished, analysisForward, analysisRest, rebuild, coreGenerate,
            coreAnalysis, workerGenerate, workerAnalysis, trailing;
        for (int r = 0; r < runs + 3; ++r) {
            QElapsedTimer tc;
            tc.start();
            {
                cs::SamplingOptions so;
                so.maxNewTokens = newTokens;
                std::vector<long> out;
                QElapsedTimer tg;
                tg.start();
                if (newTokens > 0) out = cs::generate(*m, std::vector<long>(ids.begin(), ids.end()), so);
                const double genMs = tg.nsecsElapsed() / 1e6;
                std::vector<int> all = ids;
                for (long id : out) all.push_back(static_cast<int>(id));
                cs::PromptAnalysis a = cs::analyzeTokens(m, tok, all, static_cast<int>(ids.size()));
                // What the lens view shows (every position, at this length) is computed for it.
                QElapsedTimer tl;
                tl.start();
                a.lens->computeAll();
                const double lensMs = tl.nsecsElapsed() / 1e6;
                if (r >= 3) {
                    coreGenerate.push_back(genMs);
                    coreAnalysis.push_back(a.totalSeconds * 1e3 + lensMs);
                    analysisForward.push_back(a.modelSeconds * 1e3);
                    analysisRest.push_back((a.totalSeconds - a.modelSeconds) * 1e3 + lensMs);
                }
            }
            const double coreMs = tc.nsecsElapsed() / 1e6;

            const bool logThis = paintReport && newTokens == 32 && r == runs + 2;
            if (logThis) app.installEventFilter(&paintLog);
            painted.clear();
            runStages.clear();
            rebuildMs = 0;
            const int replotsBefore = replots;
            bool finished = false;
            double runMs = 0;
            QElapsedTimer t;
            auto c = QObject::connect(&session, &cs::ui::SessionController::runFinished, [&] {
                finished = true;
                runMs = t.nsecsElapsed() / 1e6;  // worker done, every view told
            });
            app.recording = eventReport && r >= 3;
            t.start();
            sinceSubmit.start();
            session.run(s);
            // Until the run has finished and every view has painted it: the plots replot from
            // their queued requests, then the window paints what they and the chips marked dirty.
            while (!(finished && painted.size() == views.size() && replots - replotsBefore >= 2 &&
                     window.logitLensView()->isFilled()) &&
                   t.elapsed() < 10000)
                QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
            app.recording = false;
            QObject::disconnect(c);
            if (replots - replotsBefore < 2 || painted.size() < views.size()) {
                std::fprintf(stderr, "bench_gui: not every view repainted (%d replots, %zu of %zu views)\n",
                             replots - replotsBefore, painted.size(), views.size());
                return 1;
            }
            const double ms = t.nsecsElapsed() / 1e6;
            if (logThis) {
                app.removeEventFilter(&paintLog);
                for (const std::string& l : paintLog.lines) std::printf("    painted: %s\n", l.c_str());
            }
            // Whatever the window still has queued once the views have painted (nothing, when
            // no widget relays out or repaints behind them) runs now, outside the measurement but
            // reported, so that the next round starts from a quiet window: left queued, it would
            // run beside the next round's worker and be billed as model time.
            QElapsedTimer tt;
            tt.start();
            QCoreApplication::processEvents(QEventLoop::AllEvents, 100);
            const double trailingMs = tt.nsecsElapsed() / 1e6;

            // A bare forward pass, for scale; after the GUI's round rather than just before the
            // core's, so that the core's model run does not start with its thread warmed up.
            QElapsedTimer tf;
            tf.start();
            {
                at::Tensor input = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
                at::Tensor logits = m->forward(input);
                (void)logits.data_ptr<float>();
            }
            const double forwardMs = tf.nsecsElapsed() / 1e6;

            if (r >= 3) {
                forward.push_back(forwardMs);
                core.push_back(coreMs);
                gui.push_back(ms);
                untilFinished.push_back(runMs);
                rebuild.push_back(rebuildMs);
                workerGenerate.push_back(session.result().generateSeconds * 1e3);
                workerAnalysis.push_back(session.result().analysisSeconds * 1e3);
                trailing.push_back(trailingMs);
                tokensShown.push_back(tokensAt);
                attentionShown.push_back(attentionAt);
                lensShown.push_back(lensAt);
            }
        }
        if (session.analysis()->promptLength != 32) {
            std::fprintf(stderr, "bench_gui: the prompt ran as %d tokens, not 32\n", session.analysis()->promptLength);
            return 1;
        }
        if (eventReport) {
            std::vector<std::pair<double, std::string>> rows;
            for (const auto& [what, v] : app.spent) rows.push_back({v.first / runs, what + " x" + std::to_string(v.second / runs)});
            std::sort(rows.rbegin(), rows.rend());
            for (size_t i = 0; i < rows.size() && i < 25; ++i)
                std::printf("    GUI thread: %7.3f ms per run  %s\n", rows[i].first, rows[i].second.c_str());
            app.spent.clear();
        }
        const double g = median(gui), c = median(core), f = median(forward);
        const std::string name = staged            ? "prompt only, each stage shown on arrival"
                                 : newTokens == 0 ? "prompt only (new tokens: 0)"
                                                  : "prompt + 32 greedy tokens (the default)";
        std::printf("  %-40s %7.2f ms %7.2f ms %9.2f ms %7.2f ms = %.0f%% of the model run  [target <= 20%%]\n", name.c_str(), f,
                    c, g, g - c, 100.0 * (g - c) / c);
        std::printf("  %-40s %7s    %7s    %9s    (%.2f ms until the run finished, of which %.2f ms the views'\n"
                    "  %-40s %7s    %7s    %9s     handling of its stages; then %.2f ms until every view had painted)\n",
                    "", "", "", "", median(untilFinished), median(rebuild), "", "", "", "", g - median(untilFinished));
        std::printf("  %-40s %7s    %7s    %9s    (model run's analysis: %.2f ms forward with caches, %.2f ms lens and top-k)\n",
                    "", "", "", "", median(analysisForward), median(analysisRest));
        std::printf("  %-40s %7s    %7s    %9s    (generate + analyse: %.2f + %.2f ms in core, %.2f + %.2f ms on the\n"
                    "  %-40s %7s    %7s    %9s     GUI's worker; still queued after the views painted: %.2f ms)\n",
                    "", "", "", "", median(coreGenerate), median(coreAnalysis), median(workerGenerate),
                    median(workerAnalysis), "", "", "", "", median(trailing));
        std::printf("  %-40s %7s    %7s    %9s    (on screen after: tokens %.2f ms, attention %.2f ms, logit lens %.2f ms)\n",
                    "", "", "", "", median(tokensShown), median(attentionShown), median(lensShown));
    }
    // Where the painting goes: each view repainted on its own, same data.
    auto paintMs = [&](const std::function<void()>& f) {
        std::vector<double> v;
        for (int r = 0; r < runs; ++r) {
            QElapsedTimer t;
            t.start();
            f();
            v.push_back(t.nsecsElapsed() / 1e6);
        }
        return median(v);
    };
    std::printf("  painting, each view alone: attention plot %.2f ms, logit-lens plot %.2f ms, tokens %.2f ms, "
                "thumbnails %.2f ms, attention table %.2f ms, logit-lens table %.2f ms, whole window %.2f ms\n",
                paintMs([&] { window.attentionView()->plot()->replot(QCustomPlot::rpImmediateRefresh); }),
                paintMs([&] { window.logitLensView()->plot()->replot(QCustomPlot::rpImmediateRefresh); }),
                paintMs([&] { window.tokenView()->repaint(); }),
                paintMs([&] { window.attentionView()->thumbnails()->repaint(); }),
                paintMs([&] { window.attentionView()->topTable()->viewport()->repaint(); }),
                paintMs([&] { window.logitLensView()->table()->viewport()->repaint(); }), paintMs([&] { window.repaint(); }));
    {
        std::vector<double> one, two;
        for (int r = 0; r < 5; ++r) {
            one.push_back(arithmeticMs(1));
            two.push_back(arithmeticMs(2));
        }
        std::printf("  machine: the same arithmetic takes %.0f ms on one thread alone and %.0f ms on each of two at once "
                    "(%.2fx): %s\n",
                    median(one), median(two), median(two) / median(one),
                    median(two) / median(one) < 1.15 ? "the two cores compute side by side at full speed"
                                                     : "two busy threads slow each other (shared core?)");
    }
    std::printf("  (model run: core generating and computing what the views show, no GUI; GUI total: the same\n"
                "   submitted to the window until every view has repainted; forward: one bare forward pass)\n");
    // Launch to first run on screen: the real binary, demo model, a 32-token continuation.
    std::vector<double> launches;
    for (int r = 0; r < 5; ++r) {
        QElapsedTimer t;
        t.start();
        const std::string cmd = std::string(CS_CLI_PATH) + " --model " + dir + " --threads " + std::to_string(threads) +
                                " --quit-after-first-run > /dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::fprintf(stderr, "bench_gui: %s failed\n", cmd.c_str());
            return 1;
        }
        launches.push_back(t.nsecsElapsed() / 1e6);
    }
    std::printf("  launch -> window with a prompt run (to exit) %8.0f ms  [target <= 2000 ms]\n", median(launches));
    return 0;
}
