// The headless commands, run as a user would run them: output formats, agreement with the
// reference, and one-line errors with a non-zero exit for bad input.
#include "TestSupport.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <set>

using namespace cstest;

namespace {

struct Result {
    int rc;
    std::string out;
};

Result cli(const std::string& args) {
    Result r;
    r.rc = run(shellQuote(CS_CLI_PATH) + " --threads 2 " + args + " 2>&1", &r.out);
    return r;
}

void expectError(const std::string& args, const std::string& mustContain) {
    Result r = cli(args);
    QVERIFY2(r.rc != 0, ("exit 0 for bad input: " + args).c_str());
    QVERIFY2(r.out.find("error: ") != std::string::npos, ("no error line: " + r.out).c_str());
    QVERIFY2(r.out.find(mustContain) != std::string::npos,
             ("'" + r.out + "' does not mention '" + mustContain + "'").c_str());
    // one line, no backtrace
    QVERIFY2(std::count(r.out.begin(), r.out.end(), '\n') <= 1, ("more than one line: " + r.out).c_str());
}

}  // namespace

class TestCli : public QObject {
    Q_OBJECT
    std::string model_;

private Q_SLOTS:
    void initTestCase() {
        model_ = makeTempDir("cli");
        runReference("make_random_model.py", "--arch gpt2 --seed 21 --layers 2 --d-model 32 --heads 2 --vocab 60 --ctx 16 --out " + shellQuote(model_));
    }

    void forwardMatchesReference() {
        Result r = cli("forward --model " + shellQuote(model_) + " --tokens 1,2,3,4 --json");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out);
        QCOMPARE(j["tokens"].get<std::vector<long>>(), (std::vector<long>{1, 2, 3, 4}));
        QCOMPARE(j["logits"].size(), size_t(4));
        QCOMPARE(j["logits"][0].size(), size_t(60));
        const std::string out = makeTempDir("cli-ref") + "/r.json";
        runReference("ref_transformer.py", "--model " + shellQuote(model_) + " --tokens 1,2,3,4 --out " + shellQuote(out));
        auto ref = nlohmann::json::parse(readFile(out))["logits"][0];
        double worst = 0;
        for (int t = 0; t < 4; ++t)
            for (int v = 0; v < 60; ++v)
                worst = std::max(worst, std::abs(j["logits"][t][v].get<double>() - ref[t][v].get<double>()));
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());

        r = cli("forward --model " + shellQuote(model_) + " --tokens 1,2,3,4 --json --top 3");
        QCOMPARE(r.rc, 0);
        j = nlohmann::json::parse(r.out);
        QCOMPARE(j["logits"][3].size(), size_t(3));
        // the top entry is the reference's argmax
        long best = 0;
        for (int v = 1; v < 60; ++v)
            if (ref[3][v].get<double>() > ref[3][best].get<double>()) best = v;
        QCOMPARE(j["logits"][3][0]["id"].get<long>(), best);
    }

    void generateGreedyMatchesReference() {
        Result r = cli("generate --model " + shellQuote(model_) + " --tokens 5,6 --max-new 8 --greedy --ignore-eos --json");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out);
        const std::string out = makeTempDir("cli-gen") + "/r.json";
        runReference("ref_transformer.py", "--model " + shellQuote(model_) + " --tokens 5,6 --generate 8 --out " + shellQuote(out));
        auto ref = nlohmann::json::parse(readFile(out));
        QCOMPARE(j["prompt_tokens"].get<std::vector<long>>(), (std::vector<long>{5, 6}));
        QCOMPARE(j["new_tokens"].get<std::vector<long>>(), ref["generated"].get<std::vector<long>>());
        // sampling is reproducible by seed
        const std::string samp = "generate --model " + shellQuote(model_) + " --tokens 5,6 --max-new 8 --temperature 1.5 --seed 3 --json";
        QCOMPARE(cli(samp).out, cli(samp).out);
    }

    void hooksListsEveryPoint() {
        Result r = cli("hooks --model " + shellQuote(model_) + " --json");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out);
        std::set<std::string> names;
        for (const auto& h : j) names.insert(h["name"].get<std::string>());
        for (const char* n : {"hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern",
                              "blocks.1.hook_resid_post", "blocks.0.mlp.hook_post", "ln_final.hook_normalized"})
            QVERIFY2(names.count(n), n);
        QVERIFY(!names.count("blocks.2.hook_resid_pre"));
    }

    void tokenizeWithRealGpt2Files() {
        const std::string shared = sharedDir();
        if (shared.empty()) QSKIP("../shared absent: skipping CLI tokenize with the real GPT-2 files");
        const std::string dir = shared + "/fixtures/gpt2-tokenizer";
        const std::string text = "Hello world, it's 2026!\n  Circuitscope";
        Result r = cli("tokenize --tokenizer " + shellQuote(dir) + " --text " + shellQuote(text) + " --json");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out);
        const std::string in = makeTempDir("cli-tok") + "/in.json";
        writeFile(in, nlohmann::json::array({text}).dump());
        auto ref = nlohmann::json::parse(runReference("ref_gpt2_bpe.py", "--dir " + shellQuote(dir) + " --input " + shellQuote(in)));
        QCOMPARE(j["ids"].get<std::vector<int>>(), ref[0].get<std::vector<int>>());
        QCOMPARE(j["pieces"][0].get<std::string>(), std::string("Hello"));
        QCOMPARE(j["pieces"][1].get<std::string>(), std::string("\xC4\xA0world"));  // "Ġworld"
    }

    void featuresOnTheDemoBundle() {
        // The demo bundle is part of the repository (resources/demo), so this needs no ../shared.
        Result r = cli("features --model demo --prompt " + shellQuote("Once upon a time, there was a little girl") +
                       " --top 5 --json");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
        const size_t T = j["tokens"].size();
        QVERIFY(T > 5);
        QCOMPARE(j["tokens"][0].get<long>(), 1L);  // BOS, as the demo's SentencePiece model says
        // Every residual SAE and transcoder the README lists, so a bundle missing one fails here.
        std::vector<std::string> ids;
        for (const auto& sae : j["saes"]) ids.push_back(sae["id"].get<std::string>());
        QCOMPARE(ids, (std::vector<std::string>{"res-L0", "res-L1", "res-L2", "res-L3", "tc-L0", "tc-L1", "tc-L2", "tc-L3"}));
        int nonEmpty = 0;
        for (const auto& sae : j["saes"]) {
            QCOMPARE(sae["positions"].size(), T);
            for (const auto& pos : sae["positions"]) {
                QVERIFY(pos.size() <= 5);
                double prev = 1e30;
                for (const auto& e : pos) {
                    const double a = e["activation"].get<double>();
                    QVERIFY(a > 0 && a <= prev);  // positive, descending
                    prev = a;
                }
                nonEmpty += pos.empty() ? 0 : 1;
            }
        }
        QVERIFY(nonEmpty > static_cast<int>(T));
        // An explicit --sae gives the same numbers for that SAE as the default set.
        const std::string one = sourceDir() + "/resources/demo/saes/res-L2";
        Result r2 = cli("features --model demo --sae " + shellQuote(one) + " --prompt " +
                        shellQuote("Once upon a time, there was a little girl") + " --top 5 --json");
        QCOMPARE(r2.rc, 0);
        auto j2 = nlohmann::json::parse(r2.out.substr(r2.out.find('{')));
        QCOMPARE(j2["saes"].size(), size_t(1));
        for (const auto& sae : j["saes"])
            if (sae["id"] == "res-L2") QCOMPARE(sae["positions"].dump(), j2["saes"][0]["positions"].dump());
        expectError("features --model demo --sae /nonexistent/sae --tokens 1,2", "/nonexistent/sae");
    }

    // eval-sae re-measures a saved SAE on any text: on story-like text the demo's layer-1 SAE
    // must reconstruct well and the spliced model must sit between the clean and the ablated one.
    void evalSaeOnTheDemoBundle() {
        const std::string corpus = makeTempDir("cli-eval-sae") + "/stories.txt";
        std::string text;
        const char* names[] = {"Lily", "Tom", "Sue", "Max"};
        const char* things[] = {"a red ball", "a big dog", "a little cat", "a shiny toy"};
        for (int i = 0; i < 24; ++i)
            text += std::string("Once upon a time, there was a little girl named ") + names[i % 4] +
                    ". She had " + things[(i / 4) % 4] + ". Every day she played in the park with her mom. "
                    "One day, she saw a bird in the tree and she was very happy.\n";
        writeFile(corpus, text);
        const std::string sae = sourceDir() + "/resources/demo/saes/res-L1";
        Result r = cli("eval-sae --model demo --sae " + shellQuote(sae) + " --corpus " + shellQuote(corpus) +
                       " --held-out 1 --tokens 1024");
        QCOMPARE(r.rc, 0);
        auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
        QCOMPARE(j["eval_tokens"].get<long>(), 1024L);
        const double l0 = j["l0"].get<double>(), fve = j["variance_explained"].get<double>();
        QVERIFY2(l0 > 10 && l0 <= 16, std::to_string(l0).c_str());  // TopK with k = 16
        QVERIFY2(fve > 0.8 && fve < 1, std::to_string(fve).c_str());
        const double clean = j["ce_clean"].get<double>(), spliced = j["ce_spliced"].get<double>();
        QVERIFY(clean < spliced && spliced < j["ce_zero_ablated"].get<double>());
        QVERIFY(std::abs(j["ce_increase"].get<double>() - (spliced - clean)) < 1e-9);
        expectError("eval-sae --model demo --sae /nonexistent/sae --corpus " + shellQuote(corpus), "/nonexistent/sae");
        expectError("eval-sae --model demo --sae " + shellQuote(sae) + " --corpus /nonexistent/text.txt", "/nonexistent/text.txt");
    }

    // export renders the GUI's own views headless; the files are real PNG / SVG / PDF.
    void exportWritesFigures() {
        const std::string dir = makeTempDir("cli-export-model");
        runReference("make_random_model.py", "--arch gpt2 --seed 22 --layers 2 --d-model 32 --heads 2 --vocab 256 --ctx 32 --out " + shellQuote(dir));
        writeByteLevelTokenizer(dir);
        const std::string out = makeTempDir("cli-export");
        const std::string m = "export --model " + shellQuote(dir) + " --prompt 'Hello world' ";
        Result r = cli(m + "--view attention --layer 1 --head 1 --out " + shellQuote(out + "/a.svg"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        const std::string svg = readFile(out + "/a.svg");
        QVERIFY(svg.find("<svg") != std::string::npos && svg.find("</svg>") != std::string::npos);
        QVERIFY(svg.find("attention weight") != std::string::npos);  // the colour scale's label, as text
        r = cli(m + "--view logit-lens --out " + shellQuote(out + "/l.pdf"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        QCOMPARE(readFile(out + "/l.pdf").substr(0, 5), std::string("%PDF-"));
        r = cli(m + "--view tokens --new-tokens 4 --out " + shellQuote(out + "/t.png"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        QCOMPARE(readFile(out + "/t.png").substr(1, 3), std::string("PNG"));
        // The data behind a figure, as JSON, against the independent reference.
        r = cli(m + "--view attention --layer 1 --head 1 --out " + shellQuote(out + "/a.json"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        auto data = nlohmann::json::parse(readFile(out + "/a.json"));
        std::string ids;
        for (const auto& id : data["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
        runReference("ref_analysis.py", "--model " + shellQuote(dir) + " --tokens " + ids + " --track 111 --out " + shellQuote(out + "/ref.json"));
        auto ref = nlohmann::json::parse(readFile(out + "/ref.json"));
        const auto& pattern = data["attention"]["pattern"];
        QCOMPARE(pattern.size(), data["ids"].size());
        double worst = 0;
        for (size_t q = 0; q < pattern.size(); ++q)
            for (size_t k = 0; k < pattern.size(); ++k)
                worst = std::max(worst, std::abs(pattern[q][k].get<double>() - ref["attention"][1][1][q][k].get<double>()));
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());
        // The logit lens tracking one token ("o", id 111), typed as on screen.
        r = cli(m + "--view logit-lens --lens-token o --out " + shellQuote(out + "/l.json"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        auto lens = nlohmann::json::parse(readFile(out + "/l.json"));
        QCOMPARE(lens["lens_tracked"]["id"].get<int>(), 111);
        const auto& tracked = lens["lens_tracked"]["probability"];
        QCOMPARE(tracked.size(), ref["lens_track"].size());
        worst = 0;
        for (size_t row = 0; row < tracked.size(); ++row)
            for (size_t t = 0; t < tracked[row].size(); ++t)
                worst = std::max(worst, std::abs(tracked[row][t].get<double>() - ref["lens_track"][row][t].get<double>()));
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());
        expectError(m + "--view logit-lens --lens-token 'two words' --out " + shellQuote(out + "/x.png"), "--lens-token");
        expectError(m + "--view attention --layer 7 --out " + shellQuote(out + "/x.svg"), "--layer 7");
        expectError(m + "--view attention --out " + shellQuote(out + "/x.bmp"), "x.bmp");
        expectError("export --model /nonexistent/model --prompt hi --view tokens --out " + shellQuote(out + "/x.png"), "/nonexistent/model");
    }

    // A model without a tokenizer exports from token ids, the attention as the reference has it.
    void exportTakesTokenIds() {
        const std::string out = makeTempDir("cli-export-ids");
        const std::string m = "export --model " + shellQuote(model_) + " --view attention --layer 1 --head 0 ";
        Result r = cli(m + "--tokens 3,7,9,41 --out " + shellQuote(out + "/a.json"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        auto data = nlohmann::json::parse(readFile(out + "/a.json"));
        QCOMPARE(data["ids"].dump(), std::string("[3,7,9,41]"));
        runReference("ref_analysis.py", "--model " + shellQuote(model_) + " --tokens 3,7,9,41 --track 5 --out " + shellQuote(out + "/ref.json"));
        auto ref = nlohmann::json::parse(readFile(out + "/ref.json"));
        double worst = 0;
        for (size_t q = 0; q < 4; ++q)
            for (size_t k = 0; k < 4; ++k)
                worst = std::max(worst, std::abs(data["attention"]["pattern"][q][k].get<double>() -
                                                 ref["attention"][1][0][q][k].get<double>()));
        QVERIFY2(worst < 1e-4, std::to_string(worst).c_str());
        r = cli(m + "--tokens 3,7 --out " + shellQuote(out + "/a.svg"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        QVERIFY(readFile(out + "/a.svg").find("#7") != std::string::npos);  // ids label the axes
        expectError(m + "--prompt hi --out " + shellQuote(out + "/x.json"), "token ids");
        expectError(m + "--tokens 3,99 --out " + shellQuote(out + "/x.json"), "#99");
    }

    // export --view steering draws what `steer` computes: the same baseline and steered
    // continuation, with the setting's rows; its JSON says which steered tokens are not in the
    // baseline. Greedy on the demo, so both commands must agree token for token.
    void exportSteeringMatchesSteer() {
        const std::string out = makeTempDir("cli-export-steering");
        const std::string prompt = "Once upon a time, there was a little girl";
        const std::string args = " --model demo --prompt " + shellQuote(prompt) +
                                 " --max-new 16 --steer res-L2/35:ablate --steer res-L2/100:add=10";
        Result s = cli("steer" + args + " --json");
        QVERIFY2(s.rc == 0, s.out.c_str());
        const auto ref = nlohmann::json::parse(s.out.substr(s.out.find('{')));
        Result r = cli("export --view steering" + args + " --out " + shellQuote(out + "/c.json"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        const auto j = nlohmann::json::parse(readFile(out + "/c.json"));
        QCOMPARE(j["prompt"].get<std::string>(), prompt);
        QCOMPARE(j["prompt_tokens"].dump(), ref["prompt_tokens"].dump());
        QCOMPARE(j["baseline"]["new_tokens"].dump(), ref["baseline"]["new_tokens"].dump());
        QCOMPARE(j["baseline"]["text"].get<std::string>(), ref["baseline"]["text"].get<std::string>());
        QCOMPARE(j["settings"].size(), size_t(1));
        const auto& set = j["settings"][0];
        QCOMPARE(set["rows"].get<std::vector<std::string>>(), (std::vector<std::string>{"res-L2/35:ablate", "res-L2/100:add=10"}));
        QVERIFY(set["condition"].is_null());
        QCOMPARE(set["text"].get<std::string>(), ref["steered"]["text"].get<std::string>());
        QCOMPARE(set["new_tokens"].dump(), ref["steered"]["new_tokens"].dump());
        // These rows change the continuation: were they dropped, the test would see it here.
        const auto base = j["baseline"]["new_tokens"].get<std::vector<long>>();
        const auto steered = set["new_tokens"].get<std::vector<long>>();
        QCOMPARE(steered.size(), size_t(16));
        QVERIFY(steered != base);
        const auto differs = set["differs"].get<std::vector<bool>>();
        QCOMPARE(differs.size(), steered.size());
        QVERIFY(std::count(differs.begin(), differs.end(), true) > 0);
        // An unmarked token is one the baseline has too; the shared prefix is never marked.
        for (size_t i = 0; i < steered.size(); ++i)
            if (!differs[i]) QVERIFY(std::find(base.begin(), base.end(), steered[i]) != base.end());
        size_t prefix = 0;
        while (prefix < base.size() && base[prefix] == steered[prefix]) ++prefix;
        for (size_t i = 0; i < prefix; ++i) QVERIFY(!differs[i]);
        QCOMPARE(set["token_texts"].size(), steered.size());

        // The figure, as vector text: the rows and every word-like token of the continuation.
        r = cli("export --view steering" + args + " --out " + shellQuote(out + "/c.svg"));
        QVERIFY2(r.rc == 0, r.out.c_str());
        const std::string svg = readFile(out + "/c.svg");
        QVERIFY(svg.find("<svg") != std::string::npos && svg.find("</svg>") != std::string::npos);
        QVERIFY(svg.find("res-L2/100:add=10") != std::string::npos);
        int words = 0;
        for (const auto& t : set["token_texts"]) {
            std::string w = t.get<std::string>();
            w.erase(0, w.find_first_not_of(' '));
            if (w.size() < 2 || !std::all_of(w.begin(), w.end(), [](unsigned char c) { return std::isalpha(c); })) continue;
            QVERIFY2(svg.find(w) != std::string::npos, ("the SVG lacks '" + w + "'").c_str());
            ++words;
        }
        QVERIFY(words >= 5);

        const std::string bare = "export --model demo --view steering --prompt hi --max-new 2 --out " + shellQuote(out + "/x.json");
        expectError(bare, "--steer");
        expectError(bare + " --steer res-L2/35:explode", "explode");
        expectError(bare + " --steer res-L9/3:add=1", "res-L9");
        expectError(bare + " --steer res-L2/99999:add=1", "out of range");
        expectError("export --model demo --view tokens --prompt hi --steer res-L2/1:add=1 --out " + shellQuote(out + "/x.png"), "--view steering");
    }

    // The GUI launched with --session FILE runs that session's prompt and settings (Qt itself
    // claims "--session" for X11 session management, so this goes through the real binary).
    void guiOpensASessionFromTheCommandLine() {
        const std::string home = makeTempDir("cli-gui-config");
        const std::string file = home + "/s.csession";
        const std::string demoModel = sourceDir() + "/resources/demo/model";
        writeFile(file, nlohmann::json({{"format", "circuitscope-session"}, {"version", 1}, {"model", demoModel},
                                        {"prompt", "The little dog ran"}, {"max_new_tokens", 3}, {"greedy", true},
                                        {"temperature", 1.0}, {"seed", "0"},
                                        {"selection", {{"position", 2}, {"layer", 1}, {"head", 0}}}})
                            .dump());
        std::string out;
        const int rc = run("XDG_CONFIG_HOME=" + shellQuote(home) + " QT_QPA_PLATFORM=offscreen " + shellQuote(CS_CLI_PATH) +
                               " --threads 2 --session " + shellQuote(file) + " --quit-after-first-run 2>&1",
                           &out);
        QVERIFY2(rc == 0, out.c_str());
        // The run it made is remembered in the settings, as every run is.
        const std::string conf = readFile(home + "/Circuitscope/circuitscope.conf");
        QVERIFY2(conf.find("prompt=The little dog ran") != std::string::npos, conf.c_str());
        QVERIFY2(conf.find("maxNewTokens=3") != std::string::npos, conf.c_str());
    }

    void badInput() {
        const std::string m = shellQuote(model_);
        expectError("forward --model /nonexistent/model --tokens 1", "/nonexistent/model/config.json");
        expectError("forward --model " + m + " --tokens 1,999", "out of range");
        expectError("forward --model " + m + " --tokens ''", "empty prompt");
        expectError("forward --model " + m + " --tokens 1,x", "'x'");
        expectError("forward --model " + m + " --tokens 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", "context");
        expectError("forward --model " + m + " --prompt hello", "no tokenizer");
        expectError("generate --model " + m + " --tokens 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1 --max-new 2", "context");
        expectError("tokenize --tokenizer /nonexistent/tok --text hi", "/nonexistent/tok");
        expectError("convert-sae --sae /nonexistent/sae --out " + shellQuote(makeTempDir("cli-conv") + "/o"), "/nonexistent/sae");
        const std::string bad = makeTempDir("cli-bad");
        writeFile(bad + "/config.json", R"({"model_type":"bert"})");
        expectError("hooks --model " + shellQuote(bad), "unknown model_type 'bert'");
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
