// Feature-store figures, each against a reference measured in the same process:
//  - indexing throughput against the model + SAE encoders alone on the same windows, in the same
//    batches (the target: a ratio of at least 0.8), with Sae::encode (the dense result
//    every caller gets) and with Sae::encodeSparse (what the indexer itself runs);
//  - the store's size per million indexed tokens;
//  - opening a dashboard: FeatureStore::feature for random features of the finished store, and
//    the DashboardView built and painted offscreen (query + first paint; median, target 50 ms at
//    1M tokens or more).
//
// Corpus: ../shared/data/tinystories-sample.txt tokenized by the demo tokenizer, documents
// repeated until --tokens are reached (the demo's own text; nothing here is timed from a file).
//
//   bench_store [--tokens 1000000] [--threads 2] [--batch B] [--db /tmp/bench-store.db] [--keep]
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/ComputeEnvironment.h"
#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "sae/Sae.h"
#include "sae/SaeLoader.h"
#include "store/FeatureIndexer.h"
#include "store/FeatureStore.h"
#include "store/IndexCorpus.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"
#include "ui/views/DashboardView.h"

#include <QApplication>
#include <QPixmap>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Process CPU time (all threads): other processes on a shared machine move wall-clock figures
// by 2x between identical runs; CPU time moves far less.
double cpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Timed {
    double wall = 0, cpu = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The reference: what indexing cannot avoid, the model run to the last hooked layer and every
// SAE's encoder, on the same windows in the same 16-window runs.
Timed forwardAlone(const cs::Transformer& model, const std::vector<cs::IndexSae>& saes,
                   const std::vector<cs::IndexWindow>& windows, bool sparse) {
    const double c0 = cpuSeconds();
    c10::InferenceMode guard;
    int lastLayer = 0;
    for (const auto& s : saes) lastLayer = std::max(lastLayer, cs::layerOfHook(s.sae->config().hookName));
    const auto t0 = Clock::now();
    for (size_t first = 0; first < windows.size(); first += 16) {
        const size_t count = std::min<size_t>(16, windows.size() - first);
        size_t Tb = 0;
        for (size_t i = 0; i < count; ++i) Tb = std::max(Tb, windows[first + i].tokens.size());
        std::vector<int64_t> ids(count * Tb, 0);
        for (size_t b = 0; b < count; ++b)
            std::copy(windows[first + b].tokens.begin(), windows[first + b].tokens.end(), ids.begin() + b * Tb);
        cs::Hooks hooks;
        for (const auto& s : saes) hooks.cache(s.sae->config().hookName);
        cs::ActivationCache cache;
        cs::RunOptions o;
        o.hooks = &hooks;
        o.cache = &cache;
        o.lastLayer = lastLayer;
        model.forward(at::tensor(ids, at::kLong).view({static_cast<long>(count), static_cast<long>(Tb)}), o);
        for (const auto& s : saes) {
            at::Tensor x = cache.at(s.sae->config().hookName).reshape({static_cast<long>(count * Tb), -1});
            if (sparse) {
                auto code = s.sae->encodeSparse(x);
                (void)code;
            } else {
                at::Tensor f = s.sae->encode(x);
                (void)f;
            }
        }
    }
    return {since(t0), cpuSeconds() - c0};
}

}  // namespace

int main(int argc, char** argv) {
    cs::prepareComputeEnvironment(argv);
    if (!std::getenv("QT_QPA_PLATFORM")) ::setenv("QT_QPA_PLATFORM", "offscreen", 1);
    QApplication app(argc, argv);
    long tokens = 1000000;
    int threads = 2;
    std::string dbPath = "/tmp/circuitscope-bench-store.db";
    bool keep = false;
    bool dashboardOnly = false;  // reuse a kept --db and time only the dashboard
    int batch = cs::IndexOptions{}.batch;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--tokens" && i + 1 < argc) tokens = std::stol(argv[++i]);
        else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
        else if (a == "--db" && i + 1 < argc) dbPath = argv[++i];
        else if (a == "--keep") keep = true;
        else if (a == "--dashboard-only") dashboardOnly = true;
        else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    }
    cs::setComputeThreads(threads);
    const std::string corpus = std::string(CS_SOURCE_DIR) + "/../shared/data/tinystories-sample.txt";
    if (!std::filesystem::exists(corpus)) {
        std::printf("bench_store: %s is missing; nothing to measure\n", corpus.c_str());
        return 0;
    }
    const std::string modelDir = cs::resolveModelDir("demo");
    auto model = cs::loadModel(modelDir);
    auto tok = cs::loadTokenizer(modelDir);
    std::vector<cs::IndexSae> saes;
    for (const auto& dir : cs::demoSaeDirs())
        saes.push_back({std::filesystem::path(dir).filename().string(), dir, cs::loadSae(dir)});

    // The corpus as a .txt of documents (blank-line separated), repeated to the token budget.
    const std::string txt = dbPath + ".corpus.txt";
    {
        std::ifstream in(corpus);
        std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const long have = static_cast<long>(tok->encode(all).size());
        std::ofstream out(txt);
        for (long written = 0; written < tokens; written += have) out << all << "\n\n";
    }
    auto docs = cs::readIndexCorpus(txt, tok.get(), model->config().vocabSize, tokens);
    auto windows = cs::cutWindows(docs, 128, tokens);
    long total = 0;
    for (const auto& w : windows) total += static_cast<long>(w.tokens.size());
    std::printf("bench_store: demo model, %zu SAEs (%ld features), %ld tokens in %zu windows, %d threads\n",
                saes.size(), [&] { long n = 0; for (auto& s : saes) n += s.sae->dSae(); return n; }(), total,
                windows.size(), threads);

    if (!dashboardOnly) {
        std::filesystem::remove(dbPath);
        std::filesystem::remove(dbPath + "-wal");
        std::filesystem::remove(dbPath + "-shm");
        cs::IndexOptions o;
        o.modelDir = "demo";
        o.corpusPath = txt;
        o.maxTokens = tokens;
        o.context = 128;
        o.batch = batch;
        // The references run before and after indexing, and indexing is compared with their mean.
        const Timed ref1 = forwardAlone(*model, saes, windows, false);
        const Timed sparse1 = forwardAlone(*model, saes, windows, true);
        const auto t0 = Clock::now();
        const double c0 = cpuSeconds();
        const auto r = cs::indexFeatures(dbPath, *model, tok.get(), saes, o);
        const Timed index{since(t0), cpuSeconds() - c0};
        const Timed sparse2 = forwardAlone(*model, saes, windows, true);
        const Timed ref2 = forwardAlone(*model, saes, windows, false);
        const Timed ref{(ref1.wall + ref2.wall) / 2, (ref1.cpu + ref2.cpu) / 2};
        const Timed sparse{(sparse1.wall + sparse2.wall) / 2, (sparse1.cpu + sparse2.cpu) / 2};
        std::printf("\nindexing (wall s / CPU s of all threads)\n");
        std::printf("  model + Sae::encode alone:     %6.1f / %6.1f  (runs %.1f and %.1f wall)\n", ref.wall, ref.cpu, ref1.wall,
                    ref2.wall);
        std::printf("  model + Sae::encodeSparse:     %6.1f / %6.1f  (runs %.1f and %.1f wall)\n", sparse.wall, sparse.cpu,
                    sparse1.wall, sparse2.wall);
        std::printf("  index:                         %6.1f / %6.1f  = %.0f tok/s; wall: setup %.1f, model+encode %.1f, "
                    "bookkeeping %.1f, commits %.1f, finishing %.1f\n",
                    index.wall, index.cpu, total / index.wall, r.setupSeconds, r.forwardSeconds, r.bookkeepingSeconds,
                    r.commitSeconds, r.finishSeconds);
        std::printf("  ratio index / (model + Sae::encode), tokens/s:  wall %.2f, CPU %.2f   (target >= 0.8)\n",
                    ref.wall / index.wall, ref.cpu / index.cpu);
        std::printf("  ratio index / (model + encodeSparse), tokens/s: wall %.2f, CPU %.2f\n", sparse.wall / index.wall,
                    sparse.cpu / index.cpu);

        long bytes = 0;
        for (const char* suffix : {"", "-wal"})
            if (std::filesystem::exists(dbPath + suffix)) bytes += static_cast<long>(std::filesystem::file_size(dbPath + suffix));
        std::printf("\nstore size: %.1f MB for %ld indexed tokens = %.1f MB per million tokens\n", bytes / 1e6, r.tokens,
                    bytes / 1e6 / (r.tokens / 1e6));
    }

    // Dashboard queries: a fresh read-only connection, as the GUI opens it.
    cs::FeatureStore store(dbPath);
    std::mt19937 rng(7);
    std::vector<double> times;
    for (int i = 0; i < 60; ++i) {
        const auto& s = saes[rng() % saes.size()];
        const long f = static_cast<long>(rng() % s.sae->dSae());
        const auto q0 = Clock::now();
        auto d = store.feature(s.id, f);
        times.push_back(since(q0) * 1000);
    }
    std::printf("\ndashboard query (FeatureStore::feature, 60 random features): median %.2f ms, max %.2f ms\n",
                median(times), *std::max_element(times.begin(), times.end()));
    {
        // Query and first paint: the view the window opens on a double-click, built and grabbed
        // (grab() paints every child) offscreen.
        cs::ui::SessionController session;
        const QString err = session.openStore(QString::fromStdString(dbPath));
        if (!err.isEmpty()) std::printf("cannot open the store in the GUI session: %s\n", err.toStdString().c_str());
        std::vector<double> paint;
        for (int i = 0; i < 30 && err.isEmpty(); ++i) {
            const auto& s = saes[rng() % saes.size()];
            const long f = static_cast<long>(rng() % s.sae->dSae());
            const auto p0 = Clock::now();
            cs::ui::DashboardView view(&session, QString::fromStdString(s.id), f);
            view.resize(640, 1180);
            QPixmap shot = view.grab();
            paint.push_back(since(p0) * 1000);
        }
        if (!paint.empty())
            std::printf("dashboard opened (query + build + first paint, 30 random features): median %.1f ms, max %.1f ms "
                        "(target median <= 50 ms)\n",
                        median(paint), *std::max_element(paint.begin(), paint.end()));
    }
    if (!keep) {
        std::filesystem::remove(dbPath);
        std::filesystem::remove(dbPath + "-wal");
        std::filesystem::remove(dbPath + "-shm");
    }
    std::filesystem::remove(txt);
    return 0;
}
