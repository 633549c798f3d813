#pragma once
#include <QMainWindow>

class QLineEdit;
class QPlainTextEdit;
class QSpinBox;
class QLabel;

namespace cs::ui {

class SessionController;

// The main window: a prompt row and an output pane for now; the views of later issues dock here.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(SessionController* session, QWidget* parent = nullptr);
    void openModel(const QString& dir);

private:
    void runPrompt();
    void chooseModel();

    SessionController* session_;
    QLineEdit* prompt_;
    QSpinBox* maxNew_;
    QPlainTextEdit* output_;
    QLabel* modelLabel_;
};

}  // namespace cs::ui
