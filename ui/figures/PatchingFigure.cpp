#include "ui/figures/PatchingFigure.h"

#include "patching/ActivationPatching.h"
#include "ui/figures/FigureExport.h"
#include "ui/views/PatchingPlot.h"

#include <memory>

namespace cs::ui {

QString exportPatchingFigure(const PatchGrid& grid, const std::vector<std::string>& cleanTokenTexts,
                             const std::vector<std::string>& corruptedTokenTexts, const QString& out) {
    if (figureFormat(out).isEmpty()) return QObject::tr("%1: unknown figure format (use .png, .svg or .pdf)").arg(out);
    PatchingPlot plot;
    plot.setGrid(std::make_shared<const PatchGrid>(grid), cleanTokenTexts, corruptedTokenTexts);
    plot.resize(plot.figureSize());
    return exportFigure(plot, out);
}

}  // namespace cs::ui
