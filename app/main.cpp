// circuitscope: with no subcommand, the GUI; with one, the same engine headless.
#include "cli/CliCommon.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/Threads.h"
#include "ui/GuiMain.h"

#include <c10/util/Exception.h>

#include <iostream>

namespace {

std::string firstLine(const std::string& s) {
    auto p = s.find('\n');
    return p == std::string::npos ? s : s.substr(0, p);
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    // No subcommand (or only GUI options): open the window.
    bool headless = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (!a.empty() && a[0] != '-') {
            headless = true;
            break;
        }
        if (a == "--help" || a == "-h" || a == "--version") headless = true;
        // Skip the GUI options' values.
        for (const char* opt : {"--model", "--threads", "--screenshot", "--screenshot-view", "--screenshot-delay", "--session",
                                "--theme", "--size", "--open-feature", "--position", "--steer-preset", "--open-graph", "--patch", "--compare", "--dtype"})
            if (a == opt) ++i;
    }
    if (!headless) return cs::ui::runGui(argc, argv);

    CLI::App app{"Circuitscope: mechanistic interpretability for language models"};
    app.set_version_flag("--version", "circuitscope 0.1.0");
    int threads = 0;
    app.add_option("--threads", threads, "Compute threads (default: one per core)");
    app.require_subcommand(1);
    cs::cli::CommandRunner run;
    cs::cli::addTokenizeCommand(app, run);
    cs::cli::addForwardCommand(app, run);
    cs::cli::addGenerateCommand(app, run);
    cs::cli::addHooksCommand(app, run);
    cs::cli::addTrainLmCommand(app, run);
    cs::cli::addTrainSaeCommand(app, run);
    cs::cli::addEvalSaeCommand(app, run);
    cs::cli::addFeaturesCommand(app, run);
    cs::cli::addExportCommand(app, run);
    cs::cli::addConvertSaeCommand(app, run);
    cs::cli::addIndexCommand(app, run);
    cs::cli::addSaesCommand(app, run);
    cs::cli::addFeatureCommand(app, run);
    cs::cli::addSearchCommand(app, run);
    cs::cli::addLabelCommand(app, run);
    cs::cli::addSteerCommand(app, run);
    cs::cli::addAttributeCommand(app, run);
    cs::cli::addInterveneCommand(app, run);
    cs::cli::addPatchCommand(app, run);
    cs::cli::addDiffCommand(app, run);
    cs::cli::addDtypeOption(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        cs::setComputeThreads(threads);
        return run ? run() : 0;
    } catch (const c10::Error& e) {
        std::cerr << "circuitscope: error: " << firstLine(e.what_without_backtrace()) << "\n";
    } catch (const std::exception& e) {
        std::cerr << "circuitscope: error: " << firstLine(e.what()) << "\n";
    }
    return 1;
}
