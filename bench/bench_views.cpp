// What the logit-lens and attention views cost on a GPT-2-small-shaped model (random weights:
// 12 layers, d_model 768, vocabulary 50257, the GPT-2 tokenizer from ../shared/fixtures) now that
// they compute what is on screen, against the eager analysis (every lens cell and every head's
// pattern made up front, AnalysisOptions::eagerLens) measured in the same run:
//   - the analysis until the views are usable, at 32 and 1024 tokens;
//   - the lens for one screen (64 positions) and for the selected position alone;
//   - one head of a 1024-token prompt picked in the real AttentionView (offscreen) until it is
//     drawn, with every pattern held (before) and computed on the worker (now);
//   - what the analysis holds at 1024 tokens, and its peak resident growth, each path in a child
//     process of its own (the process keeps freed memory, so a peak stays).
//
//   bench_views [--threads 2] [--runs 3] [--tokenizer DIR]
#include "TestSupport.h"
#include "analysis/PromptAnalysis.h"
#include "io/Safetensors.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/Threads.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/AttentionView.h"
#include "ui/views/HeatmapPlot.h"
#include "ui/views/LogitLensView.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QSignalSpy>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

long statusKb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
    return 0;
}

double ms(const QElapsedTimer& t) { return t.nsecsElapsed() / 1e6; }

// GPT-2 small's shape with random weights (what the views cost does not depend on what the
// weights say), written as a model directory with the GPT-2 tokenizer beside it.
std::string writeGpt2Small(const std::string& tokenizerDir) {
    char tmpl[] = "/tmp/cs-bench-views-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    c10::InferenceMode guard;
    at::manual_seed(0);
    const int d = 768, layers = 12, vocab = 50257, ctx = 1024;
    std::vector<std::pair<std::string, at::Tensor>> t;
    auto rnd = [](std::vector<int64_t> shape, double s) { return at::randn(shape) * s; };
    t.push_back({"transformer.wte.weight", rnd({vocab, d}, 0.02)});
    t.push_back({"transformer.wpe.weight", rnd({ctx, d}, 0.01)});
    for (int l = 0; l < layers; ++l) {
        const std::string p = "transformer.h." + std::to_string(l) + ".";
        t.push_back({p + "ln_1.weight", at::ones({d})});
        t.push_back({p + "ln_1.bias", at::zeros({d})});
        // Large enough queries and keys that the patterns are not uniform.
        t.push_back({p + "attn.c_attn.weight", rnd({d, 3 * d}, 0.08)});
        t.push_back({p + "attn.c_attn.bias", at::zeros({3 * d})});
        t.push_back({p + "attn.c_proj.weight", rnd({d, d}, 0.004)});
        t.push_back({p + "attn.c_proj.bias", at::zeros({d})});
        t.push_back({p + "ln_2.weight", at::ones({d})});
        t.push_back({p + "ln_2.bias", at::zeros({d})});
        t.push_back({p + "mlp.c_fc.weight", rnd({d, 4 * d}, 0.02)});
        t.push_back({p + "mlp.c_fc.bias", at::zeros({4 * d})});
        t.push_back({p + "mlp.c_proj.weight", rnd({4 * d, d}, 0.004)});
        t.push_back({p + "mlp.c_proj.bias", at::zeros({d})});
    }
    t.push_back({"transformer.ln_f.weight", at::ones({d})});
    t.push_back({"transformer.ln_f.bias", at::zeros({d})});
    cs::writeSafetensors(dir + "/model.safetensors", t);
    const nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", layers}, {"n_embd", d}, {"n_head", 12},
                                {"n_positions", ctx}, {"vocab_size", vocab}, {"activation_function", "gelu_new"},
                                {"layer_norm_epsilon", 1e-5}};
    std::ofstream(dir + "/config.json") << cfg.dump(2);
    for (const char* f : {"vocab.json", "merges.txt"})
        if (!QFile::copy(QString::fromStdString(tokenizerDir + "/" + f), QString::fromStdString(dir + "/" + f))) {
            std::fprintf(stderr, "bench_views: cannot copy %s/%s\n", tokenizerDir.c_str(), f);
            std::exit(1);
        }
    return dir;
}

// A text of exactly n GPT-2 tokens (common words, each one token with its leading space).
std::string textOfTokens(const cs::Tokenizer& tok, int n) {
    static const char* words[] = {" the", " little", " girl", " saw", " a", " big", " red", " ball", " in",
                                  " park", " and", " she", " was", " very", " happy", " dog", " ran", " to",
                                  " her", " friend", " with", " sun", " day", " play", " tree", " boy"};
    std::string text = "Once";
    for (int i = 0; static_cast<int>(tok.encodePrompt(text).size()) < n; ++i) text += words[(i * 7 + i / 5) % 26];
    while (static_cast<int>(tok.encodePrompt(text).size()) > n) text.erase(text.rfind(' '));
    return text;
}

cs::AnalysisOptions eagerOptions() {
    cs::AnalysisOptions o;
    o.eagerLens = true;
    o.attentionHoldBytes = std::numeric_limits<size_t>::max();
    return o;
}

// The child process of --probe: one analysis at `tokens`, its held bytes and peak resident growth.
int probe(const std::string& dir, const std::string& path, int tokens) {
    std::shared_ptr<const cs::Transformer> model = cs::loadModel(dir);
    std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
    const std::vector<int> ids = tok->encodePrompt(textOfTokens(*tok, tokens));
    {
        // Weights paged in and the allocator warmed by a short analysis first.
        const std::vector<int> few(ids.begin(), ids.begin() + 8);
        cs::PromptAnalysis warm = cs::analyzeTokens(model, tok, few, 8);
        warm.lens->computeAll();
    }
    const long hwmBefore = statusKb("VmHWM:"), rssBefore = statusKb("VmRSS:");
    size_t held = 0;
    if (path == "eager") {
        const cs::PromptAnalysis a = cs::analyzeTokens(model, tok, ids, tokens, eagerOptions());
        held = a.heldBytes();
    } else {
        // What the window holds once it shows the prompt: a screen of the lens and one head.
        const cs::PromptAnalysis a = cs::analyzeTokens(model, tok, ids, tokens);
        std::vector<int> screen;
        for (int t = tokens - 64; t < tokens; ++t) screen.push_back(t);
        a.lens->compute(screen);
        a.attention->head(5, 7);
        held = a.heldBytes();
    }
    std::printf("{\"held\": %zu, \"peak_growth_kb\": %ld, \"rss_growth_kb\": %ld}\n", held, statusKb("VmHWM:") - hwmBefore,
                statusKb("VmRSS:") - rssBefore);
    return 0;
}

nlohmann::json runProbe(const char* self, const std::string& dir, const std::string& path, int tokens, int threads) {
    const std::string out = dir + "/probe-" + path + ".json";
    const std::string cmd = std::string(self) + " --probe " + path + " --model " + dir + " --tokens " + std::to_string(tokens) +
                            " --threads " + std::to_string(threads) + " > " + out;
    if (std::system(cmd.c_str()) != 0) {
        std::fprintf(stderr, "bench_views: %s failed\n", cmd.c_str());
        std::exit(1);
    }
    return nlohmann::json::parse(cstest::readFile(out));
}

// Picks heads in the real AttentionView until each is drawn; ms per head (median).
double headShownMs(cs::ui::SessionController& session, cs::ui::AttentionView& view, int runs) {
    std::vector<double> times;
    const int T = session.analysis()->length();
    for (int r = 0; r < runs; ++r) {
        const int layer = (3 + r * 5) % 12, head = (7 + r * 5) % 12;
        bool painted = false;
        auto c = QObject::connect(view.plot(), &QCustomPlot::afterReplot, [&] { painted = view.isFilled(); });
        QElapsedTimer t;
        t.start();
        session.select(T - 1, layer, head);
        while (!painted && t.elapsed() < 20000) QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 5);
        times.push_back(ms(t));
        QObject::disconnect(c);
    }
    return median(times);
}

void runWindow(cs::ui::SessionController& session, const QString& prompt) {
    QSignalSpy finished(&session, &cs::ui::SessionController::runFinished);
    cs::ui::RunSettings s;
    s.prompt = prompt;
    s.maxNewTokens = 0;
    session.run(s);
    if (!finished.wait(120000)) {
        std::fprintf(stderr, "bench_views: the run did not finish\n");
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    int threads = 2, runs = 3, tokens = 1024;
    std::string tokenizerDir = cstest::sharedDir() + "/fixtures/gpt2-tokenizer", probePath, modelDir;
    for (int i = 1; i + 1 < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads") threads = std::atoi(argv[++i]);
        else if (a == "--runs") runs = std::atoi(argv[++i]);
        else if (a == "--tokenizer") tokenizerDir = argv[++i];
        else if (a == "--probe") probePath = argv[++i];
        else if (a == "--model") modelDir = argv[++i];
        else if (a == "--tokens") tokens = std::atoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    if (!probePath.empty()) return probe(modelDir, probePath, tokens);
    if (!QFile::exists(QString::fromStdString(tokenizerDir + "/vocab.json"))) {
        std::fprintf(stderr, "bench_views: no GPT-2 tokenizer at %s (give --tokenizer DIR)\n", tokenizerDir.c_str());
        return 1;
    }
    if (!std::getenv("QT_QPA_PLATFORM") && !std::getenv("DISPLAY")) setenv("QT_QPA_PLATFORM", "offscreen", 1);
    QApplication app(argc, argv);
    const std::string dir = writeGpt2Small(tokenizerDir);
    std::shared_ptr<const cs::Transformer> model = cs::loadModel(dir);
    std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
    std::printf("circuitscope bench_views: GPT-2-small-shaped random model (12 layers, d_model 768, vocab 50257), "
                "%d threads, %d runs\n", threads, runs);

    nlohmann::json summary;
    for (const int T : {32, 1024}) {
        const std::vector<int> ids = tok->encodePrompt(textOfTokens(*tok, T));
        const int eagerRuns = T > 256 ? 1 : runs;  // 13 unembeddings of 1024 positions take a while
        std::vector<double> eagerMs, eagerForwardMs, lazyMs, firstMs, screenMs;
        for (int r = 0; r < std::max(eagerRuns, runs); ++r) {
            if (r < eagerRuns) {
                const cs::PromptAnalysis e = cs::analyzeTokens(model, tok, ids, T, eagerOptions());
                eagerMs.push_back(e.totalSeconds * 1e3);
                eagerForwardMs.push_back(e.modelSeconds * 1e3);
            }
            const cs::PromptAnalysis a = cs::analyzeTokens(model, tok, ids, T);
            lazyMs.push_back(a.totalSeconds * 1e3);
            // The window opens on the last token: that position first (the table), then the
            // rest of the screen (the heatmap).
            QElapsedTimer t;
            t.start();
            a.lens->compute({T - 1});
            firstMs.push_back(ms(t));
            // Then the screen in the view's own jobs.
            t.start();
            for (int end = T - 1; end > std::max(0, T - cs::ui::LogitLensView::kMaxShownPositions); end -= cs::ui::LogitLensView::kPositionsPerJob) {
                std::vector<int> job;
                for (int p = std::max({0, T - cs::ui::LogitLensView::kMaxShownPositions, end - cs::ui::LogitLensView::kPositionsPerJob}); p < end; ++p)
                    job.push_back(p);
                a.lens->compute(job);
            }
            screenMs.push_back(firstMs.back() + ms(t));
        }
        const double eager = median(eagerMs), lazy = median(lazyMs), eagerLens = eager - lazy;
        std::printf("  %4d tokens: analysis until the views are usable %8.1f ms (eager: %8.1f ms, forward %6.1f ms) = %5.1fx faster\n",
                    T, lazy, eager, median(eagerForwardMs), eager / lazy);
        std::printf("               lens: the selected position %6.1f ms, a screen of %d positions %7.1f ms "
                    "(eager, every position: %8.1f ms = %5.1fx)\n",
                    median(firstMs), std::min(T, 64), median(screenMs), eagerLens, eagerLens / median(screenMs));
        summary[std::to_string(T)] = {{"lazy_ms", lazy}, {"eager_ms", eager}, {"first_ms", median(firstMs)},
                                      {"screen_ms", median(screenMs)}};
        if (T == 1024) {
            const cs::PromptAnalysis a = cs::analyzeTokens(model, tok, ids, T);
            std::vector<double> headMs;
            for (int r = 0; r < std::max(runs, 5); ++r) {
                QElapsedTimer t;
                t.start();
                a.attention->head((r * 5) % 12, (r * 7 + 1) % 12);
                headMs.push_back(ms(t));
            }
            std::printf("               one head computed from the kept queries and keys: %.1f ms\n", median(headMs));
        }
    }

    // One head of a 1024-token prompt in the real view, every pattern held against on demand.
    {
        cs::ui::SessionController session;
        session.setStagesAbove(1e9);
        QSignalSpy loaded(&session, &cs::ui::SessionController::modelLoaded);
        session.loadModel(QString::fromStdString(dir));
        if (!loaded.wait(120000)) return 1;
        cs::ui::AttentionView view(&session);
        view.resize(1000, 700);
        view.show();
        cs::ui::LogitLensView lensView(&session);
        lensView.resize(1000, 600);
        lensView.show();
        const QString prompt = QString::fromStdString(textOfTokens(*tok, tokens));
        double shown[2] = {0, 0};
        size_t held[2] = {0, 0};
        for (int onDemand = 0; onDemand < 2; ++onDemand) {
            cs::AnalysisOptions options;
            if (!onDemand) options.attentionHoldBytes = std::numeric_limits<size_t>::max();
            session.setAnalysisOptions(options);
            QElapsedTimer sinceRun;
            sinceRun.start();
            runWindow(session, prompt);
            const double finishedMs = ms(sinceRun);
            double tableMs = -1;
            while (!(view.isFilled() && lensView.isFilled()) && sinceRun.elapsed() < 60000) {
                QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
                if (tableMs < 0 && session.analysis()->lens->column(tokens - 1)) tableMs = ms(sinceRun);
            }
            if (onDemand)
                std::printf("  the window, %d tokens: run finished after %.0f ms, the lens table (selected position) after "
                            "%.0f ms, the lens screen and the picked head drawn after %.0f ms\n",
                            tokens, finishedMs, tableMs, ms(sinceRun));
            shown[onDemand] = headShownMs(session, view, std::max(runs, 5));
            held[onDemand] = session.analysis()->attention->heldBytes();
        }
        std::printf("  one head of a %d-token prompt picked in the AttentionView until drawn: %.1f ms on demand, "
                    "%.1f ms with every pattern held (%.2fx); attention held %.1f MB against %.1f MB\n",
                    tokens, shown[1], shown[0], shown[1] / shown[0], held[1] / 1048576.0, held[0] / 1048576.0);
        summary["head_ms"] = {{"on_demand", shown[1]}, {"held", shown[0]}};
    }

    const nlohmann::json eager = runProbe(argv[0], dir, "eager", tokens, threads);
    const nlohmann::json lazy = runProbe(argv[0], dir, "lazy", tokens, threads);
    auto mb = [](double bytes) { return bytes / 1048576.0; };
    std::printf("  memory at %d tokens: the analysis holds %.1f MB (eager %.1f MB, %.1fx less); peak resident growth "
                "%.1f MB (eager %.1f MB, %.1fx less)\n",
                tokens, mb(lazy["held"].get<double>()), mb(eager["held"].get<double>()),
                eager["held"].get<double>() / lazy["held"].get<double>(), lazy["peak_growth_kb"].get<double>() / 1024,
                eager["peak_growth_kb"].get<double>() / 1024,
                eager["peak_growth_kb"].get<double>() / std::max(1.0, lazy["peak_growth_kb"].get<double>()));
    std::printf("  (on demand: the analysis plus a screen of the lens and one head; eager: every lens cell and pattern)\n");
    std::system(("rm -rf " + dir).c_str());
    return 0;
}
