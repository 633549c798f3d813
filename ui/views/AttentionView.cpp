#include "ui/views/AttentionView.h"

#include "ui/Theme.h"
#include "ui/views/HeatmapPlot.h"
#include "ui/views/PlainCellDelegate.h"
#include "ui/views/ResultTable.h"
#include "ui/views/TokenLabel.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollArea>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace cs::ui {

namespace {
constexpr int kTopAttended = 8;
constexpr int kThumbLabel = 22;  // room for the layer / head numbers
constexpr int kThumbMaxPixels = 80;

// The colour map's two ends blended in 256 steps (as the heatmap's gradient does): looked up per
// pixel, since a thumbnail grid is every head's full pattern, tens of thousands of pixels a run.
std::array<QRgb, 256> heatTable(const ViewColors& c) {
    std::array<QRgb, 256> table{};
    for (int i = 0; i < 256; ++i) {
        auto mix = [i](int a, int b) { return a + (b - a) * i / 255; };
        table[static_cast<size_t>(i)] = qRgb(mix(c.heatLow.red(), c.heatHigh.red()), mix(c.heatLow.green(), c.heatHigh.green()),
                                             mix(c.heatLow.blue(), c.heatHigh.blue()));
    }
    return table;
}

QRgb heatColor(const std::array<QRgb, 256>& table, float w) {
    return table[static_cast<size_t>(std::clamp(w, 0.0f, 1.0f) * 255.0f + 0.5f)];
}
}  // namespace

AttentionView::AttentionView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    setObjectName("attentionView");
    auto* split = new QSplitter(Qt::Horizontal, this);
    auto* scroll = new QScrollArea(split);
    thumbs_ = new AttentionThumbnails(session, scroll);
    scroll->setWidget(thumbs_);
    scroll->setWidgetResizable(false);
    auto* centre = new QWidget(split);
    auto* cl = new QVBoxLayout(centre);
    cl->setContentsMargins(0, 0, 0, 0);
    title_ = new QLabel(centre);
    plot_ = new HeatmapPlot(centre);
    plot_->setObjectName("attentionPlot");
    plot_->setRowsTopDown(true);
    plot_->setScaleLabel(tr("attention weight"));
    cl->addWidget(title_);
    cl->addWidget(plot_, 1);
    top_ = new ResultTable(0, 2, split);
    top_->setObjectName("attentionTop");
    top_->setHorizontalHeaderLabels({tr("attends to"), tr("weight")});
    top_->horizontalHeader()->setStretchLastSection(true);
    top_->verticalHeader()->setVisible(false);
    top_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    top_->setItemDelegate(new PlainCellDelegate(top_));
    split->addWidget(scroll);
    split->addWidget(centre);
    split->addWidget(top_);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 600, 200});
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(split);

    connect(session_, &SessionController::shownAnalysisChanged, this, [this] { takeShown(); });
    connect(session_, &SessionController::modelLoaded, this, [this] { takeShown(); });
    connect(session_, &SessionController::selectionChanged, this, [this](const Selection& s) {
        if (s.layer != shownLayer_ || s.head != shownHead_) rebuild();
        else if (s.position != followed_) followSelection();
    });
    connect(plot_, &HeatmapPlot::cellHovered, this, [this](int key, int query, const QPoint& global) {
        QToolTip::showText(global, hoverText(key, query), plot_);
    });
    connect(plot_, &HeatmapPlot::cellClicked, this, [this](int, int query) { session_->selectPosition(query); });
    takeShown();  // a view made after a run (a headless export) starts from it
}

AttentionView::~AttentionView() { ++*request_; }

// A stage without attention (the tokens, while the model runs) leaves the picture as it was: it
// stays drawn from the analysis that had it, until the next one with attention arrives.
void AttentionView::takeShown() {
    const auto& a = session_->shownAnalysis();
    if (a && !a->hasAttention()) {
        if (session_->selection().position != followed_) followSelection();
        return;
    }
    if (a && shown_ && a->attention == shown_->attention) {  // a later stage of the same run
        shown_ = a;
        if (session_->selection().position != followed_) followSelection();
        return;
    }
    shown_ = a;
    rebuild();
}

void AttentionView::refreshColors() {
    thumbs_->refreshColors();
    rebuild();
}

QString AttentionView::hoverText(int key, int query) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || !pattern_ || query >= a->length() || key >= a->length()) return {};
    return tr("L%1 H%2: %3 [%4] \u2192 %5 [%6]: %7")
        .arg(shownLayer_)
        .arg(shownHead_)
        .arg(tokenLabel(a->texts[query]))
        .arg(query)
        .arg(tokenLabel(a->texts[key]))
        .arg(key)
        .arg(pattern_.weight(query, key), 0, 'f', 4);
}

void AttentionView::rebuild() {
    const PromptAnalysis* a = shown_.get();
    const Selection& s = session_->selection();
    shownLayer_ = s.layer;
    shownHead_ = s.head;
    pattern_ = HeadPattern();
    if (a && a->hasAttention()) {
        pattern_ = a->attention->held(s.layer, s.head);
        if (!pattern_) requestHead(s.layer, s.head);
    }
    draw();
}

void AttentionView::requestHead(int layer, int head) {
    const std::shared_ptr<const AttentionPatterns> attention = shown_->attention;
    const int ticket = ++*request_;
    session_->runOnWorker(this, [this, attention, layer, head, ticket, request = request_](const Transformer&, const Tokenizer&)
                                    -> std::function<void()> {
        if (*request != ticket) return {};  // another head was picked meanwhile
        HeadPattern p = attention->head(layer, head);
        return [this, attention, layer, head, p] {
            if (!shown_ || shown_->attention != attention || layer != shownLayer_ || head != shownHead_) return;
            pattern_ = p;
            draw();
        };
    });
}

void AttentionView::draw() {
    const PromptAnalysis* a = shown_.get();
    if (!a || !a->hasAttention()) {
        followed_ = -1;
        plot_->setMatrix(0, 0, [](int, int) { return 0.0; }, 0, 1);
        plot_->setColumnLabels({}, tr("key"));  // nothing of another model's prompt stays
        plot_->setRowLabels({}, tr("query"));
        title_->setText(tr("No run yet"));
        top_->setRowCount(0);
        plot_->replot();
        return;
    }
    const int T = a->length(), L = shownLayer_, H = shownHead_;
    const HeadPattern p = pattern_;
    // Until a head computed on demand arrives its cells are NaN (transparent).
    if (p) plot_->setMatrix(T, T, [&](int key, int query) { return p.weight(query, key); }, 0, 1);
    else if (plot_->columns() == T && plot_->rows() == T) plot_->clearValues();
    else plot_->setMatrix(T, T, [](int, int) { return std::nan(""); }, 0, 1);
    QStringList labels;
    for (int t = 0; t < T; ++t) labels << shortTokenLabel(a->texts[t]);
    plot_->setColumnLabels(labels, tr("key"));
    plot_->setRowLabels(labels, tr("query"));
    title_->setText(p ? tr("<b>Layer %1, head %2</b> &nbsp; %3 tokens").arg(L).arg(H).arg(T)
                      : tr("<b>Layer %1, head %2</b> &nbsp; %3 tokens &nbsp; <i>computing\u2026</i>").arg(L).arg(H).arg(T));
    followSelection();
}

bool AttentionView::isFilled() const { return !shown_ || !shown_->hasAttention() || pattern_; }

void AttentionView::followSelection() {
    const PromptAnalysis* a = shown_.get();
    int q = session_->selection().position;
    followed_ = q;
    if (!a || q >= a->length()) q = -1;  // a position of the next run's tokens, not yet drawn here
    plot_->highlightRow(q);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    top_->setRowCount(0);
    if (!a || !pattern_ || q < 0 || q >= a->length()) {
        top_->layoutNow();
        return;
    }
    const float* row = pattern_.row(q);
    std::vector<int> keys(q + 1);
    std::iota(keys.begin(), keys.end(), 0);
    std::sort(keys.begin(), keys.end(), [&](int x, int y) { return row[x] > row[y]; });
    keys.resize(std::min<size_t>(keys.size(), kTopAttended));
    top_->setRowCount(static_cast<int>(keys.size()));
    for (int i = 0; i < static_cast<int>(keys.size()); ++i) {
        top_->setItem(i, 0, new QTableWidgetItem(QStringLiteral("%1 [%2]").arg(tokenLabel(a->texts[keys[i]])).arg(keys[i])));
        auto* w = new QTableWidgetItem(QString::number(row[keys[i]], 'f', 3));
        w->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        top_->setItem(i, 1, w);
    }
    top_->layoutNow();
}

int AttentionView::selectedRow() const { return plot_->highlightedRow(); }

QString AttentionView::figureName() const {
    return QStringLiteral("attention-L%1H%2").arg(session_->selection().layer).arg(session_->selection().head);
}

QSize AttentionView::figureSize() const {
    const PromptAnalysis* a = shown_.get();
    if (!a) return {};
    const int side = std::clamp(a->length() * 18, 240, 900);
    return {side + 170, side + 110};
}

// A figure shows the picked head even when it is still on its way from the worker.
void AttentionView::paintFigure(QCPPainter& painter, const QSize& size) {
    if (!isFilled()) {
        pattern_ = shown_->attention->head(shownLayer_, shownHead_);
        draw();
    }
    plot_->renderFigure(painter, size,
                        tr("Attention, layer %1, head %2 (%3)").arg(shownLayer_).arg(shownHead_).arg(session_->modelName()));
}

AttentionThumbnails::AttentionThumbnails(SessionController* session, QWidget* parent)
    : QWidget(parent), session_(session) {
    setObjectName("attentionThumbnails");
    setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel: nothing to paint beneath
    connect(session_, &SessionController::shownAnalysisChanged, this, [this] { takeShown(); });
    connect(session_, &SessionController::modelLoaded, this, [this] { takeShown(); });
    connect(session_, &SessionController::selectionChanged, this, [this] { update(); });
    takeShown();
}

QSize AttentionThumbnails::sizeHint() const {
    const PromptAnalysis* a = shown_.get();
    if (!a) return {200, 200};
    return {kThumbLabel + a->heads * (cell_ + 4), kThumbLabel + a->layers * (cell_ + 4)};
}

QRect AttentionThumbnails::cellRect(int layer, int head) const {
    return {kThumbLabel + head * (cell_ + 4), kThumbLabel + layer * (cell_ + 4), cell_, cell_};
}

// As AttentionView::takeShown: only an analysis with other attention patterns redraws the images.
void AttentionThumbnails::takeShown() {
    const auto& a = session_->shownAnalysis();
    if (a && !a->hasAttention()) return;
    const bool same = a && shown_ && a->attention == shown_->attention;
    shown_ = a;
    if (!same) rebuild();
}

void AttentionThumbnails::rebuild() {
    images_.clear();
    const PromptAnalysis* a = shown_.get();
    if (a && a->hasAttention()) {
        // The analysis keeps every head max-pooled to at most 80 x 80 (a thumbnail needs no more
        // pixels than it has on screen; pooling by max keeps a sharp spike visible).
        const int side = a->attention->summarySide();
        const std::array<QRgb, 256> table = heatTable(viewColors());
        for (int l = 0; l < a->layers; ++l)
            for (int h = 0; h < a->heads; ++h) {
                const float* summary = a->attention->summary(l, h);  // [y][x], side x side
                QImage img(side, side, QImage::Format_RGB32);
                for (int y = 0; y < side; ++y) {
                    auto* line = reinterpret_cast<QRgb*>(img.scanLine(y));
                    for (int x = 0; x < side; ++x) line[x] = heatColor(table, summary[static_cast<size_t>(y) * side + x]);
                }
                images_.push_back(img);
            }
    }
    resize(sizeHint());
    update();
}

void AttentionThumbnails::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), palette().window());
    const PromptAnalysis* a = shown_.get();
    if (!a || images_.empty()) return;
    p.setPen(c.muted);
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * 0.8);
    p.setFont(f);
    for (int h = 0; h < a->heads; ++h)
        p.drawText(QRect(cellRect(0, h).left(), 0, cell_, kThumbLabel), Qt::AlignCenter, QString("H%1").arg(h));
    for (int l = 0; l < a->layers; ++l)
        p.drawText(QRect(0, cellRect(l, 0).top(), kThumbLabel, cell_), Qt::AlignCenter, QString("L%1").arg(l));
    const Selection& s = session_->selection();
    for (int l = 0; l < a->layers; ++l)
        for (int h = 0; h < a->heads; ++h) {
            const QRect r = cellRect(l, h);
            p.drawImage(r, images_[static_cast<size_t>(l * a->heads + h)]);
            const bool sel = l == s.layer && h == s.head;
            p.setPen(sel ? QPen(c.selection, 2) : QPen(c.grid, 1));
            p.drawRect(r.adjusted(-1, -1, 0, 0));
        }
}

void AttentionThumbnails::mousePressEvent(QMouseEvent* e) {
    const PromptAnalysis* a = shown_.get();
    if (!a) return;
    for (int l = 0; l < a->layers; ++l)
        for (int h = 0; h < a->heads; ++h)
            if (cellRect(l, h).contains(e->position().toPoint())) {
                session_->select(session_->selection().position, l, h);
                return;
            }
}

}  // namespace cs::ui
