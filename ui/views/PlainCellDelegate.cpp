#include "ui/views/PlainCellDelegate.h"

#include <QPainter>

namespace cs::ui {

void PlainCellDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    const bool selected = option.state & QStyle::State_Selected;
    const QPalette::ColorGroup group = option.state & QStyle::State_Active ? QPalette::Active : QPalette::Inactive;
    if (selected) painter->fillRect(option.rect, option.palette.brush(group, QPalette::Highlight));
    const QString text = index.data(Qt::DisplayRole).toString();
    const QString trailing = index.data(TrailingTextRole).toString();
    if (text.isEmpty() && trailing.isEmpty()) return;
    const QVariant align = index.data(Qt::TextAlignmentRole);
    const Qt::Alignment a = align.isValid() ? Qt::Alignment(align.toInt()) : Qt::AlignLeft | Qt::AlignVCenter;
    QRect r = option.rect.adjusted(4, 0, -4, 0);  // the style's item text margin
    const QFontMetrics& fm = option.fontMetrics;
    painter->setPen(option.palette.color(group, selected ? QPalette::HighlightedText : QPalette::Text));
    if (!trailing.isEmpty()) {
        painter->drawText(r, Qt::AlignRight | Qt::AlignVCenter | Qt::TextSingleLine, trailing);
        r.setRight(r.right() - fm.horizontalAdvance(trailing) - fm.horizontalAdvance(QLatin1Char(' ')));
        if (r.width() <= 0) return;
    }
    const QString shown = fm.horizontalAdvance(text) > r.width() ? fm.elidedText(text, Qt::ElideRight, r.width()) : text;
    painter->drawText(r, static_cast<int>(a | Qt::TextSingleLine), shown);
}

}  // namespace cs::ui
