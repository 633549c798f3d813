#include "ui/views/GraphInterventionPanel.h"

#include "attribution/Attribution.h"
#include "sae/Sae.h"
#include "tokenize/ContinuationText.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "util/Error.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QEvent>
#include <QGridLayout>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>

namespace cs::ui {

namespace {

using Kind = NodeIntervention::Kind;

QTableWidgetItem* numberItem(double v, const QString& text) {
    auto* it = new QTableWidgetItem(text);
    it->setData(Qt::UserRole, v);
    it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return it;
}

QString percent(double p) { return QString::number(100 * p, 'f', 2) + QStringLiteral("%"); }

// Token text as a chip would show it: quoted, so leading spaces are visible.
QString quoted(const std::string& text) { return QStringLiteral("\"%1\"").arg(QString::fromStdString(text)); }

bool isCtrlReturn(const QKeyEvent* k) {
    return (k->key() == Qt::Key_Return || k->key() == Qt::Key_Enter) && (k->modifiers() & Qt::ControlModifier);
}

}  // namespace

GraphInterventionPanel::GraphInterventionPanel(SessionController* session, QWidget* parent)
    : QWidget(parent), session_(session) {
    nodesLabel_ = new QLabel;
    nodesLabel_->setObjectName("interventionNodes");
    nodesLabel_->setWordWrap(true);
    nodesLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    mode_ = new QComboBox;
    mode_->setObjectName("interventionMode");
    mode_->addItem(tr("Set"), static_cast<int>(Kind::Set));
    mode_->addItem(tr("Scale"), static_cast<int>(Kind::Scale));
    mode_->addItem(tr("Ablate"), static_cast<int>(Kind::Ablate));
    mode_->setToolTip(tr("Set: the feature's activation becomes the value; Scale: its activation times the value; "
                         "Ablate: 0. At the node's position only; the MLP's error term is kept."));
    value_ = new QDoubleSpinBox;
    value_->setObjectName("interventionValue");
    value_->setRange(-1000, 1000);
    value_->setDecimals(3);
    value_->setSingleStep(0.5);
    freeze_ = new QCheckBox(tr("Freeze attention"));
    freeze_->setObjectName("interventionFreeze");
    freeze_->setChecked(true);
    freeze_->setToolTip(tr("Every layer's attention pattern at the prompt's positions stays as in the unchanged run "
                           "(generated positions attend freely)"));
    run_ = new QPushButton(tr("Run"));
    run_->setObjectName("interventionRun");
    run_->setToolTip(tr("Rerun the prompt with these features changed (Ctrl+Return)"));
    summary_ = new QLabel(tr("Focus a feature node, choose how to change it, then Run."));
    summary_->setObjectName("interventionSummary");
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    table_ = new QTableWidget(0, 6);
    table_->setObjectName("interventionTable");
    table_->setHorizontalHeaderLabels({tr("Target"), tr("Logit before"), tr("After"), tr("Change"), tr("P before"), tr("P after")});
    table_->horizontalHeaderItem(1)->setToolTip(tr("Logit minus the mean logit, at the last prompt position"));
    table_->verticalHeader()->setVisible(false);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setStretchLastSection(true);
    before_ = new QLabel;
    before_->setObjectName("interventionBefore");
    after_ = new QLabel;
    after_->setObjectName("interventionAfter");
    for (QLabel* l : {before_, after_}) {
        l->setWordWrap(true);
        l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    }

    // Two rows: the panel shares a narrow dock with the canvas.
    auto* controls = new QGridLayout;
    controls->addWidget(mode_, 0, 0);
    controls->addWidget(value_, 0, 1);
    controls->addWidget(freeze_, 1, 0);
    controls->addWidget(run_, 1, 1);
    controls->setColumnStretch(2, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(nodesLabel_);
    layout->addLayout(controls);
    layout->addWidget(summary_);
    layout->addWidget(table_, 1);
    layout->addWidget(before_);
    layout->addWidget(after_);

    lastValue_ = {{static_cast<int>(Kind::Set), 0.0}, {static_cast<int>(Kind::Scale), 2.0}};
    mode_->setCurrentIndex(mode_->findData(static_cast<int>(Kind::Ablate)));
    connect(mode_, &QComboBox::currentIndexChanged, this, &GraphInterventionPanel::modeChanged);
    connect(run_, &QPushButton::clicked, this, &GraphInterventionPanel::run);
    // Ctrl+Return is also the window's Run Prompt; a QShortcut here would make it ambiguous. The
    // children's key events are taken first instead, so inside the panel it runs the intervention.
    for (QWidget* w : std::initializer_list<QWidget*>{this, mode_, value_, freeze_, run_, table_}) w->installEventFilter(this);
    modeChanged();
    showNodes();
}

bool GraphInterventionPanel::eventFilter(QObject* watched, QEvent* event) {
    if (event->type() == QEvent::ShortcutOverride || event->type() == QEvent::KeyPress) {
        auto* k = static_cast<QKeyEvent*>(event);
        if (isCtrlReturn(k)) {
            if (event->type() == QEvent::ShortcutOverride) {
                event->accept();  // delivered as a key press to us, not to the window's shortcut
            } else if (run_->isEnabled()) {
                run();
            }
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

void GraphInterventionPanel::modeChanged() {
    if (shownMode_ >= 0 && shownMode_ != static_cast<int>(Kind::Ablate)) lastValue_[shownMode_] = value_->value();
    const int m = mode_->currentData().toInt();
    shownMode_ = m;
    const bool ablate = m == static_cast<int>(Kind::Ablate);
    value_->setEnabled(!ablate);
    if (!ablate) value_->setValue(lastValue_[m]);
    value_->setPrefix(m == static_cast<int>(Kind::Scale) ? QStringLiteral("x ") : QString());
    value_->setToolTip(m == static_cast<int>(Kind::Scale) ? tr("Factor: the new activation is this times the arriving one")
                                                          : tr("The new activation"));
}

void GraphInterventionPanel::setNodes(std::vector<GraphNode> nodes, std::vector<long> tokens, std::vector<long> targets,
                                      std::vector<std::string> saeIds) {
    nodes_ = std::move(nodes);
    tokens_ = std::move(tokens);
    targets_ = std::move(targets);
    saeIds_ = std::move(saeIds);
    showNodes();
}

void GraphInterventionPanel::showNodes() {
    QStringList parts;
    for (const GraphNode& n : nodes_) {
        QString s = n.kind == NodeKind::Feature ? QStringLiteral("L%1 #%2 @%3").arg(n.layer).arg(n.feature).arg(n.position)
                                                : QString::fromStdString(n.id) + QStringLiteral(" (") + nodeKindName(n.kind) + ")";
        if (n.position >= 0 && n.position < static_cast<int>(tokens_.size()) && session_)
            s += QStringLiteral(" ") + session_->tokenText(static_cast<int>(tokens_[static_cast<size_t>(n.position)]));
        parts << s;
    }
    nodesLabel_->setText(nodes_.empty() ? tr("No node chosen.")
                                        : tr("%n node(s): ", "", static_cast<int>(nodes_.size())) + parts.join(QStringLiteral("; ")));
    run_->setEnabled(!nodes_.empty());
}

void GraphInterventionPanel::fail(const QString& message) {
    summary_->setText(message);
    Q_EMIT failed(message);
}

void GraphInterventionPanel::run() {
    if (!session_ || !session_->hasModel()) return fail(tr("Open a model first."));
    if (nodes_.empty()) return fail(tr("Focus a feature node in the graph first."));
    if (tokens_.empty()) return fail(tr("The graph has no prompt tokens."));
    std::vector<AttributionTranscoder> tcs;
    for (const AnalysisSae& s : session_->saes()) {
        const SaeConfig& c = s.sae->config();
        if (c.hookName.find("ln2.hook_normalized") != std::string::npos && c.hookNameOut.find("hook_mlp_out") != std::string::npos)
            tcs.push_back({s.id, s.sae});
    }
    if (tcs.empty()) return fail(tr("No transcoders attached: interventions change transcoder features."));
    const Kind kind = static_cast<Kind>(mode_->currentData().toInt());
    std::vector<NodeIntervention> ivs;
    try {
        for (const GraphNode& n : nodes_) {
            const std::string id = n.layer >= 0 && n.layer < static_cast<int>(saeIds_.size()) ? saeIds_[static_cast<size_t>(n.layer)] : "";
            ivs.push_back(interventionForNode(n, kind, value_->value(), id));
        }
    } catch (const Error& e) {
        return fail(QString::fromUtf8(e.what()));
    }
    InterventionOptions options;
    options.targets = targets_;
    options.freezeAttention = freeze_->isChecked();
    const std::vector<long> tokens = tokens_;
    const int ticket = ++ticket_;
    run_->setEnabled(false);
    summary_->setText(tr("Running..."));
    QPointer<GraphInterventionPanel> self(this);
    session_->runOnWorker(this, [self, tcs, tokens, ivs, options, ticket](const Transformer& model,
                                                                          const Tokenizer& tok) -> std::function<void()> {
        std::shared_ptr<const InterventionResult> r;
        std::vector<QString> targetTexts;
        QString before, after, top, error;
        try {
            r = std::make_shared<const InterventionResult>(interveneOnGraph(model, tcs, tokens, ivs, options));
            for (const TargetChange& t : r->targets) targetTexts.push_back(quoted(tok.tokenText(static_cast<int>(t.token))));
            auto text = [&](const std::vector<long>& ids) {
                return QString::fromStdString(continuationText(tok, tokens, ids));
            };
            before = text(r->continuationBefore);
            after = text(r->continuationAfter);
            QStringList tops;
            for (const TopToken& p : r->topAfter) tops << quoted(tok.tokenText(static_cast<int>(p.token))) + " " + percent(p.prob);
            top = tops.join(QStringLiteral(", "));
        } catch (const std::exception& ex) {
            error = QString::fromUtf8(ex.what()).section('\n', 0, 0);
        }
        return [self, r, targetTexts, before, after, top, error, ticket] {
            if (!self || ticket != self->ticket_) return;
            self->run_->setEnabled(!self->nodes_.empty());
            if (!r) return self->fail(error);
            self->showResult(r, targetTexts, before, after, top);
            Q_EMIT self->finished();
        };
    });
}

void GraphInterventionPanel::showResult(std::shared_ptr<const InterventionResult> r, const std::vector<QString>& targetTexts,
                                        const QString& before, const QString& after, const QString& top) {
    result_ = std::move(r);
    const InterventionResult& res = *result_;
    auto fmt = [](double v) { return QString::number(v, 'f', 3); };
    table_->setRowCount(static_cast<int>(res.targets.size()));
    for (size_t i = 0; i < res.targets.size(); ++i) {
        const TargetChange& t = res.targets[i];
        const int row = static_cast<int>(i);
        auto* token = new QTableWidgetItem(targetTexts[i]);
        token->setData(Qt::UserRole, static_cast<qlonglong>(t.token));
        token->setToolTip(tr("token %1").arg(t.token));
        table_->setItem(row, 0, token);
        table_->setItem(row, 1, numberItem(t.logitBefore, fmt(t.logitBefore)));
        table_->setItem(row, 2, numberItem(t.logitAfter, fmt(t.logitAfter)));
        const double change = t.logitAfter - t.logitBefore;
        table_->setItem(row, 3, numberItem(change, (change >= 0 ? QStringLiteral("+") : QString()) + fmt(change)));
        table_->setItem(row, 4, numberItem(t.probBefore, percent(t.probBefore)));
        table_->setItem(row, 5, numberItem(t.probAfter, percent(t.probAfter)));
    }
    QStringList changes;
    for (size_t i = 0; i < res.activationsBefore.size() && i < nodes_.size(); ++i)
        changes << QStringLiteral("L%1 #%2 @%3: %4 -> %5")
                       .arg(nodes_[i].layer)
                       .arg(nodes_[i].feature)
                       .arg(nodes_[i].position)
                       .arg(fmt(res.activationsBefore[i]), fmt(res.activationsAfter[i]));
    summary_->setText(tr("%1. Attention %2; generated positions attend freely. Top after: %3")
                          .arg(changes.join(QStringLiteral("; ")),
                               res.attentionFrozen ? tr("frozen at the prompt's positions") : tr("free"), top));
    // The texts keep the space they start with after the prompt; after a label it is noise.
    before_->setText(tr("Before: %1").arg(before.trimmed()));
    after_->setText(tr("After: %1").arg(after.trimmed()));
}

}  // namespace cs::ui
