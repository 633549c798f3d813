#pragma once
// The logit lens: every layer's residual stream read through the model's own final norm and
// unembedding. The heatmap shows, per layer and position, the probability given to the token that
// actually comes next, or to one token the user tracks (typed, or double-clicked in the table);
// the table lists each layer's top predictions at the selected position.
//
// The lens' cells are computed where they are looked at (LogitLens): the heatmap shows at most
// kMaxShownPositions positions at a time (a scroll bar moves along longer sequences), and the
// selected position and the positions on screen are computed on the session's worker, the
// selected one first, and drawn as they arrive. A figure computes whatever it shows first.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"
#include "ui/views/ResultTable.h"

#include <QWidget>

#include <atomic>
#include <memory>
#include <vector>

class QLabel;
class QLineEdit;
class QScrollBar;

namespace cs::ui {

class HeatmapPlot;

class LogitLensView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    // GPT-2's 50k vocabulary costs about 8 ms a position on the project's 2-core machine: a screen
    // of 64 is half a second of worker time (bench_views), and 64 columns still fit a label each.
    static constexpr int kMaxShownPositions = 64;
    // Fewer where the dock is narrow: a column keeps room for its rotated label (at 128 tokens in
    // a 400 px dock, 64 columns were 2 px cells with every other label cut off).
    static constexpr int kMinCellWidth = 14;
    static constexpr int kMinShownPositions = 8;
    // Positions per worker job after the selected one: the heatmap fills in a few columns at a
    // time, and a scroll or a new selection stops the old request within one job. Each job reads
    // the whole unembedding matrix once (154 MB for GPT-2 small), so jobs are not made smaller.
    static constexpr int kPositionsPerJob = 16;

    explicit LogitLensView(SessionController* session, QWidget* parent = nullptr);
    ~LogitLensView() override;  // batches still queued for it are skipped

    HeatmapPlot* plot() const { return plot_; }
    QTableWidget* table() const { return table_; }
    QLineEdit* trackEdit() const { return track_; }
    QLabel* trackError() const { return trackError_; }
    QScrollBar* positionScroll() const { return scroll_; }
    QString hoverText(int position, int row) const;
    void refreshColors() { rebuild(); }  // the theme changed
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }  // what heatmap and table show
    // The positions on screen: [firstShownPosition(), firstShownPosition() + shownPositions()).
    int firstShownPosition() const { return first_; }
    int shownPositions() const;
    void showPositionsFrom(int first);  // scrolls
    // Every cell on screen and the selected position's are computed and drawn.
    bool isFilled() const;

    QString figureName() const override { return QStringLiteral("logit-lens"); }
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void takeShown();  // the session shows another analysis (or stage of one)
    void rebuild();
    void refreshCells();     // cells computed since the last draw: heatmap values and the table
    void followSelection();
    void fillTable();
    void placeWindow(int first);  // clamped; the plot's columns and the scroll bar follow
    void trackTyped();
    std::vector<int> wantedPositions() const;  // the selected position first, then those on screen
    void requestWanted();  // computes what is wanted and missing on the worker, in small batches
    void columnsArrived(const std::shared_ptr<const LogitLens>& lens);
    float shownProbability(int row, int position) const;  // the heatmap's value; NaN where none

    SessionController* session_;
    HeatmapPlot* plot_;
    QLabel* title_;
    QScrollBar* scroll_;
    ResultTable* table_;
    QLineEdit* track_;
    QLabel* trackError_;
    std::shared_ptr<const PromptAnalysis> shown_;  // what the heatmap and table are drawn from
    std::vector<const LensColumn*> columns_;       // shown_'s computed columns at the last draw
    int first_ = 0;      // first position on screen
    int placedCount_ = 0;  // shownPositions() when the window was last placed (a resize changes it)
    int followed_ = -1;  // the selected position the column outline and table were made for
    int shownToken_ = -1;
    std::vector<std::vector<float>> tracked_;  // [row][t] for shownToken_ >= 0 (NaN where not computed)
    // Bumped by each request: the worker skips batches of a request that a newer one replaced.
    std::shared_ptr<std::atomic<int>> request_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace cs::ui
