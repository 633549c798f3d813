#include "ui/views/FeatureBrowser.h"

#include "store/FeatureSearch.h"
#include "store/FeatureStore.h"
#include "ui/views/FeatureTableModel.h"

#include <QAction>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

namespace cs::ui {

namespace {
constexpr int kTopHits = 200;
QString firstLine(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }
}  // namespace

FeatureBrowser::FeatureBrowser(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    setObjectName("featureBrowser");
    auto* v = new QVBoxLayout(this);
    v->setContentsMargins(6, 6, 6, 6);
    auto* top = new QHBoxLayout;
    sae_ = new QComboBox(this);
    sae_->setObjectName("browserSae");
    sae_->setToolTip(tr("Indexed SAE"));
    sae_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    filter_ = new QLineEdit(this);
    filter_->setObjectName("browserFilter");
    filter_->setPlaceholderText(tr("Filter rows (index or label)"));
    filter_->setClearButtonEnabled(true);
    top->addWidget(sae_);
    top->addWidget(filter_, 1);
    v->addLayout(top);

    auto* row = new QHBoxLayout;
    mode_ = new QComboBox(this);
    mode_->setObjectName("browserMode");
    mode_->addItem(tr("by label"), static_cast<int>(Mode::Label));
    mode_->addItem(tr("by token"), static_cast<int>(Mode::Token));
    mode_->addItem(tr("by text"), static_cast<int>(Mode::Text));
    mode_->addItem(tr("by contrast"), static_cast<int>(Mode::Contrast));
    mode_->setCurrentIndex(std::clamp(QSettings().value("browser/mode", 0).toInt(), 0, 3));
    query_ = new QLineEdit(this);
    query_->setObjectName("browserQuery");
    query_->setClearButtonEnabled(true);
    fileA_ = new QPushButton(tr("Prompts A..."), this);
    fileB_ = new QPushButton(tr("Prompts B..."), this);
    searchButton_ = new QPushButton(tr("Search"), this);
    clearButton_ = new QPushButton(tr("All"), this);
    clearButton_->setToolTip(tr("Show every feature again"));
    row->addWidget(mode_);
    row->addWidget(query_, 1);
    row->addWidget(fileA_);
    row->addWidget(fileB_);
    row->addWidget(searchButton_);
    row->addWidget(clearButton_);
    v->addLayout(row);

    model_ = new FeatureTableModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(model_);
    proxy_->setSortRole(FeatureTableModel::SortRole);
    proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    proxy_->setFilterKeyColumn(-1);
    table_ = new QTableView(this);
    table_->setObjectName("browserTable");
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setWordWrap(false);
    table_->verticalHeader()->setVisible(false);
    // Fixed row heights: the view never measures 16k rows.
    table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
    table_->horizontalHeader()->setSectionResizeMode(FeatureTableModel::LabelColumn, QHeaderView::Stretch);
    table_->horizontalHeader()->setStretchLastSection(false);
    table_->sortByColumn(FeatureTableModel::IndexColumn, Qt::AscendingOrder);
    v->addWidget(table_, 1);
    status_ = new QLabel(this);
    status_->setObjectName("browserStatus");
    status_->setWordWrap(true);
    v->addWidget(status_);

    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& t) {
        proxy_->setFilterFixedString(t.startsWith('#') ? t.mid(1) : t);
        updateStatus();
    });
    connect(sae_, &QComboBox::currentIndexChanged, this, [this] {
        QSettings().setValue("browser/sae", currentSae());
        reloadFeatures();
    });
    connect(mode_, &QComboBox::currentIndexChanged, this, [this] {
        QSettings().setValue("browser/mode", mode_->currentIndex());
        updateModeWidgets();
    });
    connect(query_, &QLineEdit::returnPressed, this, &FeatureBrowser::search);
    connect(searchButton_, &QPushButton::clicked, this, &FeatureBrowser::search);
    connect(clearButton_, &QPushButton::clicked, this, &FeatureBrowser::clearSearch);
    auto pick = [this](bool a) {
        const QString path = QFileDialog::getOpenFileName(this, tr("Prompts, one per line"), QSettings().value("browser/promptDir").toString(),
                                                          tr("Text (*.txt);;All files (*)"));
        if (path.isEmpty()) return;
        QSettings().setValue("browser/promptDir", QFileInfo(path).path());
        setContrastFiles(a ? path : contrastA_, a ? contrastB_ : path);
    };
    connect(fileA_, &QPushButton::clicked, this, [pick] { pick(true); });
    connect(fileB_, &QPushButton::clicked, this, [pick] { pick(false); });
    auto open = [this](const QModelIndex& i) {
        if (i.isValid()) Q_EMIT openFeature(currentSae(), i.data(FeatureTableModel::FeatureIndexRole).toLongLong());
    };
    connect(table_, &QTableView::doubleClicked, this, open);
    connect(table_, &QTableView::activated, this, open);  // Enter
    // Steer: S on the table (before its type-to-search sees the key) or the context menu.
    auto* steer = new QAction(tr("Steer"), table_);
    steer->setObjectName("browserSteer");
    steer->setShortcut(QKeySequence(Qt::Key_S));
    steer->setShortcutContext(Qt::WidgetShortcut);
    table_->addAction(steer);
    connect(steer, &QAction::triggered, this, [this] {
        const QModelIndex i = table_->currentIndex();
        if (i.isValid()) Q_EMIT steerFeature(currentSae(), i.data(FeatureTableModel::FeatureIndexRole).toLongLong());
    });
    table_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(table_, &QTableView::customContextMenuRequested, this, [this, open, steer](const QPoint& p) {
        const QModelIndex i = table_->indexAt(p);
        if (!i.isValid()) return;
        table_->setCurrentIndex(i);
        QMenu menu(this);
        menu.addAction(tr("Open Dashboard"), this, [open, i] { open(i); });
        menu.addAction(steer);
        menu.exec(table_->viewport()->mapToGlobal(p));
    });
    connect(session_, &SessionController::storeChanged, this, &FeatureBrowser::reloadSaes);
    connect(session_, &SessionController::labelChanged, this, [this](const QString& sae, long index) {
        if (sae != currentSae()) return;
        bool isAuto = true;
        const QString label = session_->featureLabel(sae.toStdString(), index, &isAuto);
        model_->updateLabel(index, label, isAuto);
    });
    updateModeWidgets();
    reloadSaes();
}

QString FeatureBrowser::currentSae() const { return sae_->currentText(); }

void FeatureBrowser::setContrastFiles(const QString& a, const QString& b) {
    contrastA_ = a;
    contrastB_ = b;
    fileA_->setText(a.isEmpty() ? tr("Prompts A...") : QFileInfo(a).fileName());
    fileB_->setText(b.isEmpty() ? tr("Prompts B...") : QFileInfo(b).fileName());
    fileA_->setToolTip(a);
    fileB_->setToolTip(b);
}

void FeatureBrowser::updateModeWidgets() {
    const auto m = static_cast<Mode>(mode_->currentData().toInt());
    const bool contrast = m == Mode::Contrast;
    query_->setVisible(!contrast);
    fileA_->setVisible(contrast);
    fileB_->setVisible(contrast);
    query_->setPlaceholderText(m == Mode::Label   ? tr("Words in labels or notes")
                               : m == Mode::Token ? tr("A token: features whose top examples peak on it")
                                                  : tr("A passage: features that fire most on it"));
}

void FeatureBrowser::reloadSaes() {
    const QString want = sae_->currentText().isEmpty() ? QSettings().value("browser/sae").toString() : sae_->currentText();
    {
        const QSignalBlocker b(sae_);
        sae_->clear();
        if (FeatureStore* store = session_->store()) {
            try {
                for (const StoredSae& s : store->saes())
                    sae_->addItem(QString::fromStdString(s.id), QString::fromStdString(s.hook));
            } catch (const std::exception& e) {
                message_ = firstLine(e);
            }
        }
        const int i = sae_->findText(want);
        sae_->setCurrentIndex(i >= 0 ? i : 0);
    }
    reloadFeatures();
}

void FeatureBrowser::reloadFeatures() {
    message_.clear();
    std::vector<FeatureSummary> rows;
    if (FeatureStore* store = session_->store(); store && sae_->count() > 0) {
        try {
            rows = store->summaries(currentSae().toStdString());
        } catch (const std::exception& e) {
            message_ = firstLine(e);
        }
    }
    model_->setSummaries(std::move(rows));
    table_->setColumnHidden(FeatureTableModel::ScoreColumn, true);
    table_->resizeColumnToContents(FeatureTableModel::IndexColumn);
    updateStatus();
}

void FeatureBrowser::updateStatus() {
    QString text;
    if (!session_->store()) text = tr("No feature store open (File > Open Feature Store, or index a corpus).");
    else if (sae_->count() == 0) text = tr("The store has no indexed SAE yet.");
    else if (model_->showingHits()) text = tr("%1 results").arg(proxy_->rowCount());
    else text = tr("%1 of %2 features").arg(proxy_->rowCount()).arg(model_->rowCount());
    if (!message_.isEmpty()) text += "  " + message_;
    status_->setText(text);
}

void FeatureBrowser::showHits(const std::vector<FeatureHit>& hits, const QString& scoreName) {
    model_->setHits(hits, scoreName);
    table_->setColumnHidden(FeatureTableModel::ScoreColumn, false);
    table_->sortByColumn(FeatureTableModel::ScoreColumn, Qt::DescendingOrder);
    updateStatus();
    Q_EMIT searchFinished();
}

void FeatureBrowser::clearSearch() {
    message_.clear();
    model_->clearHits();
    table_->setColumnHidden(FeatureTableModel::ScoreColumn, true);
    table_->sortByColumn(FeatureTableModel::IndexColumn, Qt::AscendingOrder);
    updateStatus();
}

void FeatureBrowser::search() {
    FeatureStore* store = session_->store();
    const std::string sae = currentSae().toStdString();
    message_.clear();
    auto fail = [this](const QString& why) {
        message_ = why;
        updateStatus();
        Q_EMIT searchFinished();
    };
    if (!store || sae.empty()) return fail(tr("Open a feature store first."));
    const auto m = static_cast<Mode>(mode_->currentData().toInt());
    const QString q = query_->text().trimmed();
    if (m != Mode::Contrast && q.isEmpty()) return fail(tr("Type what to search for."));
    try {
        if (m == Mode::Label) return showHits(store->searchLabels(sae, q.toStdString(), kTopHits), tr("Match"));
        if (m == Mode::Token) {
            const int id = store->tokenIdFor(q.toStdString());
            if (id < 0) return fail(tr("'%1' is not one token of this store's vocabulary.").arg(q));
            return showHits(store->searchToken(sae, id, kTopHits), tr("Peaks"));
        }
    } catch (const std::exception& e) {
        return fail(firstLine(e));
    }
    // Live searches run the model: on the session's model thread, never here.
    std::shared_ptr<const Sae> live;
    for (const AnalysisSae& s : session_->saes())
        if (s.id == sae) live = s.sae;
    if (!live) return fail(tr("%1 is not attached to the loaded model: attach it to search by text.").arg(currentSae()));
    if (m == Mode::Contrast && (contrastA_.isEmpty() || contrastB_.isEmpty()))
        return fail(tr("Choose two prompt files (one prompt a line)."));
    const int ticket = ++searchTicket_;
    message_ = tr("searching...");
    updateStatus();
    const std::string text = q.toStdString(), a = contrastA_.toStdString(), b = contrastB_.toStdString();
    const bool contrast = m == Mode::Contrast;
    std::vector<LiveSae> saes{{sae, live}};
    session_->runOnWorker(this, [this, saes, text, a, b, contrast, ticket](const Transformer& model, const Tokenizer& tok) {
        // Labels come from the browser's rows on the GUI thread: the store stays on its thread.
        std::vector<FeatureHit> hits = contrast ? searchContrast(model, tok, saes, readPromptFile(a), readPromptFile(b), kTopHits, nullptr)
                                                : searchPassage(model, tok, saes, text, kTopHits, nullptr);
        return std::function<void()>([this, hits, contrast, ticket] {
            if (ticket != searchTicket_) return;
            message_.clear();
            showHits(hits, contrast ? tr("A - B") : tr("Activation"));
        });
    });
}

}  // namespace cs::ui
