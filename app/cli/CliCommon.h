#pragma once
// Shared pieces of the headless subcommands: model/tokenizer loading, prompt-to-ids, JSON output.
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "tokenize/Tokenizer.h"

#include <CLI/CLI.hpp>

class QApplication;

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cs::cli {

// --prompt / --tokens / --bos handling shared by forward, generate and later commands.
struct PromptArgs {
    std::string prompt;
    std::string tokens;
    CLI::Option* tokensOpt = nullptr;
    CLI::Option* promptOpt = nullptr;
    std::string bos = "auto";  // auto | yes | no
    void addTo(CLI::App& cmd);
};

// --max-new, --greedy | --temperature --top-p --top-k --seed, shared by steer and export.
struct SamplingArgs {
    SamplingOptions s;
    bool greedy = false;
    CLI::Option* greedyFlag = nullptr;
    CLI::Option* temperatureOpt = nullptr;
    void addTo(CLI::App& cmd);
    SamplingOptions options() const;
};

struct LoadedModel {
    std::shared_ptr<Transformer> model;
    std::unique_ptr<Tokenizer> tokenizer;  // null when the directory has none
};

LoadedModel loadModelAndTokenizer(const std::string& dir);

// `--dtype auto|f32|bf16` on every command that loads a model through loadModelAndTokenizer: how
// the weight matrices are held (auto keeps the file's precision; f16 files are held as bf16).
void addDtypeOption(CLI::App& app);
ModelLoadOptions commandLineLoadOptions();

// Token ids for the run: parsed --tokens, or the tokenized --prompt (BOS as --bos says).
std::vector<long> promptIds(const PromptArgs& p, const LoadedModel& m);

std::vector<long> parseIdList(const std::string& s);
std::string tokenLabel(const LoadedModel& m, long id);
// A token given on the command line: "#123" or "123" (checked against the vocabulary), else text
// that is one token, else a vocabulary piece; errors name `option`.
long targetId(const std::string& text, const LoadedModel& m, const std::string& option = "--target");
// SAE or transcoder folders given with --transcoders/--saes; with --model demo, "res-L0" or
// "tc-L2" names a demo folder, and none given means the demo's transcoders. Errors name `command`.
std::vector<std::string> saePaths(const std::vector<std::string>& given, const std::string& model,
                                  const std::string& command);

// A usage error found after parsing (an empty --prompt, --position past the end, two flags that
// disagree): main prints it as one line and exits 2, like a parse error; other errors exit 1.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Range checks whose failure message names the allowed range in plain numbers (CLI11's own
// PositiveNumber prints DBL_MAX in full). They read the option's text, so they suit any number type.
CLI::Validator atLeast(double lo);                // lo or more
CLI::Validator inRange(double lo, double hi, const std::string& note = "");  // lo..hi, both included
CLI::Validator greaterThan(double lo);            // more than lo
CLI::Validator nonEmpty();                        // any text but ""
// --threads: 1 to four per core (more only slows the BLAS and OpenMP pools down).
int maxComputeThreads();

// Registers a subcommand; `run` returns the exit status.
using CommandRunner = std::function<int()>;
void addTokenizeCommand(CLI::App& app, CommandRunner& run);
void addForwardCommand(CLI::App& app, CommandRunner& run);
void addGenerateCommand(CLI::App& app, CommandRunner& run);
void addHooksCommand(CLI::App& app, CommandRunner& run);
void addTrainLmCommand(CLI::App& app, CommandRunner& run);
void addTrainSaeCommand(CLI::App& app, CommandRunner& run);
void addFeaturesCommand(CLI::App& app, CommandRunner& run);
void addExportCommand(CLI::App& app, CommandRunner& run);
void addConvertSaeCommand(CLI::App& app, CommandRunner& run);
void addEvalSaeCommand(CLI::App& app, CommandRunner& run);
void addIndexCommand(CLI::App& app, CommandRunner& run);
void addSaesCommand(CLI::App& app, CommandRunner& run);
void addFeatureCommand(CLI::App& app, CommandRunner& run);
void addSearchCommand(CLI::App& app, CommandRunner& run);
void addLabelCommand(CLI::App& app, CommandRunner& run);
void addSteerCommand(CLI::App& app, CommandRunner& run);
void addAttributeCommand(CLI::App& app, CommandRunner& run);
void addInterveneCommand(CLI::App& app, CommandRunner& run);
void addPatchCommand(CLI::App& app, CommandRunner& run);
void addDiffCommand(CLI::App& app, CommandRunner& run);
// Set by SIGINT once a long command has asked for it (the command then saves and stops).
std::atomic<bool>& interruptFlag();
// Before a headless QApplication: Qt's offscreen platform (unless QT_QPA_PLATFORM is set) and a
// private runtime directory, so scripted figure output needs no display and prints no warnings.
void prepareOffscreenQt();

// The QApplication a command draws its figure with, offscreen (prepareOffscreenQt() included).
// Made only once the work is done: computing needs no Qt.
class OffscreenApplication {
public:
    OffscreenApplication();
    ~OffscreenApplication();

private:
    int argc_ = 1;
    char name_[13] = "circuitscope";
    char* argv_[2] = {name_, nullptr};
    std::unique_ptr<QApplication> app_;
};

}  // namespace cs::cli

#include <nlohmann/json.hpp>
namespace cs::cli {
// Prints JSON on one line; invalid UTF-8 in token texts becomes U+FFFD instead of throwing.
void printJson(const nlohmann::json& j);
}  // namespace cs::cli
