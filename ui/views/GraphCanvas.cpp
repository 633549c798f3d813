#include "ui/views/GraphCanvas.h"

#include "ui/Qcp.h"
#include "ui/Theme.h"
#include "ui/views/GraphColors.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QToolTip>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace cs::ui {

namespace {

constexpr double kNodeSpacing = 16;   // between features of one cell, in layout units
constexpr double kMinColumn = 70;
constexpr double kRowHeight = 56;
constexpr double kLeftMargin = 52;    // layer labels
constexpr double kBottomMargin = 40;  // token texts
constexpr double kPad = 10;
constexpr int kDragSlop = 4;
constexpr size_t kMaxDrawnLinks = 400;  // per drawn set (focused node, pinned nodes)

QColor kindColor(NodeKind k) { return graphKindColor(k); }

const QColor kPositive = graphLinkColor(true);
const QColor kNegative = graphLinkColor(false);
const QColor kHighlight(0xff, 0xb3, 0x00);
const QColor kSameFeature(0x17, 0xa2, 0xb8);

void buildCsr(const std::vector<GraphLink>& links, size_t nodes, bool byTarget, std::vector<int>& start,
              std::vector<int>& idx) {
    start.assign(nodes + 1, 0);
    for (const GraphLink& l : links) ++start[static_cast<size_t>(byTarget ? l.target : l.source) + 1];
    for (size_t i = 0; i < nodes; ++i) start[i + 1] += start[i];
    idx.assign(links.size(), 0);
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < links.size(); ++i)
        idx[static_cast<size_t>(fill[static_cast<size_t>(byTarget ? links[i].target : links[i].source)]++)] = static_cast<int>(i);
}

}  // namespace

GraphCanvas::GraphCanvas(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setMinimumSize(120, 90);
}

void GraphCanvas::setGraph(AttributionGraph g) {
    graph_ = std::move(g);
    const size_t n = graph_.nodes.size();
    buildCsr(graph_.links, n, true, inStart_, inIdx_);
    buildCsr(graph_.links, n, false, outStart_, outIdx_);
    pinned_.assign(n, 0);
    pinOrder_.clear();
    for (const std::string& id : graph_.pinnedIds) {
        const int i = graph_.findNode(id);
        if (i >= 0 && !pinned_[static_cast<size_t>(i)]) {
            pinned_[static_cast<size_t>(i)] = 1;
            pinOrder_.push_back(i);
        }
    }
    focused_ = graph_.clickedId.empty() ? -1 : graph_.findNode(graph_.clickedId);
    highlighted_.clear();
    isHighlighted_.assign(n, 0);
    byFeature_.clear();
    for (size_t i = 0; i < n; ++i)
        if (graph_.nodes[i].kind == NodeKind::Feature) byFeature_[{graph_.nodes[i].layer, graph_.nodes[i].feature}].push_back(static_cast<int>(i));
    hovered_ = -1;
    sameFeature_.clear();
    indexSupernodes();
    syncStateToGraph();
    layoutNodes();
    userMoved_ = false;
    fitToView();
}

void GraphCanvas::syncStateToGraph() {
    graph_.pinnedIds.clear();
    for (int i : pinOrder_) graph_.pinnedIds.push_back(graph_.nodes[static_cast<size_t>(i)].id);
    graph_.clickedId = focused_ >= 0 ? graph_.nodes[static_cast<size_t>(focused_)].id : std::string();
}

void GraphCanvas::layoutNodes() {
    const size_t n = graph_.nodes.size();
    pos_.assign(n, {});
    positions_ = static_cast<int>(std::max(graph_.tokens.size(), graph_.tokenTexts.size()));
    int maxLayer = graph_.layers;
    for (const GraphNode& node : graph_.nodes) {
        positions_ = std::max(positions_, node.position + 1);
        if (node.kind != NodeKind::Logit) maxLayer = std::max(maxLayer, node.layer + 1);
    }
    // Row r: embeddings 0, layer L at L + 1, logits on top.
    auto row = [&](const GraphNode& node) {
        if (node.kind == NodeKind::Embedding) return 0;
        if (node.kind == NodeKind::Logit) return maxLayer + 1;
        return node.layer + 1;
    };
    const int rows = maxLayer + 2;
    // Cells in node order; within a cell, errors after features so the features lead.
    std::map<std::pair<int, int>, std::vector<int>> cells;
    for (size_t i = 0; i < n; ++i) cells[{row(graph_.nodes[i]), graph_.nodes[i].position}].push_back(static_cast<int>(i));
    std::vector<size_t> widest(static_cast<size_t>(std::max(1, positions_)), 1);
    for (auto& [key, members] : cells) {
        std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
            return (graph_.nodes[static_cast<size_t>(a)].kind == NodeKind::Error) <
                   (graph_.nodes[static_cast<size_t>(b)].kind == NodeKind::Error);
        });
        size_t& w = widest[static_cast<size_t>(key.second)];
        w = std::max(w, members.size());
    }
    columnLeft_.assign(widest.size() + 1, 0);
    for (size_t c = 0; c < widest.size(); ++c)
        columnLeft_[c + 1] = columnLeft_[c] + std::max(kMinColumn, static_cast<double>(widest[c]) * kNodeSpacing + kNodeSpacing);
    rowHeight_ = kRowHeight;
    for (const auto& [key, members] : cells) {
        const double left = columnLeft_[static_cast<size_t>(key.second)];
        const double width = columnLeft_[static_cast<size_t>(key.second) + 1] - left;
        const double y = (rows - 1 - key.first) * rowHeight_ + rowHeight_ / 2;
        const double step = std::min(kNodeSpacing * 1.5, (width - kNodeSpacing) / static_cast<double>(members.size()));
        const double span = step * static_cast<double>(members.size() - 1);
        for (size_t k = 0; k < members.size(); ++k)
            pos_[static_cast<size_t>(members[k])] = {left + width / 2 - span / 2 + step * static_cast<double>(k), y};
    }
    world_ = QRectF(0, 0, columnLeft_.back(), rows * rowHeight_);
}

QRectF GraphCanvas::plotArea(const QSizeF& size) const {
    return QRectF(kLeftMargin, kPad, std::max(1.0, size.width() - kLeftMargin - kPad),
                  std::max(1.0, size.height() - kBottomMargin - kPad));
}

GraphCanvas::View GraphCanvas::fitView(const QSizeF& size) const {
    const QRectF area = plotArea(size);
    View v;
    v.zoom = std::min(area.width() / world_.width(), area.height() / world_.height());
    v.offset = area.center() - world_.center() * v.zoom;
    return v;
}

void GraphCanvas::fitToView() {
    // A tall, narrow dock would leave most of its height empty under one uniform zoom: rows are
    // spread to the widget's shape first (never closer than the layout's own spacing).
    const QRectF area = plotArea(size());
    if (!world_.isEmpty() && area.width() > 1) {
        const double wanted = std::max(kRowHeight, area.height() / area.width() * world_.width() / (world_.height() / rowHeight_));
        const double factor = wanted / rowHeight_;
        if (std::abs(factor - 1.0) > 1e-9) {
            for (QPointF& p : pos_) p.setY(p.y() * factor);
            world_.setHeight(world_.height() * factor);
            rowHeight_ = wanted;
        }
    }
    const View v = fitView(size());
    zoom_ = v.zoom;
    offset_ = v.offset;
    update();
}

double GraphCanvas::nodeRadius(int node, const View& v) const {
    const GraphNode& g = graph_.nodes[static_cast<size_t>(node)];
    // influence is a rank fraction: 0 for the most important node, 1 for the least.
    const double importance = g.kind == NodeKind::Logit ? 1.0 : 1.0 - std::clamp(static_cast<double>(g.influence), 0.0, 1.0);
    const double base = 2.5 + 4.5 * importance;
    return base * std::clamp(v.zoom, 0.5, 2.5);
}

QPointF GraphCanvas::nodeCenter(int node) const {
    if (node < 0 || node >= static_cast<int>(pos_.size())) return {};
    return currentView().map(pos_[static_cast<size_t>(node)]);
}

int GraphCanvas::nodeAt(const QPointF& p) const {
    const View v = currentView();
    int best = -1;
    double bestD = 0;
    for (size_t i = 0; i < pos_.size(); ++i) {
        const QPointF d = v.map(pos_[i]) - p;
        const double dist = std::hypot(d.x(), d.y());
        const double reach = std::max(nodeRadius(static_cast<int>(i), v) + 2, 5.0);
        if (dist <= reach && (best < 0 || dist < bestD)) {
            best = static_cast<int>(i);
            bestD = dist;
        }
    }
    return best;
}

std::vector<int> GraphCanvas::inputLinks(int node) const {
    if (node < 0 || node >= static_cast<int>(graph_.nodes.size())) return {};
    return {inIdx_.begin() + inStart_[static_cast<size_t>(node)], inIdx_.begin() + inStart_[static_cast<size_t>(node) + 1]};
}

std::vector<int> GraphCanvas::outputLinks(int node) const {
    if (node < 0 || node >= static_cast<int>(graph_.nodes.size())) return {};
    return {outIdx_.begin() + outStart_[static_cast<size_t>(node)], outIdx_.begin() + outStart_[static_cast<size_t>(node) + 1]};
}

void GraphCanvas::focusNode(int node) {
    if (node < -1 || node >= static_cast<int>(graph_.nodes.size())) node = -1;
    if (node == focused_) return;
    focused_ = node;
    syncStateToGraph();
    update();
    Q_EMIT nodeClicked(node);
}

bool GraphCanvas::isPinned(int node) const {
    return node >= 0 && node < static_cast<int>(pinned_.size()) && pinned_[static_cast<size_t>(node)];
}

void GraphCanvas::togglePin(int node) {
    if (node < 0 || node >= static_cast<int>(graph_.nodes.size())) return;
    char& p = pinned_[static_cast<size_t>(node)];
    p = !p;
    if (p) pinOrder_.push_back(node);
    else pinOrder_.erase(std::remove(pinOrder_.begin(), pinOrder_.end(), node), pinOrder_.end());
    syncStateToGraph();
    const bool regrouped = !p && dropSupernodeMembers({node});
    update();
    if (regrouped) Q_EMIT supernodesChanged();
    Q_EMIT pinsChanged();
}

std::vector<int> GraphCanvas::pinnedNodes() const { return pinOrder_; }

void GraphCanvas::unpinAll() {
    if (pinOrder_.empty()) return;
    const bool regrouped = dropSupernodeMembers(pinOrder_);
    std::fill(pinned_.begin(), pinned_.end(), 0);
    pinOrder_.clear();
    syncStateToGraph();
    update();
    if (regrouped) Q_EMIT supernodesChanged();
    Q_EMIT pinsChanged();
}

void GraphCanvas::indexSupernodes() {
    superOf_.assign(graph_.nodes.size(), -1);
    for (size_t s = 0; s < graph_.supernodes.size(); ++s)
        for (const std::string& id : graph_.supernodes[s].nodeIds)
            if (const int i = graph_.findNode(id); i >= 0 && superOf_[static_cast<size_t>(i)] < 0) superOf_[static_cast<size_t>(i)] = static_cast<int>(s);
}

bool GraphCanvas::dropSupernodeMembers(const std::vector<int>& nodes) {
    bool changed = false;
    for (int n : nodes) {
        if (n < 0 || n >= static_cast<int>(graph_.nodes.size())) continue;
        const std::string& id = graph_.nodes[static_cast<size_t>(n)].id;
        for (Supernode& s : graph_.supernodes) {
            const auto end = std::remove(s.nodeIds.begin(), s.nodeIds.end(), id);
            changed |= end != s.nodeIds.end();
            s.nodeIds.erase(end, s.nodeIds.end());
        }
    }
    if (!changed) return false;
    // A supernode left with no member in this graph would be invisible, and nothing could select
    // it to ungroup it: it goes, with any members a stricter threshold hid.
    auto& sn = graph_.supernodes;
    sn.erase(std::remove_if(sn.begin(), sn.end(),
                            [&](const Supernode& s) {
                                return std::none_of(s.nodeIds.begin(), s.nodeIds.end(), [&](const std::string& id) { return graph_.findNode(id) >= 0; });
                            }),
             sn.end());
    indexSupernodes();
    return true;
}

int GraphCanvas::supernodeOf(int node) const {
    return node >= 0 && node < static_cast<int>(superOf_.size()) ? superOf_[static_cast<size_t>(node)] : -1;
}

int GraphCanvas::groupNodes(const std::vector<int>& nodes, const std::string& label) {
    std::vector<int> members;
    for (int n : nodes)
        if (n >= 0 && n < static_cast<int>(graph_.nodes.size()) && std::find(members.begin(), members.end(), n) == members.end())
            members.push_back(n);
    if (members.empty()) return -1;
    dropSupernodeMembers(members);
    Supernode s;
    s.label = label;
    bool pinnedMore = false;
    for (int n : members) {
        s.nodeIds.push_back(graph_.nodes[static_cast<size_t>(n)].id);
        if (!pinned_[static_cast<size_t>(n)]) {
            pinned_[static_cast<size_t>(n)] = 1;
            pinOrder_.push_back(n);
            pinnedMore = true;
        }
    }
    graph_.supernodes.push_back(std::move(s));
    indexSupernodes();
    syncStateToGraph();
    update();
    Q_EMIT supernodesChanged();
    if (pinnedMore) Q_EMIT pinsChanged();
    return static_cast<int>(graph_.supernodes.size()) - 1;
}

bool GraphCanvas::renameSupernode(int index, const std::string& label) {
    if (index < 0 || index >= static_cast<int>(graph_.supernodes.size()) || graph_.supernodes[static_cast<size_t>(index)].label == label) return false;
    graph_.supernodes[static_cast<size_t>(index)].label = label;
    update();  // the label is written over the members
    Q_EMIT supernodesChanged();
    return true;
}

bool GraphCanvas::ungroup(int index) {
    if (index < 0 || index >= static_cast<int>(graph_.supernodes.size())) return false;
    graph_.supernodes.erase(graph_.supernodes.begin() + index);
    indexSupernodes();
    update();
    Q_EMIT supernodesChanged();
    return true;
}

std::vector<int> GraphCanvas::sameFeatureNodes(int node) const {
    if (node < 0 || node >= static_cast<int>(graph_.nodes.size())) return {};
    const GraphNode& g = graph_.nodes[static_cast<size_t>(node)];
    if (g.kind != NodeKind::Feature) return {};
    const auto it = byFeature_.find({g.layer, g.feature});
    std::vector<int> out;
    if (it != byFeature_.end())
        for (int i : it->second)
            if (i != node) out.push_back(i);
    return out;
}

bool GraphCanvas::isSameFeatureMarked(int node) const {
    return std::find(sameFeature_.begin(), sameFeature_.end(), node) != sameFeature_.end();
}

void GraphCanvas::setHoveredNode(int node) {
    if (node < -1 || node >= static_cast<int>(graph_.nodes.size())) node = -1;
    if (node == hovered_) return;
    hovered_ = node;
    sameFeature_ = sameFeatureNodes(node);
    update();
    Q_EMIT nodeHovered(node);
}

void GraphCanvas::setHighlighted(std::vector<int> nodes) {
    isHighlighted_.assign(graph_.nodes.size(), 0);
    highlighted_.clear();
    for (int i : nodes)
        if (i >= 0 && i < static_cast<int>(graph_.nodes.size()) && !isHighlighted_[static_cast<size_t>(i)]) {
            isHighlighted_[static_cast<size_t>(i)] = 1;
            highlighted_.push_back(i);
        }
    update();
}

QString GraphCanvas::figureName() const { return QStringLiteral("attribution-graph"); }

QSize GraphCanvas::figureSize() const {
    if (isEmpty()) return {};
    // The layout at 1:1 plus the label margins, but never a postage stamp.
    const double w = std::max(640.0, world_.width() + kLeftMargin + kPad);
    const double h = std::max(420.0, world_.height() + kBottomMargin + kPad);
    return QSize(static_cast<int>(std::ceil(std::min(w, 4000.0))), static_cast<int>(std::ceil(std::min(h, 3000.0))));
}

void GraphCanvas::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    if (isEmpty()) return;
    paintGraph(painter, size, fitView(size), c, true);
}

void GraphCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), c.background);
    if (isEmpty()) {
        p.setPen(c.muted);
        p.drawText(rect(), Qt::AlignCenter, tr("No graph yet: Compute Graph for the current prompt, or Open a graph file"));
        return;
    }
    paintGraph(p, size(), currentView(), c, false);
}

void GraphCanvas::paintGraph(QPainter& p, const QSizeF& size, const View& v, const ViewColors& c, bool figure) const {
    const int rows = static_cast<int>(std::lround(world_.height() / rowHeight_));
    const QRectF area = plotArea(size);
    // Grid: a faint line per row and column boundary, clipped to the plot area.
    p.save();
    p.setClipRect(area.adjusted(-kPad, -kPad, kPad, kPad));
    p.setPen(QPen(c.grid, 0));
    for (double left : columnLeft_) {
        const double x = v.map({left, 0}).x();
        p.drawLine(QPointF(x, v.map(world_.topLeft()).y()), QPointF(x, v.map(world_.bottomLeft()).y()));
    }
    p.restore();

    // Links: the focused node's inputs and outputs, then those among pinned nodes.
    // Only the strongest kMaxDrawnLinks are drawn, in a few pen buckets (sign x strength) with one
    // drawLines call each: a hub of an unpruned graph has thousands of links, and one wide
    // translucent stroke per link took seconds a frame (bench_graph_gui).
    auto drawLinks = [&](std::vector<int> links, double alpha) {
        auto strength = [&](int li) { return std::fabs(static_cast<double>(graph_.links[static_cast<size_t>(li)].weight)); };
        if (links.size() > kMaxDrawnLinks) {
            std::nth_element(links.begin(), links.begin() + kMaxDrawnLinks, links.end(),
                             [&](int a, int b) { return strength(a) > strength(b); });
            links.resize(kMaxDrawnLinks);
        }
        double maxW = 0;
        for (int li : links) maxW = std::max(maxW, strength(li));
        if (maxW <= 0) return;
        constexpr int kBuckets = 8;
        std::vector<QLineF> bucket[2][kBuckets];
        for (int li : links) {
            const GraphLink& l = graph_.links[static_cast<size_t>(li)];
            const int b = std::min(kBuckets - 1, static_cast<int>(strength(li) / maxW * kBuckets));
            bucket[l.weight >= 0 ? 0 : 1][b].emplace_back(v.map(pos_[static_cast<size_t>(l.source)]),
                                                           v.map(pos_[static_cast<size_t>(l.target)]));
        }
        for (int sign = 0; sign < 2; ++sign)
            for (int b = 0; b < kBuckets; ++b) {
                if (bucket[sign][b].empty()) continue;
                const double rel = (b + 1.0) / kBuckets;
                QColor col = sign == 0 ? kPositive : kNegative;
                col.setAlphaF(static_cast<float>(alpha * (0.25 + 0.75 * rel)));
                // Wide lines as filled quads: the raster engine's stroker took 0.5 ms a line.
                const double half = (0.4 + 3.6 * rel) / 2;
                p.setPen(Qt::NoPen);
                p.setBrush(col);
                for (const QLineF& line : bucket[sign][b]) {
                    const double len = line.length();
                    if (len <= 0) continue;
                    const QPointF n(-line.dy() / len * half, line.dx() / len * half);
                    const QPointF quad[4] = {line.p1() + n, line.p2() + n, line.p2() - n, line.p1() - n};
                    p.drawConvexPolygon(quad, 4);
                }
            }
    };
    // On screen, links are drawn without antialiasing: a long antialiased link costs about 0.15 ms
    // (every scanline it crosses), too much for a hub's hundreds while panning. Figures keep it.
    p.setRenderHint(QPainter::Antialiasing, figure);
    if (!pinOrder_.empty()) {
        std::vector<int> among;
        for (int n : pinOrder_)
            for (int k = outStart_[static_cast<size_t>(n)]; k < outStart_[static_cast<size_t>(n) + 1]; ++k) {
                const int li = outIdx_[static_cast<size_t>(k)];
                if (pinned_[static_cast<size_t>(graph_.links[static_cast<size_t>(li)].target)]) among.push_back(li);
            }
        drawLinks(among, 0.6);
    }
    if (focused_ >= 0) {
        std::vector<int> links = inputLinks(focused_);
        const std::vector<int> out = outputLinks(focused_);
        links.insert(links.end(), out.begin(), out.end());
        drawLinks(links, 1.0);
    }

    // Nodes: shapes, not glyphs, so SVG and PDF keep them as vector paths.
    p.setRenderHint(QPainter::Antialiasing);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
        const GraphNode& g = graph_.nodes[i];
        const QPointF ctr = v.map(pos_[i]);
        if (!figure && !area.adjusted(-20, -20, 20, 20).contains(ctr)) continue;
        const double r = nodeRadius(static_cast<int>(i), v);
        const bool focused = static_cast<int>(i) == focused_;
        QColor fill = kindColor(g.kind);
        p.setPen(QPen(focused ? c.text : fill.darker(140), focused ? 2.0 : 0.8));
        p.setBrush(fill);
        switch (g.kind) {
        case NodeKind::Feature: p.drawEllipse(ctr, r, r); break;
        case NodeKind::Error: {
            const QPointF pts[4] = {ctr + QPointF(0, -r), ctr + QPointF(r, 0), ctr + QPointF(0, r), ctr + QPointF(-r, 0)};
            p.drawPolygon(pts, 4);
            break;
        }
        case NodeKind::Embedding:
        case NodeKind::Logit: p.drawRect(QRectF(ctr.x() - r, ctr.y() - r, 2 * r, 2 * r)); break;
        }
        if (pinned_[i] || isHighlighted_[i]) {
            const int group = superOf_[i];
            p.setBrush(Qt::NoBrush);
            if (pinned_[i] && group >= 0) p.setPen(QPen(supernodeColor(group), 1.8));
            else p.setPen(QPen(pinned_[i] ? c.text : kHighlight, pinned_[i] ? 1.2 : 2.0, pinned_[i] ? Qt::DashLine : Qt::SolidLine));
            p.drawEllipse(ctr, r + 3, r + 3);
        }
    }
    // The hovered feature and the same feature at its other positions: a transient mark, so not
    // in figures.
    if (!figure && hovered_ >= 0) {
        p.setBrush(Qt::NoBrush);
        p.setPen(QPen(kSameFeature, 1.6, Qt::DotLine));
        for (int i : sameFeature_) {
            const double r = nodeRadius(i, v) + 6;
            p.drawEllipse(v.map(pos_[static_cast<size_t>(i)]), r, r);
        }
        if (!sameFeature_.empty()) {
            const double r = nodeRadius(hovered_, v) + 6;
            p.drawEllipse(v.map(pos_[static_cast<size_t>(hovered_)]), r, r);
        }
    }

    // Labels: the focused node's, the logits' tokens, each supernode's (once, over its members)
    // and the other pinned nodes'. Nodes of a cell sit closer than their words are wide, so each
    // label takes the lowest of three lines above its node where it overlaps no label placed
    // before it, in that order (logits most likely first); one that fits nowhere is left to the
    // tooltip and the subgraph pane.
    QFont small = p.font();
    small.setPointSizeF(std::max(6.0, small.pointSizeF() * 0.8));
    p.setFont(small);
    const QFontMetricsF fm(small);
    std::vector<QRectF> placed;
    auto place = [&](const std::string& label, const QPointF& at, double radius, const QColor& color, bool always) {
        const QString text = fm.elidedText(QString::fromStdString(label), Qt::ElideRight, 120);
        const double w = fm.horizontalAdvance(text);
        const double base = at.y() - radius - 3;
        for (int line = 0; line < 3; ++line) {
            const QRectF box(at.x() - w / 2 - 2, base - fm.ascent() - line * fm.height(), w + 4, fm.height());
            if (!always && (box.top() < 0 || std::any_of(placed.begin(), placed.end(), [&](const QRectF& o) { return o.intersects(box); })))
                continue;  // off the top, or over another label
            placed.push_back(box);
            p.setPen(color);
            p.drawText(QPointF(at.x() - w / 2, base - line * fm.height()), text);
            return;
        }
    };
    auto nameOf = [&](size_t i) -> const std::string& { return graph_.nodes[i].label.empty() ? graph_.nodes[i].id : graph_.nodes[i].label; };
    if (focused_ >= 0)
        place(nameOf(static_cast<size_t>(focused_)), v.map(pos_[static_cast<size_t>(focused_)]), nodeRadius(focused_, v), c.text, true);
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        if (graph_.nodes[i].kind == NodeKind::Logit && static_cast<int>(i) != focused_)
            place(nameOf(i), v.map(pos_[i]), nodeRadius(static_cast<int>(i), v), c.text, false);
    for (size_t s = 0; s < graph_.supernodes.size(); ++s) {
        // Over the members' mean x, above the highest of them.
        double x = 0, top = 0, radius = 0;
        int members = 0;
        for (size_t i = 0; i < graph_.nodes.size(); ++i) {
            if (superOf_[i] != static_cast<int>(s)) continue;
            const QPointF at = v.map(pos_[i]);
            x += at.x();
            if (members == 0 || at.y() < top) {
                top = at.y();
                radius = nodeRadius(static_cast<int>(i), v);
            }
            ++members;
        }
        if (members > 0) place(graph_.supernodes[s].label, QPointF(x / members, top), radius + 3, supernodeColor(static_cast<int>(s)), false);
    }
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        if (pinned_[i] && superOf_[i] < 0 && graph_.nodes[i].kind != NodeKind::Logit && static_cast<int>(i) != focused_)
            place(nameOf(i), v.map(pos_[i]), nodeRadius(static_cast<int>(i), v), c.text, false);

    // Axes: layer names at the left, token texts along the bottom.
    p.setPen(c.muted);
    for (int r = 0; r < rows; ++r) {
        const QString name = r == 0 ? tr("Emb") : r == rows - 1 ? tr("Logit") : QStringLiteral("L%1").arg(r - 1);
        const double y = v.map({0, (rows - 1 - r) * rowHeight_ + rowHeight_ / 2}).y();
        if (y < area.top() - 2 || y > area.bottom() + 2) continue;
        p.drawText(QRectF(0, y - fm.height() / 2, kLeftMargin - 6, fm.height()), Qt::AlignRight | Qt::AlignVCenter, name);
    }
    const double tokenY = area.bottom() + 4;
    for (int col = 0; col < positions_; ++col) {
        QString text = col < static_cast<int>(graph_.tokenTexts.size()) ? QString::fromStdString(graph_.tokenTexts[static_cast<size_t>(col)])
                                                                          : QString::number(col);
        const double x0 = v.map({columnLeft_[static_cast<size_t>(col)], 0}).x();
        const double w = (columnLeft_[static_cast<size_t>(col) + 1] - columnLeft_[static_cast<size_t>(col)]) * v.zoom;
        if (x0 + w < area.left() || x0 > area.right()) continue;
        text = fm.elidedText(text.replace('\n', QStringLiteral("\\n")), Qt::ElideRight, std::max(8.0, w - 4));
        p.setPen(c.text);
        p.drawText(QRectF(x0, tokenY, w, fm.height() + 2), Qt::AlignHCenter | Qt::AlignTop, text);
    }
}

bool GraphCanvas::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        const int n = nodeAt(he->pos());
        if (n < 0) {
            QToolTip::hideText();
            e->ignore();
            return true;
        }
        const GraphNode& g = graph_.nodes[static_cast<size_t>(n)];
        QString tip = QStringLiteral("<b>%1</b> (%2)").arg(QString::fromStdString(g.id).toHtmlEscaped(), nodeKindName(g.kind));
        if (!g.label.empty()) tip += QStringLiteral("<br>%1").arg(QString::fromStdString(g.label).toHtmlEscaped());
        tip += tr("<br>activation %1<br>influence %2").arg(g.activation, 0, 'g', 4).arg(g.influence, 0, 'g', 4);
        if (g.kind == NodeKind::Logit) tip += tr("<br>probability %1").arg(g.tokenProb, 0, 'g', 4);
        QToolTip::showText(he->globalPos(), tip, this);
        return true;
    }
    return QWidget::event(e);
}

void GraphCanvas::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    if (!userMoved_ && !isEmpty()) fitToView();
}

void GraphCanvas::wheelEvent(QWheelEvent* e) {
    if (isEmpty()) return;
    const double factor = std::pow(1.0015, e->angleDelta().y());
    const double next = std::clamp(zoom_ * factor, 0.02, 40.0);
    // Zoom about the cursor: the layout point under it stays put.
    const QPointF at = e->position();
    const QPointF worldAt = (at - offset_) / zoom_;
    zoom_ = next;
    offset_ = at - worldAt * zoom_;
    userMoved_ = true;
    update();
    e->accept();
}

void GraphCanvas::mousePressEvent(QMouseEvent* e) {
    if (e->button() != Qt::LeftButton) return;
    pressed_ = true;
    dragging_ = false;
    pressPos_ = lastDrag_ = e->position();
}

void GraphCanvas::mouseMoveEvent(QMouseEvent* e) {
    if (!pressed_) {
        setHoveredNode(nodeAt(e->position()));
        return;
    }
    if (!dragging_ && (e->position() - pressPos_).manhattanLength() > kDragSlop) dragging_ = true;
    if (dragging_) {
        offset_ += e->position() - lastDrag_;
        lastDrag_ = e->position();
        userMoved_ = true;
        update();
    }
}

void GraphCanvas::mouseReleaseEvent(QMouseEvent* e) {
    if (e->button() != Qt::LeftButton || !pressed_) return;
    pressed_ = false;
    if (dragging_) {
        dragging_ = false;
        return;
    }
    const int n = nodeAt(e->position());
    if (e->modifiers() & Qt::ControlModifier) togglePin(n);
    else focusNode(n);
}

void GraphCanvas::leaveEvent(QEvent* e) {
    setHoveredNode(-1);
    QWidget::leaveEvent(e);
}

void GraphCanvas::keyPressEvent(QKeyEvent* e) {
    if (e->key() == Qt::Key_F && e->modifiers() == Qt::NoModifier) {
        userMoved_ = false;
        fitToView();
        return;
    }
    if (e->key() == Qt::Key_Escape && focused_ >= 0) {
        focusNode(-1);
        return;
    }
    QWidget::keyPressEvent(e);
}

}  // namespace cs::ui
