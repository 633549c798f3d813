#pragma once
// The attribution-graph dock: the canvas, a toolbar (thresholds that re-prune live, search, fit,
// compute for the session's prompt, open and save), the pinned subgraph pane under the canvas
// (supernodes: group, rename, ungroup; exports as a figure), and a side panel of tabs: the focused
// node's strongest inputs and outputs (Connections), its dashboard (Dashboard), supernodes
// proposed from similar edge profiles, one click to group (Suggestions), interventions on the
// chosen nodes (Intervene) and one attention score split into nodes' terms (Attention); the
// pinned subgraph's scores stay under the tabs. The unpruned graph stays in memory, so a threshold change prunes
// again from it instead of from what is shown; the viewer's state (focus, pins, supernodes) is
// kept beside it, so a stricter threshold and back loses none of it.
#include "attribution/AttributionGraph.h"
#include "attribution/SupernodeSuggestions.h"

#include <QWidget>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSplitter;
class QTabWidget;
class QTreeWidget;
class QTreeWidgetItem;

namespace cs::ui {

class AttentionEdgePanel;
class DashboardView;
class GraphInterventionPanel;
class GraphCanvas;
class SessionController;
class SubgraphCanvas;

class GraphView : public QWidget {
    Q_OBJECT
public:
    explicit GraphView(SessionController* session, QWidget* parent = nullptr);

    GraphCanvas* canvas() const { return canvas_; }
    SubgraphCanvas* subgraphCanvas() const { return subgraph_; }
    // The side panel's tabs: Connections, Dashboard, Suggestions, Intervene, Attention.
    QTabWidget* sidePanel() const { return side_; }
    // Intervene: set, scale or ablate the selected subgraph boxes' members, else the focused node.
    GraphInterventionPanel* interventionPanel() const { return intervene_; }
    // Attention: decompose one attention score; the focused node fills in its layer and position.
    AttentionEdgePanel* attentionPanel() const { return attention_; }
    // The graph before pruning; the canvas shows pruneGraph of it at the spin boxes' thresholds.
    // A graph from a file is shown as it is until a threshold changes. Not modified after it.
    void setFullGraph(AttributionGraph g, bool prune = true);
    const AttributionGraph* fullGraph() const { return full_.get(); }
    void setThresholds(double node, double edge);  // re-prunes
    QDoubleSpinBox* nodeThresholdBox() const { return nodeBox_; }
    QDoubleSpinBox* edgeThresholdBox() const { return edgeBox_; }
    QLineEdit* searchBox() const { return search_; }
    QTreeWidget* connections() const { return connections_; }
    QLabel* scoresLabel() const { return scores_; }

    // Supernodes. Group (G): the boxes selected in the subgraph pane, else every pinned node not
    // in a supernode, into a new supernode labelled from its members' labels, whose label editor
    // then opens; returns its index, or -1 when fewer than two nodes would be grouped. Ungroup
    // (Shift+G): the selected supernodes. Rename (F2): the selected supernode, else the focused
    // node's, in place.
    int groupSelection();
    bool ungroupSelection();
    bool renameSelected();
    bool renameSupernode(int index, const QString& label);

    // The focused feature's dashboard when the Dashboard tab is shown (null otherwise, or for a
    // node that is not a feature: dashboardNote() then says why).
    DashboardView* dashboard() const { return dashboard_; }
    QLabel* dashboardNote() const { return dashboardNote_; }

    // The suggestions listed (computed when the Suggestions tab is shown); acceptSuggestion groups
    // row's members (pinning them) as the row's Group button does; returns the supernode's index.
    QTreeWidget* suggestionList() const { return suggestionList_; }
    const std::vector<SupernodeSuggestion>& suggestions() const { return suggestions_; }
    int acceptSuggestion(int row);

    // Pins, supernodes and their labels changed since the graph was computed, opened or saved.
    bool isModified() const { return modified_; }

    // Return an error line, or empty. Saving writes what the canvas shows (supernode members a
    // threshold hid are left out) and clears the modified flag.
    QString openGraph(const QString& path);  // reads on the calling thread
    // Reads on a pool thread and shows the graph here (the Open button): graphOpened or failed.
    void openGraphInBackground(const QString& path);
    QString saveGraph(const QString& path);
    // Computes the graph of the session's current prompt with its attached transcoders, on the
    // worker; graphComputed or failed follows.
    void computeGraph();
    void cancelCompute();

Q_SIGNALS:
    void graphComputed();
    // The canvas shows a new pruning (at once for small graphs, later for large ones, whose
    // pruning runs off the GUI thread).
    void graphShown();
    void graphOpened();
    void failed(const QString& message);
    void modifiedChanged(bool modified);
    void exportSubgraphRequested();  // the subgraph pane's Export button
    // From the dashboard in the side panel, for the window to act on as for any dashboard.
    void openFeature(const QString& saeId, long index);
    void steerRequested(const QString& saeId, long index);
    void promptRequested(const QString& text);
    void indexRequested();

protected:
    bool eventFilter(QObject* watched, QEvent* e) override;  // leaving the connections list

private:
    void reprune();
    void showOpenedGraph(AttributionGraph g);
    void showGraph(AttributionGraph pruned);
    void updateConnections();
    void updateScores();
    void updateSearch();
    void updateSubgraph();
    void updateDashboard();
    void updateSuggestions();
    void updateInterventionNodes();
    void updateAttentionEdge();
    void updateActions();
    void setModified(bool modified);
    void canvasPinsChanged();
    void canvasSupernodesChanged();
    void canvasMenu(const QPoint& at);
    void subgraphMenu(const QPoint& at);
    std::vector<int> selectedSupernodes() const;
    std::vector<int> groupCandidates() const;
    bool startRename(int supernode);
    void chooseOpen();
    void chooseSave();

    SessionController* session_;
    GraphCanvas* canvas_;
    SubgraphCanvas* subgraph_;
    QSplitter* canvasSplit_;
    QDoubleSpinBox* nodeBox_;
    QDoubleSpinBox* edgeBox_;
    QLineEdit* search_;
    QLabel* searchInfo_;
    QPushButton* compute_;
    QPushButton* cancel_;
    QPushButton* save_;
    QProgressBar* progress_;
    QPushButton* group_;
    QPushButton* ungroup_;
    QPushButton* rename_;
    QTabWidget* side_;
    QLabel* focusInfo_;
    QTreeWidget* connections_;
    QWidget* dashboardPage_;
    QLabel* dashboardNote_;
    DashboardView* dashboard_ = nullptr;
    QTreeWidget* suggestionList_;
    QLabel* suggestionInfo_;
    std::vector<SupernodeSuggestion> suggestions_;
    bool suggestionsStale_ = true;
    QLabel* scores_;
    GraphInterventionPanel* intervene_;
    AttentionEdgePanel* attention_;
    std::shared_ptr<const AttributionGraph> full_;
    // The viewer's state for the unpruned graph: pins and supernodes may name nodes the current
    // pruning hides.
    std::vector<std::string> pinnedIds_;
    std::vector<Supernode> supernodes_;
    std::string clickedId_;
    bool modified_ = false;
    int pruneTicket_ = 0;
    int openTicket_ = 0;
    std::shared_ptr<std::atomic<bool>> cancelFlag_;
};

}  // namespace cs::ui
