// The feature store end to end, through the command line a user or a script calls: `index` on the
// demo against an independent float64 reference (tests/reference/ref_feature_index.py) for every
// feature of two SAEs; an index killed with SIGKILL at several points and resumed ends with the
// same store as an uninterrupted one; a reader never sees "database is locked" while `index`
// writes; bad inputs fail with one line naming the file and line and leave nothing behind; labels
// are saved, shown and searchable.
#include "TestSupport.h"

#include "store/FeatureStore.h"
#include "store/Sqlite.h"
#include "store/StoreJson.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <QElapsedTimer>
#include <QProcess>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

using namespace cstest;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------------------------ running the CLI
struct Proc {
    int rc = -1;
    std::string out, err;
};

Proc cli(const QStringList& args, int timeoutMs = 300000) {
    QProcess p;
    p.setProgram(QString::fromUtf8(CS_CLI_PATH));
    p.setArguments(QStringList{"--threads", "2"} + args);
    p.start();
    Proc r;
    if (!p.waitForStarted(30000)) {
        r.err = "could not start " + std::string(CS_CLI_PATH);
        return r;
    }
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished();
        r.err = "timed out";
    }
    r.out = p.readAllStandardOutput().toStdString();
    r.err += p.readAllStandardError().toStdString();
    r.rc = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return r;
}

QString q(const std::string& s) { return QString::fromStdString(s); }

std::string describe(const Proc& r) { return "rc " + std::to_string(r.rc) + ", stderr: " + r.err; }

json cliJson(const QStringList& args) {
    Proc r = cli(args);
    if (r.rc != 0) throw std::runtime_error("circuitscope " + args.join(' ').toStdString() + " failed: " + describe(r));
    return json::parse(r.out);
}

bool havePythonTorch() { return run(python() + " -c 'import torch' 2>/dev/null") == 0; }

// --------------------------------------------------------------------------------- test corpora
// A small deterministic generator (not std:: distributions, whose output differs between
// standard libraries): the corpora are the same everywhere.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s += 0x9E3779B97F4A7C15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    int range(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
};

constexpr int kBos = 1;       // the demo's bos_token_id (resources/demo/model/config.json)
constexpr int kVocab = 2048;  // the demo's vocab_size

// `{"tokens": [...]}` documents of ids 2..2047 with BOS placed where it exercises the rules:
// at the start of some documents (a BOS-led window), in the middle of others, as the first token
// of a later window (context 64), and a document that is BOS alone (a window with nothing indexed).
std::vector<std::vector<int>> makeDocuments(int count, uint64_t seed, int minLen, int maxLen) {
    Rng rng{seed};
    std::vector<std::vector<int>> docs;
    for (int d = 0; d < count; ++d) {
        int len = rng.range(minLen, maxLen);
        if (d == 2) len = 64;    // exactly one window
        if (d == 4) len = 128;   // two full windows, the second led by BOS
        if (d == 6) len = 65;    // a one-token second window
        if (d == 10) len = 1;    // BOS alone
        std::vector<int> t(len);
        for (int& x : t) x = rng.range(2, kVocab - 1);
        if (d % 3 == 0) t[0] = kBos;
        if (d % 5 == 1 && len > 2) t[len / 2] = kBos;
        if (d == 4) t[64] = kBos;
        docs.push_back(t);
    }
    return docs;
}

std::string jsonl(const std::vector<std::vector<int>>& docs) {
    std::string s;
    for (const auto& d : docs) s += json{{"tokens", d}}.dump() + "\n";
    return s;
}

long totalTokens(const std::vector<std::vector<int>>& docs) {
    long n = 0;
    for (const auto& d : docs) n += static_cast<long>(d.size());
    return n;
}

// --------------------------------------------------------------------------- comparing features
// Float tolerance: 1e-4 relative (the C++ side runs in float32, the reference in float64; measured
// differences are about 3e-6 relative) plus a small absolute floor for values near zero.
bool close(double got, double want, double rel = 1e-4, double abs = 2e-5) {
    return std::abs(got - want) <= rel * std::abs(want) + abs;
}

struct Errors {
    std::vector<std::string> list;
    long count = 0;
    void add(const std::string& where, const std::string& what) {
        ++count;
        if (list.size() < 40) list.push_back(where + ": " + what);
    }
    std::string text() const {
        std::string s = std::to_string(count) + " differences";
        for (const auto& e : list) s += "\n  " + e;
        return s;
    }
};

std::string num(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
}

using KeyFn = std::function<std::string(const json&)>;
using ValueFn = std::function<double(const json&)>;
using PayloadFn = std::function<void(const json& got, const json& want, const std::string& where)>;

// A ranked list against the reference's ranking, robust to rounding but not to bugs:
//  - `got` has exactly `shown` entries;
//  - the value at every rank matches the reference's value at that rank (so the ranking and the
//    cut are right up to values that are equal within rounding);
//  - every entry is a reference entry (by key) with a matching value, and no key repeats; when the
//    reference list stops (`complete`: it holds every candidate) there is nothing else it could be;
//    otherwise an unknown key is accepted only where its value ties with the reference's last one;
//  - the payload of every entry matches its reference entry's.
void compareRanked(const json& got, const json& want, size_t shown, bool complete, bool descending, const KeyFn& key,
                   const ValueFn& value, const PayloadFn& payload, const std::string& where, Errors& errs) {
    if (got.size() != shown) {
        errs.add(where, "has " + std::to_string(got.size()) + " entries, the reference " + std::to_string(shown));
        return;
    }
    std::map<std::string, size_t> at;
    for (size_t j = 0; j < want.size(); ++j) at.emplace(key(want[j]), j);
    std::set<std::string> seen;
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string k = key(got[i]);
        const double v = value(got[i]);
        const std::string w = where + "[" + std::to_string(i) + "] (" + k + ")";
        if (i < want.size() && !close(v, value(want[i])))
            errs.add(w, "value " + num(v) + ", the reference's rank " + std::to_string(i) + " has " +
                            num(value(want[i])) + " (" + key(want[i]) + ")");
        if (i > 0) {
            const double prev = value(got[i - 1]);
            if (descending ? v > prev + 1e-6 * std::abs(prev) : v < prev - 1e-6 * std::abs(prev))
                errs.add(w, "out of order after " + num(prev));
        }
        if (!seen.insert(k).second) errs.add(w, "listed twice");
        auto it = at.find(k);
        if (it == at.end()) {
            if (complete || want.empty() || !close(v, value(want.back())))
                errs.add(w, "not in the reference's list (value " + num(v) + ")");
            continue;
        }
        const json& ref = want[it->second];
        if (!close(v, value(ref))) {
            errs.add(w, "value " + num(v) + ", reference " + num(value(ref)));
            continue;
        }
        if (payload) payload(got[i], ref, w);
    }
}

std::string exampleKey(const json& e) {
    return "doc " + std::to_string(e["document"].get<long>()) + " @" + std::to_string(e["start"].get<long>());
}

void compareExample(const json& got, const json& want, const std::string& where, Errors& errs) {
    if (got["tokens"] != want["tokens"]) {
        errs.add(where, "tokens " + got["tokens"].dump() + ", reference " + want["tokens"].dump());
        return;
    }
    const json& ga = got["activations"];
    const json& wa = want["activations"];
    if (ga.size() != wa.size()) {
        errs.add(where, "has " + std::to_string(ga.size()) + " activations for " + std::to_string(wa.size()) + " tokens");
        return;
    }
    for (size_t i = 0; i < ga.size(); ++i)
        if (!close(ga[i].get<double>(), wa[i].get<double>())) {
            errs.add(where, "activation " + std::to_string(i) + " is " + num(ga[i].get<double>()) + ", reference " +
                                num(wa[i].get<double>()));
            break;
        }
    if (!got.contains("pieces") || got["pieces"].size() != got["tokens"].size())
        errs.add(where, "pieces do not match the tokens one for one");
}

struct CompareStats {
    long features = 0, fuzzy = 0, fired = 0, examples = 0, intervals = 0;
};

// One feature of `feature --json` against the reference's record (see ref_feature_index.py).
void compareFeature(const json& got, const json& want, const std::string& sae, long tokens, Errors& errs,
                    CompareStats& st) {
    const long f = want["index"].get<long>();
    const std::string where = sae + " #" + std::to_string(f);
    ++st.features;
    if (got.value("sae", std::string()) != sae) errs.add(where, "sae is " + got.value("sae", std::string("?")));
    if (got.value("index", -1L) != f) errs.add(where, "index is " + got["index"].dump());
    for (const char* field : {"label", "max_activation", "density", "top_examples", "interval_examples", "histogram",
                              "logits", "neighbours"})
        if (!got.contains(field)) errs.add(where, std::string("no field '") + field + "'");
    if (!got["label"].is_string()) errs.add(where, "label is not a string");

    const long uncertain = want["uncertain"].get<long>();
    const long firings = want["firings"].get<long>();
    const double density = got["density"].get<double>();
    const long gotFirings = std::lround(density * tokens);
    if (std::abs(gotFirings - firings) > uncertain)
        errs.add(where, "density " + num(density) + " = " + std::to_string(gotFirings) + " firings of " +
                            std::to_string(tokens) + ", reference " + std::to_string(firings) +
                            (uncertain ? " (" + std::to_string(uncertain) + " within rounding)" : ""));
    if (!close(density, double(gotFirings) / tokens, 1e-9, 1e-12)) errs.add(where, "density is not firings / tokens");
    if (uncertain == 0 && !close(got["max_activation"].get<double>(), want["max_activation"].get<double>()))
        errs.add(where, "max_activation " + num(got["max_activation"].get<double>()) + ", reference " +
                            num(want["max_activation"].get<double>()));
    if (firings > 0) ++st.fired;

    // Histogram: exact counts unless the reference saw values within rounding of a bin edge.
    const json& gh = got["histogram"];
    const json& wh = want["histogram"];
    if (firings > 0) {
        if (gh["edges"].size() != 51 || gh["counts"].size() != 50) {
            errs.add(where, "histogram has " + std::to_string(gh["edges"].size()) + " edges and " +
                                std::to_string(gh["counts"].size()) + " counts (51 and 50 expected)");
        } else {
            for (size_t i = 0; i < 51; ++i)
                if (!close(gh["edges"][i].get<double>(), wh["edges"][i].get<double>(), 1e-9, 1e-12)) {
                    errs.add(where, "histogram edge " + std::to_string(i) + " is " + num(gh["edges"][i].get<double>()) +
                                        ", reference " + num(wh["edges"][i].get<double>()));
                    break;
                }
            long l1 = 0, sum = 0;
            for (size_t i = 0; i < 50; ++i) {
                l1 += std::abs(gh["counts"][i].get<long>() - wh["counts"][i].get<long>());
                sum += gh["counts"][i].get<long>();
            }
            const long slack = want["histogram_slack"].get<long>();
            if (l1 > 2 * slack)
                errs.add(where, "histogram counts " + gh["counts"].dump() + ", reference " + wh["counts"].dump());
            if (sum != gotFirings) errs.add(where, "histogram holds " + std::to_string(sum) + " values for " +
                                                       std::to_string(gotFirings) + " firings");
        }
    } else {
        for (const auto& c : gh["counts"])
            if (c.get<long>() != 0) errs.add(where, "a feature that never fired has histogram counts");
    }

    // Examples and intervals: skipped only where the reference says rounding could change them.
    if (want["fuzzy"].get<bool>()) {
        ++st.fuzzy;
    } else {
        const long candidates = want["candidates"].get<long>();
        const size_t shown = static_cast<size_t>(std::min<long>(20, candidates));
        const bool complete = want["top_examples"].size() == static_cast<size_t>(candidates);
        auto maxOf = [](const json& e) { return e["max"].get<double>(); };
        auto payload = [&](const json& g, const json& w, const std::string& at) { compareExample(g, w, at, errs); };
        compareRanked(got["top_examples"], want["top_examples"], shown, complete, true, exampleKey, maxOf, payload,
                      where + " top_examples", errs);
        st.examples += static_cast<long>(shown);
        const json& gi = got["interval_examples"];
        const json& wi = want["interval_examples"];
        if (gi.size() != wi.size()) {
            errs.add(where, "has " + std::to_string(gi.size()) + " intervals, the reference " + std::to_string(wi.size()));
        } else {
            for (size_t i = 0; i < gi.size(); ++i) {
                const std::string at = where + " interval " + std::to_string(i);
                if (!close(gi[i]["low"].get<double>(), wi[i]["low"].get<double>(), 1e-9, 1e-12) ||
                    !close(gi[i]["high"].get<double>(), wi[i]["high"].get<double>(), 1e-9, 1e-12))
                    errs.add(at, "is [" + num(gi[i]["low"].get<double>()) + ", " + num(gi[i]["high"].get<double>()) +
                                     "), reference [" + num(wi[i]["low"].get<double>()) + ", " +
                                     num(wi[i]["high"].get<double>()) + ")");
                compareRanked(gi[i]["examples"], wi[i]["examples"], wi[i]["examples"].size(), true, true, exampleKey,
                              maxOf, payload, at, errs);
                ++st.intervals;
            }
        }
    }

    // Weights: logit effects and neighbours (the reference lists 5 more than shown, for ties).
    auto tokenKey = [](const json& e) { return "token " + std::to_string(e["token"].get<long>()); };
    auto valueOf = [](const json& e) { return e["value"].get<double>(); };
    auto pieceIsText = [&](const json& g, const json&, const std::string& at) {
        if (!g.contains("piece") || !g["piece"].is_string()) errs.add(at, "no piece");
    };
    compareRanked(got["logits"]["positive"], want["logits"]["positive"], 10, false, true, tokenKey, valueOf, pieceIsText,
                  where + " logits.positive", errs);
    compareRanked(got["logits"]["negative"], want["logits"]["negative"], 10, false, false, tokenKey, valueOf,
                  pieceIsText, where + " logits.negative", errs);
    compareRanked(got["neighbours"], want["neighbours"], 10, false, true,
                  [](const json& e) { return "feature " + std::to_string(e["index"].get<long>()); },
                  [](const json& e) { return e["cosine"].get<double>(); }, nullptr, where + " neighbours", errs);
}

// ------------------------------------------------------------------------------- store contents
// Every table of a store as text rows (SQLite's quote() of every column, rows sorted), read
// through the store's own connection. FTS5's shadow tables are left out (their layout depends on
// the insert history); the searchable content is compared through label_search itself.
std::map<std::string, std::vector<std::string>> dumpStore(const std::string& path) {
    cs::FeatureStore store(path, cs::FeatureStore::Mode::ReadOnly);
    std::vector<std::string> tables;
    {
        cs::sql::Stmt s(store.db(), "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                                    "AND name NOT LIKE 'label_search_%' ORDER BY name");
        while (s.step()) tables.push_back(s.text(0));
    }
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& t : tables) {
        std::vector<std::string> cols;
        {
            cs::sql::Stmt s(store.db(), "SELECT name FROM pragma_table_info('" + t + "')");
            while (s.step()) cols.push_back(s.text(0));
        }
        std::string expr;
        for (const auto& c : cols) expr += (expr.empty() ? "" : " || '|' || ") + std::string("quote(\"") + c + "\")";
        auto& rows = out[t];
        cs::sql::Stmt s(store.db(), "SELECT " + (expr.empty() ? std::string("''") : expr) + " FROM \"" + t + "\"");
        while (s.step()) rows.push_back(s.text(0));
        std::sort(rows.begin(), rows.end());
    }
    return out;
}

// Every SAE and feature as `feature --json` prints it (in-process, through the same JSON code).
json allFeatures(const std::string& path) {
    cs::FeatureStore store(path, cs::FeatureStore::Mode::ReadOnly);
    json out = json::object();
    for (const auto& s : store.saes()) {
        json list = json::array();
        for (long i = 0; i < s.dSae; ++i) list.push_back(cs::featureJson(store.feature(s.id, i)));
        out[s.id] = list;
    }
    return out;
}

long storeTokens(const std::string& path) {
    try {
        cs::FeatureStore store(path, cs::FeatureStore::Mode::ReadOnly);
        const auto saes = store.saes();
        return saes.empty() ? -1 : saes[0].tokens;
    } catch (const std::exception&) {
        return -1;
    }
}

}  // namespace

class TestStore : public QObject {
    Q_OBJECT
    std::string dir_;
    std::string corpus_, db_, res_, tc_;
    long runTokens_ = 0;
    std::vector<std::vector<int>> docs_;
    json ref_;
    json all_;  // every feature of the reference store, as `feature --json` prints it
    bool indexed_ = false;

    QStringList indexArgs(const std::string& corpus, const std::string& db, const std::string& extra = {}) const {
        QStringList a{"index", "--model", "demo", "--sae", q(res_), "--sae", q(tc_), "--corpus", q(corpus), "--db", q(db),
                      "--context", "64"};
        if (!extra.empty()) a += q(extra).split(' ', Qt::SkipEmptyParts);
        return a;
    }

    void requireIndexed() {
        if (!indexed_) QSKIP("the reference store was not built (see indexMatchesReference)");
    }

private Q_SLOTS:
    void initTestCase() {
        dir_ = makeTempDir("store");
        res_ = sourceDir() + "/resources/demo/saes/res-L1";
        tc_ = sourceDir() + "/resources/demo/saes/tc-L2";
        corpus_ = dir_ + "/corpus.jsonl";
        db_ = dir_ + "/ref.db";
        docs_ = makeDocuments(40, 15, 20, 150);
        writeFile(corpus_, jsonl(docs_));
        runTokens_ = totalTokens(docs_) - 250;  // --tokens cuts a window short (checked below)
        QVERIFY(runTokens_ > 2500);
    }

    // ------------------------------------------------------------------------------------------
    void indexMatchesReference() {
        QElapsedTimer timer;
        timer.start();
        const std::string tokens = std::to_string(runTokens_);
        Proc r = cli(indexArgs(corpus_, db_, "--batch 4 --tokens " + tokens));
        QVERIFY2(r.rc == 0, describe(r).c_str());
        indexed_ = true;  // the later tests use this store
        const qint64 indexMs = timer.restart();
        if (!havePythonTorch()) QSKIP("python3 with torch is missing: skipping the comparison with ref_feature_index.py");

        const std::string refOut = dir_ + "/ref.json";
        runReference("ref_feature_index.py", "--model " + shellQuote(sourceDir() + "/resources/demo/model") + " --sae " +
                                                 shellQuote(res_) + " --sae " + shellQuote(tc_) + " --corpus " +
                                                 shellQuote(corpus_) + " --context 64 --tokens " + tokens + " --out " +
                                                 shellQuote(refOut));
        ref_ = json::parse(readFile(refOut));
        const qint64 refMs = timer.restart();
        QCOMPARE(ref_["run_tokens"].get<long>(), runTokens_);
        const json& last = ref_["windows"].back();  // [document, start, length]
        QVERIFY(last[2].get<long>() < 64 &&
                last[1].get<long>() + last[2].get<long>() < static_cast<long>(docs_[last[0].get<size_t>()].size()));

        // saes --json
        const json saes = cliJson({"saes", "--db", q(db_), "--json"});
        QCOMPARE(saes.size(), size_t(2));
        for (size_t i = 0; i < 2; ++i) {
            const json& want = ref_["saes"][i];
            QCOMPARE(saes[i]["id"].get<std::string>(), want["id"].get<std::string>());
            QCOMPARE(saes[i]["hook"].get<std::string>(), want["hook"].get<std::string>());
            QCOMPARE(saes[i]["d_sae"].get<long>(), want["d_sae"].get<long>());
            QCOMPARE(saes[i]["tokens"].get<long>(), want["tokens"].get<long>());
        }
        QCOMPARE(saes[0]["id"].get<std::string>(), std::string("res-L1"));
        QCOMPARE(saes[1]["id"].get<std::string>(), std::string("tc-L2"));

        // Every feature, in-process through the JSON code `feature --json` prints with ...
        all_ = allFeatures(db_);
        const json& all = all_;
        const qint64 readMs = timer.restart();
        Errors errs;
        CompareStats st;
        for (const auto& s : ref_["saes"]) {
            const std::string id = s["id"].get<std::string>();
            const long tokensIndexed = s["tokens"].get<long>();
            const json& want = ref_["features"][id];
            QCOMPARE(all[id].size(), want.size());
            for (size_t f = 0; f < want.size(); ++f) compareFeature(all[id][f], want[f], id, tokensIndexed, errs, st);
        }
        // ... and a few through the command itself (each call costs a process start): the densest
        // and the sparsest that fired of one SAE, the sparsest and an ordinary one of the other.
        const qint64 compareMs = timer.restart();
        long cliCalls = 0;
        for (const auto& s : ref_["saes"]) {
            const std::string id = s["id"].get<std::string>();
            const json& want = ref_["features"][id];
            const size_t none = want.size(), f500 = 500;
            std::set<size_t> pick;
            size_t densest = 0, sparsest = none;
            for (size_t f = 0; f < want.size(); ++f) {
                const long n = want[f]["firings"].get<long>();
                if (n > want[densest]["firings"].get<long>()) densest = f;
                if (n > 0 && (sparsest == none || n < want[sparsest]["firings"].get<long>())) sparsest = f;
            }
            pick.insert(id == "res-L1" ? densest : f500);
            if (sparsest != none) pick.insert(sparsest);
            for (size_t f : pick) {
                const json got = cliJson({"feature", "--db", q(db_), "--sae", q(id), "--index", QString::number(f), "--json"});
                ++cliCalls;
                compareFeature(got, want[f], id, s["tokens"].get<long>(), errs, st);
                if (got != all[id][f]) errs.add(id + " #" + std::to_string(f), "`feature --json` differs from FeatureStore");
            }
        }
        qInfo("index %lld ms, reference %lld ms, reading every feature %lld ms, comparing %lld ms, %ld CLI calls %lld ms; "
              "%ld features compared, %ld fired, %ld with examples or intervals within rounding (not compared), "
              "%ld examples, %ld intervals",
              indexMs, refMs, readMs, compareMs, cliCalls, timer.elapsed(), st.features, st.fired, st.fuzzy, st.examples,
              st.intervals);
        QVERIFY2(errs.count == 0, errs.text().c_str());
        // The comparison must have compared something, and rounding must not excuse much.
        QVERIFY(st.fired > 1500);
        QVERIFY2(st.fuzzy * 20 < st.features, ("too many features within rounding: " + std::to_string(st.fuzzy)).c_str());
        QVERIFY(st.examples > 10000 && st.intervals > 5000);
    }

    // The comparison above fails on real differences: perturbed copies of the reference are
    // compared against the store's own JSON and each must be caught.
    void comparisonCatchesPerturbations() {
        requireIndexed();
        if (ref_.is_null() || all_.is_null()) QSKIP("no reference");
        const json& all = all_;
        // A well-behaved feature: fired often, not fuzzy, with intervals and a long example list.
        const json& want = ref_["features"]["res-L1"];
        size_t f = want.size();
        for (size_t i = 0; i < want.size() && f == want.size(); ++i) {
            const json& w = want[i];
            if (w["fuzzy"].get<bool>() || w["candidates"].get<long>() <= 25 || w["interval_examples"].size() < 3 ||
                w["histogram_slack"].get<long>() != 0)
                continue;
            const double m0 = w["top_examples"][0]["max"].get<double>(), m1 = w["top_examples"][1]["max"].get<double>();
            if (m0 - m1 > 1e-3 * m0) f = i;  // so that swapping the two is not a tie
        }
        QVERIFY(f < want.size());
        const long tokens = ref_["saes"][0]["tokens"].get<long>();
        std::vector<std::pair<std::string, std::function<void(json&)>>> cases = {
            {"one activation 1% off", [](json& w) {
                 auto& a = w["top_examples"][3]["activations"];
                 for (auto& v : a)
                     if (v.get<double>() > 0) { v = v.get<double>() * 1.01; break; }
             }},
            {"two examples swapped", [](json& w) { std::swap(w["top_examples"][0], w["top_examples"][1]); }},
            {"an example's start moved", [](json& w) { w["top_examples"][5]["start"] = w["top_examples"][5]["start"].get<long>() + 1; }},
            {"an example token changed", [](json& w) { w["top_examples"][2]["tokens"][0] = 0; }},
            {"one firing more", [](json& w) { w["firings"] = w["firings"].get<long>() + 1; }},
            {"a histogram count moved", [](json& w) {
                 auto& c = w["histogram"]["counts"];
                 for (size_t i = 0; i + 1 < c.size(); ++i)
                     if (c[i].get<long>() > 0) { c[i] = c[i].get<long>() - 1; c[i + 1] = c[i + 1].get<long>() + 1; break; }
             }},
            {"an interval sample replaced", [](json& w) { w["interval_examples"][1]["examples"][0] = w["top_examples"][0]; }},
            {"a logit off by 1e-3", [](json& w) { w["logits"]["positive"][4]["value"] = w["logits"]["positive"][4]["value"].get<double>() + 1e-3; }},
            {"a neighbour replaced", [](json& w) { w["neighbours"][2]["index"] = w["neighbours"][2]["index"].get<long>() + 1; }},
            {"max_activation 0.1% off", [](json& w) { w["max_activation"] = w["max_activation"].get<double>() * 1.001; }},
        };
        {
            Errors clean;
            CompareStats st;
            compareFeature(all["res-L1"][f], want[f], "res-L1", tokens, clean, st);
            QVERIFY2(clean.count == 0, clean.text().c_str());
        }
        for (auto& [name, perturb] : cases) {
            json w = want[f];
            perturb(w);
            Errors errs;
            CompareStats st;
            compareFeature(all["res-L1"][f], w, "res-L1", tokens, errs, st);
            QVERIFY2(errs.count > 0, ("not caught: " + name).c_str());
        }
    }

    // ------------------------------------------------------------------------------------------
    // What a SIGKILL right after the file was made leaves: SQLite's header in WAL mode (4096
    // bytes), a WAL holding no frame, no application id and no table yet. Made here exactly (the
    // kill points below hit this moment only now and then); a re-run must take it as new.
    void resumeAfterKillAtCreation() {
        const std::string db = dir_ + "/created.db";
        const std::string script = "import os, sqlite3; c = sqlite3.connect(" + json(db).dump() +
                                   "); c.execute('PRAGMA journal_mode=WAL').fetchall(); os._exit(0)";
        QCOMPARE(run(python() + " -c " + shellQuote(script)), 0);
        QVERIFY(fs::exists(db) && fs::file_size(db) > 0);
        Proc r = cli(indexArgs(corpus_, db, "--batch 4 --tokens 300"));
        QVERIFY2(r.rc == 0, ("a store killed at creation does not resume: " + describe(r)).c_str());
        QVERIFY(storeTokens(db) > 250);
    }

    void resumeAfterSigkill() {
        // A bigger corpus, small batches: many transactions to land a kill between.
        const std::string corpus = dir_ + "/big.jsonl";
        const auto docs = makeDocuments(70, 77, 40, 200);
        writeFile(corpus, jsonl(docs));
        const std::string full = dir_ + "/full.db", part = dir_ + "/part.db";
        QElapsedTimer timer;
        timer.start();
        Proc r = cli(indexArgs(corpus, full, "--batch 2"));
        QVERIFY2(r.rc == 0, describe(r).c_str());
        const qint64 fullMs = timer.restart();
        const long total = storeTokens(full);
        QVERIFY(total > 6000);

        // Kill points: as soon as the file appears (setup), then at rising progress.
        const std::vector<double> fractions = {0.0, 0.3, 0.6, 0.85};
        int kills = 0;
        long lastSeen = -1;
        for (double frac : fractions) {
            QProcess p;
            p.setProgram(QString::fromUtf8(CS_CLI_PATH));
            p.setArguments(QStringList{"--threads", "2"} + indexArgs(corpus, part, "--batch 2"));
            p.start();
            QVERIFY(p.waitForStarted(30000));
            QElapsedTimer waited;
            waited.start();
            bool killed = false;
            while (!p.waitForFinished(25)) {
                const long t = storeTokens(part);
                const bool due = frac == 0.0 ? fs::exists(part) : t >= frac * total;
                if (due || waited.elapsed() > 60000) {
                    ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
                    p.waitForFinished(30000);
                    killed = true;
                    ++kills;
                    break;
                }
            }
            if (!killed) {
                QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0,
                         p.readAllStandardError().toStdString().c_str());
                break;  // finished before this kill point
            }
            const long t = storeTokens(part);
            qInfo("killed at %ld of %ld tokens", t, total);
            QVERIFY2(t >= lastSeen || t == -1, "a resumed run lost committed progress");
            lastSeen = std::max(lastSeen, t);
        }
        QVERIFY2(kills >= 3, ("only " + std::to_string(kills) + " kills landed before the index finished").c_str());
        r = cli(indexArgs(corpus, part, "--batch 2"));
        QVERIFY2(r.rc == 0, describe(r).c_str());
        qInfo("uninterrupted %lld ms; %d kills and the resumed runs %lld ms", fullMs, kills, timer.elapsed());

        // Identical stores: every table, row for row, and every feature as the user sees it.
        const auto a = dumpStore(full), b = dumpStore(part);
        QCOMPARE(a.size(), b.size());
        for (const auto& [table, rows] : a) {
            QVERIFY2(b.count(table), ("resumed store has no table " + table).c_str());
            const auto& other = b.at(table);
            if (rows == other) continue;
            size_t i = 0;
            while (i < rows.size() && i < other.size() && rows[i] == other[i]) ++i;
            const std::string msg = "table " + table + " differs (" + std::to_string(rows.size()) + " rows vs " +
                                    std::to_string(other.size()) + "): first at row " + std::to_string(i) + ": " +
                                    (i < rows.size() ? rows[i].substr(0, 200) : "-") + " vs " +
                                    (i < other.size() ? other[i].substr(0, 200) : "-");
            QFAIL(msg.c_str());
        }
        // (What `feature` prints is a function of these tables; one call each shows it end to end.)
        QVERIFY(a.at("examples").size() > 1000 && a.at("features").size() > 1000);
        const QStringList feature = {"feature", "--sae", "tc-L2", "--index", "11", "--json"};
        QVERIFY(cliJson(feature + QStringList{"--db", q(part)}) == cliJson(feature + QStringList{"--db", q(full)}));

        // A completed store indexed again with the same arguments is left as it is.
        r = cli(indexArgs(corpus, part, "--batch 2"));
        QVERIFY2(r.rc == 0, describe(r).c_str());
        QVERIFY(dumpStore(part) == a);
    }

    // ------------------------------------------------------------------------------------------
    void concurrentReadWrite() {
        const std::string corpus = dir_ + "/concurrent.jsonl";
        writeFile(corpus, jsonl(makeDocuments(200, 91, 40, 200)));
        const std::string db = dir_ + "/concurrent.db";
        QProcess p;
        p.setProgram(QString::fromUtf8(CS_CLI_PATH));
        p.setArguments(QStringList{"--threads", "1"} + indexArgs(corpus, db, "--batch 1"));
        p.start();
        QVERIFY(p.waitForStarted(30000));

        long reads = 0, readsWhileWriting = 0, labelWrites = 0, cliReads = 0, errorsBeforeData = 0;
        std::string firstEarlyError;
        qint64 slowestWrite = 0;
        std::vector<qint64> latencies;
        bool haveData = false;
        std::vector<std::string> failures;
        Rng rng{5};
        auto attempt = [&](const std::function<void()>& fn, const std::string& what) {
            try {
                fn();
                return true;
            } catch (const std::exception& e) {
                const std::string m = e.what();
                const bool lockish = m.find("locked") != std::string::npos || m.find("busy") != std::string::npos;
                if (haveData || lockish) failures.push_back(what + ": " + m);
                else if (!errorsBeforeData++) firstEarlyError = m;
                return false;
            }
        };
        QElapsedTimer timer;
        timer.start();
        while (p.state() != QProcess::NotRunning && timer.elapsed() < 240000) {
            p.waitForFinished(5);
            if (!fs::exists(db)) continue;
            const bool writing = p.state() != QProcess::NotRunning;
            QElapsedTimer one;
            one.start();
            bool ok = attempt(
                [&] {
                    cs::FeatureStore store(db, cs::FeatureStore::Mode::ReadOnly);
                    const auto saes = store.saes();
                    if (saes.empty()) {
                        if (haveData) throw std::runtime_error("the SAEs disappeared from the store");
                        throw cs::Error("no SAE yet");
                    }
                    haveData = true;
                    const auto& s = saes[rng.next() % saes.size()];
                    const long idx = static_cast<long>(rng.next() % s.dSae);
                    const auto d = store.feature(s.id, idx);
                    if (d.sae != s.id || d.index != idx) throw std::runtime_error("wrong feature read back");
                    const auto rows = store.summaries(s.id);
                    if (static_cast<long>(rows.size()) != s.dSae) throw std::runtime_error("summaries incomplete");
                    store.searchLabels(s.id, "peak", 5);
                },
                "in-process read");
            if (ok) {
                latencies.push_back(one.elapsed());
                ++reads;
                if (writing) ++readsWhileWriting;
            }
            if (haveData && reads % 10 == 3) {
                // What the GUI does when a user edits a label while an index runs.
                QElapsedTimer w;
                w.start();
                if (attempt([&] {
                        cs::FeatureStore store(db, cs::FeatureStore::Mode::ReadWrite);
                        store.setLabel("res-L1", 7, "written during indexing", "concurrent");
                    }, "label write")) {
                    ++labelWrites;
                    slowestWrite = std::max(slowestWrite, w.elapsed());
                }
            }
            if (haveData && (reads == 5 || reads == 60)) {  // a process start each: only a few
                Proc r = cli({"feature", "--db", q(db), "--sae", "tc-L2", "--index", QString::number(rng.next() % 1024), "--json"});
                ++cliReads;
                if (r.rc != 0) failures.push_back("feature --json while indexing: " + describe(r));
                Proc s = cli({"saes", "--db", q(db), "--json"});
                if (s.rc != 0) failures.push_back("saes --json while indexing: " + describe(s));
            }
        }
        QVERIFY2(p.state() == QProcess::NotRunning, "index did not finish within 240 s");
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, p.readAllStandardError().toStdString().c_str());
        std::sort(latencies.begin(), latencies.end());
        qInfo("%ld reads (%ld while indexing; median %lld ms, slowest %lld ms), %ld label writes, %ld CLI reads, "
              "%ld errors before the first commit (first: %s), %lld ms",
              reads, readsWhileWriting, latencies.empty() ? 0LL : latencies[latencies.size() / 2],
              latencies.empty() ? 0LL : latencies.back(), labelWrites, cliReads, errorsBeforeData,
              firstEarlyError.c_str(), timer.elapsed());
        qInfo("slowest label write while indexing: %lld ms", slowestWrite);
        std::string all;
        for (const auto& f : failures) all += "\n  " + f;
        QVERIFY2(failures.empty(), all.c_str());
        QVERIFY2(readsWhileWriting >= 10, ("only " + std::to_string(readsWhileWriting) + " reads overlapped the indexer").c_str());
        QVERIFY(labelWrites >= 2 && cliReads >= 1);
        // The label written during indexing survived it.
        const json f = cliJson({"feature", "--db", q(db), "--sae", "res-L1", "--index", "7", "--json"});
        QCOMPARE(f["label"].get<std::string>(), std::string("written during indexing"));
    }

    // ------------------------------------------------------------------------------------------
    void badInputs() {
        const std::string bad = makeTempDir("store-bad");
        auto expectRefused = [&](const QStringList& args, const std::vector<std::string>& mustContain,
                                 const std::string& db) {
            Proc r = cli(args);
            const std::string what = args.join(' ').toStdString();
            QVERIFY2(r.rc != 0, ("exit 0 for bad input: " + what).c_str());
            // Progress lines may come first; the error is one line of its own, which says it all.
            std::vector<std::string> errorLines;
            for (const QString& line : q(r.err).split('\n', Qt::SkipEmptyParts))
                if (line.contains("error")) errorLines.push_back(line.toStdString());
            QVERIFY2(errorLines.size() == 1, ("not one error line: " + r.err).c_str());
            for (const auto& m : mustContain)
                QVERIFY2(errorLines[0].find(m) != std::string::npos,
                         ("'" + errorLines[0] + "' does not mention '" + m + "'").c_str());
            QVERIFY2(r.err.find("terminate called") == std::string::npos, r.err.c_str());
            if (!db.empty()) {
                QVERIFY2(!fs::exists(db), ("a refused index left " + db + " behind").c_str());
                QVERIFY(!fs::exists(db + "-wal") && !fs::exists(db + "-journal"));
            }
        };
        const std::string good = "{\"tokens\": [1, 5, 6, 7, 8]}\n";
        // Not UTF-8 (line 3 of a .txt), an empty text document, ids out of range, malformed JSON.
        writeFile(bad + "/latin1.txt", "Once upon a time.\n\nThere was a caf\xE9.\nThe end.\n");
        expectRefused(indexArgs(bad + "/latin1.txt", bad + "/a.db"), {"latin1.txt", "3", "UTF-8"}, bad + "/a.db");
        writeFile(bad + "/empty.jsonl", good + "{\"text\": \"\"}\n" + good);
        expectRefused(indexArgs(bad + "/empty.jsonl", bad + "/b.db"), {"empty.jsonl", "2", "empty"}, bad + "/b.db");
        writeFile(bad + "/range.jsonl", good + good + "{\"tokens\": [1, 5, 2048, 7]}\n");
        expectRefused(indexArgs(bad + "/range.jsonl", bad + "/c.db"), {"range.jsonl", "3", "2048"}, bad + "/c.db");
        writeFile(bad + "/negative.jsonl", "{\"tokens\": [1, -4, 7]}\n");
        expectRefused(indexArgs(bad + "/negative.jsonl", bad + "/c2.db"), {"negative.jsonl", "1", "-4"}, bad + "/c2.db");
        writeFile(bad + "/broken.jsonl", good + good + good + "{\"tokens\": [1, 5, 6\n" + good);
        expectRefused(indexArgs(bad + "/broken.jsonl", bad + "/d.db"), {"broken.jsonl", "4"}, bad + "/d.db");
        writeFile(bad + "/nofield.jsonl", good + "{\"words\": [1, 2]}\n");
        expectRefused(indexArgs(bad + "/nofield.jsonl", bad + "/d2.db"), {"nofield.jsonl", "2"}, bad + "/d2.db");

        // An SAE whose d_in does not match its hook (64 for the demo's 128-wide residual stream).
        const std::string wrong = bad + "/wrong-d-in";
        writeFile(bad + "/ok.jsonl", good + good);
        if (havePythonTorch()) {
            const std::string script = "import sys; sys.path.insert(0, " + json(sourceDir() + "/tests/reference").dump() +
                                       "); import ref_sae; ref_sae.write_saelens_v6(" + json(wrong).dump() +
                                       ", 'topk', 'blocks.1.hook_resid_post', 64, 32, ref_sae.Draw(0), k=4)";
            QCOMPARE(run(python() + " -c " + shellQuote(script) + " 2>&1"), 0);
            expectRefused({"index", "--model", "demo", "--sae", q(wrong), "--corpus", q(bad + "/ok.jsonl"), "--db",
                           q(bad + "/e.db")},
                          {"wrong-d-in", "blocks.1.hook_resid_post", "64", "128"}, bad + "/e.db");
        } else {
            qWarning("python3 with torch is missing: the wrong-d_in SAE case is not run");
        }

        // Another program's SQLite file: refused by every command, its bytes untouched.
        const std::string foreign = bad + "/foreign.sqlite";
        QCOMPARE(run(python() + " -c " +
                     shellQuote("import sqlite3; c = sqlite3.connect(" + json(foreign).dump() +
                                "); c.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)'); "
                                "c.execute(\"INSERT INTO notes (body) VALUES ('keep me')\"); c.commit(); c.close()")),
                 0);
        const std::string before = readFile(foreign);
        QVERIFY(!before.empty());
        for (const QStringList& args : {indexArgs(bad + "/ok.jsonl", foreign), QStringList{"saes", "--db", q(foreign), "--json"},
                                        QStringList{"label", "--db", q(foreign), "--index", "0", "--text", "x"}}) {
            expectRefused(args, {"foreign.sqlite", "not a Circuitscope"}, "");
            QVERIFY2(readFile(foreign) == before, ("the foreign file changed: " + args.join(' ').toStdString()).c_str());
            QVERIFY(!fs::exists(foreign + "-wal") && !fs::exists(foreign + "-shm"));
        }
        expectRefused({"saes", "--db", q(bad + "/missing.db"), "--json"}, {"missing.db"}, bad + "/missing.db");

        // Reading the reference store with a wrong index or SAE.
        requireIndexed();
        expectRefused({"feature", "--db", q(db_), "--sae", "res-L1", "--index", "1024", "--json"}, {"1024", "range"}, "");
        expectRefused({"feature", "--db", q(db_), "--sae", "nope", "--index", "0", "--json"}, {"nope", "res-L1", "tc-L2"}, "");
        expectRefused({"feature", "--db", q(db_), "--index", "0", "--json"}, {"--sae", "res-L1", "tc-L2"}, "");
        expectRefused({"search", "--db", q(db_), "--sae", "nope", "--label", "x", "--json"}, {"nope"}, "");
        // Indexing into the reference store with other arguments is refused, not mixed.
        const std::string dumpBefore = json(dumpStore(db_)).dump();
        expectRefused(indexArgs(corpus_, db_, "--batch 4 --tokens 1000"), {"ref.db", "tokens"}, "");
        QVERIFY(json(dumpStore(db_)).dump() == dumpBefore);
    }

    // ------------------------------------------------------------------------------------------
    void labelSearchAndToken() {
        requireIndexed();
        Proc r = cli({"label", "--db", q(db_), "--sae", "res-L1", "--index", "3", "--text", "dragons", "--notes", "n"});
        QVERIFY2(r.rc == 0, describe(r).c_str());
        json f = cliJson({"feature", "--db", q(db_), "--sae", "res-L1", "--index", "3", "--json"});
        QCOMPARE(f["label"].get<std::string>(), std::string("dragons"));
        {
            cs::FeatureStore store(db_, cs::FeatureStore::Mode::ReadOnly);
            const auto d = store.feature("res-L1", 3);
            QCOMPARE(d.notes, std::string("n"));
            QVERIFY(!d.labelIsAuto);
            QVERIFY(!d.autoLabel.empty());
        }
        // The same label text on the other SAE's feature 3 must not be confused with it.
        json hits = cliJson({"search", "--db", q(db_), "--label", "dragons", "--json"});
        QCOMPARE(hits.size(), size_t(1));
        QCOMPARE(hits[0]["sae"].get<std::string>(), std::string("res-L1"));
        QCOMPARE(hits[0]["index"].get<long>(), 3L);
        QCOMPARE(hits[0]["label"].get<std::string>(), std::string("dragons"));
        hits = cliJson({"search", "--db", q(db_), "--sae", "tc-L2", "--label", "dragons", "--json"});
        QVERIFY(hits.empty());
        // A second label replaces the first; the old one is no longer found.
        QCOMPARE(cli({"label", "--db", q(db_), "--sae", "res-L1", "--index", "3", "--text", "wyverns"}).rc, 0);
        QVERIFY(cliJson({"search", "--db", q(db_), "--label", "dragons", "--json"}).empty());
        QCOMPARE(cliJson({"search", "--db", q(db_), "--label", "wyverns", "--json"}).size(), size_t(1));

        // --token: features whose top examples peak on that token, most such examples first.
        if (ref_.is_null()) return;
        const json& want = ref_["features"]["tc-L2"];
        std::map<long, long> peaks;  // token -> top examples of non-fuzzy features peaking on it
        for (const auto& feat : want)
            for (size_t i = 0; i < feat["top_examples"].size() && i < 20; ++i) {
                const auto& e = feat["top_examples"][i];
                peaks[e["tokens"][e["peak"].get<size_t>()].get<long>()]++;
            }
        long token = -1, most = 0;
        for (auto [t, n] : peaks)
            if (n > most) token = t, most = n;
        QVERIFY(token >= 0);
        std::map<long, long> expected;  // feature -> count, for features with examples that are not fuzzy
        bool anyFuzzy = false;
        for (const auto& feat : want) {
            long n = 0;
            for (size_t i = 0; i < feat["top_examples"].size() && i < 20; ++i) {
                const auto& e = feat["top_examples"][i];
                if (e["tokens"][e["peak"].get<size_t>()].get<long>() == token) ++n;
            }
            if (n > 0) {
                expected[feat["index"].get<long>()] = n;
                anyFuzzy |= feat["fuzzy"].get<bool>();
            }
        }
        // The piece the store spells that token with, from an example that shows it.
        std::string piece;
        const json any = cliJson({"feature", "--db", q(db_), "--sae", "tc-L2", "--index",
                                  QString::number(expected.begin()->first), "--json"});
        for (const auto& e : any["top_examples"])
            for (size_t i = 0; i < e["tokens"].size(); ++i)
                if (e["tokens"][i].get<long>() == token) piece = e["pieces"][i].get<std::string>();
        QVERIFY(!piece.empty());
        hits = cliJson({"search", "--db", q(db_), "--sae", "tc-L2", "--token", q(piece), "--top", "1000", "--json"});
        std::map<long, long> got;
        for (const auto& h : hits) {
            QCOMPARE(h["sae"].get<std::string>(), std::string("tc-L2"));
            got[h["index"].get<long>()] = std::lround(h["score"].get<double>());
        }
        if (!anyFuzzy) QVERIFY2(got == expected, (json(got).dump() + " vs reference " + json(expected).dump()).c_str());
        for (size_t i = 1; i < hits.size(); ++i) QVERIFY(hits[i]["score"].get<double>() <= hits[i - 1]["score"].get<double>());

        // --prompt and --contrast run the model live: shape and order.
        hits = cliJson({"search", "--db", q(db_), "--sae", "res-L1", "--prompt", "Once upon a time there was a cat", "--top", "5", "--json"});
        QCOMPARE(hits.size(), size_t(5));
        for (size_t i = 1; i < hits.size(); ++i) QVERIFY(hits[i]["score"].get<double>() <= hits[i - 1]["score"].get<double>());
        const std::string a = dir_ + "/a.txt", b = dir_ + "/b.txt";
        writeFile(a, "The cat sat on the mat.\nThe dog ran in the park.\n");
        writeFile(b, "Tom was sad.\nLily cried all day.\n");
        hits = cliJson({"search", "--db", q(db_), "--sae", "res-L1", "--contrast", q(a), q(b), "--top", "4", "--json"});
        QCOMPARE(hits.size(), size_t(4));
        for (const auto& h : hits)
            QVERIFY(close(h["score"].get<double>(), h["mean_a"].get<double>() - h["mean_b"].get<double>(), 1e-6, 1e-6));
    }
};

QTEST_MAIN(TestStore)
#include "test_store.moc"
