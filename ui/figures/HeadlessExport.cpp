#include "ui/figures/HeadlessExport.h"

#include "ui/SessionController.h"
#include "ui/figures/FigureExport.h"
#include "store/FeatureStore.h"
#include "ui/views/AttentionView.h"
#include "ui/views/DashboardView.h"
#include "ui/views/FeaturesView.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/SteeringComparisonView.h"
#include "ui/views/TokenStreamView.h"

#include "ui/RunDataJson.h"

#include <QEventLoop>
#include <QSaveFile>

#include <memory>

namespace cs::ui {

namespace {

// Waits for `done` or `failed` from the session; returns the failure message or empty.
template <typename Signal>
QString waitFor(SessionController& session, Signal done) {
    QEventLoop loop;
    QString error;
    auto a = QObject::connect(&session, done, &loop, [&loop] { loop.quit(); });
    auto b = QObject::connect(&session, &SessionController::failed, &loop, [&](const QString& m) {
        error = m;
        loop.quit();
    });
    loop.exec();
    QObject::disconnect(a);
    QObject::disconnect(b);
    return error;
}

QString writeJson(const QString& path, const nlohmann::json& j) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return QObject::tr("%1: cannot write (%2)").arg(path, f.errorString());
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    f.write(text.data(), static_cast<qint64>(text.size()));
    return f.commit() ? QString() : QObject::tr("%1: cannot write (%2)").arg(path, f.errorString());
}

// The dashboard reads the store alone: pieces and logit effects are in it, so no model loads.
QString exportDashboard(const HeadlessExportRequest& r, bool data) {
    if (r.db.isEmpty()) return QObject::tr("--view dashboard: give --db FILE");
    if (r.index < 0) return QObject::tr("--view dashboard: give --index N");
    SessionController session;
    QString error = session.openStore(r.db);
    if (!error.isEmpty()) return error;
    std::string sae;
    try {
        sae = session.store()->sae(r.saeId.toStdString()).id;
        session.store()->feature(sae, r.index);  // the error names the range
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what()).section('\n', 0, 0);
    }
    DashboardView view(&session, QString::fromStdString(sae), r.index);
    view.resize(1000, 900);
    if (data) return writeJson(r.out, view.toJson());
    return exportFigure(view, r.out);
}

}  // namespace

QString exportSteeringComparison(const SteeringComparison& c, const QString& out) {
    const bool data = out.endsWith(".json", Qt::CaseInsensitive);
    if (!data && figureFormat(out).isEmpty())
        return QObject::tr("%1: unknown format (use .png, .svg or .pdf for a figure, .json for its data)").arg(out);
    SteeringComparisonView view;
    view.setComparison(c);
    if (data) return writeJson(out, view.toJson());
    return exportFigure(view, out);
}

QString exportGraphFigure(const AttributionGraph& graph, const QString& out) {
    if (figureFormat(out).isEmpty()) return QObject::tr("%1: unknown figure format (use .png, .svg or .pdf)").arg(out);
    if (graph.nodes.empty()) return QObject::tr("%1: the graph has no nodes").arg(out);
    GraphCanvas canvas;
    canvas.setGraph(graph);
    canvas.resize(canvas.figureSize());
    return exportFigure(canvas, out);
}

QString exportHeadless(const HeadlessExportRequest& r) {
    if (r.view == "steering") return QObject::tr("--view steering: compute the comparison, then call exportSteeringComparison");
    if (r.view != "tokens" && r.view != "attention" && r.view != "logit-lens" && r.view != "features" && r.view != "dashboard")
        return QObject::tr("--view: unknown view '%1' (tokens, attention, logit-lens, features or dashboard)").arg(r.view);
    const bool data = r.out.endsWith(".json", Qt::CaseInsensitive);
    if (!data && figureFormat(r.out).isEmpty())
        return QObject::tr("%1: unknown format (use .png, .svg or .pdf for a figure, .json for its data)").arg(r.out);
    if (r.view == "dashboard") return exportDashboard(r, data);
    SessionController session;
    // --sae replaces the demo's own SAEs.
    session.setAttachDemoSaes(r.saePaths.isEmpty());
    session.loadModel(r.modelDir);
    QString error = waitFor(session, &SessionController::modelLoaded);
    if (!error.isEmpty()) return error;
    if (r.view == "features") {
        if (!r.saePaths.isEmpty()) {
            session.attachSaes(r.saePaths, true);
            error = waitFor(session, &SessionController::saesChanged);
            if (!error.isEmpty()) return error;
        }
        if (session.saes().empty()) return QObject::tr("--view features: give --sae PATH (the demo model has its own)");
        if (!r.db.isEmpty()) {
            error = session.openStore(r.db);
            if (!error.isEmpty()) return error;
        }
    }
    if (r.layer < 0 || r.layer >= session.layers())
        return QObject::tr("--layer %1: the model has layers 0..%2").arg(r.layer).arg(session.layers() - 1);
    if (r.head < 0 || r.head >= session.heads())
        return QObject::tr("--head %1: the model has heads 0..%2").arg(r.head).arg(session.heads() - 1);
    RunSettings s;
    s.prompt = r.prompt;
    s.maxNewTokens = r.maxNewTokens;
    Selection sel;
    if (!r.lensToken.isEmpty()) {
        sel.lensToken = session.tokenIdFor(r.lensToken, &error);
        if (sel.lensToken < 0) return QObject::tr("--lens-token: %1").arg(error);
    }
    sel.position = r.position;
    sel.layer = r.layer;
    sel.head = r.head;
    session.restoreSelectionAfterNextRun(sel);
    session.run(s);
    error = waitFor(session, &SessionController::runFinished);
    if (!error.isEmpty()) return error;
    if (r.position >= session.analysis()->length())
        return QObject::tr("--position %1: the run has positions 0..%2").arg(r.position).arg(session.analysis()->length() - 1);
    if (r.view == "features") {
        FeaturesView view(&session);
        view.resize(760, 600);
        if (data) return writeJson(r.out, view.toJson());
        return exportFigure(view, r.out);
    }
    if (data) return writeJson(r.out, runDataJson(session, r.view.toStdString(), r.layer, r.head));
    std::unique_ptr<QWidget> widget;
    FigureSource* source = nullptr;
    if (r.view == "tokens") {
        auto* v = new TokenStreamView(&session);
        widget.reset(v);
        source = v;
    } else if (r.view == "attention") {
        auto* v = new AttentionView(&session);
        widget.reset(v);
        source = v;
    } else {
        auto* v = new LogitLensView(&session);
        widget.reset(v);
        source = v;
    }
    widget->resize(1000, 700);
    return exportFigure(*source, r.out);
}

}  // namespace cs::ui
