#include "ui/views/DashboardView.h"

#include "sae/Sae.h"
#include "store/FeatureStore.h"
#include "store/WeightFacts.h"
#include "tokenize/Tokenizer.h"
#include "ui/Qcp.h"
#include "ui/Theme.h"
#include "ui/views/ExampleList.h"
#include "ui/views/TokenLabel.h"

#include "store/StoreJson.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QTimer>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {
constexpr int kChartHeight = 240;
constexpr int kFigureWidth = 960;
constexpr int kSaveDelayMs = 500;
constexpr int kFigureMargin = 12;

QString firstLine(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }

QLabel* sectionTitle(const QString& text, QWidget* parent) {
    auto* l = new QLabel(text, parent);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}

QCustomPlot* makeChart(QWidget* parent) {
    auto* plot = new QCustomPlot(parent);
    plot->setMinimumHeight(kChartHeight);
    plot->setMaximumHeight(kChartHeight);
    plot->setPlottingHint(QCP::phImmediateRefresh, false);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, QString()));
    return plot;
}

QCPTextElement* chartTitle(QCustomPlot* plot) { return qobject_cast<QCPTextElement*>(plot->plotLayout()->element(0, 0)); }

QString percent(double density) {
    const double p = 100 * density;
    return p >= 1 ? QString::number(p, 'f', 2) + "%" : QString::number(p, 'g', 2) + "%";
}
}  // namespace

DashboardView::DashboardView(SessionController* session, const QString& saeId, long index, QWidget* parent)
    : QWidget(parent), session_(session), saeId_(saeId), index_(index) {
    setObjectName("dashboard");
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    scroll_ = new QScrollArea(this);
    scroll_->setWidgetResizable(true);
    scroll_->setFrameShape(QFrame::NoFrame);
    outer->addWidget(scroll_);
    auto* content = new QWidget;
    auto* v = new QVBoxLayout(content);
    v->setContentsMargins(10, 8, 10, 10);
    v->setSpacing(6);

    header_ = new QLabel(content);
    header_->setTextFormat(Qt::RichText);
    header_->setWordWrap(true);
    header_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* headerRow = new QHBoxLayout;
    headerRow->addWidget(header_, 1);
    steerButton_ = new QPushButton(tr("Steer"), content);
    steerButton_->setObjectName("steerButton");
    steerButton_->setToolTip(tr("Add this feature to the Steering dock, to amplify or suppress it"));
    headerRow->addWidget(steerButton_, 0, Qt::AlignTop);
    v->addLayout(headerRow);
    connect(steerButton_, &QPushButton::clicked, this, [this] { Q_EMIT steerRequested(saeId_, index_); });

    auto* missingRow = new QHBoxLayout;
    missing_ = new QLabel(content);
    missing_->setWordWrap(true);
    missing_->setObjectName("dashboardMissing");
    indexButton_ = new QPushButton(tr("Index a corpus..."), content);
    indexButton_->setObjectName("indexCorpusButton");
    missingRow->addWidget(missing_, 1);
    missingRow->addWidget(indexButton_, 0, Qt::AlignTop);
    v->addLayout(missingRow);
    connect(indexButton_, &QPushButton::clicked, this, &DashboardView::indexRequested);

    auto* labelRow = new QHBoxLayout;
    labelRow->addWidget(new QLabel(tr("Label"), content));
    label_ = new QLineEdit(content);
    label_->setObjectName("featureLabel");
    label_->setClearButtonEnabled(true);
    labelRow->addWidget(label_, 1);
    autoTag_ = new QLabel(tr("automatic"), content);
    autoTag_->setObjectName("automaticTag");
    autoTag_->setToolTip(tr("No label of yours yet: the label shown is made from the feature's most frequent peak "
                            "tokens and the tokens it promotes. Type one to replace it."));
    labelRow->addWidget(autoTag_);
    v->addLayout(labelRow);
    notes_ = new QPlainTextEdit(content);
    notes_->setObjectName("featureNotes");
    notes_->setPlaceholderText(tr("Notes (saved as you type)"));
    notes_->setFixedHeight(notes_->fontMetrics().height() * 3 + 12);
    notes_->setTabChangesFocus(true);
    v->addWidget(notes_);

    topTitle_ = sectionTitle(tr("Top activations"), content);
    v->addWidget(topTitle_);
    top_ = new ExampleList(content);
    top_->setObjectName("topExamples");
    v->addWidget(top_);

    auto* charts = new QHBoxLayout;
    histogram_ = makeChart(content);
    histogram_->setObjectName("histogram");
    logits_ = makeChart(content);
    logits_->setObjectName("logitEffects");
    charts->addWidget(histogram_, 1);
    charts->addWidget(logits_, 1);
    v->addLayout(charts);

    v->addWidget(sectionTitle(tr("Nearest features (decoder cosine)"), content));
    neighbours_ = new QLabel(content);
    neighbours_->setObjectName("neighbours");
    neighbours_->setTextFormat(Qt::RichText);
    neighbours_->setWordWrap(true);
    connect(neighbours_, &QLabel::linkActivated, this, [this](const QString& link) {
        bool ok = false;
        const long n = link.mid(1).toLong(&ok);
        if (ok) Q_EMIT openFeature(saeId_, n);
    });
    v->addWidget(neighbours_);

    intervalTitle_ = sectionTitle(tr("Examples by activation interval"), content);
    v->addWidget(intervalTitle_);
    intervals_ = new ExampleList(content);
    intervals_->setObjectName("intervalExamples");
    v->addWidget(intervals_);
    v->addStretch(1);
    scroll_->setWidget(content);

    saveTimer_ = new QTimer(this);
    saveTimer_->setSingleShot(true);
    saveTimer_->setInterval(kSaveDelayMs);
    connect(saveTimer_, &QTimer::timeout, this, &DashboardView::saveNow);
    connect(label_, &QLineEdit::textEdited, this, &DashboardView::scheduleSave);
    connect(label_, &QLineEdit::editingFinished, this, &DashboardView::saveNow);
    connect(notes_, &QPlainTextEdit::textChanged, this, &DashboardView::scheduleSave);

    auto exampleClicked = [this](ExampleList* list) {
        return [this, list](int item) { Q_EMIT promptRequested(exampleText(list->items()[item].example)); };
    };
    connect(top_, &ExampleList::exampleClicked, this, exampleClicked(top_));
    connect(intervals_, &ExampleList::exampleClicked, this, exampleClicked(intervals_));
    connect(session_, &SessionController::storeChanged, this, &DashboardView::reload);
    connect(session_, &SessionController::saesChanged, this, [this] {
        if (!hasDetail_) reload();
    });
    connect(session_, &SessionController::labelChanged, this, [this](const QString& sae, long i) {
        if (saving_) return;
        if (sae == saeId_ && i == index_) reload();
        else if (hasDetail_) fill();  // a neighbour's label
    });
    reload();
}

DashboardView::~DashboardView() {
    if (saveTimer_->isActive()) saveNow();
}

QString DashboardView::title() const { return QStringLiteral("%1 #%2").arg(saeId_).arg(index_); }

QString DashboardView::missingText() const {
    if (hasDetail_) return {};
    if (!session_->store())
        return tr("No feature store is open, so there are no examples, histogram or label for this feature yet. "
                  "Index a corpus with this model and its SAEs (or open a store with File > Open Feature Store).");
    return tr("%1 cannot show %2: %3. Index a corpus with this SAE attached.")
        .arg(QFileInfo(session_->storePath()).fileName(), title(), error_);
}

void DashboardView::reload() {
    hasDetail_ = false;
    detail_ = FeatureDetail();
    error_.clear();
    livePositive_.clear();
    liveNegative_.clear();
    if (FeatureStore* store = session_->store()) {
        try {
            detail_ = store->feature(saeId_.toStdString(), index_);
            hasDetail_ = true;
        } catch (const std::exception& e) {
            error_ = firstLine(e);
        }
    }
    if (!hasDetail_ || (detail_.positiveLogits.empty() && detail_.negativeLogits.empty())) {
        // The weights alone still say which tokens the feature promotes.
        for (const AnalysisSae& s : session_->saes())
            if (QString::fromStdString(s.id) == saeId_ && session_->model()) {
                try {
                    logitEffects(*session_->model(), session_->tokenizer().get(), *s.sae, index_, 10, &livePositive_,
                                 &liveNegative_);
                } catch (const std::exception&) {
                }
            }
    }
    fill();
}

QString DashboardView::headerHtml() const {
    QString html = QStringLiteral("<span style='font-size:large'><b>%1</b></span>").arg(title().toHtmlEscaped());
    for (const AnalysisSae& s : session_->saes())
        if (QString::fromStdString(s.id) == saeId_)
            html += QStringLiteral(" &nbsp; <span style='color:gray'>%1</span>").arg(QString::fromStdString(s.sae->config().hookName));
    if (hasDetail_) {
        long tokens = 0;
        try {
            tokens = session_->store()->sae(saeId_.toStdString()).tokens;
        } catch (const std::exception&) {
        }
        html += QStringLiteral("<br>%1 <b>%2</b> &nbsp;&nbsp; %3 <b>%4</b> &nbsp;&nbsp; %5 <b>%6</b> %7")
                    .arg(tr("density"), percent(detail_.density), tr("max activation"))
                    .arg(detail_.maxActivation, 0, 'f', 3)
                    .arg(tr("fires on"))
                    .arg(QLocale().toString(static_cast<qlonglong>(detail_.firings)))
                    .arg(tokens > 0 ? tr("of %1 indexed tokens").arg(QLocale().toString(static_cast<qlonglong>(tokens)))
                                    : tr("tokens"));
    }
    return html;
}

void DashboardView::fill() {
    const ViewColors& c = viewColors();
    header_->setText(headerHtml());
    missing_->setText(missingText());
    missing_->setVisible(!hasDetail_);
    indexButton_->setVisible(!hasDetail_);

    {
        const QSignalBlocker b1(label_), b2(notes_);
        const bool own = hasDetail_ && !detail_.labelIsAuto;
        label_->setText(own ? QString::fromStdString(detail_.label) : QString());
        label_->setPlaceholderText(hasDetail_ && !detail_.autoLabel.empty() ? QString::fromStdString(detail_.autoLabel)
                                                                             : tr("no label"));
        notes_->setPlainText(hasDetail_ ? QString::fromStdString(detail_.notes) : QString());
        lastLabel_ = label_->text();
        lastNotes_ = notes_->toPlainText();
    }
    autoTag_->setVisible(hasDetail_ && label_->text().isEmpty() && !detail_.autoLabel.empty());
    label_->setEnabled(hasDetail_);
    notes_->setEnabled(hasDetail_);

    std::vector<ExampleList::Item> top;
    for (const FeatureExample& e : detail_.topExamples) top.push_back({QString(), e});
    top_->setItems(std::move(top), detail_.maxActivation);
    topTitle_->setVisible(hasDetail_);
    top_->setVisible(hasDetail_);

    std::vector<ExampleList::Item> iv;
    for (auto it = detail_.intervals.rbegin(); it != detail_.intervals.rend(); ++it) {  // highest first
        if (it->examples.empty()) continue;
        iv.push_back({tr("%1 to %2").arg(it->low, 0, 'g', 3).arg(it->high, 0, 'g', 3), FeatureExample()});
        for (const FeatureExample& e : it->examples) iv.push_back({QString(), e});
    }
    intervals_->setItems(std::move(iv), detail_.maxActivation);
    intervalTitle_->setVisible(hasDetail_);
    intervals_->setVisible(hasDetail_);

    QStringList parts;
    for (const FeatureNeighbour& n : detail_.neighbours) {
        bool isAuto = true;
        const QString label = session_->featureLabel(saeId_.toStdString(), n.index, &isAuto);
        parts << QStringLiteral("<a href='#%1'>#%1</a> <span style='color:gray'>%2</span> %3")
                     .arg(n.index)
                     .arg(n.cosine, 0, 'f', 2)
                     .arg(label.isEmpty() ? QString() : (isAuto ? "<i>" : "") + label.left(60).toHtmlEscaped() + (isAuto ? "</i>" : ""));
    }
    neighbours_->setText(parts.isEmpty() ? tr("<span style='color:gray'>(none)</span>") : parts.join("<br>"));

    fillCharts(c);
    Q_EMIT titleChanged(title());
}

void DashboardView::styleCharts(const ViewColors& c) {
    for (QCustomPlot* plot : {histogram_, logits_}) {
        plot->setBackground(c.background);
        plot->axisRect()->setBackground(c.background);
        for (QCPAxis* a : {plot->xAxis, plot->yAxis}) {
            a->setBasePen(QPen(c.grid));
            a->setTickPen(QPen(c.grid));
            a->setSubTickPen(QPen(c.grid));
            a->setTickLabelColor(c.text);
            a->setLabelColor(c.text);
            a->grid()->setPen(QPen(c.grid, 0, Qt::DotLine));
        }
        if (QCPTextElement* t = chartTitle(plot)) t->setTextColor(c.text);
    }
}

void DashboardView::fillCharts(const ViewColors& c) {
    // Histogram of non-zero activations; trailing empty bins hidden.
    histogram_->clearPlottables();
    const auto& h = detail_.histogram;
    int last = -1;
    for (int i = 0; i < static_cast<int>(h.counts.size()); ++i)
        if (h.counts[i] > 0) last = i;
    chartTitle(histogram_)->setText(tr("Activation histogram (non-zero)"));
    if (last >= 0 && h.edges.size() == h.counts.size() + 1) {
        auto* bars = new QCPBars(histogram_->xAxis, histogram_->yAxis);
        QVector<double> keys, values;
        double maxCount = 0;
        for (int i = 0; i <= last; ++i) {
            keys << (h.edges[i] + h.edges[i + 1]) / 2;
            values << static_cast<double>(h.counts[i]);
            maxCount = std::max(maxCount, values.back());
        }
        bars->setData(keys, values, true);
        bars->setWidth(h.edges[1] - h.edges[0]);
        bars->setPen(Qt::NoPen);
        bars->setBrush(c.activation);
        histogram_->xAxis->setRange(0, h.edges[last + 1]);
        histogram_->yAxis->setRange(0, maxCount * 1.08);
        histogram_->xAxis->setLabel(tr("activation"));
        histogram_->yAxis->setLabel(tr("tokens"));
    }
    histogram_->setVisible(hasDetail_);

    // Logit effects: the promoted tokens on top, the suppressed below, one bar each.
    logits_->clearPlottables();
    const auto& pos = hasDetail_ && !detail_.positiveLogits.empty() ? detail_.positiveLogits : livePositive_;
    const auto& neg = hasDetail_ && !detail_.negativeLogits.empty() ? detail_.negativeLogits : liveNegative_;
    chartTitle(logits_)->setText(pos.empty() && neg.empty() ? tr("Logit effects: none (the SAE does not write to the residual stream)")
                                                            : tr("Logit effects (W_dec \u00b7 W_U)"));
    const int n = static_cast<int>(pos.size() + neg.size());
    if (n > 0) {
        auto* up = new QCPBars(logits_->yAxis, logits_->xAxis);
        auto* down = new QCPBars(logits_->yAxis, logits_->xAxis);
        QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
        QVector<double> ku, vu, kd, vd;
        double extent = 0;
        int row = n - 1;
        for (const LogitEffect& e : pos) {
            ticker->addTick(row, shortTokenLabel(e.piece, 14));
            ku << row--;
            vu << e.value;
            extent = std::max(extent, std::abs(static_cast<double>(e.value)));
        }
        // The most negative (listed first) at the bottom.
        for (auto it = neg.rbegin(); it != neg.rend(); ++it) {
            const LogitEffect& e = *it;
            ticker->addTick(row, shortTokenLabel(e.piece, 14));
            kd << row--;
            vd << e.value;
            extent = std::max(extent, std::abs(static_cast<double>(e.value)));
        }
        up->setData(ku, vu);
        down->setData(kd, vd);
        for (QCPBars* b : {up, down}) {
            b->setWidth(0.7);
            b->setPen(Qt::NoPen);
        }
        up->setBrush(QColor("#2da44e"));
        down->setBrush(QColor("#cf222e"));
        logits_->yAxis->setTicker(ticker);
        logits_->yAxis->setRange(-0.7, n - 0.3);
        logits_->yAxis->grid()->setVisible(false);
        logits_->xAxis->setRange(-extent * 1.05, extent * 1.05);
        logits_->xAxis->setLabel(tr("logit"));
    }
    // One height for both charts (the logit bars need 16 px a token), side by side and aligned.
    const int chartH = std::max(kChartHeight, 16 * n + 60);
    for (QCustomPlot* plot : {histogram_, logits_}) {
        plot->setMinimumHeight(chartH);
        plot->setMaximumHeight(chartH);
    }
    styleCharts(c);
    histogram_->replot();
    logits_->replot();
}

void DashboardView::refreshColors() {
    fillCharts(viewColors());
    update();
}

void DashboardView::scheduleSave() { saveTimer_->start(); }

void DashboardView::saveNow() {
    saveTimer_->stop();
    if (!hasDetail_) return;
    const QString label = label_->text().trimmed(), notes = notes_->toPlainText();
    if (label == lastLabel_.trimmed() && notes == lastNotes_) return;
    saving_ = true;
    const QString error = session_->setFeatureLabel(saeId_.toStdString(), index_, label, notes);
    saving_ = false;
    if (!error.isEmpty()) {
        missing_->setText(tr("Could not save the label: %1").arg(error));
        missing_->setVisible(true);
        return;
    }
    lastLabel_ = label;
    lastNotes_ = notes;
    detail_.labelIsAuto = label.isEmpty();
    detail_.label = label.isEmpty() ? detail_.autoLabel : label.toStdString();
    detail_.notes = notes.toStdString();
    autoTag_->setVisible(label.isEmpty() && !detail_.autoLabel.empty());
}

QString DashboardView::exampleText(const FeatureExample& e) const {
    if (auto tok = session_->tokenizer()) {
        try {
            return QString::fromStdString(tok->decode(e.tokens));
        } catch (const std::exception&) {
        }
    }
    QString text;
    for (const std::string& p : e.pieces) text += ExampleList::displayPiece(p);
    return text;
}

nlohmann::json DashboardView::toJson() const {
    if (!hasDetail_) return nlohmann::json::object();
    return featureJson(detail_);
}

QString DashboardView::figureName() const { return QStringLiteral("dashboard-%1-%2").arg(saeId_).arg(index_); }

QSize DashboardView::figureSize() const {
    return {kFigureWidth, const_cast<DashboardView*>(this)->layoutFigure(kFigureWidth, nullptr)};
}

void DashboardView::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    layoutFigure(size.width(), &painter);
}

int DashboardView::layoutFigure(int w, QCPPainter* p) {
    const ViewColors& c = figureColors();
    const int inner = w - 2 * kFigureMargin;
    QFont normal = font(), bold = font(), big = font();
    bold.setBold(true);
    big.setBold(true);
    big.setPointSizeF(font().pointSizeF() * 1.3);
    int y = kFigureMargin;
    auto text = [&](const QString& s, const QFont& f, const QColor& color) {
        const QFontMetrics fm(f);
        const QRect r = fm.boundingRect(QRect(kFigureMargin, y, inner, 10000), Qt::TextWordWrap, s);
        if (p) {
            p->setFont(f);
            p->setPen(color);
            p->drawText(QRect(kFigureMargin, y, inner, r.height()), Qt::TextWordWrap, s);
        }
        y += r.height() + 4;
    };
    // An example list painted at the current y; returns its height.
    auto examples = [&](ExampleList* list) {
        const int h = list->heightAt(inner);
        if (p) {
            p->save();
            p->translate(kFigureMargin, y);
            list->paintAt(*p, inner, c);
            p->restore();
        }
        return h;
    };
    QString hook;
    for (const AnalysisSae& s : session_->saes())
        if (QString::fromStdString(s.id) == saeId_) hook = QString::fromStdString(s.sae->config().hookName);
    text(title() + (hook.isEmpty() ? QString() : "   " + hook), big, c.text);
    if (!hasDetail_) {
        text(missingText(), normal, c.muted);
    } else {
        text(tr("density %1   max activation %2   fires on %3 tokens")
                 .arg(percent(detail_.density))
                 .arg(detail_.maxActivation, 0, 'f', 3)
                 .arg(detail_.firings),
             normal, c.text);
        text(tr("Label: %1%2").arg(QString::fromStdString(detail_.label), detail_.labelIsAuto ? tr("  (automatic)") : QString()),
             normal, detail_.labelIsAuto ? c.muted : c.text);
        if (!detail_.notes.empty()) text(tr("Notes: %1").arg(QString::fromStdString(detail_.notes)), normal, c.text);
        y += 4;
        text(tr("Top activations"), bold, c.text);
        y += examples(top_) + 6;
    }
    // Charts side by side (the logit bars alone without a store).
    const int chartH = std::max(kChartHeight, logits_->minimumHeight());
    const bool both = hasDetail_;
    const int cw = both ? (inner - 10) / 2 : inner;
    if (p) {
        styleCharts(c);
        if (both) {
            p->save();
            p->translate(kFigureMargin, y);
            histogram_->toPainter(p, cw, chartH);
            p->restore();
        }
        p->save();
        p->translate(kFigureMargin + (both ? cw + 10 : 0), y);
        logits_->toPainter(p, cw, chartH);
        p->restore();
        styleCharts(viewColors());
    }
    y += chartH + 8;
    if (hasDetail_) {
        text(tr("Nearest features (decoder cosine)"), bold, c.text);
        QStringList parts;
        for (const FeatureNeighbour& n : detail_.neighbours) parts << QStringLiteral("#%1 (%2)").arg(n.index).arg(n.cosine, 0, 'f', 2);
        text(parts.isEmpty() ? tr("(none)") : parts.join("   "), normal, c.text);
        if (!intervals_->items().empty()) {
            y += 4;
            text(tr("Examples by activation interval"), bold, c.text);
            y += examples(intervals_);
        }
    }
    return y + kFigureMargin;
}

}  // namespace cs::ui
