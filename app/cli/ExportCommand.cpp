#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "runtime/DemoBundle.h"
#include "steer/SteeringRun.h"
#include "tokenize/TokenIdPrompt.h"
#include "ui/figures/FigureExport.h"
#include "ui/figures/HeadlessExport.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

#include <sys/stat.h>
#include <unistd.h>

namespace cs::cli {

namespace {

struct ExportArgs {
    std::string model = "demo", view, prompt, tokens, out, lensToken, db;
    std::vector<std::string> saes;
    int layer = 0, head = 0, position = -1, newTokens = 0;
    long index = -1;
    CLI::Option* promptOpt = nullptr;
    CLI::Option* tokensOpt = nullptr;
    CLI::Option* newTokensOpt = nullptr;
    // --view steering
    std::vector<std::string> specs;
    std::string when, preset;
    SamplingArgs sampling;
};

// The comparison is what `steer` computes (same plan parsing, SAEs and generation), so the figure
// shows exactly the continuations `steer --json` prints; only then does Qt start, to draw it.
int exportSteering(const ExportArgs& a) {
    SteeringPlan plan = steeringPlanFromArgs(a.specs, a.when, a.preset);
    LoadedModel m = loadModelAndTokenizer(a.model);
    SteeringRequest req;
    req.saes = loadSteeringSaes(a.model, a.saes);
    PromptArgs prompt;
    prompt.prompt = a.prompt;
    prompt.promptOpt = a.promptOpt;
    prompt.tokens = a.tokens;
    prompt.tokensOpt = a.tokensOpt;
    req.prompt = promptIds(prompt, m);
    req.promptText = a.prompt;
    req.sampling = a.sampling.options();
    req.settings = {plan};
    const SteeringComparison c = runSteeringComparison(*m.model, m.tokenizer.get(), req);
    OffscreenApplication qapp;
    const QString error = ui::exportSteeringComparison(c, QString::fromStdString(a.out));
    if (!error.isEmpty()) {
        std::fprintf(stderr, "circuitscope: error: %s\n", qPrintable(error));
        return 1;
    }
    printJson({{"out", a.out}, {"view", a.view}});
    return 0;
}

}  // namespace

void addExportCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("export", "Render a view (tokens, attention, logit lens, features, dashboard, steering) to PNG, SVG or PDF, or its data to JSON, without a window");
    auto a = std::make_shared<ExportArgs>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo' (default)");
    cmd->add_option("--view", a->view, "tokens, attention, logit-lens, features, dashboard or steering")->required()
        ->check(CLI::IsMember({"tokens", "attention", "logit-lens", "features", "dashboard", "steering"}));
    a->promptOpt = cmd->add_option("--prompt", a->prompt, "Prompt text (every view but dashboard)")->check(nonEmpty());
    a->tokensOpt = cmd->add_option("--tokens", a->tokens,
                                   "Comma-separated token ids instead of --prompt (a model without a tokenizer takes only these)");
    a->promptOpt->excludes(a->tokensOpt);
    cmd->add_option("--sae", a->saes,
                    "features, steering: an SAE / transcoder path to attach, repeatable (the demo's own with --model demo); "
                    "dashboard: the store's SAE id (optional when it has one)");
    cmd->add_option("--db", a->db, "dashboard: the feature store; features: labels from it");
    cmd->add_option("--index", a->index, "dashboard: the feature index")->check(atLeast(0));
    cmd->add_option("--layer", a->layer, "Attention layer")->check(atLeast(0));
    cmd->add_option("--head", a->head, "Attention head")->check(atLeast(0));
    cmd->add_option("--position", a->position, "Selected token position (default: the last)")->default_str("")->check(atLeast(0));
    cmd->add_option("--lens-token", a->lensToken,
                    "logit-lens: the token to track across layers (text of one token, a vocabulary piece, or #id; "
                    "default: the actual next token)");
    a->newTokensOpt = cmd->add_option("--new-tokens", a->newTokens, "Greedy tokens to generate after the prompt first")
                          ->check(atLeast(0));
    cmd->add_option("--steer", a->specs,
                    "steering: one row of the setting compared with the baseline, [SAE_ID/]FEATURE:MODE[=VALUE][@POSITIONS]; repeatable");
    cmd->add_option("--when", a->when, "steering: [SAE_ID/]FEATURE>THRESHOLD, the rows apply only where it holds");
    cmd->add_option("--preset", a->preset, "steering: a preset (JSON) whose rows start the setting");
    a->sampling.addTo(*cmd);  // steering: --max-new and the sampling options, as `steer` takes them
    cmd->add_option("--out", a->out, "Output file: .png, .svg or .pdf (the figure) or .json (its data)")->required();
    cmd->callback([a, &run] {
        run = [a] {
            prepareOffscreenQt();
            if (a->view != "dashboard" && a->prompt.empty() && a->tokensOpt->count() == 0) {
                throw UsageError("--prompt (or --tokens) is required for --view " + a->view);
            }
            const bool steering = a->view == "steering";
            if (!steering && (!a->specs.empty() || !a->when.empty() || !a->preset.empty())) {
                throw UsageError("--steer, --when and --preset are for --view steering");
            }
            if (steering && a->newTokensOpt->count() > 0) {
                throw UsageError("--view steering: give the continuation's length as --max-new N");
            }
            if (steering && a->specs.empty() && a->preset.empty()) {
                throw UsageError("--view steering: give at least one --steer SPEC (or a --preset)");
            }
            if (a->view == "dashboard" && a->saes.size() > 1) {
                throw UsageError("--view dashboard takes one --sae ID");
            }
            const QString out = QString::fromStdString(a->out);
            if (!out.endsWith(".json", Qt::CaseInsensitive) && ui::figureFormat(out).isEmpty()) {
                std::fprintf(stderr, "circuitscope: error: %s: unknown format (use .png, .svg or .pdf for a figure, .json for its data)\n",
                             a->out.c_str());
                return 1;
            }
            if (steering) return exportSteering(*a);
            OffscreenApplication qapp;
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
            if (a->tokensOpt->count() > 0) {  // the window's own way of writing ids: "#1 #403"
                std::vector<int> ids;
                for (long id : parseIdList(a->tokens)) {
                    if (id < 0 || id > std::numeric_limits<int>::max())
                        throw UsageError("--tokens: " + std::to_string(id) + " is not a token id (0 or more)");
                    ids.push_back(static_cast<int>(id));
                }
                if (ids.empty()) throw UsageError("--tokens: no ids given");
                r.prompt = QString::fromStdString(tokenIdPromptText(ids));
            }
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
