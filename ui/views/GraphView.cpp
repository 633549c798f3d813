#include "ui/views/GraphView.h"

#include "attribution/Attribution.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "attribution/Subgraph.h"
#include "model/Transformer.h"
#include "sae/Sae.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/AttentionEdgePanel.h"
#include "ui/views/DashboardView.h"
#include "ui/views/GraphCanvas.h"
#include "ui/views/GraphInterventionPanel.h"
#include "ui/views/SubgraphCanvas.h"

#include <QCoreApplication>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QShortcut>
#include <QSplitter>
#include <QTabWidget>
#include <QThreadPool>
#include <QToolBar>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>

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
    canvas_->setContextMenuPolicy(Qt::CustomContextMenu);
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
    save_ = new QPushButton(tr("Save..."));
    save_->setToolTip(tr("Save the graph with its pins, supernodes and focused node"));

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
    bar->addWidget(save_);

    // The subgraph pane under the canvas, with its own small tool bar.
    subgraph_ = new SubgraphCanvas;
    subgraph_->setObjectName("graphSubgraph");
    subgraph_->setContextMenuPolicy(Qt::CustomContextMenu);
    group_ = new QPushButton(tr("Group"));
    group_->setObjectName("graphGroup");
    group_->setToolTip(tr("Group the selected boxes, else every pinned node not in a supernode, into a supernode (G)"));
    ungroup_ = new QPushButton(tr("Ungroup"));
    ungroup_->setToolTip(tr("Dissolve the selected supernodes; their members stay pinned (Shift+G)"));
    rename_ = new QPushButton(tr("Rename"));
    rename_->setToolTip(tr("Rename the selected supernode (F2, or double-click it)"));
    auto* exportSub = new QPushButton(tr("Export..."));
    exportSub->setToolTip(tr("Export the subgraph as SVG, PDF or PNG"));
    auto* subBar = new QToolBar;
    subBar->setObjectName("graphSubgraphBar");
    auto* subTitle = new QLabel(tr("<b>Subgraph</b> "));
    subTitle->setToolTip(tr("The pinned nodes; a supernode's links are the sums of its members' links"));
    subBar->addWidget(subTitle);
    subBar->addWidget(group_);
    subBar->addWidget(ungroup_);
    subBar->addWidget(rename_);
    subBar->addWidget(exportSub);
    auto* lower = new QWidget;
    auto* lowerLayout = new QVBoxLayout(lower);
    lowerLayout->setContentsMargins(0, 0, 0, 0);
    lowerLayout->setSpacing(0);
    lowerLayout->addWidget(subBar);
    lowerLayout->addWidget(subgraph_, 1);
    canvasSplit_ = new QSplitter(Qt::Vertical);
    canvasSplit_->addWidget(canvas_);
    canvasSplit_->addWidget(lower);
    canvasSplit_->setStretchFactor(0, 3);
    canvasSplit_->setStretchFactor(1, 2);
    canvasSplit_->setChildrenCollapsible(true);
    canvasSplit_->setSizes({600, 260});

    // Side panel tabs.
    focusInfo_ = new QLabel(tr("Click a node to see its inputs and outputs; Ctrl+click pins it."));
    focusInfo_->setWordWrap(true);
    connections_ = new QTreeWidget;
    connections_->setObjectName("graphConnections");
    connections_->setColumnCount(2);
    connections_->setHeaderLabels({tr("Node"), tr("Weight")});
    connections_->header()->setStretchLastSection(false);
    connections_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    connections_->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    connections_->setMouseTracking(true);  // hovering a row marks the node's feature on the canvas
    connections_->viewport()->installEventFilter(this);
    auto* connPage = new QWidget;
    auto* connLayout = new QVBoxLayout(connPage);
    connLayout->setContentsMargins(2, 2, 2, 2);
    connLayout->addWidget(focusInfo_);
    connLayout->addWidget(connections_, 1);

    dashboardPage_ = new QWidget;
    auto* dashLayout = new QVBoxLayout(dashboardPage_);
    dashLayout->setContentsMargins(0, 0, 0, 0);
    dashboardNote_ = new QLabel;
    dashboardNote_->setObjectName("graphDashboardNote");
    dashboardNote_->setWordWrap(true);
    dashboardNote_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    dashboardNote_->setMargin(4);
    dashLayout->addWidget(dashboardNote_, 1);

    auto* suggestPage = new QWidget;
    auto* suggestLayout = new QVBoxLayout(suggestPage);
    suggestLayout->setContentsMargins(2, 2, 2, 2);
    suggestionInfo_ = new QLabel;
    suggestionInfo_->setWordWrap(true);
    suggestionList_ = new QTreeWidget;
    suggestionList_->setObjectName("graphSuggestions");
    suggestionList_->setColumnCount(3);
    suggestionList_->setHeaderLabels({tr("Proposed supernode"), tr("Sim."), QString()});
    suggestionList_->headerItem()->setToolTip(1, tr("Mean cosine similarity of the members' edge profiles"));
    suggestionList_->setRootIsDecorated(false);
    suggestionList_->header()->setStretchLastSection(false);
    suggestionList_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    for (int col = 1; col < 3; ++col) suggestionList_->header()->setSectionResizeMode(col, QHeaderView::ResizeToContents);
    suggestLayout->addWidget(suggestionInfo_);
    suggestLayout->addWidget(suggestionList_, 1);

    side_ = new QTabWidget;
    side_->setObjectName("graphSidePanel");
    side_->setDocumentMode(true);
    side_->addTab(connPage, tr("Connections"));
    side_->addTab(dashboardPage_, tr("Dashboard"));
    side_->addTab(suggestPage, tr("Suggestions"));
    intervene_ = new GraphInterventionPanel(session_);
    intervene_->setObjectName("graphIntervene");
    side_->addTab(intervene_, tr("Intervene"));
    attention_ = new AttentionEdgePanel(session_);
    attention_->setObjectName("graphAttention");
    side_->addTab(attention_, tr("Attention"));
    scores_ = new QLabel;
    scores_->setObjectName("graphScores");
    scores_->setWordWrap(true);
    auto* side = new QWidget;
    auto* sideLayout = new QVBoxLayout(side);
    sideLayout->setContentsMargins(0, 0, 0, 0);
    sideLayout->addWidget(side_, 1);
    sideLayout->addWidget(scores_);

    auto* split = new QSplitter;
    split->addWidget(canvasSplit_);
    split->addWidget(side);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    // Wide enough to read a node's label beside its weight; the canvas takes the rest.
    side->setMinimumWidth(200);
    split->setChildrenCollapsible(true);
    split->setSizes({600, 300});  // room for the tabs' names and a dashboard
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(bar);
    layout->addWidget(split, 1);

    // Shortcuts for the whole dock; text fields keep their letters (they claim them first).
    auto shortcut = [this](const QKeySequence& keys, auto slot) {
        auto* s = new QShortcut(keys, this);
        s->setContext(Qt::WidgetWithChildrenShortcut);
        connect(s, &QShortcut::activated, this, slot);
    };
    shortcut(QKeySequence(Qt::Key_G), [this] { groupSelection(); });
    shortcut(QKeySequence(Qt::SHIFT | Qt::Key_G), [this] { ungroupSelection(); });
    shortcut(QKeySequence(Qt::Key_F2), [this] { renameSelected(); });

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
    connect(save_, &QPushButton::clicked, this, &GraphView::chooseSave);
    connect(group_, &QPushButton::clicked, this, [this] { groupSelection(); });
    connect(ungroup_, &QPushButton::clicked, this, [this] { ungroupSelection(); });
    connect(rename_, &QPushButton::clicked, this, [this] { renameSelected(); });
    connect(exportSub, &QPushButton::clicked, this, &GraphView::exportSubgraphRequested);
    connect(canvas_, &GraphCanvas::nodeClicked, this, [this] {
        clickedId_ = canvas_->graph().clickedId;
        updateConnections();
        updateDashboard();
        updateActions();
        updateInterventionNodes();
        updateAttentionEdge();
    });
    connect(subgraph_, &SubgraphCanvas::selectionChanged, this, &GraphView::updateInterventionNodes);
    connect(attention_, &AttentionEdgePanel::nodeChosen, this, [this](const QString& id) {
        const int n = canvas_->graph().findNode(id.toStdString());
        if (n >= 0) canvas_->focusNode(n);
    });
    connect(canvas_, &GraphCanvas::pinsChanged, this, &GraphView::canvasPinsChanged);
    connect(canvas_, &GraphCanvas::supernodesChanged, this, &GraphView::canvasSupernodesChanged);
    connect(canvas_, &QWidget::customContextMenuRequested, this, &GraphView::canvasMenu);
    connect(subgraph_, &QWidget::customContextMenuRequested, this, &GraphView::subgraphMenu);
    connect(subgraph_, &SubgraphCanvas::selectionChanged, this, &GraphView::updateActions);
    auto focusSingle = [this](int item) {
        const SubgraphNode& n = subgraph_->subgraph().nodes[static_cast<size_t>(item)];
        if (n.supernode < 0) canvas_->focusNode(n.members.front());
    };
    connect(subgraph_, &SubgraphCanvas::itemClicked, this, focusSingle);
    connect(subgraph_, &SubgraphCanvas::itemActivated, this, focusSingle);
    connect(subgraph_, &SubgraphCanvas::renameRequested, this, [this](int k, const QString& label) { renameSupernode(k, label); });
    connect(connections_, &QTreeWidget::itemActivated, this, [this](QTreeWidgetItem* item) {
        const QVariant v = item->data(0, Qt::UserRole);
        if (v.isValid()) canvas_->focusNode(v.toInt());
    });
    connect(connections_, &QTreeWidget::itemEntered, this, [this](QTreeWidgetItem* item) {
        const QVariant v = item->data(0, Qt::UserRole);
        canvas_->setHoveredNode(v.isValid() ? v.toInt() : -1);
    });
    side_->setCurrentIndex(std::clamp(QSettings().value("graph/sideTab", 0).toInt(), 0, side_->count() - 1));
    connect(side_, &QTabWidget::currentChanged, this, [this](int tab) {
        QSettings().setValue("graph/sideTab", tab);  // the tab one works in comes back next time
        updateDashboard();
        if (suggestionsStale_) updateSuggestions();
    });
    connect(suggestionList_, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* item) {
        // The suggestion's members are marked on the canvas as search matches are.
        const int row = item ? suggestionList_->indexOfTopLevelItem(item) : -1;
        if (row >= 0 && row < static_cast<int>(suggestions_.size())) canvas_->setHighlighted(suggestions_[static_cast<size_t>(row)].members);
    });
    updateScores();
    updateDashboard();
    updateActions();
}

bool GraphView::eventFilter(QObject* watched, QEvent* e) {
    if (watched == connections_->viewport() && e->type() == QEvent::Leave) canvas_->setHoveredNode(-1);
    return QWidget::eventFilter(watched, e);
}

void GraphView::setFullGraph(AttributionGraph g, bool prune) {
    pinnedIds_ = g.pinnedIds;
    supernodes_ = g.supernodes;
    clickedId_ = g.clickedId;
    full_ = std::make_shared<const AttributionGraph>(std::move(g));
    suggestionsStale_ = true;
    setModified(false);
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
    // The viewer's state carries over to the new pruning where its nodes survive. The unpruned
    // graph is copied where the pruning runs: a million links take a while to copy too.
    auto withState = [full = full_, clicked = clickedId_, pins = pinnedIds_, groups = supernodes_] {
        AttributionGraph g = *full;
        g.clickedId = clicked;
        g.pinnedIds = pins;
        g.supernodes = groups;
        return g;
    };
    const float node = static_cast<float>(nodeBox_->value());
    const float edge = static_cast<float>(edgeBox_->value());
    const int ticket = ++pruneTicket_;
    if (full_->links.size() < kSyncPruneLinks) {
        try {
            showGraph(pruneGraph(withState(), node, edge));
        } catch (const std::exception& e) {
            Q_EMIT failed(QString::fromUtf8(e.what()).section('\n', 0, 0));
        }
        return;
    }
    QPointer<GraphView> self(this);
    QThreadPool::globalInstance()->start([self, withState, node, edge, ticket] {
        std::shared_ptr<AttributionGraph> pruned;
        QString error;
        try {
            pruned = std::make_shared<AttributionGraph>(pruneGraph(withState(), node, edge));
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
    // Supernodes whole, members a threshold hid included: the canvas draws those it has, and a
    // looser threshold brings the rest back into the same groups.
    pruned.supernodes = supernodes_;
    canvas_->setGraph(std::move(pruned));
    suggestionsStale_ = true;
    updateSearch();
    updateConnections();
    updateScores();
    updateSubgraph();
    // After the subgraph pane: its boxes must be this graph's. The focus a file or a re-pruning
    // restores emits no click, so the panels that follow it are filled here.
    updateInterventionNodes();
    updateAttentionEdge();
    updateDashboard();
    updateSuggestions();
    Q_EMIT graphShown();
}

void GraphView::setModified(bool modified) {
    if (modified == modified_) return;
    modified_ = modified;
    save_->setText(modified ? tr("Save*...") : tr("Save..."));
    Q_EMIT modifiedChanged(modified);
}

void GraphView::canvasPinsChanged() {
    // Pins the current pruning hides stay pinned, after the ones shown.
    std::vector<std::string> pins = canvas_->graph().pinnedIds;
    for (const std::string& id : pinnedIds_)
        if (canvas_->graph().findNode(id) < 0) pins.push_back(id);
    pinnedIds_ = std::move(pins);
    setModified(true);
    updateScores();
    updateSubgraph();
}

void GraphView::canvasSupernodesChanged() {
    supernodes_ = canvas_->supernodes();
    setModified(true);
    suggestionsStale_ = true;
    updateSubgraph();
    updateSuggestions();
}

void GraphView::updateSubgraph() {
    const AttributionGraph& g = canvas_->graph();
    subgraph_->setSubgraph(g, buildSubgraph(g, canvas_->pinnedNodes(), canvas_->supernodes()));
    updateActions();
}

std::vector<int> GraphView::groupCandidates() const {
    std::vector<int> nodes;
    const std::vector<int> selected = subgraph_->selection();
    if (!selected.empty()) {
        for (int item : selected) {
            const auto& members = subgraph_->subgraph().nodes[static_cast<size_t>(item)].members;
            nodes.insert(nodes.end(), members.begin(), members.end());
        }
        return nodes;
    }
    for (int n : canvas_->pinnedNodes())
        if (canvas_->supernodeOf(n) < 0) nodes.push_back(n);
    return nodes;
}

std::vector<int> GraphView::selectedSupernodes() const {
    std::vector<int> out;
    for (int item : subgraph_->selection())
        if (const int s = subgraph_->subgraph().nodes[static_cast<size_t>(item)].supernode; s >= 0) out.push_back(s);
    return out;
}

void GraphView::updateActions() {
    group_->setEnabled(groupCandidates().size() >= 2);
    ungroup_->setEnabled(!selectedSupernodes().empty());
    rename_->setEnabled(!selectedSupernodes().empty() || canvas_->supernodeOf(canvas_->focusedNode()) >= 0);
}

int GraphView::groupSelection() {
    const std::vector<int> nodes = groupCandidates();
    if (nodes.size() < 2) return -1;
    const int k = canvas_->groupNodes(nodes, proposeSupernodeLabel(canvas_->graph(), nodes));
    if (k >= 0) startRename(k);  // the proposed label is a start; the user names the role
    return k;
}

bool GraphView::ungroupSelection() {
    std::vector<int> ks = selectedSupernodes();
    // From the last, so the indices still to go stay valid.
    std::sort(ks.rbegin(), ks.rend());
    for (int k : ks) canvas_->ungroup(k);
    return !ks.empty();
}

bool GraphView::renameSelected() {
    const std::vector<int> ks = selectedSupernodes();
    return startRename(!ks.empty() ? ks.front() : canvas_->supernodeOf(canvas_->focusedNode()));
}

bool GraphView::startRename(int supernode) {
    if (supernode < 0) return false;
    const auto& nodes = subgraph_->subgraph().nodes;
    for (size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].supernode != supernode) continue;
        // A collapsed pane would hide the editor: give it room first.
        const QList<int> sizes = canvasSplit_->sizes();
        if (sizes.size() == 2 && sizes[1] < 80) canvasSplit_->setSizes({std::max(1, sizes[0] + sizes[1] - 160), 160});
        subgraph_->setSelection({static_cast<int>(i)});
        return subgraph_->editLabel(static_cast<int>(i));
    }
    return false;
}

bool GraphView::renameSupernode(int index, const QString& label) {
    return canvas_->renameSupernode(index, label.trimmed().toStdString());
}

void GraphView::canvasMenu(const QPoint& at) {
    const int n = canvas_->nodeAt(at);
    QMenu menu(this);
    if (n >= 0) {
        menu.addAction(tr("Focus"), this, [this, n] { canvas_->focusNode(n); });
        menu.addAction(canvas_->isPinned(n) ? tr("Unpin") : tr("Pin"), this, [this, n] { canvas_->togglePin(n); });
        if (const int s = canvas_->supernodeOf(n); s >= 0) {
            const QString name = QString::fromStdString(canvas_->supernodes()[static_cast<size_t>(s)].label);
            menu.addAction(tr("Rename \"%1\"...").arg(name), this, [this, s] { startRename(s); });
            menu.addAction(tr("Ungroup \"%1\"").arg(name), this, [this, s] { canvas_->ungroup(s); });
        }
        menu.addSeparator();
    }
    QAction* group = menu.addAction(subgraph_->selection().empty() ? tr("Group Pinned Nodes") : tr("Group Selected Boxes"), this,
                                    [this] { groupSelection(); });
    group->setShortcut(QKeySequence(Qt::Key_G));
    group->setEnabled(groupCandidates().size() >= 2);
    menu.addAction(tr("Unpin All"), canvas_, &GraphCanvas::unpinAll)->setEnabled(!canvas_->pinnedNodes().empty());
    menu.exec(canvas_->mapToGlobal(at));
}

void GraphView::subgraphMenu(const QPoint& at) {
    QMenu menu(this);
    QAction* group = menu.addAction(tr("Group"), this, [this] { groupSelection(); });
    group->setShortcut(QKeySequence(Qt::Key_G));
    group->setEnabled(groupCandidates().size() >= 2);
    QAction* ungroup = menu.addAction(tr("Ungroup"), this, [this] { ungroupSelection(); });
    ungroup->setShortcut(QKeySequence(Qt::SHIFT | Qt::Key_G));
    ungroup->setEnabled(!selectedSupernodes().empty());
    QAction* rename = menu.addAction(tr("Rename..."), this, [this] { renameSelected(); });
    rename->setShortcut(QKeySequence(Qt::Key_F2));
    rename->setEnabled(!selectedSupernodes().empty());
    const std::vector<int> selected = subgraph_->selection();
    menu.addAction(tr("Unpin"), this, [this, selected] {
        std::vector<int> nodes;
        for (int item : selected) {
            const auto& m = subgraph_->subgraph().nodes[static_cast<size_t>(item)].members;
            nodes.insert(nodes.end(), m.begin(), m.end());
        }
        for (int node : nodes)
            if (canvas_->isPinned(node)) canvas_->togglePin(node);
    })->setEnabled(!selected.empty());
    menu.addSeparator();
    menu.addAction(tr("Export Subgraph..."), this, &GraphView::exportSubgraphRequested)->setEnabled(subgraph_->itemCount() > 0);
    menu.exec(subgraph_->mapToGlobal(at));
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
    canvas_->setHoveredNode(-1);  // the row under the mouse is gone
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

void GraphView::updateDashboard() {
    // Built only while its tab shows: a dashboard reads the store, and clicking through nodes
    // with the Connections tab up should not pay for that.
    if (side_->currentWidget() != dashboardPage_) return;
    const AttributionGraph& g = canvas_->graph();
    const int f = canvas_->focusedNode();
    QString note;
    QString sae;
    long feature = -1;
    if (f < 0) {
        note = tr("Click a feature node to see its dashboard here.");
    } else {
        const GraphNode& n = g.nodes[static_cast<size_t>(f)];
        const QString id = QString::fromStdString(n.id).toHtmlEscaped();
        const QString label = QString::fromStdString(n.label).toHtmlEscaped();
        switch (n.kind) {
        case NodeKind::Error:
            note = tr("<b>%1</b> is an error node: what the replacement (transcoder or SAE) does not reconstruct at layer %2, "
                      "position %3 (norm %4). It has no dashboard; its links show how much of the circuit it carries.")
                       .arg(id)
                       .arg(n.layer)
                       .arg(n.position)
                       .arg(n.activation, 0, 'g', 4);
            break;
        case NodeKind::Embedding:
            note = tr("<b>%1</b> is the embedding of \"%2\" at position %3: the token and position embeddings entering block 0 "
                      "(norm %4). It has no dashboard.")
                       .arg(id, label)
                       .arg(n.position)
                       .arg(n.activation, 0, 'g', 4);
            break;
        case NodeKind::Logit:
            note = tr("<b>%1</b> is the logit of \"%2\" at the last position, minus the mean logit (%3; probability %4). It has "
                      "no dashboard; its inputs are the features that push the model toward this token.")
                       .arg(id, label)
                       .arg(n.activation, 0, 'g', 4)
                       .arg(n.tokenProb, 0, 'g', 3);
            break;
        case NodeKind::Feature:
            if (n.layer < 0 || n.layer >= static_cast<int>(g.saeIds.size()) || g.saeIds[static_cast<size_t>(n.layer)].empty())
                note = tr("<b>%1</b>: the graph names no transcoder for layer %2, so its dashboard cannot be found.").arg(id).arg(n.layer);
            else if (!session_)
                note = tr("<b>%1</b>: dashboards are read through the window's session.").arg(id);
            else {
                sae = QString::fromStdString(g.saeIds[static_cast<size_t>(n.layer)]);
                feature = n.feature;
            }
            break;
        }
    }
    if (dashboard_ && (feature < 0 || dashboard_->saeId() != sae || dashboard_->featureIndex() != feature)) {
        dashboard_->hide();
        dashboard_->deleteLater();  // it may be the sender of what brought us here
        dashboard_ = nullptr;
    }
    dashboardNote_->setVisible(feature < 0);
    dashboardNote_->setText(note);
    if (feature < 0 || dashboard_) return;
    dashboard_ = new DashboardView(session_, sae, feature);
    connect(dashboard_, &DashboardView::openFeature, this, &GraphView::openFeature);
    connect(dashboard_, &DashboardView::steerRequested, this, &GraphView::steerRequested);
    connect(dashboard_, &DashboardView::promptRequested, this, &GraphView::promptRequested);
    connect(dashboard_, &DashboardView::indexRequested, this, &GraphView::indexRequested);
    static_cast<QVBoxLayout*>(dashboardPage_->layout())->addWidget(dashboard_, 1);
    dashboard_->show();  // a layout shows a new child of a visible page only later, queued
}

void GraphView::updateSuggestions() {
    // Clustering is quadratic in the features considered: only while its tab shows.
    if (side_->currentWidget() != suggestionList_->parentWidget()) {
        // Their node indices may not fit the graph shown any more.
        suggestionsStale_ = true;
        suggestions_.clear();
        suggestionList_->clear();
        return;
    }
    suggestionsStale_ = false;
    suggestionList_->clear();
    const AttributionGraph& g = canvas_->graph();
    const SuggestionOptions options;
    suggestions_ = g.nodes.empty() ? std::vector<SupernodeSuggestion>{} : suggestSupernodes(g, options);
    if (g.nodes.empty()) suggestionInfo_->setText(tr("No graph yet."));
    else if (suggestions_.empty())
        suggestionInfo_->setText(tr("No features outside a supernode have inputs and outputs alike enough (similarity %1 or more).")
                                     .arg(options.minSimilarity));
    else
        suggestionInfo_->setText(tr("Features whose inputs and outputs are alike (similarity %1 or more): Group pins them as one "
                                    "supernode; select a row to mark them on the graph.")
                                     .arg(options.minSimilarity));
    for (size_t row = 0; row < suggestions_.size(); ++row) {
        const SupernodeSuggestion& s = suggestions_[row];
        auto* item = new QTreeWidgetItem(suggestionList_, {QStringLiteral("%1 \u00d7%2").arg(QString::fromStdString(s.label)).arg(s.members.size()),
                                                           QString::number(s.score, 'f', 2)});
        QStringList members;
        for (int m : s.members) members << nodeText(g.nodes[static_cast<size_t>(m)]).toHtmlEscaped();
        item->setToolTip(0, members.join(QStringLiteral("<br>")));
        auto* button = new QToolButton;
        button->setText(tr("Group"));
        button->setAutoRaise(false);
        // Queued: accepting rebuilds this list, the button included.
        connect(button, &QToolButton::clicked, this, [this, row] { acceptSuggestion(static_cast<int>(row)); }, Qt::QueuedConnection);
        suggestionList_->setItemWidget(item, 2, button);
    }
}

int GraphView::acceptSuggestion(int row) {
    if (row < 0 || row >= static_cast<int>(suggestions_.size())) return -1;
    const SupernodeSuggestion s = suggestions_[static_cast<size_t>(row)];
    return canvas_->groupNodes(s.members, s.label);
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
    showOpenedGraph(std::move(g));
    return {};
}

void GraphView::openGraphInBackground(const QString& path) {
    // A million-link file takes seconds to parse: read it off the GUI thread, show it here.
    const int ticket = ++openTicket_;
    progress_->setRange(0, 0);
    progress_->show();
    QPointer<GraphView> self(this);
    QThreadPool::globalInstance()->start([self, path, ticket] {
        auto g = std::make_shared<AttributionGraph>();
        QString error;
        try {
            *g = loadGraph(path.toStdString());
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
        QMetaObject::invokeMethod(QCoreApplication::instance(), [self, g, error, ticket] {
            if (!self || ticket != self->openTicket_) return;  // closed, or a newer file was chosen
            self->progress_->hide();
            if (!error.isEmpty()) {
                Q_EMIT self->failed(error);
                return;
            }
            self->showOpenedGraph(std::move(*g));
            Q_EMIT self->graphOpened();
        });
    });
}

void GraphView::showOpenedGraph(AttributionGraph g) {
    {
        const QSignalBlocker a(nodeBox_), b(edgeBox_);
        nodeBox_->setValue(g.nodeThreshold);
        edgeBox_->setValue(g.edgeThreshold);
    }
    setFullGraph(std::move(g), false);
}

QString GraphView::saveGraph(const QString& path) {
    if (canvas_->isEmpty()) return tr("%1: no graph to save").arg(path);
    // What is shown: supernode members this pruning hides are not in the file, and a supernode
    // with none left is not either (as pruneGraph writes a pruned graph).
    AttributionGraph g = canvas_->graph();
    std::vector<Supernode> kept;
    for (Supernode& sn : g.supernodes) {
        std::vector<std::string> members;
        for (const std::string& id : sn.nodeIds)
            if (g.findNode(id) >= 0) members.push_back(id);
        sn.nodeIds = std::move(members);
        if (!sn.nodeIds.empty()) kept.push_back(std::move(sn));
    }
    g.supernodes = std::move(kept);
    try {
        cs::saveGraph(path.toStdString(), g);
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what()).section('\n', 0, 0);
    }
    setModified(false);
    return {};
}

void GraphView::chooseOpen() {
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open an attribution graph"), settings.value("graphDir").toString(),
                                                      tr("Graph JSON (*.json)"));
    if (path.isEmpty()) return;
    settings.setValue("graphDir", QFileInfo(path).absolutePath());
    openGraphInBackground(path);
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
        const std::vector<int> ids = promptTokenIds(tok, promptText, static_cast<int>(model.config().vocabSize));
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

void GraphView::updateInterventionNodes() {
    // What to change: the boxes selected in the subgraph pane (a supernode stands for all its
    // members), else the focused node.
    const AttributionGraph& g = canvas_->graph();
    std::vector<int> chosen;
    const auto& boxes = subgraph_->subgraph().nodes;
    for (int box : subgraph_->selection())
        if (box >= 0 && box < static_cast<int>(boxes.size()))
            for (int m : boxes[static_cast<size_t>(box)].members) chosen.push_back(m);
    if (chosen.empty() && canvas_->focusedNode() >= 0) chosen.push_back(canvas_->focusedNode());
    std::vector<GraphNode> nodes;
    for (int n : chosen)
        if (n >= 0 && n < static_cast<int>(g.nodes.size())) nodes.push_back(g.nodes[static_cast<size_t>(n)]);
    std::vector<long> targets;
    for (const GraphNode& n : g.nodes)
        if (n.kind == NodeKind::Logit) targets.push_back(n.feature);
    intervene_->setNodes(std::move(nodes), g.tokens, std::move(targets), g.saeIds);
}

void GraphView::updateAttentionEdge() {
    // The focused node's own position as query and key, at its layer: the attention that feeds it.
    const int n = canvas_->focusedNode();
    if (n < 0) return;
    const GraphNode& node = canvas_->graph().nodes[static_cast<size_t>(n)];
    const int layers = std::max(1, canvas_->graph().layers);
    const int layer = std::clamp(node.layer, 0, layers - 1);
    attention_->setTokens(canvas_->graph().tokens);
    attention_->setEdge(layer, attention_->edge().head, node.position, node.position);
}

}  // namespace cs::ui
