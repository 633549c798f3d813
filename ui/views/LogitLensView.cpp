#include "ui/views/LogitLensView.h"

#include "ui/views/HeatmapPlot.h"
#include "ui/views/PlainCellDelegate.h"
#include "ui/views/ResultTable.h"
#include "ui/views/TokenLabel.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QScrollBar>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>

namespace cs::ui {

namespace {
constexpr int kTableTop = 5;
// The row labels ("resid 3"), the colour scale and its title beside the cells.
constexpr int kLabelsAndScaleWidth = 170;
}

LogitLensView::LogitLensView(SessionController* session, QWidget* parent) : QWidget(parent), session_(session) {
    setObjectName("logitLensView");
    auto* split = new QSplitter(Qt::Vertical, this);
    auto* top = new QWidget(split);
    auto* tl = new QVBoxLayout(top);
    tl->setContentsMargins(0, 0, 0, 0);
    title_ = new QLabel(top);
    auto* trackRow = new QHBoxLayout;
    trackRow->setContentsMargins(0, 0, 0, 0);
    track_ = new QLineEdit(top);
    track_->setObjectName("lensTrackToken");
    track_->setPlaceholderText(tr("actual next token (type a token, a piece or #id and press Enter)"));
    track_->setClearButtonEnabled(true);
    track_->setToolTip(tr("The token whose probability the heatmap shows at every layer and position.\n"
                          "Double-click a prediction in the table below to track it; clear to go back."));
    trackError_ = new QLabel(top);
    trackError_->setObjectName("lensTrackError");
    trackError_->setStyleSheet("color: #c0392b");
    trackRow->addWidget(new QLabel(tr("Track:"), top));
    trackRow->addWidget(track_, 1);
    trackRow->addWidget(trackError_);
    plot_ = new HeatmapPlot(top);
    plot_->setObjectName("logitLensPlot");
    plot_->setRowsTopDown(false);  // embeddings at the bottom, the output at the top
    plot_->setScaleLabel(tr("P(next token)"));  // short: the colour bar's title runs along its height
    plot_->installEventFilter(this);  // the wheel scrolls along the positions
    scroll_ = new QScrollBar(Qt::Horizontal, top);
    scroll_->setObjectName("lensPositionScroll");
    scroll_->setToolTip(tr("Positions shown; the lens is computed for what is on screen"));
    scroll_->hide();
    tl->addWidget(title_);
    tl->addLayout(trackRow);
    tl->addWidget(plot_, 1);
    tl->addWidget(scroll_);
    table_ = new ResultTable(0, kTableTop + 2, split);
    table_->setObjectName("logitLensTable");
    QStringList headers{tr("layer"), tr("P(next)")};
    for (int k = 1; k <= kTableTop; ++k) headers << tr("top %1").arg(k);
    table_->setHorizontalHeaderLabels(headers);
    table_->verticalHeader()->setVisible(false);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setItemDelegate(new PlainCellDelegate(table_));
    // Predictions get room for a token and its probability; a narrow dock scrolls sideways
    // rather than squeezing every column until neither is readable.
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setColumnWidth(0, 56);
    table_->setColumnWidth(1, 64);
    for (int k = 0; k < kTableTop; ++k) table_->setColumnWidth(2 + k, 104);
    split->addWidget(top);
    split->addWidget(table_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(split);

    connect(session_, &SessionController::shownAnalysisChanged, this, [this] { takeShown(); });
    connect(session_, &SessionController::modelLoaded, this, [this] { takeShown(); });
    connect(session_, &SessionController::selectionChanged, this, [this](const Selection& sel) {
        if (sel.lensToken != shownToken_) rebuild();
        else if (sel.position != followed_) followSelection();
    });
    connect(track_, &QLineEdit::returnPressed, this, [this] { trackTyped(); });
    connect(track_, &QLineEdit::textChanged, this, [this](const QString& t) {
        if (t.isEmpty()) {  // the clear button, or everything deleted
            trackError_->clear();
            session_->selectLensToken(-1);
        }
    });
    connect(table_, &QTableWidget::cellDoubleClicked, this, [this](int r, int c) {
        const QTableWidgetItem* it = table_->item(r, c);
        if (it && it->data(Qt::UserRole).isValid()) session_->selectLensToken(it->data(Qt::UserRole).toInt());
    });
    connect(plot_, &HeatmapPlot::cellHovered, this, [this](int pos, int row, const QPoint& global) {
        QToolTip::showText(global, hoverText(pos, row), plot_);
    });
    connect(plot_, &HeatmapPlot::cellClicked, this, [this](int pos, int) { session_->selectPosition(pos); });
    connect(scroll_, &QScrollBar::valueChanged, this, [this](int first) { showPositionsFrom(first); });
    takeShown();  // a view made after a run (a headless export) starts from it
}

LogitLensView::~LogitLensView() { ++*request_; }

// Stages without the lens (tokens, attention) leave the heatmap and table as they were: they stay
// drawn from the last analysis that had a lens, until the run's complete analysis arrives.
void LogitLensView::takeShown() {
    const auto& a = session_->shownAnalysis();
    if (a && !a->hasLens()) {
        if (session_->selection().position != followed_) followSelection();
        return;
    }
    const bool sameLens = a && shown_ && a->lens == shown_->lens;
    shown_ = a;
    if (!sameLens && a) {
        // A new lens opens on the selected position (the last token of a new run).
        const int pos = session_->selection().position;
        first_ = pos >= 0 && pos < a->length() ? pos - shownPositions() / 2 : 0;
    }
    rebuild();
}

bool LogitLensView::eventFilter(QObject* watched, QEvent* event) {
    if (watched == plot_ && event->type() == QEvent::Wheel && scroll_->isVisible()) {
        QCoreApplication::sendEvent(scroll_, event);
        return true;
    }
    // A wider or narrower dock shows more or fewer positions, the selected one kept on screen.
    if (watched == plot_ && (event->type() == QEvent::Resize || event->type() == QEvent::Show) && shown_ &&
        shown_->lens && shownPositions() != placedCount_) {
        const int pos = session_->selection().position;
        const int count = shownPositions();
        placeWindow(pos >= 0 && (pos < first_ || pos >= first_ + count) ? pos - count / 2 : first_);
        plot_->replot(QCustomPlot::rpQueuedReplot);
        requestWanted();
    }
    return QWidget::eventFilter(watched, event);
}

void LogitLensView::trackTyped() {
    const QString text = track_->text();
    if (text.isEmpty()) {
        trackError_->clear();
        session_->selectLensToken(-1);
        return;
    }
    QString error;
    const int id = session_->tokenIdFor(text, &error);
    trackError_->setText(id < 0 ? error : QString());
    if (id >= 0) session_->selectLensToken(id);
}

int LogitLensView::shownPositions() const {
    if (!shown_) return 0;
    const int most = std::min(shown_->length(), kMaxShownPositions);
    // Off screen (a headless figure, a hidden tab) there is no width to fit.
    if (!plot_->isVisible()) return most;
    const int cellsWidth = plot_->width() - kLabelsAndScaleWidth;
    return std::min(most, std::max(kMinShownPositions, cellsWidth / kMinCellWidth));
}

float LogitLensView::shownProbability(int row, int pos) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || !a->lens || row < 0 || pos < 0 || row >= a->lens->rows() || pos >= a->length() ||
        pos >= static_cast<int>(columns_.size()) || !columns_[pos])
        return std::numeric_limits<float>::quiet_NaN();
    if (shownToken_ >= 0 && row < static_cast<int>(tracked_.size())) return tracked_[row][pos];
    return columns_[pos]->nextProbability[row];
}

QString LogitLensView::hoverText(int pos, int row) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || !a->lens || row >= a->lens->rows() || pos >= a->length()) return {};
    QString html = tr("<b>%1</b> at %2 [%3]").arg(QString::fromStdString(a->lens->rowNames()[row]), tokenLabel(a->texts[pos]).toHtmlEscaped()).arg(pos);
    const LensColumn* column = pos < static_cast<int>(columns_.size()) ? columns_[pos] : nullptr;
    if (!column) return html + tr("<br><i>computing\u2026</i>");
    const float p = shownProbability(row, pos);
    const QString what = shownToken_ >= 0 ? tokenLabel(session_->tokenText(shownToken_).toStdString())
                                          : pos + 1 < a->length() ? tokenLabel(a->texts[pos + 1]) : QString();
    if (!std::isnan(p)) html += tr("<br>P(%1) = %2").arg(what.toHtmlEscaped()).arg(p, 0, 'f', 4);
    html += "<table>";
    for (size_t k = 0; k < column->top[row].size() && k < 5; ++k) {
        const auto& t = column->top[row][k];
        html += QStringLiteral("<tr><td>%1</td><td align=right>&nbsp;%2%</td></tr>")
                    .arg(tokenLabel(t.text).toHtmlEscaped())
                    .arg(100.0 * t.probability, 0, 'f', 1);
    }
    return html + "</table>";
}

void LogitLensView::rebuild() {
    const PromptAnalysis* a = shown_.get();
    shownToken_ = session_->selection().lensToken;
    if (!a || !a->lens) shownToken_ = -1;
    const QString trackedLabel = shownToken_ >= 0 ? tokenLabel(session_->tokenText(shownToken_).toStdString()) : QString();
    // The box shows what is tracked unless the user is typing in it.
    if (!track_->hasFocus() || shownToken_ >= 0) {
        const QSignalBlocker block(track_);
        track_->setText(trackedLabel);
    }
    table_->horizontalHeaderItem(1)->setText(shownToken_ >= 0 ? tr("P(%1)").arg(trackedLabel) : tr("P(next)"));
    if (!a || !a->lens) {
        followed_ = -1;
        columns_.clear();
        tracked_.clear();
        plot_->setColumnWindow(0, 0);
        plot_->setMatrix(0, 0, [](int, int) { return 0.0; }, 0, 1);
        plot_->setColumnLabels({}, tr("position (predicting the token after it)"));  // nor its layers
        plot_->setRowLabels({}, tr("residual stream after"));
        scroll_->hide();
        title_->setText(tr("No run yet"));
        table_->setRowCount(0);
        plot_->replot();
        return;
    }
    placeWindow(first_);
    QStringList cols, rows;
    for (int t = 0; t < a->length(); ++t) cols << shortTokenLabel(a->texts[t]);
    for (const auto& r : a->lens->rowNames()) rows << QString::fromStdString(r);
    plot_->setColumnLabels(cols, tr("position (predicting the token after it)"));
    plot_->setRowLabels(rows, tr("residual stream after"));
    if (shownToken_ >= 0) {
        plot_->setScaleLabel(tr("P(%1)").arg(trackedLabel));
        title_->setText(tr("<b>Logit lens</b> &nbsp; probability of <b>%1</b> (id %2), by layer")
                            .arg(trackedLabel.toHtmlEscaped())
                            .arg(shownToken_));
    } else {
        plot_->setScaleLabel(tr("P(next token)"));
        title_->setText(tr("<b>Logit lens</b> &nbsp; probability of the actual next token, by layer"));
    }
    refreshCells();
    followSelection();
}

// What the lens has computed so far, drawn: the heatmap's cells (NaN, transparent, where a
// position is still on its way) and, for a tracked token, its probability at those cells.
void LogitLensView::refreshCells() {
    const PromptAnalysis* a = shown_.get();
    if (!a || !a->lens) return;
    columns_ = a->lens->columns();
    tracked_.clear();
    if (shownToken_ >= 0) {
        try {
            tracked_ = a->lens->probabilitiesOf(shownToken_, LogitLens::Fill::ComputedOnly);
        } catch (const std::exception&) {
            shownToken_ = -1;  // an id outside this model's vocabulary: nothing to show
        }
    }
    plot_->setMatrix(a->length(), a->lens->rows(), [&](int pos, int row) { return shownProbability(row, pos); }, 0, 1);
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LogitLensView::placeWindow(int first) {
    const int T = shown_ ? shown_->length() : 0, count = shownPositions();
    placedCount_ = count;
    first_ = std::clamp(first, 0, std::max(0, T - count));
    const bool windowed = count < T;
    plot_->setColumnWindow(first_, windowed ? count : 0);
    const QSignalBlocker block(scroll_);
    scroll_->setRange(0, std::max(0, T - count));
    scroll_->setPageStep(std::max(1, count));
    scroll_->setSingleStep(std::max(1, count / 16));
    scroll_->setValue(first_);
    scroll_->setVisible(windowed);
}

void LogitLensView::showPositionsFrom(int first) {
    if (!shown_ || !shown_->lens) return;
    const int before = first_;
    placeWindow(first);
    if (first_ == before) return;
    plot_->replot(QCustomPlot::rpQueuedReplot);
    requestWanted();
}

void LogitLensView::followSelection() {
    const PromptAnalysis* a = shown_.get();
    int pos = session_->selection().position;
    followed_ = pos;
    if (!a || !a->lens || pos >= a->length()) pos = -1;  // a position of the next run's tokens, not yet drawn here
    if (pos >= 0 && (pos < first_ || pos >= first_ + shownPositions())) placeWindow(pos - shownPositions() / 2);
    plot_->highlightColumn(pos);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    fillTable();
    requestWanted();
}

// Each row's top predictions at the selected position, once that position is computed.
void LogitLensView::fillTable() {
    const PromptAnalysis* a = shown_.get();
    const int pos = followed_;
    table_->setRowCount(0);
    if (!a || !a->lens || pos < 0 || pos >= a->length()) {
        table_->layoutNow();
        return;
    }
    const LensColumn* column = pos < static_cast<int>(columns_.size()) ? columns_[pos] : nullptr;
    const int R = a->lens->rows();
    table_->setRowCount(R);
    for (int r = 0; r < R; ++r) {
        const int row = R - 1 - r;  // output first, like the heatmap read top-down
        table_->setItem(r, 0, new QTableWidgetItem(QString::fromStdString(a->lens->rowNames()[row])));
        const float p = shownProbability(row, pos);
        table_->setItem(r, 1, new QTableWidgetItem(!column ? QStringLiteral("\u2026")
                                                  : std::isnan(p) ? QStringLiteral("\u2013") : QString::number(p, 'f', 3)));
        if (!column) continue;
        for (int k = 0; k < kTableTop && k < static_cast<int>(column->top[row].size()); ++k) {
            const auto& t = column->top[row][k];
            const QString label = tokenLabel(t.text), percent = QStringLiteral("%1%").arg(100.0 * t.probability, 0, 'f', 1);
            auto* item = new QTableWidgetItem(label);
            item->setData(PlainCellDelegate::TrailingTextRole, percent);
            item->setToolTip(QStringLiteral("%1  %2 (id %3)").arg(label, percent).arg(t.id));
            item->setData(Qt::UserRole, t.id);  // double-click tracks this token
            table_->setItem(r, 2 + k, item);
        }
    }
    table_->layoutNow();
}

std::vector<int> LogitLensView::wantedPositions() const {
    std::vector<int> out;
    if (!shown_) return out;
    const int T = shown_->length(), pos = followed_;
    if (pos >= 0 && pos < T) out.push_back(pos);
    // Then the screen, nearest the selected position first.
    const int end = std::min(T, first_ + shownPositions());
    std::vector<int> screen;
    for (int t = first_; t < end; ++t) screen.push_back(t);
    const int centre = pos >= first_ && pos < end ? pos : first_;
    std::stable_sort(screen.begin(), screen.end(), [centre](int x, int y) { return std::abs(x - centre) < std::abs(y - centre); });
    out.insert(out.end(), screen.begin(), screen.end());
    return out;
}

bool LogitLensView::isFilled() const {
    return !shown_ || !shown_->lens ||
           (shown_->lens->missing(wantedPositions()).empty() &&
            std::all_of(columns_.begin() + first_, columns_.begin() + std::min<int>(columns_.size(), first_ + shownPositions()),
                        [](const LensColumn* c) { return c != nullptr; }));
}

void LogitLensView::requestWanted() {
    if (!shown_ || !shown_->lens) return;
    const std::shared_ptr<const LogitLens> lens = shown_->lens;
    const std::vector<int> todo = lens->missing(wantedPositions());
    if (todo.empty()) {
        // Computed meanwhile by another request (or a figure): draw what is there.
        if (columns_ != lens->columns()) columnsArrived(lens);
        return;
    }
    const int ticket = ++*request_;
    // The selected position alone first: the table fills in after one position's work.
    const bool selectedFirst = todo.front() == followed_;
    for (size_t i = 0; i < todo.size();) {
        const size_t n = selectedFirst && i == 0 ? 1 : std::min<size_t>(static_cast<size_t>(kPositionsPerJob), todo.size() - i);
        std::vector<int> batch(todo.begin() + static_cast<long>(i), todo.begin() + static_cast<long>(i + n));
        i += n;
        session_->runOnWorker(this, [this, lens, batch, ticket, request = request_](const Transformer&, const Tokenizer&)
                                        -> std::function<void()> {
            if (*request != ticket) return {};  // scrolled or reselected since: a newer request covers it
            lens->compute(batch);
            return [this, lens] { columnsArrived(lens); };
        });
    }
}

void LogitLensView::columnsArrived(const std::shared_ptr<const LogitLens>& lens) {
    if (!shown_ || shown_->lens != lens) return;  // another run's lens is shown now
    refreshCells();
    fillTable();
}

QSize LogitLensView::figureSize() const {
    const PromptAnalysis* a = shown_.get();
    if (!a || !a->lens) return {};
    return {std::clamp(shownPositions() * 22, 300, 1400) + 170, a->lens->rows() * 36 + 140};
}

// A figure shows what the screen shows, complete: positions still on their way are computed here.
void LogitLensView::paintFigure(QCPPainter& painter, const QSize& size) {
    if (shown_ && shown_->lens && !isFilled()) {
        shown_->lens->compute(wantedPositions());
        refreshCells();
        fillTable();
    }
    plot_->renderFigure(painter, size, tr("Logit lens (%1)").arg(session_->modelName()));
}

}  // namespace cs::ui
