#include "ui/views/PlainCellDelegate.h"

#include <QPainter>

namespace cs::ui {

void PlainCellDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    const bool selected = option.state & QStyle::State_Selected;
    const QPalette::ColorGroup group = option.state & QStyle::State_Active ? QPalette::Active : QPalette::Inactive;
    if (selected) painter->fillRect(option.rect, option.palette.brush(group, QPalette::Highlight));
    const QString text = index.data(Qt::DisplayRole).toString();
    if (text.isEmpty()) return;
    const QVariant align = index.data(Qt::TextAlignmentRole);
    const Qt::Alignment a = align.isValid() ? Qt::Alignment(align.toInt()) : Qt::AlignLeft | Qt::AlignVCenter;
    const QRect r = option.rect.adjusted(4, 0, -4, 0);  // the style's item text margin
    const QFontMetrics& fm = option.fontMetrics;
    const QString shown = fm.horizontalAdvance(text) > r.width() ? fm.elidedText(text, Qt::ElideRight, r.width()) : text;
    painter->setPen(option.palette.color(group, selected ? QPalette::HighlightedText : QPalette::Text));
    painter->drawText(r, static_cast<int>(a | Qt::TextSingleLine), shown);
}

}  // namespace cs::ui
