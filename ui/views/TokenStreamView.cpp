#include "ui/views/TokenStreamView.h"

#include "ui/Theme.h"
#include "ui/views/TokenLabel.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QPixmapCache>
#include <QToolTip>
#include "ui/Qcp.h"

#include <cmath>

namespace cs::ui {

namespace {
constexpr double kPadX = 5, kPadY = 3, kGap = 3, kLineGap = 6, kMargin = 8;
constexpr int kFigureWidth = 900;

void paintChipBackground(QPainter& p, const QRectF& rect, const QColor& fill, const QPen& pen) {
    p.setPen(pen);
    p.setBrush(fill);
    p.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), 4, 4);
}

// A chip's antialiased rounded background, drawn once per size and colours: filling and stroking
// a rounded path per chip was most of this view's paint on every run (64 chips of a default run),
// and a prompt's chips come in a few dozen sizes at most. One pixel of margin holds a 2-px pen.
QPixmap chipBackground(const QSize& size, const QColor& fill, const QPen& pen, qreal dpr) {
    const QString key = QStringLiteral("cs-chip:%1x%2:%3:%4:%5:%6")
                            .arg(size.width())
                            .arg(size.height())
                            .arg(fill.rgba())
                            .arg(pen.color().rgba())
                            .arg(pen.widthF())
                            .arg(dpr);
    QPixmap pm;
    if (QPixmapCache::find(key, &pm)) return pm;
    pm = QPixmap((QSizeF(size.width() + 2, size.height() + 2) * dpr).toSize());
    pm.setDevicePixelRatio(dpr);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setRenderHint(QPainter::Antialiasing);
    paintChipBackground(p, QRectF(1, 1, size.width(), size.height()), fill, pen);
    p.end();
    QPixmapCache::insert(key, pm);
    return pm;
}
}  // namespace

TokenStreamView::TokenStreamView(SessionController* session, QWidget* parent)
    : QWidget(parent), session_(session) {
    setObjectName("tokenStream");
    setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel: nothing to paint beneath
    setMouseTracking(true);
    setFocusPolicy(Qt::ClickFocus);
    QSizePolicy sp(QSizePolicy::Expanding, QSizePolicy::Preferred);
    sp.setHeightForWidth(true);
    setSizePolicy(sp);
    // The tokens are there from a run's first stage on; later stages of the same run add only
    // the predictions the tooltip reads.
    connect(session_, &SessionController::shownAnalysisChanged, this, [this] {
        const bool sameTokens = shown_ && session_->shownAnalysis() && session_->shownRun() == shownRun_;
        shown_ = session_->shownAnalysis();
        shownRun_ = session_->shownRun();
        if (!sameTokens) relayout();
        else if (session_->selection().position != paintedSelection_) update();
    });
    connect(session_, &SessionController::modelLoaded, this, [this] {
        shown_.reset();
        shading_.clear();
        shadingCaption_.clear();
        relayout();
    });
    connect(session_, &SessionController::selectionChanged, this, [this] { update(); });
    shown_ = session_->shownAnalysis();  // a view made after a run (a headless export) starts from it
    shownRun_ = session_->shownRun();
    relayout();
}

std::vector<TokenStreamView::Chip> TokenStreamView::layoutChips(int width) const {
    std::vector<Chip> out;
    const PromptAnalysis* a = shown_.get();
    if (!a) return out;
    const QFontMetricsF fm(font());
    // Whole pixels, so each chip's cached background lands exactly where its outline would be drawn.
    const double h = std::ceil(fm.height() + 2 * kPadY);
    double x = kMargin, y = kMargin;
    for (int i = 0; i < a->length(); ++i) {
        Chip c;
        c.label = tokenLabel(a->texts[i]);
        c.whitespace = isWhitespaceToken(a->texts[i]);
        c.generated = i >= a->promptLength;
        c.text = preparedText(c.label);
        const double w = std::ceil(std::max(c.text.size().width(), fm.horizontalAdvance('M') * 0.6) + 2 * kPadX);
        if (x + w > width - kMargin && x > kMargin) {
            x = kMargin;
            y += h + kLineGap;
        }
        c.rect = QRectF(x, y, w, h);
        x += w + kGap;
        out.push_back(c);
        // A newline token ends its line, as the text does.
        if (a->texts[i].find('\n') != std::string::npos) {
            x = kMargin;
            y += h + kLineGap;
        }
    }
    return out;
}

QStaticText TokenStreamView::preparedText(const QString& label) const {
    if (font() != preparedFont_ || prepared_.size() > 4096) {
        prepared_.clear();
        preparedFont_ = font();
    }
    auto it = prepared_.find(label);
    if (it != prepared_.end()) return *it;
    QStaticText text;
    text.setTextFormat(Qt::PlainText);
    text.setText(label);
    text.prepare(QTransform(), font());
    prepared_.insert(label, text);
    return text;
}

int TokenStreamView::heightForWidth(int width) const { return heightOf(layoutChips(width)); }

int TokenStreamView::heightOf(const std::vector<Chip>& chips) {
    return chips.empty() ? 60 : static_cast<int>(chips.back().rect.bottom() + kMargin);
}

void TokenStreamView::relayout() {
    hover_ = -1;
    layoutAtWidth();
    update();
}

void TokenStreamView::resizeEvent(QResizeEvent*) { layoutAtWidth(); }

void TokenStreamView::layoutAtWidth() {
    chips_ = layoutChips(width());  // one layout serves both the chips and the height
    setMinimumHeight(heightOf(chips_));
}

QRect TokenStreamView::chipRect(int index) const {
    return index >= 0 && index < chipCount() ? chips_[index].rect.toAlignedRect() : QRect();
}

int TokenStreamView::chipAt(const QPoint& p) const {
    for (int i = 0; i < chipCount(); ++i)
        if (chips_[i].rect.contains(p)) return i;
    return -1;
}

QString TokenStreamView::chipText(int index) const {
    return index >= 0 && index < chipCount() ? chips_[index].label : QString();
}

QString TokenStreamView::tooltipFor(int index) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || index < 0 || index >= a->length()) return {};
    QString html = QStringLiteral("<b>%1</b> &nbsp; id %2 &nbsp; position %3<br><i>%4</i><table>")
                       .arg(tokenLabel(a->texts[index]).toHtmlEscaped())
                       .arg(a->ids[index])
                       .arg(index)
                       .arg(tr("next-token predictions"));
    if (index < static_cast<int>(shading_.size()))
        html = QStringLiteral("%1: <b>%2</b><br>").arg(shadingCaption_.toHtmlEscaped()).arg(shading_[index], 0, 'f', 3) + html;
    if (a->next.empty()) return html + QStringLiteral("<tr><td>%1</td></tr></table>").arg(tr("(computing)"));
    for (const auto& p : a->next[index])
        html += QStringLiteral("<tr><td>%1</td><td align=right>&nbsp;%2%</td></tr>")
                    .arg(tokenLabel(p.text).toHtmlEscaped())
                    .arg(100.0 * p.probability, 0, 'f', 1);
    return html + "</table>";
}

void TokenStreamView::setShading(const std::vector<float>& values, float max, const QString& caption) {
    shading_ = values;
    shadingMax_ = max;
    shadingCaption_ = caption;
    update();
}

void TokenStreamView::clearShading() {
    if (shading_.empty() && shadingCaption_.isEmpty()) return;
    shading_.clear();
    shadingCaption_.clear();
    update();
}

QColor TokenStreamView::fillFor(const Chip& chip, int index, const ViewColors& c, int hover) const {
    if (index == hover) return c.hover;
    const QColor base = chip.generated ? c.generatedChip : c.promptChip;
    if (index < static_cast<int>(shading_.size()) && shadingMax_ > 0 && shading_[index] > 0)
        return activationShade(c, c.background, 0.12 + 0.88 * shading_[index] / shadingMax_);
    // While a feature is shown, chips where it is silent stay plain, so the active ones stand out.
    return shading_.empty() ? base : c.background;
}

QColor TokenStreamView::chipFill(int index) const {
    if (index < 0 || index >= chipCount()) return {};
    return fillFor(chips_[index], index, viewColors(), hover_);
}

void TokenStreamView::paintChips(QPainter& p, const std::vector<Chip>& chips, const ViewColors& c, int selected,
                                 int hover, bool cached) const {
    p.setRenderHint(QPainter::Antialiasing);
    p.setFont(font());
    const qreal dpr = devicePixelRatioF();
    for (int i = 0; i < static_cast<int>(chips.size()); ++i) {
        const Chip& chip = chips[i];
        const QColor fill = fillFor(chip, i, c, hover);
        const QPen pen = i == selected ? QPen(c.selection, 2) : QPen(c.chipBorder, 1);
        if (cached)
            p.drawPixmap(chip.rect.topLeft() - QPointF(1, 1), chipBackground(chip.rect.size().toSize(), fill, pen, dpr));
        else
            paintChipBackground(p, chip.rect, fill, pen);
        p.setPen(chip.whitespace ? c.muted : c.text);
        const QSizeF ts = chip.text.size();
        p.drawStaticText(QPointF(chip.rect.center().x() - ts.width() / 2, chip.rect.center().y() - ts.height() / 2), chip.text);
    }
}

void TokenStreamView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), c.background);
    if (chips_.empty()) {
        p.setPen(c.muted);
        p.drawText(rect(), Qt::AlignCenter, session_->hasModel() ? tr("Type a prompt and press Enter") : tr("No model loaded"));
        return;
    }
    paintedSelection_ = session_->selection().position;
    paintChips(p, chips_, c, paintedSelection_, hover_, true);
}

QSize TokenStreamView::figureSize() const {
    if (!shown_) return {};
    return {kFigureWidth, heightForWidth(kFigureWidth)};
}

void TokenStreamView::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    paintChips(painter, layoutChips(size.width()), c, session_->selection().position, -1, false);
}

void TokenStreamView::mouseMoveEvent(QMouseEvent* e) {
    const int i = chipAt(e->position().toPoint());
    if (i != hover_) {
        hover_ = i;
        update();
    }
}

void TokenStreamView::leaveEvent(QEvent*) {
    hover_ = -1;
    update();
}

void TokenStreamView::mousePressEvent(QMouseEvent* e) {
    const int i = chipAt(e->position().toPoint());
    if (i >= 0 && e->button() == Qt::LeftButton) session_->selectPosition(i);
}

bool TokenStreamView::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        const int i = chipAt(he->pos());
        if (i >= 0) QToolTip::showText(he->globalPos(), tooltipFor(i), this, chipRect(i));
        else QToolTip::hideText();
        return true;
    }
    return QWidget::event(e);
}

}  // namespace cs::ui
