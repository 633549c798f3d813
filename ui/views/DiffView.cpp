#include "ui/views/DiffView.h"

#include "diff/ModelDiffJson.h"
#include "ui/SessionController.h"
#include "ui/views/DiffFeatureModel.h"

#include <QCheckBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSaveFile>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>

namespace cs::ui {

namespace {
const QString kKlCaption = QStringLiteral("KL(A || B), nats");
}

DiffView::DiffView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    compared_ = new QLabel(this);
    compared_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    compareButton_ = new QPushButton(tr("Compare With..."), this);
    compareButton_->setToolTip(tr("Open a second checkpoint of the same architecture (a fine-tune) as model B"));
    stopButton_ = new QPushButton(tr("Stop Comparing"), this);
    shadeKl_ = new QCheckBox(tr("Shade tokens by KL"), this);
    shadeKl_->setToolTip(tr("Shade each token by KL(A || B) of the next-token distributions after it"));
    summary_ = new QLabel(this);
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    layers_ = new QTableWidget(0, 3, this);
    layers_->setHorizontalHeaderLabels({tr("Layer"), tr("Cosine"), tr("Norm B / A")});
    layers_->verticalHeader()->hide();
    layers_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    layers_->horizontalHeader()->setStretchLastSection(true);
    layers_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    layers_->setToolTip(tr("blocks.L.hook_resid_post: mean over tokens of cos(a, b) and |b| / |a|"));

    features_ = new DiffFeatureModel(this);
    sorted_ = new QSortFilterProxyModel(this);
    sorted_->setSourceModel(features_);
    sorted_->setSortRole(DiffFeatureModel::SortRole);
    table_ = new QTableView(this);
    table_->setModel(sorted_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(DiffFeatureModel::ChangeColumn, Qt::DescendingOrder);  // the diff's own ranking
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(DiffFeatureModel::LabelColumn, QHeaderView::Stretch);
    table_->setToolTip(tr("Double-click (or Enter) to open the feature's dashboard"));
    table_->setMinimumWidth(160);

    // Narrow enough to share the feature docks' column (460 px) without squeezing the heatmaps.
    compared_->setWordWrap(true);
    compared_->setMinimumWidth(80);
    auto* top = new QHBoxLayout;
    top->addWidget(compared_, 1);
    top->addWidget(compareButton_);
    top->addWidget(stopButton_);
    auto* second = new QHBoxLayout;
    second->addWidget(shadeKl_);
    second->addStretch(1);
    // Layers above (a handful of rows), the features below with the room.
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(layers_);
    split->addWidget(table_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 3);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addLayout(second);
    layout->addWidget(summary_);
    layout->addWidget(split, 1);

    connect(compareButton_, &QPushButton::clicked, this, &DiffView::compareRequested);
    connect(stopButton_, &QPushButton::clicked, session_, &SessionController::clearCompareModel);
    connect(shadeKl_, &QCheckBox::toggled, this, &DiffView::applyShading);
    const auto open = [this](const QModelIndex& i) {
        const QModelIndex src = sorted_->mapToSource(i);
        if (!src.isValid()) return;
        const FeatureShift& f = features_->features()[static_cast<size_t>(src.row())];
        Q_EMIT openFeature(QString::fromStdString(f.saeId), f.index);
    };
    connect(table_, &QTableView::doubleClicked, this, open);
    connect(table_, &QTableView::activated, this, open);
    connect(session_, &SessionController::compareModelChanged, this, &DiffView::recompute);
    connect(session_, &SessionController::runFinished, this, &DiffView::recompute);
    connect(session_, &SessionController::modelLoaded, this, [this] { clear(QString()); });
    connect(session_, &SessionController::labelChanged, features_, &DiffFeatureModel::refreshLabels);
    connect(session_, &SessionController::storeChanged, features_, &DiffFeatureModel::refreshLabels);
    clear(QString());
}

void DiffView::clear(const QString& why) {
    ++ticket_;  // a diff still on its way is of something no longer shown
    diff_.reset();
    features_->setFeatures({}, {});
    layers_->setRowCount(0);
    const bool comparing = session_->compareModel() != nullptr;
    compared_->setText(comparing ? tr("B: %1").arg(QFileInfo(session_->compareModelDir()).fileName())
                                 : tr("Not comparing: open a second checkpoint of this model as B"));
    stopButton_->setEnabled(comparing);
    summary_->setText(why);
    applyShading();
}

void DiffView::recompute() {
    auto compare = session_->compareModel();
    auto analysis = session_->result().analysis;
    if (!compare || !analysis) {
        clear(compare ? tr("Run a prompt to compare the two models on it.") : QString());
        return;
    }
    clear(tr("comparing..."));
    const int ticket = ++ticket_;
    DiffRequest request;
    request.sequences = {analysis->ids};
    request.saes = session_->saes();
    request.topFeatures = 200;
    session_->runOnWorker(this, [this, request, compare, ticket](const Transformer& model, const Tokenizer&) {
        auto diff = std::make_shared<const ModelDiff>(diffModels(model, *compare, request));
        return [this, diff, ticket] {
            if (ticket == ticket_) show(diff);
        };
    });
}

void DiffView::show(std::shared_ptr<const ModelDiff> diff) {
    diff_ = std::move(diff);
    const ModelDiff& d = *diff_;
    layers_->setRowCount(static_cast<int>(d.layers.size()));
    for (size_t i = 0; i < d.layers.size(); ++i) {
        const int r = static_cast<int>(i);
        layers_->setItem(r, 0, new QTableWidgetItem(QStringLiteral("L%1").arg(d.layers[i].layer)));
        layers_->setItem(r, 1, new QTableWidgetItem(QString::number(d.layers[i].cosine, 'f', 4)));
        layers_->setItem(r, 2, new QTableWidgetItem(QString::number(d.layers[i].normRatio, 'f', 4)));
    }
    SessionController* s = session_;
    features_->setFeatures(d.features, [s](const std::string& sae, long index) { return s->featureLabel(sae, index); });
    summary_->setText(summaryText());
    applyShading();
    Q_EMIT diffReady();
}

QString DiffView::summaryText() const {
    if (!diff_ || diff_->tokens.empty()) return {};
    const auto& kl = diff_->tokens.front();
    const auto peak = std::max_element(kl.begin(), kl.end(), [](const TokenKl& a, const TokenKl& b) { return a.kl < b.kl; });
    QString text = tr("%1 tokens: mean KL(A || B) %2 nats").arg(diff_->tokenCount).arg(diff_->meanKl, 0, 'f', 4);
    if (peak != kl.end())
        text += tr(", largest %1 after \"%2\" (position %3)")
                    .arg(double(peak->kl), 0, 'f', 4)
                    .arg(session_->tokenText(peak->id))
                    .arg(peak - kl.begin());
    if (session_->saes().empty()) text += tr(". Attach SAEs to see which features changed.");
    return text;
}

std::vector<float> DiffView::tokenKl() const {
    std::vector<float> v;
    if (diff_ && !diff_->tokens.empty())
        for (const TokenKl& t : diff_->tokens.front()) v.push_back(t.kl);
    return v;
}

void DiffView::applyShading() {
    if (shadeKl_->isChecked() && diff_) {
        const std::vector<float> v = tokenKl();
        const float max = v.empty() ? 0.f : *std::max_element(v.begin(), v.end());
        shading_ = true;
        Q_EMIT shadingRequested(v, std::max(max, 1e-6f), kKlCaption);
    } else if (shading_) {
        shading_ = false;
        Q_EMIT shadingRequested({}, 0.f, kKlCaption);
    }
}

QString DiffView::exportJson(const QString& path) const {
    if (!diff_) return tr("%1: no diff yet (compare with a second model and run a prompt)").arg(path);
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return tr("%1: cannot write (%2)").arg(path, f.errorString());
    const std::string text = modelDiffToJson(*diff_, session_->tokenizer().get())
                                 .dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
    f.write(text.data(), static_cast<qint64>(text.size()));
    return f.commit() ? QString() : tr("%1: cannot write (%2)").arg(path, f.errorString());
}

}  // namespace cs::ui
