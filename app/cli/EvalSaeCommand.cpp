#include "cli/CliCommon.h"

#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "train/SaeTrainer.h"
#include "train/TextCorpus.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

namespace cs::cli {

// Re-measures a saved SAE or transcoder the way train-sae measured it when it was written, so a
// shipped or downloaded dictionary can be checked on any text without retraining.
void addEvalSaeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("eval-sae", "Held-out metrics of an SAE or transcoder: L0, variance explained, CE increase");
    struct Args {
        std::string model, sae, corpus;
        double heldOut = 0.1;
        long tokens = 65536;  // as train-sae measures (at most the held-out text)
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--sae", a->sae, "SAE / transcoder path (SAELens folder, params.npz, Llama Scope folder)")->required();
    cmd->add_option("--corpus", a->corpus, "Plain-text corpus; its last --held-out fraction is evaluated")->required();
    cmd->add_option("--held-out", a->heldOut, "Fraction of the corpus (by bytes, from the end) to evaluate on")
        ->check(inRange(0.0, 1.0));
    cmd->add_option("--tokens", a->tokens, "Tokens to evaluate (whole context windows)")->check(greaterThan(0));
    cmd->callback([a, &run] {
        run = [a] {
            LoadedModel m = loadModelAndTokenizer(a->model);
            if (!m.tokenizer) throw Error(resolveModelDir(a->model) + ": eval-sae needs the model's tokenizer");
            CorpusSplit split = readCorpus(a->corpus, a->heldOut);
            if (split.heldOut.empty()) throw Error(a->corpus + ": no held-out paragraphs (raise --held-out)");
            SaeMetrics metrics = evaluateSae(*m.model, *m.tokenizer, loadSae(a->sae), split.heldOut, a->tokens);
            nlohmann::json j = metricsJson(metrics);
            j.erase("dead_fraction");  // a training-window statistic, not measured here
            printJson(j);
            return 0;
        };
    });
}

}  // namespace cs::cli
