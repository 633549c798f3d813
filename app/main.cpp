// circuitscope: with no subcommand, the GUI; with one, the same engine headless.
#include "cli/CliCommon.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/Threads.h"
#include "runtime/Version.h"
#include "ui/GuiMain.h"
#include "ui/GuiOptions.h"

#include <c10/util/Exception.h>

#include <QtGlobal>

#include <cstdlib>
#include <iostream>

namespace {

std::string firstLine(const std::string& s) {
    auto p = s.find('\n');
    return p == std::string::npos ? s : s.substr(0, p);
}

// Usage errors, parse-time or found later: one line, exit 2 (docs/cli.md, "Usage errors").
int usageError(const std::string& message) {
    std::cerr << "circuitscope: error: " << firstLine(message) << "\n";
    return 2;
}

// The window's options (ui/GuiOptions: one table, also what ui/GuiMain.cpp parses).
const cs::ui::GuiOption* findGuiOption(const std::string& name) {
    for (const auto& o : cs::ui::guiOptions())
        if (name == std::string("--") + o.name) return &o;
    return nullptr;
}

std::string guiUsage() {
    std::string s = "Without a subcommand, circuitscope opens the window (the model given, else the last one used, "
                    "else the demo):\n  circuitscope";
    size_t column = s.size() - s.rfind('\n');
    for (const auto& o : cs::ui::guiOptions()) {
        const std::string item = std::string(" [--") + o.name + (o.value ? std::string(" ") + o.value : "") + "]";
        if (column + item.size() > 100) {
            s += "\n              ";
            column = 14;
        }
        s += item;
        column += item.size();
    }
    return s + "\n";
}

CLI::Validator threadsCheck() {
    return cs::cli::inRange(1, cs::cli::maxComputeThreads(), "4 per core");
}

// What argv asks for: the window, a subcommand (or --help/--version), or a usage error.
struct LaunchMode {
    bool headless = false;
    std::string error;  // non-empty: refuse before Qt starts
};

LaunchMode scanArguments(int argc, char** argv) {
    LaunchMode mode;
    std::string unknown;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.empty() || a[0] != '-' || a == "--help" || a == "-h" || a == "--version") {
            mode.headless = true;  // a subcommand: CLI11 judges every option from here
            return mode;
        }
        const size_t eq = a.find('=');
        const std::string name = a.substr(0, eq);
        const cs::ui::GuiOption* o = findGuiOption(name);
        if (!o) {
            if (unknown.empty()) unknown = a;
            continue;
        }
        if (!o->value) continue;
        std::string value;
        if (eq != std::string::npos) {
            value = a.substr(eq + 1);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            mode.error = name + " needs a value (" + o->value + ")";
            return mode;
        }
        // The same ranges as the subcommands' options of those names.
        std::string why;
        if (name == "--threads") why = threadsCheck()(value);
        if (name == "--position") why = cs::cli::atLeast(0)(value);
        if (!why.empty() && mode.error.empty()) mode.error = name + ": " + why;
    }
    if (!unknown.empty())
        mode.error = "unknown option '" + unknown + "' (without a subcommand only the window's options are taken; "
                     "see circuitscope --help)";
    return mode;
}

// Qt's xcb plug-in aborts without a display; say so in one line instead.
bool displayAvailable() {
#ifdef __linux__
    auto set = [](const char* v) {
        const char* s = std::getenv(v);
        return s && *s;
    };
    return set("QT_QPA_PLATFORM") || set("DISPLAY") || set("WAYLAND_DISPLAY");
#else
    return true;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    const LaunchMode mode = scanArguments(argc, argv);
    if (!mode.headless) {
        if (!mode.error.empty()) return usageError(mode.error);
        if (!displayAvailable())
            return usageError("no display (DISPLAY and WAYLAND_DISPLAY are unset); use a subcommand for headless work "
                              "(circuitscope --help), or set QT_QPA_PLATFORM=offscreen");
        return cs::ui::runGui(argc, argv);
    }

    CLI::App app{"Circuitscope: mechanistic interpretability for language models"};
    // Every option's default shows in --help (set before any option or subcommand exists).
    app.option_defaults()->always_capture_default();
    std::string version = cs::versionReport({{"Qt", qVersion()}, {"CLI11", CLI11_VERSION}});
    if (!version.empty() && version.back() == '\n') version.pop_back();
    app.set_version_flag("--version", version);
    int threads = 0;
    app.add_option("--threads", threads, "Compute threads (default: one per core)")->default_str("")->check(threadsCheck());
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
    // After the subcommands, which would otherwise repeat it under their own --help.
    app.footer(guiUsage());
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with exit code 0: CLI11 prints them.
        if (e.get_exit_code() == 0) return app.exit(e);
        return usageError(e.what());
    } catch (const cs::cli::UsageError& e) {
        return usageError(e.what());
    }
    try {
        cs::setComputeThreads(threads);
        return run ? run() : 0;
    } catch (const cs::cli::UsageError& e) {
        return usageError(e.what());
    } catch (const c10::Error& e) {
        std::cerr << "circuitscope: error: " << firstLine(e.what_without_backtrace()) << "\n";
    } catch (const std::exception& e) {
        std::cerr << "circuitscope: error: " << firstLine(e.what()) << "\n";
    }
    return 1;
}
