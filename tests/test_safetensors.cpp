// safetensors reading and writing, cross-checked with an independent Python reader/writer, and
// fed corrupt files that must fail with a clear message.
#include "TestSupport.h"

#include "io/Safetensors.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QtTest>

using namespace cstest;

namespace {

std::string header(const std::string& json, const std::string& data) {
    std::string out(8, '\0');
    uint64_t n = json.size();
    std::memcpy(&out[0], &n, 8);
    return out + json + data;
}

void expectOpenFails(const std::string& bytes, const std::string& mustContain) {
    const std::string path = makeTempDir("st-bad") + "/bad.safetensors";
    writeFile(path, bytes);
    try {
        auto f = cs::SafetensorsFile::open(path);
        for (const auto& [name, info] : f->tensors()) f->load(name);
    } catch (const cs::Error& e) {
        const std::string msg = e.what();
        QVERIFY2(msg.find(path) != std::string::npos, ("message does not name the file: " + msg).c_str());
        QVERIFY2(msg.find(mustContain) != std::string::npos,
                 ("message '" + msg + "' does not mention '" + mustContain + "'").c_str());
        return;
    }
    QFAIL(("no error for a file that should mention '" + mustContain + "'").c_str());
}

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void readsWhatPythonWrote() {
        const std::string dir = makeTempDir("st-py");
        auto expected = nlohmann::json::parse(runReference("st_roundtrip.py", "write " + shellQuote(dir)));
        for (const std::string dt : {"F32", "F16", "BF16"}) {
            std::string lower = dt;
            for (auto& c : lower) c = static_cast<char>(std::tolower(c));
            auto f = cs::SafetensorsFile::open(dir + "/" + lower + ".safetensors");
            QCOMPARE(f->metadata().at("format"), std::string("pt"));
            for (auto it = expected[dt].begin(); it != expected[dt].end(); ++it) {
                at::Tensor t = f->load(it.key());
                QCOMPARE(t.scalar_type(), at::kFloat);
                QCOMPARE(t.sizes().vec(), it.value()["shape"].get<std::vector<int64_t>>());
                std::vector<double> want = it.value()["data"].get<std::vector<double>>();
                at::Tensor w = at::tensor(want, at::kDouble).view(t.sizes());
                // Exact: an F16/BF16 value widened to F32 is representable exactly.
                QCOMPARE((t.to(at::kDouble) - w).abs().max().item<double>(), 0.0);
            }
        }
    }

    void pythonReadsWhatWeWrote() {
        const std::string path = makeTempDir("st-ours") + "/ours.safetensors";
        at::Tensor a = at::arange(12, at::kFloat).view({3, 4}) / 7.0;
        at::Tensor ids = at::arange(5, at::kLong) * 1000;
        cs::writeSafetensors(path, {{"W_enc", a}, {"ids", ids}}, {{"k", "v"}});
        auto got = nlohmann::json::parse(runReference("st_roundtrip.py", "read " + shellQuote(path)));
        QCOMPARE(got["W_enc"]["shape"].get<std::vector<int64_t>>(), (std::vector<int64_t>{3, 4}));
        std::vector<double> w = got["W_enc"]["data"].get<std::vector<double>>();
        for (int i = 0; i < 12; ++i) QCOMPARE(w[i], static_cast<double>(static_cast<float>(i / 7.0)));
        QCOMPARE(got["ids"]["data"][4].get<double>(), 4000.0);
        // and back through our reader, F16 storage rounding as IEEE half does
        cs::writeSafetensors(path, {{"x", at::tensor({1.0f, 1.0f / 3.0f, 65504.0f})}}, {}, cs::DType::F16);
        auto f = cs::SafetensorsFile::open(path);
        QCOMPARE(f->info("x").dtype, cs::DType::F16);
        at::Tensor x = f->load("x");
        QCOMPARE(x[1].item<float>(), static_cast<float>(at::Half(1.0f / 3.0f)));
        QCOMPARE(x[2].item<float>(), 65504.0f);
    }

    void zeroCopyForAlignedF32() {
        const std::string path = makeTempDir("st-map") + "/m.safetensors";
        cs::writeSafetensors(path, {{"w", at::ones({64, 64})}});
        auto f = cs::SafetensorsFile::open(path);
        at::Tensor t = f->load("w");
        f.reset();  // the tensor must keep the mapping alive on its own
        QCOMPARE(t.sum().item<float>(), 4096.0f);
    }

    void rejectsCorruptFiles() {
        expectOpenFails("abc", "shorter than");
        expectOpenFails(header("{}", "").substr(0, 4) + std::string("\xff\xff\xff\xff", 4), "past the end");
        expectOpenFails(header("{not json", ""), "not valid JSON");
        expectOpenFails(header("[1,2]", ""), "not a JSON object");
        expectOpenFails(header(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
                        "unsupported dtype 'F99'");
        expectOpenFails(header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0')),
                        "past the end of the data");
        expectOpenFails(header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
                        "needs 12");
        expectOpenFails(header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')),
                        "negative");
        expectOpenFails(header(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "'dtype'");
        expectOpenFails(header(R"({"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
                        "expected a float type");
    }

    void shardedIndexErrors() {
        const std::string dir = makeTempDir("st-shard");
        cs::writeSafetensors(dir + "/a.safetensors", {{"x", at::ones({2})}});
        writeFile(dir + "/model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
        try {
            cs::WeightStore::openModelDir(dir);
            QFAIL("a missing shard was accepted");
        } catch (const cs::Error& e) {
            QVERIFY2(std::string(e.what()).find("b.safetensors") != std::string::npos, e.what());
        }
        writeFile(dir + "/model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors"}})");
        auto ws = cs::WeightStore::openModelDir(dir);
        QCOMPARE(ws.load("x").sum().item<float>(), 2.0f);
        writeFile(dir + "/model.safetensors.index.json", R"({"weight_map":{"x":"../a.safetensors"}})");
        QVERIFY_THROWS_EXCEPTION(cs::Error, cs::WeightStore::openModelDir(dir));
    }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
