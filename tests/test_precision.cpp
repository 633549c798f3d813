// 16-bit weights: bf16 and f16 checkpoints stay 16-bit in memory (a view of the file for bf16),
// fp32 checkpoints convert on request, and the logits stay within a documented distance of the
// float64 reference (tests/reference/ref_transformer.py) and of the fp32 run.
//
// Tolerances (docs/formats.md, "Weight precision"): with bf16 matrices every matmul input is
// rounded to 8 bits of mantissa (relative error 2^-9), so logits move by a few parts in a thousand
// of their spread. The checks below bound the worst logit error by 1% of the reference logits'
// range and require the same top-1 token at (nearly) every position.
#include "TestSupport.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <QtTest>

#include <cinttypes>
#include <cstdio>
#include <fstream>

using namespace cstest;

namespace {

const std::vector<long> kTokens = {1, 7, 33, 2, 90, 41, 5, 77, 12, 64, 3, 19};

std::string tokensArg() {
    std::string s;
    for (long t : kTokens) s += (s.empty() ? "" : ",") + std::to_string(t);
    return s;
}

std::string makeModel(const std::string& arch, const std::string& dtype, const std::string& tag) {
    const std::string dir = makeTempDir("prec-" + tag);
    const std::string kv = arch == "gpt2" ? "" : " --kv-heads 2";
    runReference("make_random_model.py", "--arch " + arch + " --seed 5 --layers 2 --d-model 64 --heads 4" + kv +
                                             " --vocab 128 --ctx 32 --dtype " + dtype + " --out " + shellQuote(dir));
    return dir;
}

// Reference logits [T][vocab] in float64 from the file's own (rounded) values.
std::vector<std::vector<double>> referenceLogits(const std::string& dir) {
    const std::string out = makeTempDir("prec-ref") + "/r.json";
    runReference("ref_transformer.py", "--model " + shellQuote(dir) + " --tokens " + tokensArg() + " --out " + shellQuote(out));
    return nlohmann::json::parse(readFile(out))["logits"][0].get<std::vector<std::vector<double>>>();
}

at::Tensor ourLogits(const cs::Transformer& m) {
    c10::InferenceMode g;
    return m.forward(at::tensor(kTokens, at::kLong).unsqueeze(0))[0].to(at::kDouble);
}

struct Distance {
    double worst = 0;     // max |ours - ref|
    double range = 0;     // max - min of the reference
    int top1Mismatch = 0;
};

Distance distance(const at::Tensor& ours, const std::vector<std::vector<double>>& ref) {
    Distance d;
    double lo = 1e300, hi = -1e300;
    for (size_t t = 0; t < ref.size(); ++t) {
        long best = 0;
        for (size_t v = 0; v < ref[t].size(); ++v) {
            lo = std::min(lo, ref[t][v]);
            hi = std::max(hi, ref[t][v]);
            d.worst = std::max(d.worst, std::abs(ours[t][v].item<double>() - ref[t][v]));
            if (ref[t][v] > ref[t][best]) best = static_cast<long>(v);
        }
        if (ours[t].argmax().item<long>() != best) ++d.top1Mismatch;
    }
    d.range = hi - lo;
    return d;
}

at::Tensor toTensor(const std::vector<std::vector<double>>& ref) {
    at::Tensor t = at::empty({static_cast<long>(ref.size()), static_cast<long>(ref[0].size())}, at::kDouble);
    for (size_t i = 0; i < ref.size(); ++i)
        for (size_t j = 0; j < ref[i].size(); ++j) t[i][j] = ref[i][j];
    return t;
}

// The path of the mapping that holds `p`, from /proc/self/maps ("" when anonymous or not found).
std::string mappingOf(const void* p) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const auto addr = reinterpret_cast<uintptr_t>(p);
    while (std::getline(maps, line)) {
        uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2) continue;
        if (addr < lo || addr >= hi) continue;
        const size_t slash = line.find('/');
        return slash == std::string::npos ? "" : line.substr(slash);
    }
    return "";
}

}  // namespace

class TestPrecision : public QObject {
    Q_OBJECT
    std::string f32_, bf16_, f16_;

private Q_SLOTS:
    void initTestCase() {
        f32_ = makeModel("gpt2", "f32", "f32");
        bf16_ = makeModel("gpt2", "bf16", "bf16");
        f16_ = makeModel("gpt2", "f16", "f16");
    }

    // A bf16 file is held as bf16 views of the mapped file: no fp32 copy, no second copy.
    void bf16FileStaysBf16InTheMap() {
        auto m = cs::loadModel(bf16_);
        QCOMPARE(m->config().weightDtype, std::string("bf16"));
        const cs::ModelWeights& w = m->weights();
        QCOMPARE(w.tokEmbed.scalar_type(), at::kBFloat16);
        QCOMPARE(w.blocks[0].wQkv.scalar_type(), at::kBFloat16);
        QCOMPARE(w.blocks[1].wDown.scalar_type(), at::kBFloat16);
        QCOMPARE(w.blocks[0].ln1W.scalar_type(), at::kFloat);  // vectors are held in fp32
        for (const at::Tensor* t : {&w.tokEmbed, &w.blocks[0].wQkv, &w.blocks[1].wUp}) {
            const std::string where = mappingOf(t->data_ptr());
            QVERIFY2(where.size() >= 17 && where.compare(where.size() - 17, 17, "model.safetensors") == 0,
                     ("a weight lives outside the mapped file: '" + where + "'").c_str());
        }
        // Held bytes: the matrices at 2 bytes, the vectors at 4.
        const cs::ModelFootprint f = cs::modelFootprint(bf16_);
        QVERIFY(m->config().weightBytes <= f.fileBytes * 11 / 10);
        QVERIFY(m->config().weightBytes >= f.fileBytes * 9 / 10);
    }

    void bf16LogitsAgainstReference() {
        auto m = cs::loadModel(bf16_);
        const auto ref = referenceLogits(bf16_);
        const Distance d = distance(ourLogits(*m), ref);
        qInfo("bf16 file: worst logit error %.4g of a range %.4g (%.2f%%), top-1 mismatches %d/%zu", d.worst, d.range,
              100 * d.worst / d.range, d.top1Mismatch, kTokens.size());
        QVERIFY2(d.worst < 0.01 * d.range, std::to_string(d.worst).c_str());
        QVERIFY(d.top1Mismatch <= 1);
        // Not trivially close: the fp32-held copy of the same file matches to fp32 precision, so
        // the bf16 run's distance is the bf16 arithmetic, and would show a broken path.
        cs::ModelLoadOptions f32;
        f32.precision = cs::WeightPrecision::F32;
        auto exact = cs::loadModel(bf16_, f32);
        QCOMPARE(exact->config().weightDtype, std::string("f32"));
        const Distance e = distance(ourLogits(*exact), ref);
        QVERIFY2(e.worst < 1e-4, std::to_string(e.worst).c_str());
        QCOMPARE(e.top1Mismatch, 0);
    }

    // An f16 file: LibTorch has no CPU half matmul, so its matrices are held as bf16 (16 bits).
    void f16FileHeldAs16Bit() {
        auto m = cs::loadModel(f16_);
        QCOMPARE(m->config().weightDtype, std::string("bf16"));
        QCOMPARE(m->weights().blocks[0].wO.scalar_type(), at::kBFloat16);
        const Distance d = distance(ourLogits(*m), referenceLogits(f16_));
        QVERIFY2(d.worst < 0.01 * d.range, std::to_string(d.worst).c_str());
        QVERIFY(d.top1Mismatch <= 1);
    }

    // `--dtype bf16` on an fp32 file against the fp32 run of the same file.
    void fp32FileLoadedAsBf16() {
        cs::ModelLoadOptions o;
        o.precision = cs::WeightPrecision::BF16;
        auto m = cs::loadModel(f32_, o);
        auto full = cs::loadModel(f32_);
        QCOMPARE(full->config().weightDtype, std::string("f32"));
        QCOMPARE(m->config().weightDtype, std::string("bf16"));
        QVERIFY(m->config().weightBytes < full->config().weightBytes * 6 / 10);
        const auto ref = referenceLogits(f32_);
        const Distance exact = distance(ourLogits(*full), ref);
        QVERIFY2(exact.worst < 1e-4, std::to_string(exact.worst).c_str());
        const Distance d = distance(ourLogits(*m), ref);
        qInfo("fp32 file as bf16: worst logit error %.4g of a range %.4g (%.2f%%), top-1 mismatches %d", d.worst, d.range,
              100 * d.worst / d.range, d.top1Mismatch);
        QVERIFY2(d.worst < 0.01 * d.range, std::to_string(d.worst).c_str());
        QVERIFY(d.worst > 1e-5);  // it really ran in bf16
        QVERIFY(d.top1Mismatch <= 1);
    }

    // Llama layout (nn.Linear [out, in] matrices, RoPE, grouped-query attention) in bf16.
    void llamaBf16AgainstReference() {
        const std::string dir = makeModel("llama", "bf16", "llama-bf16");
        auto m = cs::loadModel(dir);
        QCOMPARE(m->weights().blocks[0].wQ.scalar_type(), at::kBFloat16);
        const Distance d = distance(ourLogits(*m), referenceLogits(dir));
        QVERIFY2(d.worst < 0.01 * d.range, std::to_string(d.worst).c_str());
        QVERIFY(d.top1Mismatch <= 1);
    }

    // Decoding with the KV cache in bf16 picks what a full recomputation in bf16 picks.
    void bf16KvCacheMatchesRecomputation() {
        auto m = cs::loadModel(bf16_);
        cs::SamplingOptions s;
        s.maxNewTokens = 12;
        s.stopAtEos = false;
        const std::vector<long> prompt = {3, 9, 27};
        const std::vector<long> cached = cs::generate(*m, prompt, s);
        QCOMPARE(cached.size(), size_t(12));
        std::vector<long> seq = prompt;
        c10::InferenceMode g;
        for (size_t i = 0; i < cached.size(); ++i) {
            at::Tensor logits = m->forward(at::tensor(seq, at::kLong).unsqueeze(0));
            const long next = logits[0][static_cast<long>(seq.size()) - 1].argmax().item<long>();
            QCOMPARE(cached[i], next);
            seq.push_back(next);
        }
    }

    // Attribution and fine-tuning take gradients on an fp32 copy, whatever the model holds.
    void autogradCopyIsFp32() {
        auto m = cs::loadModel(bf16_);
        auto copy = cs::autogradCopy(*m);
        QCOMPARE(copy->weights().blocks[0].wQkv.scalar_type(), at::kFloat);
        QCOMPARE(copy->config().weightDtype, std::string("f32"));
        const at::Tensor a = ourLogits(*copy), b = toTensor(referenceLogits(bf16_));
        QVERIFY((a - b).abs().max().item<double>() < 1e-4);
    }

    // A model that does not fit is refused before a weight is read, naming the directory and sizes.
    void tooLargeIsRefusedUpFront() {
        cs::ModelLoadOptions o;
        o.availableBytes = 1000;
        expectOneLineError([&] { cs::loadModel(f32_, o); }, {f32_, "available", "--dtype bf16"});
        o.precision = cs::WeightPrecision::BF16;
        expectOneLineError([&] { cs::loadModel(bf16_, o); }, {bf16_, "available"});
        const cs::ModelFootprint a = cs::modelFootprint(f32_), b = cs::modelFootprint(f32_, o);
        QVERIFY(b.residentBytes < a.residentBytes * 6 / 10);
        QVERIFY(a.availableBytes > 0);  // read from /proc/meminfo
        o.availableBytes = size_t(64) << 30;
        QVERIFY(cs::loadModel(f32_, o) != nullptr);
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::parseWeightPrecision("f8"));
    }

    // The command line's --dtype reaches the loader.
    void commandLineDtype() {
        std::string out32, out16;
        const std::string base = shellQuote(CS_CLI_PATH) + " --threads 2 forward --model " + shellQuote(f32_) +
                                 " --tokens " + tokensArg() + " --json";
        QCOMPARE(run(base + " 2>&1", &out32), 0);
        QCOMPARE(run(base + " --dtype bf16 2>&1", &out16), 0);
        const auto a = nlohmann::json::parse(out32)["logits"], b = nlohmann::json::parse(out16)["logits"];
        double worst = 0;
        for (size_t t = 0; t < a.size(); ++t)
            for (size_t v = 0; v < a[t].size(); ++v)
                worst = std::max(worst, std::abs(a[t][v].get<double>() - b[t][v].get<double>()));
        QVERIFY2(worst > 1e-5 && worst < 1.0, std::to_string(worst).c_str());
        std::string bad;
        QVERIFY(run(base + " --dtype f8 2>&1", &bad) != 0);
        QVERIFY2(bad.find("--dtype") != std::string::npos, bad.c_str());
    }
};

QTEST_GUILESS_MAIN(TestPrecision)
#include "test_precision.moc"
