#pragma once
// The prompt and its continuation as chips: hover a chip for its id and the model's top next-token
// predictions there, click it to make it the selected position of every view.
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"

#include <QHash>
#include <QStaticText>
#include <QWidget>

#include <vector>

namespace cs::ui {

struct ViewColors;

class TokenStreamView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    explicit TokenStreamView(SessionController* session, QWidget* parent = nullptr);

    int chipCount() const { return static_cast<int>(chips_.size()); }
    QRect chipRect(int index) const;       // widget coordinates, for tests and accessibility
    int chipAt(const QPoint& p) const;     // -1 when no chip is there
    QString chipText(int index) const;
    QString tooltipFor(int index) const;   // the hover text: id and top predictions
    const PromptAnalysis* drawnAnalysis() const { return shown_.get(); }  // what the chips show

    QString figureName() const override { return QStringLiteral("tokens"); }
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

    bool hasHeightForWidth() const override { return true; }
    int heightForWidth(int width) const override;
    QSize sizeHint() const override { return {600, 120}; }

protected:
    void paintEvent(QPaintEvent*) override;
    void mouseMoveEvent(QMouseEvent*) override;
    void mousePressEvent(QMouseEvent*) override;
    void leaveEvent(QEvent*) override;
    void resizeEvent(QResizeEvent*) override;
    bool event(QEvent*) override;

private:
    struct Chip {
        QRectF rect;
        QString label;
        QStaticText text;  // laid out once with the chips, drawn on every paint
        bool whitespace = false;
        bool generated = false;
    };
    std::vector<Chip> layoutChips(int width) const;
    // `cached`: blit each chip's background from a pixmap cache (the screen); vector painters (SVG,
    // PDF figures) get the rounded rectangles themselves.
    void paintChips(QPainter& p, const std::vector<Chip>& chips, const ViewColors& c, int selected, int hover,
                    bool cached) const;
    // Each label laid out once per font, kept across runs: shaping a chip's text was the larger
    // part of laying out a run's chips, and successive prompts share most of their tokens.
    QStaticText preparedText(const QString& label) const;
    void relayout();
    void layoutAtWidth();
    static int heightOf(const std::vector<Chip>& chips);

    SessionController* session_;
    std::shared_ptr<const PromptAnalysis> shown_;  // the chips' tokens
    int shownRun_ = -1;
    int paintedSelection_ = -1;
    std::vector<Chip> chips_;
    mutable QHash<QString, QStaticText> prepared_;
    mutable QFont preparedFont_;
    int hover_ = -1;
};

}  // namespace cs::ui
