#pragma once
// A QCustomPlot set up as a cell-exact heatmap (no interpolation, one cell per matrix entry, cells
// centred on integer coordinates) with token labels on the axes, a colour scale, an outline for
// the selected row or column, and hover / click reported as cells. The attention and logit-lens
// views both draw with it, so both export and behave alike.
#include <QStringList>
#include "ui/Qcp.h"

#include <algorithm>
#include <functional>

namespace cs::ui {

struct ViewColors;

class HeatmapPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit HeatmapPlot(QWidget* parent = nullptr);

    // value(col, row) for col < cols, row < rows; NaN cells are drawn transparent.
    void setMatrix(int cols, int rows, const std::function<double(int, int)>& value, double lo, double hi);
    // Every cell NaN (transparent), the shape and labels kept: cheaper than a matrix of NaNs.
    void clearValues();
    // Shows only columns [first, first + count) (count 0: all); kept across setMatrix. The axis
    // labels follow what is shown.
    void setColumnWindow(int first, int count);
    int firstShownColumn() const { return colCount_ > 0 ? colFirst_ : 0; }
    int shownColumns() const { return colCount_ > 0 ? std::min(colCount_, cols_) : cols_; }
    void setColumnLabels(const QStringList& labels, const QString& title);
    void setRowLabels(const QStringList& labels, const QString& title);
    const QStringList& columnLabels() const { return colLabels_; }
    const QStringList& rowLabels() const { return rowLabels_; }
    void setScaleLabel(const QString& label);
    void setRowsTopDown(bool topDown);
    void highlightRow(int row);     // -1 hides
    void highlightColumn(int col);  // -1 hides
    int highlightedRow() const { return row_; }
    int highlightedColumn() const { return col_; }
    int columns() const { return cols_; }
    int rows() const { return rows_; }
    bool cellAt(const QPoint& widgetPos, int& col, int& row) const;
    QPoint cellCenter(int col, int row) const;  // widget coordinates
    double cellValue(int col, int row) const;

    void applyColors(const ViewColors& c);
    // Paints the plot at `size` with the figure colours, then restores the screen colours. A
    // figure stands alone, away from the dock's header: `title` (when given) goes above the plot.
    void renderFigure(QCPPainter& painter, const QSize& size, const QString& title = {});

Q_SIGNALS:
    void cellHovered(int col, int row, const QPoint& globalPos);
    void cellClicked(int col, int row);

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void placeHighlight();
    void applyColumnRange();
    void updateTickers();  // label density follows the axis length, so labels never overlap

    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPItemRect* highlight_;
    QStringList colLabels_, rowLabels_;
    int cols_ = 0, rows_ = 0, row_ = -1, col_ = -1;
    int colFirst_ = 0, colCount_ = 0;
};

}  // namespace cs::ui
