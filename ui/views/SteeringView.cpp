#include "ui/views/SteeringView.h"

#include "sae/Sae.h"
#include "steer/SteeringJson.h"
#include "store/FeatureStore.h"
#include "ui/SteeringVectorDialog.h"
#include "ui/views/SteeringComparisonView.h"
#include "ui/views/SteeringRowDelegate.h"
#include "ui/views/SteeringRowModel.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

#include <algorithm>

namespace cs::ui {

namespace {
constexpr int kMaxFeature = 1 << 24;
QString firstLine(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }

std::vector<std::string> describedRows(const SteeringPlan& p) {
    std::vector<std::string> out;
    for (const SteeringRule& r : p.rules)
        if (r.enabled) out.push_back(describeRow(r));
    return out;
}

SteeringColumn columnOf(const QString& title, const SteeringPlan& plan, const SteeredText& output) {
    SteeringColumn c;
    c.title = title.toStdString();
    c.rows = describedRows(plan);
    if (plan.condition) c.condition = plan.condition->toString();
    c.output = output;
    return c;
}
}  // namespace

SteeringView::SteeringView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    setObjectName("steeringView");
    auto* v = new QVBoxLayout(this);
    v->setContentsMargins(4, 4, 4, 4);
    v->setSpacing(4);

    auto* bar = new QToolBar(this);
    bar->setObjectName("steeringToolBar");
    bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
    bar->addAction(tr("Add Vector..."), this, &SteeringView::chooseVector)
        ->setToolTip(tr("Steer along a vector from a file, or the difference of two prompts' activations"));
    pinAction_ = bar->addAction(tr("Pin"), this, [this] { pin(); });
    pinAction_->setObjectName("steeringPin");
    pinAction_->setToolTip(tr("Keep the current setting as a column beside the live one (up to %1 settings)")
                               .arg(SteeringComparisonView::kMaxColumns));
    bar->addSeparator();
    bar->addAction(tr("Save Preset..."), this, &SteeringView::choosePresetToSave);
    bar->addAction(tr("Load Preset..."), this, &SteeringView::choosePresetToLoad);
    bar->addAction(tr("Clear"), this, [this] { setPlan({}); })->setToolTip(tr("Remove every row and the condition"));
    bar->addSeparator();
    showInViews_ = bar->addAction(tr("Show Steered Run in Views"));
    showInViews_->setObjectName("steeringShowInViews");
    showInViews_->setCheckable(true);
    showInViews_->setToolTip(tr("Generate and analyse the session's runs with these rows applied: the token stream, "
                                "attention, logit lens and features then show the steered run"));
    v->addWidget(bar);

    auto* condition = new QHBoxLayout;
    buildConditionRow(this, condition);
    v->addLayout(condition);

    rows_ = new SteeringRowModel(this);
    table_ = new QTableView(this);
    table_->setObjectName("steeringRows");
    table_->setModel(rows_);
    table_->setItemDelegate(new SteeringRowDelegate([this] { return session_->selection().position; }, table_));
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);  // the editors are always open
    table_->setWordWrap(false);
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    {
        StrengthEditor probe;
        QComboBox probeBox;
        table_->verticalHeader()->setDefaultSectionSize(std::max(probe.sizeHint().height(), probeBox.sizeHint().height()) + 4);
    }
    QHeaderView* h = table_->horizontalHeader();
    h->setSectionResizeMode(QHeaderView::Interactive);
    h->setSectionResizeMode(SteeringRowModel::EnabledColumn, QHeaderView::ResizeToContents);
    // The editors keep their widths; the row's name gives way in a narrow dock (its tooltip has it all).
    h->setSectionResizeMode(SteeringRowModel::RowColumn, QHeaderView::Stretch);
    h->setSectionResizeMode(SteeringRowModel::ConditionalColumn, QHeaderView::ResizeToContents);
    h->setSectionResizeMode(SteeringRowModel::RemoveColumn, QHeaderView::ResizeToContents);
    const int em = fontMetrics().horizontalAdvance(QLatin1Char('M'));
    h->resizeSection(SteeringRowModel::StrengthColumn, 15 * em);
    h->resizeSection(SteeringRowModel::ModeColumn, 11 * em / 2);
    h->resizeSection(SteeringRowModel::PositionsColumn, 14 * em);
    h->setStretchLastSection(false);
    auto* remove = new QAction(tr("Remove Row"), table_);
    remove->setShortcut(QKeySequence::Delete);
    remove->setShortcutContext(Qt::WidgetWithChildrenShortcut);
    table_->addAction(remove);
    connect(remove, &QAction::triggered, this, [this] {
        if (table_->currentIndex().isValid()) removeRow(table_->currentIndex().row());
    });
    connect(table_, &QTableView::clicked, this, [this](const QModelIndex& i) {
        if (i.column() == SteeringRowModel::RemoveColumn) removeRow(i.row());
    });

    comparison_ = new SteeringComparisonView;
    comparisonScroll_ = new QScrollArea;
    comparisonScroll_->setWidget(comparison_);
    comparisonScroll_->setWidgetResizable(true);
    comparisonScroll_->setFrameShape(QFrame::NoFrame);
    splitter_ = new QSplitter(Qt::Vertical, this);
    splitter_->setObjectName("steeringSplitter");
    splitter_->addWidget(table_);
    splitter_->addWidget(comparisonScroll_);
    splitter_->setStretchFactor(0, 1);
    splitter_->setStretchFactor(1, 2);
    if (!splitter_->restoreState(QSettings().value("steering/splitter").toByteArray())) splitter_->setSizes({150, 350});
    v->addWidget(splitter_, 1);
    status_ = new QLabel(tr("Steer a feature (S in the Features dock or the browser, or a dashboard's Steer button), "
                            "then drag its slider."), this);
    status_->setObjectName("steeringStatus");
    status_->setWordWrap(true);
    v->addWidget(status_);

    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(kDebounceMs);
    connect(debounce_, &QTimer::timeout, this, &SteeringView::regenerateNow);

    connect(rows_, &QAbstractItemModel::rowsInserted, this, [this](const QModelIndex&, int first, int last) {
        openEditors(first, last);
        planChanged();
    });
    connect(rows_, &QAbstractItemModel::modelReset, this, [this] {
        openEditors(0, rows_->rowCount() - 1);
        planChanged();
    });
    connect(rows_, &QAbstractItemModel::rowsRemoved, this, &SteeringView::planChanged);
    connect(rows_, &QAbstractItemModel::dataChanged, this, &SteeringView::planChanged);
    connect(comparison_, &SteeringComparisonView::unpinRequested, this, &SteeringView::unpin);
    connect(showInViews_, &QAction::toggled, this, [this](bool on) {
        session_->setRunSteering(on ? std::optional<SteeringPlan>(plan()) : std::nullopt);
        if (session_->result().analysis) session_->run(session_->result().settings);
    });
    connect(session_, &SessionController::runFinished, this, &SteeringView::onRunFinished);
    connect(session_, &SessionController::steerFinished, this, &SteeringView::onSteerFinished);
    connect(session_, &SessionController::modelLoaded, this, [this] {
        shownFor_.reset();
        for (Pinned& p : pinned_) p.madeFor.reset();
        reloadConditionSaes();
    });
    connect(session_, &SessionController::saesChanged, this, [this] {
        // Feature rows read the attached SAEs: every column is out of date.
        shownFor_.reset();
        for (Pinned& p : pinned_) p.madeFor.reset();
        reloadConditionSaes();
    });
    reloadConditionSaes();
}

SteeringView::~SteeringView() { QSettings().setValue("steering/splitter", splitter_->saveState()); }

void SteeringView::buildConditionRow(QWidget* parent, QHBoxLayout* row) {
    when_ = new QCheckBox(tr("Only where"), parent);
    when_->setObjectName("steeringWhen");
    when_->setToolTip(tr("Rows ticked 'Cond' apply only at positions where this feature, unsteered, exceeds the "
                         "threshold"));
    whenSae_ = new QComboBox(parent);
    whenSae_->setObjectName("steeringWhenSae");
    whenSae_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    whenFeature_ = new QSpinBox(parent);
    whenFeature_->setObjectName("steeringWhenFeature");
    whenFeature_->setRange(0, kMaxFeature);
    whenFeature_->setPrefix(QStringLiteral("#"));
    whenFeature_->setKeyboardTracking(false);
    whenThreshold_ = new QDoubleSpinBox(parent);
    whenThreshold_->setObjectName("steeringWhenThreshold");
    whenThreshold_->setRange(0, 1e6);
    whenThreshold_->setDecimals(3);
    whenThreshold_->setKeyboardTracking(false);
    whenThreshold_->setToolTip(tr("Activation the condition feature must exceed"));
    row->addWidget(when_);
    row->addWidget(whenSae_);
    row->addWidget(whenFeature_);
    row->addWidget(new QLabel(tr("exceeds"), parent));
    row->addWidget(whenThreshold_);
    row->addStretch(1);
    auto sync = [this] {
        for (QWidget* w : std::initializer_list<QWidget*>{whenSae_, whenFeature_, whenThreshold_}) w->setEnabled(when_->isChecked());
    };
    connect(when_, &QCheckBox::toggled, this, [this, sync] {
        sync();
        planChanged();
    });
    connect(whenSae_, &QComboBox::currentIndexChanged, this, [this] {
        if (when_->isChecked()) planChanged();
    });
    connect(whenFeature_, &QSpinBox::valueChanged, this, [this] {
        if (when_->isChecked()) planChanged();
    });
    connect(whenThreshold_, &QDoubleSpinBox::valueChanged, this, [this] {
        if (when_->isChecked()) planChanged();
    });
    sync();
}

void SteeringView::reloadConditionSaes() {
    const QString keep = whenSae_->currentText();
    QSignalBlocker block(whenSae_);
    whenSae_->clear();
    for (const AnalysisSae& s : session_->saes()) whenSae_->addItem(QString::fromStdString(s.id));
    if (!keep.isEmpty() && whenSae_->findText(keep) < 0) whenSae_->addItem(keep);  // a preset's, not attached now
    whenSae_->setCurrentIndex(std::max(0, whenSae_->findText(keep)));
}

void SteeringView::openEditors(int first, int last) {
    for (int r = first; r <= last; ++r)
        for (int c : {SteeringRowModel::StrengthColumn, SteeringRowModel::ModeColumn, SteeringRowModel::PositionsColumn})
            table_->openPersistentEditor(rows_->index(r, c));
}

StrengthEditor* SteeringView::strengthEditor(int row) const {
    return qobject_cast<StrengthEditor*>(table_->indexWidget(rows_->index(row, SteeringRowModel::StrengthColumn)));
}

double SteeringView::unitFor(const std::string& saeId, long index) const {
    if (FeatureStore* store = session_->store()) {
        try {
            const float max = store->feature(saeId, index).maxActivation;
            if (max > 0) return max;
        } catch (const std::exception&) {
            // not indexed in this store: fall back to the current run
        }
    }
    if (const PromptAnalysis* a = session_->analysis())
        for (const SaeFeatureTrack& t : a->features)
            if (t.id == saeId) {
                const std::vector<float> s = t.series(static_cast<int>(index));
                const float max = s.empty() ? 0.f : *std::max_element(s.begin(), s.end());
                if (max > 0) return max;
            }
    return 0;  // unknown: the row counts in plain activation units
}

int SteeringView::addFeature(const QString& saeId, long index) {
    SteeringRule r;
    r.saeId = saeId.toStdString();
    r.feature = index;
    r.unit = unitFor(r.saeId, index);
    r.label = session_->featureLabel(r.saeId, index).toStdString();
    const int row = addRule(r);
    showStatus(r.unit > 0 ? tr("%1 #%2: one slider unit is its max activation, %3.").arg(saeId).arg(index).arg(r.unit, 0, 'g', 4)
                          : tr("%1 #%2 does not fire on this prompt and no feature store knows it: the slider counts "
                               "plain activation units.").arg(saeId).arg(index));
    return row;
}

int SteeringView::addRule(const SteeringRule& rule) {
    const int row = rows_->addRule(rule);
    table_->setCurrentIndex(rows_->index(row, SteeringRowModel::RowColumn));
    table_->scrollTo(rows_->index(row, 0));
    return row;
}

void SteeringView::removeRow(int row) { rows_->removeRule(row); }

SteeringPlan SteeringView::plan() const {
    SteeringPlan p;
    p.rules = rows_->rules();
    if (when_->isChecked() && !whenSae_->currentText().isEmpty())
        p.condition = SteeringCondition{whenSae_->currentText().toStdString(), whenFeature_->value(), whenThreshold_->value()};
    return p;
}

void SteeringView::setPlan(const SteeringPlan& plan) {
    settingPlan_ = true;
    rows_->setRules(plan.rules);
    when_->setChecked(plan.condition.has_value());
    if (plan.condition) {
        const QString sae = QString::fromStdString(plan.condition->saeId);
        if (!sae.isEmpty() && whenSae_->findText(sae) < 0) whenSae_->addItem(sae);
        if (!sae.isEmpty()) whenSae_->setCurrentIndex(whenSae_->findText(sae));
        whenFeature_->setValue(static_cast<int>(plan.condition->feature));
        whenThreshold_->setValue(plan.condition->threshold);
    }
    settingPlan_ = false;
    planChanged();
}

QString SteeringView::savePreset(const QString& path) const {
    try {
        saveSteeringPreset(path.toStdString(), plan());
    } catch (const std::exception& e) {
        return firstLine(e);
    }
    return {};
}

QString SteeringView::loadPreset(const QString& path) {
    try {
        setPlan(loadSteeringPreset(path.toStdString()));
    } catch (const std::exception& e) {
        return firstLine(e);
    }
    return {};
}

void SteeringView::choosePresetToSave() {
    QSettings settings;
    QString path = QFileDialog::getSaveFileName(this, tr("Save steering preset"), settings.value("steering/presetDir").toString(),
                                                tr("Steering presets (*.json)"));
    if (path.isEmpty()) return;
    if (QFileInfo(path).suffix().isEmpty()) path += ".json";
    settings.setValue("steering/presetDir", QFileInfo(path).path());
    const QString error = savePreset(path);
    if (!error.isEmpty()) QMessageBox::warning(this, tr("Circuitscope"), error);
    else showStatus(tr("saved %1").arg(path));
}

void SteeringView::choosePresetToLoad() {
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Load steering preset"), settings.value("steering/presetDir").toString(),
                                                      tr("Steering presets (*.json);;All files (*)"));
    if (path.isEmpty()) return;
    settings.setValue("steering/presetDir", QFileInfo(path).path());
    const QString error = loadPreset(path);
    if (!error.isEmpty()) QMessageBox::warning(this, tr("Circuitscope"), error);
}

void SteeringView::chooseVector() {
    if (std::optional<SteeringRule> r = SteeringVectorDialog::ask(session_, this)) addRule(*r);
}

bool SteeringView::pin() {
    if (1 + static_cast<int>(pinned_.size()) >= SteeringComparisonView::kMaxColumns) {
        showStatus(tr("At most %1 settings side by side: unpin one first (its column's close button).")
                       .arg(SteeringComparisonView::kMaxColumns));
        return false;
    }
    Pinned p;
    p.id = nextPinId_++;
    p.title = tr("Pinned %1").arg(p.id);
    p.plan = plan();
    pinned_.push_back(std::move(p));
    regenerateNow();  // its own column, computed once for this prompt
    return true;
}

void SteeringView::unpin(int column) {
    const int i = column - 1;
    if (i < 0 || i >= static_cast<int>(pinned_.size())) return;
    pinned_.erase(pinned_.begin() + i);
    showComparison();
}

void SteeringView::setShowSteeredRun(bool on) { showInViews_->setChecked(on); }
bool SteeringView::showsSteeredRun() const { return showInViews_->isChecked(); }

void SteeringView::planChanged() {
    if (settingPlan_) return;
    if (showsSteeredRun()) {
        session_->setRunSteering(plan());
        runAfterSteer_ = true;
    }
    debounce_->start();
}

void SteeringView::regenerateNow() {
    debounce_->stop();
    if (!session_->hasModel() || !session_->result().analysis) {
        showStatus(tr("Run a prompt to see it continued with and without steering."));
        return;
    }
    const RunSettings settings = session_->result().settings;
    SteerRequest req;
    req.settings = settings;
    req.columns.push_back(0);
    req.plans.push_back(plan());
    std::vector<int> busy{0};
    for (size_t i = 0; i < pinned_.size(); ++i)
        if (!pinned_[i].madeFor || *pinned_[i].madeFor != settings) {
            req.columns.push_back(pinned_[i].id);
            req.plans.push_back(pinned_[i].plan);
            busy.push_back(static_cast<int>(i) + 1);
        }
    if (shownFor_) showComparison();  // new pinned columns appear (busy) at once
    setColumnsBusy(false);
    busyColumns_ = busy;
    ticket_ = session_->steer(req);
    setColumnsBusy(true);
    if (runAfterSteer_) {
        // After the steer request on the same model thread: the comparison updates first.
        runAfterSteer_ = false;
        session_->run(settings);
    }
}

void SteeringView::setColumnsBusy(bool busy) {
    for (int c : busyColumns_) comparison_->setColumnBusy(c, busy);
    if (!busy) busyColumns_.clear();
}

void SteeringView::onRunFinished(const RunResult& r) {
    // The same prompt and settings again (the steered rerun this view asked for, a saved session's
    // rerun): every column is still current.
    if (shownFor_ && *shownFor_ == r.settings) return;
    if (rows_->rowCount() == 0 && pinned_.empty()) return;
    regenerateNow();
}

void SteeringView::onSteerFinished(const SteerOutcome& o) {
    if (o.ticket != ticket_) return;  // another caller's, or one this view has moved on from
    setColumnsBusy(false);
    if (!o.error.isEmpty()) {
        liveError_ = o.error;
        showStatus(o.error);
        if (shownFor_) showComparison();
        else comparison_->setColumnError(0, o.error);
        Q_EMIT comparisonUpdated(o.ticket);
        return;
    }
    shownFor_ = o.settings;
    promptTokens_ = o.promptTokens;
    baseline_ = o.baseline;
    for (size_t k = 0; k < o.columns.size() && k < o.outputs.size(); ++k) {
        const QString error = k < static_cast<size_t>(o.errors.size()) ? o.errors[static_cast<int>(k)] : QString();
        if (o.columns[k] == 0) {
            live_ = o.outputs[k];
            liveError_ = error;
            continue;
        }
        for (Pinned& p : pinned_)
            if (p.id == o.columns[k]) {
                p.output = o.outputs[k];
                p.error = error;
                p.madeFor = o.settings;
            }
    }
    showComparison();
    showStatus(liveError_.isEmpty() ? tr("continued in %1 ms").arg(o.seconds * 1000, 0, 'f', 0) : liveError_);
    Q_EMIT comparisonUpdated(o.ticket);
}

void SteeringView::showComparison() {
    if (!shownFor_) return;
    SteeringComparison c;
    c.prompt = shownFor_->prompt.toStdString();
    c.promptTokens = promptTokens_;
    c.baseline = baseline_;
    c.columns.push_back(columnOf(tr("Live"), plan(), live_));
    QStringList errors{liveError_};
    for (const Pinned& p : pinned_) {
        c.columns.push_back(columnOf(p.title, p.plan, p.output));
        errors << p.error;
    }
    comparison_->setComparison(c);
    for (int i = 0; i < errors.size(); ++i) comparison_->setColumnError(i, errors[i]);
}

void SteeringView::showStatus(const QString& text) { status_->setText(text); }

}  // namespace cs::ui
