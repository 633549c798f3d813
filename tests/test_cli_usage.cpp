// Command-line usage errors follow one rule (docs/cli.md, "Usage errors"): one stderr line that
// names the flag and the allowed range, exit 2, and never a start of Qt without a display. Also
// --help (defaults, the window's options), --version, `tokenize --tokenizer demo` and
// convert-sae's refusal to write into a non-empty folder. No model runs but the demo tokenizer.
#include "TestSupport.h"

#include <QtTest>

#include <algorithm>
#include <cctype>

using namespace cstest;

namespace {

struct Result {
    int rc = -1;
    std::string out, err;
};

// Runs the CLI with `env` in front (e.g. "env -u DISPLAY"), stdout and stderr kept apart.
Result cli(const std::string& args, const std::string& env = "") {
    static const std::string errFile = makeTempDir("cli-usage-err") + "/stderr.txt";
    Result r;
    r.rc = run(env + " " + shellQuote(CS_CLI_PATH) + " " + args + " 2>" + shellQuote(errFile), &r.out);
    r.err = readFile(errFile);
    return r;
}

std::string describe(const std::string& args, const Result& r) {
    return "circuitscope " + args + " -> exit " + std::to_string(r.rc) + ", stderr: '" + r.err + "'";
}

bool hasLongNumber(const std::string& s) {
    size_t run = 0;
    for (char c : s) {
        run = std::isdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
        if (run > 12) return true;
    }
    return false;
}

// Exit 2, exactly one stderr line "circuitscope: error: ..." holding every string of mustContain.
void expectUsageError(const std::string& args, const std::vector<std::string>& mustContain, const std::string& env = "") {
    const Result r = cli(args, env);
    const std::string what = describe(args, r);
    QVERIFY2(r.rc == 2, what.c_str());
    QVERIFY2(std::count(r.err.begin(), r.err.end(), '\n') == 1 && r.err.back() == '\n', ("not one line: " + what).c_str());
    QVERIFY2(r.err.rfind("circuitscope: error: ", 0) == 0, what.c_str());
    for (const auto& s : mustContain) QVERIFY2(r.err.find(s) != std::string::npos, ("no '" + s + "': " + what).c_str());
    QVERIFY2(!hasLongNumber(r.err), ("a huge number: " + what).c_str());
}

// No display at all, as on a headless server.
const std::string kNoDisplay = "env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM";

}  // namespace

class TestCliUsage : public QObject {
    Q_OBJECT
    std::string dir_;

private Q_SLOTS:
    void initTestCase() { dir_ = makeTempDir("cli-usage"); }

    void noSubcommandNeverStartsQtWithoutADisplay() {
        expectUsageError("--bogus", {"'--bogus'"}, kNoDisplay);
        expectUsageError("--model demo --bogus", {"'--bogus'"}, kNoDisplay);
        expectUsageError("", {"no display", "QT_QPA_PLATFORM=offscreen"}, kNoDisplay);
        expectUsageError("--model demo", {"no display"}, kNoDisplay);
        // The window's own options are checked before Qt starts, with the subcommands' ranges.
        expectUsageError("--threads 0", {"--threads", "1..", "4 per core"}, kNoDisplay);
        expectUsageError("--position -3", {"--position", ">= 0"}, kNoDisplay);
        expectUsageError("--model", {"--model", "needs a value"}, kNoDisplay);
    }

    void parseErrorsNameTheFlagAndRange() {
        const std::string p = "--model demo --prompt hi ";
        expectUsageError("forward " + p + "--bogus", {"--bogus"});
        expectUsageError("forward --prompt hi", {"--model"});
        expectUsageError("generate " + p + "--max-new -5", {"--max-new", "0..100000"});
        expectUsageError("steer " + p + "--steer res-L0/1:add=1 --max-new 200000", {"--max-new", "0..100000"});
        expectUsageError("generate " + p + "--temperature 0", {"--temperature", "> 0"});
        expectUsageError("generate " + p + "--temperature abc", {"--temperature", "not a number"});
        for (const char* t : {"0", "-1", "100000"})
            expectUsageError(std::string("--threads ") + t + " tokenize --tokenizer demo --text hi",
                             {"--threads", "1..", "4 per core"});
        expectUsageError("forward " + p + "--top 0", {"--top", ">= 1"});
        expectUsageError("features " + p + "--top 0", {"--top", ">= 1"});
        expectUsageError("search --db x.db --label a --top 0", {"--top", ">= 1"});
        expectUsageError("diff --model demo --model-b demo-dog --prompt hi --top 0", {"--top", ">= 1"});
        expectUsageError("generate " + p + "--top-k 0", {"--top-k", ">= 1"});
        expectUsageError("export " + p + "--view tokens --position -3 --out x.png", {"--position", ">= 0"});
        expectUsageError("train-sae --model demo --hook blocks.0.hook_resid_post --corpus c.txt --out o --k 64 --d-sae 8",
                         {"--k 64", "--d-sae 8"});
        expectUsageError("train-sae --model demo --hook blocks.0.hook_resid_post --corpus c.txt --out o --k 0",
                         {"--k", "> 0"});
    }

    void emptyPromptsAreRefused() {
        const std::string m = "--model demo --prompt '' ";
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"forward " + m, "--prompt: empty"},
            {"generate " + m, "--prompt: empty"},
            {"steer " + m + "--steer res-L0/1:add=1", "--prompt: empty"},
            {"attribute " + m + "--out g.json", "--prompt: empty"},
            {"export " + m + "--view tokens --out x.png", "--prompt: empty"},
            {"diff --model demo --model-b demo-dog --prompt ''", "--prompt: empty"},
            {"patch --model demo --clean '' --corrupted b --answer a", "--clean: empty"},
        };
        for (const auto& [args, message] : cases) expectUsageError(args, {message});
    }

    void helpShowsDefaultsAndTheWindowsOptions() {
        Result r = cli("--help");
        QVERIFY2(r.rc == 0, describe("--help", r).c_str());
        for (const char* s : {"--session FILE", "--model DIR|demo", "--quit-after-first-run", "generate"})
            QVERIFY2(r.out.find(s) != std::string::npos, (std::string("no '") + s + "' in --help:\n" + r.out).c_str());
        r = cli("search --help");
        QVERIFY2(r.rc == 0, describe("search --help", r).c_str());
        QVERIFY2(r.out.find("=20") != std::string::npos, ("search --help shows no default (--top=20):\n" + r.out).c_str());
    }

    void versionNamesTheLibraries() {
        const Result r = cli("--version");
        QVERIFY2(r.rc == 0, describe("--version", r).c_str());
        for (const char* s : {"circuitscope 0.1.0", "LibTorch ", "Qt ", "SQLite "})
            QVERIFY2(r.out.find(s) != std::string::npos, (std::string("no '") + s + "' in:\n" + r.out).c_str());
    }

    // The launcher sets OpenMP's wait policy before LibTorch loads, and never overrides the user's.
    void launcherSetsTheComputeVariables() {
        const Result chosen = cli("--version", "env -u OMP_WAIT_POLICY -u CIRCUITSCOPE_KEEP_ENV");
        QVERIFY2(chosen.rc == 0, describe("--version", chosen).c_str());
        QVERIFY2(chosen.out.find("OMP_WAIT_POLICY=passive") != std::string::npos, chosen.out.c_str());
        const Result users = cli("--version", "env -u CIRCUITSCOPE_KEEP_ENV OMP_WAIT_POLICY=active");
        QVERIFY2(users.out.find("OMP_WAIT_POLICY=active") != std::string::npos, users.out.c_str());
    }

    // A figure written headless prints its one JSON line and nothing on stderr, and the window
    // (offscreen here, where Qt warns about size hints and XDG_RUNTIME_DIR) prints nothing
    // either: Qt's own warnings stay off the terminal (CIRCUITSCOPE_QT_MESSAGES=1 shows them).
    void qtWarningsStayOffTheTerminal() {
        const std::string out = dir_ + "/clean.svg";
        const Result r = cli("export --model demo --view attention --prompt 'Once upon a time' --out " + shellQuote(out),
                             kNoDisplay);
        QVERIFY2(r.rc == 0, describe("export", r).c_str());
        QVERIFY2(r.err.empty(), ("stderr: " + r.err).c_str());
        QVERIFY(r.out.find("clean.svg") != std::string::npos);
        const std::string window = "--model demo --size 640x480 --screenshot " + shellQuote(dir_ + "/shot.png") +
                                   " --screenshot-delay 200";
        const std::string env = "env -u XDG_RUNTIME_DIR QT_QPA_PLATFORM=offscreen XDG_CONFIG_HOME=" +
                                shellQuote(dir_ + "/config") + " XDG_DATA_HOME=" + shellQuote(dir_ + "/data");
        const Result quiet = cli(window, env);
        QVERIFY2(quiet.rc == 0, describe(window, quiet).c_str());
        QVERIFY2(quiet.err.empty(), ("stderr: " + quiet.err).c_str());
        // The same launch with Qt's messages asked for shows them: the check above can fail.
        const Result loud = cli(window, env + " CIRCUITSCOPE_QT_MESSAGES=1");
        QVERIFY2(loud.err.find("propagateSizeHints") != std::string::npos, ("stderr: " + loud.err).c_str());
    }

    void tokenizeTakesDemo() {
        const Result r = cli("tokenize --tokenizer demo --text hi --json");
        QVERIFY2(r.rc == 0, describe("tokenize --tokenizer demo", r).c_str());
        QVERIFY2(r.out.find("\"ids\":[") != std::string::npos, r.out.c_str());
    }

    void convertSaeRefusesANonEmptyFolder() {
        const std::string sae = sourceDir() + "/resources/demo/saes/res-L0";
        const std::string out = dir_ + "/converted";
        QDir().mkpath(QString::fromStdString(out));
        writeFile(out + "/keep.txt", "mine");
        const std::string args = "convert-sae --sae " + shellQuote(sae) + " --out " + shellQuote(out);
        expectUsageError(args, {"--out", "not empty", "--force"});
        QCOMPARE(readFile(out + "/keep.txt"), std::string("mine"));
        const Result forced = cli(args + " --force");
        QVERIFY2(forced.rc == 0, describe(args + " --force", forced).c_str());
        // An empty or missing folder needs no --force.
        const Result fresh = cli("convert-sae --sae " + shellQuote(sae) + " --out " + shellQuote(dir_ + "/fresh"));
        QVERIFY2(fresh.rc == 0, describe("convert-sae to a new folder", fresh).c_str());
    }

    // Failures of a run (a missing file) stay exit 1, told apart from usage errors.
    void runErrorsStayExitOne() {
        const Result r = cli("tokenize --tokenizer /nonexistent/tok --text hi");
        QVERIFY2(r.rc == 1, describe("tokenize --tokenizer /nonexistent/tok", r).c_str());
    }
};

QTEST_GUILESS_MAIN(TestCliUsage)
#include "test_cli_usage.moc"
