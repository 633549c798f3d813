#pragma once
// A QTableWidget that a view refills on every run and lays out at once. Left to itself, a table
// lays out its new rows from a zero-length timer that fires after the window has painted, so
// every run painted both result tables a second time (0.7-1.0 ms here, bench_gui --event-report).
#include <QTableWidget>

namespace cs::ui {

class ResultTable : public QTableWidget {
public:
    using QTableWidget::QTableWidget;
    // Call after refilling: the rows are laid out now and the pending timer is stopped.
    void layoutNow() { executeDelayedItemsLayout(); }
};

}  // namespace cs::ui
