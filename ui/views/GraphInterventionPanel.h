#pragma once
// Intervening on graph nodes, for the graph's side panel: given the focused node (or a supernode's
// members), set, scale or ablate their features at their positions, Run, and see what the real
// model does: each target logit before and after (and its probability), and the greedy
// continuation before and after. The graph says a feature feeds a logit in the linearised model;
// this checks it on the model itself. Computes core interveneOnGraph (semantics in
// core/attribution/GraphIntervention.h) on the session's worker with the session's attached
// transcoders, as Compute Graph does.
#include "attribution/AttributionGraph.h"
#include "attribution/GraphIntervention.h"

#include <QWidget>

#include <map>
#include <memory>
#include <string>
#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QTableWidget;

namespace cs::ui {

class SessionController;

class GraphInterventionPanel : public QWidget {
    Q_OBJECT
public:
    explicit GraphInterventionPanel(SessionController* session, QWidget* parent = nullptr);

    // The nodes to change, the graph's prompt tokens, the tokens whose logits to report (the
    // graph's logit nodes; empty: the most likely one) and the graph's transcoder id per layer
    // (AttributionGraph::saeIds; empty: the attached transcoder of each node's layer). Shows them;
    // does not run. Nodes that are not features are refused at Run with the core's message.
    void setNodes(std::vector<GraphNode> nodes, std::vector<long> tokens, std::vector<long> targets,
                  std::vector<std::string> saeIds = {});
    const std::vector<GraphNode>& nodes() const { return nodes_; }
    // Runs the intervention on the worker; finished or failed follows. Ctrl+Return anywhere in the
    // panel does the same (handled by the panel, so it does not clash with the window's Run Prompt).
    void run();
    // The last result shown, or null.
    const InterventionResult* result() const { return result_.get(); }

    QComboBox* modeBox() const { return mode_; }     // item data: int(NodeIntervention::Kind)
    QDoubleSpinBox* valueBox() const { return value_; }
    QCheckBox* freezeBox() const { return freeze_; }
    QPushButton* runButton() const { return run_; }
    // One row per target: token, logit before, after, change, P before, P after. Number cells hold
    // the exact value in Qt::UserRole, the token cell its id.
    QTableWidget* resultTable() const { return table_; }
    QLabel* continuationBeforeLabel() const { return before_; }
    QLabel* continuationAfterLabel() const { return after_; }
    QLabel* summary() const { return summary_; }

Q_SIGNALS:
    void finished();
    void failed(const QString& message);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void modeChanged();
    void showNodes();
    void showResult(std::shared_ptr<const InterventionResult> r, const std::vector<QString>& targetTexts,
                    const QString& before, const QString& after, const QString& top);
    void fail(const QString& message);

    SessionController* session_;
    QLabel* nodesLabel_;
    QComboBox* mode_;
    QDoubleSpinBox* value_;
    QCheckBox* freeze_;
    QPushButton* run_;
    QLabel* summary_;
    QTableWidget* table_;
    QLabel* before_;
    QLabel* after_;
    std::vector<GraphNode> nodes_;
    std::vector<long> tokens_;
    std::vector<long> targets_;
    std::vector<std::string> saeIds_;
    std::map<int, double> lastValue_;  // per mode, so switching back restores what was typed
    int shownMode_ = -1;
    std::shared_ptr<const InterventionResult> result_;
    int ticket_ = 0;  // only the newest run is shown
};

}  // namespace cs::ui
