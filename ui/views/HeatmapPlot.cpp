#include "ui/views/HeatmapPlot.h"

#include "ui/Theme.h"

#include <cmath>

namespace cs::ui {

namespace {
// Many tokens on an axis: label every n-th so labels never overlap.
constexpr int kMaxAxisLabels = 48;

// QCustomPlot caches each tick label as a pixmap but keeps at most 16 per axis, so an axis of
// more token labels than that renders every label afresh on every replot (the cache is LRU and
// the labels are drawn in order). Its size is protected state; these derived types only name the
// members (a pointer to a protected member, taken through a derived class, is legal C++).
struct AxisPainterOf : QCPAxis {
    static auto member() { return &AxisPainterOf::mAxisPainter; }
};
struct LabelCacheOf : QCPAxisPainterPrivate {
    static auto member() { return &LabelCacheOf::mLabelCache; }
};
void holdAllTickLabels(QCPAxis* axis) {
    QCPAxisPainterPrivate* painter = axis->*AxisPainterOf::member();
    (painter->*LabelCacheOf::member()).setMaxCost(4 * kMaxAxisLabels);
}
}  // namespace

HeatmapPlot::HeatmapPlot(QWidget* parent) : QCustomPlot(parent) {
    setNoAntialiasingOnDrag(true);
    // QCustomPlot's default hints make every replot, queued ones included, repaint the widget at
    // once (QWidget::repaint: its own paint pass and backing-store flush, parents' backgrounds
    // under it). A run replots both heatmaps; with update() instead, they paint in the window's
    // one pass with every other view that changed.
    setPlottingHint(QCP::phImmediateRefresh, false);
    // Its paint fills every pixel (background brush, then the buffers), so the window need not
    // paint its own background under the plot first.
    setAttribute(Qt::WA_OpaquePaintEvent);
    // One paint buffer instead of two: QCustomPlot buffers its overlay layer separately (for
    // redrawing selection rectangles alone); this plot draws nothing there, and each extra
    // buffer is a window-sized clear and blend on every replot.
    if (QCPLayer* overlay = layer(QStringLiteral("overlay"))) overlay->setMode(QCPLayer::lmLogical);
    map_ = new QCPColorMap(xAxis, yAxis);
    map_->setInterpolate(false);
    map_->setTightBoundary(false);
    scale_ = new QCPColorScale(this);
    plotLayout()->addElement(0, 1, scale_);
    scale_->setType(QCPAxis::atRight);
    map_->setColorScale(scale_);
    auto* group = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    scale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    for (QCPAxis* a : {xAxis, yAxis}) {
        holdAllTickLabels(a);
        a->grid()->setVisible(false);
        a->setSubTicks(false);
        a->setTickLength(0, 3);
    }
    xAxis->setTickLabelRotation(60);
    highlight_ = new QCPItemRect(this);
    highlight_->setBrush(Qt::NoBrush);
    highlight_->setVisible(false);
    setMouseTracking(true);
    connect(this, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        int c, r;
        if (cellAt(e->position().toPoint(), c, r)) Q_EMIT cellHovered(c, r, e->globalPosition().toPoint());
    });
    connect(this, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        int c, r;
        if (e->button() == Qt::LeftButton && cellAt(e->position().toPoint(), c, r)) Q_EMIT cellClicked(c, r);
    });
    applyColors(viewColors());
}

void HeatmapPlot::setMatrix(int cols, int rows, const std::function<double(int, int)>& value, double lo, double hi) {
    cols_ = cols;
    rows_ = rows;
    // QCPColorMapData needs two cells per dimension for a non-degenerate range: a single
    // row or column gets a transparent (NaN) twin beyond the axis range.
    const int kc = std::max(cols, 2), kr = std::max(rows, 2);
    map_->data()->setSize(kc, kr);
    map_->data()->setRange(QCPRange(0, kc - 1), QCPRange(0, kr - 1));
    for (int c = 0; c < kc; ++c)
        for (int r = 0; r < kr; ++r)
            map_->data()->setCell(c, r, c < cols && r < rows ? value(c, r) : std::nan(""));
    map_->setDataRange(QCPRange(lo, hi));
    applyColumnRange();
    yAxis->setRange(-0.5, rows - 0.5);
    placeHighlight();
}

void HeatmapPlot::setColumnWindow(int first, int count) {
    colFirst_ = std::max(0, first);
    colCount_ = std::max(0, count);
    applyColumnRange();
    updateTickers();
}

void HeatmapPlot::applyColumnRange() {
    const int first = firstShownColumn(), shown = shownColumns();
    xAxis->setRange(first - 0.5, first + shown - 0.5);
}

void HeatmapPlot::clearValues() { map_->data()->fill(std::nan("")); }

double HeatmapPlot::cellValue(int col, int row) const { return map_->data()->cell(col, row); }

void HeatmapPlot::updateTickers() {
    const QFontMetrics fm(xAxis->tickLabelFont());
    // Labels [first, first + shown) of `labels`, as many as fit.
    auto apply = [&](QCPAxis* axis, const QStringList& labels, int first, int shown, int pixels) {
        QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
        const int fit = std::max(1, pixels / (fm.height() + 2));
        const int step = std::max(1, static_cast<int>(std::ceil(shown / double(std::min(fit, kMaxAxisLabels)))));
        const int end = std::min<int>(labels.size(), first + shown);
        for (int i = std::max(0, first); i < end; i += step) ticker->addTick(i, labels[i]);
        axis->setTicker(ticker);
    };
    const bool windowed = colCount_ > 0 && colCount_ < colLabels_.size();
    apply(xAxis, colLabels_, windowed ? colFirst_ : 0, windowed ? colCount_ : static_cast<int>(colLabels_.size()),
          axisRect()->width() > 0 ? axisRect()->width() : width() - 150);
    apply(yAxis, rowLabels_, 0, static_cast<int>(rowLabels_.size()),
          axisRect()->height() > 0 ? axisRect()->height() : height() - 100);
}

void HeatmapPlot::resizeEvent(QResizeEvent* e) {
    QCustomPlot::resizeEvent(e);
    updateTickers();
    replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setColumnLabels(const QStringList& labels, const QString& title) {
    colLabels_ = labels;
    xAxis->setLabel(title);
    updateTickers();
}

void HeatmapPlot::setRowLabels(const QStringList& labels, const QString& title) {
    rowLabels_ = labels;
    yAxis->setLabel(title);
    updateTickers();
}

void HeatmapPlot::setScaleLabel(const QString& label) { scale_->axis()->setLabel(label); }
void HeatmapPlot::setRowsTopDown(bool topDown) { yAxis->setRangeReversed(topDown); }

void HeatmapPlot::highlightRow(int row) {
    row_ = row;
    col_ = -1;
    placeHighlight();
}

void HeatmapPlot::highlightColumn(int col) {
    col_ = col;
    row_ = -1;
    placeHighlight();
}

void HeatmapPlot::placeHighlight() {
    if (row_ >= 0 && row_ < rows_) {
        highlight_->topLeft->setCoords(-0.5, row_ - 0.5);
        highlight_->bottomRight->setCoords(cols_ - 0.5, row_ + 0.5);
        highlight_->setVisible(true);
    } else if (col_ >= 0 && col_ < cols_) {
        highlight_->topLeft->setCoords(col_ - 0.5, -0.5);
        highlight_->bottomRight->setCoords(col_ + 0.5, rows_ - 0.5);
        highlight_->setVisible(true);
    } else {
        highlight_->setVisible(false);
    }
}

bool HeatmapPlot::cellAt(const QPoint& p, int& col, int& row) const {
    if (!axisRect()->rect().contains(p) || cols_ == 0) return false;
    col = static_cast<int>(std::lround(xAxis->pixelToCoord(p.x())));
    row = static_cast<int>(std::lround(yAxis->pixelToCoord(p.y())));
    return col >= 0 && col < cols_ && row >= 0 && row < rows_;
}

QPoint HeatmapPlot::cellCenter(int col, int row) const {
    return QPointF(xAxis->coordToPixel(col), yAxis->coordToPixel(row)).toPoint();
}

void HeatmapPlot::applyColors(const ViewColors& c) {
    setBackground(c.background);
    axisRect()->setBackground(c.background);
    QCPColorGradient g = heatGradient(c);
    g.setNanHandling(QCPColorGradient::nhTransparent);
    map_->setGradient(g);
    for (QCPAxis* a : {xAxis, yAxis, scale_->axis()}) {
        a->setBasePen(QPen(c.grid));
        a->setTickPen(QPen(c.grid));
        a->setSubTickPen(QPen(c.grid));
        a->setTickLabelColor(c.text);
        a->setLabelColor(c.text);
    }
    highlight_->setPen(QPen(c.selection, 2));
    replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::renderFigure(QCPPainter& painter, const QSize& size, const QString& title) {
    // Laid out at the figure's size (label density included), then back to the screen's.
    const QSize screen = this->size();
    applyColors(figureColors());
    QCPTextElement* heading = nullptr;
    if (!title.isEmpty()) {
        plotLayout()->insertRow(0);
        QFont font = this->font();
        font.setBold(true);
        heading = new QCPTextElement(this, title, font);
        heading->setTextColor(figureColors().text);
        plotLayout()->addElement(0, 0, heading);
    }
    resize(size);
    updateTickers();
    toPainter(&painter, size.width(), size.height());
    if (heading) {
        plotLayout()->remove(heading);
        plotLayout()->simplify();
    }
    resize(screen);
    updateTickers();
    applyColors(viewColors());
}

}  // namespace cs::ui
