// `circuitscope patch`: activation patching between a clean and a corrupted prompt
// (core/patching), as a table, JSON, or the Patching view's figure.
#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "patching/ActivationPatching.h"
#include "patching/PatchJson.h"
#include "sae/SaeLoader.h"
#include "ui/figures/PatchingFigure.h"
#include "util/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>

namespace cs::cli {

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The prompt's ids, BOS as the tokenizer prepends it (the same rule for both prompts).
std::vector<int> patchPromptIds(const std::string& text, const LoadedModel& m, const std::string& option) {
    if (text.empty()) throw Error(option + " has no text");
    if (!m.tokenizer) throw Error(m.model->config().source + ": the model directory has no tokenizer; " + option + " needs one");
    std::vector<int> ids;
    if (m.tokenizer->prependBos()) {
        const int b = m.tokenizer->bosId() >= 0 ? m.tokenizer->bosId() : m.model->config().bosTokenId;
        if (b >= 0) ids.push_back(b);
    }
    for (int id : m.tokenizer->encode(text)) ids.push_back(id);
    return ids;
}

std::vector<std::string> tokenTexts(const std::vector<int>& ids, const LoadedModel& m) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(tokenLabel(m, id));
    return out;
}

// The readable report: the two runs' scores and the cells that moved the metric most.
void printTable(const PatchGrid& g, const std::vector<std::string>& clean, const std::vector<std::string>& corrupted) {
    std::printf("%s patching of %s, metric %s: clean %.6g, corrupted %.6g (normalised: clean 1, corrupted 0)\n",
                patchDirectionName(g.direction), patchSiteName(g.site), patchMetricName(g.metric), g.cleanValue,
                g.corruptedValue);
    std::printf("%d patched runs in %d forward batches, %.3f s\n", g.patchedRuns, g.forwardBatches, g.seconds);
    std::printf("tokens that differ:");
    for (size_t p = 0; p < clean.size(); ++p)
        if (clean[p] != corrupted[p]) std::printf("  %zu: '%s' / '%s'", p, clean[p].c_str(), corrupted[p].c_str());
    std::printf("\n");
    const float unpatched = g.direction == PatchDirection::Denoise ? 0.f : 1.f;
    std::vector<size_t> order(g.values.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::abs(g.values[a] - unpatched) > std::abs(g.values[b] - unpatched);
    });
    order.resize(std::min<size_t>(order.size(), 15));
    std::printf("%-16s %-20s %10s %12s\n", g.rowAxis.c_str(), g.columnAxis.c_str(), "value", "raw");
    for (size_t i : order) {
        const int r = int(i / g.columns), c = int(i % g.columns);
        std::string col = g.columnLabels[c];
        if (g.columnPosition[c] >= 0 && size_t(g.columnPosition[c]) < clean.size())
            col = std::to_string(g.columnPosition[c]) + " '" + clean[g.columnPosition[c]] + "'";
        std::printf("%-16s %-20s %10.4f %12.6g\n", g.rowLabels[r].c_str(), col.c_str(), g.values[i], g.raw[i]);
    }
}

}  // namespace

void addPatchCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("patch", "Activation patching: which layers, positions, heads or features carry "
                                            "the difference between a clean and a corrupted prompt");
    struct Args {
        std::string model, clean, corrupted, answer, wrong;
        std::string what = "resid", metric = "logit-diff", direction = "denoise", sae, out;
        bool perPosition = false, json = false;
        int batch = 0, maxFeatures = 32;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--clean", a->clean, "The clean prompt")->required()->check(nonEmpty());
    cmd->add_option("--corrupted", a->corrupted, "The corrupted prompt (the same number of tokens)")->required()->check(nonEmpty());
    cmd->add_option("--answer", a->answer, "The clean answer token at the last position: one-token text or #ID");
    cmd->add_option("--wrong", a->wrong, "The corrupted answer token (logit-diff): one-token text or #ID");
    cmd->add_option("--what", a->what, "What to patch: resid, attn, mlp, heads or features")
        ->check(CLI::IsMember({"resid", "attn", "mlp", "heads", "features"}));
    cmd->add_flag("--per-position", a->perPosition, "With --what heads: each head at each position");
    cmd->add_option("--metric", a->metric, "logit-diff (answer - wrong), prob (of the answer) or kl (to the clean run)")
        ->check(CLI::IsMember({"logit-diff", "prob", "kl"}));
    cmd->add_option("--direction", a->direction,
                    "denoise (clean activations into the corrupted run) or noise (corrupted into the clean run)")
        ->check(CLI::IsMember({"denoise", "noise"}));
    cmd->add_option("--sae", a->sae, "With --what features: the SAE or transcoder folder (with --model demo also a demo "
                                     "name such as res-L1; default res-L2)");
    cmd->add_option("--max-features", a->maxFeatures, "With --what features: rows kept, largest effect first")
        ->check(greaterThan(0));
    cmd->add_option("--batch", a->batch, "Patched runs per forward batch (default: automatic)")->check(greaterThan(0));
    cmd->add_flag("--json", a->json, "Print the grid as JSON (docs/patching.md)");
    cmd->add_option("--out", a->out, "Draw the Patching view's figure (.png, .svg, .pdf)");
    cmd->callback([a, &run] {
        run = [a] {
            const bool figure = endsWith(a->out, ".svg") || endsWith(a->out, ".pdf") || endsWith(a->out, ".png");
            if (!a->out.empty() && !figure) throw Error("--out " + a->out + ": expected .svg, .pdf or .png");
            LoadedModel m = loadModelAndTokenizer(a->model);
            PatchRequest r;
            r.cleanIds = patchPromptIds(a->clean, m, "--clean");
            r.corruptedIds = patchPromptIds(a->corrupted, m, "--corrupted");
            if (r.cleanIds.size() != r.corruptedIds.size())
                throw Error("--clean is " + std::to_string(r.cleanIds.size()) + " tokens and --corrupted " +
                            std::to_string(r.corruptedIds.size()) + "; patching needs prompts of the same number of tokens");
            r.metric = parsePatchMetric(a->metric);
            r.direction = parsePatchDirection(a->direction);
            r.site = a->what == "heads" && a->perPosition ? PatchSite::HeadsByPosition : parsePatchSite(a->what);
            if (a->perPosition && a->what != "heads") throw Error("--per-position goes with --what heads");
            if (r.metric != PatchMetric::KL) {
                if (a->answer.empty()) throw Error("--metric " + a->metric + " needs --answer TOKEN");
                r.answerId = int(targetId(a->answer, m, "--answer"));
            }
            if (r.metric == PatchMetric::LogitDiff) {
                if (a->wrong.empty()) throw Error("--metric logit-diff needs --wrong TOKEN");
                r.wrongId = int(targetId(a->wrong, m, "--wrong"));
            }
            if (r.site == PatchSite::Features) {
                if (a->sae.empty() && a->model != "demo") throw Error("--what features needs --sae PATH");
                const auto paths = saePaths({a->sae.empty() ? std::string("res-L2") : a->sae}, a->model, "patch");
                r.sae = loadSae(paths[0]);
                r.saeId = saeIdsFor(paths)[0];
                r.maxFeatures = a->maxFeatures;
            } else if (!a->sae.empty()) {
                throw Error("--sae goes with --what features");
            }
            r.batch = a->batch;
            const std::vector<std::string> clean = tokenTexts(r.cleanIds, m), corrupted = tokenTexts(r.corruptedIds, m);
            r.positionLabels = clean;
            const PatchGrid g = runActivationPatching(*m.model, r);
            if (figure) {
                // Qt starts only now, to draw: the grid is computed without it.
                OffscreenApplication qapp;
                const QString error = ui::exportPatchingFigure(g, clean, corrupted, QString::fromStdString(a->out));
                if (!error.isEmpty()) throw Error(error.toStdString());
            }
            if (a->json) printJson(patchGridToJson(g, clean, corrupted));
            else printTable(g, clean, corrupted);
            return 0;
        };
    });
}

}  // namespace cs::cli
