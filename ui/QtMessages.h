#pragma once
// Qt's own debug output and warnings (font fallbacks, "This plugin does not support ..." from the
// offscreen platform, QStandardPaths' runtime-directory notes) mean nothing to a user of the
// window and drowned the one line a command prints on error. They stay off the terminal unless
// CIRCUITSCOPE_QT_MESSAGES=1 is set; critical and fatal messages always show.
namespace cs::ui {

void keepQtWarningsOffTheTerminal();

}  // namespace cs::ui
