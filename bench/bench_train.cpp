// LM training throughput (forward, backward, AdamW) of the demo-baseline shape (4 layers,
// d_model 128, 2048-token vocabulary, batch 32 x 128) against the same step in PyTorch eager,
// run by this program on the same machine with the same thread count and process settings.
//
//   bench_train [--threads N] [--steps 20] [--d-model 128]
#include "runtime/ComputeEnvironment.h"
#include "runtime/Threads.h"
#include "train/LmTrainer.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    int threads = 2, steps = 20;
    cs::LmTrainOptions o;
    o.layers = 4;
    o.dModel = 128;
    o.heads = 4;
    o.ctx = 128;
    o.vocab = 2048;
    o.batch = 32;
    for (int i = 1; i + 1 < argc; ++i) {
        std::string a = argv[i];
        if (a == "--threads") threads = std::atoi(argv[++i]);
        else if (a == "--steps") steps = std::atoi(argv[++i]);
        else if (a == "--d-model") o.dModel = std::atoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    const double ours = cs::measureLmTrainingThroughput(o, steps);
    std::printf("circuitscope bench_train: GPT-2-style %d layers, d_model %d, vocab %d, batch %d x %d, %d threads\n",
                o.layers, o.dModel, o.vocab, o.batch, o.ctx, threads);
    std::printf("%-28s %10.0f tokens/s\n", "circuitscope (LibTorch)", ours);
    const std::string cmd = "/usr/bin/python3 " CS_SOURCE_DIR "/bench/reference_train_bench.py --layers " +
                            std::to_string(o.layers) + " --d-model " + std::to_string(o.dModel) + " --heads " +
                            std::to_string(o.heads) + " --ctx " + std::to_string(o.ctx) + " --vocab " +
                            std::to_string(o.vocab) + " --batch " + std::to_string(o.batch) + " --steps " +
                            std::to_string(steps) + " --threads " + std::to_string(threads);
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (!p || ::pclose(p) != 0 || out.find('{') == std::string::npos) {
        std::printf("PyTorch reference failed: %s\n", out.c_str());
        return 1;
    }
    auto j = nlohmann::json::parse(out.substr(out.find('{')));
    const double ref = j["tok_s"];
    std::printf("%-28s %10.0f tokens/s   ratio %.2fx  [target >= 1.0x]\n",
                ("PyTorch eager " + j["torch"].get<std::string>()).c_str(), ref, ours / ref);
    return 0;
}
