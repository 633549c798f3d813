// Forward and decode throughput of a GPT-2-small-shaped model (random weights) against PyTorch
// eager (Debian python3-torch) on the same model files and thread count, plus achieved GFLOP/s
// against this machine's measured fp32 GEMM rate and resident memory added by loading.
//
//   bench_forward [--threads N] [--layers 12] [--d-model 768] [--vocab 50257] [--skip-python]
#include "io/Safetensors.h"
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/Threads.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

long rssKb(const char* field = "VmRSS:") {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
    return 0;
}

template <class F>
double median(int reps, F f) {
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        auto a = Clock::now();
        f();
        t.push_back(seconds(a, Clock::now()));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

std::string writeModel(int layers, int d, int vocab, int ctx, cs::DType storeAs) {
    char tmpl[] = "/tmp/cs-bench-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    c10::InferenceMode guard;
    at::manual_seed(0);
    std::vector<std::pair<std::string, at::Tensor>> t;
    auto rnd = [](std::vector<int64_t> shape) { return at::randn(shape) * 0.02; };
    t.push_back({"transformer.wte.weight", rnd({vocab, d})});
    t.push_back({"transformer.wpe.weight", rnd({ctx, d})});
    for (int l = 0; l < layers; ++l) {
        const std::string p = "transformer.h." + std::to_string(l) + ".";
        t.push_back({p + "ln_1.weight", at::ones({d})});
        t.push_back({p + "ln_1.bias", at::zeros({d})});
        t.push_back({p + "attn.c_attn.weight", rnd({d, 3 * d})});
        t.push_back({p + "attn.c_attn.bias", at::zeros({3 * d})});
        t.push_back({p + "attn.c_proj.weight", rnd({d, d})});
        t.push_back({p + "attn.c_proj.bias", at::zeros({d})});
        t.push_back({p + "ln_2.weight", at::ones({d})});
        t.push_back({p + "ln_2.bias", at::zeros({d})});
        t.push_back({p + "mlp.c_fc.weight", rnd({d, 4 * d})});
        t.push_back({p + "mlp.c_fc.bias", at::zeros({4 * d})});
        t.push_back({p + "mlp.c_proj.weight", rnd({4 * d, d})});
        t.push_back({p + "mlp.c_proj.bias", at::zeros({d})});
    }
    t.push_back({"transformer.ln_f.weight", at::ones({d})});
    t.push_back({"transformer.ln_f.bias", at::zeros({d})});
    cs::writeSafetensors(dir + "/model.safetensors", t, {}, storeAs);
    nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", layers}, {"n_embd", d}, {"n_head", d / 64},
                          {"n_positions", ctx}, {"vocab_size", vocab}, {"activation_function", "gelu_new"},
                          {"layer_norm_epsilon", 1e-5}};
    std::ofstream(dir + "/config.json") << cfg.dump(2);
    return dir;
}

// Resident memory of loading one model, measured in a fresh process (this binary re-run with
// --memory-probe) so that pages freed by earlier models in this process cannot hide or inflate
// it. Prints "<peak after load> <peak after a 16-token forward>" in bytes above the baseline.
int memoryProbe(const std::string& dir, const std::string& precision) {
    const long base = rssKb();
    cs::ModelLoadOptions opt;
    opt.precision = cs::parseWeightPrecision(precision);
    auto model = cs::loadModel(dir, opt);
    const long afterLoad = rssKb("VmHWM:");
    {
        c10::InferenceMode guard;
        model->forward(at::arange(16, at::kLong).unsqueeze(0));
    }
    const long afterForward = rssKb("VmHWM:");
    std::printf("%ld %ld\n", (afterLoad - base) * 1024, (afterForward - base) * 1024);
    return 0;
}

struct Probe {
    double peakLoad = 0, peakForward = 0;  // bytes
};

Probe probeMemory(const char* self, const std::string& dir, cs::WeightPrecision p) {
    const std::string cmd = std::string(self) + " --memory-probe " + dir + " " + cs::weightPrecisionName(p);
    Probe r;
    FILE* f = ::popen(cmd.c_str(), "r");
    if (f && std::fscanf(f, "%lf %lf", &r.peakLoad, &r.peakForward) != 2) r = Probe();
    if (f) ::pclose(f);
    return r;
}

struct Rates {
    double loadS = 0, fileBytes = 0, heldBytes = 0;
    double fwd1 = 0, fwd8 = 0, decode = 0;
    std::string dtype;
};

Rates measure(const std::string& dir, cs::WeightPrecision precision, int vocab) {
    Rates r;
    auto t0 = Clock::now();
    cs::ModelLoadOptions opt;
    opt.precision = precision;
    auto model = cs::loadModel(dir, opt);
    r.loadS = seconds(t0, Clock::now());
    r.fileBytes = static_cast<double>(cs::WeightStore::openModelDir(dir).totalBytes());
    r.heldBytes = static_cast<double>(model->config().weightBytes);
    r.dtype = model->config().weightDtype;

    c10::InferenceMode guard;
    at::manual_seed(1);
    auto fwd = [&](long B, long T) {
        at::Tensor ids = at::randint(vocab, {B, T}, at::kLong);
        model->forward(ids);  // warm-up (and touches every weight page)
        const double t = median(5, [&] { model->forward(ids); });
        return B * T / t;
    };
    r.fwd1 = fwd(1, 128);
    r.fwd8 = fwd(8, 128);

    cs::SamplingOptions s;
    s.maxNewTokens = 32;
    s.stopAtEos = false;
    std::vector<long> prompt(16);
    for (int i = 0; i < 16; ++i) prompt[i] = (i * 997) % vocab;
    cs::generate(*model, prompt, s);  // warm-up
    // Time only the new tokens: subtract a prompt-only pass.
    cs::SamplingOptions one = s;
    one.maxNewTokens = 1;
    const double tPrompt = median(3, [&] { cs::generate(*model, prompt, one); });
    const double tAll = median(3, [&] { cs::generate(*model, prompt, s); });
    r.decode = (s.maxNewTokens - 1) / (tAll - tPrompt);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    if (argc == 4 && std::string(argv[1]) == "--memory-probe") return memoryProbe(argv[2], argv[3]);
    int threads = 2, layers = 12, d = 768, vocab = 50257;
    bool skipPython = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return std::atoi(argv[++i]); };
        if (a == "--threads") threads = next();
        else if (a == "--layers") layers = next();
        else if (a == "--d-model") d = next();
        else if (a == "--vocab") vocab = next();
        else if (a == "--skip-python") skipPython = true;
    }
    cs::setComputeThreads(threads);
    std::printf("circuitscope bench_forward: GPT-2-shaped, %d layers, d_model %d, vocab %d, %d threads\n",
                layers, d, vocab, cs::computeThreads());

    // 1. This machine's fp32 GEMM ceiling, measured now (256x768 @ 768x3072).
    double gemmGflops;
    {
        c10::InferenceMode guard;
        at::Tensor a = at::randn({256, 768}), b = at::randn({768, 3072});
        at::mm(a, b);
        double t = median(15, [&] { at::mm(a, b); });
        gemmGflops = 2.0 * 256 * 768 * 3072 / t / 1e9;
    }
    std::printf("fp32 GEMM 256x768x3072: %.1f GFLOP/s (OpenBLAS core: %s)\n", gemmGflops, cs::blasCoreName());

    // FLOPs per token: 2 * (non-embedding params + unembedding), ignoring attention's T-dependent part.
    const double flopsPerTok = 2.0 * (12.0 * d * d * layers + static_cast<double>(d) * vocab);
    const std::string dir = writeModel(layers, d, vocab, 1024, cs::DType::F32);
    const std::string dirBf16 = writeModel(layers, d, vocab, 1024, cs::DType::BF16);

    // Ours, three ways: the fp32 file as stored, the bf16 file as stored (a view of the map), and
    // the fp32 file converted to bf16 at load (--dtype bf16). Each model is dropped before the
    // next loads, so resident memory is measured from a clean baseline.
    struct Ours {
        const char* label;
        const std::string* dir;
        cs::WeightPrecision precision;
        Rates r;
    };
    Ours ours[] = {{"fp32 file, held fp32", &dir, cs::WeightPrecision::Stored, {}},
                   {"bf16 file, held bf16", &dirBf16, cs::WeightPrecision::Stored, {}},
                   {"fp32 file, --dtype bf16", &dir, cs::WeightPrecision::BF16, {}}};
    for (Ours& o : ours) {
        o.r = measure(*o.dir, o.precision, vocab);
        const Probe m = probeMemory(argv[0], *o.dir, o.precision);
        std::printf("\n%s: load %.2f s (%.2f s per GB of file); file %.0f MB, held %.0f MB (%s)\n", o.label, o.r.loadS,
                    o.r.loadS / (o.r.fileBytes / 1e9), o.r.fileBytes / 1e6, o.r.heldBytes / 1e6, o.r.dtype.c_str());
        std::printf("  peak resident, fresh process: %.0f MB after load, %.0f MB after a 16-token forward = %.2fx the "
                    "file  [target <= 1.2x for 16-bit files]\n",
                    m.peakLoad / 1e6, m.peakForward / 1e6, m.peakForward / o.r.fileBytes);
        std::printf("  %-22s %10.1f tokens/s %8.1f GFLOP/s (%.0f%% of fp32 GEMM)\n", "forward 1 x 128", o.r.fwd1,
                    o.r.fwd1 * flopsPerTok / 1e9, 100 * o.r.fwd1 * flopsPerTok / 1e9 / gemmGflops);
        std::printf("  %-22s %10.1f tokens/s %8.1f GFLOP/s (%.0f%% of fp32 GEMM)\n", "forward 8 x 128", o.r.fwd8,
                    o.r.fwd8 * flopsPerTok / 1e9, 100 * o.r.fwd8 * flopsPerTok / 1e9 / gemmGflops);
        std::printf("  %-22s %10.1f tokens/s (%.1f ms/token, %.1f GB/s of weights)\n", "greedy decode (KV)",
                    o.r.decode, 1000 / o.r.decode, o.r.decode * o.r.heldBytes / 1e9);
    }
    const Rates& f32 = ours[0].r;
    const Rates& bf16 = ours[1].r;

    if (!skipPython) {
        // References: PyTorch eager with the same process settings we run under (same BLAS
        // kernels, same OpenMP wait policy: isolates the runtime itself) in fp32 and in bf16
        // (model.to(torch.bfloat16)), and fp32 eager as Debian installs it.
        struct Ref {
            const char* label;
            const char* envPrefix;
            const char* dtype;
        };
        const Ref refs[] = {
            {"PyTorch eager fp32, same process settings", "", "f32"},
            {"PyTorch eager bf16, same process settings", "", "bf16"},
            {"PyTorch eager fp32, Debian defaults", "env -u OMP_WAIT_POLICY -u OPENBLAS_CORETYPE CIRCUITSCOPE_KEEP_ENV=1 ",
             "f32"},
        };
        for (const Ref& ref : refs) {
            const std::string cmd = std::string(ref.envPrefix) + "/usr/bin/python3 " CS_SOURCE_DIR
                                    "/bench/reference_bench.py --model " + dir + " --threads " +
                                    std::to_string(threads) + " --dtype " + ref.dtype + " --json";
            FILE* p = ::popen(cmd.c_str(), "r");
            std::string out;
            char buf[4096];
            size_t n;
            while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
            const int rc = p ? ::pclose(p) : -1;
            try {
                if (rc != 0 || out.find('{') == std::string::npos) throw std::runtime_error("exit " + std::to_string(rc));
                auto j = nlohmann::json::parse(out.substr(out.find('{')));
                const double r1 = j["fwd_1x128_tok_s"], r8 = j["fwd_8x128_tok_s"], rd = j["decode_tok_s"];
                std::printf("\n%s (torch %s, OpenBLAS core %s, %d threads):\n", ref.label,
                            j["torch"].get<std::string>().c_str(), j.value("blas_core", std::string("?")).c_str(),
                            threads);
                std::printf("  %-22s %10.1f tokens/s   ours fp32 %.2fx, ours bf16 %.2fx\n", "forward 1 x 128", r1,
                            f32.fwd1 / r1, bf16.fwd1 / r1);
                std::printf("  %-22s %10.1f tokens/s   ours fp32 %.2fx, ours bf16 %.2fx\n", "forward 8 x 128", r8,
                            f32.fwd8 / r8, bf16.fwd8 / r8);
                std::printf("  %-22s %10.1f tokens/s   ours fp32 %.2fx, ours bf16 %.2fx%s\n", "greedy decode (KV)", rd,
                            f32.decode / rd, bf16.decode / rd,
                            std::string(ref.dtype) == "f32" ? "  [target: bf16 >= 1.8x]" : "");
            } catch (const std::exception& e) {
                std::printf("\n%s failed (%s): %s\n", ref.label, e.what(), out.c_str());
            }
        }
    }
    std::string rmBf16 = "rm -rf " + dirBf16;
    if (std::system(rmBf16.c_str()) != 0) return 1;
    std::string rm = "rm -rf " + dir;
    if (std::system(rm.c_str()) != 0) return 1;
    return 0;
}
