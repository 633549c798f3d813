#pragma once
// The main window: prompt and generation settings on top, the views in docks that can be
// rearranged (their layout is remembered), a status bar with the model, its size, the thread
// count and the last run's time, and menus with keyboard shortcuts for everything.
#include "ui/SessionController.h"

#include <QMainWindow>

class QLineEdit;
class QSpinBox;
class QDoubleSpinBox;
class QCheckBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QMenu;
class QDockWidget;

namespace cs::ui {

class TokenStreamView;
class AttentionView;
class LogitLensView;
class FigureSource;
struct SessionState;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(SessionController* session, QWidget* parent = nullptr);

    void openModel(const QString& dir);
    void runPrompt();
    RunSettings currentSettings() const;
    void applySettings(const RunSettings& s);

    // Empty string on success, else the error (also shown to the user when interactive).
    QString saveSession(const QString& path);
    QString openSession(const QString& path);
    QString exportView(FigureSource* view, const QString& path);
    QString exportData(const QString& path);  // the whole analysis as JSON (tokens, predictions, attention, lens)

    TokenStreamView* tokenView() const { return tokens_; }
    AttentionView* attentionView() const { return attention_; }
    LogitLensView* logitLensView() const { return lens_; }

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
    void rememberRecent(const QString& dir);
    void refreshRecentMenu();
    void setThemeKind(int kind);
    void showError(const QString& message);
    void updateStatus();
    FigureSource* activeFigure() const;

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
    QLabel *modelLabel_, *threadsLabel_, *timeLabel_;
    QProgressBar* progress_;
    QMenu* recentMenu_ = nullptr;
    bool firstLayout_ = false;
};

}  // namespace cs::ui
