#pragma once
// What a view offers for figure export: a natural size and a way to paint itself onto any
// painter. Painting through one function keeps the screen, the PNG, the SVG and the PDF identical,
// and vector devices (SVG, PDF) receive vector text and shapes.
#include <QSize>
#include <QString>

class QCPPainter;

namespace cs::ui {

class FigureSource {
public:
    virtual ~FigureSource() = default;
    virtual QString figureName() const = 0;  // used for default file names: "attention-L2H1"
    virtual QSize figureSize() const = 0;    // in device-independent pixels (1/96 in)
    // Paints the figure into (0, 0, size). QCPPainter is a QPainter that QCustomPlot can also use.
    virtual void paintFigure(QCPPainter& painter, const QSize& size) = 0;
};

}  // namespace cs::ui
