#pragma once
// The logit lens: every layer's residual stream read through the model's own final norm and
// unembedding. The heatmap shows, per layer and position, the probability given to the token that
// actually comes next; the table lists each layer's top predictions at the selected position.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"

#include <QWidget>

class QLabel;
class QTableWidget;

namespace cs::ui {

class HeatmapPlot;

class LogitLensView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit LogitLensView(SessionController* session, QWidget* parent = nullptr);

    HeatmapPlot* plot() const { return plot_; }
    QTableWidget* table() const { return table_; }
    QString hoverText(int position, int row) const;

    QString figureName() const override { return QStringLiteral("logit-lens"); }
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

private:
    void rebuild();
    void followSelection();

    SessionController* session_;
    HeatmapPlot* plot_;
    QLabel* title_;
    QTableWidget* table_;
};

}  // namespace cs::ui
