// `diff`: two checkpoints of one architecture on the same prompts or corpus: per-token KL, per-layer
// residual shift, and the SAE features whose activations moved most (core/diff/ModelDiff.h).
#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "diff/ModelDiff.h"
#include "diff/ModelDiffJson.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "store/IndexCorpus.h"
#include "util/Error.h"

#include <cstdio>
#include <filesystem>

namespace cs::cli {

namespace {

// --sae as given (the demo's names allowed when A is the demo); none given on the demo: its
// residual SAEs, which read the residual stream the diff compares; none given otherwise: none.
std::vector<std::string> diffSaePaths(const std::vector<std::string>& given, const std::string& model) {
    if (!given.empty()) return saePaths(given, model, "diff");
    std::vector<std::string> paths;
    if (model == "demo")
        for (const auto& d : demoSaeDirs())
            if (std::filesystem::path(d).filename().string().rfind("res-", 0) == 0) paths.push_back(d);
    return paths;
}

// Both models held in fp32 whatever their files store (an f16 file converts exactly): a 16-bit
// copy of one of them would add its rounding to the difference being measured.
LoadedModel loadForDiff(const std::string& dirOrDemo) {
    const std::string dir = resolveModelDir(dirOrDemo);
    ModelLoadOptions o;
    o.precision = WeightPrecision::F32;
    LoadedModel m;
    m.model = loadModel(dir, o);
    for (const char* f : {"tokenizer.json", "vocab.json", "tokenizer.model"})
        if (std::filesystem::exists(dir + "/" + f)) {
            m.tokenizer = loadTokenizer(dir);
            break;
        }
    return m;
}

std::vector<int> promptSequence(const std::string& text, const LoadedModel& m, const std::string& bos) {
    if (text.empty()) throw Error("diff: --prompt has no text");
    if (!m.tokenizer)
        throw Error(m.model->config().source + ": the model directory has no tokenizer; diff --prompt needs one");
    std::vector<int> ids = m.tokenizer->encode(text);
    const bool withBos = bos == "yes" || (bos == "auto" && m.tokenizer->prependBos());
    const int bosId = m.tokenizer->bosId() >= 0 ? m.tokenizer->bosId() : m.model->config().bosTokenId;
    if (withBos && bosId >= 0) ids.insert(ids.begin(), bosId);
    return ids;
}

void printSummary(const ModelDiff& d, const LoadedModel& m) {
    std::printf("%ld tokens, mean KL(A || B) %.4f nats, max %.4f\n", d.tokenCount, d.meanKl, d.maxKl);
    std::printf("\nlayer  cosine  |b|/|a|   (blocks.L.hook_resid_post, mean over tokens)\n");
    for (const LayerShift& l : d.layers) std::printf("%5d  %6.4f  %7.4f\n", l.layer, l.cosine, l.normRatio);
    if (d.tokens.size() == 1) {
        std::printf("\nposition  KL      token\n");
        const auto& seq = d.tokens[0];
        for (size_t t = 0; t < seq.size(); ++t)
            std::printf("%8zu  %.4f  %s\n", t, seq[t].kl, tokenLabel(m, seq[t].id).c_str());
    }
    if (!d.features.empty()) {
        std::printf("\nfeatures, largest change of mean activation first\n");
        std::printf("%-10s %6s  %9s %9s %9s  %7s %7s\n", "sae", "index", "mean A", "mean B", "delta", "fire A", "fire B");
        for (const FeatureShift& f : d.features)
            std::printf("%-10s %6ld  %9.4f %9.4f %+9.4f  %7.4f %7.4f\n", f.saeId.c_str(), f.index, f.meanA, f.meanB,
                        f.meanB - f.meanA, f.firingA, f.firingB);
    }
}

}  // namespace

void addDiffCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("diff", "Compare two checkpoints of one architecture: per-token KL, per-layer "
                                           "residual shift, SAE features that changed most");
    struct Args {
        std::string model, modelB, corpus, bos = "auto";
        std::vector<std::string> prompts, saes;
        int top = 20;
        long tokens = 16384;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Model A (the base): Hugging Face directory, or 'demo'")->required();
    cmd->add_option("--model-b", a->modelB, "Model B (e.g. fine-tuned), same architecture: directory, 'demo' or 'demo-dog'")
        ->required();
    cmd->add_option("--sae", a->saes,
                    "SAEs read on both models (paths; with --model demo also res-L0 .. tc-L3); none given on the demo: "
                    "its residual SAEs res-L0..L3");
    auto* prompt = cmd->add_option("--prompt", a->prompts, "Prompt text; repeatable (each is one sequence)")->check(nonEmpty());
    auto* corpus = cmd->add_option("--corpus", a->corpus,
                                   "Corpus (.txt: documents separated by blank lines, or .jsonl as `index` reads), "
                                   "cut into windows of the model's context");
    prompt->excludes(corpus);
    cmd->add_option("--tokens", a->tokens, "With --corpus: at most this many tokens (default 16384)")
        ->check(greaterThan(0));
    cmd->add_option("--bos", a->bos, "Prepend BOS to each --prompt: auto (tokenizer's setting), yes, no")
        ->check(CLI::IsMember({"auto", "yes", "no"}));
    cmd->add_option("--top", a->top, "Features kept, over all SAEs, by |mean B - mean A|")->check(atLeast(1));
    cmd->add_flag("--json", a->json, "Print the diff as JSON (docs/diff.md)");
    cmd->callback([a, &run] {
        run = [a] {
            if (a->prompts.empty() && a->corpus.empty()) throw Error("diff: give --prompt TEXT or --corpus FILE");
            LoadedModel ma = loadForDiff(a->model);
            LoadedModel mb = loadForDiff(a->modelB);
            checkSameArchitecture(*ma.model, *mb.model);

            DiffRequest req;
            req.topFeatures = a->top;
            for (const auto& p : a->prompts) req.sequences.push_back(promptSequence(p, ma, a->bos));
            if (!a->corpus.empty()) {
                const auto docs = readIndexCorpus(a->corpus, ma.tokenizer.get(), ma.model->config().vocabSize, a->tokens);
                for (auto& w : cutWindows(docs, ma.model->config().nCtx, a->tokens)) req.sequences.push_back(std::move(w.tokens));
                if (req.sequences.empty()) throw Error(a->corpus + ": no tokens");
            }
            const std::vector<std::string> paths = diffSaePaths(a->saes, a->model);
            const auto ids = saeIdsFor(paths);
            for (size_t i = 0; i < paths.size(); ++i) req.saes.push_back({ids[i], loadSae(paths[i])});
            req.progress = [](int done, int total) {
                std::fprintf(stderr, "\rdiff: %d/%d sequences", done, total);
                if (done == total) std::fprintf(stderr, "\n");
                return !interruptFlag().load();
            };
            const ModelDiff d = diffModels(*ma.model, *mb.model, req);
            if (a->json) printJson(modelDiffToJson(d, ma.tokenizer.get()));
            else printSummary(d, ma);
            return 0;
        };
    });
}

}  // namespace cs::cli
