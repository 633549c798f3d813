#pragma once
// An attribution graph drawn as circuit-tracer's viewer lays it out: x = token position (the
// tokens along the bottom), y = layer (embeddings at the bottom, logits at the top), the features
// of one (layer, position) cell side by side within the cell. Node size says influence, shape and
// colour the kind. Links are drawn only for the focused node and among pinned nodes: a graph can
// hold a million links, and drawing them all would be both slow and unreadable. One painting
// function serves the screen and the exported figure (nodes are vector shapes in SVG and PDF).
// The canvas also keeps the viewer's state that goes into the graph file: the focused node, the
// pins and the supernodes (groups of pinned nodes with a label; their members are ringed in the
// supernode's colour). Hovering a feature rings the same feature at its other positions.
#include "attribution/AttributionGraph.h"
#include "ui/figures/FigureSource.h"

#include <QPointF>
#include <QRectF>
#include <QWidget>

#include <map>
#include <string>
#include <utility>
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
    // Emits pinsChanged; unpinning a supernode's member also takes it out of the supernode (which
    // goes when no member of it is left in the graph; supernodesChanged).
    void togglePin(int node);
    std::vector<int> pinnedNodes() const;  // node indices, in pin order
    void unpinAll();

    // Supernodes as in the graph file: member ids may name nodes this pruning dropped, so a
    // stricter threshold and back keeps the groups whole.
    const std::vector<Supernode>& supernodes() const { return graph_.supernodes; }
    int supernodeOf(int node) const;  // the supernode holding the node, or -1
    // Groups the nodes (out-of-range ones ignored) into a new last supernode, pinning those not
    // pinned; they leave the supernodes they were in, and a supernode with no member left in the
    // graph goes. Returns the new supernode's index, or -1 (and changes nothing) for no node.
    int groupNodes(const std::vector<int>& nodes, const std::string& label);
    bool renameSupernode(int index, const std::string& label);
    bool ungroup(int index);  // the members stay pinned

    // The node under the mouse (or named by a panel's hover): it and the same feature (layer and
    // index) at other positions are ringed. -1: none.
    void setHoveredNode(int node);
    int hoveredNode() const { return hovered_; }
    // Feature nodes with the node's layer and feature index at other positions (empty for others).
    std::vector<int> sameFeatureNodes(int node) const;
    bool isSameFeatureMarked(int node) const;
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
    void supernodesChanged();
    void nodeHovered(int node);

protected:
    bool event(QEvent* e) override;  // tooltips
    void paintEvent(QPaintEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;
    void wheelEvent(QWheelEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mouseReleaseEvent(QMouseEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;
    void leaveEvent(QEvent* e) override;

private:
    // A mapping from the layout's coordinates to a device: p' = p * zoom + offset.
    struct View {
        double zoom = 1;
        QPointF offset;
        QPointF map(const QPointF& p) const { return p * zoom + offset; }
    };
    void layoutNodes();
    void syncStateToGraph();
    void indexSupernodes();
    bool dropSupernodeMembers(const std::vector<int>& nodes);
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
    std::vector<int> superOf_;  // per node: its supernode, or -1
    std::map<std::pair<int, long>, std::vector<int>> byFeature_;  // (layer, feature) -> feature nodes
    int hovered_ = -1;
    std::vector<int> sameFeature_;  // the hovered node's same feature elsewhere
    double zoom_ = 1;
    QPointF offset_;
    bool userMoved_ = false;  // after a zoom or pan, resizing no longer refits
    QPointF pressPos_, lastDrag_;
    bool dragging_ = false;
    bool pressed_ = false;
};

}  // namespace cs::ui
