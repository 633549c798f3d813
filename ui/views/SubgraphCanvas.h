#pragma once
// The pinned subgraph pane: every pinned node and every supernode as a labelled box, placed by
// layer (rows, embeddings at the bottom) and token position (columns) of its members' mean, and
// the links between boxes (core buildSubgraph: a supernode's links are its members' summed),
// blue positive, red negative, wider for stronger. Click selects a box (Ctrl or Shift+click adds
// to the selection), double-click renames a supernode in place (F2 through the graph view), and
// the pane exports as a figure: boxes and links are vector shapes in SVG and PDF.
#include "attribution/AttributionGraph.h"
#include "attribution/Subgraph.h"
#include "ui/figures/FigureSource.h"

#include <QPointF>
#include <QRectF>
#include <QString>
#include <QWidget>

#include <set>
#include <string>
#include <vector>

class QLineEdit;
class QPainter;

namespace cs::ui {

struct ViewColors;

class SubgraphCanvas : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit SubgraphCanvas(QWidget* parent = nullptr);

    // `g` names the members' kinds, layers, positions and token texts. The selection keeps the
    // boxes it can still find (a supernode by index, a single node by id); a rename in progress
    // is dropped.
    void setSubgraph(const AttributionGraph& g, SubgraphView view);
    const SubgraphView& subgraph() const { return view_; }
    int itemCount() const { return static_cast<int>(view_.nodes.size()); }

    // Box centres in widget coordinates; the box under a point (-1: none).
    QPointF itemCenter(int item) const;
    int itemAt(const QPointF& pos) const;

    std::vector<int> selection() const;  // box indices, ascending
    void setSelection(const std::vector<int>& items);

    // Opens the in-place editor on a supernode's box; false for a single node.
    bool editLabel(int item);
    QLineEdit* labelEditor() const { return editor_; }

    QString figureName() const override;  // "attribution-subgraph"
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;
    QSize sizeHint() const override { return {600, 220}; }

Q_SIGNALS:
    void selectionChanged();
    void itemClicked(int item);    // a plain click on a box
    void itemActivated(int item);  // a double-click on a single node's box
    void renameRequested(int supernode, const QString& label);

protected:
    bool event(QEvent* e) override;  // tooltips
    bool eventFilter(QObject* watched, QEvent* e) override;  // Esc in the editor
    void paintEvent(QPaintEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseDoubleClickEvent(QMouseEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;

private:
    struct Item {
        QString label;
        NodeKind kind = NodeKind::Feature;
        int row = 0;     // index into the rows in use, 0 at the bottom
        int column = 0;  // index into the positions in use
        int supernode = -1;
        int members = 1;
        std::string key;  // what the selection remembers: "s<index>" or "n<node id>"
    };
    std::vector<QRectF> boxes(const QSizeF& size) const;
    void paintSubgraph(QPainter& p, const QSizeF& size, const ViewColors& c, bool figure) const;
    QString tooltip(int item) const;
    void commitEdit();
    void cancelEdit();

    SubgraphView view_;
    std::vector<Item> items_;
    std::vector<QString> columnTexts_;  // per column in use: "pos: token"
    int rows_ = 0;
    std::vector<std::string> nodeIds_;  // the graph's node ids, for tooltips
    std::set<std::string> selected_;    // item keys
    QLineEdit* editor_;
    int editing_ = -1;  // the supernode being renamed
};

}  // namespace cs::ui
