#pragma once
// Light and dark themes: the application palette plus the few colours the views paint with.
// Figures are always exported with the light colours (white paper).
#include <QColor>
#include <QString>

class QCPColorGradient;

namespace cs::ui {

enum class ThemeKind { Light, Dark };

struct ViewColors {
    QColor background, text, muted, grid;
    QColor promptChip, generatedChip, chipBorder, selection, hover;
    QColor heatLow, heatHigh;  // colour-map ends (weights and probabilities 0 .. 1)
    QColor activation;         // a feature's activation at full strength (chips, bars, examples)
};

// `base` blended toward c.activation by `strength` in [0, 1]: a feature's activation over text.
QColor activationShade(const ViewColors& c, const QColor& base, double strength);

void applyTheme(ThemeKind kind);    // sets the Fusion style and palette on the running QApplication
ThemeKind currentTheme();
const ViewColors& viewColors();     // the current theme's colours
const ViewColors& figureColors();   // the light colours, for exports
QCPColorGradient heatGradient(const ViewColors& c);
QString themeName(ThemeKind kind);  // "light" / "dark"
ThemeKind themeFromName(const QString& name);

}  // namespace cs::ui
