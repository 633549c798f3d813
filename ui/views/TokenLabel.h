#pragma once
// How a token's text is shown everywhere (chips, axis labels, tables): whitespace made visible
// but quiet (space as a middle dot, newline as a return arrow, tab as an arrow), and bytes that
// are not whole UTF-8 characters as <0xNN>.
#include <QString>

#include <string>

namespace cs::ui {

QString tokenLabel(const std::string& text);
// Short form for axis ticks: at most `maxChars` characters, an ellipsis when cut.
QString shortTokenLabel(const std::string& text, int maxChars = 10);
// True when the label is whitespace only (so it can be drawn in the muted colour).
bool isWhitespaceToken(const std::string& text);

}  // namespace cs::ui
