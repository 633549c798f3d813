// The model diff (core/diff, `circuitscope diff`) against an independent float64 reference
// (tests/reference/ref_diff.py). Model B is model A with layer 1's MLP output matrix scaled by 3:
// the residual streams must agree exactly before layer 1 and move from it on, the per-token KL,
// the layer shifts and a random SAE's feature statistics must match the reference, identical
// models must show no difference, and mismatched architectures are one clear error.
#include "TestSupport.h"

#include "diff/ModelDiff.h"
#include "diff/ModelDiffJson.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "train/LmTrainer.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <cmath>
#include <filesystem>
#include <map>

using namespace cstest;
using Json = nlohmann::json;

namespace {

constexpr int kScaledLayer = 1;

// |got - want| within 1e-4, relative where the value is large.
bool close(double got, double want, double tol = 1e-4) {
    return std::abs(got - want) <= tol * std::max(1.0, std::abs(want));
}

std::string sequencesArg(const std::vector<std::vector<int>>& seqs) {
    std::string s;
    for (const auto& seq : seqs) {
        if (!s.empty()) s += ";";
        for (size_t i = 0; i < seq.size(); ++i) s += (i ? "," : "") + std::to_string(seq[i]);
    }
    return s;
}

}  // namespace

class TestDiff : public QObject {
    Q_OBJECT
    std::string dir_, a_, b_, other_, sae_;
    std::shared_ptr<cs::Transformer> modelA_, modelB_;
    std::shared_ptr<cs::Sae> sae_ptr_;
    std::vector<std::vector<int>> seqs_;

    cs::DiffRequest request(int top = 20) const {
        cs::DiffRequest r;
        r.sequences = seqs_;
        r.saes = {{"sae-L2", sae_ptr_}};
        r.topFeatures = top;
        return r;
    }

private Q_SLOTS:
    void initTestCase() {
        dir_ = makeTempDir("diff");
        a_ = dir_ + "/a";
        b_ = dir_ + "/b";
        other_ = dir_ + "/other";
        sae_ = dir_ + "/sae";
        runReference("make_random_model.py",
                     "--arch gpt2 --seed 51 --layers 3 --d-model 32 --heads 4 --vocab 256 --ctx 32 --out " + shellQuote(a_));
        runReference("ref_diff.py", "scale --base " + shellQuote(a_) + " --out " + shellQuote(b_) +
                                        " --tensor transformer.h." + std::to_string(kScaledLayer) +
                                        ".mlp.c_proj.weight --factor 3");
        runReference("make_random_model.py",
                     "--arch gpt2 --seed 52 --layers 2 --d-model 32 --heads 4 --vocab 256 --ctx 32 --out " + shellQuote(other_));
        runReference("ref_diff.py", "sae --out " + shellQuote(sae_) + " --hook blocks.2.hook_resid_post --d-in 32 --d-sae 48 --seed 5");
        writeByteLevelTokenizer(a_);
        writeByteLevelTokenizer(b_);
        modelA_ = cs::loadModel(a_);
        modelB_ = cs::loadModel(b_);
        sae_ptr_ = cs::loadSae(sae_);
        seqs_ = {{72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100}, {3, 200, 17, 17, 90, 45, 1, 250, 8}, {9}};
    }

    // Before the scaled MLP the two residual streams are the same vectors; from it on they move.
    void layerShiftPointsAtTheScaledMlp() {
        const cs::ModelDiff d = cs::diffModels(*modelA_, *modelB_, request());
        QCOMPARE(d.layers.size(), size_t(3));
        for (const cs::LayerShift& l : d.layers) {
            qInfo("layer %d: cosine %.6f, norm ratio %.6f", l.layer, l.cosine, l.normRatio);
            if (l.layer < kScaledLayer) {
                QVERIFY2(std::abs(l.cosine - 1) < 1e-6 && std::abs(l.normRatio - 1) < 1e-6, "a layer before the change moved");
            } else {
                QVERIFY2(l.cosine < 0.99 || std::abs(l.normRatio - 1) > 0.05, "the scaled layer did not move");
            }
        }
        QCOMPARE(d.tokenCount, 21L);
        QVERIFY(d.meanKl > 1e-3);
    }

    void matchesTheReference() {
        const cs::ModelDiff d = cs::diffModels(*modelA_, *modelB_, request(48));
        const std::string out = dir_ + "/ref.json";
        runReference("ref_diff.py", "compute --a " + shellQuote(a_) + " --b " + shellQuote(b_) + " --sequences '" +
                                        sequencesArg(seqs_) + "' --sae " + shellQuote(sae_) + " --out " + shellQuote(out));
        const Json ref = Json::parse(readFile(out));
        QCOMPARE(d.tokens.size(), seqs_.size());
        double klSum = 0;
        for (size_t s = 0; s < seqs_.size(); ++s) {
            QCOMPARE(d.tokens[s].size(), seqs_[s].size());
            for (size_t t = 0; t < seqs_[s].size(); ++t) {
                const double want = ref["kl"][s][t].get<double>();
                QCOMPARE(d.tokens[s][t].id, seqs_[s][t]);
                QVERIFY2(close(d.tokens[s][t].kl, want),
                         qPrintable(QString("KL at sequence %1 position %2: %3, reference %4").arg(s).arg(t).arg(d.tokens[s][t].kl).arg(want)));
                klSum += want;
            }
        }
        QVERIFY(close(d.meanKl, klSum / 21));
        for (int l = 0; l < 3; ++l) {
            QVERIFY2(close(d.layers[l].cosine, ref["cosine"][l].get<double>()), qPrintable(QString("cosine, layer %1").arg(l)));
            QVERIFY2(close(d.layers[l].normRatio, ref["norm_ratio"][l].get<double>()), qPrintable(QString("norm ratio, layer %1").arg(l)));
        }
        // Every feature that fired on either model, ranked by |mean B - mean A|, with the reference's figures.
        const Json& f = ref["features"];
        int active = 0;
        for (int i = 0; i < 48; ++i) active += f["max_a"][i].get<double>() > 0 || f["max_b"][i].get<double>() > 0;
        QCOMPARE(static_cast<int>(d.features.size()), active);
        QVERIFY(active > 5);
        for (size_t k = 0; k < d.features.size(); ++k) {
            const cs::FeatureShift& s = d.features[k];
            const long i = s.index;
            QCOMPARE(s.saeId, std::string("sae-L2"));
            QVERIFY2(close(s.meanA, f["mean_a"][i].get<double>()) && close(s.meanB, f["mean_b"][i].get<double>()) &&
                         close(s.maxA, f["max_a"][i].get<double>()) && close(s.maxB, f["max_b"][i].get<double>()) &&
                         close(s.firingA, f["firing_a"][i].get<double>()) && close(s.firingB, f["firing_b"][i].get<double>()),
                     qPrintable(QString("feature %1: mean %2 / %3, reference %4 / %5").arg(i).arg(s.meanA).arg(s.meanB)
                                    .arg(f["mean_a"][i].get<double>()).arg(f["mean_b"][i].get<double>())));
            if (k > 0) QVERIFY(std::abs(s.meanB - s.meanA) <= std::abs(d.features[k - 1].meanB - d.features[k - 1].meanA));
        }
        // --top keeps the head of that ranking.
        const cs::ModelDiff top3 = cs::diffModels(*modelA_, *modelB_, request(3));
        QCOMPARE(top3.features.size(), size_t(3));
        for (int k = 0; k < 3; ++k) QCOMPARE(top3.features[k].index, d.features[k].index);
    }

    void identicalModelsShowNoDifference() {
        const cs::ModelDiff d = cs::diffModels(*modelA_, *modelA_, request());
        QVERIFY(d.maxKl < 1e-6);
        for (const cs::LayerShift& l : d.layers) QVERIFY(std::abs(l.cosine - 1) < 1e-6 && std::abs(l.normRatio - 1) < 1e-6);
        for (const cs::FeatureShift& s : d.features) QCOMPARE(s.meanA, s.meanB);
    }

    void mismatchedArchitectureIsOneClearError() {
        auto other = cs::loadModel(other_);
        expectOneLineError([&] { cs::diffModels(*modelA_, *other, request()); }, {"n_layers", "2", "3"});
    }

    void progressCanCancel() {
        cs::DiffRequest r = request();
        int calls = 0;
        r.progress = [&](int done, int total) {
            ++calls;
            return done < 2 && total == 3;
        };
        expectOneLineError([&] { cs::diffModels(*modelA_, *modelB_, r); }, {"cancelled"});
        QCOMPARE(calls, 2);
    }

    void jsonHasEveryField() {
        const cs::ModelDiff d = cs::diffModels(*modelA_, *modelB_, request(5));
        const Json j = cs::modelDiffToJson(d, nullptr);
        QCOMPARE(j["token_count"].get<long>(), 21L);
        QCOMPARE(j["sequences"].size(), size_t(3));
        QVERIFY(!j["sequences"][0].contains("tokens"));
        QCOMPARE(j["layers"].size(), size_t(3));
        QCOMPARE(j["features"].size(), size_t(5));
        QCOMPARE(j["features"][0]["index"].get<long>(), d.features[0].index);
        QVERIFY(close(j["features"][0]["delta"].get<double>(), d.features[0].meanB - d.features[0].meanA));
    }

    // train-lm --init: fine-tuning starts from the given model (its shape and tokenizer), so a
    // near-zero learning rate gives back the same model, and the diff says so.
    void trainLmInitStartsFromTheModel() {
        const std::string demo = cs::demoBundleDir();
        if (demo.empty()) QSKIP("the demo bundle is not installed");
        std::string text;
        for (int i = 0; i < 60; ++i)
            text += "Once upon a time, there was a dog named Max number " + std::to_string(i) +
                    ". Max liked to run in the park with his friend Lily.\n";
        writeFile(dir_ + "/corpus.txt", text);
        cs::LmTrainOptions o;
        o.initDir = demo + "/model";
        o.corpus = dir_ + "/corpus.txt";
        o.outDir = dir_ + "/tuned";
        o.layers = 1;  // ignored: --init keeps the model's shape
        o.steps = 2;
        o.batch = 2;
        o.lr = 1e-9;
        o.warmupSteps = 1;
        o.checkpointEvery = 0;
        cs::trainLm(o);
        QCOMPARE(readFile(o.outDir + "/tokenizer.model"), readFile(demo + "/model/tokenizer.model"));
        auto base = cs::loadModel(demo + "/model"), tuned = cs::loadModel(o.outDir);
        QCOMPARE(tuned->config().nLayers, base->config().nLayers);
        cs::DiffRequest r;
        r.sequences = {{1, 45, 300, 12, 7, 900, 31}};
        const cs::ModelDiff d = cs::diffModels(*base, *tuned, r);
        QVERIFY2(d.maxKl < 1e-5, qPrintable(QString("max KL %1").arg(d.maxKl)));
        for (const cs::LayerShift& l : d.layers) QVERIFY(std::abs(l.cosine - 1) < 1e-5);
    }

    // The demo pair: `demo-dog` resolves to the fine-tuned variant, the demo's residual SAEs are
    // read by default, and the two models differ.
    void demoPairDiffs() {
        if (cs::demoBundleDir().empty() || !std::filesystem::exists(cs::demoBundleDir() + "/model-dog/config.json"))
            QSKIP("the demo bundle or its model-dog is not installed");
        std::string out;
        QCOMPARE(run(shellQuote(CS_CLI_PATH) + " --threads 1 diff --model demo --model-b demo-dog --prompt 'Lily had a big dog.' "
                     "--top 5 --json 2>/dev/null", &out), 0);
        const Json j = Json::parse(out);
        QCOMPARE(j["layers"].size(), size_t(4));
        QCOMPARE(j["features"].size(), size_t(5));
        QVERIFY(j["features"][0]["sae"].get<std::string>().rfind("res-L", 0) == 0);
        QVERIFY(j["mean_kl"].get<double>() > 0.01);
        QCOMPARE(j["sequences"][0]["tokens"][0].get<std::string>(), std::string("<s>"));
    }

    // The command: --prompt through the model's tokenizer, --sae, --json; the same figures as the API.
    void cliDiffJson() {
        std::string out;
        const std::string cmd = shellQuote(CS_CLI_PATH) + " --threads 1 diff --model " + shellQuote(a_) + " --model-b " +
                                shellQuote(b_) + " --sae " + shellQuote(sae_) + " --prompt 'Hello world' --bos no --top 4 --json";
        QCOMPARE(run(cmd + " 2>/dev/null", &out), 0);
        const Json j = Json::parse(out);
        cs::DiffRequest r = request(4);
        r.sequences = {{72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100}};
        r.saes[0].id = "sae";
        const cs::ModelDiff d = cs::diffModels(*modelA_, *modelB_, r);
        QCOMPARE(j["token_count"].get<long>(), 11L);
        QCOMPARE(j["sequences"][0]["tokens"][0].get<std::string>(), std::string("H"));
        for (size_t t = 0; t < 11; ++t) QVERIFY(close(j["sequences"][0]["kl"][t].get<double>(), d.tokens[0][t].kl));
        QCOMPARE(j["features"].size(), size_t(4));
        QCOMPARE(j["features"][0]["sae"].get<std::string>(), std::string("sae"));
        QCOMPARE(j["features"][0]["index"].get<long>(), d.features[0].index);

        std::string err;
        const std::string errFile = dir_ + "/err.txt";
        const int rc = run(shellQuote(CS_CLI_PATH) + " --threads 1 diff --model " + shellQuote(a_) + " --model-b " +
                               shellQuote(other_) + " --prompt 'Hello' --json 2>" + shellQuote(errFile), &out);
        err = readFile(errFile);
        QCOMPARE(rc, 1);
        QVERIFY2(err.find("n_layers") != std::string::npos && std::count(err.begin(), err.end(), '\n') == 1, err.c_str());
    }
};

QTEST_GUILESS_MAIN(TestDiff)
#include "test_diff.moc"
