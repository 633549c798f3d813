// What batching buys an attribution graph: computing the direct effects of a 16-token demo prompt
// (transcoders on every layer) with many target rows per backward pass, against the same
// computation done one backward pass per target row, in the same process; plus pruning. Target:
// compute + prune under 2 s on 2 cores.
//
//   bench_attribution [--threads N] [--tokens T] [--batch B]
#include "attribution/Attribution.h"
#include "attribution/GraphPruning.h"
#include "model/ModelLoader.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    int threads = 2, tokens = 16, batch = 64;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
        else if (a == "--tokens" && i + 1 < argc) tokens = std::stoi(argv[++i]);
        else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    const std::string dir = cs::resolveModelDir("demo");
    auto model = cs::loadModel(dir);
    auto tok = cs::loadTokenizer(dir);
    std::vector<cs::AttributionTranscoder> tcs;
    for (const auto& d : cs::demoSaeDirs()) {
        const std::string id = std::filesystem::path(d).filename().string();
        if (id.rfind("tc-", 0) == 0) tcs.push_back({id, cs::loadSae(d)});
    }
    std::vector<int> ids = tok->encodePrompt(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends");
    ids.resize(std::min<size_t>(ids.size(), static_cast<size_t>(tokens)));
    const std::vector<long> prompt(ids.begin(), ids.end());

    cs::AttributionOptions o;
    o.batch = batch;
    cs::computeAttribution(*model, tcs, prompt, o);  // warm-up
    auto t0 = Clock::now();
    cs::AttributionGraph g = cs::computeAttribution(*model, tcs, prompt, o);
    const double batched = since(t0);
    t0 = Clock::now();
    cs::AttributionGraph pruned = cs::pruneGraph(g, 0.8f, 0.98f);
    const double prune = since(t0);
    o.batch = 1;
    t0 = Clock::now();
    cs::AttributionGraph one = cs::computeAttribution(*model, tcs, prompt, o);
    const double single = since(t0);
    long rows = 0;
    for (const auto& n : g.nodes) rows += n.kind == cs::NodeKind::Feature || n.kind == cs::NodeKind::Logit;
    std::printf("bench_attribution: demo model, %zu tokens, %zu transcoders, %d threads\n", prompt.size(), tcs.size(), threads);
    std::printf("  graph: %zu nodes, %ld target rows, %zu links; pruned (0.8, 0.98): %zu nodes, %zu links\n",
                g.nodes.size(), rows, g.links.size(), pruned.nodes.size(), pruned.links.size());
    std::printf("  compute, %d rows per backward pass: %.3f s; prune: %.3f s; total %.3f s (target < 2 s)\n", batch,
                batched, prune, batched + prune);
    std::printf("  compute, one backward pass per row (reference): %.3f s; batching buys %.1fx\n", single,
                single / batched);
    std::printf("  same links either way: %s\n", one.links.size() == g.links.size() ? "yes" : "NO");
    return 0;
}
