// PromptAnalysis (the data of the token, attention and logit-lens views) against the float64
// reference in tests/reference/ref_analysis.py, on random GPT-2, grouped-query Llama and Gemma 2
// (soft-caps, sliding windows) models: computed eagerly, as the analysis once did, and on demand
// (lens cells per position, head patterns from the kept queries and keys), which must agree.
#include "TestSupport.h"

#include "analysis/PromptAnalysis.h"
#include "model/ModelLoader.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace cstest;

namespace {

// Every head's pattern kept, and every lens cell computed during the analysis.
cs::AnalysisOptions eager() {
    cs::AnalysisOptions o;
    o.eagerLens = true;
    o.attentionHoldBytes = std::numeric_limits<size_t>::max();
    return o;
}

// No pattern kept and no lens cell computed: each is computed when asked for.
cs::AnalysisOptions onDemand() {
    cs::AnalysisOptions o;
    o.attentionHoldBytes = 0;
    o.lensUpFrontMacs = 0;
    return o;
}

}  // namespace

class TestAnalysis : public QObject {
    Q_OBJECT

    struct Worst {
        double value = 0;
        void operator()(double x, double y) { value = std::max(value, std::abs(x - y)); }
    };

    // One lens cell (row r, position t) against the reference: P(next), the top-k ids (where
    // the reference's ranking is not a near tie) and their probabilities.
    static void compareCell(const cs::LensColumn& c, int r, int t, int T, const nlohmann::json& ref, Worst& diff) {
        if (t + 1 < T) diff(c.nextProbability[r], ref["lens_next"][r][t].get<double>());
        else QVERIFY(std::isnan(c.nextProbability[r]));
        QCOMPARE(c.top[r].size(), size_t(10));
        for (int k = 0; k < 10; ++k) {
            const double p = ref["lens_top_p"][r][t][k].get<double>();
            diff(c.top[r][k].probability, p);
            const bool tie = (k > 0 && std::abs(p - ref["lens_top_p"][r][t][k - 1].get<double>()) < 1e-5) ||
                             (k < 9 && std::abs(p - ref["lens_top_p"][r][t][k + 1].get<double>()) < 1e-5);
            if (!tie) QCOMPARE(c.top[r][k].id, ref["lens_top"][r][t][k].get<int>());
        }
    }

    void checkAgainstReference(const std::string& arch, const std::string& extra) {
        const std::string dir = makeTempDir("analysis-" + arch);
        runReference("make_random_model.py", "--arch " + arch + " --seed 41 --layers 3 --d-model 32 --heads 4 --vocab 256 --ctx 32 " +
                                                 extra + " --out " + shellQuote(dir));
        writeByteLevelTokenizer(dir);
        std::shared_ptr<const cs::Transformer> model = cs::loadModel(dir);
        std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
        const std::vector<int> ids{1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33};
        const int T = static_cast<int>(ids.size());
        cs::PromptAnalysis a = cs::analyzeTokens(model, tok, ids, 6, eager());
        QCOMPARE(a.length(), 13);
        QCOMPARE(a.promptLength, 6);
        QCOMPARE(a.layers, 3);
        QCOMPARE(a.heads, 4);
        QCOMPARE(a.texts[1], tok->tokenText(72));
        std::string list;
        for (int id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
        const std::string out = dir + "/ref.json";
        const int tracked = 200;  // a token that occurs nowhere in the sequence
        runReference("ref_analysis.py", "--model " + shellQuote(dir) + " --tokens " + list + " --top 10 --track " +
                                            std::to_string(tracked) + " --out " + shellQuote(out));
        auto ref = nlohmann::json::parse(readFile(out));
        Worst diff;
        for (int t = 0; t < a.length(); ++t) {
            QCOMPARE(a.next[t].size(), size_t(10));
            for (int k = 0; k < 10; ++k) {
                diff(a.next[t][k].probability, ref["next"][t][k]["p"].get<double>());
                // Ids must match wherever the reference's ranking is not a near tie.
                const double p = ref["next"][t][k]["p"].get<double>();
                const bool tie = (k > 0 && std::abs(p - ref["next"][t][k - 1]["p"].get<double>()) < 1e-5) ||
                                 (k < 9 && std::abs(p - ref["next"][t][k + 1]["p"].get<double>()) < 1e-5);
                if (!tie) QCOMPARE(a.next[t][k].id, ref["next"][t][k]["id"].get<int>());
            }
        }
        // Eager: every pattern held, every lens cell computed by the analysis itself.
        QVERIFY(a.attention->holdsAll());
        for (int l = 0; l < a.layers; ++l)
            for (int h = 0; h < a.heads; ++h) {
                const cs::HeadPattern p = a.attention->held(l, h);
                QVERIFY(p);
                for (int q = 0; q < T; ++q)
                    for (int k = 0; k < T; ++k) diff(p.weight(q, k), ref["attention"][l][h][q][k].get<double>());
            }
        QCOMPARE(a.lens->rows(), 4);
        QCOMPARE(a.lens->rowNames().front(), std::string("embed"));
        QCOMPARE(a.lens->computedCount(), T);
        for (int r = 0; r < a.lens->rows(); ++r)
            for (int t = 0; t < T; ++t) compareCell(*a.lens->column(t), r, t, T, ref, diff);
        // Any token read through the lens afterwards, from what the analysis kept.
        const auto track = cs::lensProbabilities(*model, a, tracked);
        QCOMPARE(track.size(), size_t(a.lens->rows()));
        for (size_t r = 0; r < track.size(); ++r) {
            QCOMPARE(track[r].size(), size_t(T));
            for (int t = 0; t < T; ++t) diff(track[r][t], ref["lens_track"][r][t].get<double>());
        }
        // ... and the actual next token that way gives the lens' own figures.
        const auto nextP = a.lens->nextProbabilities();
        for (int t = 0; t + 1 < T; ++t) {
            const auto next = cs::lensProbabilities(*model, a, ids[t + 1]);
            for (size_t r = 0; r < next.size(); ++r) diff(next[r][t], nextP[r][t]);
        }
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::lensProbabilities(*model, a, 256));
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::lensProbabilities(*model, a, -1));
        // The lens' last row is the model's own output.
        for (int t = 0; t < T; ++t) diff(a.lens->column(t)->top.back()[0].probability, a.next[t][0].probability);
        QVERIFY2(diff.value < 1e-4, std::to_string(diff.value).c_str());

        // On demand: the analysis computes no lens cell and holds no pattern; each is computed
        // when asked for, in any order, and equals the reference as the eager ones do.
        cs::PromptAnalysis b = cs::analyzeTokens(model, tok, ids, 6, onDemand());
        QVERIFY(!b.attention->holdsAll());
        QVERIFY(b.attention->heldHeads().empty());
        QCOMPARE(b.lens->computedCount(), 0);
        QVERIFY(std::isnan(b.lens->probabilitiesOf(tracked, cs::LogitLens::Fill::ComputedOnly)[1][4]));
        Worst lazy;
        for (int l = b.layers - 1; l >= 0; --l)
            for (int h = 0; h < b.heads; ++h) {
                QVERIFY(!b.attention->held(l, h));
                const cs::HeadPattern p = b.attention->head(l, h);
                // Only the head asked for last is held.
                QCOMPARE(b.attention->heldHeads(), (std::vector<std::pair<int, int>>{{l, h}}));
                for (int q = 0; q < T; ++q)
                    for (int k = 0; k < T; ++k) {
                        lazy(p.weight(q, k), ref["attention"][l][h][q][k].get<double>());
                        QVERIFY(std::abs(p.weight(q, k) - a.attention->held(l, h).weight(q, k)) < 1e-6);
                    }
                // The thumbnails' summary (the whole pattern at this length) is kept for every head.
                for (int q = 0; q < T; ++q)
                    for (int k = 0; k < T; ++k)
                        QVERIFY(std::abs(b.attention->summary(l, h)[q * T + k] - p.weight(q, k)) < 1e-6);
            }
        for (int n = 0, t = T - 1; t >= 0; --t, ++n) {
            QVERIFY(!b.lens->column(t));
            QCOMPARE(b.lens->computedCount(), n);
            b.lens->compute({t});
            for (int r = 0; r < b.lens->rows(); ++r) compareCell(*b.lens->column(t), r, t, T, ref, lazy);
        }
        const auto lazyTrack = b.lens->probabilitiesOf(tracked, cs::LogitLens::Fill::ComputedOnly);
        for (int r = 0; r < b.lens->rows(); ++r)
            for (int t = 0; t < T; ++t) lazy(lazyTrack[r][t], ref["lens_track"][r][t].get<double>());
        QVERIFY2(lazy.value < 1e-4, std::to_string(lazy.value).c_str());

        // In stages: tokens, then the forward pass, then the lens; the complete analysis equals
        // the one-call analysis, and the snapshots share its attention patterns.
        std::vector<std::shared_ptr<const cs::PromptAnalysis>> stages;
        auto full = cs::analyzeTokensInStages(model, tok, ids, 6, [&](std::shared_ptr<const cs::PromptAnalysis> s) {
            stages.push_back(std::move(s));
        });
        QCOMPARE(stages.size(), size_t(3));
        QVERIFY(stages[2] == full);
        QCOMPARE(int(stages[0]->stage), int(cs::AnalysisStage::Tokens));
        QCOMPARE(stages[0]->ids, ids);
        QCOMPARE(stages[0]->texts, a.texts);
        QVERIFY(!stages[0]->hasAttention() && stages[0]->next.empty() && !stages[0]->hasLens());
        QCOMPARE(int(stages[1]->stage), int(cs::AnalysisStage::Forward));
        QVERIFY(stages[1]->hasAttention() && !stages[1]->hasLens());
        QCOMPARE(stages[1]->next.size(), size_t(a.length()));
        QVERIFY(stages[1]->attention == full->attention);
        QCOMPARE(int(full->stage), int(cs::AnalysisStage::Complete));
        // By default a lens this small (4 x 256 x 32 x 13 multiply-adds) and 4 kB of patterns come
        // whole with the run.
        QVERIFY(full->attention->holdsAll());
        for (int q = 0; q < T; ++q) QCOMPARE(full->attentionWeight(2, 3, q, 0), a.attentionWeight(2, 3, q, 0));
        QCOMPARE(full->lens->rowNames(), a.lens->rowNames());
        QCOMPARE(full->lens->computedCount(), T);
        for (int t = 0; t < a.length(); ++t) QCOMPARE(full->next[t][0].id, a.next[t][0].id);
    }

private Q_SLOTS:
    void gpt2MatchesTheReference() { checkAgainstReference("gpt2", ""); }
    void groupedQueryLlamaMatchesTheReference() { checkAgainstReference("llama", "--kv-heads 2"); }
    // Soft-capped scores and logits, a query scale of its own, a sliding window on two layers.
    void gemma2MatchesTheReference() {
        checkAgainstReference("gemma2", "--kv-heads 2 --sliding-window 4 --layer-types sfs --query-pre-attn-scalar 12");
    }

    // Past the budget a long sequence keeps queries and keys, not patterns: every head computed
    // from them equals the one the model made, and the thumbnails' summaries (max-pooled to 80 x 80
    // here) are the same either way.
    void longSequenceKeepsQueriesAndKeysNotPatterns() {
        const std::string dir = makeTempDir("analysis-long");
        runReference("make_random_model.py", "--arch llama --seed 43 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --vocab 256 --ctx 256 --out " +
                                                 shellQuote(dir));
        writeByteLevelTokenizer(dir);
        std::shared_ptr<const cs::Transformer> model = cs::loadModel(dir);
        std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
        std::vector<int> ids;
        for (int t = 0; t < 203; ++t) ids.push_back(32 + (t * 37) % 90);
        const int T = static_cast<int>(ids.size());
        const cs::PromptAnalysis all = cs::analyzeTokens(model, tok, ids, T, eager());
        cs::AnalysisOptions budget;
        budget.attentionHoldBytes = 100'000;  // less than 2 x 4 x 203^2 floats (1.3 MB)
        const cs::PromptAnalysis some = cs::analyzeTokens(model, tok, ids, T, budget);
        QVERIFY(all.attention->holdsAll() && !some.attention->holdsAll());
        QVERIFY(some.heldBytes() < all.heldBytes());
        const int side = some.attention->summarySide();
        QCOMPARE(side, 80);
        for (int l = 0; l < 2; ++l)
            for (int h = 0; h < 4; ++h) {
                const cs::HeadPattern p = some.attention->head(l, h), expect = all.attention->held(l, h);
                double worst = 0;
                for (int q = 0; q < T; ++q)
                    for (int k = 0; k < T; ++k) worst = std::max<double>(worst, std::abs(p.weight(q, k) - expect.weight(q, k)));
                QVERIFY2(worst < 1e-6, std::to_string(worst).c_str());
                for (int y = 0; y < side; ++y)
                    for (int x = 0; x < side; ++x) {
                        float pooled = 0;
                        for (int q = y * T / side; q < (y + 1) * T / side; ++q)
                            for (int k = x * T / side; k < (x + 1) * T / side; ++k) pooled = std::max(pooled, expect.weight(q, k));
                        QCOMPARE(some.attention->summary(l, h)[y * side + x], pooled);
                        QCOMPARE(all.attention->summary(l, h)[y * side + x], pooled);
                    }
            }
        QCOMPARE(some.attention->heldHeads(), (std::vector<std::pair<int, int>>{{1, 3}}));
    }

    void emptyOrTooLongInputIsAClearError() {
        const std::string dir = makeTempDir("analysis-bad");
        runReference("make_random_model.py", "--arch gpt2 --seed 42 --layers 1 --d-model 16 --heads 2 --vocab 256 --ctx 8 --out " + shellQuote(dir));
        writeByteLevelTokenizer(dir);
        std::shared_ptr<const cs::Transformer> model = cs::loadModel(dir);
        std::shared_ptr<const cs::Tokenizer> tok = cs::loadTokenizer(dir);
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::analyzeTokens(model, tok, {}, 0));
        try {
            cs::analyzeTokens(model, tok, std::vector<int>(9, 65), 9);
            QFAIL("a sequence longer than the context was accepted");
        } catch (const cs::Error& e) {
            QVERIFY2(std::string(e.what()).find("context") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestAnalysis)
#include "test_analysis.moc"
