#pragma once
// `patch --out FILE.(png|svg|pdf)`: a patching grid drawn by the Patching view's own plot
// (PatchingPlot), offscreen, so the scripted figure is exactly what the window shows.
#include <QString>

#include <string>
#include <vector>

namespace cs {
struct PatchGrid;
}

namespace cs::ui {

// Needs a QApplication (offscreen is fine). The token texts label the position columns. Returns
// an empty string on success, else a one-line error naming the file.
QString exportPatchingFigure(const PatchGrid& grid, const std::vector<std::string>& cleanTokenTexts,
                             const std::vector<std::string>& corruptedTokenTexts, const QString& out);

}  // namespace cs::ui
