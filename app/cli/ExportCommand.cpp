#include "cli/CliCommon.h"

#include "runtime/DemoBundle.h"
#include "ui/figures/HeadlessExport.h"

#include <QApplication>

#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>
#include <unistd.h>

namespace cs::cli {

void addExportCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("export", "Render a view (tokens, attention, logit lens, features, dashboard) to PNG, SVG or PDF, or its data to JSON, without a window");
    struct Args {
        std::string model = "demo", view, prompt, out, lensToken, db;
        std::vector<std::string> saes;
        int layer = 0, head = 0, position = -1, newTokens = 0;
        long index = -1;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo' (default)");
    cmd->add_option("--view", a->view, "tokens, attention, logit-lens, features or dashboard")->required()
        ->check(CLI::IsMember({"tokens", "attention", "logit-lens", "features", "dashboard"}));
    cmd->add_option("--prompt", a->prompt, "Prompt text (every view but dashboard)");
    cmd->add_option("--sae", a->saes,
                    "features: an SAE / transcoder path to attach, repeatable (the demo's own with --model demo); "
                    "dashboard: the store's SAE id (optional when it has one)");
    cmd->add_option("--db", a->db, "dashboard: the feature store; features: labels from it");
    cmd->add_option("--index", a->index, "dashboard: the feature index")->check(CLI::NonNegativeNumber);
    cmd->add_option("--layer", a->layer, "Attention layer")->check(CLI::NonNegativeNumber);
    cmd->add_option("--head", a->head, "Attention head")->check(CLI::NonNegativeNumber);
    cmd->add_option("--position", a->position, "Selected token position (default: the last)");
    cmd->add_option("--lens-token", a->lensToken,
                    "logit-lens: the token to track across layers (text of one token, a vocabulary piece, or #id; "
                    "default: the actual next token)");
    cmd->add_option("--new-tokens", a->newTokens, "Greedy tokens to generate after the prompt first")->check(CLI::NonNegativeNumber);
    cmd->add_option("--out", a->out, "Output file: .png, .svg or .pdf (the figure) or .json (its data)")->required();
    cmd->callback([a, &run] {
        run = [a] {
            // No display needed: Qt's offscreen platform renders the same widgets.
            if (!std::getenv("QT_QPA_PLATFORM")) setenv("QT_QPA_PLATFORM", "offscreen", 1);
            // Qt wants a private runtime directory and warns on every run without one (as root
            // under a bare shell, say): give it one so scripted output stays clean.
            if (!std::getenv("XDG_RUNTIME_DIR")) {
                const std::string dir = "/tmp/circuitscope-runtime-" + std::to_string(::getuid());
                ::mkdir(dir.c_str(), 0700);
                struct stat st {};
                if (::stat(dir.c_str(), &st) == 0 && st.st_uid == ::getuid() && (st.st_mode & 0777) == 0700)
                    setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
            }
            if (a->view != "dashboard" && a->prompt.empty()) {
                std::fprintf(stderr, "circuitscope: error: --prompt is required for --view %s\n", a->view.c_str());
                return 1;
            }
            if (a->view == "dashboard" && a->saes.size() > 1) {
                std::fprintf(stderr, "circuitscope: error: --view dashboard takes one --sae ID\n");
                return 1;
            }
            int argc = 1;
            char name[] = "circuitscope";
            char* argv[] = {name, nullptr};
            QApplication qapp(argc, argv);
            ui::HeadlessExportRequest r;
            if (a->view != "dashboard") r.modelDir = QString::fromStdString(resolveModelDir(a->model));
            for (const std::string& p : a->saes) r.saePaths << QString::fromStdString(p);
            if (a->view == "dashboard") {
                r.saeId = r.saePaths.value(0);
                r.saePaths.clear();
            }
            r.db = QString::fromStdString(a->db);
            r.index = a->index;
            r.view = QString::fromStdString(a->view);
            r.prompt = QString::fromStdString(a->prompt);
            r.maxNewTokens = a->newTokens;
            r.layer = a->layer;
            r.head = a->head;
            r.position = a->position;
            r.lensToken = QString::fromStdString(a->lensToken);
            r.out = QString::fromStdString(a->out);
            const QString error = ui::exportHeadless(r);
            if (!error.isEmpty()) {
                std::fprintf(stderr, "circuitscope: error: %s\n", qPrintable(error));
                return 1;
            }
            printJson({{"out", a->out}, {"view", a->view}});
            return 0;
        };
    });
}

}  // namespace cs::cli
