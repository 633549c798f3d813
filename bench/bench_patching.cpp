// What batching buys activation patching: the same grid computed as runActivationPatching does it
// (automatic batches of patched runs through one forward pass each, each batch starting at the
// first position it patches) and as one plain patched forward of the whole prompt per cell
// (batch 1, reusePrefix off), in the same process, interleaved. Two cases:
//   demo:  every (layer, position) residual cell of a 16-token prompt (5 x 16 = 80 runs)
//   gpt2s: every head at every position (heads-by-position) on a GPT-2-small-shaped random model
//          (12 layers, d_model 768, 12 heads, vocab 50257), 16 tokens: 2304 runs. One forward per
//          cell takes minutes here, so that side is timed on its first --sample cells (every cell
//          costs one identical forward pass) and scaled to the grid; the batched side runs whole.
//
//   bench_patching [--threads N] [--reps R] [--sample S] [--only demo|gpt2s]
#include "TestSupport.h"

#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "patching/ActivationPatching.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "tokenize/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Seconds per patched run: the whole grid, or its first `sample` runs (cancelled there).
double secondsPerRun(const cs::Transformer& model, cs::PatchRequest r, int batch, int sample, int& runs) {
    r.batch = batch;
    r.reusePrefix = batch != 1;
    int done = 0;
    if (sample > 0) r.progress = [&](int d, int) { done = d; return d < sample; };
    const auto t0 = Clock::now();
    try {
        const cs::PatchGrid g = cs::runActivationPatching(model, r);
        done = g.patchedRuns;
    } catch (const std::exception&) {
        // cancelled after `sample` runs
    }
    runs = done;
    return std::chrono::duration<double>(Clock::now() - t0).count() / std::max(1, done);
}

void report(const char* name, const cs::Transformer& model, const cs::PatchRequest& r, int reps, int sample) {
    std::vector<double> batched, single;
    int total = 0, sampled = 0;
    for (int i = 0; i < reps; ++i) {
        batched.push_back(secondsPerRun(model, r, 0, 0, total));
        single.push_back(secondsPerRun(model, r, 1, sample, sampled));
    }
    const double b = median(batched), s = median(single);
    std::printf("%-6s %5d patched runs: batched %8.1f ms (%.3f ms/run), one forward per cell %8.1f ms%s (%.3f ms/run) = %5.1fx\n",
                name, total, b * total * 1e3, b * 1e3, s * total * 1e3,
                sampled < total ? (" [from " + std::to_string(sampled) + " runs]").c_str() : "", s * 1e3, s / b);
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    int threads = 2, reps = 3, sample = 96;
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--threads") threads = std::atoi(argv[i + 1]);
        else if (a == "--reps") reps = std::atoi(argv[i + 1]);
        else if (a == "--sample") sample = std::atoi(argv[i + 1]);
        else if (a == "--only") only = argv[i + 1];
    }
    cs::setComputeThreads(threads);
    std::printf("circuitscope bench_patching: %d threads, median of %d runs\n", threads, reps);

    if (only.empty() || only == "demo") {
        const std::string dir = cs::resolveModelDir("demo");
        auto model = cs::loadModel(dir);
        auto tok = cs::loadTokenizer(dir);
        auto ids = [&](const char* text) {
            std::vector<int> v = tok->encodePrompt(text);
            if (v.size() != 16) {
                std::fprintf(stderr, "bench_patching: '%s' is %zu tokens, not 16\n", text, v.size());
                std::exit(1);
            }
            return v;
        };
        cs::PatchRequest r;
        r.cleanIds = ids("Once upon a time there was a little girl named Lily. One day,");
        r.corruptedIds = ids("Once upon a time there was a little boy named Tom. One day,");
        r.answerId = tok->encode(" Lily").at(0);
        r.wrongId = tok->encode(" Tom").at(0);
        r.site = cs::PatchSite::Resid;
        report("demo", *model, r, reps, 0);
    }
    if (only.empty() || only == "gpt2s") {
        const std::string dir = cstest::makeTempDir("bench-patching");
        const std::string cmd = cstest::python() + " " + cstest::sourceDir() +
                                "/tests/reference/make_random_model.py --arch gpt2 --seed 3 --layers 12 --d-model 768 "
                                "--heads 12 --vocab 50257 --ctx 64 --out " + dir + "/gpt2s > /dev/null";
        if (std::system(cmd.c_str()) != 0) {
            std::fprintf(stderr, "bench_patching: %s failed\n", cmd.c_str());
            return 1;
        }
        auto model = cs::loadModel(dir + "/gpt2s");
        cs::PatchRequest r;
        for (int i = 0; i < 16; ++i) {
            r.cleanIds.push_back(100 + 37 * i);
            r.corruptedIds.push_back(i == 5 || i == 11 ? 9000 + i : 100 + 37 * i);
        }
        r.answerId = 11;
        r.wrongId = 12;
        r.site = cs::PatchSite::HeadsByPosition;
        report("gpt2s", *model, r, std::max(1, reps / 2), sample);
        std::system(("rm -rf " + dir).c_str());
    }
    return 0;
}
