#include "store/FeatureStore.h"

#include "store/FeatureStats.h"
#include "store/Sqlite.h"
#include "store/StoreSchema.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace cs {

namespace {

// weight_facts holds its lists as JSON text, [[id, value], ...] (unparsable text arrives here as
// a discarded value). A foreign or corrupt file can hold anything there, so each entry is checked
// before it is indexed.
std::vector<std::pair<long, float>> idValueList(const nlohmann::json& j, const std::string& file,
                                                const std::string& what) {
    if (!j.is_array()) failIn(file, what + " is not a JSON list (corrupt store?)");
    std::vector<std::pair<long, float>> out;
    for (const auto& e : j) {
        if (!e.is_array() || e.size() < 2 || !e[0].is_number_integer() || !e[1].is_number())
            failIn(file, what + " holds an entry that is not [id, value] (corrupt store?)");
        out.push_back({e[0].get<long>(), e[1].get<float>()});
    }
    return out;
}

struct ExampleRow {
    Candidate c;
    long peak = 0;
    long spanStart = 0;
    std::vector<float> activations;
};

// FTS5 query from what a user typed: every word must occur, as a prefix, so "drag" finds
// "dragons" and no FTS operator in the text can break the query.
std::string ftsQuery(const std::string& text) {
    std::string q, word;
    auto flush = [&] {
        if (word.empty()) return;
        std::string quoted;
        for (char ch : word) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        if (!q.empty()) q += " ";
        q += "\"" + quoted + "\"*";
        word.clear();
    };
    for (char ch : text) {
        if (std::isspace(static_cast<unsigned char>(ch))) flush();
        else word += ch;
    }
    flush();
    return q;
}

}  // namespace

FeatureStore::FeatureStore(const std::string& path, Mode mode) : path_(path) {
    const bool writable = mode != Mode::ReadOnly;
    if (mode == Mode::ReadOnly && !std::filesystem::exists(path)) failIn(path, "no such feature store");
    db_ = sql::open(path, !writable, mode == Mode::Create);
    try {
        prepareStoreSchema(db_, writable);
        if (writable) sql::exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536");
    } catch (...) {
        sql::close(db_);
        db_ = nullptr;
        throw;
    }
}

FeatureStore::~FeatureStore() { sql::close(db_); }

bool FeatureStore::isBlank(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0) return true;
    sqlite3* db = sql::open(path, true, false);
    bool blank = false;
    try {
        sql::Stmt app(db, "PRAGMA application_id");
        sql::Stmt tables(db, "SELECT count(*) FROM sqlite_master");
        blank = app.step() && app.integer(0) == 0 && tables.step() && tables.integer(0) == 0;
    } catch (...) {
        blank = false;  // not SQLite at all: let the real open say so
    }
    sql::close(db);
    return blank;
}

std::string FeatureStore::meta(const std::string& key) const {
    sql::Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
    s.bind(1, key);
    return s.step() ? s.text(0) : std::string();
}

void FeatureStore::setMeta(const std::string& key, const std::string& value) {
    sql::Stmt s(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    s.bind(1, key).bind(2, value).run();
}

std::vector<StoredSae> FeatureStore::saes() const {
    std::vector<StoredSae> out;
    sql::Stmt s(db_, "SELECT id, path, hook, hook_out, architecture, d_sae, d_in, tokens, ordinal FROM saes ORDER BY ordinal");
    while (s.step()) {
        StoredSae e;
        e.id = s.text(0);
        e.path = s.text(1);
        e.hook = s.text(2);
        e.hookOut = s.text(3);
        e.architecture = s.text(4);
        e.dSae = s.integer(5);
        e.dIn = s.integer(6);
        e.tokens = s.integer(7);
        e.ordinal = static_cast<int>(s.integer(8));
        out.push_back(e);
    }
    return out;
}

StoredSae FeatureStore::sae(const std::string& id) const {
    const auto all = saes();
    if (all.empty()) failIn(path_, "the feature store holds no SAE yet (indexing has not committed its first batch)");
    std::string ids;
    for (const auto& e : all) ids += (ids.empty() ? "" : ", ") + e.id;
    if (id.empty()) {
        if (all.size() == 1) return all[0];
        failIn(path_, "the store holds several SAEs; choose one with --sae ID (" + ids + ")");
    }
    for (const auto& e : all)
        if (e.id == id) return e;
    failIn(path_, "no SAE '" + id + "' in the store (it has: " + ids + ")");
}

std::string FeatureStore::label(const std::string& saeId, long index, bool* isAuto) const {
    {
        sql::Stmt s(db_, "SELECT label FROM labels WHERE sae = ? AND idx = ?");
        s.bind(1, saeId).bind(2, index);
        if (s.step() && !s.text(0).empty()) {
            if (isAuto) *isAuto = false;
            return s.text(0);
        }
    }
    sql::Stmt s(db_, "SELECT label FROM auto_labels WHERE sae = ? AND idx = ?");
    s.bind(1, saeId).bind(2, index);
    if (isAuto) *isAuto = true;
    return s.step() ? s.text(0) : std::string();
}

std::vector<FeatureSummary> FeatureStore::summaries(const std::string& saeId) const {
    const StoredSae info = sae(saeId);
    std::vector<FeatureSummary> out(info.dSae);
    for (long i = 0; i < info.dSae; ++i) out[i].index = i;
    {
        sql::Stmt s(db_, "SELECT idx, max_act, firings FROM features WHERE sae = ?");
        s.bind(1, info.id);
        while (s.step()) {
            const long i = s.integer(0);
            if (i < 0 || i >= info.dSae) continue;
            out[i].maxActivation = static_cast<float>(s.real(1));
            out[i].density = info.tokens > 0 ? static_cast<double>(s.integer(2)) / info.tokens : 0.0;
        }
    }
    {
        sql::Stmt s(db_, "SELECT idx, label FROM auto_labels WHERE sae = ?");
        s.bind(1, info.id);
        while (s.step()) {
            const long i = s.integer(0);
            if (i >= 0 && i < info.dSae) out[i].label = s.text(1);
        }
    }
    {
        sql::Stmt s(db_, "SELECT idx, label FROM labels WHERE sae = ? AND label != ''");
        s.bind(1, info.id);
        while (s.step()) {
            const long i = s.integer(0);
            if (i < 0 || i >= info.dSae) continue;
            out[i].label = s.text(1);
            out[i].labelIsAuto = false;
        }
    }
    return out;
}

FeatureDetail FeatureStore::feature(const std::string& saeId, long index) const {
    const StoredSae info = sae(saeId);
    if (index < 0 || index >= info.dSae)
        failIn(path_, "feature " + std::to_string(index) + " is out of range: SAE '" + info.id + "' has " +
                          std::to_string(info.dSae) + " features (0.." + std::to_string(info.dSae - 1) + ")");
    FeatureDetail d;
    d.sae = info.id;
    d.index = index;
    double scale = 0;
    {
        sql::Stmt s(db_, "SELECT max_act, firings, scale, histogram FROM features WHERE sae = ? AND idx = ?");
        s.bind(1, info.id).bind(2, index);
        if (s.step()) {
            d.maxActivation = static_cast<float>(s.real(0));
            d.firings = s.integer(1);
            scale = s.real(2);
            auto counts = s.vector<int64_t>(3);
            if (scale > 0 && static_cast<int>(counts.size()) == kHistogramBins) {
                for (int i = 0; i <= kHistogramBins; ++i) d.histogram.edges.push_back(scale * i / kHistogramBins);
                d.histogram.counts.assign(counts.begin(), counts.end());
            }
        }
    }
    d.density = info.tokens > 0 ? static_cast<double>(d.firings) / info.tokens : 0.0;

    // Examples with their windows.
    std::vector<ExampleRow> top, samples;
    std::map<long, std::pair<long, long>> windowPlace;  // window -> (document, start)
    std::map<long, std::vector<int32_t>> windowTokens;
    {
        sql::Stmt s(db_,
                    "SELECT e.kind, e.window, e.max, e.peak, e.priority, e.span_start, e.activations, w.document, "
                    "w.start, w.tokens FROM examples e JOIN windows w ON w.id = e.window "
                    "WHERE e.sae = ? AND e.idx = ?");
        s.bind(1, info.id).bind(2, index);
        while (s.step()) {
            ExampleRow r;
            r.c.window = s.integer(1);
            r.c.max = static_cast<float>(s.real(2));
            r.peak = s.integer(3);
            r.c.priority = static_cast<uint64_t>(s.integer(4));
            r.spanStart = s.integer(5);
            r.activations = s.vector<float>(6);
            // Places are added and subtracted below; a corrupt row must not overflow them.
            constexpr long kMaxPlace = 1L << 40;
            for (long v : {r.peak, r.spanStart, s.integer(7), s.integer(8)})
                if (v < 0 || v > kMaxPlace)
                    failIn(path_, "an example of feature " + std::to_string(index) +
                                      " has an invalid position " + std::to_string(v) + " (corrupt store?)");
            windowPlace[r.c.window] = {s.integer(7), s.integer(8)};
            if (!windowTokens.count(r.c.window)) windowTokens[r.c.window] = s.vector<int32_t>(9);
            (s.integer(0) == 0 ? top : samples).push_back(std::move(r));
        }
    }
    auto toExample = [&](const ExampleRow& r) {
        FeatureExample e;
        e.document = windowPlace[r.c.window].first;
        e.start = windowPlace[r.c.window].second + r.spanStart;
        const auto& toks = windowTokens[r.c.window];
        for (size_t i = 0; i < r.activations.size(); ++i) {
            const size_t p = static_cast<size_t>(r.spanStart) + i;
            const int id = p < toks.size() ? toks[p] : -1;
            e.tokens.push_back(id);
            e.pieces.push_back(piece(id));
        }
        e.activations = r.activations;
        e.max = r.c.max;
        e.maxOffset = static_cast<int>(r.peak - r.spanStart);
        return e;
    };
    // While indexing runs the table may hold candidates that lost their place since; the
    // selection rules pick the same survivors as the indexer keeps (FeatureStats.h).
    std::sort(top.begin(), top.end(), [](const ExampleRow& a, const ExampleRow& b) { return betterTop(a.c, b.c); });
    if (static_cast<int>(top.size()) > kTopExamples) top.resize(kTopExamples);
    for (const auto& r : top) d.topExamples.push_back(toExample(r));
    std::vector<Candidate> cands;
    std::map<long, const ExampleRow*> byWindow;
    for (const auto& r : samples) {
        cands.push_back(r.c);
        byWindow[r.c.window] = &r;
    }
    for (const auto& iv : shownIntervals(scale, d.maxActivation, cands)) {
        ActivationInterval a;
        a.low = iv.low;
        a.high = iv.high;
        for (const auto& c : iv.samples) a.examples.push_back(toExample(*byWindow[c.window]));
        d.intervals.push_back(std::move(a));
    }

    logits(info.id, index, &d.positiveLogits, &d.negativeLogits);
    {
        sql::Stmt s(db_, "SELECT neighbours FROM weight_facts WHERE sae = ? AND idx = ?");
        s.bind(1, info.id).bind(2, index);
        if (s.step())
            for (const auto& [i, v] : idValueList(nlohmann::json::parse(s.text(0), nullptr, false), path_,
                                                    "neighbours of feature " + std::to_string(index)))
                d.neighbours.push_back({i, v});
    }
    {
        sql::Stmt s(db_, "SELECT label FROM auto_labels WHERE sae = ? AND idx = ?");
        s.bind(1, info.id).bind(2, index);
        if (s.step()) d.autoLabel = s.text(0);
    }
    d.label = d.autoLabel;
    {
        sql::Stmt s(db_, "SELECT label, notes FROM labels WHERE sae = ? AND idx = ?");
        s.bind(1, info.id).bind(2, index);
        if (s.step()) {
            d.notes = s.text(1);
            if (!s.text(0).empty()) {
                d.label = s.text(0);
                d.labelIsAuto = false;
            }
        }
    }
    return d;
}

void FeatureStore::logits(const std::string& saeId, long index, std::vector<LogitEffect>* positive,
                          std::vector<LogitEffect>* negative) const {
    positive->clear();
    negative->clear();
    sql::Stmt s(db_, "SELECT logits FROM weight_facts WHERE sae = ? AND idx = ?");
    s.bind(1, saeId).bind(2, index);
    if (!s.step()) return;
    const auto j = nlohmann::json::parse(s.text(0), nullptr, false);
    if (!j.is_object()) failIn(path_, "logit effects of feature " + std::to_string(index) + " are not a JSON object (corrupt store?)");
    for (const char* side : {"positive", "negative"}) {
        auto* dst = std::string(side) == "positive" ? positive : negative;
        for (const auto& [id, v] : idValueList(j.value(side, nlohmann::json::array()), path_,
                                               std::string(side) + " logits of feature " + std::to_string(index)))
            dst->push_back({static_cast<int>(id), piece(static_cast<int>(id)), v});
    }
}

void FeatureStore::setLabel(const std::string& saeId, long index, const std::string& label, const std::string& notes) {
    const StoredSae info = sae(saeId);
    if (index < 0 || index >= info.dSae)
        failIn(path_, "feature " + std::to_string(index) + " is out of range: SAE '" + info.id + "' has " +
                          std::to_string(info.dSae) + " features");
    sql::Transaction t(db_);
    {
        sql::Stmt del(db_, "DELETE FROM label_search WHERE sae = ? AND idx = ? AND source = 'user'");
        del.bind(1, info.id).bind(2, index).run();
    }
    if (label.empty() && notes.empty()) {
        sql::Stmt s(db_, "DELETE FROM labels WHERE sae = ? AND idx = ?");
        s.bind(1, info.id).bind(2, index).run();
    } else {
        sql::Stmt s(db_, "INSERT OR REPLACE INTO labels (sae, idx, label, notes) VALUES (?, ?, ?, ?)");
        s.bind(1, info.id).bind(2, index).bind(3, label).bind(4, notes).run();
        sql::Stmt f(db_, "INSERT INTO label_search (text, sae, idx, source) VALUES (?, ?, ?, 'user')");
        f.bind(1, label + " " + notes).bind(2, info.id).bind(3, index).run();
    }
    t.commit();
}

std::vector<FeatureHit> FeatureStore::searchLabels(const std::string& saeId, const std::string& text, int top) const {
    std::vector<FeatureHit> hits;
    const std::string q = ftsQuery(text);
    if (q.empty()) return hits;
    const std::string sae = saeId.empty() ? "" : this->sae(saeId).id;
    sql::Stmt s(db_, "SELECT sae, idx, bm25(label_search) FROM label_search WHERE label_search MATCH ? "
                     "AND (? = '' OR sae = ?) ORDER BY bm25(label_search)");
    s.bind(1, q).bind(2, sae).bind(3, sae);
    std::set<std::pair<std::string, long>> seen;
    while (s.step() && static_cast<int>(hits.size()) < top) {
        FeatureHit h;
        h.sae = s.text(0);
        h.index = s.integer(1);
        if (!seen.insert({h.sae, h.index}).second) continue;
        h.score = -s.real(2);  // bm25: lower is better
        h.label = label(h.sae, h.index, &h.labelIsAuto);
        hits.push_back(h);
    }
    return hits;
}

std::vector<FeatureHit> FeatureStore::searchToken(const std::string& saeId, int tokenId, int top) const {
    std::vector<FeatureHit> hits;
    std::vector<std::string> ids;
    if (saeId.empty())
        for (const auto& e : saes()) ids.push_back(e.id);
    else
        ids.push_back(sae(saeId).id);
    sql::Stmt s(db_, "SELECT idx, count(*), max(max) FROM examples WHERE sae = ? AND kind = 0 AND peak_token = ? "
                     "GROUP BY idx");
    for (const auto& id : ids) {
        s.bind(1, id).bind(2, tokenId);
        while (s.step()) {
            FeatureHit h;
            h.sae = id;
            h.index = s.integer(0);
            h.score = static_cast<double>(s.integer(1));
            h.a = s.real(2);
            hits.push_back(h);
        }
        s.reset();
    }
    std::sort(hits.begin(), hits.end(), [](const FeatureHit& a, const FeatureHit& b) {
        return a.score != b.score ? a.score > b.score : a.a > b.a;
    });
    if (static_cast<int>(hits.size()) > top) hits.resize(top);
    for (auto& h : hits) h.label = label(h.sae, h.index, &h.labelIsAuto);
    return hits;
}

std::string FeatureStore::piece(int tokenId) const {
    if (vocab_.empty()) {
        sql::Stmt s(db_, "SELECT id, text FROM vocab ORDER BY id");
        while (s.step()) {
            const auto id = static_cast<size_t>(s.integer(0));
            if (id >= vocab_.size()) vocab_.resize(id + 1);
            vocab_[id] = s.text(1);
        }
    }
    if (tokenId >= 0 && static_cast<size_t>(tokenId) < vocab_.size()) return vocab_[tokenId];
    return "#" + std::to_string(tokenId);
}

int FeatureStore::tokenIdFor(const std::string& text) const {
    if (text.size() > 1 && text[0] == '#' && std::all_of(text.begin() + 1, text.end(), ::isdigit))
        return std::stoi(text.substr(1));
    for (const std::string& t : {text, " " + text}) {
        sql::Stmt s(db_, "SELECT id FROM vocab WHERE text = ? ORDER BY id LIMIT 1");
        s.bind(1, t);
        if (s.step()) return static_cast<int>(s.integer(0));
    }
    return -1;
}

}  // namespace cs
