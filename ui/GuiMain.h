#pragma once
// Entry to the GUI, kept free of Qt types so app/main.cpp stays light.
namespace cs::ui {
int runGui(int argc, char** argv);
}
