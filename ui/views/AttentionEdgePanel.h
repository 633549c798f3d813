#pragma once
// Why a head attended where it did, for the graph's side panel: pick a layer, head, query and key
// position, Run, and see the pre-softmax score split into the graph's nodes (core
// decomposeAttention): the strongest contributors on the query side and on the key side, and the
// strongest (query node, key node) pairs, each with its share of the score. Computes on the
// session's worker with the session's prompt and attached transcoders, as Compute Graph does, so
// node ids match the graph's. Clicking a row names its node (nodeChosen), for the canvas to focus.
#include "attribution/AttentionDecomposition.h"

#include <QWidget>

#include <memory>
#include <string>
#include <vector>

class QLabel;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace cs::ui {

class SessionController;

class AttentionEdgePanel : public QWidget {
    Q_OBJECT
public:
    explicit AttentionEdgePanel(SessionController* session, QWidget* parent = nullptr);

    // The tokens to decompose (the graph view: its graph's); empty: the session's last prompt.
    void setTokens(std::vector<long> tokens);
    // Fills the boxes (the graph view: from the focused node's position); does not run.
    void setEdge(int layer, int head, int query, int key);
    AttentionEdge edge() const;
    // Computes the boxes' edge on the worker; computed or failed follows.
    void run();
    // The last result shown, or null.
    const AttentionDecomposition* result() const { return result_.get(); }

    // Rows per table (and pairs computed); 20 by default.
    void setRowsShown(int rows) { rows_ = rows; }
    int rowsShown() const { return rows_; }
    // Columns: node, value, share of the score (pairs: query node, key node, value, share). Each
    // node cell holds the node id in Qt::UserRole, each number cell the exact value.
    QTableWidget* queryTable() const { return queryTable_; }
    QTableWidget* keyTable() const { return keyTable_; }
    QTableWidget* pairTable() const { return pairTable_; }
    QLabel* summary() const { return summary_; }

Q_SIGNALS:
    void nodeChosen(const QString& nodeId);
    void computed();
    void failed(const QString& message);

private:
    void updateRanges();
    void showResult(std::shared_ptr<const AttentionDecomposition> d, const std::vector<QString>& labels);

    SessionController* session_;
    QSpinBox* layer_;
    QSpinBox* head_;
    QSpinBox* query_;
    QSpinBox* key_;
    QPushButton* run_;
    QLabel* summary_;
    QTableWidget* queryTable_;
    QTableWidget* keyTable_;
    QTableWidget* pairTable_;
    std::shared_ptr<const AttentionDecomposition> result_;
    int rows_ = 20;
    std::vector<long> tokens_;
    int ticket_ = 0;  // only the newest run is shown
};

}  // namespace cs::ui
