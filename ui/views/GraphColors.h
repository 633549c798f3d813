#pragma once
// The attribution graph's colours, shared by the canvas and the subgraph pane so a node, a link
// sign and a supernode look the same in both (and in their figures).
#include "attribution/AttributionGraph.h"

#include <QColor>

#include <iterator>

namespace cs::ui {

inline QColor graphKindColor(NodeKind k) {
    switch (k) {
    case NodeKind::Feature: return QColor(0x4e, 0x79, 0xa7);
    case NodeKind::Error: return QColor(0x9a, 0x9a, 0x9a);
    case NodeKind::Embedding: return QColor(0x59, 0xa1, 0x4f);
    case NodeKind::Logit: return QColor(0xe1, 0x8a, 0x2b);
    }
    return Qt::black;
}

inline QColor graphLinkColor(bool positive) { return positive ? QColor(0x21, 0x66, 0xac) : QColor(0xc0, 0x39, 0x2b); }

// A supernode's members are ringed in its colour on the canvas and its box is drawn in it in the
// subgraph pane, so a group reads as one in both.
inline QColor supernodeColor(int index) {
    static const QColor palette[] = {QColor(0x8e, 0x44, 0xad), QColor(0x16, 0xa0, 0x85), QColor(0xd3, 0x54, 0x00),
                                     QColor(0x27, 0xae, 0x60), QColor(0xc0, 0x39, 0x8b), QColor(0x7f, 0x8c, 0x8d)};
    return palette[static_cast<size_t>(index < 0 ? 0 : index) % std::size(palette)];
}

}  // namespace cs::ui
