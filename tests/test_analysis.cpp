// PromptAnalysis (the data of the token, attention and logit-lens views) against the float64
// reference in tests/reference/ref_analysis.py, on random GPT-2 and grouped-query Llama models.
#include "TestSupport.h"

#include "analysis/PromptAnalysis.h"
#include "model/ModelLoader.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <cmath>

using namespace cstest;

class TestAnalysis : public QObject {
    Q_OBJECT

    void checkAgainstReference(const std::string& arch, const std::string& extra) {
        const std::string dir = makeTempDir("analysis-" + arch);
        runReference("make_random_model.py", "--arch " + arch + " --seed 41 --layers 3 --d-model 32 --heads 4 --vocab 256 --ctx 32 " +
                                                 extra + " --out " + shellQuote(dir));
        writeByteLevelTokenizer(dir);
        auto model = cs::loadModel(dir);
        auto tok = cs::loadTokenizer(dir);
        const std::vector<int> ids{1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33};
        cs::PromptAnalysis a = cs::analyzeTokens(*model, *tok, ids, 6);
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
        double worst = 0;
        auto diff = [&](double x, double y) { worst = std::max(worst, std::abs(x - y)); };
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
        for (int l = 0; l < a.layers; ++l)
            for (int h = 0; h < a.heads; ++h)
                for (int q = 0; q < a.length(); ++q)
                    for (int k = 0; k < a.length(); ++k) diff(a.attentionWeight(l, h, q, k), ref["attention"][l][h][q][k].get<double>());
        QCOMPARE(a.lensRows.size(), size_t(4));
        QCOMPARE(a.lensRows.front(), std::string("embed"));
        for (size_t r = 0; r < a.lensRows.size(); ++r) {
            for (int t = 0; t + 1 < a.length(); ++t) diff(a.lensNextProbability[r][t], ref["lens_next"][r][t].get<double>());
            QVERIFY(std::isnan(a.lensNextProbability[r].back()));
            QCOMPARE(a.lensTop[r][3][0].id, ref["lens_top"][r][3][0].get<int>());
        }
        // Any token read through the lens afterwards, from what the analysis kept.
        const auto track = cs::lensProbabilities(*model, a, tracked);
        QCOMPARE(track.size(), a.lensRows.size());
        for (size_t r = 0; r < track.size(); ++r) {
            QCOMPARE(track[r].size(), size_t(a.length()));
            for (int t = 0; t < a.length(); ++t) diff(track[r][t], ref["lens_track"][r][t].get<double>());
        }
        // ... and the actual next token that way gives the lens' own figures.
        for (int t = 0; t + 1 < a.length(); ++t) {
            const auto next = cs::lensProbabilities(*model, a, ids[t + 1]);
            for (size_t r = 0; r < next.size(); ++r) diff(next[r][t], a.lensNextProbability[r][t]);
        }
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::lensProbabilities(*model, a, 256));
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::lensProbabilities(*model, a, -1));
        // The lens' last row is the model's own output.
        for (int t = 0; t < a.length(); ++t) diff(a.lensTop.back()[t][0].probability, a.next[t][0].probability);
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());

        // In stages: tokens, then the forward pass, then the lens; the complete analysis equals
        // the one-call analysis, and the snapshots share its attention patterns.
        std::vector<std::shared_ptr<const cs::PromptAnalysis>> stages;
        auto full = cs::analyzeTokensInStages(*model, *tok, ids, 6, [&](std::shared_ptr<const cs::PromptAnalysis> s) {
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
        QCOMPARE(*full->attention, *a.attention);
        QCOMPARE(full->lensNormed, a.lensNormed);
        QCOMPARE(full->lensRows, a.lensRows);
        for (int t = 0; t < a.length(); ++t) QCOMPARE(full->next[t][0].id, a.next[t][0].id);
    }

private Q_SLOTS:
    void gpt2MatchesTheReference() { checkAgainstReference("gpt2", ""); }
    void groupedQueryLlamaMatchesTheReference() { checkAgainstReference("llama", "--kv-heads 2"); }

    void emptyOrTooLongInputIsAClearError() {
        const std::string dir = makeTempDir("analysis-bad");
        runReference("make_random_model.py", "--arch gpt2 --seed 42 --layers 1 --d-model 16 --heads 2 --vocab 256 --ctx 8 --out " + shellQuote(dir));
        writeByteLevelTokenizer(dir);
        auto model = cs::loadModel(dir);
        auto tok = cs::loadTokenizer(dir);
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::analyzeTokens(*model, *tok, {}, 0));
        try {
            cs::analyzeTokens(*model, *tok, std::vector<int>(9, 65), 9);
            QFAIL("a sequence longer than the context was accepted");
        } catch (const cs::Error& e) {
            QVERIFY2(std::string(e.what()).find("context") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestAnalysis)
#include "test_analysis.moc"
