// A large attribution graph in the real dock, offscreen: the synthetic 10,000-node /
// 1,000,000-link graph the issue names (tests/SyntheticGraph), opened from a file, pruned and
// panned. What a user feels is the GUI thread: the benchmark measures how long the event loop is
// kept from running (its longest gap, sampled by a 5 ms timer) while the graph opens and prunes,
// and the time of each repaint while panning, zooming and focusing the node with the most links,
// against a 60 Hz frame (16.7 ms) as the reference. The file holds the unpruned graph and is
// first shown as it is, the worst case for painting.
//
//   bench_graph_gui [--links N] [--frames F]
#include "SyntheticGraph.h"

#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/GraphView.h"

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QMouseEvent>
#include <QTemporaryDir>
#include <QTimer>
#include <QWheelEvent>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace cs::ui;

namespace {

constexpr double kFrameMs = 1000.0 / 60;

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// Runs the event loop until `done` holds, sampling how long the loop was kept busy: the longest
// gap between ticks of a 5 ms timer, minus its period.
double longestStallMs(const std::function<bool()>& done, int timeoutMs = 120000) {
    QElapsedTimer clock, gap;
    clock.start();
    gap.start();
    double worst = 0;
    QTimer tick;
    tick.setInterval(5);
    QObject::connect(&tick, &QTimer::timeout, [&] {
        worst = std::max(worst, gap.nsecsElapsed() / 1e6 - 5);
        gap.restart();
    });
    tick.start();
    while (!done() && clock.elapsed() < timeoutMs) QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 20);
    worst = std::max(worst, gap.nsecsElapsed() / 1e6 - 5);
    return worst;
}

void send(QWidget* w, QEvent::Type type, QPointF at, Qt::MouseButtons buttons) {
    QMouseEvent e(type, at, w->mapToGlobal(at), type == QEvent::MouseMove ? Qt::NoButton : Qt::LeftButton, buttons,
                  Qt::NoModifier);
    QCoreApplication::sendEvent(w, &e);
}

// Repaints `frames` times, each after `step`, and returns each frame's milliseconds.
std::vector<double> timeFrames(QWidget* w, int frames, const std::function<void(int)>& step) {
    std::vector<double> ms;
    QElapsedTimer t;
    for (int i = 0; i < frames; ++i) {
        t.start();
        step(i);
        w->repaint();
        ms.push_back(t.nsecsElapsed() / 1e6);
    }
    return ms;
}

void report(const char* what, const std::vector<double>& ms) {
    const double med = percentile(ms, 0.5), p95 = percentile(ms, 0.95), worst = percentile(ms, 1.0);
    std::printf("  %-34s median %7.2f ms  p95 %7.2f ms  max %7.2f ms  (p95 / 60 Hz frame %.2f)\n", what, med, p95,
                worst, p95 / kFrameMs);
}

// Pans by dragging across the canvas, one repaint per mouse move.
std::vector<double> pan(GraphCanvas* c, int frames) {
    const QPointF start(c->width() / 2.0, c->height() / 2.0);
    send(c, QEvent::MouseButtonPress, start, Qt::LeftButton);
    auto ms = timeFrames(c, frames, [&](int i) {
        const double dx = 6.0 * ((i / 20) % 2 ? -1 : 1);
        const QPointF at = start + QPointF(dx * (i % 20 + 1), 2.0 * (i % 7));
        send(c, QEvent::MouseMove, at, Qt::LeftButton);
    });
    send(c, QEvent::MouseButtonRelease, start, Qt::NoButton);
    return ms;
}

std::vector<double> zoom(GraphCanvas* c, int frames) {
    return timeFrames(c, frames, [&](int i) {
        const QPointF at(c->width() / 2.0, c->height() / 2.0);
        QWheelEvent e(at, c->mapToGlobal(at), QPoint(), QPoint(0, i % 2 ? -120 : 120), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
        QCoreApplication::sendEvent(c, &e);
    });
}

int busiestNode(const GraphCanvas* c) {
    int best = -1;
    size_t most = 0;
    for (size_t i = 0; i < c->graph().nodes.size(); ++i) {
        const size_t n = c->inputLinks(static_cast<int>(i)).size() + c->outputLinks(static_cast<int>(i)).size();
        if (n > most) { most = n; best = static_cast<int>(i); }
    }
    return best;
}

void paintScenarios(const char* title, GraphView& view, int frames) {
    GraphCanvas* c = view.canvas();
    std::printf("%s: %zu nodes, %zu links shown\n", title, c->graph().nodes.size(), c->graph().links.size());
    report("pan (drag)", pan(c, frames));
    report("zoom (wheel)", zoom(c, frames));
    const int hub = busiestNode(c);
    if (hub >= 0) {
        const size_t links = c->inputLinks(hub).size() + c->outputLinks(hub).size();
        c->focusNode(hub);
        QCoreApplication::processEvents();
        std::printf("  focused node %s with %zu links\n", c->graph().nodes[static_cast<size_t>(hub)].id.c_str(), links);
        report("pan with the node focused", pan(c, frames));
        c->focusNode(-1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (!std::getenv("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    size_t links = 1000000;
    int frames = 60;
    for (int i = 1; i + 1 < argc; ++i) {
        if (!std::strcmp(argv[i], "--links")) links = std::strtoul(argv[++i], nullptr, 10);
        else if (!std::strcmp(argv[i], "--frames")) frames = std::atoi(argv[++i]);
    }

    QElapsedTimer t;
    t.start();
    const cs::AttributionGraph g = cstest::randomGraph(20, 10, 9780, links, 7);
    QTemporaryDir dir;
    const QString path = dir.filePath("big.json");
    cs::saveGraph(path.toStdString(), g);
    std::printf("synthetic graph: %zu nodes, %zu links; written in %.2f s (%.0f MB)\n", g.nodes.size(), g.links.size(),
                t.nsecsElapsed() / 1e9, QFileInfo(path).size() / 1e6);

    GraphView view(nullptr);
    view.resize(1400, 800);
    view.show();
    QCoreApplication::processEvents();

    // Opening a file as the Open button does: read on a pool thread, shown on the GUI thread.
    bool opened = false, failed = false;
    QObject::connect(&view, &GraphView::graphOpened, [&] { opened = true; });
    QObject::connect(&view, &GraphView::failed, [&](const QString& e) {
        std::fprintf(stderr, "%s\n", qPrintable(e));
        failed = true;
    });
    t.restart();
    view.openGraphInBackground(path);
    const double openStall = longestStallMs([&] { return opened || failed; });
    if (failed) return 1;
    std::printf("open (read on a pool thread, shown here): %.2f s; longest GUI-thread stall %.1f ms (%.2f frames)\n",
                t.nsecsElapsed() / 1e9, openStall, openStall / kFrameMs);

    // The file holds the unpruned graph, shown as it is: the worst case for painting.
    paintScenarios("as opened (the unpruned file)", view, frames);

    // Re-prune at the default thresholds: big graphs prune off the GUI thread.
    bool shown = false;
    QObject::connect(&view, &GraphView::graphShown, [&] { shown = true; });
    t.restart();
    view.setThresholds(0.8, 0.98);
    const double stall = longestStallMs([&] { return shown; });
    std::printf("re-prune at 0.8 / 0.98: %.2f s to show; longest GUI-thread stall %.1f ms (%.2f frames)\n",
                t.nsecsElapsed() / 1e9, stall, stall / kFrameMs);
    paintScenarios("pruned graph", view, frames);
    return 0;
}
