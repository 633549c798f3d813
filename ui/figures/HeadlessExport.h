#pragma once
// `circuitscope export`: the GUI's own views, run without a window (offscreen), render one figure
// to a file (or, for FILE.json, write the view's data). Same session, same views and same painting as the interactive app, so a scripted
// figure is exactly what the window shows.
#include <QString>
#include <QStringList>

namespace cs {
struct SteeringComparison;
struct AttributionGraph;
}

namespace cs::ui {

struct HeadlessExportRequest {
    QString modelDir;
    QString view;        // tokens | attention | logit-lens | features | dashboard
    QString prompt;
    int maxNewTokens = 0;
    int layer = 0, head = 0;
    int position = -1;   // -1: the last token
    QString lensToken;   // the token the logit lens tracks (as typed in the view); empty: the actual next token
    QString out;
    // features: the SAEs to attach (the demo's own when empty and modelDir is the demo);
    // dashboard: saeId names the store's SAE ("" when it has one), index the feature.
    QStringList saePaths;
    QString db;          // dashboard: the feature store (no model needed); features: labels from it
    QString saeId;
    long index = -1;
};

// Needs a QApplication (offscreen is fine). Returns an empty string on success, else the error.
QString exportHeadless(const HeadlessExportRequest& request);

// `export --view steering`: a comparison already computed (runSteeringComparison, as `steer` runs
// it) drawn by the GUI's SteeringComparisonView to PNG/SVG/PDF, or its JSON for FILE.json. Needs a
// QApplication. Returns an empty string on success, else the error.
QString exportSteeringComparison(const SteeringComparison& comparison, const QString& out);

// `attribute --out FILE.(png|svg|pdf)`: a graph drawn by the GUI's GraphCanvas, as the Attribution
// graph dock shows it fitted (its pinned and clicked nodes with their links). Needs a
// QApplication. Returns an empty string on success, else the error.
QString exportGraphFigure(const AttributionGraph& graph, const QString& out);

}  // namespace cs::ui
