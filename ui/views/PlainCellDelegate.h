#pragma once

#include <QStyledItemDelegate>

namespace cs::ui {

// Paints a table cell as its text (elided on the right when too wide, aligned as the item says)
// over the selection colour when selected; nothing else. The style's own item painting lays every
// cell's text out through QTextLayout and draws a panel, a focus frame and an icon slot: on the
// logit-lens table (35 cells) that took 0.7 ms of each run's repaint, more than the heatmap above
// it. These tables hold short plain text, so the plain path loses nothing they use.
class PlainCellDelegate : public QStyledItemDelegate {
public:
    // A second text, drawn right-aligned and never elided (a probability beside a token): in a
    // narrow column the token is shortened, the number stays readable.
    static constexpr int TrailingTextRole = Qt::UserRole + 1;

    using QStyledItemDelegate::QStyledItemDelegate;
    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
};

}  // namespace cs::ui
