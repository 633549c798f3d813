#pragma once
// The logit lens: every layer's residual stream read through the model's own final norm and
// unembedding. The heatmap shows, per layer and position, the probability given to the token that
// actually comes next, or to one token the user tracks (typed, or double-clicked in the table);
// the table lists each layer's top predictions at the selected position.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"
#include "ui/views/ResultTable.h"

#include <QWidget>

class QLabel;
class QLineEdit;

namespace cs::ui {

class HeatmapPlot;

class LogitLensView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit LogitLensView(SessionController* session, QWidget* parent = nullptr);

    HeatmapPlot* plot() const { return plot_; }
    QTableWidget* table() const { return table_; }
    QLineEdit* trackEdit() const { return track_; }
    QLabel* trackError() const { return trackError_; }
    QString hoverText(int position, int row) const;
    void refreshColors() { rebuild(); }  // the theme changed
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }  // what heatmap and table show

    QString figureName() const override { return QStringLiteral("logit-lens"); }
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

private:
    void takeShown();  // the session shows another analysis (or stage of one)
    void rebuild();
    void followSelection();
    void trackTyped();
    float shownProbability(int row, int position) const;  // the heatmap's value; NaN where none

    SessionController* session_;
    HeatmapPlot* plot_;
    QLabel* title_;
    ResultTable* table_;
    QLineEdit* track_;
    QLabel* trackError_;
    std::shared_ptr<const PromptAnalysis> shown_;  // what the heatmap and table are drawn from
    int followed_ = -1;  // the selected position the column outline and table were made for
    int shownToken_ = -1;
    std::vector<std::vector<float>> tracked_;  // [row][t] for shownToken_ >= 0
};

}  // namespace cs::ui
