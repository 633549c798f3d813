#include "store/FeatureIndexer.h"

#include "model/Transformer.h"
#include "sae/Sae.h"
#include "sae/SaeAttachment.h"
#include "store/AutoLabel.h"
#include "store/FeatureStats.h"
#include "store/FeatureStore.h"
#include "store/IndexCorpus.h"
#include "store/Sqlite.h"
#include "store/WeightFacts.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

namespace cs {

namespace {

constexpr long kForwardWindows = 16;  // windows per model run inside a batch

// The arguments that decide a store's contents; a resumed run must match them exactly.
nlohmann::json fingerprint(const std::vector<IndexSae>& saes, const IndexOptions& opt, int context) {
    nlohmann::json j;
    j["model"] = opt.modelDir;
    nlohmann::json s = nlohmann::json::array();
    for (const auto& e : saes) s.push_back({{"id", e.id}, {"path", e.path}});
    j["saes"] = s;
    j["corpus"] = opt.corpusPath;
    if (!opt.corpusPath.empty()) {
        std::error_code ec;
        j["corpus_bytes"] = static_cast<long>(std::filesystem::file_size(opt.corpusPath, ec));
    }
    j["generate"] = opt.generateDocuments;
    j["seed"] = opt.generateSeed;
    j["tokens"] = opt.maxTokens;
    j["context"] = context;
    return j;
}

std::string differences(const nlohmann::json& had, const nlohmann::json& want) {
    std::string out;
    for (auto it = want.begin(); it != want.end(); ++it) {
        const auto h = had.contains(it.key()) ? had[it.key()] : nlohmann::json();
        if (h != it.value()) {
            if (!out.empty()) out += "; ";
            out += it.key() + " was " + h.dump() + ", now " + it.value().dump();
        }
    }
    return out;
}

int lastLayerFor(const std::vector<IndexSae>& saes) {
    int last = 0;
    for (const auto& e : saes) {
        const std::string& hook = e.sae->config().hookName;
        if (hook.rfind("ln_final", 0) == 0) return -1;
        last = std::max(last, layerOfHook(hook));
    }
    return last;
}

// A candidate taken into a feature's lists during the batch in flight; written at commit if
// still kept then.
struct ExampleOp {
    long feature = 0;
    int kind = 0;  // 0 top, 1 interval sample
    long window = 0;
    float max = 0;
    long peak = 0;
    int peakToken = 0;
    uint64_t priority = 0;
    long spanStart = 0;
    std::vector<float> activations;
};

struct SaeState {
    const IndexSae* sae = nullptr;
    long dSae = 0;
    long tokens = 0;
    std::vector<FeatureStats> stats;
    std::vector<char> dirty;
    std::vector<ExampleOp> ops;
    // Per (window in the run, feature): the window's highest activation and where; kept across
    // runs (zeroed where touched) so no run allocates and clears windows x d_sae afresh.
    std::vector<float> windowMax;
    std::vector<int32_t> windowPeak;
};

void writeSetup(sqlite3* db, const Transformer& model, const Tokenizer* tok, const std::vector<IndexSae>& saes,
                const std::vector<IndexWindow>& windows, const nlohmann::json& print) {
    sql::Transaction t(db);
    sql::exec(db, "DROP INDEX IF EXISTS examples_by_feature; DROP INDEX IF EXISTS examples_by_token; "
                  "DELETE FROM saes; DELETE FROM windows; DELETE FROM vocab; DELETE FROM features; DELETE FROM "
                  "examples; DELETE FROM weight_facts; DELETE FROM auto_labels; DELETE FROM label_search WHERE source = 'auto'");
    {
        sql::Stmt s(db, "INSERT INTO saes (id, ordinal, path, hook, hook_out, architecture, d_sae, d_in, tokens) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)");
        for (size_t i = 0; i < saes.size(); ++i) {
            const auto& c = saes[i].sae->config();
            s.bind(1, saes[i].id).bind(2, static_cast<long>(i)).bind(3, saes[i].path).bind(4, c.hookName)
                .bind(5, c.hookNameOut).bind(6, std::string(saeArchName(c.architecture))).bind(7, c.dSae).bind(8, c.dIn)
                .run();
        }
    }
    {
        sql::Stmt s(db, "INSERT INTO windows (id, document, start, tokens) VALUES (?, ?, ?, ?)");
        for (size_t i = 0; i < windows.size(); ++i) {
            std::vector<int32_t> ids(windows[i].tokens.begin(), windows[i].tokens.end());
            s.bind(1, static_cast<long>(i)).bind(2, windows[i].document).bind(3, windows[i].start).bindVector(4, ids).run();
        }
    }
    {
        sql::Stmt s(db, "INSERT INTO vocab (id, text) VALUES (?, ?)");
        const int V = static_cast<int>(model.config().vocabSize);
        for (int id = 0; id < V; ++id) s.bind(1, id).bind(2, tok && id < tok->vocabSize() ? tok->tokenText(id) : "#" + std::to_string(id)).run();
    }
    {
        sql::Stmt s(db, "INSERT INTO weight_facts (sae, idx, logits, neighbours) VALUES (?, ?, ?, ?)");
        for (const auto& e : saes) {
            const auto neighbours = decoderNeighbours(*e.sae, 10);
            const auto logits = allLogitEffects(model, *e.sae, 10);
            for (long f = 0; f < e.sae->dSae(); ++f) {
                nlohmann::json n = nlohmann::json::array();
                for (const auto& x : neighbours[f]) n.push_back({x.index, x.cosine});
                nlohmann::json l = nlohmann::json::object();
                if (!logits.empty()) {
                    nlohmann::json pos = nlohmann::json::array(), neg = nlohmann::json::array();
                    for (const auto& [id, v] : logits[f].positive) pos.push_back({id, v});
                    for (const auto& [id, v] : logits[f].negative) neg.push_back({id, v});
                    l = {{"positive", pos}, {"negative", neg}};
                }
                s.bind(1, e.id).bind(2, f).bind(3, l.dump()).bind(4, n.dump()).run();
            }
        }
    }
    {
        sql::Stmt s(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
        s.bind(1, "fingerprint").bind(2, print.dump()).run();
        s.bind(1, "windows_done").bind(2, "0").run();
        s.bind(1, "complete").bind(2, "0").run();
        s.bind(1, "model").bind(2, print["model"].get<std::string>()).run();
        s.bind(1, "context").bind(2, std::to_string(print["context"].get<int>())).run();
        s.bind(1, "bos").bind(2, std::to_string(tok ? tok->bosId() : -1)).run();
    }
    t.commit();
}

std::vector<IndexWindow> readWindows(sqlite3* db) {
    std::vector<IndexWindow> out;
    sql::Stmt s(db, "SELECT document, start, tokens FROM windows ORDER BY id");
    while (s.step()) {
        IndexWindow w;
        w.document = s.integer(0);
        w.start = s.integer(1);
        auto ids = s.vector<int32_t>(2);
        w.tokens.assign(ids.begin(), ids.end());
        out.push_back(std::move(w));
    }
    return out;
}

void restoreState(sqlite3* db, SaeState& st) {
    {
        sql::Stmt s(db, "SELECT tokens FROM saes WHERE id = ?");
        s.bind(1, st.sae->id);
        if (s.step()) st.tokens = s.integer(0);
    }
    {
        sql::Stmt s(db, "SELECT idx, max_act, firings, scale, histogram FROM features WHERE sae = ?");
        s.bind(1, st.sae->id);
        while (s.step()) {
            auto& f = st.stats.at(s.integer(0));
            f.maxActivation = static_cast<float>(s.real(1));
            f.firings = s.integer(2);
            f.scale = s.real(3);
            f.histogram = s.vector<int64_t>(4);
        }
    }
    std::vector<std::vector<Candidate>> top(st.dSae), samples(st.dSae);
    {
        sql::Stmt s(db, "SELECT idx, kind, window, max, priority FROM examples WHERE sae = ?");
        s.bind(1, st.sae->id);
        while (s.step()) {
            Candidate c{static_cast<float>(s.real(3)), static_cast<long>(s.integer(2)), static_cast<uint64_t>(s.integer(4))};
            (s.integer(1) == 0 ? top : samples).at(s.integer(0)).push_back(c);
        }
    }
    for (long f = 0; f < st.dSae; ++f) st.stats[f].restore(std::move(top[f]), samples[f]);
}

// Runs windows [first, first + count) and folds their activations into every SAE's state.
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void processWindows(const Transformer& model, const std::vector<IndexWindow>& windows, long first, long count,
                    int bos, int lastLayer, std::vector<SaeState>& states, IndexResult& timing) {
    auto t0 = Clock::now();
    long Tb = 0;
    for (long i = 0; i < count; ++i) Tb = std::max<long>(Tb, static_cast<long>(windows[first + i].tokens.size()));
    // Right padding never reaches a real position under causal attention; padded positions are
    // masked out with the BOS positions.
    std::vector<int64_t> ids(count * Tb, 0);
    std::vector<char> indexed(count * Tb, 0);  // rows (window * Tb + position) that are neither padding nor BOS
    long validCount = 0;
    for (long b = 0; b < count; ++b) {
        const auto& w = windows[first + b].tokens;
        for (size_t t = 0; t < w.size(); ++t) {
            ids[b * Tb + t] = w[t];
            if (w[t] != bos) {
                indexed[b * Tb + t] = 1;
                ++validCount;
            }
        }
    }
    Hooks hooks;
    for (const auto& st : states) hooks.cache(st.sae->sae->config().hookName);
    ActivationCache cache;
    RunOptions o;
    o.hooks = &hooks;
    o.cache = &cache;
    o.lastLayer = lastLayer;
    o.lastPositionOnly = true;
    model.forward(at::tensor(ids, at::kLong).view({count, Tb}), o);

    for (auto& st : states) {
        const Sae& sae = *st.sae->sae;
        const long D = st.dSae;
        at::Tensor x = cache.at(sae.config().hookName).reshape({count * Tb, -1});
        const Sae::SparseCode code = sae.encodeSparse(x);
        timing.forwardSeconds += since(t0);
        t0 = Clock::now();
        // The activation of feature f at row r (0 where it is not active or not indexed).
        auto activation = [&](long r, long f) -> float {
            if (!indexed[r]) return 0.0f;
            const auto* lo = code.index.data() + code.rowStart[r];
            const auto* hi = code.index.data() + code.rowStart[r + 1];
            const auto* it = std::lower_bound(lo, hi, static_cast<int32_t>(f));
            return it != hi && *it == f ? code.value[it - code.index.data()] : 0.0f;
        };
        st.tokens += validCount;
        auto& wmax = st.windowMax;
        auto& wpos = st.windowPeak;
        if (static_cast<long>(wmax.size()) < count * D) {
            wmax.assign(count * D, 0.0f);
            wpos.assign(count * D, 0);
        }
        std::vector<long> touched;
        for (long row = 0; row < count * Tb; ++row) {
            if (!indexed[row]) continue;
            const long b = row / Tb;
            for (int64_t i = code.rowStart[row]; i < code.rowStart[row + 1]; ++i) {
                const long f = code.index[i];
                const float v = code.value[i];
                st.stats[f].addValue(v);
                st.dirty[f] = 1;
                const long key = b * D + f;
                if (wmax[key] == 0) touched.push_back(key);
                if (v > wmax[key]) {
                    wmax[key] = v;
                    wpos[key] = static_cast<int32_t>(row % Tb);
                }
            }
        }
        for (long key : touched) {
            const long b = key / D, f = key % D;
            const long window = first + b;
            Candidate c{wmax[key], window, samplePriority(window, f)};
            const auto taken = st.stats[f].offer(c);
            if (!taken.top && !taken.interval) continue;
            const long len = static_cast<long>(windows[window].tokens.size());
            const long peak = wpos[key];
            ExampleOp op;
            op.feature = f;
            op.window = window;
            op.max = c.max;
            op.peak = peak;
            op.peakToken = windows[window].tokens[peak];
            op.priority = c.priority;
            op.spanStart = std::max(0L, peak - kSpanBefore);
            const long spanEnd = std::min(len, peak + kSpanAfter);
            for (long t = op.spanStart; t < spanEnd; ++t) op.activations.push_back(activation(b * Tb + t, f));
            if (taken.top) {
                op.kind = 0;
                st.ops.push_back(op);
            }
            if (taken.interval) {
                op.kind = 1;
                st.ops.push_back(std::move(op));
            }
        }
        for (long key : touched) wmax[key] = 0;
        timing.bookkeepingSeconds += since(t0);
        t0 = Clock::now();
    }
}

void commitBatch(sqlite3* db, std::vector<SaeState>& states, long windowsDone) {
    sql::Transaction t(db);
    // Appended, never updated or deleted while indexing: rows land on fresh pages at the end of
    // the table instead of rewriting every feature's pages in every batch (which made commits
    // 60% of the run). Rows that lose their place later stay until the finishing compaction;
    // readers apply the same selection rules, so they never see the difference.
    sql::Stmt ins(db, "INSERT INTO examples (sae, idx, kind, window, max, peak, peak_token, priority, "
                      "span_start, activations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sql::Stmt feat(db, "INSERT OR REPLACE INTO features (sae, idx, max_act, firings, scale, histogram) VALUES (?, ?, ?, ?, ?, ?)");
    sql::Stmt tok(db, "UPDATE saes SET tokens = ? WHERE id = ?");
    for (auto& st : states) {
        const std::string& id = st.sae->id;
        for (const ExampleOp& op : st.ops) {
            const auto& fs = st.stats[op.feature];
            const Candidate c{op.max, op.window, op.priority};
            if (op.kind == 0 ? !fs.keepsTop(op.window) : !fs.keepsSample(c)) continue;  // pushed out in this batch
            ins.bind(1, id).bind(2, op.feature).bind(3, op.kind).bind(4, op.window).bind(5, static_cast<double>(op.max))
                .bind(6, op.peak).bind(7, op.peakToken).bind(8, static_cast<int64_t>(op.priority)).bind(9, op.spanStart)
                .bindVector(10, op.activations).run();
        }
        st.ops.clear();
        for (long f = 0; f < st.dSae; ++f) {
            if (!st.dirty[f]) continue;
            const auto& s = st.stats[f];
            feat.bind(1, id).bind(2, f).bind(3, static_cast<double>(s.maxActivation)).bind(4, static_cast<int64_t>(s.firings))
                .bind(5, s.scale).bindVector(6, s.histogram).run();
            st.dirty[f] = 0;
        }
        tok.bind(1, st.tokens).bind(2, id).run();
    }
    sql::Stmt m(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('windows_done', ?)");
    m.bind(1, std::to_string(windowsDone)).run();
    t.commit();
}

// Drops the rows that lost their place (see commitBatch) and builds the read indexes.
void compact(sqlite3* db, const std::vector<SaeState>& states) {
    sql::Transaction t(db);
    sql::exec(db, "CREATE TEMP TABLE IF NOT EXISTS kept (sae TEXT, idx INTEGER, kind INTEGER, window INTEGER); DELETE FROM kept");
    {
        sql::Stmt ins(db, "INSERT INTO kept VALUES (?, ?, ?, ?)");
        for (const auto& st : states)
            for (long f = 0; f < st.dSae; ++f) {
                for (const auto& c : st.stats[f].top) ins.bind(1, st.sae->id).bind(2, f).bind(3, 0).bind(4, c.window).run();
                for (const auto& bin : st.stats[f].intervals)
                    for (const auto& c : bin) ins.bind(1, st.sae->id).bind(2, f).bind(3, 1).bind(4, c.window).run();
            }
    }
    sql::exec(db, "CREATE INDEX temp.kept_key ON kept (sae, idx, kind, window); "
                  "DELETE FROM examples WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.sae = examples.sae AND "
                  "k.idx = examples.idx AND k.kind = examples.kind AND k.window = examples.window); "
                  "DROP TABLE temp.kept; "
                  "CREATE INDEX IF NOT EXISTS examples_by_feature ON examples (sae, idx); "
                  "CREATE INDEX IF NOT EXISTS examples_by_token ON examples (sae, kind, peak_token)");
    t.commit();
}

}  // namespace

IndexResult indexFeatures(const std::string& dbPath, const Transformer& model, const Tokenizer* tok,
                          const std::vector<IndexSae>& saes, const IndexOptions& opt,
                          const std::function<void(const IndexProgress&)>& progress,
                          const std::atomic<bool>* cancel) {
    if (saes.empty()) throw Error("index: no SAE to index (give --sae PATH)");
    for (const auto& e : saes) {
        const auto& c = e.sae->config();
        const long width = hookWidth(model, c.hookName, e.path);
        if (width != c.dIn)
            failIn(e.path, "d_in " + std::to_string(c.dIn) + " does not match hook " + c.hookName + ", which is " +
                               std::to_string(width) + " wide in this model");
    }
    if (opt.corpusPath.empty() && opt.generateDocuments <= 0) throw Error("index: give a corpus (--corpus FILE) or --generate N");
    if (opt.maxTokens <= 0) throw Error("index: --tokens must be positive");
    if (opt.batch <= 0) throw Error("index: --batch must be positive");
    const int context = opt.context > 0 ? opt.context : static_cast<int>(std::min<long>(model.config().nCtx, 128));
    if (context > model.config().nCtx)
        throw Error("index: --context " + std::to_string(context) + " exceeds the model's context of " +
                    std::to_string(model.config().nCtx));
    c10::InferenceMode guard;
    auto report = [&](const char* phase, long done, long total) {
        if (progress) progress(IndexProgress{phase, done, total});
    };
    const nlohmann::json print = fingerprint(saes, opt, context);

    // Read the corpus before creating anything, so a bad corpus leaves no file behind.
    const bool existed = !FeatureStore::isBlank(dbPath);
    std::vector<IndexWindow> windows;
    bool setupDone = false;
    if (existed) {
        FeatureStore probe(dbPath, FeatureStore::Mode::ReadOnly);  // refuses files that are not ours
        const std::string had = probe.meta("fingerprint");
        if (!had.empty()) {
            const auto hadJson = nlohmann::json::parse(had);
            if (hadJson != print)
                failIn(dbPath, "was indexed with other arguments (" + differences(hadJson, print) +
                                   "); give a new --db, or the same arguments to resume");
            setupDone = true;
        }
    }
    IndexResult result;
    const auto setupStart = Clock::now();
    if (!setupDone) {
        std::vector<std::vector<int>> docs;
        if (opt.generateDocuments > 0) {
            report("generating", 0, opt.generateDocuments);
            if (!tok) throw Error("index --generate: the model has no tokenizer to say where documents begin and end");
            docs = sampleIndexCorpus(model, *tok, opt.generateDocuments, context, opt.generateSeed,
                                     [&](long d) { report("generating", d, opt.generateDocuments); }, cancel);
            if (cancel && cancel->load()) {
                result.cancelled = true;
                return result;
            }
        } else {
            report("reading", 0, 0);
            docs = readIndexCorpus(opt.corpusPath, tok, model.config().vocabSize, opt.maxTokens);
        }
        windows = cutWindows(docs, context, opt.maxTokens);
    }
    FeatureStore store(dbPath, FeatureStore::Mode::Create);
    sqlite3* db = store.db();
    if (!setupDone) writeSetup(db, model, tok, saes, windows, print);
    else windows = readWindows(db);
    if (store.meta("complete") == "1") {
        result.alreadyComplete = true;
        for (const auto& e : store.saes()) result.tokens = std::max(result.tokens, e.tokens);
        result.windows = static_cast<long>(windows.size());
        report("done", 1, 1);
        return result;
    }

    result.setupSeconds = since(setupStart);
    std::vector<SaeState> states(saes.size());
    for (size_t i = 0; i < saes.size(); ++i) {
        states[i].sae = &saes[i];
        states[i].dSae = saes[i].sae->dSae();
        states[i].stats.resize(states[i].dSae);
        states[i].dirty.assign(states[i].dSae, 0);
        restoreState(db, states[i]);
    }
    long done = std::stol(store.meta("windows_done").empty() ? "0" : store.meta("windows_done"));
    result.resumed = done > 0;
    long totalTokens = 0, doneTokens = 0;
    for (size_t i = 0; i < windows.size(); ++i) {
        totalTokens += static_cast<long>(windows[i].tokens.size());
        if (static_cast<long>(i) < done) doneTokens += static_cast<long>(windows[i].tokens.size());
    }
    const int bos = tok ? tok->bosId() : -1;
    const int lastLayer = lastLayerFor(saes);
    const long n = static_cast<long>(windows.size());
    report("indexing", doneTokens, totalTokens);
    while (done < n) {
        if (cancel && cancel->load()) {
            result.cancelled = true;
            return result;
        }
        const long end = std::min(n, done + opt.batch);
        for (long first = done; first < end; first += kForwardWindows) {
            const long count = std::min(kForwardWindows, end - first);
            processWindows(model, windows, first, count, bos, lastLayer, states, result);
            for (long i = first; i < first + count; ++i) doneTokens += static_cast<long>(windows[i].tokens.size());
        }
        const auto c0 = Clock::now();
        commitBatch(db, states, end);
        result.commitSeconds += since(c0);
        done = end;
        report("indexing", doneTokens, totalTokens);
    }

    report("finishing", 0, 1);
    const auto finishStart = Clock::now();
    compact(db, states);
    {
        std::vector<std::string> ids;
        for (const auto& e : saes) ids.push_back(e.id);
        writeAutoLabels(db, ids);
    }
    store.setMeta("complete", "1");
    sql::exec(db, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE)");
    result.finishSeconds = since(finishStart);
    result.tokens = states.empty() ? 0 : states[0].tokens;
    result.windows = n;
    report("done", 1, 1);
    return result;
}

}  // namespace cs
