#include "ui/MainWindow.h"

#include "ui/SessionController.h"

#include <QAction>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStatusBar>
#include <QVBoxLayout>

namespace cs::ui {

MainWindow::MainWindow(SessionController* session, QWidget* parent)
    : QMainWindow(parent), session_(session) {
    setWindowTitle(tr("Circuitscope"));
    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    auto* row = new QHBoxLayout();
    prompt_ = new QLineEdit(central);
    prompt_->setPlaceholderText(tr("Type a prompt and press Enter"));
    prompt_->setText(QSettings().value("prompt", "Once upon a time").toString());
    maxNew_ = new QSpinBox(central);
    maxNew_->setRange(0, 1024);
    maxNew_->setValue(32);
    maxNew_->setPrefix(tr("new tokens: "));
    auto* runButton = new QPushButton(tr("Run"), central);
    row->addWidget(prompt_, 1);
    row->addWidget(maxNew_);
    row->addWidget(runButton);
    output_ = new QPlainTextEdit(central);
    output_->setObjectName("output");
    output_->setReadOnly(true);
    layout->addLayout(row);
    layout->addWidget(output_, 1);
    setCentralWidget(central);
    modelLabel_ = new QLabel(tr("no model"), this);
    statusBar()->addPermanentWidget(modelLabel_);

    auto* file = menuBar()->addMenu(tr("&File"));
    auto* open = file->addAction(tr("&Open Model..."), this, &MainWindow::chooseModel);
    open->setShortcut(QKeySequence::Open);
    file->addAction(tr("&Quit"), this, &QWidget::close)->setShortcut(QKeySequence::Quit);

    connect(prompt_, &QLineEdit::returnPressed, this, &MainWindow::runPrompt);
    connect(runButton, &QPushButton::clicked, this, &MainWindow::runPrompt);
    connect(session_, &SessionController::modelLoaded, this, [this](const QString& s) {
        modelLabel_->setText(s);
        runPrompt();
    });
    connect(session_, &SessionController::generated, this, [this](const GenerationResult& r) {
        output_->setPlainText(prompt_->text() + r.text);
        statusBar()->showMessage(tr("generated %1 tokens in %2 s").arg(r.newTokens.size()).arg(r.seconds, 0, 'f', 2));
    });
    connect(session_, &SessionController::failed, this, [this](const QString& m) {
        // Window-modal, not application-modal: the rest of the app keeps working behind it.
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Circuitscope"), m, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    });
    connect(session_, &SessionController::busyChanged, this, [this](bool busy) {
        statusBar()->showMessage(busy ? tr("working...") : QString());
    });
}

void MainWindow::openModel(const QString& dir) {
    QSettings().setValue("lastModel", dir);
    session_->loadModel(dir);
}

void MainWindow::chooseModel() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a Hugging Face model directory"),
                                                          QSettings().value("lastModel").toString());
    if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::runPrompt() {
    if (!session_->hasModel()) return;
    QSettings().setValue("prompt", prompt_->text());
    session_->generate(prompt_->text(), maxNew_->value(), true, 1.0, 0);
}

}  // namespace cs::ui
