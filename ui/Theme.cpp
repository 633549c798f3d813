#include "ui/Theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyleFactory>
#include "ui/Qcp.h"

#include <algorithm>
#include <cmath>

namespace cs::ui {

namespace {

ThemeKind g_theme = ThemeKind::Light;

const ViewColors& lightColors() {
    static const ViewColors c{QColor("#ffffff"), QColor("#1f2328"), QColor("#8c959f"), QColor("#d0d7de"),
                              QColor("#eef2f7"), QColor("#fff3d6"), QColor("#c9d1d9"), QColor("#0969da"),
                              QColor("#ddf4ff"), QColor("#ffffff"), QColor("#08306b"), QColor("#f0883e")};
    return c;
}

const ViewColors& darkColors() {
    static const ViewColors c{QColor("#0d1117"), QColor("#e6edf3"), QColor("#7d8590"), QColor("#30363d"),
                              QColor("#1c2330"), QColor("#3b2f13"), QColor("#3d444d"), QColor("#58a6ff"),
                              QColor("#12263f"), QColor("#0d1117"), QColor("#9ecbff"), QColor("#db6d28")};
    return c;
}

}  // namespace

QString themeName(ThemeKind kind) { return kind == ThemeKind::Dark ? "dark" : "light"; }
ThemeKind themeFromName(const QString& name) { return name == "dark" ? ThemeKind::Dark : ThemeKind::Light; }
ThemeKind currentTheme() { return g_theme; }
const ViewColors& viewColors() { return g_theme == ThemeKind::Dark ? darkColors() : lightColors(); }
const ViewColors& figureColors() { return lightColors(); }

QColor activationShade(const ViewColors& c, const QColor& base, double strength) {
    const double s = std::clamp(strength, 0.0, 1.0);
    auto mix = [s](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * s)); };
    return QColor(mix(base.red(), c.activation.red()), mix(base.green(), c.activation.green()),
                  mix(base.blue(), c.activation.blue()));
}

QCPColorGradient heatGradient(const ViewColors& c) {
    QCPColorGradient g;
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    g.setColorStopAt(0.0, c.heatLow);
    g.setColorStopAt(1.0, c.heatHigh);
    return g;
}

void applyTheme(ThemeKind kind) {
    g_theme = kind;
    QApplication::setStyle(QStyleFactory::create("Fusion"));
    const ViewColors& c = viewColors();
    QPalette p;
    if (kind == ThemeKind::Dark) {
        p.setColor(QPalette::Window, QColor("#161b22"));
        p.setColor(QPalette::WindowText, c.text);
        p.setColor(QPalette::Base, c.background);
        p.setColor(QPalette::AlternateBase, QColor("#161b22"));
        p.setColor(QPalette::Text, c.text);
        p.setColor(QPalette::Button, QColor("#21262d"));
        p.setColor(QPalette::ButtonText, c.text);
        p.setColor(QPalette::ToolTipBase, QColor("#21262d"));
        p.setColor(QPalette::ToolTipText, c.text);
        p.setColor(QPalette::Highlight, QColor("#1f6feb"));
        p.setColor(QPalette::HighlightedText, Qt::white);
        p.setColor(QPalette::PlaceholderText, c.muted);
        p.setColor(QPalette::Disabled, QPalette::Text, c.muted);
        p.setColor(QPalette::Disabled, QPalette::ButtonText, c.muted);
    } else {
        p = QApplication::style()->standardPalette();
        p.setColor(QPalette::Base, c.background);
        p.setColor(QPalette::Highlight, c.selection);
    }
    QApplication::setPalette(p);
}

}  // namespace cs::ui
