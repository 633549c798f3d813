#include "io/JsonFile.h"
#include "tokenize/Gpt2BpeFiles.h"
#include "tokenize/HfTokenizer.h"
#include "tokenize/JsonSite.h"
#include "tokenize/SentencePieceTokenizer.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <filesystem>

namespace cs {
namespace {

namespace fs = std::filesystem;

bool isFile(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

bool endsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A special token written as "<s>" or as {"content": "<s>", ...}; "" when absent.
std::string tokenString(const nlohmann::json& j, const std::string& key, const std::string& file) {
    if (!j.contains(key) || j[key].is_null()) return "";
    const auto& v = j[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    failIn(file, "field '" + key + "' must be a string or an object with a string 'content'");
}

// A tokenizer, and whether its own file said if BOS goes in front of a text (SentencePiece's
// model, GPT-2's convention, a TemplateProcessing in tokenizer.json).
struct Loaded {
    std::unique_ptr<Tokenizer> tokenizer;
    bool bosDecided = true;
};

// tokenizer_config.json and special_tokens_map.json name the tokens; add_bos_token is only in the
// former. Without add_bos_token, and with nothing said by the tokenizer file itself, a bos_token
// of its own (not the EOS, as GPT-2's <|endoftext|> is) is there to open every text: Llama 3's
// tokenizer.json without a TemplateProcessing names <|begin_of_text|> only here.
void applyTokenizerConfig(Tokenizer& t, const fs::path& path, bool readAddBos, bool bosDecided) {
    if (!isFile(path)) return;
    const std::string file = path.string();
    const auto j = readJsonFile(file);
    if (!j.is_object()) failIn(file, "expected a JSON object");
    bool namesBos = false;
    for (const char* key : {"bos_token", "eos_token"}) {
        const bool isBos = std::string(key) == "bos_token";
        if (j.contains(key) && j[key].is_null()) {  // said outright: there is none (Qwen's BOS)
            if (isBos) t.setBos(-1);
            else t.setEos(-1);
            continue;
        }
        const std::string token = tokenString(j, key, file);
        if (token.empty()) continue;
        const int id = t.idOf(token);
        if (id < 0)
            failIn(file,
                   std::string("field '") + key + "': '" + token + "' is not in the vocabulary");
        if (isBos) t.setBos(id), namesBos = true;
        else t.setEos(id);
    }
    if (!readAddBos) return;
    const JsonFields fields(j, file);
    if (fields.has("add_bos_token")) t.setPrependBos(fields.booleanOr("add_bos_token", false));
    else if (!bosDecided && namesBos && t.bosId() != t.eosId()) t.setPrependBos(true);
}

// The model's config.json: bos_token_id / eos_token_id, an integer or a list (first one wins).
void applyModelConfig(Tokenizer& t, const fs::path& path) {
    if (!isFile(path)) return;
    const std::string file = path.string();
    const auto j = readJsonFile(file);
    if (!j.is_object()) failIn(file, "expected a JSON object");
    for (const char* key : {"bos_token_id", "eos_token_id"}) {
        if (!j.contains(key) || j[key].is_null()) continue;
        const nlohmann::json* v = &j[key];
        if (v->is_array()) {
            if (v->empty()) continue;
            v = &(*v)[0];
        }
        if (!v->is_number_integer())
            failIn(file, std::string("field '") + key + "' must be an integer or a list of them");
        const long id = v->get<long>();
        if (id < 0 || id >= t.vocabSize())
            failIn(file, std::string("field '") + key + "' (" + std::to_string(id) +
                             ") is outside the tokenizer's vocabulary of " +
                             std::to_string(t.vocabSize()));
        if (std::string(key) == "bos_token_id") t.setBos(static_cast<int>(id));
        else t.setEos(static_cast<int>(id));
    }
}

Loaded loadTokenizerJson(const fs::path& p) {
    const std::string path = p.string();
    auto t = HfTokenizer::fromTokenizerJson(path, readJsonFile(path));
    const bool decided = t->templateDecidesBos();
    return {std::move(t), decided};
}

Loaded loadFile(const fs::path& p) {
    const std::string path = p.string();
    const std::string name = p.filename().string();
    const fs::path dir = p.parent_path();
    if (endsWith(name, ".model")) return {std::make_unique<SentencePieceTokenizer>(path)};
    if (name == "merges.txt") return {loadGpt2BpeFiles((dir / "vocab.json").string(), path)};
    if (endsWith(name, "vocab.json")) {
        const fs::path merges = dir / "merges.txt";
        if (!isFile(merges))
            failIn(merges.string(), "missing (" + name + " needs merges.txt beside it)");
        return {loadGpt2BpeFiles(path, merges.string())};
    }
    if (endsWith(name, ".json")) return loadTokenizerJson(p);
    failIn(path, "not a tokenizer file (expected tokenizer.json, vocab.json, merges.txt or a "
                 "SentencePiece .model)");
}

Loaded loadDirectory(const fs::path& dir) {
    const fs::path json = dir / "tokenizer.json", vocab = dir / "vocab.json",
                   merges = dir / "merges.txt", model = dir / "tokenizer.model";
    const bool haveBpeFiles = isFile(vocab) && isFile(merges);
    if (isFile(json)) {
        try {
            return loadTokenizerJson(json);
        } catch (const UnsupportedTokenizer&) {
            // A tokenizer.json asking for a part we do not run (a Unigram model, Metaspace) may
            // sit next to files we can run.
            if (!haveBpeFiles && !isFile(model)) throw;
        }
    }
    if (haveBpeFiles) return {loadGpt2BpeFiles(vocab.string(), merges.string())};
    if (isFile(model)) return {std::make_unique<SentencePieceTokenizer>(model.string())};
    if (isFile(vocab)) failIn(merges.string(), "missing (vocab.json needs merges.txt beside it)");
    failIn(dir.string(), "no tokenizer.json, vocab.json + merges.txt or tokenizer.model here");
}

}  // namespace

std::unique_ptr<Tokenizer> loadTokenizer(const std::string& path) {
    std::error_code ec;
    const fs::path p(path);
    if (path.empty() || !fs::exists(p, ec)) failIn(path, "no such file or directory");
    const bool isDir = fs::is_directory(p, ec);
    Loaded loaded = isDir ? loadDirectory(p) : loadFile(p);
    auto& tok = loaded.tokenizer;
    // The tokenizer's own files say more about prompts than the model's config.json, so they
    // are applied last.
    const fs::path dir = isDir ? p : (p.has_parent_path() ? p.parent_path() : fs::path("."));
    applyModelConfig(*tok, dir / "config.json");
    applyTokenizerConfig(*tok, dir / "special_tokens_map.json", false, loaded.bosDecided);
    applyTokenizerConfig(*tok, dir / "tokenizer_config.json", true, loaded.bosDecided);
    return std::move(tok);
}

}  // namespace cs
