#include "ui/views/FeaturesView.h"

#include "sae/Sae.h"
#include "store/FeatureStore.h"
#include "store/WeightFacts.h"
#include "ui/Qcp.h"
#include "ui/Theme.h"
#include "ui/views/TokenLabel.h"

#include <QContextMenuEvent>
#include <QHelpEvent>
#include <QKeyEvent>
#include <QMenu>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QScrollBar>
#include <QToolTip>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {
constexpr int kMargin = 8;
constexpr int kIndexWidth = 64;
constexpr int kBarWidth = 90;
constexpr int kValueWidth = 44;  // the activation, right of its bar
constexpr int kSparkWidth = 150;
constexpr int kGap = 10;
constexpr int kFigureWidth = 760;
constexpr int kPromotedShown = 8;

float maxOf(const std::vector<float>& v) {
    float m = 0;
    for (float x : v) m = std::max(m, x);
    return m;
}
}  // namespace

FeaturesView::FeaturesView(SessionController* session, QWidget* parent)
    : QAbstractScrollArea(parent), session_(session) {
    setObjectName("featuresView");
    setFocusPolicy(Qt::StrongFocus);
    viewport()->setMouseTracking(true);
    viewport()->setAttribute(Qt::WA_OpaquePaintEvent);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    verticalScrollBar()->setSingleStep(20);
    connect(session_, &SessionController::shownAnalysisChanged, this, [this] {
        rebuild();
        // The tokens stage of a run has no features yet: the shading waits for the next stage.
        if (!shown_ || shown_->stage != AnalysisStage::Tokens) emitShading();
    });
    connect(session_, &SessionController::selectionChanged, this, [this] {
        if (session_->selection().position != position_) rebuild();
    });
    connect(session_, &SessionController::modelLoaded, this, [this] {
        promoted_.clear();
        clearSelection();
        rebuild();
    });
    connect(session_, &SessionController::saesChanged, this, [this] {
        promoted_.clear();
        rebuild();
    });
    connect(session_, &SessionController::storeChanged, this, [this] {
        promoted_.clear();
        refreshLabels();
    });
    connect(session_, &SessionController::labelChanged, this, [this] { refreshLabels(); });
    rebuild();
}

int FeaturesView::rowHeight() const { return fontMetrics().height() + 10; }
int FeaturesView::headerHeight() const { return fontMetrics().height() + 14; }

int FeaturesView::contentHeight() const {
    int h = kMargin;
    for (const Row& r : rows_) h += r.header ? headerHeight() : rowHeight();
    return h + kMargin;
}

QRect FeaturesView::rowRect(int row) const {
    if (row < 0 || row >= static_cast<int>(rows_.size())) return {};
    int y = kMargin - verticalScrollBar()->value();
    for (int i = 0; i < row; ++i) y += rows_[i].header ? headerHeight() : rowHeight();
    return QRect(0, y, viewport()->width(), rows_[row].header ? headerHeight() : rowHeight());
}

int FeaturesView::rowAt(const QPoint& p) const {
    int y = kMargin - verticalScrollBar()->value();
    for (int i = 0; i < static_cast<int>(rows_.size()); ++i) {
        const int h = rows_[i].header ? headerHeight() : rowHeight();
        if (p.y() >= y && p.y() < y + h) return i;
        y += h;
    }
    return -1;
}

void FeaturesView::rebuild() {
    shown_ = session_->shownAnalysis();
    position_ = session_->selection().position;
    rows_.clear();
    hover_ = -1;
    const PromptAnalysis* a = shown_.get();
    if (a && position_ >= 0 && position_ < a->length()) {
        for (int s = 0; s < static_cast<int>(a->features.size()); ++s) {
            const SaeFeatureTrack& track = a->features[s];
            const auto& active = track.byPosition[position_];
            Row h;
            h.header = true;
            h.track = s;
            h.title = tr("%1   %2   %3 active of %4")
                          .arg(QString::fromStdString(track.id), QString::fromStdString(track.hook))
                          .arg(active.size())
                          .arg(track.dSae);
            rows_.push_back(h);
            const int n = std::min<int>(kTopPerSae, static_cast<int>(active.size()));
            for (int j = 0; j < n; ++j) {
                Row r;
                r.track = s;
                r.feature = active[j].first;
                r.activation = active[j].second;
                r.series = track.series(r.feature);
                rows_.push_back(std::move(r));
            }
        }
    }
    refreshLabels();
}

void FeaturesView::refreshLabels() {
    const PromptAnalysis* a = shown_.get();
    for (Row& r : rows_) {
        if (r.header || !a) continue;
        bool isAuto = true;
        r.label = session_->featureLabel(a->features[r.track].id, r.feature, &isAuto);
        r.labelIsAuto = isAuto;
    }
    updateScrollBar();
    viewport()->update();
}

void FeaturesView::updateScrollBar() {
    verticalScrollBar()->setPageStep(viewport()->height());
    verticalScrollBar()->setRange(0, std::max(0, contentHeight() - viewport()->height()));
}

void FeaturesView::resizeEvent(QResizeEvent* e) {
    QAbstractScrollArea::resizeEvent(e);
    updateScrollBar();
}

int FeaturesView::selectedRow() const {
    const PromptAnalysis* a = shown_.get();
    if (!a || selectedFeature_ < 0) return -1;
    for (int i = 0; i < static_cast<int>(rows_.size()); ++i)
        if (!rows_[i].header && rows_[i].feature == selectedFeature_ &&
            QString::fromStdString(a->features[rows_[i].track].id) == selectedSae_)
            return i;
    return -1;
}

void FeaturesView::selectRow(int row) {
    if (row < 0 || row >= static_cast<int>(rows_.size()) || rows_[row].header) return;
    selectedSae_ = QString::fromStdString(shown_->features[rows_[row].track].id);
    selectedFeature_ = rows_[row].feature;
    viewport()->update();
    emitShading();
    Q_EMIT featureSelected(selectedSae_, selectedFeature_);
}

void FeaturesView::clearSelection() {
    const bool had = selectedFeature_ >= 0;
    selectedSae_.clear();
    selectedFeature_ = -1;
    viewport()->update();
    if (had) emitShading();
}

void FeaturesView::openRow(int row) {
    if (row < 0 || row >= static_cast<int>(rows_.size()) || rows_[row].header) return;
    Q_EMIT dashboardRequested(QString::fromStdString(shown_->features[rows_[row].track].id), rows_[row].feature);
}

void FeaturesView::steerRow(int row) {
    if (row < 0 || row >= static_cast<int>(rows_.size()) || rows_[row].header) return;
    Q_EMIT steerRequested(QString::fromStdString(shown_->features[rows_[row].track].id), rows_[row].feature);
}

void FeaturesView::contextMenuEvent(QContextMenuEvent* e) {
    const int row = rowAt(viewport()->mapFrom(this, e->pos()));
    if (row < 0 || rows_[row].header) return;
    selectRow(row);
    QMenu menu(this);
    menu.addAction(tr("Open Dashboard\tEnter"), this, [this, row] { openRow(row); });
    menu.addAction(tr("Steer\tS"), this, [this, row] { steerRow(row); });
    menu.exec(e->globalPos());
}

void FeaturesView::emitShading() {
    const PromptAnalysis* a = shown_.get();
    if (a && selectedFeature_ >= 0)
        for (const SaeFeatureTrack& t : a->features)
            if (QString::fromStdString(t.id) == selectedSae_) {
                std::vector<float> v = t.series(selectedFeature_);
                Q_EMIT shadingChanged(v, maxOf(v), tr("%1 #%2").arg(selectedSae_).arg(selectedFeature_));
                return;
            }
    Q_EMIT shadingChanged({}, 0, QString());
}

QString FeaturesView::tooltipFor(int row) const {
    if (row < 0 || row >= static_cast<int>(rows_.size()) || rows_[row].header || !shown_) return {};
    const Row& r = rows_[row];
    const std::string sae = shown_->features[r.track].id;
    const QString key = QString::fromStdString(sae) + "#" + QString::number(r.feature);
    if (!promoted_.contains(key)) {
        // The store's logit effects when it has them; else from the weights, now (one decoder row
        // times the unembedding: a few million multiply-adds on a 50k vocabulary).
        std::vector<LogitEffect> pos, neg;
        if (FeatureStore* store = session_->store()) {
            try {
                store->logits(sae, r.feature, &pos, &neg);
            } catch (const std::exception&) {
            }
        }
        if (pos.empty() && session_->model())
            for (const AnalysisSae& s : session_->saes())
                if (s.id == sae) {
                    try {
                        logitEffects(*session_->model(), session_->tokenizer().get(), *s.sae, r.feature, kPromotedShown,
                                     &pos, &neg);
                    } catch (const std::exception&) {
                    }
                }
        QStringList tokens;
        for (int i = 0; i < std::min<int>(kPromotedShown, static_cast<int>(pos.size())); ++i)
            tokens << QStringLiteral("%1 (%2)").arg(tokenLabel(pos[i].piece).toHtmlEscaped()).arg(pos[i].value, 0, 'f', 2);
        promoted_.insert(key, tokens.isEmpty() ? tr("(it does not write to the residual stream)") : tokens.join(", "));
    }
    QString html = QStringLiteral("<b>%1 #%2</b> &nbsp; activation %3").arg(QString::fromStdString(sae)).arg(r.feature).arg(r.activation, 0, 'f', 3);
    if (!r.label.isEmpty())
        html += QStringLiteral("<br>%1%2").arg(r.label.toHtmlEscaped(), r.labelIsAuto ? tr(" <i>(automatic)</i>") : QString());
    html += QStringLiteral("<br><i>%1</i><br>%2").arg(tr("promotes"), promoted_.value(key));
    html += QStringLiteral("<br><small>%1</small>").arg(tr("click: shade the text by it; double-click or Enter: dashboard"));
    return html;
}

QString FeaturesView::emptyText() const {
    if (!session_->hasModel()) return tr("No model loaded");
    if (session_->saes().empty()) return tr("No SAE attached (File > Attach SAE...)");
    if (!shown_) return tr("Type a prompt and press Enter");
    if (shown_->features.empty()) return tr("Computing features...");
    return tr("Click a token to see its features");
}

void FeaturesView::paintRows(QPainter& p, int width, const ViewColors& c, bool figure, int scrollY,
                             int visibleHeight) const {
    p.setRenderHint(QPainter::Antialiasing);
    const QFontMetrics fm(font());
    // Fixed columns shrink in a narrow dock, so the label keeps a readable share.
    const int labelX = kMargin + kIndexWidth;
    const int sparkW = std::clamp((width - labelX) * 3 / 10, 50, kSparkWidth);
    const int barW = std::clamp((width - labelX) / 5, 36, kBarWidth);
    const int sparkX = width - kMargin - sparkW;
    const int barX = sparkX - kGap - kValueWidth - barW;
    const int labelW = std::max(24, barX - kGap - labelX);
    // One scale per SAE for the bars (its strongest feature here fills the bar).
    std::vector<float> trackMax(shown_ ? shown_->features.size() : 0, 0.0f);
    for (const Row& r : rows_)
        if (!r.header) trackMax[r.track] = std::max(trackMax[r.track], r.activation);
    const int selected = figure ? -1 : selectedRow();
    int y = kMargin - scrollY;
    for (int i = 0; i < static_cast<int>(rows_.size()); ++i) {
        const Row& r = rows_[i];
        const int h = r.header ? headerHeight() : rowHeight();
        if (y + h < 0) {
            y += h;
            continue;
        }
        if (visibleHeight >= 0 && y > visibleHeight) break;
        const QRect rect(0, y, width, h);
        if (r.header) {
            QFont bold = font();
            bold.setBold(true);
            p.setFont(bold);
            p.setPen(c.text);
            p.drawText(rect.adjusted(kMargin, 4, -kMargin, 0), Qt::AlignLeft | Qt::AlignVCenter,
                       QFontMetrics(bold).elidedText(r.title, Qt::ElideRight, width - 2 * kMargin));
            p.setPen(c.grid);
            p.drawLine(kMargin, rect.bottom(), width - kMargin, rect.bottom());
            p.setFont(font());
        } else {
            if (i == selected) p.fillRect(rect.adjusted(2, 1, -2, -1), c.hover);
            else if (i == hover_) p.fillRect(rect.adjusted(2, 1, -2, -1), c.promptChip);
            if (i == selected) {
                p.setPen(QPen(c.selection, 2));
                p.setBrush(Qt::NoBrush);
                p.drawRect(rect.adjusted(2, 1, -3, -2));
            }
            p.setPen(c.muted);
            p.drawText(QRect(kMargin, y, kIndexWidth - 4, h), Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("#%1").arg(r.feature));
            QFont lf = font();
            lf.setItalic(r.labelIsAuto);
            p.setFont(lf);
            p.setPen(r.labelIsAuto ? c.muted : c.text);
            const QString label = r.label.isEmpty() ? QStringLiteral("-") : r.label;
            p.drawText(QRect(labelX + 6, y, labelW - 6, h), Qt::AlignLeft | Qt::AlignVCenter,
                       QFontMetrics(lf).elidedText(label, Qt::ElideRight, labelW - 6));
            p.setFont(font());
            // Activation bar, the value written over it.
            const QRectF bar(barX, y + 4, barW, h - 8);
            p.setPen(Qt::NoPen);
            p.setBrush(c.promptChip);
            p.drawRoundedRect(bar, 3, 3);
            const float m = trackMax[r.track];
            const double frac = m > 0 ? r.activation / m : 0;
            p.setBrush(c.activation);
            p.drawRoundedRect(QRectF(bar.x(), bar.y(), std::max(2.0, bar.width() * frac), bar.height()), 3, 3);
            p.setPen(c.text);
            p.drawText(QRectF(bar.right(), y, kValueWidth, h), Qt::AlignRight | Qt::AlignVCenter, QString::number(r.activation, 'f', 2));
            // Sparkline over the text, the selected position marked.
            const QRectF spark(sparkX, y + 3, sparkW, h - 6);
            const int T = static_cast<int>(r.series.size());
            const float smax = maxOf(r.series);
            if (T > 0 && smax > 0) {
                const double step = spark.width() / T;
                p.setPen(Qt::NoPen);
                for (int t = 0; t < T; ++t) {
                    if (r.series[t] <= 0) continue;
                    const double hh = spark.height() * r.series[t] / smax;
                    p.setBrush(t == position_ ? c.selection : c.activation);
                    p.drawRect(QRectF(spark.x() + t * step, spark.bottom() - hh, std::max(1.0, step - (step > 3 ? 1 : 0)), hh));
                }
            }
            p.setPen(c.grid);
            p.drawLine(QPointF(spark.left(), spark.bottom() + 0.5), QPointF(spark.right(), spark.bottom() + 0.5));
        }
        y += h;
    }
}

void FeaturesView::paintEvent(QPaintEvent*) {
    QPainter p(viewport());
    const ViewColors& c = viewColors();
    p.fillRect(viewport()->rect(), c.background);
    if (rows_.empty()) {
        p.setPen(c.muted);
        p.drawText(viewport()->rect(), Qt::AlignCenter, emptyText());
        return;
    }
    paintRows(p, viewport()->width(), c, false, verticalScrollBar()->value(), viewport()->height());
}

QString FeaturesView::figureName() const { return QStringLiteral("features-t%1").arg(position_); }

QSize FeaturesView::figureSize() const {
    if (rows_.empty()) return {};
    return {kFigureWidth, contentHeight() + headerHeight()};
}

void FeaturesView::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    // A title naming the token, then the rows as on screen.
    QFont bold = font();
    bold.setBold(true);
    painter.setFont(bold);
    painter.setPen(c.text);
    const QString token = shown_ && position_ >= 0 ? tokenLabel(shown_->texts[position_]) : QString();
    painter.drawText(QRect(kMargin, 0, size.width() - 2 * kMargin, headerHeight()), Qt::AlignLeft | Qt::AlignVCenter,
                     tr("Features at position %1 \u201c%2\u201d").arg(position_).arg(token));
    painter.setFont(font());
    painter.save();
    painter.translate(0, headerHeight());
    paintRows(painter, size.width(), c, true, 0, -1);
    painter.restore();
}

nlohmann::json FeaturesView::toJson() const {
    nlohmann::json out = nlohmann::json::object();
    const PromptAnalysis* a = shown_.get();
    out["position"] = position_;
    out["token"] = a && position_ >= 0 ? a->texts[position_] : std::string();
    out["token_id"] = a && position_ >= 0 ? a->ids[position_] : -1;
    nlohmann::json tokens = nlohmann::json::array();
    if (a)
        for (const auto& t : a->texts) tokens.push_back(t);
    out["tokens"] = tokens;
    nlohmann::json saes = nlohmann::json::array();
    for (const Row& r : rows_) {
        if (r.header) {
            const SaeFeatureTrack& t = a->features[r.track];
            saes.push_back({{"id", t.id}, {"hook", t.hook}, {"d_sae", t.dSae},
                            {"active", t.byPosition[position_].size()}, {"features", nlohmann::json::array()}});
            continue;
        }
        saes.back()["features"].push_back({{"index", r.feature},
                                           {"activation", r.activation},
                                           {"label", r.label.toStdString()},
                                           {"label_is_auto", r.labelIsAuto},
                                           {"series", r.series}});
    }
    out["saes"] = saes;
    return out;
}

void FeaturesView::mousePressEvent(QMouseEvent* e) {
    const int row = rowAt(e->position().toPoint());
    if (e->button() == Qt::LeftButton && row >= 0 && !rows_[row].header) selectRow(row);
}

void FeaturesView::mouseDoubleClickEvent(QMouseEvent* e) {
    const int row = rowAt(e->position().toPoint());
    if (e->button() == Qt::LeftButton) openRow(row);
}

void FeaturesView::keyPressEvent(QKeyEvent* e) {
    const int n = static_cast<int>(rows_.size());
    int row = selectedRow();
    auto step = [&](int d) {
        int i = row < 0 ? (d > 0 ? -1 : n) : row;
        for (i += d; i >= 0 && i < n; i += d)
            if (!rows_[i].header) {
                selectRow(i);
                const QRect r = rowRect(i);
                if (r.top() < 0) verticalScrollBar()->setValue(verticalScrollBar()->value() + r.top());
                else if (r.bottom() > viewport()->height())
                    verticalScrollBar()->setValue(verticalScrollBar()->value() + r.bottom() - viewport()->height());
                return;
            }
    };
    switch (e->key()) {
    case Qt::Key_Down: step(1); break;
    case Qt::Key_Up: step(-1); break;
    case Qt::Key_Return:
    case Qt::Key_Enter: openRow(row); break;
    case Qt::Key_S:
        if (row >= 0 && e->modifiers() == Qt::NoModifier) steerRow(row);
        else QAbstractScrollArea::keyPressEvent(e);
        break;
    case Qt::Key_Escape:
        if (selectedFeature_ >= 0) clearSelection();
        else e->ignore();  // the window's Esc (cancel a run)
        break;
    default: QAbstractScrollArea::keyPressEvent(e);
    }
}

bool FeaturesView::viewportEvent(QEvent* e) {
    switch (e->type()) {
    case QEvent::ToolTip: {
        auto* he = static_cast<QHelpEvent*>(e);
        const int row = rowAt(he->pos());
        if (row >= 0 && !rows_[row].header) QToolTip::showText(he->globalPos(), tooltipFor(row), viewport(), rowRect(row));
        else QToolTip::hideText();
        return true;
    }
    case QEvent::MouseMove: {
        const int row = rowAt(static_cast<QMouseEvent*>(e)->position().toPoint());
        if (row != hover_) {
            hover_ = row;
            viewport()->update();
        }
        break;
    }
    case QEvent::Leave:
        hover_ = -1;
        viewport()->update();
        break;
    default: break;
    }
    return QAbstractScrollArea::viewportEvent(e);
}

}  // namespace cs::ui
