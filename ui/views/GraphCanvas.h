#pragma once
// An attribution graph drawn as circuit-tracer's viewer lays it out: x = token position (the
// tokens along the bottom), y = layer (embeddings at the bottom, logits at the top), the features
// of one (layer, position) cell side by side within the cell. Node size says influence, shape and
// colour the kind. Links are drawn only for the focused node and among pinned nodes: a graph can
// hold a million links, and drawing them all would be both slow and unreadable. One painting
// function serves the screen and the exported figure (nodes are vector shapes in SVG and PDF).
#include "attribution/AttributionGraph.h"
#include "ui/figures/FigureSource.h"

#include <QPointF>
#include <QRectF>
#include <QWidget>

#include <vector>

class QPainter;

namespace cs::ui {

struct ViewColors;

class GraphCanvas : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit GraphCanvas(QWidget* parent = nullptr);

    // Takes the graph's pins and clickedId as the canvas's; ids the graph lacks are dropped.
    void setGraph(AttributionGraph g);
    // With pinnedIds and clickedId as the canvas shows them.
    const AttributionGraph& graph() const { return graph_; }
    bool isEmpty() const { return graph_.nodes.empty(); }

    int focusedNode() const { return focused_; }
    void focusNode(int node);  // -1: none; emits nodeClicked on a change
    bool isPinned(int node) const;
    void togglePin(int node);  // emits pinsChanged
    std::vector<int> pinnedNodes() const;  // node indices, in pin order
    // Nodes to mark (search matches); indices outside the graph are ignored.
    void setHighlighted(std::vector<int> nodes);
    const std::vector<int>& highlighted() const { return highlighted_; }

    // Link indices into graph().links whose target (inputs) or source (outputs) is `node`;
    // built once per graph so focusing a node never scans the link list.
    std::vector<int> inputLinks(int node) const;
    std::vector<int> outputLinks(int node) const;

    // Where a node is drawn now, in widget coordinates; and the node under a point (-1: none).
    QPointF nodeCenter(int node) const;
    int nodeAt(const QPointF& pos) const;
    void fitToView();
    double zoom() const { return zoom_; }

    QString figureName() const override;  // "attribution-graph"
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;
    QSize sizeHint() const override { return {900, 600}; }

Q_SIGNALS:
    void nodeClicked(int node);  // the focused node changed (-1: none)
    void pinsChanged();

protected:
    bool event(QEvent* e) override;  // tooltips
    void paintEvent(QPaintEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;
    void wheelEvent(QWheelEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mouseReleaseEvent(QMouseEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;

private:
    // A mapping from the layout's coordinates to a device: p' = p * zoom + offset.
    struct View {
        double zoom = 1;
        QPointF offset;
        QPointF map(const QPointF& p) const { return p * zoom + offset; }
    };
    void layoutNodes();
    void syncStateToGraph();
    View fitView(const QSizeF& size) const;
    View currentView() const { return {zoom_, offset_}; }
    double nodeRadius(int node, const View& v) const;
    void paintGraph(QPainter& p, const QSizeF& size, const View& v, const ViewColors& c, bool figure) const;
    QRectF plotArea(const QSizeF& size) const;

    AttributionGraph graph_;
    std::vector<QPointF> pos_;  // per node, in layout coordinates
    QRectF world_;              // the layout's bounds
    std::vector<double> columnLeft_;  // positions_ + 1 edges: a column is as wide as its fullest cell
    double rowHeight_ = 1;
    int positions_ = 0;
    // CSR lists: links of node n are linkIdx[start[n] .. start[n+1]).
    std::vector<int> inStart_, inIdx_, outStart_, outIdx_;
    int focused_ = -1;
    std::vector<char> pinned_;
    std::vector<int> pinOrder_;
    std::vector<int> highlighted_;
    std::vector<char> isHighlighted_;
    double zoom_ = 1;
    QPointF offset_;
    bool userMoved_ = false;  // after a zoom or pan, resizing no longer refits
    QPointF pressPos_, lastDrag_;
    bool dragging_ = false;
    bool pressed_ = false;
};

}  // namespace cs::ui
