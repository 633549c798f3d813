// What a user feels when dragging a steering slider: from the slider's value changing to the
// steered 32-token continuation repainted beside the baseline, in the real window (offscreen) on
// the demo model. The reference, in the same process, is core generating the same steered
// continuation with no window around it; the target is a median of at most 100 ms.
//
//   bench_steer_gui [--threads N] [--moves M]
#include "model/ModelLoader.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "sae/SaeLoader.h"
#include "steer/Steering.h"
#include "tokenize/Tokenizer.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"
#include "ui/views/SteeringComparisonView.h"
#include "ui/views/SteeringRowDelegate.h"
#include "ui/views/SteeringRowModel.h"
#include "ui/views/SteeringView.h"

#include <QDockWidget>

#include <QApplication>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QSettings>
#include <QSlider>
#include <QStandardPaths>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace cs::ui;

namespace {

const QString kPrompt = QStringLiteral("Once upon a time, there was a girl named Lily. She");
constexpr int kNewTokens = 32;

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// Runs the event loop until `signal` of `sender` fires or `ms` pass; false on timeout.
template <class Sender, class Signal>
bool waitFor(Sender* sender, Signal signal, int ms) {
    QEventLoop loop;
    bool fired = false;
    auto c = QObject::connect(sender, signal, &loop, [&] { fired = true; loop.quit(); });
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
    QObject::disconnect(c);
    return fired;
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    if (!std::getenv("QT_QPA_PLATFORM")) ::setenv("QT_QPA_PLATFORM", "offscreen", 1);
    QApplication app(argc, argv);
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("CircuitscopeBenchSteerGui");
    QSettings().clear();
    QSettings().setValue("autoIndexDemo", false);  // no background indexing competing for the cores
    int threads = 2, moves = 60;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
        else if (a == "--moves" && i + 1 < argc) moves = std::stoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    const std::string dir = cs::resolveModelDir("demo");

    SessionController session;
    MainWindow window(&session);
    window.resize(1400, 900);
    window.show();
    window.applySettings(RunSettings{kPrompt, kNewTokens, true, 1.0, 0});
    window.openModel(QString::fromStdString(dir));
    if (!waitFor(&session, &SessionController::runFinished, 60000)) {
        std::fprintf(stderr, "bench_steer_gui: the first run did not finish\n");
        return 1;
    }
    SteeringView* steering = window.steeringView();
    window.steeringDock()->show();
    window.steeringDock()->raise();
    // res-L0 #310 (boats and the sea, docs/steering.md): at these strengths it rewrites the story.
    steering->addFeature("res-L0", 310);
    waitFor(steering, &SteeringView::comparisonUpdated, 30000);
    StrengthEditor* editor = steering->strengthEditor(0);
    QSlider* slider = editor->slider();

    // The slider swept back and forth over its upper half, one step per move, as a drag would.
    std::vector<double> latency, regenerate;
    int value = slider->maximum() / 2;
    int direction = 1;
    for (int m = 0; m < moves + 3; ++m) {
        value += direction * std::max(1, slider->maximum() / 40);
        if (value >= slider->maximum() || value <= slider->maximum() / 2) direction = -direction;
        QElapsedTimer t;
        t.start();
        slider->setValue(value);
        if (!waitFor(steering, &SteeringView::comparisonUpdated, 30000)) {
            std::fprintf(stderr, "bench_steer_gui: no result after a slider move\n");
            return 1;
        }
        steering->comparisonView()->repaint();
        const double ms = t.nsecsElapsed() / 1e6;
        if (m >= 3) latency.push_back(ms);  // the first moves warm caches and allocators
    }

    // The reference: core alone continuing with the plan the last move left.
    auto model = cs::loadModel(dir);
    auto tok = cs::loadTokenizer(dir);
    std::vector<cs::SteeringSae> saes;
    for (const auto& d : cs::demoSaeDirs()) saes.push_back({std::filesystem::path(d).filename().string(), cs::loadSae(d)});
    const std::vector<int> ids = tok->encodePrompt(kPrompt.toStdString());
    cs::SamplingOptions s;
    s.maxNewTokens = kNewTokens;
    std::vector<double> core;
    for (int i = 0; i < 21; ++i) {
        cs::Steering plan(*model, saes, steering->plan());
        QElapsedTimer t;
        t.start();
        cs::generateSteered(*model, std::vector<long>(ids.begin(), ids.end()), s, plan);
        core.push_back(t.nsecsElapsed() / 1e6);
    }
    const double med = percentile(latency, 0.5), p95 = percentile(latency, 0.95);
    const double coreMed = percentile(core, 0.5);
    std::printf("bench_steer_gui: demo model, %d new tokens, %d threads, %zu slider moves, debounce %d ms\n",
                kNewTokens, threads, latency.size(), SteeringView::kDebounceMs);
    std::printf("  slider move -> steered continuation repainted: median %.1f ms, p95 %.1f ms, max %.1f ms (target: median <= 100)\n",
                med, p95, percentile(latency, 1.0));
    std::printf("  core generateSteered alone (reference):       median %.1f ms\n", coreMed);
    std::printf("  ratio window / core: %.2f (median); the debounce is %d ms of it\n", med / coreMed,
                SteeringView::kDebounceMs);
    return 0;
}
