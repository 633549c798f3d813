#pragma once
// Attention patterns: a layer x head grid of thumbnails to pick from, the picked head's pattern
// as a cell-exact heatmap (queries down, keys across, hover for the exact weight), and the tokens
// the selected position attends to most. On a long sequence the analysis holds no patterns
// (AttentionPatterns): the picked head is computed on the session's worker and drawn when it
// arrives, and the thumbnails draw the analysis' max-pooled summaries.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"
#include "ui/views/ResultTable.h"

#include <QWidget>

#include <atomic>
#include <memory>

class QLabel;

namespace cs::ui {

class HeatmapPlot;
class AttentionThumbnails;

class AttentionView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit AttentionView(SessionController* session, QWidget* parent = nullptr);
    ~AttentionView() override;  // a head still queued for it is skipped

    HeatmapPlot* plot() const { return plot_; }
    AttentionThumbnails* thumbnails() const { return thumbs_; }
    QTableWidget* topTable() const { return top_; }
    int selectedRow() const;  // the query row outlined in the heatmap (-1: none)
    // The picked head's pattern is drawn (false while it is computed on the worker).
    bool isFilled() const;
    QString hoverText(int key, int query) const;
    void refreshColors();  // the theme changed: redraw what was drawn in the old colours
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }  // what the heatmap shows

    QString figureName() const override;
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

private:
    void takeShown();        // the session shows another analysis (or stage of one)
    void rebuild();          // new analysis or new layer/head: the heatmap's data
    void draw();             // the heatmap from pattern_
    void followSelection();  // new position: outline and the top-attended list
    void requestHead(int layer, int head);  // computes the head on the worker, then draws it

    SessionController* session_;
    AttentionThumbnails* thumbs_;
    HeatmapPlot* plot_;
    QLabel* title_;
    ResultTable* top_;
    int shownLayer_ = -1, shownHead_ = -1;
    int followed_ = -1;  // the selected position the outline and list were made for
    std::shared_ptr<const PromptAnalysis> shown_;  // what the picture is drawn from
    HeadPattern pattern_;  // shown_'s pattern of (shownLayer_, shownHead_); empty while it is computed
    // Bumped by each head request: the worker skips a head that was picked away from meanwhile.
    std::shared_ptr<std::atomic<int>> request_ = std::make_shared<std::atomic<int>>(0);
};

// Every head's pattern as a small picture (its max-pooled summary); click one to select its layer
// and head.
class AttentionThumbnails : public QWidget {
    Q_OBJECT
public:
    explicit AttentionThumbnails(SessionController* session, QWidget* parent = nullptr);
    QRect cellRect(int layer, int head) const;
    QSize sizeHint() const override;
    void refreshColors() { rebuild(); }
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }

protected:
    void paintEvent(QPaintEvent*) override;
    void mousePressEvent(QMouseEvent*) override;

private:
    void takeShown();
    void rebuild();
    SessionController* session_;
    std::shared_ptr<const PromptAnalysis> shown_;
    std::vector<QImage> images_;  // layer-major
    int cell_ = 40;
};

}  // namespace cs::ui
