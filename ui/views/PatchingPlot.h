#pragma once
// An activation-patching grid (cs::PatchGrid) as a cell-exact heatmap: one cell per patched run,
// rows are layers (or layer.head, or features), columns positions (labelled with the prompts'
// tokens) or heads. The colours diverge around 0 (the corrupted run) toward 1 (the clean run),
// with negative values (a patch that pushes further from clean) in the other hue, so the scale
// is symmetric: [-m, m] with m = max(1, largest |value|). A title says what was patched and the
// two runs' raw metric. The Patching view shows it; `patch --out` draws it headlessly
// (PatchingFigure), so a scripted figure is exactly what the window shows.
#include "patching/ActivationPatching.h"
#include "ui/Qcp.h"
#include "ui/figures/FigureSource.h"

#include <QStringList>

#include <memory>
#include <string>
#include <vector>

namespace cs::ui {

struct ViewColors;

class PatchingPlot : public QCustomPlot, public FigureSource {
    Q_OBJECT
public:
    explicit PatchingPlot(QWidget* parent = nullptr);

    // The token texts label the position columns (where clean and corrupted differ, both are shown).
    void setGrid(std::shared_ptr<const PatchGrid> grid, std::vector<std::string> cleanTexts,
                 std::vector<std::string> corruptedTexts);
    void clearGrid();
    const PatchGrid* grid() const { return grid_.get(); }
    const std::vector<std::string>& cleanTexts() const { return cleanTexts_; }
    const std::vector<std::string>& corruptedTexts() const { return corruptedTexts_; }

    // What the axes show: row labels, column labels (token texts for positions).
    QString rowLabel(int row) const;
    QString columnLabel(int col) const;
    // The hover text of a cell: row, column, the exact normalised value and the raw metric.
    QString hoverText(int col, int row) const;
    bool cellAt(const QPoint& widgetPos, int& col, int& row) const;
    QPoint cellCenter(int col, int row) const;  // widget coordinates
    double cellValue(int col, int row) const;   // as drawn (NaN outside the grid)
    double scaleMax() const { return scaleMax_; }
    QString title() const;

    void applyColors(const ViewColors& c);

    QString figureName() const override;
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

Q_SIGNALS:
    void cellHovered(int col, int row, const QPoint& globalPos);
    void cellClicked(int col, int row);

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void updateTickers();  // as many labels as fit, so they never overlap

    QCPTextElement* title_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    std::shared_ptr<const PatchGrid> grid_;
    std::vector<std::string> cleanTexts_, corruptedTexts_;
    double scaleMax_ = 1;
};

// "logit diff", "P(answer)", "KL" as the view and the figure name a metric.
QString patchMetricTitle(PatchMetric metric);
// "residual stream", "attention output", ... for a site.
QString patchSiteTitle(PatchSite site);

}  // namespace cs::ui
