#pragma once
// The features at the selected token: for every attached SAE or transcoder (grouped by hook, in
// layer order) its most active features there, each with index, label (from the open feature
// store), activation as a bar and a sparkline of that feature over the whole text. Hover a row for
// the tokens the feature promotes; select it to shade every token chip by its activation;
// double-click or Enter opens its dashboard; S (or the context menu) adds it to the Steering dock.
// All of it reads PromptAnalysis::features, which the run's one forward pass filled: a click costs
// no model run.
//
// A painted list (a few dozen rows), not an item view: the screen and the exported figure are
// drawn by the same function.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"

#include <QAbstractScrollArea>
#include <QHash>

#include <nlohmann/json_fwd.hpp>

#include <vector>

namespace cs::ui {

struct ViewColors;

class FeaturesView : public QAbstractScrollArea, public FigureSource {
    Q_OBJECT
public:
    static constexpr int kTopPerSae = 8;

    struct Row {
        bool header = false;  // an SAE's heading row (track, no feature)
        int track = -1;       // index into PromptAnalysis::features
        int feature = -1;
        float activation = 0;
        QString label;
        bool labelIsAuto = true;
        std::vector<float> series;  // the feature's activation at every position
        QString title;              // header rows: "res-L0  blocks.0.hook_resid_post  (12 active)"
    };

    explicit FeaturesView(SessionController* session, QWidget* parent = nullptr);

    const std::vector<Row>& rows() const { return rows_; }
    int rowAt(const QPoint& viewportPos) const;  // -1 when none
    QRect rowRect(int row) const;                // viewport coordinates
    int selectedRow() const;                     // -1 when the selected feature has no row here
    QString selectedSae() const { return selectedSae_; }
    int selectedFeature() const { return selectedFeature_; }
    void selectRow(int row);                     // a feature row; emits featureSelected
    void clearSelection();
    void openRow(int row);                       // emits dashboardRequested
    void steerRow(int row);                      // emits steerRequested (S, or the context menu)
    QString tooltipFor(int row) const;
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }
    int drawnPosition() const { return position_; }
    // What the view shows, as JSON: position, token, and per SAE its rows (the export's data).
    nlohmann::json toJson() const;

    QString figureName() const override;
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

Q_SIGNALS:
    // The selected feature's activation over the text (for the token stream), or cleared (empty).
    void shadingChanged(const std::vector<float>& values, float max, const QString& caption);
    void featureSelected(const QString& saeId, int feature);
    void dashboardRequested(const QString& saeId, int feature);
    void steerRequested(const QString& saeId, int feature);

protected:
    void paintEvent(QPaintEvent*) override;
    void resizeEvent(QResizeEvent*) override;
    void mousePressEvent(QMouseEvent*) override;
    void mouseDoubleClickEvent(QMouseEvent*) override;
    void keyPressEvent(QKeyEvent*) override;
    void contextMenuEvent(QContextMenuEvent*) override;
    bool viewportEvent(QEvent*) override;

private:
    void rebuild();          // rows from the shown analysis and the selected position
    void refreshLabels();
    void emitShading();
    void updateScrollBar();
    int rowHeight() const;
    int headerHeight() const;
    int contentHeight() const;
    // Paints rows into `width` starting at y = 0 (figures) or shifted by the scroll offset.
    void paintRows(QPainter& p, int width, const ViewColors& c, bool figure, int scrollY, int visibleHeight) const;
    QString emptyText() const;

    SessionController* session_;
    std::shared_ptr<const PromptAnalysis> shown_;
    int position_ = -1;
    std::vector<Row> rows_;
    QString selectedSae_;
    int selectedFeature_ = -1;
    int hover_ = -1;
    mutable QHash<QString, QString> promoted_;  // "sae#index" -> tooltip line of promoted tokens
};

}  // namespace cs::ui
