#pragma once
// The main window: prompt and generation settings on top, the views in docks that can be
// rearranged (their layout is remembered), a status bar with the model, its size, the thread
// count and the last run's time, and menus with keyboard shortcuts for everything.
#include "model/WeightPrecision.h"
#include "ui/SessionController.h"

#include <QMainWindow>

#include <functional>

class QLineEdit;
class QSpinBox;
class QDoubleSpinBox;
class QCheckBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QActionGroup;
class QMenu;
class QDockWidget;
class QTabWidget;
class QToolButton;

namespace cs::ui {

class TokenStreamView;
class AttentionView;
class LogitLensView;
class FeaturesView;
class DashboardView;
class FeatureBrowser;
class SteeringView;
class GraphView;
class DiffView;
class PatchingView;
class IndexJob;
class FigureSource;
struct SessionState;
struct IndexRequest;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(SessionController* session, QWidget* parent = nullptr);

    void openModel(const QString& dir);
    // How models are held from now on (File > Weight Precision; remembered). Reloads the open model
    // when `reload` is set and the precision changed.
    void setWeightPrecision(cs::WeightPrecision p, bool reload = false);
    void runPrompt();
    RunSettings currentSettings() const;
    // The prompt box's hint (and, for a model without a tokenizer, a prompt of ids) after a load.
    void preparePromptForModel();
    void applySettings(const RunSettings& s);

    // Empty string on success, else the error (also shown to the user when interactive).
    QString saveSession(const QString& path);
    QString openSession(const QString& path);
    QString exportView(FigureSource* view, const QString& path);
    // The whole analysis as JSON (tokens, predictions, attention, lens). Returns an error at once
    // (no run yet), else starts the export on the model thread (filling in the whole lens and every
    // head takes seconds on a long prompt) and reports through dataExported.
    QString exportData(const QString& path);
    QString exportSteeringData(const QString& path);  // the steering comparison as JSON

    TokenStreamView* tokenView() const { return tokens_; }
    AttentionView* attentionView() const { return attention_; }
    LogitLensView* logitLensView() const { return lens_; }
    FeaturesView* featuresView() const { return features_; }
    FeatureBrowser* featureBrowser() const { return browser_; }
    QTabWidget* dashboardTabs() const { return dashboards_; }
    IndexJob* indexJob() const { return indexJob_; }
    QDockWidget* featuresDock() const { return featuresDock_; }
    QDockWidget* dashboardsDock() const { return dashboardsDock_; }
    SteeringView* steeringView() const { return steering_; }
    QDockWidget* steeringDock() const { return steeringDock_; }
    GraphView* graphView() const { return graph_; }
    QDockWidget* graphDock() const { return graphDock_; }
    PatchingView* patchingView() const { return patching_; }
    QDockWidget* patchingDock() const { return patchingDock_; }
    DiffView* diffView() const { return diff_; }
    QDockWidget* diffDock() const { return diffDock_; }
    // Adds a row for the feature to the Steering dock and brings the dock forward.
    void steerFeature(const QString& saeId, long index);
    // Help > About: the version and the libraries'; Help > Keyboard Shortcuts: every menu
    // action that has one, read from the menus themselves so the list cannot go stale.
    QString aboutText() const;
    QString shortcutsText() const;
    // Loads `dir` (or "demo-dog") as model B of the Diff dock and brings the dock forward.
    void compareWith(const QString& dir);

    // Opens (or brings forward) the dashboard of one feature, as a tab of the Dashboards dock.
    DashboardView* openDashboard(const QString& saeId, long index);
    DashboardView* currentDashboard() const;
    // Opens a feature store for this model (remembered per model); empty string or the error.
    QString openFeatureStore(const QString& path);
    // Indexes in the background (progress in the status bar); false when an indexing is running.
    bool startIndexing(const IndexRequest& request);
    // The demo's own store, indexed on first launch: AppLocalDataLocation/demo-features.db.
    static QString demoStorePath();

Q_SIGNALS:
    // A data export finished: `error` is empty when the file was written.
    void dataExported(const QString& path, const QString& error);

protected:
    void closeEvent(QCloseEvent*) override;
    void showEvent(QShowEvent*) override;

private:
    void buildMenus();
    void chooseModel();
    void chooseSessionToOpen();
    void chooseSessionToSave();
    void chooseExport(FigureSource* view);
    void chooseDataExport();
    void chooseSteeringDataExport();
    // Asks for a .json path, remembering the folder; empty when cancelled.
    QString chooseJsonPath(const QString& title, const QString& defaultName);
    void chooseCompareModel();
    void rememberRecent(const QString& dir);
    void forgetRecent(const QString& dir);
    void refreshRecentMenu();
    void setThemeKind(int kind);
    void showError(const QString& message);
    void updateStatus();
    FigureSource* activeFigure() const;
    void chooseSaeToAttach();
    void chooseFeatureStore();
    void chooseIndexCorpus();
    void onModelLoaded();
    void indexDemoIfNeeded();
    void onIndexFinished(const QString& dbPath, const QString& error, bool cancelled, bool resumed);

    SessionController* session_;
    QLineEdit* prompt_;
    QSpinBox* maxNew_;
    QCheckBox* sample_;
    QDoubleSpinBox* temperature_;
    QSpinBox* seed_;
    QPushButton* runButton_;
    QPushButton* cancelButton_;
    TokenStreamView* tokens_;
    AttentionView* attention_;
    LogitLensView* lens_;
    QDockWidget *tokensDock_, *attentionDock_, *lensDock_;
    FeaturesView* features_;
    QTabWidget* dashboards_;
    FeatureBrowser* browser_;
    QDockWidget *featuresDock_, *dashboardsDock_, *browserDock_;
    SteeringView* steering_;
    QDockWidget* steeringDock_;
    GraphView* graph_;
    QDockWidget* graphDock_;
    PatchingView* patching_;
    QDockWidget* patchingDock_;
    DiffView* diff_;
    QDockWidget* diffDock_;
    IndexJob* indexJob_;
    QWidget* indexStatus_;
    QLabel* indexLabel_;
    QProgressBar* indexProgress_;
    QLabel *modelLabel_, *threadsLabel_, *timeLabel_;
    QProgressBar* progress_;
    QMenu* recentMenu_ = nullptr;
    QActionGroup* precisionGroup_ = nullptr;
    bool firstLayout_ = false;
};

}  // namespace cs::ui
