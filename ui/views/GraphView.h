#pragma once
// The attribution-graph dock: the canvas, a toolbar (thresholds that re-prune live, search, fit,
// compute for the session's prompt, open and save), and a side panel with the focused node's
// strongest inputs and outputs and the pinned subgraph's scores. The unpruned graph stays in
// memory, so a threshold change prunes again from it instead of from what is shown.
#include "attribution/AttributionGraph.h"

#include <QWidget>

#include <memory>

class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTreeWidget;

namespace cs::ui {

class GraphCanvas;
class SessionController;

class GraphView : public QWidget {
    Q_OBJECT
public:
    explicit GraphView(SessionController* session, QWidget* parent = nullptr);

    GraphCanvas* canvas() const { return canvas_; }
    // The graph before pruning; the canvas shows pruneGraph of it at the spin boxes' thresholds.
    // A graph from a file is shown as it is until a threshold changes.
    void setFullGraph(AttributionGraph g, bool prune = true);
    const AttributionGraph* fullGraph() const { return full_.get(); }
    void setThresholds(double node, double edge);  // re-prunes
    QDoubleSpinBox* nodeThresholdBox() const { return nodeBox_; }
    QDoubleSpinBox* edgeThresholdBox() const { return edgeBox_; }
    QLineEdit* searchBox() const { return search_; }
    QTreeWidget* connections() const { return connections_; }
    QLabel* scoresLabel() const { return scores_; }

    // Return an error line, or empty.
    QString openGraph(const QString& path);
    QString saveGraph(const QString& path) const;
    // Computes the graph of the session's current prompt with its attached transcoders, on the
    // worker; graphComputed or failed follows.
    void computeGraph();
    void cancelCompute();

Q_SIGNALS:
    void graphComputed();
    // The canvas shows a new pruning (at once for small graphs, later for large ones, whose
    // pruning runs off the GUI thread).
    void graphShown();
    void failed(const QString& message);

private:
    void reprune();
    void showGraph(AttributionGraph pruned);
    void updateConnections();
    void updateScores();
    void updateSearch();
    void chooseOpen();
    void chooseSave();

    SessionController* session_;
    GraphCanvas* canvas_;
    QDoubleSpinBox* nodeBox_;
    QDoubleSpinBox* edgeBox_;
    QLineEdit* search_;
    QLabel* searchInfo_;
    QPushButton* compute_;
    QPushButton* cancel_;
    QProgressBar* progress_;
    QLabel* focusInfo_;
    QTreeWidget* connections_;
    QLabel* scores_;
    std::shared_ptr<const AttributionGraph> full_;
    int pruneTicket_ = 0;
    std::shared_ptr<std::atomic<bool>> cancelFlag_;
};

}  // namespace cs::ui
