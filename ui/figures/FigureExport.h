#pragma once
// Writes a FigureSource to PNG (raster, 3x for print), SVG (QSvgGenerator) or PDF (QPdfWriter),
// chosen by the file's extension.
#include <QString>

namespace cs::ui {

class FigureSource;

// Returns an empty string on success, else a one-line error naming the file.
QString exportFigure(FigureSource& source, const QString& path);

// "png", "svg", "pdf" (lower case) if the path's extension is one of them, else empty.
QString figureFormat(const QString& path);

}  // namespace cs::ui
