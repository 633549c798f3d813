#pragma once
// The Steering dock: rows that amplify, clamp or ablate SAE features (or add free vectors), each
// with a strength slider; the continuation regenerates while a slider moves, beside the unsteered
// baseline and up to three pinned settings (SteeringComparisonView). Also the condition ("only
// where feature F exceeds x"), presets, and whether the session's own runs (token stream,
// attention, logit lens, features) are steered too.
//
// Every model call goes through SessionController::steer on the session's model thread; a newer
// setting supersedes the one in flight, so dragging never queues up stale runs.
#include "steer/SteeringRule.h"
#include "ui/SessionController.h"

#include <QWidget>

#include <optional>
#include <vector>

class QAction;
class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QHBoxLayout;
class QLabel;
class QScrollArea;
class QSpinBox;
class QSplitter;
class QTableView;
class QTimer;

namespace cs::ui {

class SteeringComparisonView;
class SteeringRowModel;
class StrengthEditor;

class SteeringView : public QWidget {
    Q_OBJECT
public:
    // Slider moves within this time are one request: the demo model continues 32 tokens in about
    // 15-20 ms, so a short wait still repaints within 100 ms of a move.
    static constexpr int kDebounceMs = 20;

    explicit SteeringView(SessionController* session, QWidget* parent = nullptr);
    ~SteeringView() override;

    SteeringRowModel* rowModel() const { return rows_; }
    QTableView* table() const { return table_; }
    SteeringComparisonView* comparisonView() const { return comparison_; }
    StrengthEditor* strengthEditor(int row) const;
    QAction* pinAction() const { return pinAction_; }
    QAction* showInViewsAction() const { return showInViews_; }
    QLabel* statusLabel() const { return status_; }

    // Adds a row steering one feature (add, strength 0, all positions); its unit is the feature's
    // max activation from the open store, else its highest activation on the current run.
    int addFeature(const QString& saeId, long index);
    int addRule(const SteeringRule& rule);
    void removeRow(int row);

    // The rows and the condition, as presets and session files hold them.
    SteeringPlan plan() const;
    void setPlan(const SteeringPlan& plan);
    // Empty on success, else an error naming the file.
    QString savePreset(const QString& path) const;
    QString loadPreset(const QString& path);

    // Pins the live setting as a column of its own (false when kMaxColumns are shown already).
    bool pin();
    void unpin(int column);  // column as the comparison view counts them (>= 1)
    int pinnedCount() const { return static_cast<int>(pinned_.size()); }

    // Regenerates at once, skipping the debounce (what the timer calls).
    void regenerateNow();
    void setShowSteeredRun(bool on);
    bool showsSteeredRun() const;

Q_SIGNALS:
    // The comparison view shows a new result (of the request `ticket`).
    void comparisonUpdated(int ticket);

private:
    struct Pinned {
        int id = 0;  // a SteerRequest column id: 0 is the live setting
        QString title;
        SteeringPlan plan;
        std::optional<RunSettings> madeFor;  // the settings `output` continues
        SteeredText output;
        QString error;
    };

    void buildConditionRow(QWidget* parent, QHBoxLayout* row);
    void reloadConditionSaes();
    void openEditors(int first, int last);
    void planChanged();
    void onRunFinished(const RunResult& r);
    void onSteerFinished(const SteerOutcome& o);
    void showComparison();
    void setColumnsBusy(bool busy);
    void chooseVector();
    void choosePresetToSave();
    void choosePresetToLoad();
    double unitFor(const std::string& saeId, long index) const;
    void showStatus(const QString& text);

    SessionController* session_;
    SteeringRowModel* rows_;
    QTableView* table_;
    SteeringComparisonView* comparison_;
    QScrollArea* comparisonScroll_;
    QSplitter* splitter_;
    QCheckBox* when_;
    QComboBox* whenSae_;
    QSpinBox* whenFeature_;
    QDoubleSpinBox* whenThreshold_;
    QLabel* status_;
    QAction* pinAction_;
    QAction* showInViews_;
    QTimer* debounce_;
    bool settingPlan_ = false;   // setPlan fills widgets: one change, not one per widget
    bool runAfterSteer_ = false; // the plan changed while the session's runs are steered
    int ticket_ = 0;             // the request whose result the view waits for
    std::vector<int> busyColumns_;

    // What the comparison shows: the baseline and live output for `shownFor`.
    std::optional<RunSettings> shownFor_;
    std::vector<long> promptTokens_;
    SteeredText baseline_;
    SteeredText live_;
    QString liveError_;
    std::vector<Pinned> pinned_;
    int nextPinId_ = 1;
};

}  // namespace cs::ui
