#include "ui/views/SteeringComparisonView.h"

#include "ui/Qcp.h"
#include "ui/Theme.h"
#include "ui/views/TokenLabel.h"

#include <QMouseEvent>
#include <QPainter>
#include <QStringDecoder>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {
constexpr double kMargin = 12, kGap = 10, kPad = 8, kLineGap = 3, kCloseSize = 14;
constexpr int kFigureColumnWidth = 250;
constexpr int kMinColumnWidth = 150;  // narrower, and the caller's scroll area scrolls sideways
constexpr int kWordWrap = Qt::TextWordWrap, kAnyWrap = Qt::TextWrapAnywhere;
constexpr int kEmptyHeight = 80;

// A token's text as a reader sees it in running text: real spaces, newlines kept for the layout
// to break on, and what cannot be shown (a piece of a UTF-8 character, a control character, which
// SVG cannot even hold) spelled out as the token chips spell it.
QString readableText(const std::string& text) {
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    QString s = utf8(QByteArray::fromStdString(text));
    if (utf8.hasError()) return tokenLabel(text);
    QString out;
    out.reserve(s.size());
    for (QChar c : s) {
        if (c == '\n') out += c;
        else if (c == '\t') out += ' ';
        else if (c == '\r') continue;
        else if (c.unicode() < 0x20 || c.unicode() == 0x7f) out += tokenLabel(std::string(1, static_cast<char>(c.unicode())));
        else out += c;
    }
    return out;
}

QFont boldOf(QFont f) {
    f.setBold(true);
    return f;
}

QFont smallOf(QFont f) {
    f.setPointSizeF(f.pointSizeF() > 0 ? f.pointSizeF() * 0.88 : 8);
    return f;
}

// Height of `text` wrapped to `width` at `font` (at least one line).
double wrappedHeight(const QFont& font, double width, const QString& text, int wrap) {
    const QFontMetricsF fm(font);
    return std::max(fm.height(), fm.boundingRect(QRectF(0, 0, std::max(1.0, width), 1e6), wrap, text).height());
}
}  // namespace

// What paintFigure draws at one width: computed once per width and text, so a repaint only draws.
struct SteeringComparisonView::Layout {
    struct Run {         // consecutive characters on one line, all changed or all unchanged
        QPointF baseline;
        QString text;
        QRectF box;
        bool differs = false;
    };
    struct Line {        // one line of a column header
        QRectF rect;
        QString text;
        int role = 0;    // 0 title, 1 row spec, 2 condition, 3 note
        int wrap = kWordWrap;
    };
    struct Column {
        QRectF rect, header, body;
        QRectF closeBox;  // pinned columns only
        std::vector<Line> lines;
        std::vector<Run> runs;
        int steered = -1;  // -1: the baseline
    };
    int width = -1;
    double height = kEmptyHeight;
    QRectF promptLabel, prompt, legendSwatch, legendText;
    QString legend;
    QString promptText;
    std::vector<Column> columns;
};

SteeringComparisonView::SteeringComparisonView(QWidget* parent) : QWidget(parent) {
    setObjectName("steeringComparison");
    setAttribute(Qt::WA_OpaquePaintEvent);  // paintEvent fills every pixel
    QSizePolicy sp(QSizePolicy::Expanding, QSizePolicy::Preferred);
    sp.setHeightForWidth(true);
    setSizePolicy(sp);
    busy_.fill(false, kMaxColumns);
    for (int i = 0; i < kMaxColumns; ++i) errors_ << QString();
}

void SteeringComparisonView::setComparison(const SteeringComparison& c) {
    comparison_ = c;
    if (comparison_.columns.size() > static_cast<size_t>(kMaxColumns)) comparison_.columns.resize(kMaxColumns);
    differs_.clear();
    for (const SteeringColumn& col : comparison_.columns) differs_.push_back(tokensDiffering(comparison_.baseline.ids, col.output.ids));
    // A column that no longer exists is neither busy nor failed.
    for (int i = static_cast<int>(comparison_.columns.size()); i < kMaxColumns; ++i) {
        busy_[i] = false;
        errors_[i].clear();
    }
    relayout();
}

void SteeringComparisonView::setColumnBusy(int column, bool busy) {
    if (column < 0 || column >= kMaxColumns || busy_[column] == busy) return;
    busy_[column] = busy;
    relayout();  // the header's note changes its height
}

void SteeringComparisonView::setColumnError(int column, const QString& message) {
    if (column < 0 || column >= kMaxColumns || errors_[column] == message) return;
    errors_[column] = message;
    relayout();
}

nlohmann::json SteeringComparisonView::toJson() const { return steeringComparisonToJson(comparison_); }

QString SteeringComparisonView::figureName() const { return QStringLiteral("steering"); }

bool SteeringComparisonView::isEmpty() const {
    return comparison_.prompt.empty() && comparison_.baseline.ids.empty() && comparison_.columns.empty();
}

int SteeringComparisonView::figureWidth() const {
    const int n = 1 + static_cast<int>(comparison_.columns.size());
    return static_cast<int>(2 * kMargin + n * kFigureColumnWidth + (n - 1) * kGap);
}

QSize SteeringComparisonView::figureSize() const {
    if (isEmpty()) return {};
    const int w = figureWidth();
    return {w, static_cast<int>(std::ceil(layoutFor(w)->height))};
}

QSize SteeringComparisonView::sizeHint() const {
    const int w = isEmpty() ? 600 : figureWidth();
    return {w, heightForWidth(w)};
}

int SteeringComparisonView::heightForWidth(int width) const {
    return isEmpty() ? kEmptyHeight : static_cast<int>(std::ceil(layoutFor(width)->height));
}

void SteeringComparisonView::relayout() {
    cached_.reset();
    const int n = 1 + static_cast<int>(comparison_.columns.size());
    setMinimumWidth(isEmpty() ? 0 : static_cast<int>(2 * kMargin + n * kMinColumnWidth + (n - 1) * kGap));
    updateGeometry();
    setMinimumHeight(heightForWidth(width()));
    update();
}

void SteeringComparisonView::resizeEvent(QResizeEvent*) { setMinimumHeight(heightForWidth(width())); }

std::shared_ptr<const SteeringComparisonView::Layout> SteeringComparisonView::layoutFor(int width) const {
    if (cached_ && cached_->width == width && cachedFont_ == font()) return cached_;
    auto L = std::make_shared<Layout>();
    L->width = width;
    cachedFont_ = font();
    cached_ = L;
    if (isEmpty()) return L;

    const QFont body = font(), bold = boldOf(font()), small = smallOf(font());
    const QFontMetricsF fm(body), bfm(bold), sfm(small);
    const double inner = std::max(40.0, width - 2 * kMargin);

    // The prompt, then the legend, across the whole width.
    double y = kMargin;
    const QString promptLabel = tr("Prompt");
    const double labelW = bfm.horizontalAdvance(promptLabel) + 8;
    L->promptLabel = QRectF(kMargin, y, labelW, bfm.height());
    L->promptText = readableText(comparison_.prompt);
    const double promptW = std::max(20.0, inner - labelW);
    L->prompt = QRectF(kMargin + labelW, y, promptW, wrappedHeight(body, promptW, L->promptText, kWordWrap));
    y = L->prompt.bottom() + 6;
    L->legend = tr("marked: tokens not in the baseline's continuation (longest common subsequence)");
    L->legendSwatch = QRectF(kMargin, y + 2, 22, sfm.height() - 4);
    L->legendText = QRectF(kMargin + 28, y, inner - 28, wrappedHeight(small, inner - 28, L->legend, kWordWrap));
    y = L->legendText.bottom() + 8;

    const int n = 1 + static_cast<int>(comparison_.columns.size());
    const double colW = std::max(30.0, (inner - (n - 1) * kGap) / n);
    const double textW = std::max(10.0, colW - 2 * kPad);
    const double top = y;

    // Headers first: every column's text starts at the same height, so the eye can compare lines.
    double headerH = 0;
    for (int i = 0; i < n; ++i) {
        Layout::Column col;
        col.steered = i - 1;
        const double x = kMargin + i * (colW + kGap);
        double hy = top + kPad;
        auto addLine = [&](const QString& text, int role, const QFont& f) {
            const double w = textW - (role == 0 && col.steered >= 1 ? kCloseSize + 4 : 0);
            // Specs and hook names have no spaces to break at; titles and notes do.
            const int wrap = role == 1 || role == 2 ? kAnyWrap : kWordWrap;
            const double h = wrappedHeight(f, w, text, wrap);
            col.lines.push_back({QRectF(x + kPad, hy, w, h), text, role, wrap});
            hy += h + kLineGap;
        };
        if (col.steered < 0) {
            addLine(tr("Baseline"), 0, bold);
            addLine(tr("no steering"), 3, small);
        } else {
            const SteeringColumn& sc = comparison_.columns[col.steered];
            addLine(QString::fromStdString(sc.title), 0, bold);
            for (const std::string& r : sc.rows) addLine(QString::fromStdString(r), 1, small);
            if (sc.rows.empty()) addLine(tr("(no rows)"), 3, small);
            if (!sc.condition.empty()) addLine(tr("when %1").arg(QString::fromStdString(sc.condition)), 2, small);
            if (busy_[col.steered]) addLine(tr("regenerating\u2026"), 3, small);
            if (col.steered >= 1) col.closeBox = QRectF(x + colW - kPad - kCloseSize, top + kPad, kCloseSize, kCloseSize);
        }
        col.rect = QRectF(x, top, colW, 0);
        headerH = std::max(headerH, hy - top + kPad - kLineGap);
        L->columns.push_back(std::move(col));
    }

    const double lineH = fm.height() + 2;
    const double lineStep = lineH + 2;
    double bottom = top + headerH;
    for (Layout::Column& col : L->columns) {
        col.header = QRectF(col.rect.x(), top, colW, headerH);
        const double left = col.rect.x() + kPad, right = left + textW;
        double ly = top + headerH + kPad;
        const QString error = col.steered >= 0 ? errors_[col.steered] : QString();
        if (!error.isEmpty()) {
            const double h = wrappedHeight(body, textW, error, kWordWrap);
            Layout::Run r;
            r.box = QRectF(left, ly, textW, h);
            r.text = error;
            col.runs.push_back(r);
            ly += h;
        } else {
            const SteeredText& t = col.steered < 0 ? comparison_.baseline : comparison_.columns[col.steered].output;
            const std::vector<bool>* diff = col.steered < 0 ? nullptr : &differs_[col.steered];
            double x = left;
            bool lineStart = true;
            // Appends to the last run when it is on this line with the same marking.
            auto place = [&](const QString& s, bool differs) {
                if (s.isEmpty()) return;
                const double w = fm.horizontalAdvance(s);
                if (!col.runs.empty()) {
                    Layout::Run& last = col.runs.back();
                    if (last.differs == differs && std::abs(last.box.top() - ly) < 0.5 && std::abs(last.box.right() - x) < 0.5) {
                        last.text += s;
                        last.box.setRight(x + w);
                        x += w;
                        lineStart = false;
                        return;
                    }
                }
                Layout::Run r;
                r.text = s;
                r.differs = differs;
                r.box = QRectF(x, ly, w, lineH);
                r.baseline = QPointF(x, ly + 1 + fm.ascent());
                col.runs.push_back(r);
                x += w;
                lineStart = false;
            };
            auto newline = [&] {
                x = left;
                ly += lineStep;
                lineStart = true;
            };
            const size_t count = t.ids.size();
            for (size_t k = 0; k < count; ++k) {
                const bool differs = diff && k < diff->size() && (*diff)[k];
                const QString text = k < t.texts.size() ? readableText(t.texts[k]) : QStringLiteral(" #%1").arg(t.ids[k]);
                const QStringList parts = text.split('\n');
                for (int p = 0; p < parts.size(); ++p) {
                    if (p > 0) newline();
                    QString part = parts[p];
                    if (part.isEmpty()) continue;
                    if (!lineStart && x + fm.horizontalAdvance(part) > right) newline();
                    // A space that a line break swallowed is not drawn; a changed word's leading
                    // space is marked only when the word before it is marked too, so a box hugs words.
                    qsizetype spaces = 0;
                    while (spaces < part.size() && part[spaces] == ' ') ++spaces;
                    if (lineStart) {
                        part.remove(0, spaces);
                        spaces = 0;
                    }
                    const bool joined = !col.runs.empty() && col.runs.back().differs && std::abs(col.runs.back().box.right() - x) < 0.5 &&
                                        std::abs(col.runs.back().box.top() - ly) < 0.5;
                    if (differs && spaces > 0 && !joined) {
                        place(part.left(spaces), false);
                        place(part.mid(spaces), true);
                    } else {
                        place(part, differs);
                    }
                }
            }
            if (count == 0) {
                Layout::Run r;
                r.box = QRectF(left, ly, textW, lineH);
                r.text = tr("(no tokens)");
                r.baseline = QPointF(left, ly + 1 + fm.ascent());
                col.runs.push_back(r);
            }
            ly += lineH;
        }
        col.body = QRectF(col.rect.x(), top + headerH, colW, ly + kPad - (top + headerH));
        bottom = std::max(bottom, col.body.bottom());
    }
    for (Layout::Column& col : L->columns) {
        col.rect.setBottom(bottom);
        col.body.setBottom(bottom);
    }
    L->height = bottom + kMargin;
    return L;
}

void SteeringComparisonView::paintComparison(QPainter& p, const Layout& L, const ViewColors& c, bool figure) const {
    p.setRenderHint(QPainter::Antialiasing);
    const QFont body = font(), bold = boldOf(font()), small = smallOf(font());
    const QColor mark = activationShade(c, c.background, 0.38);

    p.setFont(bold);
    p.setPen(c.text);
    p.drawText(L.promptLabel, Qt::AlignLeft | Qt::AlignTop, tr("Prompt"));
    p.setFont(body);
    p.drawText(L.prompt, Qt::AlignLeft | Qt::AlignTop | kWordWrap, L.promptText);
    p.setPen(Qt::NoPen);
    p.setBrush(mark);
    p.drawRoundedRect(L.legendSwatch, 2, 2);
    p.setFont(small);
    p.setPen(c.muted);
    p.drawText(L.legendText, Qt::AlignLeft | Qt::AlignTop | kWordWrap, L.legend);

    for (const Layout::Column& col : L.columns) {
        const bool busy = col.steered >= 0 && busy_[col.steered];
        const bool failed = col.steered >= 0 && !errors_[col.steered].isEmpty();
        p.setPen(QPen(c.grid, 1));
        p.setBrush(c.promptChip);
        p.drawRoundedRect(col.header.adjusted(0.5, 0.5, -0.5, 0), 4, 4);
        p.setBrush(Qt::NoBrush);
        p.drawRoundedRect(col.rect.adjusted(0.5, 0.5, -0.5, -0.5), 4, 4);
        p.save();
        p.setClipRect(col.header);  // a word wider than the column stops at its edge
        for (const Layout::Line& line : col.lines) {
            p.setFont(line.role == 0 ? bold : small);
            p.setPen(line.role == 0 || line.role == 1 ? c.text : c.muted);
            if (line.role == 2) p.setPen(c.selection);
            p.drawText(line.rect, Qt::AlignLeft | Qt::AlignTop | line.wrap, line.text);
        }
        p.restore();
        if (!figure && !col.closeBox.isEmpty()) {
            p.setPen(QPen(c.muted, 1.5));
            const QRectF x = col.closeBox.adjusted(3.5, 3.5, -3.5, -3.5);
            p.drawLine(x.topLeft(), x.bottomRight());
            p.drawLine(x.topRight(), x.bottomLeft());
        }
        p.save();
        p.setClipRect(col.body.adjusted(1, 0, -1, -1));
        p.setFont(body);
        if (failed) {
            p.setPen(QColor("#cf222e"));
            for (const Layout::Run& r : col.runs) p.drawText(r.box, Qt::AlignLeft | Qt::AlignTop | kWordWrap, r.text);
        } else {
            if (busy) p.setOpacity(0.4);
            p.setPen(Qt::NoPen);
            p.setBrush(mark);
            for (const Layout::Run& r : col.runs)
                if (r.differs) p.drawRoundedRect(r.box.adjusted(-1, 0, 1, 0), 2, 2);
            p.setPen(c.text);
            for (const Layout::Run& r : col.runs) p.drawText(r.baseline, r.text);
        }
        p.restore();
    }
}

void SteeringComparisonView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const ViewColors& c = viewColors();
    p.fillRect(rect(), c.background);
    if (isEmpty()) {
        p.setPen(c.muted);
        p.drawText(rect(), Qt::AlignCenter, tr("Steer a feature or vector to compare continuations"));
        return;
    }
    paintComparison(p, *layoutFor(width()), c, false);
}

void SteeringComparisonView::paintFigure(QCPPainter& painter, const QSize& size) {
    const ViewColors& c = figureColors();
    painter.fillRect(QRect(QPoint(0, 0), size), c.background);
    if (isEmpty()) return;
    paintComparison(painter, *layoutFor(size.width()), c, true);
}

void SteeringComparisonView::mousePressEvent(QMouseEvent* e) {
    if (e->button() != Qt::LeftButton || isEmpty()) return;
    const auto L = layoutFor(width());
    for (const Layout::Column& col : L->columns)
        if (!col.closeBox.isEmpty() && col.closeBox.adjusted(-3, -3, 3, 3).contains(e->position())) {
            Q_EMIT unpinRequested(col.steered);
            return;
        }
}

}  // namespace cs::ui
