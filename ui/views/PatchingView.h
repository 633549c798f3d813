#pragma once
// The Patching dock: a clean and a corrupted prompt, the answer and wrong tokens, what to patch
// (residual stream, attention or MLP output, heads, heads by position, or one attached SAE's
// features), the direction and the metric; Run patches on the session's model thread
// (runActivationPatching, batched; progress and Cancel) and draws the grid (PatchingPlot) with
// both runs' raw metric. Hovering a cell gives its exact values; a click selects that layer,
// position and head in every other view. Exports as a figure (File > Export Figure) and as JSON
// (patchGridToJson, what `patch --json` prints).
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"

#include <QWidget>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;

namespace cs {
struct PatchGrid;
}

namespace cs::ui {

class PatchingPlot;

class PatchingView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit PatchingView(SessionController* session, QWidget* parent = nullptr);

    QLineEdit* cleanEdit() const { return clean_; }
    QLineEdit* corruptedEdit() const { return corrupted_; }
    QLineEdit* answerEdit() const { return answer_; }
    QLineEdit* wrongEdit() const { return wrong_; }
    // Items in PatchSite order; data is the site name ("resid", ... "features").
    QComboBox* siteBox() const { return site_; }
    QComboBox* saeBox() const { return sae_; }  // the attached SAEs (data: the SAE id)
    QComboBox* directionBox() const { return direction_; }
    QComboBox* metricBox() const { return metric_; }
    QPushButton* runButton() const { return run_; }
    QPushButton* cancelButton() const { return cancel_; }
    QLabel* statusLabel() const { return status_; }
    PatchingPlot* plot() const { return plot_; }
    const PatchGrid* grid() const;  // the grid shown, or null
    bool isRunning() const { return cancelFlag_ != nullptr; }

    void setPrompts(const QString& clean, const QString& corrupted, const QString& answer, const QString& wrong);
    // Starts a run from the fields; an error in them (a token that is not one token, no SAE for
    // features) is shown at once and nothing runs.
    void runPatching();
    void cancelPatching();
    // The shown grid as JSON (patchGridToJson); null before a run.
    nlohmann::json toJson() const;
    QString exportJson(const QString& path) const;  // empty on success, else the error
    void chooseJsonExport();
    void refreshColors();  // the theme changed

    QString figureName() const override;
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

Q_SIGNALS:
    void patchingFinished();         // a new grid is shown
    void patchingFailed(const QString& message);  // also shown in the status line; cancelled runs included
    // A cell was clicked: the session's selection has moved to it, or, when the session's run is
    // not of the grid's clean prompt, moves there once that prompt has run (promptRequested).
    void cellOpened(int layer, int position, int head);
    // Run this prompt in the session (the main window puts it in its prompt field and runs it).
    void promptRequested(const QString& text);

private:
    void reloadSaes();
    void siteChanged();
    void setRunning(bool running);
    void showError(const QString& message);
    void openCell(int col, int row);

    SessionController* session_;
    QLineEdit *clean_, *corrupted_, *answer_, *wrong_;
    QComboBox *site_, *sae_, *direction_, *metric_;
    QPushButton *run_, *cancel_;
    QProgressBar* progress_;
    QLabel* status_;
    PatchingPlot* plot_;
    QString gridPrompt_;  // the clean prompt of the grid shown
    std::shared_ptr<std::atomic<bool>> cancelFlag_;  // the run in flight; null when none
};

}  // namespace cs::ui
