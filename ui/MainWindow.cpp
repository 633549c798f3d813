#include "ui/MainWindow.h"

#include "model/Transformer.h"
#include "runtime/Threads.h"
#include "runtime/Version.h"
#include "tokenize/TokenIdPrompt.h"
#include "ui/RunDataJson.h"
#include "ui/SessionFile.h"
#include "ui/Theme.h"
#include "ui/figures/FigureExport.h"
#include "ui/IndexCorpusDialog.h"
#include "ui/IndexJob.h"
#include "ui/views/AttentionView.h"
#include "ui/views/DashboardView.h"
#include "ui/views/FeatureBrowser.h"
#include "ui/views/FeaturesView.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/SteeringComparisonView.h"
#include "ui/views/SteeringView.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/GraphView.h"
#include "ui/views/PatchingView.h"
#include "ui/views/DiffView.h"
#include "ui/views/SubgraphCanvas.h"
#include "ui/views/TokenStreamView.h"
#include "ui/views/HeatmapPlot.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QActionGroup>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>

#include <functional>

namespace cs::ui {

namespace {
constexpr int kMaxRecent = 8;
constexpr int kProgressDelayMs = 300;
constexpr int kLayoutVersion = 4;  // bump when the docks change, so an old saved layout is ignored
// The demo's first-launch store: documents the demo model writes itself (the TinyStories text
// cannot ship), indexed in the background. Sized so it finishes well within a minute on 2 cores.
constexpr long kDemoDocuments = 300;
constexpr long kDemoTokens = 40000;
constexpr int kFeatureColumnMinWidth = 1500;  // first layout: features in a column of their own from here

// Keys of per-model settings (a QSettings key may not hold a path's slashes).
QString modelKey(const QString& dir) { return QString::fromLatin1(dir.toUtf8().toBase64(QByteArray::Base64UrlEncoding)); }
}  // namespace

MainWindow::MainWindow(SessionController* session, QWidget* parent) : QMainWindow(parent), session_(session) {
    setWindowTitle(tr("Circuitscope"));
    setObjectName("mainWindow");
    QSettings settings;

    // Prompt row and generation settings.
    auto* bar = new QToolBar(tr("Prompt"), this);
    bar->setObjectName("promptBar");
    bar->setMovable(false);
    auto* row = new QWidget(bar);
    auto* rl = new QHBoxLayout(row);
    rl->setContentsMargins(4, 2, 4, 2);
    prompt_ = new QLineEdit(row);
    prompt_->setObjectName("prompt");
    prompt_->setPlaceholderText(tr("Type a prompt, or token ids as #1 #403, and press Enter"));
    prompt_->setText(settings.value("prompt", "Once upon a time").toString());
    prompt_->setClearButtonEnabled(true);
    maxNew_ = new QSpinBox(row);
    maxNew_->setObjectName("maxNewTokens");
    maxNew_->setRange(0, 4096);
    maxNew_->setValue(settings.value("maxNewTokens", 32).toInt());
    maxNew_->setPrefix(tr("new tokens: "));
    sample_ = new QCheckBox(tr("sample"), row);
    sample_->setToolTip(tr("Sample with a temperature instead of greedy decoding"));
    sample_->setChecked(!settings.value("greedy", true).toBool());
    temperature_ = new QDoubleSpinBox(row);
    temperature_->setRange(0.05, 5.0);
    temperature_->setSingleStep(0.1);
    temperature_->setValue(settings.value("temperature", 1.0).toDouble());
    temperature_->setPrefix(tr("T "));
    seed_ = new QSpinBox(row);
    seed_->setRange(0, 1 << 30);
    seed_->setValue(settings.value("seed", 0).toInt());
    seed_->setPrefix(tr("seed "));
    runButton_ = new QPushButton(tr("Run"), row);
    cancelButton_ = new QPushButton(tr("Cancel"), row);
    cancelButton_->setEnabled(false);
    rl->addWidget(prompt_, 1);
    rl->addWidget(maxNew_);
    rl->addWidget(sample_);
    rl->addWidget(temperature_);
    rl->addWidget(seed_);
    rl->addWidget(runButton_);
    rl->addWidget(cancelButton_);
    bar->addWidget(row);
    addToolBar(Qt::TopToolBarArea, bar);
    auto syncSampling = [this] {
        temperature_->setEnabled(sample_->isChecked());
        seed_->setEnabled(sample_->isChecked());
    };
    connect(sample_, &QCheckBox::toggled, this, syncSampling);
    syncSampling();

    // Views, each in a dock.
    tokens_ = new TokenStreamView(session_);
    auto* tokenScroll = new QScrollArea;
    tokenScroll->setWidget(tokens_);
    tokenScroll->setWidgetResizable(true);
    attention_ = new AttentionView(session_);
    lens_ = new LogitLensView(session_);
    auto dock = [this](const QString& title, const QString& name, QWidget* w) {
        auto* d = new QDockWidget(title, this);
        d->setObjectName(name);
        d->setWidget(w);
        d->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable | QDockWidget::DockWidgetClosable);
        return d;
    };
    tokensDock_ = dock(tr("Tokens"), "tokensDock", tokenScroll);
    attentionDock_ = dock(tr("Attention"), "attentionDock", attention_);
    lensDock_ = dock(tr("Logit lens"), "logitLensDock", lens_);
    features_ = new FeaturesView(session_);
    dashboards_ = new QTabWidget;
    dashboards_->setObjectName("dashboardTabs");
    dashboards_->setTabsClosable(true);
    dashboards_->setMovable(true);
    dashboards_->setDocumentMode(true);
    browser_ = new FeatureBrowser(session_);
    featuresDock_ = dock(tr("Features"), "featuresDock", features_);
    // An empty tab widget is a blank grey box; until a dashboard opens, say how to open one.
    auto* dashboardStack = new QStackedWidget;
    auto* dashboardHint = new QLabel(tr("Double-click a feature in the Features dock or the feature browser "
                                        "(or select it and press Enter) to open its dashboard here."));
    dashboardHint->setObjectName("dashboardHint");
    dashboardHint->setWordWrap(true);
    dashboardHint->setAlignment(Qt::AlignCenter);
    dashboardHint->setMargin(24);
    dashboardHint->setEnabled(false);  // drawn in the muted text colour
    dashboardStack->addWidget(dashboardHint);
    dashboardStack->addWidget(dashboards_);
    connect(dashboards_, &QTabWidget::currentChanged, dashboardStack,
            [this, dashboardStack](int) { dashboardStack->setCurrentIndex(dashboards_->count() > 0 ? 1 : 0); });
    dashboardsDock_ = dock(tr("Dashboards"), "dashboardsDock", dashboardStack);
    browserDock_ = dock(tr("Feature browser"), "featureBrowserDock", browser_);
    steering_ = new SteeringView(session_);
    steeringDock_ = dock(tr("Steering"), "steeringDock", steering_);
    graph_ = new GraphView(session_);
    graphDock_ = dock(tr("Attribution graph"), "graphDock", graph_);
    patching_ = new PatchingView(session_);
    patchingDock_ = dock(tr("Patching"), "patchingDock", patching_);
    diff_ = new DiffView(session_);
    diffDock_ = dock(tr("Model diff"), "diffDock", diff_);
    setDockNestingEnabled(true);
    // All in one dock area (there is no central widget): the token strip above, the two heatmaps
    // side by side below it; the features at the selected token beside them, the dashboards
    // (tabbed with the browser) below those.
    // Two columns first, then each column split: the views of the run on the left, the features
    // on the right.
    addDockWidget(Qt::BottomDockWidgetArea, tokensDock_);
    splitDockWidget(tokensDock_, featuresDock_, Qt::Horizontal);
    splitDockWidget(tokensDock_, attentionDock_, Qt::Vertical);
    splitDockWidget(attentionDock_, lensDock_, Qt::Horizontal);
    splitDockWidget(featuresDock_, dashboardsDock_, Qt::Vertical);
    tabifyDockWidget(dashboardsDock_, browserDock_);
    tabifyDockWidget(browserDock_, steeringDock_);
    tabifyDockWidget(steeringDock_, graphDock_);
    tabifyDockWidget(graphDock_, patchingDock_);
    tabifyDockWidget(patchingDock_, diffDock_);
    dashboardsDock_->raise();

    connect(features_, &FeaturesView::shadingChanged, this,
            [this](const std::vector<float>& v, float max, const QString& caption) {
                if (v.empty()) tokens_->clearShading();
                else tokens_->setShading(v, max, caption);
            });
    connect(diff_, &DiffView::shadingRequested, this,
            [this](const std::vector<float>& v, float max, const QString& caption) {
                if (v.empty()) tokens_->clearShading();
                else tokens_->setShading(v, max, caption);
            });
    connect(diff_, &DiffView::openFeature, this, [this](const QString& sae, long i) { openDashboard(sae, i); });
    connect(diff_, &DiffView::compareRequested, this, &MainWindow::chooseCompareModel);
    connect(features_, &FeaturesView::dashboardRequested, this, [this](const QString& sae, int i) { openDashboard(sae, i); });
    connect(browser_, &FeatureBrowser::openFeature, this, [this](const QString& sae, long i) { openDashboard(sae, i); });
    connect(features_, &FeaturesView::steerRequested, this, [this](const QString& sae, int i) { steerFeature(sae, i); });
    connect(browser_, &FeatureBrowser::steerFeature, this, &MainWindow::steerFeature);
    connect(dashboards_, &QTabWidget::tabCloseRequested, this, [this](int i) {
        QWidget* w = dashboards_->widget(i);
        dashboards_->removeTab(i);
        delete w;
    });
    indexJob_ = new IndexJob(this);
    connect(indexJob_, &IndexJob::finished, this, &MainWindow::onIndexFinished);

    // Status bar: model, size, threads, last run time, progress.
    modelLabel_ = new QLabel(tr("no model"), this);
    modelLabel_->setObjectName("modelLabel");
    threadsLabel_ = new QLabel(this);
    timeLabel_ = new QLabel(this);
    timeLabel_->setObjectName("runTimeLabel");
    // A fixed size, wide enough for any run's figures: a new time then repaints the label alone.
    // A label that can change size asks its parents to relayout on every setText, and a relayout
    // of the main window re-applies every dock's and toolbar's geometry through one short-lived
    // QPropertyAnimation each and repaints the window, after every run.
    timeLabel_->setFixedSize(timeLabel_->fontMetrics().horizontalAdvance(
                                 tr("last run %1 ms (generate %2 ms, analyse %3 ms)").arg(99999).arg(99999).arg(99999)),
                             timeLabel_->sizeHint().height());
    progress_ = new QProgressBar(this);
    progress_->setMaximumWidth(160);
    progress_->setVisible(false);
    // Background indexing: what, how far, and a cancel; shown only while it runs.
    indexStatus_ = new QWidget(this);
    indexStatus_->setObjectName("indexStatus");
    auto* il = new QHBoxLayout(indexStatus_);
    il->setContentsMargins(0, 0, 0, 0);
    indexLabel_ = new QLabel(indexStatus_);
    indexProgress_ = new QProgressBar(indexStatus_);
    indexProgress_->setMaximumWidth(140);
    indexProgress_->setTextVisible(false);
    auto* indexCancel = new QToolButton(indexStatus_);
    indexCancel->setObjectName("indexCancel");
    indexCancel->setText(tr("Cancel"));
    indexCancel->setToolTip(tr("Stop indexing after the batch in flight (it resumes from there next time)"));
    il->addWidget(indexLabel_);
    il->addWidget(indexProgress_);
    il->addWidget(indexCancel);
    indexStatus_->setVisible(false);
    connect(indexCancel, &QToolButton::clicked, indexJob_, &IndexJob::cancel);
    connect(indexJob_, &IndexJob::progress, this, [this](const QString& phase, qint64 done, qint64 total) {
        const QString what = QFileInfo(indexJob_->request().dbPath).fileName();
        indexLabel_->setText(phase == "generating" ? tr("%1: writing documents %2/%3").arg(what).arg(done).arg(total)
                             : phase == "indexing" ? tr("%1: indexing %2/%3 tokens").arg(what).arg(QLocale().toString(done), QLocale().toString(total))
                                                   : tr("%1: %2").arg(what, phase));
        indexProgress_->setRange(0, total > 0 ? 1000 : 0);
        indexProgress_->setValue(total > 0 ? static_cast<int>(1000 * done / total) : 0);
        indexStatus_->setVisible(phase != "done");
    });
    statusBar()->addPermanentWidget(indexStatus_);
    statusBar()->addPermanentWidget(progress_);
    statusBar()->addPermanentWidget(modelLabel_);
    statusBar()->addPermanentWidget(threadsLabel_);
    statusBar()->addPermanentWidget(timeLabel_);

    buildMenus();

    connect(prompt_, &QLineEdit::returnPressed, this, &MainWindow::runPrompt);
    connect(runButton_, &QPushButton::clicked, this, &MainWindow::runPrompt);
    connect(cancelButton_, &QPushButton::clicked, session_, &SessionController::cancel);
    connect(session_, &SessionController::modelLoaded, this, [this] {
        // More new tokens than the context holds could never be generated.
        if (const auto model = session_->model()) maxNew_->setMaximum(static_cast<int>(model->config().nCtx));
        preparePromptForModel();
        updateStatus();
        runPrompt();
        onModelLoaded();
    });
    connect(session_, &SessionController::modelLoadFailed, this, &MainWindow::forgetRecent);
    connect(session_, &SessionController::saesChanged, this, [this] {
        if (!session_->isDemoModel() && session_->hasModel())
            QSettings().setValue("saes/" + modelKey(session_->modelDir()), session_->saePaths());
        if (session_->result().analysis) runPrompt();  // features for what is on screen
    });
    connect(session_, &SessionController::runFinished, this, [this](const RunResult& r) {
        updateStatus();
        // Say in each view's title when what it shows is a steered run.
        const std::pair<QDockWidget*, QString> titles[] = {
            {tokensDock_, tr("Tokens")}, {attentionDock_, tr("Attention")}, {lensDock_, tr("Logit lens")}, {featuresDock_, tr("Features")}};
        for (const auto& [d, title] : titles) d->setWindowTitle(r.steered ? tr("%1 (steered)").arg(title) : title);
    });
    connect(session_, &SessionController::failed, this, &MainWindow::showError);
    connect(graph_, &GraphView::failed, this, &MainWindow::showError);
    // The graph dock's dashboard and subgraph pane act as their counterparts elsewhere do.
    connect(graph_, &GraphView::exportSubgraphRequested, this, [this] { chooseExport(graph_->subgraphCanvas()); });
    connect(graph_, &GraphView::openFeature, this, [this](const QString& sae, long i) { openDashboard(sae, i); });
    connect(graph_, &GraphView::steerRequested, this, &MainWindow::steerFeature);
    connect(graph_, &GraphView::indexRequested, this, &MainWindow::chooseIndexCorpus);
    connect(graph_, &GraphView::promptRequested, this, [this](const QString& text) {
        prompt_->setText(text);
        runPrompt();
    });
    connect(patching_, &PatchingView::promptRequested, this, [this](const QString& text) {
        prompt_->setText(text);
        runPrompt();
    });
    connect(session_, &SessionController::progress, this, [this](int done, int total) {
        progress_->setRange(0, total);
        progress_->setValue(done);
    });
    // The progress bar appears only for jobs that last: an indeterminate (animated) bar repaints
    // the window continuously, on the same cores the model runs on, so it is never used.
    auto* showProgress = new QTimer(this);
    showProgress->setSingleShot(true);
    showProgress->setInterval(kProgressDelayMs);
    connect(showProgress, &QTimer::timeout, this, [this] {
        if (!session_->isBusy()) return;
        cancelButton_->setEnabled(true);
        progress_->setVisible(true);
        statusBar()->showMessage(tr("working... (Esc cancels)"));
    });
    // Nothing visible changes for a run shorter than that either (the Cancel button included; Esc
    // cancels at any time): repainting the toolbar at the start and end of every keystroke's run
    // cost more than the demo model's forward pass.
    connect(session_, &SessionController::busyChanged, this, [this, showProgress](bool busy) {
        if (!busy) cancelButton_->setEnabled(false);
        if (busy) {
            progress_->setRange(0, 1);
            progress_->setValue(0);
            showProgress->start();
        } else {
            showProgress->stop();
            progress_->setVisible(false);
            if (!statusBar()->currentMessage().isEmpty()) statusBar()->clearMessage();
        }
    });

    if (settings.value("layoutVersion").toInt() == kLayoutVersion) {
        restoreGeometry(settings.value("geometry").toByteArray());
        restoreState(settings.value("windowState").toByteArray());
    } else {
        firstLayout_ = true;  // sized in showEvent, once the window has its real size
    }
    updateStatus();
}

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open Model..."), QKeySequence::Open, this, &MainWindow::chooseModel);
    recentMenu_ = file->addMenu(tr("Open &Recent"));
    refreshRecentMenu();
    // Bigger models fit, and decode about twice as fast, with 16-bit weights; the choice applies
    // to every model opened after it and reloads the open one.
    auto* precisionMenu = file->addMenu(tr("&Weight Precision"));
    precisionGroup_ = new QActionGroup(this);
    for (auto [p, label] : {std::pair{cs::WeightPrecision::Stored, tr("As &Stored (f16 as bf16)")},
                            std::pair{cs::WeightPrecision::F32, tr("&fp32")},
                            std::pair{cs::WeightPrecision::BF16, tr("&bf16 (half the memory of fp32)")}}) {
        QAction* a = precisionMenu->addAction(label);
        a->setCheckable(true);
        a->setData(QString::fromLatin1(cs::weightPrecisionName(p)));
        precisionGroup_->addAction(a);
        connect(a, &QAction::triggered, this, [this, p] {
            QSettings().setValue("weightPrecision", QString::fromLatin1(cs::weightPrecisionName(p)));
            setWeightPrecision(p, true);
        });
    }
    cs::WeightPrecision remembered = cs::WeightPrecision::Stored;
    try {
        remembered = cs::parseWeightPrecision(QSettings().value("weightPrecision", "auto").toString().toStdString());
    } catch (const std::exception&) {
        // a hand-edited settings file: keep the default
    }
    setWeightPrecision(remembered);
    file->addSeparator();
    // Model diff: a second checkpoint of the same architecture as model B (the Diff dock).
    file->addAction(tr("Compare With &Model..."), QKeySequence(tr("Ctrl+Shift+M")), this, &MainWindow::chooseCompareModel);
    file->addAction(tr("Compare With the Demo's Dog Fine-Tune"), this, [this] { compareWith(QStringLiteral("demo-dog")); });
    file->addAction(tr("Stop Comparing"), session_, &SessionController::clearCompareModel);
    file->addSeparator();
    file->addAction(tr("&Attach SAE..."), QKeySequence(tr("Ctrl+Shift+A")), this, &MainWindow::chooseSaeToAttach);
    file->addAction(tr("Detach All SAEs"), session_, &SessionController::detachSaes);
    file->addAction(tr("Open &Feature Store..."), QKeySequence(tr("Ctrl+Shift+F")), this, &MainWindow::chooseFeatureStore);
    file->addAction(tr("&Index a Corpus..."), QKeySequence(tr("Ctrl+Shift+I")), this, &MainWindow::chooseIndexCorpus);
    file->addSeparator();
    file->addAction(tr("Open &Session..."), QKeySequence(tr("Ctrl+Shift+O")), this, &MainWindow::chooseSessionToOpen);
    file->addAction(tr("&Save Session..."), QKeySequence::Save, this, &MainWindow::chooseSessionToSave);
    file->addSeparator();
    auto* exportMenu = file->addMenu(tr("&Export Figure"));
    exportMenu->addAction(tr("Active View..."), QKeySequence(tr("Ctrl+E")), this, [this] { chooseExport(activeFigure()); });
    exportMenu->addSeparator();
    exportMenu->addAction(tr("Tokens..."), this, [this] { chooseExport(tokens_); });
    exportMenu->addAction(tr("Attention..."), this, [this] { chooseExport(attention_); });
    exportMenu->addAction(tr("Logit Lens..."), this, [this] { chooseExport(lens_); });
    exportMenu->addAction(tr("Features..."), this, [this] { chooseExport(features_); });
    exportMenu->addAction(tr("Dashboard..."), this, [this] {
        if (DashboardView* d = currentDashboard()) chooseExport(d);
        else showError(tr("No dashboard is open (double-click a feature)."));
    });
    exportMenu->addAction(tr("Steering Comparison..."), this, [this] { chooseExport(steering_->comparisonView()); });
    exportMenu->addAction(tr("Attribution Graph..."), this, [this] { chooseExport(graph_->canvas()); });
    exportMenu->addAction(tr("Attribution Subgraph..."), this, [this] { chooseExport(graph_->subgraphCanvas()); });
    exportMenu->addAction(tr("Patching..."), this, [this] { chooseExport(patching_); });
    file->addAction(tr("Export &Data (JSON)..."), QKeySequence(tr("Ctrl+Shift+E")), this, &MainWindow::chooseDataExport);
    file->addAction(tr("Export Steering Comparison (JSON)..."), this, &MainWindow::chooseSteeringDataExport);
    file->addAction(tr("Export Patching (JSON)..."), patching_, &PatchingView::chooseJsonExport);
    file->addAction(tr("Export Model Diff (JSON)..."), this, [this] {
        const QString path = chooseJsonPath(tr("Export the model diff"), "diff.json");
        if (path.isEmpty()) return;
        const QString error = diff_->exportJson(path);
        if (!error.isEmpty()) showError(error);
        else statusBar()->showMessage(tr("exported %1").arg(path), 5000);
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    auto* run = menuBar()->addMenu(tr("&Run"));
    run->addAction(tr("&Run Prompt"), QKeySequence(tr("Ctrl+Return")), this, &MainWindow::runPrompt);
    auto* cancel = run->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), session_, &SessionController::cancel);
    cancel->setShortcutContext(Qt::WindowShortcut);
    run->addSeparator();
    QAction* pin = steering_->pinAction();
    pin->setShortcut(QKeySequence(tr("Ctrl+Shift+P")));
    pin->setShortcutContext(Qt::WindowShortcut);
    run->addAction(pin);
    QAction* steered = steering_->showInViewsAction();
    steered->setShortcut(QKeySequence(tr("Ctrl+Shift+R")));
    steered->setShortcutContext(Qt::WindowShortcut);
    run->addAction(steered);

    auto* nav = menuBar()->addMenu(tr("&Navigate"));
    auto step = [this](int dPos, int dLayer, int dHead) {
        const Selection& s = session_->selection();
        session_->select(std::max(0, s.position + dPos), s.layer + dLayer, s.head + dHead);
    };
    nav->addAction(tr("Next Token"), QKeySequence(tr("Alt+Right")), this, [step] { step(1, 0, 0); });
    nav->addAction(tr("Previous Token"), QKeySequence(tr("Alt+Left")), this, [step] { step(-1, 0, 0); });
    nav->addAction(tr("Next Layer"), QKeySequence(tr("Alt+Down")), this, [step] { step(0, 1, 0); });
    nav->addAction(tr("Previous Layer"), QKeySequence(tr("Alt+Up")), this, [step] { step(0, -1, 0); });
    nav->addAction(tr("Next Head"), QKeySequence(tr("Alt+PgDown")), this, [step] { step(0, 0, 1); });
    nav->addAction(tr("Previous Head"), QKeySequence(tr("Alt+PgUp")), this, [step] { step(0, 0, -1); });

    auto* view = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* d : {tokensDock_, attentionDock_, lensDock_}) view->addAction(d->toggleViewAction());
    view->addSeparator();
    const std::pair<QDockWidget*, const char*> featureDocks[] = {
        {featuresDock_, "Ctrl+Alt+F"}, {dashboardsDock_, "Ctrl+Alt+D"}, {browserDock_, "Ctrl+Alt+B"}, {steeringDock_, "Ctrl+Alt+S"}, {graphDock_, "Ctrl+Alt+G"},
        {patchingDock_, "Ctrl+Alt+P"}, {diffDock_, "Ctrl+Alt+M"}};
    for (const auto& [d, key] : featureDocks) {
        QAction* a = d->toggleViewAction();
        a->setShortcut(QKeySequence(tr(key)));
        view->addAction(a);
    }
    auto* closeTab = view->addAction(tr("Close Dashboard"), QKeySequence(tr("Ctrl+W")), this, [this] {
        if (dashboards_->count() > 0) Q_EMIT dashboards_->tabCloseRequested(dashboards_->currentIndex());
    });
    closeTab->setShortcutContext(Qt::WindowShortcut);
    view->addSeparator();
    auto* themes = new QActionGroup(this);
    auto* light = view->addAction(tr("&Light Theme"), this, [this] { setThemeKind(0); });
    auto* dark = view->addAction(tr("&Dark Theme"), this, [this] { setThemeKind(1); });
    for (QAction* a : {light, dark}) {
        a->setCheckable(true);
        themes->addAction(a);
    }
    (currentTheme() == ThemeKind::Dark ? dark : light)->setChecked(true);
    view->addAction(tr("Toggle Theme"), QKeySequence(tr("Ctrl+Shift+T")), this, [this, light, dark] {
        const bool toDark = currentTheme() == ThemeKind::Light;
        setThemeKind(toDark ? 1 : 0);
        (toDark ? dark : light)->setChecked(true);
    });

    auto* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Keyboard Shortcuts"), QKeySequence(QKeySequence::HelpContents), this, [this] {
        auto* box = new QMessageBox(QMessageBox::NoIcon, tr("Keyboard shortcuts"), shortcutsText(), QMessageBox::Ok, this);
        box->setTextFormat(Qt::RichText);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    });
    help->addAction(tr("&About Circuitscope"), this, [this] { QMessageBox::about(this, tr("About Circuitscope"), aboutText()); });
}

QString MainWindow::aboutText() const {
    const QString report = QString::fromStdString(cs::versionReport({{"Qt", qVersion()}})).trimmed();
    QStringList lines = report.split('\n');
    const QString title = lines.takeFirst();
    return tr("<b>%1</b><p>Mechanistic interpretability of language models on your own machine: features, "
              "dashboards, steering, attribution graphs, patching and model diffs.</p>"
              "<p>Built with %2.</p><p>Documentation: README.md and docs/ in the source tree; "
              "<tt>circuitscope --help</tt> and <tt>man circuitscope</tt> for the command line.</p>")
        .arg(title.toHtmlEscaped(), lines.join(", ").toHtmlEscaped());
}

QString MainWindow::shortcutsText() const {
    QString rows;
    for (QAction* menu : menuBar()->actions()) {
        if (!menu->menu()) continue;
        std::function<void(QMenu*, const QString&)> walk = [&](QMenu* m, const QString& path) {
            for (QAction* a : m->actions()) {
                if (a->menu()) walk(a->menu(), path + " > " + a->menu()->title().remove('&'));
                else if (!a->shortcut().isEmpty())
                    rows += QStringLiteral("<tr><td><tt>%1</tt></td><td>%2</td></tr>")
                                .arg(a->shortcut().toString(QKeySequence::NativeText).toHtmlEscaped(),
                                     (path + " > " + a->text().remove('&')).toHtmlEscaped());
            }
        };
        walk(menu->menu(), menu->menu()->title().remove('&'));
    }
    return QStringLiteral("<table cellspacing=\"4\">%1</table>").arg(rows);
}

RunSettings MainWindow::currentSettings() const {
    RunSettings s;
    s.prompt = prompt_->text();
    s.maxNewTokens = maxNew_->value();
    s.greedy = !sample_->isChecked();
    s.temperature = temperature_->value();
    s.seed = static_cast<quint64>(seed_->value());
    return s;
}

void MainWindow::applySettings(const RunSettings& s) {
    prompt_->setText(s.prompt);
    maxNew_->setValue(s.maxNewTokens);
    sample_->setChecked(!s.greedy);
    temperature_->setValue(s.temperature);
    seed_->setValue(static_cast<int>(s.seed));
}

void MainWindow::setWeightPrecision(cs::WeightPrecision p, bool reload) {
    const bool changed = session_->weightPrecision() != p;
    session_->setWeightPrecision(p);
    for (QAction* a : precisionGroup_->actions())
        a->setChecked(a->data().toString() == QString::fromLatin1(cs::weightPrecisionName(p)));
    if (reload && changed && session_->hasModel()) openModel(session_->modelDir());
}

void MainWindow::openModel(const QString& dir) {
    // Remembered (last model, Open Recent) once it has loaded: a folder that fails to load must
    // not come back at the next launch or sit in the menu.
    modelLabel_->setText(tr("loading %1...").arg(QFileInfo(dir).fileName()));
    session_->loadModel(dir);
}

void MainWindow::runPrompt() {
    if (!session_->hasModel()) return;
    const RunSettings s = currentSettings();
    if (s.prompt.isEmpty()) {  // nothing to analyse: a run would show the BOS token alone
        statusBar()->showMessage(tr("Type a prompt to run."), 5000);
        prompt_->setFocus();
        return;
    }
    QSettings settings;
    settings.setValue("prompt", s.prompt);
    settings.setValue("maxNewTokens", s.maxNewTokens);
    settings.setValue("greedy", s.greedy);
    settings.setValue("temperature", s.temperature);
    settings.setValue("seed", static_cast<int>(s.seed));
    session_->run(s);
}

void MainWindow::preparePromptForModel() {
    const bool idsOnly = session_->takesOnlyTokenIds();
    prompt_->setPlaceholderText(idsOnly ? tr("This model has no tokenizer: type token ids, e.g. #1 #403 #17")
                                        : tr("Type a prompt, or token ids as #1 #403, and press Enter"));
    if (!idsOnly) return;
    bool alreadyIds = false;
    try {
        alreadyIds = cs::parseTokenIdPrompt(prompt_->text().toStdString()).has_value();
    } catch (const std::exception&) {  // a number too large: the run says so
        alreadyIds = true;
    }
    if (alreadyIds) return;
    // Text cannot run here: start from the model's BOS so the first run shows something.
    const int bos = session_->model()->config().bosTokenId;
    prompt_->setText(QStringLiteral("#%1").arg(bos >= 0 ? bos : 0));
    statusBar()->showMessage(tr("This model has no tokenizer: the prompt takes token ids (#1 #403 ...)."), 10000);
}

void MainWindow::updateStatus() {
    modelLabel_->setText(session_->hasModel() ? session_->modelSummary() : tr("no model"));
    threadsLabel_->setText(tr("%1 threads").arg(cs::computeThreads()));
    const RunResult& r = session_->result();
    if (r.analysis)
        timeLabel_->setText(tr("last run %1 ms (generate %2 ms, analyse %3 ms)")
                                .arg((r.generateSeconds + r.analysisSeconds) * 1000, 0, 'f', 0)
                                .arg(r.generateSeconds * 1000, 0, 'f', 0)
                                .arg(r.analysisSeconds * 1000, 0, 'f', 0) +
                            (r.contextStop > 0 ? tr("; stopped at the model's context of %1 tokens").arg(r.contextStop) : QString()));
    else
        timeLabel_->clear();
    setWindowTitle(session_->hasModel() ? tr("Circuitscope - %1").arg(session_->modelName()) : tr("Circuitscope"));
}

void MainWindow::showError(const QString& message) {
    // Window-modal, not application-modal: the rest of the app keeps working behind it.
    auto* box = new QMessageBox(QMessageBox::Warning, tr("Circuitscope"), message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
    updateStatus();
}

void MainWindow::chooseModel() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a Hugging Face model directory"),
                                                          QSettings().value("lastModel").toString());
    if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::forgetRecent(const QString& dir) {
    QSettings settings;
    QStringList recent = settings.value("recentModels").toStringList();
    if (recent.removeAll(dir) == 0) return;
    settings.setValue("recentModels", recent);
    refreshRecentMenu();
}

void MainWindow::rememberRecent(const QString& dir) {
    QSettings settings;
    QStringList recent = settings.value("recentModels").toStringList();
    recent.removeAll(dir);
    recent.prepend(dir);
    while (recent.size() > kMaxRecent) recent.removeLast();
    settings.setValue("recentModels", recent);
    refreshRecentMenu();
}

void MainWindow::refreshRecentMenu() {
    if (!recentMenu_) return;
    recentMenu_->clear();
    const QStringList recent = QSettings().value("recentModels").toStringList();
    for (const QString& dir : recent) recentMenu_->addAction(dir, this, [this, dir] { openModel(dir); });
    recentMenu_->setEnabled(!recent.isEmpty());
}

void MainWindow::setThemeKind(int kind) {
    const ThemeKind k = kind == 1 ? ThemeKind::Dark : ThemeKind::Light;
    applyTheme(k);
    QSettings().setValue("theme", themeName(k));
    // Views paint from the theme's colours: rebuild what they cached.
    attention_->plot()->applyColors(viewColors());
    lens_->plot()->applyColors(viewColors());
    attention_->refreshColors();
    lens_->refreshColors();
    patching_->refreshColors();
    for (int i = 0; i < dashboards_->count(); ++i)
        if (auto* d = qobject_cast<DashboardView*>(dashboards_->widget(i))) d->refreshColors();
    update();
}

FigureSource* MainWindow::activeFigure() const {
    for (QWidget* w = QApplication::focusWidget(); w; w = w->parentWidget()) {
        if (w == attentionDock_) return attention_;
        if (w == lensDock_) return lens_;
        if (w == tokensDock_) return tokens_;
        if (w == featuresDock_) return features_;
        if (w == dashboardsDock_ && currentDashboard()) return currentDashboard();
        if (w == steeringDock_) return steering_->comparisonView();
        if (w == graph_->subgraphCanvas()) return graph_->subgraphCanvas();
        if (w == graphDock_) return graph_->canvas();
        if (w == patchingDock_) return patching_;
    }
    return attention_;
}

QString MainWindow::exportView(FigureSource* view, const QString& path) {
    const QString error = exportFigure(*view, path);
    if (error.isEmpty()) statusBar()->showMessage(tr("exported %1").arg(path), 5000);
    return error;
}

void MainWindow::chooseExport(FigureSource* view) {
    QSettings settings;
    const QString dir = settings.value("exportDir", QDir::homePath()).toString();
    QString selected = settings.value("exportFilter", "SVG (*.svg)").toString();
    const QString ext = selected.contains("png") ? "png" : selected.contains("pdf") ? "pdf" : "svg";
    const QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(view->figureName()),
                                                      dir + "/" + view->figureName() + "." + ext,
                                                      tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"), &selected);
    if (path.isEmpty()) return;
    settings.setValue("exportDir", QFileInfo(path).path());
    settings.setValue("exportFilter", selected);
    const QString error = exportView(view, path);
    if (!error.isEmpty()) showError(error);
}

QString MainWindow::exportData(const QString& path) {
    if (!session_->analysis()) return tr("%1: nothing to export yet (run a prompt first)").arg(path);
    const RunDataSource source = runDataSource(*session_);
    statusBar()->showMessage(tr("exporting %1 ...").arg(path));
    session_->runOnWorker(this, [this, source, path](const Transformer&, const Tokenizer&) -> std::function<void()> {
        QString error;
        try {
            // Byte-level tokens may be partial UTF-8: replaced, not thrown on.
            const std::string text =
                runDataJson(source, "all").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            QSaveFile f(path);
            if (!f.open(QIODevice::WriteOnly)) error = tr("%1: cannot write (%2)").arg(path, f.errorString());
            else {
                f.write(text.data(), static_cast<qint64>(text.size()));
                if (!f.commit()) error = tr("%1: cannot write (%2)").arg(path, f.errorString());
            }
        } catch (const std::exception& e) {
            error = tr("%1: %2").arg(path, QString::fromUtf8(e.what()));
        }
        return [this, path, error] {
            if (error.isEmpty()) statusBar()->showMessage(tr("exported %1").arg(path), 5000);
            else {
                statusBar()->clearMessage();
                showError(error);
            }
            Q_EMIT dataExported(path, error);
        };
    });
    return QString();
}

QString MainWindow::exportSteeringData(const QString& path) {
    const SteeringComparisonView* view = steering_->comparisonView();
    if (view->comparison().columns.empty())
        return tr("%1: no steering comparison yet (steer a feature and move its slider)").arg(path);
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return tr("%1: cannot write (%2)").arg(path, f.errorString());
    const std::string text = view->toJson().dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
    f.write(text.data(), static_cast<qint64>(text.size()));
    return f.commit() ? QString() : tr("%1: cannot write (%2)").arg(path, f.errorString());
}

void MainWindow::chooseSteeringDataExport() {
    const QString path = chooseJsonPath(tr("Export the steering comparison"), "steering.json");
    if (path.isEmpty()) return;
    const QString error = exportSteeringData(path);
    if (!error.isEmpty()) showError(error);
    else statusBar()->showMessage(tr("exported %1").arg(path), 5000);
}

void MainWindow::chooseDataExport() {
    const QString path = chooseJsonPath(tr("Export the run's data"), "run.json");
    if (path.isEmpty()) return;
    const QString error = exportData(path);
    if (!error.isEmpty()) showError(error);
}

void MainWindow::chooseCompareModel() {
    QSettings settings;
    const QString start = settings.value("compareModelDir", settings.value("lastModel").toString()).toString();
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Compare with model (a checkpoint of the same architecture)"), start);
    if (dir.isEmpty()) return;
    settings.setValue("compareModelDir", dir);
    compareWith(dir);
}

void MainWindow::compareWith(const QString& dir) {
    statusBar()->showMessage(tr("loading %1 to compare with...").arg(QFileInfo(dir).fileName()), 5000);
    session_->loadCompareModel(dir);
    diffDock_->show();
    diffDock_->raise();
}

QString MainWindow::chooseJsonPath(const QString& title, const QString& defaultName) {
    QSettings settings;
    const QString path = QFileDialog::getSaveFileName(this, title,
                                                      settings.value("exportDir", QDir::homePath()).toString() + "/" + defaultName,
                                                      tr("JSON (*.json)"));
    if (!path.isEmpty()) settings.setValue("exportDir", QFileInfo(path).path());
    return path;
}

QString MainWindow::saveSession(const QString& path) {
    SessionState s;
    s.modelDir = session_->modelDir();
    s.settings = session_->result().analysis ? session_->result().settings : currentSettings();
    s.selection = session_->selection();
    s.theme = themeName(currentTheme());
    s.windowState = saveState(kLayoutVersion);
    s.steering = steering_->plan();
    return saveSessionFile(s, path);
}

QString MainWindow::openSession(const QString& path) {
    SessionState s;
    QString error = loadSessionFile(path, s);
    if (!error.isEmpty()) return error;
    applySettings(s.settings);
    steering_->setPlan(s.steering);
    if (!s.windowState.isEmpty()) restoreState(s.windowState, kLayoutVersion);
    if (themeFromName(s.theme) != currentTheme()) setThemeKind(themeFromName(s.theme) == ThemeKind::Dark ? 1 : 0);
    session_->restoreSelectionAfterNextRun(s.selection);
    if (s.modelDir == session_->modelDir() && session_->hasModel()) runPrompt();
    else openModel(s.modelDir);  // runs the prompt once loaded
    return {};
}

void MainWindow::chooseSessionToOpen() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open a session"), QSettings().value("sessionDir").toString(),
                                                      tr("Circuitscope sessions (*.csession);;All files (*)"));
    if (path.isEmpty()) return;
    QSettings().setValue("sessionDir", QFileInfo(path).path());
    const QString error = openSession(path);
    if (!error.isEmpty()) showError(error);
}

void MainWindow::chooseSessionToSave() {
    QString path = QFileDialog::getSaveFileName(this, tr("Save the session"), QSettings().value("sessionDir").toString(),
                                                tr("Circuitscope sessions (*.csession)"));
    if (path.isEmpty()) return;
    if (QFileInfo(path).suffix().isEmpty()) path += ".csession";
    QSettings().setValue("sessionDir", QFileInfo(path).path());
    const QString error = saveSession(path);
    if (!error.isEmpty()) showError(error);
    else statusBar()->showMessage(tr("saved %1").arg(path), 5000);
}

void MainWindow::showEvent(QShowEvent* e) {
    QMainWindow::showEvent(e);
    if (!firstLayout_) return;
    firstLayout_ = false;
    // First launch: a slim token strip; the heatmaps get the room. A window too narrow for a
    // column of features beside attention and lens (the attention heatmap would shrink to a strip)
    // gets the feature docks as tabs beside the logit lens, the Features tab in front.
    QTimer::singleShot(0, this, [this] {
        if (width() < kFeatureColumnMinWidth) {
            tabifyDockWidget(lensDock_, featuresDock_);
            tabifyDockWidget(featuresDock_, dashboardsDock_);
            tabifyDockWidget(dashboardsDock_, browserDock_);
            tabifyDockWidget(browserDock_, steeringDock_);
            tabifyDockWidget(steeringDock_, graphDock_);
            tabifyDockWidget(graphDock_, patchingDock_);
            tabifyDockWidget(patchingDock_, diffDock_);
            featuresDock_->raise();
        } else {
            const int column = std::max(460, width() * 9 / 25);
            resizeDocks({tokensDock_, featuresDock_}, {width() - column, column}, Qt::Horizontal);
            resizeDocks({featuresDock_, dashboardsDock_}, {height() * 2 / 5, height() * 3 / 5}, Qt::Vertical);
        }
        resizeDocks({tokensDock_, attentionDock_}, {120, std::max(300, height() - 220)}, Qt::Vertical);
    });
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings settings;
    settings.setValue("layoutVersion", kLayoutVersion);
    settings.setValue("geometry", saveGeometry());
    settings.setValue("windowState", saveState());
    QMainWindow::closeEvent(e);
}

}  // namespace cs::ui

namespace cs::ui {

QString MainWindow::demoStorePath() {
    return QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation) + "/demo-features.db";
}

void MainWindow::steerFeature(const QString& saeId, long index) {
    steering_->addFeature(saeId, index);
    steeringDock_->show();
    steeringDock_->raise();
}

DashboardView* MainWindow::currentDashboard() const { return qobject_cast<DashboardView*>(dashboards_->currentWidget()); }

DashboardView* MainWindow::openDashboard(const QString& saeId, long index) {
    for (int i = 0; i < dashboards_->count(); ++i)
        if (auto* d = qobject_cast<DashboardView*>(dashboards_->widget(i)); d && d->saeId() == saeId && d->featureIndex() == index) {
            dashboards_->setCurrentIndex(i);
            dashboardsDock_->show();
            dashboardsDock_->raise();
            return d;
        }
    auto* d = new DashboardView(session_, saeId, index);
    connect(d, &DashboardView::openFeature, this, [this](const QString& sae, long i) { openDashboard(sae, i); });
    connect(d, &DashboardView::indexRequested, this, &MainWindow::chooseIndexCorpus);
    connect(d, &DashboardView::steerRequested, this, &MainWindow::steerFeature);
    connect(d, &DashboardView::promptRequested, this, [this](const QString& text) {
        prompt_->setText(text);
        runPrompt();
    });
    dashboards_->setCurrentIndex(dashboards_->addTab(d, d->title()));
    dashboardsDock_->show();
    dashboardsDock_->raise();
    return d;
}

QString MainWindow::openFeatureStore(const QString& path) {
    const QString error = session_->openStore(path);
    if (!error.isEmpty()) return error;
    if (session_->hasModel()) QSettings().setValue("store/" + modelKey(session_->modelDir()), path);
    statusBar()->showMessage(tr("feature store %1").arg(path), 5000);
    return {};
}

void MainWindow::chooseFeatureStore() {
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open a feature store"), settings.value("storeDir").toString(),
                                                      tr("Feature stores (*.db);;All files (*)"));
    if (path.isEmpty()) return;
    settings.setValue("storeDir", QFileInfo(path).path());
    const QString error = openFeatureStore(path);
    if (!error.isEmpty()) showError(error);
}

void MainWindow::chooseSaeToAttach() {
    if (!session_->hasModel()) return showError(tr("Open a model first (File > Open Model)."));
    QSettings settings;
    // A folder (SAELens, Llama Scope) or a file (Gemma Scope's params.npz): the folder dialog
    // first, as most SAEs are folders.
    QString path = QFileDialog::getExistingDirectory(this, tr("Attach an SAE or transcoder folder (cancel to pick a params.npz)"),
                                                     settings.value("saeDir").toString());
    if (path.isEmpty())
        path = QFileDialog::getOpenFileName(this, tr("Attach an SAE file"), settings.value("saeDir").toString(),
                                            tr("SAE files (*.npz *.safetensors);;All files (*)"));
    if (path.isEmpty()) return;
    settings.setValue("saeDir", QFileInfo(path).path());
    statusBar()->showMessage(tr("attaching %1...").arg(QFileInfo(path).fileName()), 3000);
    session_->attachSaes({path});
}

void MainWindow::chooseIndexCorpus() {
    if (!session_->hasModel()) return showError(tr("Open a model first (File > Open Model)."));
    if (session_->saes().empty()) return showError(tr("Attach an SAE first (File > Attach SAE...): indexing records its features."));
    if (indexJob_->isRunning()) return showError(tr("An indexing is already running (cancel it in the status bar first)."));
    QStringList ids;
    for (const AnalysisSae& s : session_->saes()) ids << QString::fromStdString(s.id);
    IndexCorpusDialog dialog(session_->modelName(), ids, this);
    if (dialog.exec() != QDialog::Accepted) return;
    IndexRequest r;
    r.dbPath = dialog.dbPath();
    r.modelDir = session_->isDemoModel() ? QStringLiteral("demo") : session_->modelDir();
    r.saeIds = ids;
    r.saePaths = session_->saePaths();
    r.corpusPath = dialog.corpusPath();
    r.maxTokens = dialog.maxTokens();
    startIndexing(r);
}

bool MainWindow::startIndexing(const IndexRequest& r) {
    if (!indexJob_->start(r)) return false;
    indexLabel_->setText(tr("%1: starting...").arg(QFileInfo(r.dbPath).fileName()));
    indexProgress_->setRange(0, 0);
    indexStatus_->setVisible(true);
    return true;
}

void MainWindow::onModelLoaded() {
    QSettings settings;
    settings.setValue("lastModel", session_->modelDir());
    rememberRecent(session_->modelDir());
    // The store last opened with this model comes back with it (for the demo, else its own).
    const QString store = settings.value("store/" + modelKey(session_->modelDir())).toString();
    if (!store.isEmpty() && QFileInfo::exists(store)) {
        const QString error = session_->openStore(store);
        if (!error.isEmpty()) statusBar()->showMessage(error, 8000);
    } else if (session_->isDemoModel() && QFileInfo::exists(demoStorePath())) {
        session_->openStore(demoStorePath());
    } else {
        session_->closeStore();
    }
    if (session_->isDemoModel()) {
        indexDemoIfNeeded();
        return;
    }
    const QStringList saes = settings.value("saes/" + modelKey(session_->modelDir())).toStringList();
    if (!saes.isEmpty()) session_->attachSaes(saes, true);
}

void MainWindow::indexDemoIfNeeded() {
    const QString path = demoStorePath();
    if (!QSettings().value("autoIndexDemo", true).toBool() || session_->saes().empty()) return;
    // Called every time the demo opens: a complete store returns at once, a partial one resumes.
    IndexRequest r;
    r.dbPath = path;
    r.modelDir = QStringLiteral("demo");
    for (const AnalysisSae& s : session_->saes()) r.saeIds << QString::fromStdString(s.id);
    r.saePaths = session_->saePaths();
    r.generateDocuments = kDemoDocuments;
    r.maxTokens = kDemoTokens;
    if (indexJob_->isRunning()) return;
    indexJob_->start(r);  // the status bar shows it from its first progress report on
}

void MainWindow::onIndexFinished(const QString& dbPath, const QString& error, bool cancelled, bool resumed) {
    Q_UNUSED(resumed);
    indexStatus_->setVisible(false);
    if (!error.isEmpty()) return showError(error);
    if (cancelled) {
        statusBar()->showMessage(tr("indexing stopped: %1 resumes when indexed again").arg(QFileInfo(dbPath).fileName()), 8000);
        return;
    }
    // Open (or reopen, so every view reloads) the finished store, unless another one is open now
    // (only replace the demo's own or nothing).
    if (session_->store() && session_->storePath() != dbPath && dbPath == demoStorePath()) return;
    const QString openError = openFeatureStore(dbPath);
    if (!openError.isEmpty()) showError(openError);
    else statusBar()->showMessage(tr("feature store ready: %1").arg(dbPath), 8000);
}

}  // namespace cs::ui
