// What batching buys an attribution graph: computing the direct effects of a 16-token demo prompt
// (transcoders on every layer) with many target rows per backward pass, against the same
// computation done one backward pass per target row, in the same process; plus pruning. Target:
// compute + prune under 2 s on 2 cores.
//
// With --gpt2-small: a randomly initialised model of GPT-2 small's shape (12 layers, d_model 768,
// vocab 50257) with random JumpReLU transcoders of 4096 features on every layer (about 32 active
// per position), at the prompt lengths given with --lengths, to show how the cost scales. With
// --min-link-share S1,S2: each length again with links below that share of their row's total
// |weight| dropped while building, against the first (unthresholded) graph of the same run: links,
// time, and how much of the pruned graph's node set and scores survive.
//
//   bench_attribution [--threads N] [--tokens T] [--batch B] [--gpt2-small [--lengths 2,4] [--min-link-share 0.001]]
#include "attribution/Attribution.h"
#include "attribution/GraphPruning.h"
#include "model/ModelLoader.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "sae/SaeLoader.h"
#include "tokenize/Tokenizer.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

// GPT-2 small's shape with random weights (the timing does not depend on what the weights say).
std::shared_ptr<cs::Transformer> randomGpt2Small() {
    cs::ModelConfig c;
    c.modelType = "gpt2";
    c.nLayers = 12;
    c.dModel = 768;
    c.nHeads = c.nKvHeads = 12;
    c.dHead = 64;
    c.dMlp = 3072;
    c.vocabSize = 50257;
    c.nCtx = 1024;
    const long d = c.dModel;
    auto normal = [](std::vector<int64_t> shape, double s) { return at::randn(shape) * s; };
    cs::ModelWeights w;
    w.tokEmbed = normal({c.vocabSize, d}, 0.02);
    w.posEmbed = normal({c.nCtx, d}, 0.01);
    w.finalNormW = at::ones({d});
    w.finalNormB = at::zeros({d});
    w.unembed = w.tokEmbed.t();
    for (int l = 0; l < c.nLayers; ++l) {
        cs::BlockWeights b;
        b.ln1W = b.ln2W = at::ones({d});
        b.ln1B = b.ln2B = at::zeros({d});
        b.wQkv = normal({d, 3 * d}, 0.02);
        b.bQkv = at::zeros({3 * d});
        b.wO = normal({d, d}, 0.004);
        b.bO = at::zeros({d});
        b.wUp = normal({d, c.dMlp}, 0.02);
        b.bUp = at::zeros({c.dMlp});
        b.wDown = normal({c.dMlp, d}, 0.004);
        b.bDown = at::zeros({d});
        w.blocks.push_back(b);
    }
    return std::make_shared<cs::Transformer>(c, w);
}

// A JumpReLU transcoder whose pre-activations are about N(0, 1) on a LayerNorm output, with a
// threshold that about 32 of 4096 features pass.
cs::AttributionTranscoder randomTranscoder(int layer, long d, long features) {
    cs::SaeConfig c;
    c.dIn = c.dOut = d;
    c.dSae = features;
    c.architecture = cs::SaeArch::JumpReLUTranscoder;
    c.applyBDecToInput = false;
    c.hookName = "blocks." + std::to_string(layer) + ".ln2.hook_normalized";
    c.hookNameOut = "blocks." + std::to_string(layer) + ".hook_mlp_out";
    c.hookLayer = layer;
    c.source = "random transcoder L" + std::to_string(layer);
    cs::SaeWeights w;
    w.W_enc = at::randn({d, features}) / std::sqrt(static_cast<double>(d));
    w.W_dec = at::randn({features, d}) * 0.02;
    w.b_enc = at::zeros({features});
    w.b_dec = at::zeros({d});
    w.threshold = at::full({features}, 2.42f);
    return {"tc-L" + std::to_string(layer), std::make_shared<cs::Sae>(c, w)};
}

// The share of `a`'s node ids that `b` has too.
double nodeOverlap(const cs::AttributionGraph& a, const cs::AttributionGraph& b) {
    long kept = 0;
    for (const auto& n : a.nodes) kept += b.findNode(n.id) >= 0;
    return a.nodes.empty() ? 1.0 : static_cast<double>(kept) / static_cast<double>(a.nodes.size());
}

void benchGpt2Small(const std::vector<int>& lengths, int batch, const std::vector<double>& shares) {
    auto model = randomGpt2Small();
    std::vector<cs::AttributionTranscoder> tcs;
    for (int l = 0; l < 12; ++l) tcs.push_back(randomTranscoder(l, 768, 4096));
    std::printf("bench_attribution: GPT-2-small-shaped random model, 12 random JumpReLU transcoders of 4096 features, "
                "%d rows per backward pass\n", batch);
    for (int T : lengths) {
        std::vector<long> prompt;
        for (int t = 0; t < T; ++t) prompt.push_back(1000 + 37 * t);
        cs::AttributionGraph first;
        for (size_t k = 0; k <= shares.size(); ++k) {
            cs::AttributionOptions o;
            o.batch = batch;
            o.minLinkShare = k == 0 ? 0.0 : shares[k - 1];
            const auto t0 = std::chrono::steady_clock::now();
            cs::AttributionGraph g = cs::computeAttribution(*model, tcs, prompt, o);
            const double compute = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto t1 = std::chrono::steady_clock::now();
            cs::AttributionGraph p = cs::pruneGraph(g, 0.8f, 0.98f);
            const double prune = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
            long rows = 0;
            for (const auto& n : g.nodes) rows += n.kind == cs::NodeKind::Feature || n.kind == cs::NodeKind::Logit;
            std::printf("  %3d tokens, min link share %g: %6ld target rows, %9zu links; compute %.1f s, prune %.2f s; "
                        "pruned %zu nodes, replacement %.4f, completeness %.4f", T, o.minLinkShare, rows, g.links.size(),
                        compute, prune, p.nodes.size(), p.replacementScore, p.completenessScore);
            if (k == 0) first = p;
            else std::printf("; has %.1f%% of the unthresholded pruned nodes", 100 * nodeOverlap(first, p));
            std::printf("\n");
        }
    }
}

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    int threads = 2, tokens = 16, batch = 64;
    bool gpt2 = false;
    std::vector<int> lengths{2, 4};
    std::vector<double> shares;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--gpt2-small") gpt2 = true;
        if (a == "--lengths" && i + 1 < argc) {
            lengths.clear();
            std::string list = argv[++i];
            for (size_t p = 0; p < list.size();) {
                size_t q = list.find(',', p);
                if (q == std::string::npos) q = list.size();
                lengths.push_back(std::stoi(list.substr(p, q - p)));
                p = q + 1;
            }
        }
        if (a == "--min-link-share" && i + 1 < argc) {
            std::string list = argv[++i];
            for (size_t p = 0; p < list.size();) {
                size_t q = list.find(',', p);
                if (q == std::string::npos) q = list.size();
                shares.push_back(std::stod(list.substr(p, q - p)));
                p = q + 1;
            }
        }
        if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
        else if (a == "--tokens" && i + 1 < argc) tokens = std::stoi(argv[++i]);
        else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    if (gpt2) {
        benchGpt2Small(lengths, batch, shares);
        return 0;
    }
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
