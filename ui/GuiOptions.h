#pragma once
// The window's launch options, in one table: ui/GuiMain.cpp parses them, and app/main.cpp reads
// the same table to tell a window launch from a subcommand, refuse unknown options before Qt
// starts, and list them in --help. No Qt types here, so app/main.cpp stays light.
#include <vector>

namespace cs::ui {

struct GuiOption {
    const char* name;   // without the leading "--"
    const char* value;  // the value's name in help ("DIR"); nullptr for a flag
    const char* help;
};

const std::vector<GuiOption>& guiOptions();

}  // namespace cs::ui
