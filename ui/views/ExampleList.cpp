#include "ui/views/ExampleList.h"

#include "ui/Theme.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {
constexpr int kMargin = 6;
constexpr int kGutter = 64;    // "3.21" beside each example
constexpr int kItemGap = 5;
constexpr double kTokenPad = 1;
}  // namespace

ExampleList::ExampleList(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    QSizePolicy sp(QSizePolicy::Expanding, QSizePolicy::Preferred);
    sp.setHeightForWidth(true);
    setSizePolicy(sp);
}

QString ExampleList::displayPiece(const std::string& piece) {
    QString s = QString::fromUtf8(piece.data(), static_cast<int>(piece.size()));
    s.replace(QChar(0x2581), ' ');
    s.replace(QChar(0x0120), ' ');
    s.replace(QChar(0x010A), QChar(0x21B5));
    s.replace('\n', QChar(0x21B5));
    s.replace('\t', ' ');
    return s;
}

void ExampleList::setItems(std::vector<Item> items, float scaleMax) {
    items_ = std::move(items);
    scaleMax_ = scaleMax;
    hover_ = -1;
    placed_ = layout(width());
    updateGeometry();
    update();
}

std::vector<ExampleList::Placed> ExampleList::layout(int width) const {
    std::vector<Placed> out;
    const QFontMetricsF fm(font());
    const double lineH = std::ceil(fm.height() + 4);
    double y = kMargin;
    const double x0 = kMargin + kGutter, right = std::max<double>(x0 + 80, width - kMargin);
    for (int i = 0; i < static_cast<int>(items_.size()); ++i) {
        const Item& it = items_[i];
        Placed pl;
        pl.item = i;
        if (!it.heading.isEmpty()) {
            const double h = lineH + 4;
            pl.rect = QRectF(kMargin, y, right - kMargin, h);
            y += h;
            out.push_back(std::move(pl));
            continue;
        }
        double x = x0, top = y;
        for (const std::string& piece : it.example.pieces) {
            const double w = std::ceil(fm.horizontalAdvance(displayPiece(piece)) + 2 * kTokenPad);
            if (x + w > right && x > x0) {
                x = x0;
                y += lineH;
            }
            pl.tokens.emplace_back(x, y, std::max(w, 3.0), lineH);
            x += std::max(w, 3.0);
        }
        y += lineH;
        pl.rect = QRectF(kMargin, top, right - kMargin, y - top);
        y += kItemGap;
        out.push_back(std::move(pl));
    }
    return out;
}

int ExampleList::heightAt(int width) const {
    const auto placed = layout(width);
    return placed.empty() ? 2 * kMargin : static_cast<int>(std::ceil(placed.back().rect.bottom() + kMargin));
}

void ExampleList::paintAt(QPainter& p, int width, const ViewColors& c) const {
    const auto placed = width == this->width() && !placed_.empty() ? placed_ : layout(width);
    p.setFont(font());
    QFont bold = font();
    bold.setBold(true);
    for (const Placed& pl : placed) {
        const Item& it = items_[pl.item];
        if (!it.heading.isEmpty()) {
            p.setFont(bold);
            p.setPen(c.text);
            p.drawText(pl.rect, Qt::AlignLeft | Qt::AlignBottom, it.heading);
            p.setFont(font());
            continue;
        }
        if (pl.item == hover_) p.fillRect(pl.rect.adjusted(-2, -1, 2, 1), c.hover);
        const FeatureExample& e = it.example;
        p.setPen(c.muted);
        p.drawText(QRectF(kMargin, pl.rect.top(), kGutter - 8, pl.tokens.empty() ? pl.rect.height() : pl.tokens[0].height()),
                   Qt::AlignRight | Qt::AlignVCenter, QString::number(e.max, 'f', 2));
        for (size_t t = 0; t < pl.tokens.size(); ++t) {
            const float a = t < e.activations.size() ? e.activations[t] : 0.0f;
            const QRectF r = pl.tokens[t];
            if (a > 0 && scaleMax_ > 0) p.fillRect(r, activationShade(c, c.background, 0.1 + 0.9 * a / scaleMax_));
            if (static_cast<int>(t) == e.maxOffset) {
                p.setPen(QPen(c.text, 1.2));
                p.setBrush(Qt::NoBrush);
                p.drawRect(r.adjusted(0.5, 0.5, -0.5, -0.5));
            }
            // Special tokens (<s>, <|endoftext|>) are context, never text: muted.
            const std::string& piece = e.pieces[t];
            const bool special = piece.size() > 2 && piece.front() == '<' && piece.back() == '>';
            p.setPen(special ? c.muted : c.text);
            p.drawText(r, Qt::AlignCenter, displayPiece(piece));
        }
    }
}

void ExampleList::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), c.background);
    paintAt(p, width(), c);
}

void ExampleList::resizeEvent(QResizeEvent*) { placed_ = layout(width()); }

int ExampleList::itemAt(const QPoint& pt) const {
    for (const Placed& pl : placed_)
        if (items_[pl.item].heading.isEmpty() && pl.rect.contains(pt)) return pl.item;
    return -1;
}

QRect ExampleList::itemRect(int item) const {
    for (const Placed& pl : placed_)
        if (pl.item == item) return pl.rect.toAlignedRect();
    return {};
}

void ExampleList::mousePressEvent(QMouseEvent* e) {
    const int i = itemAt(e->position().toPoint());
    if (i >= 0 && e->button() == Qt::LeftButton) Q_EMIT exampleClicked(i);
}

void ExampleList::mouseMoveEvent(QMouseEvent* e) {
    const int i = itemAt(e->position().toPoint());
    if (i != hover_) {
        hover_ = i;
        setCursor(i >= 0 ? Qt::PointingHandCursor : Qt::ArrowCursor);
        update();
    }
}

void ExampleList::leaveEvent(QEvent*) {
    hover_ = -1;
    update();
}

bool ExampleList::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        for (const Placed& pl : placed_) {
            if (!items_[pl.item].heading.isEmpty()) continue;
            for (size_t t = 0; t < pl.tokens.size(); ++t)
                if (pl.tokens[t].contains(he->pos())) {
                    const FeatureExample& ex = items_[pl.item].example;
                    QToolTip::showText(he->globalPos(),
                                       tr("<b>%1</b> &nbsp; activation %2<br>document %3, position %4<br><i>click: run this text</i>")
                                           .arg(displayPiece(ex.pieces[t]).toHtmlEscaped())
                                           .arg(t < ex.activations.size() ? ex.activations[t] : 0.0f, 0, 'f', 3)
                                           .arg(ex.document)
                                           .arg(ex.start + static_cast<long>(t)),
                                       this, pl.tokens[t].toAlignedRect());
                    return true;
                }
        }
        QToolTip::hideText();
        return true;
    }
    return QWidget::event(e);
}

}  // namespace cs::ui
