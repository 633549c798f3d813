#include "ui/views/PatchingView.h"

#include "model/Transformer.h"
#include "patching/ActivationPatching.h"
#include "patching/PatchJson.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"
#include "ui/Theme.h"
#include "ui/views/PatchingPlot.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSettings>
#include <QToolTip>
#include <QVBoxLayout>

namespace cs::ui {

namespace {
QString firstLineOf(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }

std::vector<std::string> tokenTexts(const Tokenizer& tok, const std::vector<int>& ids) {
    std::vector<std::string> out;
    out.reserve(ids.size());
    for (int id : ids) out.push_back(tok.tokenText(id));
    return out;
}
}  // namespace

PatchingView::PatchingView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    setObjectName("patchingView");
    // An example that works on the demo model and on GPT-2 alike: which activations carry "girl"
    // (not "boy") to the pronoun predicted at the end.
    clean_ = new QLineEdit(QStringLiteral("Once upon a time, there was a little girl. One day,"));
    corrupted_ = new QLineEdit(QStringLiteral("Once upon a time, there was a little boy. One day,"));
    answer_ = new QLineEdit(QStringLiteral(" she"));
    wrong_ = new QLineEdit(QStringLiteral(" he"));
    clean_->setObjectName("patchClean");
    corrupted_->setObjectName("patchCorrupted");
    answer_->setToolTip(tr("The token the clean prompt should predict next: text that is one token, or #ID"));
    wrong_->setToolTip(tr("The token the corrupted prompt predicts instead (logit diff = answer - wrong)"));
    site_ = new QComboBox;
    const std::pair<PatchSite, QString> sites[] = {
        {PatchSite::Resid, tr("residual stream")},  {PatchSite::AttnOut, tr("attention output")},
        {PatchSite::MlpOut, tr("MLP output")},      {PatchSite::Heads, tr("heads")},
        {PatchSite::HeadsByPosition, tr("heads by position")}, {PatchSite::Features, tr("SAE features")}};
    for (const auto& [s, title] : sites) site_->addItem(title, QString::fromUtf8(patchSiteName(s)));
    sae_ = new QComboBox;
    sae_->setToolTip(tr("The attached SAE whose features are patched"));
    direction_ = new QComboBox;
    direction_->addItem(tr("denoise"), QStringLiteral("denoise"));
    direction_->addItem(tr("noise"), QStringLiteral("noise"));
    direction_->setItemData(0, tr("Clean activations patched into the corrupted run"), Qt::ToolTipRole);
    direction_->setItemData(1, tr("Corrupted activations patched into the clean run"), Qt::ToolTipRole);
    direction_->setToolTip(tr("denoise: clean activations into the corrupted run; noise: corrupted into the clean run"));
    metric_ = new QComboBox;
    metric_->addItem(tr("logit diff"), QStringLiteral("logit-diff"));
    metric_->addItem(tr("P(answer)"), QStringLiteral("prob"));
    metric_->addItem(tr("KL"), QStringLiteral("kl"));
    metric_->setToolTip(tr("Scored at the last position; normalised so the clean run is 1 and the corrupted run 0"));
    run_ = new QPushButton(tr("Run"));
    run_->setObjectName("patchRun");
    cancel_ = new QPushButton(tr("Cancel"));
    cancel_->setEnabled(false);
    progress_ = new QProgressBar;
    progress_->setVisible(false);
    progress_->setMaximumWidth(120);
    status_ = new QLabel(tr("Two prompts of the same token length; each cell patches one activation from one run into the other."));
    status_->setObjectName("patchStatus");
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    plot_ = new PatchingPlot;

    auto* form = new QGridLayout;
    // Narrow enough to share a column with the feature docks (tabbed with them): a wide minimum
    // would squeeze the attention and lens heatmaps beside it.
    form->addWidget(new QLabel(tr("Clean")), 0, 0);
    form->addWidget(clean_, 0, 1);
    form->addWidget(new QLabel(tr("Answer")), 0, 2);
    form->addWidget(answer_, 0, 3);
    form->addWidget(run_, 0, 4);
    form->addWidget(new QLabel(tr("Corrupted")), 1, 0);
    form->addWidget(corrupted_, 1, 1);
    form->addWidget(new QLabel(tr("Wrong")), 1, 2);
    form->addWidget(wrong_, 1, 3);
    form->addWidget(cancel_, 1, 4);
    form->setColumnStretch(1, 1);
    answer_->setMaximumWidth(90);
    wrong_->setMaximumWidth(90);
    auto* controls = new QHBoxLayout;
    for (QComboBox* box : {site_, sae_, direction_, metric_}) {
        box->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        box->setMinimumContentsLength(6);
    }
    controls->addWidget(site_, 2);
    controls->addWidget(sae_, 1);
    controls->addWidget(direction_, 1);
    controls->addWidget(metric_, 1);
    controls->addWidget(progress_, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addLayout(form);
    layout->addLayout(controls);
    layout->addWidget(status_);
    layout->addWidget(plot_, 1);

    connect(run_, &QPushButton::clicked, this, &PatchingView::runPatching);
    connect(cancel_, &QPushButton::clicked, this, &PatchingView::cancelPatching);
    for (QLineEdit* e : {clean_, corrupted_, answer_, wrong_}) connect(e, &QLineEdit::returnPressed, this, &PatchingView::runPatching);
    connect(site_, &QComboBox::currentIndexChanged, this, &PatchingView::siteChanged);
    connect(session_, &SessionController::saesChanged, this, &PatchingView::reloadSaes);
    connect(session_, &SessionController::modelLoaded, this, &PatchingView::reloadSaes);
    connect(plot_, &PatchingPlot::cellHovered, this, [this](int col, int row, const QPoint& global) {
        QToolTip::showText(global, plot_->hoverText(col, row), plot_);
    });
    connect(plot_, &PatchingPlot::cellClicked, this, &PatchingView::openCell);
    reloadSaes();
}

const PatchGrid* PatchingView::grid() const { return plot_->grid(); }

void PatchingView::setPrompts(const QString& clean, const QString& corrupted, const QString& answer, const QString& wrong) {
    clean_->setText(clean);
    corrupted_->setText(corrupted);
    answer_->setText(answer);
    wrong_->setText(wrong);
}

void PatchingView::reloadSaes() {
    const QString current = sae_->currentData().toString();
    sae_->clear();
    for (const AnalysisSae& s : session_->saes()) sae_->addItem(QString::fromStdString(s.id), QString::fromStdString(s.id));
    const int keep = sae_->findData(current);
    if (keep >= 0) sae_->setCurrentIndex(keep);
    siteChanged();
}

void PatchingView::siteChanged() {
    const bool features = site_->currentData().toString() == QLatin1String(patchSiteName(PatchSite::Features));
    sae_->setVisible(features);
    sae_->setEnabled(sae_->count() > 0);
}

void PatchingView::setRunning(bool running) {
    run_->setEnabled(!running);
    cancel_->setEnabled(running);
    progress_->setVisible(running);
    if (running) progress_->setRange(0, 0);
}

void PatchingView::showError(const QString& message) {
    status_->setText(message);
    status_->setStyleSheet(QStringLiteral("color: #c0392b;"));
    Q_EMIT patchingFailed(message);
}

void PatchingView::cancelPatching() {
    if (cancelFlag_) cancelFlag_->store(true);
}

void PatchingView::runPatching() {
    if (cancelFlag_) return;  // one run at a time; Cancel stops it
    if (!session_->hasModel()) return showError(tr("Open a model first (File > Open Model)."));
    PatchRequest request;
    try {
        request.site = parsePatchSite(site_->currentData().toString().toStdString());
        request.direction = parsePatchDirection(direction_->currentData().toString().toStdString());
        request.metric = parsePatchMetric(metric_->currentData().toString().toStdString());
    } catch (const std::exception& e) {
        return showError(firstLineOf(e));
    }
    // The tokens are checked here, on the GUI thread, so a typo is reported before any model run.
    QString error;
    if (request.metric != PatchMetric::KL || !answer_->text().isEmpty()) {
        request.answerId = session_->tokenIdFor(answer_->text(), &error);
        if (request.answerId < 0) return showError(tr("Answer: %1").arg(error));
    }
    if (request.metric == PatchMetric::LogitDiff) {
        request.wrongId = session_->tokenIdFor(wrong_->text(), &error);
        if (request.wrongId < 0) return showError(tr("Wrong: %1").arg(error));
    }
    if (request.site == PatchSite::Features) {
        const std::string id = sae_->currentData().toString().toStdString();
        for (const AnalysisSae& s : session_->saes())
            if (s.id == id) {
                request.sae = s.sae;
                request.saeId = s.id;
            }
        if (!request.sae) return showError(tr("No SAE attached: patching features needs one (File > Attach SAE)."));
    }
    const std::string clean = clean_->text().toStdString(), corrupted = corrupted_->text().toStdString();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    cancelFlag_ = cancel;
    setRunning(true);
    status_->setStyleSheet(QString());
    status_->setText(tr("patching ..."));
    QPointer<PatchingView> self(this);
    const QString cleanPrompt = clean_->text();
    session_->runOnWorker(this, [self, cancel, request, clean, corrupted, cleanPrompt](const Transformer& model,
                                                                      const Tokenizer& tok) -> std::function<void()> {
        // Errors come back to this view (not only the session's failed()), so the dock says what
        // went wrong beside the fields and its buttons come back.
        auto grid = std::make_shared<PatchGrid>();
        std::vector<std::string> cleanTexts, corruptedTexts;
        QString error;
        try {
            PatchRequest r = request;
            r.cleanIds = promptTokenIds(tok, clean, static_cast<int>(model.config().vocabSize));
            r.corruptedIds = promptTokenIds(tok, corrupted, static_cast<int>(model.config().vocabSize));
            cleanTexts = tokenTexts(tok, r.cleanIds);
            corruptedTexts = tokenTexts(tok, r.corruptedIds);
            r.positionLabels = cleanTexts;
            if (r.cleanIds.size() != r.corruptedIds.size())
                throw std::runtime_error(QObject::tr("The clean prompt is %1 tokens and the corrupted one %2: patching needs "
                                                     "prompts of the same token length.")
                                             .arg(r.cleanIds.size())
                                             .arg(r.corruptedIds.size())
                                             .toStdString());
            r.progress = [self, cancel](int done, int total) {
                QMetaObject::invokeMethod(QCoreApplication::instance(), [self, cancel, done, total] {
                    if (!self || self->cancelFlag_ != cancel) return;
                    self->progress_->setRange(0, total);
                    self->progress_->setValue(done);
                });
                return !cancel->load();
            };
            *grid = runActivationPatching(model, r);
        } catch (const std::exception& e) {
            error = cancel->load() ? QObject::tr("Patching cancelled.") : firstLineOf(e);
        }
        return [self, cancel, grid, cleanTexts, corruptedTexts, error, cleanPrompt] {
            if (!self || self->cancelFlag_ != cancel) return;
            self->cancelFlag_.reset();
            self->setRunning(false);
            if (!error.isEmpty()) return self->showError(error);
            self->plot_->setGrid(grid, cleanTexts, corruptedTexts);
            self->gridPrompt_ = cleanPrompt;
            self->status_->setText(tr("%1 tokens each; %2 clean %3, corrupted %4; %5 patched runs in %6 forward batches, %7 s. "
                                      "Hover a cell for its values, click it to open that layer and position.")
                                       .arg(grid->cleanIds.size())
                                       .arg(patchMetricTitle(grid->metric))
                                       .arg(grid->cleanValue, 0, 'g', 5)
                                       .arg(grid->corruptedValue, 0, 'g', 5)
                                       .arg(grid->patchedRuns)
                                       .arg(grid->forwardBatches)
                                       .arg(grid->seconds, 0, 'f', 2));
            Q_EMIT self->patchingFinished();
        };
    });
}

void PatchingView::openCell(int col, int row) {
    const PatchGrid* g = grid();
    if (!g || row < 0 || col < 0 || row >= g->rows || col >= g->columns) return;
    const Selection& s = session_->selection();
    const int layer = row < static_cast<int>(g->rowLayer.size()) && g->rowLayer[size_t(row)] >= 0 ? g->rowLayer[size_t(row)] : s.layer;
    const int position =
        col < static_cast<int>(g->columnPosition.size()) && g->columnPosition[size_t(col)] >= 0 ? g->columnPosition[size_t(col)] : s.position;
    int head = s.head;
    if (row < static_cast<int>(g->rowHead.size()) && g->rowHead[size_t(row)] >= 0) head = g->rowHead[size_t(row)];
    else if (g->columnAxis == "head") head = col;
    // The other views show the session's run: positions mean something there only when it is the
    // clean prompt's run, so another run is replaced by the clean prompt's first.
    if (session_->analysis() && session_->result().settings.prompt == gridPrompt_) {
        session_->select(position, layer, head);
    } else {
        Selection want = s;
        want.position = position;
        want.layer = layer;
        want.head = head;
        session_->restoreSelectionAfterNextRun(want);
        Q_EMIT promptRequested(gridPrompt_);
    }
    Q_EMIT cellOpened(layer, position, head);
}

nlohmann::json PatchingView::toJson() const {
    const PatchGrid* g = grid();
    if (!g) return nullptr;
    return patchGridToJson(*g, plot_->cleanTexts(), plot_->corruptedTexts());
}

QString PatchingView::exportJson(const QString& path) const {
    if (!grid()) return tr("%1: no patching result yet (press Run in the Patching dock)").arg(path);
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return tr("%1: cannot write (%2)").arg(path, f.errorString());
    // Byte-level tokens may be partial UTF-8: replaced, not thrown on.
    const std::string text = toJson().dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
    f.write(text.data(), static_cast<qint64>(text.size()));
    return f.commit() ? QString() : tr("%1: cannot write (%2)").arg(path, f.errorString());
}

void PatchingView::chooseJsonExport() {
    QSettings settings;
    const QString path = QFileDialog::getSaveFileName(this, tr("Export the patching result"),
                                                      settings.value("exportDir").toString() + "/" + figureName() + ".json",
                                                      tr("JSON (*.json)"));
    if (path.isEmpty()) return;
    settings.setValue("exportDir", QFileInfo(path).path());
    const QString error = exportJson(path);
    if (!error.isEmpty()) showError(error);
}

void PatchingView::refreshColors() { plot_->applyColors(viewColors()); }

QString PatchingView::figureName() const { return plot_->figureName(); }
QSize PatchingView::figureSize() const { return plot_->figureSize(); }
void PatchingView::paintFigure(QCPPainter& painter, const QSize& size) { plot_->paintFigure(painter, size); }

}  // namespace cs::ui
