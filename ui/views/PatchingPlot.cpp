#include "ui/views/PatchingPlot.h"

#include "ui/Theme.h"
#include "ui/views/TokenLabel.h"

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {
constexpr int kMaxAxisLabels = 64;

QCPColorGradient divergingGradient(const ViewColors& c) {
    // Blue below 0, the background at 0 (the corrupted run), red toward 1 (the clean run): the
    // same hues in both themes, so a figure reads like the screen.
    QCPColorGradient g;
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    g.setColorStopAt(0.0, QColor("#2166ac"));
    g.setColorStopAt(0.5, c.background);
    g.setColorStopAt(1.0, QColor("#b2182b"));
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

QString directionTitle(PatchDirection d) {
    return d == PatchDirection::Denoise ? QObject::tr("clean into corrupted") : QObject::tr("corrupted into clean");
}
}  // namespace

QString patchMetricTitle(PatchMetric metric) {
    switch (metric) {
        case PatchMetric::LogitDiff: return QObject::tr("logit diff");
        case PatchMetric::Probability: return QObject::tr("P(answer)");
        case PatchMetric::KL: return QObject::tr("KL(clean || run)");
    }
    return {};
}

QString patchSiteTitle(PatchSite site) {
    switch (site) {
        case PatchSite::Resid: return QObject::tr("residual stream");
        case PatchSite::AttnOut: return QObject::tr("attention output");
        case PatchSite::MlpOut: return QObject::tr("MLP output");
        case PatchSite::Heads: return QObject::tr("heads (all positions)");
        case PatchSite::HeadsByPosition: return QObject::tr("heads by position");
        case PatchSite::Features: return QObject::tr("SAE features");
    }
    return {};
}

PatchingPlot::PatchingPlot(QWidget* parent) : QCustomPlot(parent) {
    setObjectName("patchingPlot");
    setPlottingHint(QCP::phImmediateRefresh, false);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);
    map_ = new QCPColorMap(xAxis, yAxis);
    map_->setInterpolate(false);
    map_->setTightBoundary(false);
    scale_ = new QCPColorScale(this);
    plotLayout()->addElement(1, 1, scale_);
    scale_->setType(QCPAxis::atRight);
    scale_->axis()->setLabel(tr("normalised (1 = clean, 0 = corrupted)"));
    map_->setColorScale(scale_);
    auto* group = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    scale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    for (QCPAxis* a : {xAxis, yAxis}) {
        a->grid()->setVisible(false);
        a->setSubTicks(false);
        a->setTickLength(0, 3);
    }
    xAxis->setTickLabelRotation(60);
    yAxis->setRangeReversed(true);  // layer 0 on top, as the model reads
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

void PatchingPlot::setGrid(std::shared_ptr<const PatchGrid> grid, std::vector<std::string> cleanTexts,
                           std::vector<std::string> corruptedTexts) {
    grid_ = std::move(grid);
    cleanTexts_ = std::move(cleanTexts);
    corruptedTexts_ = std::move(corruptedTexts);
    const int cols = grid_ ? grid_->columns : 0, rows = grid_ ? grid_->rows : 0;
    // QCPColorMapData needs two cells per dimension for a non-degenerate range: a single row or
    // column gets a transparent (NaN) twin beyond the axis range.
    const int kc = std::max(cols, 2), kr = std::max(rows, 2);
    map_->data()->setSize(kc, kr);
    map_->data()->setRange(QCPRange(0, kc - 1), QCPRange(0, kr - 1));
    scaleMax_ = 1;
    for (int c = 0; c < kc; ++c)
        for (int r = 0; r < kr; ++r) {
            const double v = c < cols && r < rows ? grid_->at(r, c) : std::nan("");
            map_->data()->setCell(c, r, v);
            if (std::isfinite(v)) scaleMax_ = std::max(scaleMax_, std::abs(v));
        }
    map_->setDataRange(QCPRange(-scaleMax_, scaleMax_));
    xAxis->setRange(-0.5, std::max(cols, 1) - 0.5);
    yAxis->setRange(-0.5, std::max(rows, 1) - 0.5);
    xAxis->setLabel(grid_ ? (grid_->columnAxis == "position" ? tr("position (clean / corrupted token)") : tr("head")) : QString());
    yAxis->setLabel(grid_ ? QString::fromStdString(grid_->rowAxis) : QString());
    title_->setText(title());
    updateTickers();
    replot(QCustomPlot::rpQueuedReplot);
}

void PatchingPlot::clearGrid() { setGrid(nullptr, {}, {}); }

QString PatchingPlot::title() const {
    if (!grid_) return {};
    // Two lines, so a narrow dock or figure does not cut it.
    return tr("Patching %1, %2\n%3: clean %4, corrupted %5")
        .arg(patchSiteTitle(grid_->site), directionTitle(grid_->direction), patchMetricTitle(grid_->metric))
        .arg(grid_->cleanValue, 0, 'g', 4)
        .arg(grid_->corruptedValue, 0, 'g', 4);
}

QString PatchingPlot::rowLabel(int row) const {
    if (!grid_ || row < 0 || row >= grid_->rows) return {};
    return row < static_cast<int>(grid_->rowLabels.size()) ? QString::fromStdString(grid_->rowLabels[size_t(row)])
                                                          : QString::number(row);
}

QString PatchingPlot::columnLabel(int col) const {
    if (!grid_ || col < 0 || col >= grid_->columns) return {};
    const int pos = col < static_cast<int>(grid_->columnPosition.size()) ? grid_->columnPosition[size_t(col)] : -1;
    if (pos < 0 || pos >= static_cast<int>(cleanTexts_.size()))
        return col < static_cast<int>(grid_->columnLabels.size()) ? QString::fromStdString(grid_->columnLabels[size_t(col)])
                                                                 : QString::number(col);
    const std::string& clean = cleanTexts_[size_t(pos)];
    const bool differs = pos < static_cast<int>(corruptedTexts_.size()) && corruptedTexts_[size_t(pos)] != clean;
    return differs ? shortTokenLabel(clean, 8) + " / " + shortTokenLabel(corruptedTexts_[size_t(pos)], 8)
                   : shortTokenLabel(clean);
}

QString PatchingPlot::hoverText(int col, int row) const {
    if (!grid_ || col < 0 || row < 0 || col >= grid_->columns || row >= grid_->rows) return {};
    const size_t i = size_t(row) * size_t(grid_->columns) + size_t(col);
    QString column;
    const int pos = col < static_cast<int>(grid_->columnPosition.size()) ? grid_->columnPosition[size_t(col)] : -1;
    if (pos >= 0) {
        column = tr("position %1").arg(pos);
        if (pos < static_cast<int>(cleanTexts_.size())) column += tr(": clean %1").arg(tokenLabel(cleanTexts_[size_t(pos)]));
        if (pos < static_cast<int>(corruptedTexts_.size()))
            column += tr(", corrupted %1").arg(tokenLabel(corruptedTexts_[size_t(pos)]));
    } else {
        column = columnLabel(col);
    }
    const double raw = i < grid_->raw.size() ? grid_->raw[i] : std::nan("");
    return tr("%1, %2\nnormalised %3 (1 = clean, 0 = corrupted)\n%4 %5 (clean %6, corrupted %7)")
        .arg(rowLabel(row), column)
        .arg(static_cast<double>(grid_->at(row, col)), 0, 'g', 6)
        .arg(patchMetricTitle(grid_->metric))
        .arg(raw, 0, 'g', 6)
        .arg(grid_->cleanValue, 0, 'g', 6)
        .arg(grid_->corruptedValue, 0, 'g', 6);
}

void PatchingPlot::updateTickers() {
    const QFontMetrics fm(xAxis->tickLabelFont());
    auto apply = [&](QCPAxis* axis, const QStringList& labels, int pixels) {
        QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
        const int fit = std::max(1, pixels / (fm.height() + 2));
        const int n = static_cast<int>(labels.size());
        const int step = std::max(1, static_cast<int>(std::ceil(n / double(std::min(fit, kMaxAxisLabels)))));
        for (int i = 0; i < n; i += step) ticker->addTick(i, labels[i]);
        axis->setTicker(ticker);
    };
    QStringList cols, rows;
    if (grid_) {
        for (int c = 0; c < grid_->columns; ++c) cols << columnLabel(c);
        for (int r = 0; r < grid_->rows; ++r) rows << rowLabel(r);
    }
    apply(xAxis, cols, axisRect()->width() > 0 ? axisRect()->width() : width() - 150);
    apply(yAxis, rows, axisRect()->height() > 0 ? axisRect()->height() : height() - 100);
}

void PatchingPlot::resizeEvent(QResizeEvent* e) {
    QCustomPlot::resizeEvent(e);
    updateTickers();
    replot(QCustomPlot::rpQueuedReplot);
}

bool PatchingPlot::cellAt(const QPoint& p, int& col, int& row) const {
    if (!grid_ || !axisRect()->rect().contains(p)) return false;
    col = static_cast<int>(std::lround(xAxis->pixelToCoord(p.x())));
    row = static_cast<int>(std::lround(yAxis->pixelToCoord(p.y())));
    return col >= 0 && col < grid_->columns && row >= 0 && row < grid_->rows;
}

QPoint PatchingPlot::cellCenter(int col, int row) const {
    return QPointF(xAxis->coordToPixel(col), yAxis->coordToPixel(row)).toPoint();
}

double PatchingPlot::cellValue(int col, int row) const {
    if (!grid_ || col < 0 || row < 0 || col >= grid_->columns || row >= grid_->rows) return std::nan("");
    return map_->data()->cell(col, row);
}

void PatchingPlot::applyColors(const ViewColors& c) {
    setBackground(c.background);
    axisRect()->setBackground(c.background);
    map_->setGradient(divergingGradient(c));
    title_->setTextColor(c.text);
    for (QCPAxis* a : {xAxis, yAxis, scale_->axis()}) {
        a->setBasePen(QPen(c.grid));
        a->setTickPen(QPen(c.grid));
        a->setSubTickPen(QPen(c.grid));
        a->setTickLabelColor(c.text);
        a->setLabelColor(c.text);
    }
    replot(QCustomPlot::rpQueuedReplot);
}

QString PatchingPlot::figureName() const {
    return grid_ ? QStringLiteral("patching-%1").arg(QString::fromUtf8(patchSiteName(grid_->site))) : QStringLiteral("patching");
}

QSize PatchingPlot::figureSize() const {
    if (!grid_ || grid_->rows == 0 || grid_->columns == 0) return {};
    // At least as wide as the title's longer line.
    const QFontMetrics fm(title_->font());
    int titleWidth = 0;
    for (const QString& line : title().split('\n')) titleWidth = std::max(titleWidth, fm.horizontalAdvance(line));
    return {std::max(std::clamp(grid_->columns * 26, 320, 1400) + 260, titleWidth + 40),
            std::clamp(grid_->rows * 28, 160, 1000) + 210};
}

void PatchingPlot::paintFigure(QCPPainter& painter, const QSize& size) {
    // Laid out at the figure's size (label density included) in the figure colours, then back.
    const QSize screen = this->size();
    applyColors(figureColors());
    resize(size);
    updateTickers();
    toPainter(&painter, size.width(), size.height());
    resize(screen);
    updateTickers();
    applyColors(viewColors());
}

}  // namespace cs::ui
