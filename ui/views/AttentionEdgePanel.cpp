#include "ui/views/AttentionEdgePanel.h"

#include "sae/Sae.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"

#include <QFormLayout>
#include <QGridLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>

namespace cs::ui {

namespace {

QTableWidget* makeTable(const QString& objectName, const QStringList& headers) {
    auto* t = new QTableWidget(0, static_cast<int>(headers.size()));
    t->setObjectName(objectName);
    t->setHorizontalHeaderLabels(headers);
    t->verticalHeader()->setVisible(false);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setSelectionMode(QAbstractItemView::SingleSelection);
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    t->horizontalHeader()->setStretchLastSection(true);
    return t;
}

QTableWidgetItem* nodeItem(const QString& label, const std::string& id) {
    auto* it = new QTableWidgetItem(label);
    it->setData(Qt::UserRole, QString::fromStdString(id));
    it->setToolTip(QString::fromStdString(id));
    return it;
}

QTableWidgetItem* numberItem(double v, const QString& text) {
    auto* it = new QTableWidgetItem(text);
    it->setData(Qt::UserRole, v);
    it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return it;
}

}  // namespace

AttentionEdgePanel::AttentionEdgePanel(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    layer_ = new QSpinBox;
    head_ = new QSpinBox;
    query_ = new QSpinBox;
    key_ = new QSpinBox;
    layer_->setObjectName("attentionEdgeLayer");
    head_->setObjectName("attentionEdgeHead");
    query_->setObjectName("attentionEdgeQuery");
    key_->setObjectName("attentionEdgeKey");
    query_->setToolTip(tr("Query position (the token attending)"));
    key_->setToolTip(tr("Key position (the token attended to), at most the query position"));
    run_ = new QPushButton(tr("Run"));
    run_->setObjectName("attentionEdgeRun");
    run_->setToolTip(tr("Split this head's attention score from query to key into the graph's nodes"));
    summary_ = new QLabel(tr("Pick a head, a query and a key position, then Run."));
    summary_->setObjectName("attentionEdgeSummary");
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    queryTable_ = makeTable("attentionQueryTable", {tr("Query-side node"), tr("Q_n·K"), tr("Share")});
    keyTable_ = makeTable("attentionKeyTable", {tr("Key-side node"), tr("Q·K_m"), tr("Share")});
    pairTable_ = makeTable("attentionPairTable", {tr("Query node"), tr("Key node"), tr("Q_n·K_m"), tr("Share")});

    // Two rows: the panel shares a narrow dock with the canvas.
    auto* boxes = new QGridLayout;
    int cell = 0;
    for (auto [name, box] : {std::pair{tr("Layer"), layer_}, {tr("Head"), head_}, {tr("Query"), query_}, {tr("Key"), key_}}) {
        boxes->addWidget(new QLabel(name), cell / 2, (cell % 2) * 2);
        boxes->addWidget(box, cell / 2, (cell % 2) * 2 + 1);
        ++cell;
    }
    boxes->addWidget(run_, 0, 4, 2, 1);
    boxes->setColumnStretch(5, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(boxes);
    layout->addWidget(summary_);
    layout->addWidget(queryTable_, 1);
    layout->addWidget(keyTable_, 1);
    layout->addWidget(pairTable_, 1);

    connect(run_, &QPushButton::clicked, this, &AttentionEdgePanel::run);
    for (QTableWidget* t : {queryTable_, keyTable_, pairTable_})
        connect(t, &QTableWidget::cellClicked, this, [this, t](int row, int column) {
            // A pair row names the query node in its first column and the key node in its second.
            QTableWidgetItem* it = t->item(row, t == pairTable_ && column == 1 ? 1 : 0);
            if (it) Q_EMIT nodeChosen(it->data(Qt::UserRole).toString());
        });
    if (session_) {
        connect(session_, &SessionController::modelLoaded, this, [this] { updateRanges(); });
        connect(session_, &SessionController::runFinished, this, [this] { updateRanges(); });
    }
    updateRanges();
}

void AttentionEdgePanel::updateRanges() {
    const bool model = session_ && session_->hasModel();
    layer_->setRange(0, model ? std::max(0, session_->layers() - 1) : 0);
    head_->setRange(0, model ? std::max(0, session_->heads() - 1) : 0);
    // The graph is computed for the prompt, so positions run over its tokens. Key <= query is left
    // to the core, whose error says so, rather than coupling the boxes.
    const PromptAnalysis* a = session_ ? session_->analysis() : nullptr;
    const int length = !tokens_.empty() ? static_cast<int>(tokens_.size()) : a ? a->promptLength : 0;
    query_->setRange(0, std::max(0, length - 1));
    key_->setRange(0, std::max(0, length - 1));
    run_->setEnabled(model && length > 0);
}

void AttentionEdgePanel::setTokens(std::vector<long> tokens) {
    tokens_ = std::move(tokens);
    updateRanges();
}

void AttentionEdgePanel::setEdge(int layer, int head, int query, int key) {
    updateRanges();
    layer_->setValue(layer);
    head_->setValue(head);
    query_->setValue(query);
    key_->setValue(key);
}

AttentionEdge AttentionEdgePanel::edge() const { return {layer_->value(), head_->value(), query_->value(), key_->value()}; }

void AttentionEdgePanel::run() {
    auto reportFailure = [this](const QString& message) {
        summary_->setText(message);
        Q_EMIT failed(message);
    };
    if (!session_ || !session_->hasModel() || (tokens_.empty() && !session_->analysis()))
        return reportFailure(tr("Open a model and run a prompt first."));
    std::vector<AttributionTranscoder> tcs;
    for (const AnalysisSae& s : session_->saes()) {
        const SaeConfig& c = s.sae->config();
        if (c.hookName.find("ln2.hook_normalized") != std::string::npos && c.hookNameOut.find("hook_mlp_out") != std::string::npos)
            tcs.push_back({s.id, s.sae});
    }
    const std::string prompt = tokens_.empty() ? session_->result().settings.prompt.toStdString() : std::string();
    const std::vector<long> given = tokens_;
    const AttentionEdge e = edge();
    AttentionOptions options;
    options.topPairs = rows_;
    const int ticket = ++ticket_;
    summary_->setText(tr("Computing..."));
    QPointer<AttentionEdgePanel> self(this);
    session_->runOnWorker(this, [self, tcs, prompt, given, e, options, ticket](const Transformer& model,
                                                                        const Tokenizer& tok) -> std::function<void()> {
        std::shared_ptr<const AttentionDecomposition> d;
        std::vector<std::string> tokenTexts;
        QString error;
        try {
            std::vector<long> ids = given;
            if (ids.empty())
                for (int id : promptTokenIds(tok, prompt, static_cast<int>(model.config().vocabSize))) ids.push_back(id);
            d = std::make_shared<const AttentionDecomposition>(decomposeAttention(model, tcs, ids, e, options));
            for (long id : ids) tokenTexts.push_back(tok.tokenText(static_cast<int>(id)));
        } catch (const std::exception& ex) {
            error = QString::fromUtf8(ex.what()).section('\n', 0, 0);
        }
        return [self, d, tokenTexts, error, ticket] {
            if (!self || ticket != self->ticket_) return;
            if (!d) {
                self->summary_->setText(error);
                Q_EMIT self->failed(error);
                return;
            }
            std::vector<QString> labels;
            for (const GraphNode& n : d->nodes) {
                const QString pos = QStringLiteral(" @%1").arg(n.position);
                if (n.kind == NodeKind::Embedding) {
                    const std::string& text = tokenTexts[static_cast<size_t>(n.position)];
                    labels.push_back(QStringLiteral("Emb \"%1\"").arg(QString::fromStdString(text)) + pos);
                } else if (n.kind == NodeKind::Error) {
                    labels.push_back(QStringLiteral("L%1 error").arg(n.layer) + pos);
                } else {
                    QString label = QStringLiteral("L%1 #%2").arg(n.layer).arg(n.feature) + pos;
                    // Store labels are read here: the store belongs to the GUI thread.
                    const QString stored = self->session_->featureLabel(d->saeIds[static_cast<size_t>(n.layer)], n.feature);
                    if (!stored.isEmpty()) label += QStringLiteral("  ") + stored;
                    labels.push_back(label);
                }
            }
            self->showResult(d, labels);
            Q_EMIT self->computed();
        };
    });
}

void AttentionEdgePanel::showResult(std::shared_ptr<const AttentionDecomposition> d, const std::vector<QString>& labels) {
    result_ = std::move(d);
    const AttentionDecomposition& r = *result_;
    auto fmt = [](double v) { return QString::number(v, 'f', 3); };
    // Shares are of the score itself (they add up to 1 with the bias terms), signed.
    auto share = [&](double v) {
        if (r.score == 0) return numberItem(0, QStringLiteral("-"));
        return numberItem(v / r.score, QString::number(100 * v / r.score, 'f', 1) + "%");
    };
    summary_->setText(tr("L%1 H%2, query %3 -> key %4: score %5 (weight %6 after softmax) = node pairs %7 + "
                         "query nodes x key bias %8 + query bias x key nodes %9 + bias x bias %10. "
                         "Query side: nodes + query bias %11; key side: nodes + key bias %12.")
                          .arg(r.edge.layer).arg(r.edge.head).arg(r.edge.query).arg(r.edge.key)
                          .arg(fmt(r.score), fmt(r.pattern), fmt(r.pairSum), fmt(r.queryNodesKeyBias),
                               fmt(r.queryBiasKeyNodes), fmt(r.biasBias), fmt(r.queryBias()), fmt(r.keyBias())));
    auto fill = [&](QTableWidget* t, const std::vector<AttentionContribution>& rows) {
        const int n = std::min(rows_, static_cast<int>(rows.size()));
        t->setRowCount(n);
        for (int i = 0; i < n; ++i) {
            const AttentionContribution& c = rows[static_cast<size_t>(i)];
            t->setItem(i, 0, nodeItem(labels[static_cast<size_t>(c.node)], r.nodes[static_cast<size_t>(c.node)].id));
            t->setItem(i, 1, numberItem(c.value, fmt(c.value)));
            t->setItem(i, 2, share(c.value));
        }
    };
    fill(queryTable_, r.queryContributors);
    fill(keyTable_, r.keyContributors);
    const int n = std::min(rows_, static_cast<int>(r.topPairs.size()));
    pairTable_->setRowCount(n);
    for (int i = 0; i < n; ++i) {
        const AttentionPair& p = r.topPairs[static_cast<size_t>(i)];
        pairTable_->setItem(i, 0, nodeItem(labels[static_cast<size_t>(p.queryNode)], r.nodes[static_cast<size_t>(p.queryNode)].id));
        pairTable_->setItem(i, 1, nodeItem(labels[static_cast<size_t>(p.keyNode)], r.nodes[static_cast<size_t>(p.keyNode)].id));
        pairTable_->setItem(i, 2, numberItem(p.value, fmt(p.value)));
        pairTable_->setItem(i, 3, share(p.value));
    }
}

}  // namespace cs::ui
