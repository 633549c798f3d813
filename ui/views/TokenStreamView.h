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

    // Shades every chip by a value per position (a feature's activation over the text, the
    // Neuronpedia view): 0 leaves a chip as it is, `max` and above give the full activation colour.
    // `caption` names what is shown (in the tooltip and the figure). Kept until cleared or a model
    // loads (the Features view re-shades on every run); values past the chips are ignored.
    void setShading(const std::vector<float>& values, float max, const QString& caption);
    void clearShading();
    const std::vector<float>& shading() const { return shading_; }
    QString shadingCaption() const { return shadingCaption_; }
    QColor chipFill(int index) const;  // the chip's background as painted on screen

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
    QColor fillFor(const Chip& chip, int index, const ViewColors& c, int hover) const;
    // Each label laid out once per font and kept across runs (successive prompts share most of
    // their tokens), so a run's relayout shapes only the labels it has not seen.
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
    std::vector<float> shading_;
    float shadingMax_ = 0;
    QString shadingCaption_;
};

}  // namespace cs::ui
