#include "store/AutoLabel.h"

#include "store/Sqlite.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace cs {

namespace {

std::string trimmed(const std::string& s) {
    const auto a = s.find_first_not_of(" \t\n");
    if (a == std::string::npos) return s.empty() ? s : "\u2423";  // whitespace-only tokens shown as a visible space
    const auto b = s.find_last_not_of(" \t\n");
    return s.substr(a, b - a + 1);
}

std::string joinFirst(const std::vector<std::string>& v, size_t n) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < n; ++i) out += (i ? ", " : "") + v[i];
    return out;
}

}  // namespace

std::string autoLabel(const std::vector<std::string>& peakTokens, const std::vector<std::string>& promoted) {
    // Most frequent peak tokens, ties to the one seen first (in a better example).
    std::vector<std::pair<std::string, int>> counts;
    for (const auto& t : peakTokens) {
        const std::string s = trimmed(t);
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == s; });
        if (it == counts.end()) counts.emplace_back(s, 1);
        else ++it->second;
    }
    std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::string> peaks, logits;
    for (const auto& c : counts) peaks.push_back(c.first);
    for (const auto& p : promoted) logits.push_back(trimmed(p));
    std::string label;
    if (!peaks.empty()) label = "peak: " + joinFirst(peaks, 3);
    if (!logits.empty()) label += (label.empty() ? "" : " | ") + std::string("logits: ") + joinFirst(logits, 3);
    return label;
}

void writeAutoLabels(sqlite3* db, const std::vector<std::string>& saeIds) {
    std::map<int, std::string> vocab;
    {
        sql::Stmt s(db, "SELECT id, text FROM vocab");
        while (s.step()) vocab[static_cast<int>(s.integer(0))] = s.text(1);
    }
    auto text = [&](int id) { return vocab.count(id) ? vocab[id] : "#" + std::to_string(id); };
    sql::Transaction t(db);
    sql::Stmt clearLabels(db, "DELETE FROM auto_labels WHERE sae = ?");
    sql::Stmt clearSearch(db, "DELETE FROM label_search WHERE sae = ? AND source = 'auto'");
    sql::Stmt ins(db, "INSERT INTO auto_labels (sae, idx, label) VALUES (?, ?, ?)");
    sql::Stmt fts(db, "INSERT INTO label_search (text, sae, idx, source) VALUES (?, ?, ?, 'auto')");
    for (const auto& id : saeIds) {
        clearLabels.bind(1, id).run();
        clearSearch.bind(1, id).run();
        std::map<long, std::vector<std::string>> peaks, promoted;
        {
            sql::Stmt s(db, "SELECT idx, peak_token FROM examples WHERE sae = ? AND kind = 0 ORDER BY idx, max DESC, window");
            s.bind(1, id);
            while (s.step()) peaks[s.integer(0)].push_back(text(static_cast<int>(s.integer(1))));
        }
        {
            sql::Stmt s(db, "SELECT idx, logits FROM weight_facts WHERE sae = ?");
            s.bind(1, id);
            while (s.step()) {
                const auto j = nlohmann::json::parse(s.text(1));
                auto& v = promoted[s.integer(0)];
                for (const auto& e : j.value("positive", nlohmann::json::array())) {
                    v.push_back(text(e[0].get<int>()));
                    if (v.size() == 3) break;
                }
            }
        }
        std::map<long, char> all;
        for (const auto& [f, _] : peaks) all[f] = 1;
        for (const auto& [f, _] : promoted) all[f] = 1;
        for (const auto& [f, _] : all) {
            const std::string label = autoLabel(peaks[f], promoted[f]);
            if (label.empty()) continue;
            ins.bind(1, id).bind(2, f).bind(3, label).run();
            fts.bind(1, label).bind(2, id).bind(3, f).run();
        }
    }
    t.commit();
}

}  // namespace cs
