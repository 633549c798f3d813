#include "cli/CliCommon.h"

#include "model/ModelLoader.h"
#include "runtime/DemoBundle.h"
#include "ui/QtMessages.h"
#include "util/Error.h"

#include <QApplication>

#include <filesystem>

#include <sys/stat.h>

namespace cs::cli {

namespace {
bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

void PromptArgs::addTo(CLI::App& cmd) {
    promptOpt = cmd.add_option("--prompt", prompt, "Prompt text (tokenized with the model's tokenizer)")->check(nonEmpty());
    tokensOpt = cmd.add_option("--tokens", tokens, "Comma-separated token ids instead of a prompt");
    promptOpt->excludes(tokensOpt);
    cmd.add_option("--bos", bos, "Prepend BOS to --prompt: auto (tokenizer's setting), yes, no")
        ->check(CLI::IsMember({"auto", "yes", "no"}));
}

namespace {
// Set once by the parser before any command runs; every model load of the process obeys it.
std::string gDtype = "auto";
}  // namespace

void addDtypeOption(CLI::App& app) {
    for (const char* name : {"attribute", "eval-sae", "export", "features", "forward", "generate", "hooks", "index",
                             "intervene", "patch", "search", "steer"}) {
        CLI::App* cmd = app.get_subcommand(name);
        cmd->add_option("--dtype", gDtype,
                        "How weight matrices are held: auto (as stored; f16 as bf16), f32, or bf16 (half the memory "
                        "of an fp32 file, about twice the decode speed)")
            ->check(CLI::IsMember({"auto", "stored", "f32", "fp32", "float32", "bf16", "bfloat16"}));
    }
}

ModelLoadOptions commandLineLoadOptions() {
    ModelLoadOptions o;
    o.precision = parseWeightPrecision(gDtype);
    return o;
}

LoadedModel loadModelAndTokenizer(const std::string& dirOrDemo) {
    const std::string dir = resolveModelDir(dirOrDemo);
    LoadedModel m;
    m.model = loadModel(dir, commandLineLoadOptions());
    const bool hasTok = exists(dir + "/tokenizer.json") || exists(dir + "/vocab.json") ||
                        exists(dir + "/tokenizer.model");
    if (hasTok) m.tokenizer = loadTokenizer(dir);
    return m;
}

std::vector<long> parseIdList(const std::string& s) {
    std::vector<long> ids;
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        std::string part = s.substr(i, j - i);
        while (!part.empty() && part.front() == ' ') part.erase(part.begin());
        while (!part.empty() && part.back() == ' ') part.pop_back();
        if (!part.empty()) {
            size_t used = 0;
            long v = 0;
            try {
                v = std::stol(part, &used);
            } catch (...) {
                used = 0;
            }
            if (used != part.size()) throw Error("--tokens: '" + part + "' is not an integer token id");
            ids.push_back(v);
        }
        i = j + 1;
    }
    return ids;
}

std::vector<long> promptIds(const PromptArgs& p, const LoadedModel& m) {
    std::vector<long> ids;
    if (p.tokensOpt && p.tokensOpt->count() > 0) {
        ids = parseIdList(p.tokens);
    } else if (!p.promptOpt || p.promptOpt->count() == 0) {
        throw Error("no input: give --prompt TEXT or --tokens IDS");
    } else if (p.prompt.empty()) {
        throw Error("empty prompt: --prompt has no text");
    } else {
        if (!m.tokenizer)
            throw Error(m.model->config().source +
                        ": the model directory has no tokenizer (tokenizer.json, vocab.json + merges.txt "
                        "or tokenizer.model); pass --tokens instead of --prompt");
        bool bos = m.tokenizer->prependBos();
        if (p.bos == "yes") bos = true;
        if (p.bos == "no") bos = false;
        if (bos) {
            int b = m.tokenizer->bosId() >= 0 ? m.tokenizer->bosId() : m.model->config().bosTokenId;
            if (b >= 0) ids.push_back(b);
        }
        for (int id : m.tokenizer->encode(p.prompt)) ids.push_back(id);
    }
    if (ids.empty()) throw Error("empty prompt: give --prompt with text or --tokens with ids");
    const long V = m.model->config().vocabSize;
    for (long id : ids)
        if (id < 0 || id >= V)
            throw Error("token id " + std::to_string(id) + " is out of range (vocabulary size " + std::to_string(V) + ")");
    if (static_cast<long>(ids.size()) > m.model->config().nCtx)
        throw Error("prompt of " + std::to_string(ids.size()) + " tokens is longer than the model's context of " +
                    std::to_string(m.model->config().nCtx));
    return ids;
}

std::string tokenLabel(const LoadedModel& m, long id) {
    if (m.tokenizer && id >= 0 && id < m.tokenizer->vocabSize()) return m.tokenizer->tokenText(static_cast<int>(id));
    return "<" + std::to_string(id) + ">";
}

// "#123" or "123": an id; else text that is one token, else a vocabulary piece.
long targetId(const std::string& text, const LoadedModel& m, const std::string& option) {
    const long vocab = m.model->config().vocabSize;
    std::string digits = !text.empty() && text[0] == '#' ? text.substr(1) : text;
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos) {
        const long id = digits.size() > 12 ? -1 : std::stol(digits);
        if (id < 0 || id >= vocab)
            throw Error(option + " '" + text + "': not a token id of this model (0 to " + std::to_string(vocab - 1) + ")");
        return id;
    }
    if (!m.tokenizer) throw Error(option + " '" + text + "': this model has no tokenizer; give token ids");
    const std::vector<int> ids = m.tokenizer->encode(text);
    if (ids.size() == 1) return ids[0];
    const int piece = m.tokenizer->idOf(text);
    if (piece >= 0 && piece < vocab) return piece;
    throw Error(option + " '" + text + "' is " + std::to_string(ids.size()) +
                " tokens here; give one token, a vocabulary piece, or an id");
}

// With --model demo, "res-L0" or "tc-L2" names one of the demo's SAE folders; anything else
// (and any path that exists) is a path.
std::vector<std::string> saePaths(const std::vector<std::string>& given, const std::string& model,
                                  const std::string& command) {
    std::vector<std::string> paths;
    for (const auto& p : given) {
        std::string path = p;
        if (model == "demo" && !std::filesystem::exists(p))
            for (const auto& d : demoSaeDirs())
                if (std::filesystem::path(d).filename().string() == p) path = d;
        paths.push_back(path);
    }
    if (paths.empty() && model == "demo")
        for (const auto& d : demoSaeDirs())
            if (std::filesystem::path(d).filename().string().rfind("tc-", 0) == 0) paths.push_back(d);
    if (paths.empty()) throw Error(command + ": give --transcoders (or --saes) PATH ...");
    return paths;
}

}  // namespace cs::cli

#include <iostream>
namespace cs::cli {
void printJson(const nlohmann::json& j) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}
}  // namespace cs::cli

#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>
namespace cs::cli {
OffscreenApplication::OffscreenApplication() {
    prepareOffscreenQt();
    app_ = std::make_unique<QApplication>(argc_, argv_);
}

OffscreenApplication::~OffscreenApplication() = default;

void prepareOffscreenQt() {
    ui::keepQtWarningsOffTheTerminal();
    // No display needed: Qt's offscreen platform renders the same widgets.
    if (!std::getenv("QT_QPA_PLATFORM")) setenv("QT_QPA_PLATFORM", "offscreen", 1);
    // Qt wants a private runtime directory and warns on every run without one (as root
    // under a bare shell, say): give it one so scripted output stays clean.
    if (!std::getenv("XDG_RUNTIME_DIR")) {
        const std::string dir = "/tmp/circuitscope-runtime-" + std::to_string(::getuid());
        ::mkdir(dir.c_str(), 0700);
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && st.st_uid == ::getuid() && (st.st_mode & 0777) == 0700)
            setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
    }
}
}  // namespace cs::cli

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
namespace cs::cli {
namespace {
// 4 prints as "4", 0.5 as "0.5": bounds read as the user would type them.
std::string plainNumber(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

// The option's text as a number, or nullopt-like false when it is not one.
bool parseNumber(const std::string& text, double& v) {
    if (text.empty()) return false;
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    return end && *end == '\0' && !std::isnan(v);
}

CLI::Validator numberCheck(const std::string& range, std::function<bool(double)> ok) {
    return CLI::Validator(
        [range, ok](std::string& text) -> std::string {
            double v = 0;
            if (!parseNumber(text, v)) return "'" + text + "' is not a number (allowed: " + range + ")";
            if (!ok(v)) return text + " is out of range (allowed: " + range + ")";
            return {};
        },
        "[" + range + "]");
}
}  // namespace

CLI::Validator atLeast(double lo) {
    return numberCheck(">= " + plainNumber(lo), [lo](double v) { return v >= lo; });
}

CLI::Validator inRange(double lo, double hi, const std::string& note) {
    return numberCheck(plainNumber(lo) + ".." + plainNumber(hi) + (note.empty() ? "" : ", " + note),
                       [lo, hi](double v) { return v >= lo && v <= hi; });
}

CLI::Validator greaterThan(double lo) {
    return numberCheck("> " + plainNumber(lo), [lo](double v) { return v > lo; });
}

CLI::Validator nonEmpty() {
    return CLI::Validator([](std::string& text) -> std::string { return text.empty() ? "empty" : ""; }, "");
}

int maxComputeThreads() {
    const unsigned cores = std::thread::hardware_concurrency();
    return 4 * static_cast<int>(cores > 0 ? cores : 1);
}
}  // namespace cs::cli
