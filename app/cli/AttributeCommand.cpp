#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "attribution/Attribution.h"
#include "attribution/GraphJson.h"
#include "attribution/GraphPruning.h"
#include "sae/SaeLoader.h"
#include "store/FeatureStore.h"
#include "ui/figures/HeadlessExport.h"
#include "util/Error.h"

#include <filesystem>
#include <iostream>
#include <set>

namespace cs::cli {

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The logit nodes' labels: the token, or "A − B" for a logit difference.
std::string logitLabel(const GraphNode& n, const LoadedModel& m) {
    const std::string a = tokenLabel(m, n.feature);
    return n.minusToken < 0 ? a : a + " \u2212 " + tokenLabel(m, n.minusToken);
}

}  // namespace

void addAttributeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("attribute", "Compute and prune an attribution graph (Neuronpedia's JSON), or re-prune a graph file");
    struct Args {
        std::string model;
        std::vector<std::string> transcoders;
        PromptArgs prompt;
        std::vector<std::string> targets;
        std::vector<std::string> logitDiff;
        int maxLogits = 10;
        double logitProbability = 0.95;
        double nodeThreshold = 0.8, edgeThreshold = 0.98;
        std::string out, in, db;
        int batch = 64;
        double minLinkShare = 0;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'");
    cmd->add_option("--transcoders,--saes", a->transcoders,
                    "Transcoders (one per layer; layers without one keep their MLP as error nodes), or residual-stream "
                    "SAEs (blocks.L.hook_resid_pre/mid/post, at most one per layer; every MLP stays whole as error nodes), "
                    "not both. Paths; with --model demo also the demo's names (tc-L0, res-L2); none given: the demo's tc-L0..L3");
    a->prompt.addTo(*cmd);
    auto* target = cmd->add_option("--target", a->targets,
                                   "Target token at the last position (#ID, ID, one-token text or a piece); repeatable");
    cmd->add_option("--logit-diff", a->logitDiff,
                    "One target node instead: logit(A) - logit(B) at the last position (tokens as --target takes them)")
        ->expected(2)
        ->type_name("TOKEN")
        ->excludes(target);
    cmd->add_option("--max-logits", a->maxLogits, "Without --target or --logit-diff: at most this many target logits")->check(greaterThan(0));
    cmd->add_option("--logit-probability", a->logitProbability,
                    "Without --target or --logit-diff: the most likely tokens until their probabilities sum to this")->check(inRange(0.0, 1.0));
    cmd->add_option("--node-threshold", a->nodeThreshold, "Keep nodes up to this cumulative influence (1: all)")->check(inRange(0.0, 1.0));
    cmd->add_option("--edge-threshold", a->edgeThreshold, "Keep links up to this cumulative influence (1: all)")->check(inRange(0.0, 1.0));
    cmd->add_option("--batch", a->batch, "Target rows per backward pass")->check(greaterThan(0));
    cmd->add_option("--min-link-share", a->minLinkShare,
                    "While computing, drop links below this share of their target's total |weight| (0: keep all)")
        ->check(inRange(0.0, 1.0));
    cmd->add_option("--db", a->db, "Feature store whose labels become the features' clerp");
    cmd->add_option("--in", a->in, "A graph file to read instead of computing one (its thresholds are applied again)");
    cmd->add_option("--out", a->out, "graph.json to write, or a figure of the pruned graph (.svg, .pdf, .png)")->required();
    cmd->callback([a, &run] {
        run = [a] {
            const bool figure = endsWith(a->out, ".svg") || endsWith(a->out, ".pdf") || endsWith(a->out, ".png");
            if (!figure && !endsWith(a->out, ".json")) throw Error("--out " + a->out + ": expected .json, or .svg, .pdf or .png for a figure");
            AttributionGraph graph;
            if (!a->in.empty()) {
                if (!a->model.empty()) throw Error("--in reads a graph; it takes no --model");
                graph = loadGraph(a->in);
            } else {
                if (a->model.empty()) throw Error("attribute: give --model DIR|demo (or --in graph.json)");
                LoadedModel m = loadModelAndTokenizer(a->model);
                const std::vector<std::string> paths = saePaths(a->transcoders, a->model, "attribute");
                const auto ids = saeIdsFor(paths);
                std::vector<AttributionTranscoder> tcs;
                for (size_t i = 0; i < paths.size(); ++i) tcs.push_back({ids[i], loadSae(paths[i])});
                AttributionOptions o;
                for (const auto& t : a->targets) o.targets.push_back(targetId(t, m));
                if (a->logitDiff.size() == 2)
                    o.logitDifference = {{targetId(a->logitDiff[0], m, "--logit-diff"), targetId(a->logitDiff[1], m, "--logit-diff")}};
                o.maxLogits = a->maxLogits;
                o.logitProbability = a->logitProbability;
                o.batch = a->batch;
                o.minLinkShare = a->minLinkShare;
                const std::vector<long> tokens = promptIds(a->prompt, m);
                graph = computeAttribution(*m.model, tcs, tokens, o);
                graph.scan = a->model == "demo" ? "demo" : std::filesystem::path(a->model).filename().string();
                graph.prompt = a->prompt.prompt;
                graph.slug = "circuitscope-attribution";
                for (long t : tokens) graph.tokenTexts.push_back(tokenLabel(m, t));
                std::unique_ptr<FeatureStore> store;
                if (!a->db.empty()) store = std::make_unique<FeatureStore>(a->db);
                for (GraphNode& n : graph.nodes) {
                    if (n.kind == NodeKind::Logit) n.label = logitLabel(n, m);
                    else if (n.kind == NodeKind::Embedding) n.label = graph.tokenTexts[static_cast<size_t>(n.position)];
                    else if (n.kind == NodeKind::Feature && store)
                        n.label = store->label(graph.saeIds[static_cast<size_t>(n.layer)], n.feature);
                }
            }
            graph = pruneGraph(graph, static_cast<float>(a->nodeThreshold), static_cast<float>(a->edgeThreshold));
            if (figure) {
                // Qt starts only now, to draw: the graph is computed (or read) without it.
                OffscreenApplication qapp;
                const QString error = ui::exportGraphFigure(graph, QString::fromStdString(a->out));
                if (!error.isEmpty()) throw Error(error.toStdString());
            } else {
                saveGraph(a->out, graph);
            }
            printJson({{"out", a->out},
                       {"nodes", graph.nodes.size()},
                       {"links", graph.links.size()},
                       {"replacement_score", graph.replacementScore},
                       {"completeness_score", graph.completenessScore}});
            return 0;
        };
    });
}

}  // namespace cs::cli
