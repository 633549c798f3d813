// Activation patching (core/patching, `circuitscope patch`) against an independent float64
// reference (tests/reference/ref_patching.py: TransformerLens-style Python hooks that copy the
// source run's activation, one forward pass per cell, no batching). On a random GPT-2 and a random
// Llama: every site (resid, attn, mlp, heads, heads by position, features of a random SAE, and of
// a transcoder on GPT-2), both directions, all three metrics: every cell within 1e-4 of the
// reference. Plus: batch sizes and reusing the target run's keys and values do not change
// results, prompts of different lengths and a cancelled run fail with one clear line, and
// `patch --json` prints the documented fields.
#include "TestSupport.h"

#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "patching/ActivationPatching.h"
#include "patching/PatchJson.h"
#include "runtime/Threads.h"
#include "sae/SaeLoader.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <cmath>
#include <set>

using namespace cstest;
using Json = nlohmann::json;

namespace {

constexpr double kTolerance = 1e-4;
const std::vector<int> kClean = {3, 17, 42, 8, 99, 23, 61, 5};
const std::vector<int> kCorrupted = {3, 17, 77, 8, 12, 23, 61, 5};

const std::vector<std::pair<cs::PatchSite, const char*>> kGridSites = {
    {cs::PatchSite::Resid, "resid"},
    {cs::PatchSite::AttnOut, "attn"},
    {cs::PatchSite::MlpOut, "mlp"},
    {cs::PatchSite::Heads, "heads"},
    {cs::PatchSite::HeadsByPosition, "heads-by-position"}};
const std::vector<cs::PatchMetric> kMetrics = {cs::PatchMetric::LogitDiff, cs::PatchMetric::Probability,
                                               cs::PatchMetric::KL};

struct Fixture {
    std::string name, dir;
    std::shared_ptr<cs::Transformer> model;
    std::vector<std::string> saes;  // SAELens folders for the features site
    int answer = -1, wrong = -1;
    Json ref;
};

// The two tokens whose logit difference moves most between the runs, so the normalisation
// divides by a large span and the 1e-4 tolerance means something.
std::pair<int, int> answerAndWrong(const cs::Transformer& m) {
    auto last = [&](const std::vector<int>& ids) {
        std::vector<int64_t> v(ids.begin(), ids.end());
        return m.forward(at::tensor(v, at::kLong).unsqueeze(0))[0][-1];
    };
    const at::Tensor d = last(kClean) - last(kCorrupted);
    return {int(d.argmax().item<long>()), int(d.argmin().item<long>())};
}

void writeSae(const std::string& folder, const std::string& arch, const std::string& hook, int dIn, int dSae,
              int seed, const std::string& hookOut = "") {
    std::string call = "ref_sae.write_saelens_v6(" + Json(folder).dump() + ", '" + arch + "', '" + hook + "', " +
                       std::to_string(dIn) + ", " + std::to_string(dSae) + ", ref_sae.Draw(" + std::to_string(seed) + ")";
    if (!hookOut.empty()) call += ", hook_out='" + hookOut + "'";
    call += ")";
    const std::string script = "import sys; sys.path.insert(0, " + Json(sourceDir() + "/tests/reference").dump() +
                               "); import ref_sae; " + call;
    QCOMPARE(run(python() + " -c " + shellQuote(script) + " 2>&1"), 0);
}

cs::PatchRequest request(const Fixture& f, cs::PatchSite site, cs::PatchDirection dir, cs::PatchMetric metric) {
    cs::PatchRequest r;
    r.cleanIds = kClean;
    r.corruptedIds = kCorrupted;
    r.answerId = f.answer;
    r.wrongId = f.wrong;
    r.site = site;
    r.direction = dir;
    r.metric = metric;
    return r;
}

}  // namespace

class TestPatching : public QObject {
    Q_OBJECT
    std::vector<Fixture> fixtures_;

    // The reference's case for (site, direction, sae).
    static const Json& refCase(const Fixture& f, const std::string& site, const std::string& dir, size_t sae = 0) {
        size_t seen = 0;
        for (const Json& c : f.ref["cases"])
            if (c["site"] == site && c["direction"] == dir && (site != "features" || seen++ == sae)) return c;
        throw std::runtime_error("no reference case " + site + " " + dir);
    }

private Q_SLOTS:
    void initTestCase() {
        cs::setComputeThreads(1);
        const std::string root = makeTempDir("patching");
        for (const char* arch : {"gpt2", "llama"}) {
            Fixture f;
            f.name = arch;
            f.dir = root + "/" + arch;
            runReference("make_random_model.py", std::string("--arch ") + arch +
                                                     " --seed 17 --layers 2 --d-model 32 --heads 4 --vocab 256 --ctx 16" +
                                                     (std::string(arch) == "llama" ? " --kv-heads 2" : "") +
                                                     " --out " + shellQuote(f.dir));
            if (f.name == "gpt2") writeByteLevelTokenizer(f.dir);
            f.model = cs::loadModel(f.dir);
            std::tie(f.answer, f.wrong) = answerAndWrong(*f.model);
            QVERIFY(f.answer != f.wrong);
            f.saes.push_back(f.dir + "-sae");
            writeSae(f.saes.back(), "standard", "blocks.0.hook_resid_post", 32, 24, 5);
            if (f.name == "gpt2") {
                f.saes.push_back(f.dir + "-tc");
                writeSae(f.saes.back(), "transcoder", "blocks.1.ln2.hook_normalized", 32, 24, 6, "blocks.1.hook_mlp_out");
            }
            Json cases = Json::array();
            for (const char* dir : {"denoise", "noise"}) {
                for (const auto& [site, name] : kGridSites) cases.push_back({{"site", name}, {"direction", dir}});
                for (const auto& sae : f.saes) cases.push_back({{"site", "features"}, {"direction", dir}, {"sae", sae}});
            }
            const Json job = {{"model", f.dir}, {"clean", kClean}, {"corrupted", kCorrupted}, {"answer", f.answer},
                              {"wrong", f.wrong}, {"cases", cases}};
            writeFile(root + "/" + f.name + "-job.json", job.dump());
            runReference("ref_patching.py", "--job " + shellQuote(root + "/" + f.name + "-job.json") + " --out " +
                                                shellQuote(root + "/" + f.name + "-ref.json"));
            f.ref = Json::parse(readFile(root + "/" + f.name + "-ref.json"));
            fixtures_.push_back(std::move(f));
        }
    }

    void everyGridSiteMatchesTheReference() {
        for (const Fixture& f : fixtures_)
            for (auto dir : {cs::PatchDirection::Denoise, cs::PatchDirection::Noise})
                for (const auto& [site, siteName] : kGridSites)
                    for (auto metric : kMetrics) {
                        const cs::PatchGrid g = cs::runActivationPatching(*f.model, request(f, site, dir, metric));
                        const std::string what = f.name + " " + siteName + " " + cs::patchDirectionName(dir) + " " +
                                                 cs::patchMetricName(metric);
                        const Json& want = refCase(f, siteName, cs::patchDirectionName(dir))["grid"][cs::patchMetricName(metric)];
                        QCOMPARE(g.rows, int(want.size()));
                        QCOMPARE(g.columns, int(want[0].size()));
                        QCOMPARE(g.patchedRuns, g.rows * g.columns);
                        QVERIFY(std::abs(g.cleanValue - f.ref["clean"][cs::patchMetricName(metric)].get<double>()) < kTolerance);
                        QVERIFY(std::abs(g.corruptedValue - f.ref["corrupted"][cs::patchMetricName(metric)].get<double>()) < kTolerance);
                        double moved = 0;
                        for (int r = 0; r < g.rows; ++r)
                            for (int c = 0; c < g.columns; ++c) {
                                const double w = want[r][c].get<double>();
                                if (std::abs(g.at(r, c) - w) > kTolerance)
                                    QFAIL((what + ": cell " + g.rowLabels[r] + " / " + g.columnLabels[c] + " is " +
                                           std::to_string(g.at(r, c)) + ", reference " + std::to_string(w)).c_str());
                                moved = std::max(moved, std::abs(w - (dir == cs::PatchDirection::Denoise ? 0.0 : 1.0)));
                            }
                        // A grid where nothing moves would pass against any no-op.
                        QVERIFY2(moved > 0.05, (what + ": no cell moves the metric").c_str());
                    }
    }

    void residPatchingAtTheEndRestoresTheSourceRun() {
        const Fixture& f = fixtures_[0];
        const cs::PatchGrid g = cs::runActivationPatching(
            *f.model, request(f, cs::PatchSite::Resid, cs::PatchDirection::Denoise, cs::PatchMetric::KL));
        QCOMPARE(g.rowLabels.back(), std::string("post"));
        QVERIFY(std::abs(g.at(g.rows - 1, g.columns - 1) - 1.0) < 1e-5);
        // The first layer's resid_pre at an unchanged position changes nothing.
        QVERIFY(std::abs(g.at(0, 0)) < 1e-6);
    }

    void featuresMatchTheReference() {
        for (const Fixture& f : fixtures_)
            for (size_t s = 0; s < f.saes.size(); ++s)
                for (auto dir : {cs::PatchDirection::Denoise, cs::PatchDirection::Noise})
                    for (auto metric : kMetrics) {
                        cs::PatchRequest r = request(f, cs::PatchSite::Features, dir, metric);
                        r.sae = cs::loadSae(f.saes[s]);
                        r.saeId = "sae" + std::to_string(s);
                        r.maxFeatures = 6;
                        const cs::PatchGrid g = cs::runActivationPatching(*f.model, r);
                        const std::string what = f.name + " features " + f.saes[s] + " " + cs::patchDirectionName(dir) +
                                                 " " + cs::patchMetricName(metric);
                        const Json& want = refCase(f, "features", cs::patchDirectionName(dir), s)["features"];
                        const double unpatched = dir == cs::PatchDirection::Denoise ? 0.0 : 1.0;
                        QVERIFY2(want.size() > 6, (what + ": the reference finds too few changed features").c_str());
                        QCOMPARE(g.rows, 6);
                        QCOMPARE(g.columns, int(kClean.size()));
                        QCOMPARE(g.rowAxis, std::string("feature"));
                        int cellsRun = 0;
                        for (const auto& [k, row] : want.items())
                            for (double v : row[cs::patchMetricName(metric)].get<std::vector<double>>()) cellsRun += v != unpatched;
                        QVERIFY(g.patchedRuns >= cellsRun);
                        // Each row's cells, and the choice of rows: no feature left out moves the metric more.
                        auto effect = [&](const Json& row) {
                            double e = 0;
                            for (double v : row[cs::patchMetricName(metric)].get<std::vector<double>>())
                                e = std::max(e, std::abs(v - unpatched));
                            return e;
                        };
                        double weakestKept = 1e9;
                        std::set<std::string> kept;
                        for (int row = 0; row < g.rows; ++row) {
                            const std::string key = std::to_string(g.rowFeature[row]);
                            QVERIFY2(want.contains(key), (what + ": feature " + key + " does not change in the reference").c_str());
                            kept.insert(key);
                            weakestKept = std::min(weakestKept, effect(want[key]));
                            const auto values = want[key][cs::patchMetricName(metric)].get<std::vector<double>>();
                            for (int c = 0; c < g.columns; ++c)
                                if (std::abs(g.at(row, c) - values[c]) > kTolerance)
                                    QFAIL((what + ": feature " + key + " at " + std::to_string(c) + " is " +
                                           std::to_string(g.at(row, c)) + ", reference " + std::to_string(values[c])).c_str());
                            QCOMPARE(g.rowLabels[row], "sae" + std::to_string(s) + " #" + key);
                        }
                        for (const auto& [k, row] : want.items())
                            if (!kept.count(k))
                                QVERIFY2(effect(row) <= weakestKept + kTolerance,
                                         (what + ": feature " + k + " moves the metric more than a kept row").c_str());
                        QVERIFY2(weakestKept > 1e-3, (what + ": the kept features do nothing").c_str());
                    }
    }

    void batchSizeDoesNotChangeResults() {
        const Fixture& f = fixtures_[1];
        cs::PatchRequest r = request(f, cs::PatchSite::HeadsByPosition, cs::PatchDirection::Noise, cs::PatchMetric::LogitDiff);
        r.batch = 1;
        const cs::PatchGrid one = cs::runActivationPatching(*f.model, r);
        QCOMPARE(one.forwardBatches, one.patchedRuns);
        r.batch = 5;
        const cs::PatchGrid five = cs::runActivationPatching(*f.model, r);
        QCOMPARE(five.forwardBatches, (five.patchedRuns + 4) / 5);
        r.batch = 0;
        const cs::PatchGrid automatic = cs::runActivationPatching(*f.model, r);
        QVERIFY(automatic.forwardBatches < automatic.patchedRuns);
        // Every run over the whole prompt, no keys and values reused from the target run.
        r.reusePrefix = false;
        const cs::PatchGrid whole = cs::runActivationPatching(*f.model, r);
        for (size_t i = 0; i < one.values.size(); ++i) {
            QVERIFY(std::abs(one.values[i] - five.values[i]) < 1e-5);
            QVERIFY(std::abs(one.values[i] - automatic.values[i]) < 1e-5);
            QVERIFY(std::abs(one.values[i] - whole.values[i]) < 1e-5);
        }
    }

    void badRequestsFailWithOneLine() {
        const Fixture& f = fixtures_[0];
        cs::PatchRequest r = request(f, cs::PatchSite::Resid, cs::PatchDirection::Denoise, cs::PatchMetric::LogitDiff);
        r.corruptedIds.pop_back();
        expectOneLineError([&] { cs::runActivationPatching(*f.model, r); }, {"8", "7", "same number of tokens"});
        r = request(f, cs::PatchSite::Features, cs::PatchDirection::Denoise, cs::PatchMetric::LogitDiff);
        expectOneLineError([&] { cs::runActivationPatching(*f.model, r); }, {"SAE"});
        r = request(f, cs::PatchSite::Resid, cs::PatchDirection::Denoise, cs::PatchMetric::LogitDiff);
        r.wrongId = r.answerId;
        expectOneLineError([&] { cs::runActivationPatching(*f.model, r); }, {"same token"});
        expectOneLineError([] { cs::parsePatchSite("neurons"); }, {"neurons", "resid", "heads-by-position", "features"});
        QCOMPARE(cs::parsePatchSite("heads-by-position"), cs::PatchSite::HeadsByPosition);
        QCOMPARE(cs::parsePatchMetric("kl"), cs::PatchMetric::KL);
        QCOMPARE(cs::parsePatchDirection("noise"), cs::PatchDirection::Noise);
    }

    void progressReportsAndCancels() {
        const Fixture& f = fixtures_[0];
        cs::PatchRequest r = request(f, cs::PatchSite::HeadsByPosition, cs::PatchDirection::Denoise, cs::PatchMetric::LogitDiff);
        r.batch = 4;
        std::vector<std::pair<int, int>> calls;
        r.progress = [&](int done, int total) {
            calls.emplace_back(done, total);
            return true;
        };
        const cs::PatchGrid g = cs::runActivationPatching(*f.model, r);
        QVERIFY(calls.size() >= 2);
        QCOMPARE(calls.back().first, g.patchedRuns);
        for (size_t i = 1; i < calls.size(); ++i) QVERIFY(calls[i].first > calls[i - 1].first);
        int seen = 0;
        r.progress = [&](int, int) { return ++seen < 3; };
        expectOneLineError([&] { cs::runActivationPatching(*f.model, r); }, {"cancelled"});
        QCOMPARE(seen, 3);
    }

    void cliJsonHasTheDocumentedFields() {
        const Fixture& f = fixtures_[0];  // GPT-2 with a byte-level tokenizer: one token per character
        const std::string dir = makeTempDir("patching-cli");
        std::string out;
        const std::string base = shellQuote(CS_CLI_PATH) + " --threads 1 patch --model " + shellQuote(f.dir) +
                                 " --clean 'abcdefg' --corrupted 'abXdeYg' --answer '#" + std::to_string(f.answer) +
                                 "' --wrong '#" + std::to_string(f.wrong) + "'";
        QCOMPARE(run(base + " --what heads --json 2>" + shellQuote(dir + "/err"), &out), 0);
        const Json j = Json::parse(out);
        for (const char* k : {"site", "direction", "metric", "clean_value", "corrupted_value", "clean_ids", "corrupted_ids",
                              "clean_tokens", "corrupted_tokens", "rows", "columns", "row_axis", "column_axis", "row_labels",
                              "column_labels", "row_layer", "row_head", "row_feature", "column_position", "values", "raw",
                              "patched_runs", "forward_batches", "seconds"})
            QVERIFY2(j.contains(k), k);
        QCOMPARE(j["site"].get<std::string>(), std::string("heads"));
        QCOMPARE(j["rows"].get<int>(), 2);
        QCOMPARE(j["columns"].get<int>(), 4);
        QCOMPARE(j["values"].size(), size_t(2));
        QCOMPARE(j["clean_tokens"][2].get<std::string>(), std::string("c"));
        QCOMPARE(j["corrupted_tokens"][2].get<std::string>(), std::string("X"));
        // The same numbers as the API on the same ids.
        cs::PatchRequest r = request(f, cs::PatchSite::Heads, cs::PatchDirection::Denoise, cs::PatchMetric::LogitDiff);
        r.cleanIds = j["clean_ids"].get<std::vector<int>>();
        r.corruptedIds = j["corrupted_ids"].get<std::vector<int>>();
        const cs::PatchGrid g = cs::runActivationPatching(*f.model, r);
        for (int row = 0; row < g.rows; ++row)
            for (int c = 0; c < g.columns; ++c) QVERIFY(std::abs(j["values"][row][c].get<double>() - g.at(row, c)) < 1e-6);

        // Readable output, and prompts of different lengths: one line naming both counts, exit 1.
        QCOMPARE(run(base + " --what resid --metric kl 2>" + shellQuote(dir + "/err"), &out), 0);
        QVERIFY(out.find("clean") != std::string::npos && out.find("post") != std::string::npos);
        const int rc = run(shellQuote(CS_CLI_PATH) + " patch --model " + shellQuote(f.dir) +
                               " --clean abcdefg --corrupted abcdef --answer '#1' --wrong '#2' 2>" + shellQuote(dir + "/err"),
                           &out);
        QCOMPARE(rc, 1);
        const std::string err = readFile(dir + "/err");
        QVERIFY2(err.find("7 tokens") != std::string::npos && err.find("6") != std::string::npos, err.c_str());
        QCOMPARE(std::count(err.begin(), err.end(), '\n'), 1L);
    }
};

QTEST_GUILESS_MAIN(TestPatching)
#include "test_patching.moc"
