#include "attribution/SupernodeSuggestions.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_set>
#include <utility>

namespace cs {
namespace {

// A sparse profile: (key, value) sorted by key; key = (0 input | 1 output) << 32 | other node.
using Profile = std::vector<std::pair<uint64_t, double>>;

uint64_t key(int half, int other) { return (static_cast<uint64_t>(half) << 32) | static_cast<uint32_t>(other); }

// Profiles of `nodes` from one pass over the links.
std::vector<Profile> profilesOf(const AttributionGraph& g, const std::vector<int>& nodes) {
    std::vector<int> slot(g.nodes.size(), -1);
    for (size_t i = 0; i < nodes.size(); ++i) slot[static_cast<size_t>(nodes[i])] = static_cast<int>(i);
    std::vector<Profile> p(nodes.size());
    const auto n = static_cast<int32_t>(g.nodes.size());
    for (const GraphLink& l : g.links) {
        if (l.source < 0 || l.source >= n || l.target < 0 || l.target >= n || l.weight == 0) continue;
        if (const int s = slot[static_cast<size_t>(l.source)]; s >= 0) p[static_cast<size_t>(s)].push_back({key(1, l.target), l.weight});
        if (const int t = slot[static_cast<size_t>(l.target)]; t >= 0) p[static_cast<size_t>(t)].push_back({key(0, l.source), l.weight});
    }
    for (Profile& prof : p) {
        std::sort(prof.begin(), prof.end());
        // A graph file may repeat a link; its weights add up as the effects do.
        Profile merged;
        for (const auto& kv : prof) {
            if (!merged.empty() && merged.back().first == kv.first) merged.back().second += kv.second;
            else merged.push_back(kv);
        }
        // Inputs and outputs to unit length each, then both halves to 1/sqrt(2) when both exist,
        // so a feature with many weak inputs is not judged by its inputs alone.
        double norm[2] = {0, 0};
        for (const auto& [k, v] : merged) norm[k >> 32] += v * v;
        const int halves = (norm[0] > 0) + (norm[1] > 0);
        for (auto& [k, v] : merged) v /= std::sqrt(norm[k >> 32] * halves);
        prof = std::move(merged);
    }
    return p;
}

double dot(const Profile& a, const Profile& b) {
    double s = 0;
    for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
        if (a[i].first < b[j].first) ++i;
        else if (b[j].first < a[i].first) ++j;
        else s += a[i++].second * b[j++].second;
    }
    return s;
}

// Letters and digits: ASCII ones, and beyond ASCII anything from U+00C0 on that is not
// punctuation, a symbol block or U+FFFD (which byte-level tokens' labels are full of).
bool isWordChar(char32_t c) {
    if (c < 0x80) return std::isalnum(static_cast<int>(c)) != 0;
    if (c < 0xC0 || c == 0xD7 || c == 0xF7 || c == 0xFFFD) return false;
    return !(c >= 0x2000 && c < 0x2C00) && !(c >= 0x3000 && c < 0x3040) && !(c >= 0xFE00 && c < 0xFE70);
}

std::vector<std::string> wordsOf(const std::string& label) {
    std::vector<std::string> words;
    std::string w;
    size_t chars = 0;
    auto flush = [&] {
        if (chars >= 3 && w != "peak" && w != "logits") words.push_back(w);
        w.clear();
        chars = 0;
    };
    for (size_t i = 0; i < label.size();) {
        const auto b = static_cast<unsigned char>(label[i]);
        const size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
        char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
        bool valid = len > 0 && i + len <= label.size();
        for (size_t k = 1; valid && k < len; ++k) {
            const auto cont = static_cast<unsigned char>(label[i + k]);
            valid = (cont >> 6) == 0x2;
            c = (c << 6) | (cont & 0x3F);
        }
        if (!valid) {  // a stray byte separates words
            flush();
            ++i;
            continue;
        }
        if (isWordChar(c)) {
            w += len == 1 ? std::string(1, static_cast<char>(std::tolower(b))) : label.substr(i, len);
            ++chars;
        } else {
            flush();
        }
        i += len;
    }
    flush();
    return words;
}

// Most influential first: raw influence descending, then graph order.
void byInfluence(const AttributionGraph& g, std::vector<int>& nodes) {
    std::stable_sort(nodes.begin(), nodes.end(), [&](int a, int b) {
        return g.nodes[static_cast<size_t>(a)].influenceScore > g.nodes[static_cast<size_t>(b)].influenceScore;
    });
}

}  // namespace

double edgeProfileSimilarity(const AttributionGraph& g, int a, int b) {
    const int n = static_cast<int>(g.nodes.size());
    if (a < 0 || a >= n || b < 0 || b >= n) return 0;
    const std::vector<Profile> p = profilesOf(g, a == b ? std::vector<int>{a} : std::vector<int>{a, b});
    return dot(p.front(), p.back());
}

namespace {

// The words found in at least half of the labels (and in two at least), most shared first, ties
// in the order the strongest labels spell them; at most three.
std::vector<std::string> sharedWords(const std::vector<std::string>& labels) {
    std::map<std::string, int> count;
    std::vector<std::string> order;  // first appearance
    for (const std::string& label : labels) {
        std::set<std::string> seen;
        for (const std::string& w : wordsOf(label)) {
            if (!seen.insert(w).second) continue;
            if (count[w]++ == 0) order.push_back(w);
        }
    }
    const int need = std::max<int>(2, static_cast<int>((labels.size() + 1) / 2));
    std::vector<std::string> shared;
    for (const std::string& w : order)
        if (count[w] >= need) shared.push_back(w);
    std::stable_sort(shared.begin(), shared.end(), [&](const std::string& a, const std::string& b) { return count[a] > count[b]; });
    if (shared.size() > 3) shared.resize(3);
    return shared;
}

}  // namespace

std::string proposeSupernodeLabel(const AttributionGraph& g, const std::vector<int>& members) {
    std::vector<int> sorted;
    for (int m : members)
        if (m >= 0 && m < static_cast<int>(g.nodes.size())) sorted.push_back(m);
    if (sorted.empty()) return {};
    byInfluence(g, sorted);
    // An automatic label says what a feature fires on, then "|" what it promotes: the first part
    // names a group better, the second when the first shares nothing.
    std::vector<std::string> fires, promotes;
    for (int m : sorted) {
        const std::string& label = g.nodes[static_cast<size_t>(m)].label;
        const size_t bar = label.find('|');
        fires.push_back(label.substr(0, bar));
        promotes.push_back(bar == std::string::npos ? std::string() : label.substr(bar + 1));
    }
    std::vector<std::string> shared = sharedWords(fires);
    if (shared.empty()) shared = sharedWords(promotes);
    if (!shared.empty()) {
        std::string label;
        for (size_t i = 0; i < shared.size(); ++i) label += (i ? ", " : "") + shared[i];
        return label;
    }
    const GraphNode& top = g.nodes[static_cast<size_t>(sorted.front())];
    if (!top.label.empty()) return top.label;
    if (top.kind == NodeKind::Feature) return "L" + std::to_string(top.layer) + " #" + std::to_string(top.feature);
    return top.id;
}

std::vector<SupernodeSuggestion> suggestSupernodes(const AttributionGraph& g, const SuggestionOptions& o) {
    std::unordered_set<std::string> grouped;
    for (const Supernode& s : g.supernodes) grouped.insert(s.nodeIds.begin(), s.nodeIds.end());
    std::vector<int> cand;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (g.nodes[i].kind == NodeKind::Feature && !grouped.count(g.nodes[i].id)) cand.push_back(static_cast<int>(i));
    byInfluence(g, cand);
    if (cand.size() > o.maxNodes) cand.resize(o.maxNodes);
    const size_t n = cand.size();
    if (n < 2) return {};

    const std::vector<Profile> prof = profilesOf(g, cand);
    std::vector<double> pair(n * n, 0.0);  // node-to-node similarity, bonus included
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            double s = dot(prof[i], prof[j]);
            const GraphNode& a = g.nodes[static_cast<size_t>(cand[i])];
            const GraphNode& b = g.nodes[static_cast<size_t>(cand[j])];
            if (a.layer == b.layer && a.feature == b.feature && a.position != b.position) s = std::min(1.0, s + o.sameFeatureBonus);
            pair[i * n + j] = pair[j * n + i] = s;
        }

    // Average linkage, Lance-Williams: sim(A u B, C) = (|A| sim(A, C) + |B| sim(B, C)) / (|A| + |B|).
    std::vector<double> sim = pair;
    std::vector<std::vector<size_t>> cluster(n);
    for (size_t i = 0; i < n; ++i) cluster[i] = {i};
    std::vector<char> alive(n, 1);
    for (;;) {
        double best = o.minSimilarity;
        size_t bi = n, bj = n;
        for (size_t i = 0; i < n; ++i) {
            if (!alive[i]) continue;
            for (size_t j = i + 1; j < n; ++j)
                if (alive[j] && sim[i * n + j] >= best && cluster[i].size() + cluster[j].size() <= o.maxGroupSize &&
                    (bi == n || sim[i * n + j] > best)) {
                    best = sim[i * n + j];
                    bi = i;
                    bj = j;
                }
        }
        if (bi == n) break;
        const double wi = static_cast<double>(cluster[bi].size()), wj = static_cast<double>(cluster[bj].size());
        for (size_t k = 0; k < n; ++k) {
            if (!alive[k] || k == bi || k == bj) continue;
            const double s = (wi * sim[bi * n + k] + wj * sim[bj * n + k]) / (wi + wj);
            sim[bi * n + k] = sim[k * n + bi] = s;
        }
        cluster[bi].insert(cluster[bi].end(), cluster[bj].begin(), cluster[bj].end());
        cluster[bj].clear();
        alive[bj] = 0;
    }

    std::vector<SupernodeSuggestion> out;
    for (size_t i = 0; i < n; ++i) {
        if (!alive[i] || cluster[i].size() < 2) continue;
        SupernodeSuggestion s;
        double total = 0;
        for (size_t a = 0; a < cluster[i].size(); ++a) {
            s.members.push_back(cand[cluster[i][a]]);
            for (size_t b = a + 1; b < cluster[i].size(); ++b) total += pair[cluster[i][a] * n + cluster[i][b]];
        }
        const double pairs = static_cast<double>(cluster[i].size() * (cluster[i].size() - 1) / 2);
        s.score = total / pairs;
        byInfluence(g, s.members);
        s.label = proposeSupernodeLabel(g, s.members);
        out.push_back(std::move(s));
    }
    std::stable_sort(out.begin(), out.end(), [](const SupernodeSuggestion& a, const SupernodeSuggestion& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.members.size() > b.members.size();
    });
    if (out.size() > o.maxSuggestions) out.resize(o.maxSuggestions);
    return out;
}

}  // namespace cs
