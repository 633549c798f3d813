#include "ui/views/SubgraphCanvas.h"

#include "ui/Qcp.h"
#include "ui/Theme.h"
#include "ui/views/GraphColors.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QToolTip>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace cs::ui {

namespace {

constexpr double kMargin = 8;
constexpr double kTokenLine = 18;  // the token texts under the columns
constexpr double kMaxBoxWidth = 170;
constexpr double kMaxBoxHeight = 30;
const QColor kSelected(0xff, 0xb3, 0x00);

// Rows as on the canvas: embeddings 0, layer L at L + 1, logits above the last layer.
int rowOf(const GraphNode& n, int logitRow) {
    if (n.kind == NodeKind::Embedding) return 0;
    if (n.kind == NodeKind::Logit) return logitRow;
    return n.layer + 1;
}

}  // namespace

SubgraphCanvas::SubgraphCanvas(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setMinimumSize(120, 60);
    editor_ = new QLineEdit(this);
    editor_->setObjectName("subgraphLabelEditor");
    editor_->hide();
    editor_->installEventFilter(this);
    connect(editor_, &QLineEdit::returnPressed, this, &SubgraphCanvas::commitEdit);
    connect(editor_, &QLineEdit::editingFinished, this, &SubgraphCanvas::commitEdit);
}

void SubgraphCanvas::setSubgraph(const AttributionGraph& g, SubgraphView view) {
    cancelEdit();
    view_ = std::move(view);
    nodeIds_.clear();
    for (const GraphNode& n : g.nodes) nodeIds_.push_back(n.id);
    int logitRow = g.layers + 1;
    for (const GraphNode& n : g.nodes)
        if (n.kind != NodeKind::Logit) logitRow = std::max(logitRow, n.layer + 2);

    // A box sits at its members' mean row and position; only the rows and positions in use get
    // space, so a handful of boxes spread over the pane instead of the whole prompt's width.
    items_.clear();
    std::vector<std::pair<int, int>> at;  // (row, position) per box
    std::set<int> rows, positions;
    for (const SubgraphNode& sn : view_.nodes) {
        double row = 0, pos = 0;
        for (int m : sn.members) {
            row += rowOf(g.nodes[static_cast<size_t>(m)], logitRow);
            pos += g.nodes[static_cast<size_t>(m)].position;
        }
        const int r = static_cast<int>(std::lround(row / static_cast<double>(sn.members.size())));
        const int p = static_cast<int>(std::lround(pos / static_cast<double>(sn.members.size())));
        at.push_back({r, p});
        rows.insert(r);
        positions.insert(p);
        Item it;
        it.label = QString::fromStdString(sn.label);
        it.kind = g.nodes[static_cast<size_t>(sn.members.front())].kind;
        it.supernode = sn.supernode;
        it.members = static_cast<int>(sn.members.size());
        it.key = sn.supernode >= 0 ? "s" + std::to_string(sn.supernode) : "n" + g.nodes[static_cast<size_t>(sn.members.front())].id;
        items_.push_back(std::move(it));
    }
    const std::vector<int> rowList(rows.begin(), rows.end()), posList(positions.begin(), positions.end());
    for (size_t i = 0; i < items_.size(); ++i) {
        items_[i].row = static_cast<int>(std::lower_bound(rowList.begin(), rowList.end(), at[i].first) - rowList.begin());
        items_[i].column = static_cast<int>(std::lower_bound(posList.begin(), posList.end(), at[i].second) - posList.begin());
    }
    rows_ = static_cast<int>(rowList.size());
    columnTexts_.clear();
    for (int p : posList) {
        QString tok = p < static_cast<int>(g.tokenTexts.size()) ? QString::fromStdString(g.tokenTexts[static_cast<size_t>(p)]) : QString();
        columnTexts_.push_back(QStringLiteral("%1: %2").arg(p).arg(tok.replace('\n', QStringLiteral("\\n"))));
    }
    // Rows of boxes need room to stay apart; the splitter gives it from the canvas above.
    setMinimumHeight(static_cast<int>(2 * kMargin + kTokenLine) + std::max(2, rows_) * 26);
    std::set<std::string> keep;
    for (const Item& it : items_)
        if (selected_.count(it.key)) keep.insert(it.key);
    const bool selectionChanged = keep != selected_;
    selected_ = std::move(keep);
    update();
    if (selectionChanged) Q_EMIT this->selectionChanged();
}

std::vector<QRectF> SubgraphCanvas::boxes(const QSizeF& size) const {
    std::vector<QRectF> out(items_.size());
    if (items_.empty()) return out;
    const double cols = static_cast<double>(std::max<size_t>(1, columnTexts_.size()));
    const double cellW = std::max(1.0, (size.width() - 2 * kMargin) / cols);
    const double cellH = std::max(1.0, (size.height() - 2 * kMargin - kTokenLine) / std::max(1, rows_));
    std::map<std::pair<int, int>, std::vector<size_t>> cells;
    for (size_t i = 0; i < items_.size(); ++i) cells[{items_[i].row, items_[i].column}].push_back(i);
    for (const auto& [cell, members] : cells) {
        const double k = static_cast<double>(members.size());
        const double w = std::max(16.0, std::min(kMaxBoxWidth, cellW / k - 8));
        const double h = std::max(12.0, std::min(kMaxBoxHeight, cellH * 0.7));
        for (size_t j = 0; j < members.size(); ++j) {
            const double x = kMargin + cellW * cell.second + cellW * (static_cast<double>(j) + 0.5) / k;
            const double y = kMargin + cellH * (rows_ - 1 - cell.first) + cellH / 2;
            out[members[j]] = QRectF(x - w / 2, y - h / 2, w, h);
        }
    }
    return out;
}

QPointF SubgraphCanvas::itemCenter(int item) const {
    if (item < 0 || item >= itemCount()) return {};
    return boxes(size())[static_cast<size_t>(item)].center();
}

int SubgraphCanvas::itemAt(const QPointF& pos) const {
    const std::vector<QRectF> b = boxes(size());
    for (size_t i = b.size(); i-- > 0;)
        if (b[i].adjusted(-2, -2, 2, 2).contains(pos)) return static_cast<int>(i);
    return -1;
}

std::vector<int> SubgraphCanvas::selection() const {
    std::vector<int> out;
    for (size_t i = 0; i < items_.size(); ++i)
        if (selected_.count(items_[i].key)) out.push_back(static_cast<int>(i));
    return out;
}

void SubgraphCanvas::setSelection(const std::vector<int>& items) {
    std::set<std::string> keys;
    for (int i : items)
        if (i >= 0 && i < itemCount()) keys.insert(items_[static_cast<size_t>(i)].key);
    if (keys == selected_) return;
    selected_ = std::move(keys);
    update();
    Q_EMIT selectionChanged();
}

bool SubgraphCanvas::editLabel(int item) {
    if (item < 0 || item >= itemCount() || items_[static_cast<size_t>(item)].supernode < 0) return false;
    const QRectF box = boxes(size())[static_cast<size_t>(item)];
    editing_ = items_[static_cast<size_t>(item)].supernode;
    const double w = std::max(box.width(), 140.0);
    editor_->setGeometry(QRectF(box.center().x() - w / 2, box.center().y() - editor_->sizeHint().height() / 2.0, w,
                                editor_->sizeHint().height())
                             .toRect()
                             .intersected(rect()));
    editor_->setText(items_[static_cast<size_t>(item)].label);
    editor_->selectAll();
    editor_->show();
    editor_->setFocus();
    return true;
}

void SubgraphCanvas::commitEdit() {
    if (editing_ < 0) return;
    const int k = editing_;
    editing_ = -1;  // first: hiding the editor finishes its editing again
    editor_->hide();
    const QString label = editor_->text().trimmed();
    if (!label.isEmpty()) Q_EMIT renameRequested(k, label);
}

void SubgraphCanvas::cancelEdit() {
    if (editing_ < 0) return;
    editing_ = -1;
    editor_->hide();
}

bool SubgraphCanvas::eventFilter(QObject* watched, QEvent* e) {
    if (watched == editor_ && e->type() == QEvent::KeyPress && static_cast<QKeyEvent*>(e)->key() == Qt::Key_Escape) {
        cancelEdit();
        setFocus();
        return true;
    }
    return QWidget::eventFilter(watched, e);
}

QString SubgraphCanvas::figureName() const { return QStringLiteral("attribution-subgraph"); }

QSize SubgraphCanvas::figureSize() const {
    if (items_.empty()) return {};
    // Room for a full-width box per column and a box and its links per row.
    std::map<std::pair<int, int>, int> perCell;
    int widest = 1;
    for (const Item& it : items_) widest = std::max(widest, ++perCell[{it.row, it.column}]);
    const double w = 2 * kMargin + static_cast<double>(columnTexts_.size()) * (kMaxBoxWidth + 12) * widest;
    const double h = 2 * kMargin + kTokenLine + rows_ * 72.0;
    return QSize(static_cast<int>(std::min(4000.0, std::max(480.0, w))), static_cast<int>(std::min(3000.0, std::max(200.0, h))));
}

void SubgraphCanvas::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    paintSubgraph(painter, size, c, true);
}

void SubgraphCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), c.background);
    if (items_.empty()) {
        p.setPen(c.muted);
        p.drawText(rect().adjusted(8, 4, -8, -4), Qt::AlignCenter | Qt::TextWordWrap,
                   tr("Ctrl+click nodes on the graph to pin them here; select pinned nodes and press G to group them."));
        return;
    }
    paintSubgraph(p, size(), c, false);
}

void SubgraphCanvas::paintSubgraph(QPainter& p, const QSizeF& size, const ViewColors& c, bool figure) const {
    p.setRenderHint(QPainter::Antialiasing);
    const std::vector<QRectF> box = boxes(size);
    QFont small = p.font();
    small.setPointSizeF(std::max(6.0, small.pointSizeF() * 0.85));
    p.setFont(small);
    const QFontMetricsF fm(small);

    // Column captions: the token position and its text.
    const double cols = static_cast<double>(std::max<size_t>(1, columnTexts_.size()));
    const double cellW = (size.width() - 2 * kMargin) / cols;
    p.setPen(c.muted);
    for (size_t col = 0; col < columnTexts_.size(); ++col) {
        const QRectF r(kMargin + cellW * static_cast<double>(col), size.height() - kMargin - kTokenLine, cellW, kTokenLine);
        p.drawText(r, Qt::AlignHCenter | Qt::AlignVCenter, fm.elidedText(columnTexts_[col], Qt::ElideRight, std::max(8.0, cellW - 4)));
    }

    // Links under the boxes, as curves leaving a box's top for a box above (the usual direction:
    // effects flow up the layers) and its side for one in the same row.
    double maxW = 0;
    for (const SubgraphLink& l : view_.links) maxW = std::max(maxW, std::fabs(l.weight));
    p.setBrush(Qt::NoBrush);
    for (const SubgraphLink& l : view_.links) {
        if (maxW <= 0) break;
        const QRectF& a = box[static_cast<size_t>(l.source)];
        const QRectF& b = box[static_cast<size_t>(l.target)];
        QPointF from = a.center(), to = b.center();
        QPainterPath path;
        if (std::abs(a.center().y() - b.center().y()) < 1) {
            from = b.center().x() > a.center().x() ? QPointF(a.right(), a.center().y()) : QPointF(a.left(), a.center().y());
            to = b.center().x() > a.center().x() ? QPointF(b.left(), b.center().y()) : QPointF(b.right(), b.center().y());
            const double bow = std::min(40.0, std::abs(to.x() - from.x()) / 3);
            path.moveTo(from);
            path.cubicTo(from + QPointF(0, -bow), to + QPointF(0, -bow), to);
        } else {
            const bool up = b.center().y() < a.center().y();
            from = up ? QPointF(a.center().x(), a.top()) : QPointF(a.center().x(), a.bottom());
            to = up ? QPointF(b.center().x(), b.bottom()) : QPointF(b.center().x(), b.top());
            const double dy = (to.y() - from.y()) / 2;
            path.moveTo(from);
            path.cubicTo(from + QPointF(0, dy), to - QPointF(0, dy), to);
        }
        const double rel = std::fabs(l.weight) / maxW;
        QColor col = graphLinkColor(l.weight >= 0);
        col.setAlphaF(static_cast<float>(0.35 + 0.6 * rel));
        p.setPen(QPen(col, 0.8 + 4.2 * rel, Qt::SolidLine, Qt::RoundCap));
        p.drawPath(path);
    }

    // Boxes: pale in the kind's colour; a supernode's outline in its colour, thicker, with its
    // member count.
    for (size_t i = 0; i < items_.size(); ++i) {
        const Item& it = items_[i];
        const QColor kind = graphKindColor(it.kind);
        // A pale tint of the kind's colour (30% of it over white), dark text readable on all.
        const QColor fill = QColor::fromRgbF(0.3f * kind.redF() + 0.7f, 0.3f * kind.greenF() + 0.7f, 0.3f * kind.blueF() + 0.7f);
        const bool group = it.supernode >= 0;
        p.setPen(QPen(group ? supernodeColor(it.supernode) : kind.darker(130), group ? 2.4 : 1.0));
        p.setBrush(fill);
        p.drawRect(box[i]);
        if (!figure && selected_.count(it.key)) {
            p.setBrush(Qt::NoBrush);
            p.setPen(QPen(kSelected, 2.0));
            p.drawRect(box[i].adjusted(-3, -3, 3, 3));
        }
        const QString suffix = group ? QStringLiteral(" \u00d7%1").arg(it.members) : QString();
        const double room = box[i].width() - 6 - fm.horizontalAdvance(suffix);
        const QString text = fm.elidedText(it.label, Qt::ElideRight, std::max(4.0, room)) + suffix;
        p.setPen(QColor(0x20, 0x20, 0x20));
        p.drawText(box[i].adjusted(3, 0, -3, 0), Qt::AlignCenter, text);
    }
}

QString SubgraphCanvas::tooltip(int item) const {
    const SubgraphNode& sn = view_.nodes[static_cast<size_t>(item)];
    QString tip = QStringLiteral("<b>%1</b>").arg(QString::fromStdString(sn.label).toHtmlEscaped());
    QStringList ids;
    for (int m : sn.members) ids << QString::fromStdString(nodeIds_[static_cast<size_t>(m)]).toHtmlEscaped();
    if (sn.supernode >= 0) tip += tr("<br>supernode of %1: %2").arg(sn.members.size()).arg(ids.join(QStringLiteral(", ")));
    else tip += QStringLiteral("<br>%1").arg(ids.front());
    // The summed links, strongest first: what the box adds to the circuit.
    std::vector<const SubgraphLink*> in, out;
    for (const SubgraphLink& l : view_.links) {
        if (l.target == item) in.push_back(&l);
        if (l.source == item) out.push_back(&l);
    }
    auto list = [&](const QString& title, std::vector<const SubgraphLink*> links, bool inputs) {
        if (links.empty()) return;
        std::sort(links.begin(), links.end(), [](const SubgraphLink* a, const SubgraphLink* b) { return std::fabs(a->weight) > std::fabs(b->weight); });
        tip += QStringLiteral("<br>%1").arg(title);
        for (size_t k = 0; k < links.size() && k < 5; ++k) {
            const int other = inputs ? links[k]->source : links[k]->target;
            tip += QStringLiteral("<br>&nbsp;&nbsp;%1 %2").arg(links[k]->weight, 0, 'g', 4).arg(items_[static_cast<size_t>(other)].label.toHtmlEscaped());
        }
    };
    list(tr("inputs (summed):"), in, true);
    list(tr("outputs (summed):"), out, false);
    return tip;
}

bool SubgraphCanvas::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        const int item = itemAt(he->pos());
        if (item < 0) {
            QToolTip::hideText();
            e->ignore();
            return true;
        }
        QToolTip::showText(he->globalPos(), tooltip(item), this);
        return true;
    }
    return QWidget::event(e);
}

void SubgraphCanvas::mousePressEvent(QMouseEvent* e) {
    setFocus();
    const int item = itemAt(e->position());
    if (e->button() == Qt::RightButton) {
        // The context menu acts on the selection: a right-click outside it selects that box.
        if (item >= 0 && !selected_.count(items_[static_cast<size_t>(item)].key)) setSelection({item});
        return;
    }
    if (e->button() != Qt::LeftButton) return;
    if (e->modifiers() & (Qt::ControlModifier | Qt::ShiftModifier)) {
        if (item < 0) return;
        const std::string& key = items_[static_cast<size_t>(item)].key;
        if (!selected_.erase(key)) selected_.insert(key);
        update();
        Q_EMIT selectionChanged();
        return;
    }
    setSelection(item >= 0 ? std::vector<int>{item} : std::vector<int>{});
    if (item >= 0) Q_EMIT itemClicked(item);
}

void SubgraphCanvas::mouseDoubleClickEvent(QMouseEvent* e) {
    if (e->button() != Qt::LeftButton) return;
    const int item = itemAt(e->position());
    if (item < 0) return;
    if (!editLabel(item)) Q_EMIT itemActivated(item);
}

void SubgraphCanvas::resizeEvent(QResizeEvent* e) {
    cancelEdit();  // its box moved
    QWidget::resizeEvent(e);
}

}  // namespace cs::ui
