#include "ui/views/GraphView.h"

#include "attribution/Attribution.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/GraphCanvas.h"

#include <QCoreApplication>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QThreadPool>
#include <QToolBar>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <atomic>
#include <cmath>

namespace cs::ui {

namespace {

// Links below this are pruned on the GUI thread: the demo's graphs take a few milliseconds;
// a circuit-tracer-sized graph (1M links) takes long enough to freeze the window.
constexpr size_t kSyncPruneLinks = 200000;
constexpr int kMaxRowsPerGroup = 100;

QString nodeText(const GraphNode& n) {
    return n.label.empty() ? QString::fromStdString(n.id)
                           : QStringLiteral("%1  %2").arg(QString::fromStdString(n.id), QString::fromStdString(n.label));
}

}  // namespace

GraphView::GraphView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    canvas_ = new GraphCanvas;
    nodeBox_ = new QDoubleSpinBox;
    edgeBox_ = new QDoubleSpinBox;
    for (QDoubleSpinBox* b : {nodeBox_, edgeBox_}) {
        b->setRange(0.0, 1.0);
        b->setDecimals(2);
        b->setSingleStep(0.05);
        b->setKeyboardTracking(false);  // prune once per typed value, not per keystroke
    }
    nodeBox_->setObjectName("graphNodeThreshold");
    edgeBox_->setObjectName("graphEdgeThreshold");
    nodeBox_->setValue(0.8);
    edgeBox_->setValue(0.98);
    nodeBox_->setToolTip(tr("Keep the nodes holding this share of the influence on the logits (1: all)"));
    edgeBox_->setToolTip(tr("Keep the links holding this share of the influence (1: all)"));
    search_ = new QLineEdit;
    search_->setObjectName("graphSearch");
    search_->setPlaceholderText(tr("Search label or id"));
    search_->setClearButtonEnabled(true);
    searchInfo_ = new QLabel;
    auto* fit = new QPushButton(tr("Fit"));
    fit->setToolTip(tr("Fit the graph to the view (F)"));
    compute_ = new QPushButton(tr("Compute Graph"));
    compute_->setToolTip(tr("Attribution graph of the current prompt with the attached transcoders"));
    cancel_ = new QPushButton(tr("Cancel"));
    cancel_->setVisible(false);
    progress_ = new QProgressBar;
    progress_->setVisible(false);
    progress_->setMaximumWidth(160);
    auto* open = new QPushButton(tr("Open..."));
    auto* save = new QPushButton(tr("Save..."));

    // A tool bar rather than a row layout: it folds what does not fit behind its extension button,
    // so the dock (tabbed with others) never forces the window's dock area wider.
    auto* bar = new QToolBar;
    bar->setObjectName("graphToolBar");
    bar->addWidget(new QLabel(tr("Nodes ")));
    bar->addWidget(nodeBox_);
    bar->addWidget(new QLabel(tr(" Links ")));
    bar->addWidget(edgeBox_);
    search_->setMinimumWidth(120);
    bar->addWidget(search_);
    bar->addWidget(searchInfo_);
    bar->addWidget(fit);
    bar->addWidget(compute_);
    bar->addWidget(progress_);
    bar->addWidget(cancel_);
    bar->addWidget(open);
    bar->addWidget(save);

    focusInfo_ = new QLabel(tr("Click a node to see its inputs and outputs; Ctrl+click pins it."));
    focusInfo_->setWordWrap(true);
    connections_ = new QTreeWidget;
    connections_->setObjectName("graphConnections");
    connections_->setColumnCount(2);
    connections_->setHeaderLabels({tr("Node"), tr("Weight")});
    connections_->header()->setStretchLastSection(false);
    connections_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    connections_->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    scores_ = new QLabel;
    scores_->setObjectName("graphScores");
    scores_->setWordWrap(true);
    auto* side = new QWidget;
    auto* sideLayout = new QVBoxLayout(side);
    sideLayout->setContentsMargins(0, 0, 0, 0);
    sideLayout->addWidget(focusInfo_);
    sideLayout->addWidget(connections_, 1);
    sideLayout->addWidget(scores_);

    auto* split = new QSplitter;
    split->addWidget(canvas_);
    split->addWidget(side);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    // Wide enough to read a node's label beside its weight; the canvas takes the rest.
    side->setMinimumWidth(200);
    split->setChildrenCollapsible(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(bar);
    layout->addWidget(split, 1);

    connect(nodeBox_, &QDoubleSpinBox::valueChanged, this, [this] { reprune(); });
    connect(edgeBox_, &QDoubleSpinBox::valueChanged, this, [this] { reprune(); });
    connect(search_, &QLineEdit::textChanged, this, [this] { updateSearch(); });
    connect(search_, &QLineEdit::returnPressed, this, [this] {
        if (!canvas_->highlighted().empty()) canvas_->focusNode(canvas_->highlighted().front());
    });
    connect(fit, &QPushButton::clicked, canvas_, &GraphCanvas::fitToView);
    connect(compute_, &QPushButton::clicked, this, &GraphView::computeGraph);
    connect(cancel_, &QPushButton::clicked, this, &GraphView::cancelCompute);
    connect(open, &QPushButton::clicked, this, &GraphView::chooseOpen);
    connect(save, &QPushButton::clicked, this, &GraphView::chooseSave);
    connect(canvas_, &GraphCanvas::nodeClicked, this, [this] { updateConnections(); });
    connect(canvas_, &GraphCanvas::pinsChanged, this, [this] {
        // Pins live on the unpruned graph too, so a stricter threshold and back keeps them.
        if (full_) {
            auto g = std::make_shared<AttributionGraph>(*full_);
            g->pinnedIds = canvas_->graph().pinnedIds;
            full_ = g;
        }
        updateScores();
    });
    connect(connections_, &QTreeWidget::itemActivated, this, [this](QTreeWidgetItem* item) {
        const QVariant v = item->data(0, Qt::UserRole);
        if (v.isValid()) canvas_->focusNode(v.toInt());
    });
    updateScores();
}

void GraphView::setFullGraph(AttributionGraph g, bool prune) {
    full_ = std::make_shared<const AttributionGraph>(std::move(g));
    if (prune) reprune();
    else showGraph(*full_);
}

void GraphView::setThresholds(double node, double edge) {
    const QSignalBlocker a(nodeBox_), b(edgeBox_);
    nodeBox_->setValue(node);
    edgeBox_->setValue(edge);
    reprune();
}

void GraphView::reprune() {
    if (!full_) return;
    auto full = std::make_shared<AttributionGraph>(*full_);
    // The canvas's focus and pins carry over to the new pruning where their nodes survive.
    full->clickedId = canvas_->graph().clickedId.empty() ? full_->clickedId : canvas_->graph().clickedId;
    if (!canvas_->isEmpty()) full->pinnedIds = canvas_->graph().pinnedIds;
    const float node = static_cast<float>(nodeBox_->value());
    const float edge = static_cast<float>(edgeBox_->value());
    const int ticket = ++pruneTicket_;
    if (full->links.size() < kSyncPruneLinks) {
        try {
            showGraph(pruneGraph(*full, node, edge));
        } catch (const std::exception& e) {
            Q_EMIT failed(QString::fromUtf8(e.what()).section('\n', 0, 0));
        }
        return;
    }
    QPointer<GraphView> self(this);
    QThreadPool::globalInstance()->start([self, full, node, edge, ticket] {
        std::shared_ptr<AttributionGraph> pruned;
        QString error;
        try {
            pruned = std::make_shared<AttributionGraph>(pruneGraph(*full, node, edge));
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
        // Posted to the application, not the view: the view may be gone by now, and only the GUI
        // thread may ask.
        QMetaObject::invokeMethod(QCoreApplication::instance(), [self, pruned, error, ticket] {
            if (!self || ticket != self->pruneTicket_) return;  // a newer threshold superseded it
            if (!error.isEmpty()) Q_EMIT self->failed(error);
            else self->showGraph(std::move(*pruned));
        });
    });
}

void GraphView::showGraph(AttributionGraph pruned) {
    canvas_->setGraph(std::move(pruned));
    updateSearch();
    updateConnections();
    updateScores();
    Q_EMIT graphShown();
}

void GraphView::updateSearch() {
    const QString q = search_->text().trimmed();
    std::vector<int> hits;
    if (!q.isEmpty()) {
        const auto& nodes = canvas_->graph().nodes;
        for (size_t i = 0; i < nodes.size(); ++i)
            if (QString::fromStdString(nodes[i].id).contains(q, Qt::CaseInsensitive) ||
                QString::fromStdString(nodes[i].label).contains(q, Qt::CaseInsensitive))
                hits.push_back(static_cast<int>(i));
    }
    searchInfo_->setText(q.isEmpty() ? QString() : tr("%n match(es)", nullptr, static_cast<int>(hits.size())));
    canvas_->setHighlighted(std::move(hits));
}

void GraphView::updateConnections() {
    connections_->clear();
    const AttributionGraph& g = canvas_->graph();
    const int f = canvas_->focusedNode();
    if (f < 0) {
        focusInfo_->setText(tr("Click a node to see its inputs and outputs; Ctrl+click pins it."));
        return;
    }
    const GraphNode& n = g.nodes[static_cast<size_t>(f)];
    focusInfo_->setText(tr("<b>%1</b> (%2)<br>%3<br>activation %4, influence %5")
                            .arg(QString::fromStdString(n.id).toHtmlEscaped(), nodeKindName(n.kind),
                                 QString::fromStdString(n.label).toHtmlEscaped())
                            .arg(n.activation, 0, 'g', 4)
                            .arg(n.influence, 0, 'g', 4));
    auto group = [&](const QString& title, const std::vector<int>& links, bool inputs, bool positive) {
        std::vector<int> rows;
        for (int li : links)
            if ((g.links[static_cast<size_t>(li)].weight >= 0) == positive) rows.push_back(li);
        std::sort(rows.begin(), rows.end(), [&](int a, int b) {
            return std::fabs(g.links[static_cast<size_t>(a)].weight) > std::fabs(g.links[static_cast<size_t>(b)].weight);
        });
        auto* top = new QTreeWidgetItem(connections_, {tr("%1 (%2)").arg(title).arg(rows.size())});
        top->setFirstColumnSpanned(true);
        // The strongest few hundred say what matters; a feature can have thousands of weak inputs.
        for (size_t k = 0; k < rows.size() && k < static_cast<size_t>(kMaxRowsPerGroup); ++k) {
            const GraphLink& l = g.links[static_cast<size_t>(rows[k])];
            const int other = inputs ? l.source : l.target;
            auto* item = new QTreeWidgetItem(top, {nodeText(g.nodes[static_cast<size_t>(other)]), QString::number(l.weight, 'g', 4)});
            item->setData(0, Qt::UserRole, other);
            item->setForeground(1, positive ? QColor(0x21, 0x66, 0xac) : QColor(0xc0, 0x39, 0x2b));
        }
        top->setExpanded(true);
    };
    const std::vector<int> in = canvas_->inputLinks(f), out = canvas_->outputLinks(f);
    group(tr("Inputs +"), in, true, true);
    group(tr("Inputs −"), in, true, false);
    group(tr("Outputs +"), out, false, true);
    group(tr("Outputs −"), out, false, false);
}

void GraphView::updateScores() {
    const AttributionGraph& g = canvas_->graph();
    if (g.nodes.empty()) {
        scores_->setText(QString());
        return;
    }
    QString text = tr("Graph: replacement %1, completeness %2").arg(g.replacementScore, 0, 'f', 3).arg(g.completenessScore, 0, 'f', 3);
    const std::vector<int> pins = canvas_->pinnedNodes();
    if (!pins.empty()) {
        const GraphScores s = subgraphScores(g, pins);
        text += tr("<br>Pinned subgraph (%1 nodes): replacement %2, completeness %3")
                    .arg(pins.size())
                    .arg(s.replacement, 0, 'f', 3)
                    .arg(s.completeness, 0, 'f', 3);
    }
    scores_->setText(text);
}

QString GraphView::openGraph(const QString& path) {
    AttributionGraph g;
    try {
        g = loadGraph(path.toStdString());
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what()).section('\n', 0, 0);
    }
    {
        const QSignalBlocker a(nodeBox_), b(edgeBox_);
        nodeBox_->setValue(g.nodeThreshold);
        edgeBox_->setValue(g.edgeThreshold);
    }
    setFullGraph(std::move(g), false);
    return {};
}

QString GraphView::saveGraph(const QString& path) const {
    if (canvas_->isEmpty()) return tr("%1: no graph to save").arg(path);
    try {
        cs::saveGraph(path.toStdString(), canvas_->graph());
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what()).section('\n', 0, 0);
    }
    return {};
}

void GraphView::chooseOpen() {
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open an attribution graph"), settings.value("graphDir").toString(),
                                                      tr("Graph JSON (*.json)"));
    if (path.isEmpty()) return;
    settings.setValue("graphDir", QFileInfo(path).absolutePath());
    const QString error = openGraph(path);
    if (!error.isEmpty()) Q_EMIT failed(error);
}

void GraphView::chooseSave() {
    QSettings settings;
    const QString path = QFileDialog::getSaveFileName(this, tr("Save the attribution graph"),
                                                      settings.value("graphDir").toString() + "/graph.json", tr("Graph JSON (*.json)"));
    if (path.isEmpty()) return;
    settings.setValue("graphDir", QFileInfo(path).absolutePath());
    const QString error = saveGraph(path);
    if (!error.isEmpty()) Q_EMIT failed(error);
}

void GraphView::cancelCompute() {
    if (cancelFlag_) cancelFlag_->store(true);
}

void GraphView::computeGraph() {
    if (!session_ || !session_->hasModel()) {
        Q_EMIT failed(tr("Open a model and run a prompt first."));
        return;
    }
    const QString prompt = session_->result().settings.prompt;
    if (prompt.isEmpty()) {
        Q_EMIT failed(tr("Run a prompt first: the graph is computed for the current prompt."));
        return;
    }
    std::vector<AttributionTranscoder> tcs;
    for (const AnalysisSae& s : session_->saes()) {
        const SaeConfig& c = s.sae->config();
        if (c.hookName.find("ln2.hook_normalized") != std::string::npos && c.hookNameOut.find("hook_mlp_out") != std::string::npos)
            tcs.push_back({s.id, s.sae});
    }
    if (tcs.empty()) {
        Q_EMIT failed(tr("No transcoders attached: an attribution graph needs transcoders (ln2.hook_normalized -> hook_mlp_out)."));
        return;
    }
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    cancelFlag_ = cancel;
    compute_->setEnabled(false);
    cancel_->setVisible(true);
    progress_->setVisible(true);
    progress_->setRange(0, 0);
    QPointer<GraphView> self(this);
    auto finish = [self, cancel] {
        if (!self || self->cancelFlag_ != cancel) return;
        self->compute_->setEnabled(true);
        self->cancel_->setVisible(false);
        self->progress_->setVisible(false);
    };
    // A failure comes through the session's failed(); the buttons must come back either way.
    auto conn = std::make_shared<QMetaObject::Connection>();
    *conn = connect(session_, &SessionController::failed, this, [finish, conn] {
        finish();
        QObject::disconnect(*conn);
    });
    const std::string promptText = prompt.toStdString();
    const QString scan = session_->isDemoModel() ? QStringLiteral("demo") : session_->modelName();
    session_->runOnWorker(this, [self, tcs, cancel, promptText, scan, finish, conn](const Transformer& model,
                                                                                    const Tokenizer& tok) -> std::function<void()> {
        const std::vector<int> ids = tok.encodePrompt(promptText);
        std::vector<long> tokens(ids.begin(), ids.end());
        AttributionOptions o;
        o.progress = [self, cancel](long done, long total) {
            QMetaObject::invokeMethod(QCoreApplication::instance(), [self, done, total] {
                if (!self) return;
                self->progress_->setRange(0, static_cast<int>(total));
                self->progress_->setValue(static_cast<int>(done));
            });
            return !cancel->load();
        };
        auto g = std::make_shared<AttributionGraph>(computeAttribution(model, tcs, tokens, o));
        g->scan = scan.toStdString();
        g->prompt = promptText;
        g->slug = "circuitscope-attribution";
        for (long t : tokens) g->tokenTexts.push_back(tok.tokenText(static_cast<int>(t)));
        for (GraphNode& n : g->nodes) {
            if (n.kind == NodeKind::Logit) n.label = tok.tokenText(static_cast<int>(n.feature));
            else if (n.kind == NodeKind::Embedding) n.label = g->tokenTexts[static_cast<size_t>(n.position)];
        }
        return [self, g, finish, conn] {
            QObject::disconnect(*conn);
            finish();
            if (!self) return;
            // Store labels are read here: the store belongs to the GUI thread.
            for (GraphNode& n : g->nodes)
                if (n.kind == NodeKind::Feature && n.layer >= 0 && n.layer < static_cast<int>(g->saeIds.size())) {
                    const QString label = self->session_->featureLabel(g->saeIds[static_cast<size_t>(n.layer)], n.feature);
                    if (!label.isEmpty()) n.label = label.toStdString();
                }
            self->setFullGraph(std::move(*g));
            Q_EMIT self->graphComputed();
        };
    });
}

}  // namespace cs::ui
