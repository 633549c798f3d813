// `circuitscope index`: build (or resume) a feature store from a corpus.
#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "util/Error.h"

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>

namespace cs::cli {

void addIndexCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("index", "Index a corpus into a feature store (resumable; Ctrl-C stops after the batch in flight)");
    struct Args {
        std::string model, corpus, db;
        std::vector<std::string> saes;
        long generate = 0;
        long tokens = 1000000;
        int context = 0;
        int batch = 256;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--sae", a->saes, "SAE / transcoder path; repeatable (default with --model demo: the demo's SAEs)");
    auto* corpus = cmd->add_option("--corpus", a->corpus, ".txt (documents separated by blank lines) or .jsonl ({\"text\"} or {\"tokens\"} per line)");
    auto* gen = cmd->add_option("--generate", a->generate, "Sample N documents from the model instead of reading a corpus")
                    ->check(greaterThan(0));
    corpus->excludes(gen);
    cmd->add_option("--db", a->db, "Feature store to write (SQLite); re-run the same command to resume")->required();
    cmd->add_option("--tokens", a->tokens, "Token budget (default 1000000)")->check(greaterThan(0));
    cmd->add_option("--context", a->context, "Window length T (default: min(model context, 128))")->check(greaterThan(0));
    cmd->add_option("--batch", a->batch, "Windows per batch and transaction (default 256)")->check(greaterThan(0));
    cmd->add_flag("--json", a->json, "Print {\"db\",\"tokens\",\"windows\",\"resumed\",\"complete\"} when done");
    cmd->callback([a, &run] {
        run = [a] {
            if (a->corpus.empty() && a->generate <= 0) throw Error("index: give --corpus FILE or --generate N");
            LoadedModel m = loadModelAndTokenizer(a->model);
            auto saes = loadIndexSaes(a->model, a->saes, "index");
            IndexOptions o;
            o.modelDir = a->model == "demo" ? "demo" : std::filesystem::absolute(a->model).lexically_normal().string();
            o.corpusPath = a->corpus.empty() ? "" : std::filesystem::absolute(a->corpus).lexically_normal().string();
            o.generateDocuments = a->generate;
            o.maxTokens = a->tokens;
            o.context = a->context;
            o.batch = a->batch;
            const auto t0 = std::chrono::steady_clock::now();
            std::string lastPhase;
            auto progress = [&](const IndexProgress& p) {
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                if (p.phase == "indexing" && p.total > 0)
                    std::fprintf(stderr, "\rindex: %ld / %ld tokens (%.0f%%), %.1f s", p.done, p.total,
                                 100.0 * p.done / p.total, s);
                else if (p.phase == "generating")
                    std::fprintf(stderr, "\rindex: generating documents %ld / %ld", p.done, p.total);
                else if (p.phase != lastPhase && p.phase != "done")
                    std::fprintf(stderr, "%sindex: %s\n", lastPhase.empty() ? "" : "\n", p.phase.c_str());
                lastPhase = p.phase;
                std::fflush(stderr);
            };
            const IndexResult r = indexFeatures(a->db, *m.model, m.tokenizer.get(), saes, o, progress, &interruptFlag());
            std::fprintf(stderr, "\nindex: model+SAEs %.1f s, bookkeeping %.1f s, commits %.1f s\n", r.forwardSeconds,
                         r.bookkeepingSeconds, r.commitSeconds);
            if (r.cancelled) std::cerr << "index: stopped; re-run the same command to resume\n";
            else if (r.alreadyComplete) std::cerr << "index: " << a->db << " is already complete\n";
            if (a->json)
                printJson({{"db", a->db}, {"tokens", r.tokens}, {"windows", r.windows}, {"resumed", r.resumed},
                           {"complete", !r.cancelled}});
            return r.cancelled ? 130 : 0;
        };
    });
}

}  // namespace cs::cli
