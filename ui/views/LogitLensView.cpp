#include "ui/views/LogitLensView.h"

#include "ui/views/HeatmapPlot.h"
#include "ui/views/PlainCellDelegate.h"
#include "ui/views/ResultTable.h"
#include "ui/views/TokenLabel.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>
#include <limits>

namespace cs::ui {

namespace {
constexpr int kTableTop = 5;
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
    plot_->setScaleLabel(tr("P(actual next token)"));
    tl->addWidget(title_);
    tl->addLayout(trackRow);
    tl->addWidget(plot_, 1);
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
    takeShown();  // a view made after a run (a headless export) starts from it
}

// Stages without the lens (tokens, attention) leave the heatmap and table as they were: they stay
// drawn from the last analysis that had a lens, until the run's complete analysis arrives.
void LogitLensView::takeShown() {
    const auto& a = session_->shownAnalysis();
    if (a && !a->hasLens()) {
        if (session_->selection().position != followed_) followSelection();
        return;
    }
    shown_ = a;
    rebuild();
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

float LogitLensView::shownProbability(int row, int pos) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || row < 0 || pos < 0 || row >= static_cast<int>(a->lensRows.size()) || pos >= a->length())
        return std::numeric_limits<float>::quiet_NaN();
    if (shownToken_ >= 0 && row < static_cast<int>(tracked_.size())) return tracked_[row][pos];
    return a->lensNextProbability[row][pos];
}

QString LogitLensView::hoverText(int pos, int row) const {
    const PromptAnalysis* a = shown_.get();
    if (!a || row >= static_cast<int>(a->lensRows.size()) || pos >= a->length()) return {};
    QString html = tr("<b>%1</b> at %2 [%3]").arg(QString::fromStdString(a->lensRows[row]), tokenLabel(a->texts[pos]).toHtmlEscaped()).arg(pos);
    const float p = shownProbability(row, pos);
    const QString what = shownToken_ >= 0 ? tokenLabel(session_->tokenText(shownToken_).toStdString())
                                          : pos + 1 < a->length() ? tokenLabel(a->texts[pos + 1]) : QString();
    if (!std::isnan(p)) html += tr("<br>P(%1) = %2").arg(what.toHtmlEscaped()).arg(p, 0, 'f', 4);
    html += "<table>";
    for (size_t k = 0; k < a->lensTop[row][pos].size() && k < 5; ++k) {
        const auto& t = a->lensTop[row][pos][k];
        html += QStringLiteral("<tr><td>%1</td><td align=right>&nbsp;%2%</td></tr>")
                    .arg(tokenLabel(t.text).toHtmlEscaped())
                    .arg(100.0 * t.probability, 0, 'f', 1);
    }
    return html + "</table>";
}

void LogitLensView::rebuild() {
    const PromptAnalysis* a = shown_.get();
    shownToken_ = session_->selection().lensToken;
    tracked_ = shownToken_ >= 0 && a ? session_->lensProbabilities(*a, shownToken_) : std::vector<std::vector<float>>();
    if (shownToken_ >= 0 && tracked_.empty()) shownToken_ = -1;
    const QString trackedLabel = shownToken_ >= 0 ? tokenLabel(session_->tokenText(shownToken_).toStdString()) : QString();
    // The box shows what is tracked unless the user is typing in it.
    if (!track_->hasFocus() || shownToken_ >= 0) {
        const QSignalBlocker block(track_);
        track_->setText(trackedLabel);
    }
    table_->horizontalHeaderItem(1)->setText(shownToken_ >= 0 ? tr("P(%1)").arg(trackedLabel) : tr("P(next)"));
    if (!a) {
        followed_ = -1;
        plot_->setMatrix(0, 0, [](int, int) { return 0.0; }, 0, 1);
        title_->setText(tr("No run yet"));
        table_->setRowCount(0);
        plot_->replot();
        return;
    }
    const int T = a->length(), R = static_cast<int>(a->lensRows.size());
    plot_->setMatrix(T, R, [&](int pos, int row) { return shownProbability(row, pos); }, 0, 1);
    QStringList cols, rows;
    for (int t = 0; t < T; ++t) cols << shortTokenLabel(a->texts[t]);
    for (const auto& r : a->lensRows) rows << QString::fromStdString(r);
    plot_->setColumnLabels(cols, tr("position (predicting the token after it)"));
    plot_->setRowLabels(rows, tr("residual stream after"));
    if (shownToken_ >= 0) {
        plot_->setScaleLabel(tr("P(%1)").arg(trackedLabel));
        title_->setText(tr("<b>Logit lens</b> &nbsp; probability of <b>%1</b> (id %2), by layer")
                            .arg(trackedLabel.toHtmlEscaped())
                            .arg(shownToken_));
    } else {
        plot_->setScaleLabel(tr("P(actual next token)"));
        title_->setText(tr("<b>Logit lens</b> &nbsp; probability of the actual next token, by layer"));
    }
    followSelection();
}

void LogitLensView::followSelection() {
    const PromptAnalysis* a = shown_.get();
    int pos = session_->selection().position;
    followed_ = pos;
    if (!a || pos >= a->length()) pos = -1;  // a position of the next run's tokens, not yet drawn here
    plot_->highlightColumn(pos);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    table_->setRowCount(0);
    if (!a || pos < 0 || pos >= a->length()) {
        table_->layoutNow();
        return;
    }
    const int R = static_cast<int>(a->lensRows.size());
    table_->setRowCount(R);
    for (int r = 0; r < R; ++r) {
        const int row = R - 1 - r;  // output first, like the heatmap read top-down
        table_->setItem(r, 0, new QTableWidgetItem(QString::fromStdString(a->lensRows[row])));
        const float p = shownProbability(row, pos);
        table_->setItem(r, 1, new QTableWidgetItem(std::isnan(p) ? QStringLiteral("\u2013") : QString::number(p, 'f', 3)));
        for (int k = 0; k < kTableTop && k < static_cast<int>(a->lensTop[row][pos].size()); ++k) {
            const auto& t = a->lensTop[row][pos][k];
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

QSize LogitLensView::figureSize() const {
    const PromptAnalysis* a = shown_.get();
    if (!a) return {};
    return {std::clamp(a->length() * 22, 300, 1400) + 170, static_cast<int>(a->lensRows.size()) * 36 + 140};
}

void LogitLensView::paintFigure(QCPPainter& painter, const QSize& size) { plot_->renderFigure(painter, size); }

}  // namespace cs::ui
