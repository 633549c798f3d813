// Tokenizers against independent references: tests/reference/ref_gpt2_bpe.py (the original GPT-2
// encoder algorithm in Python), tests/reference/ref_hf_tokenizer.py (Hugging Face's tokenizer.json
// pipeline in Python, for Llama 3, Qwen and Gemma files and small synthetic ones) and the
// sentencepiece Python package.
#include <QtTest>

#include "TestSupport.h"
#include "tokenize/ContinuationText.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

using cstest::shellQuote;
using nlohmann::json;
using Ids = std::vector<int>;

namespace {

// Length of the well-formed UTF-8 character at s[i], or 0.
int utf8CharLength(const std::string& s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned c = b(i);
    if (c < 0x80) return 1;
    const int len = c >= 0xC2 && c <= 0xDF ? 2
                    : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xF0 && c <= 0xF4 ? 4
                                             : 0;
    if (!len || i + len > s.size()) return 0;
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (int k = 1; k < len; ++k, lo = 0x80, hi = 0xBF)
        if (b(i + k) < lo || b(i + k) > hi) return 0;
    return len;
}

bool isValidUtf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        const int n = utf8CharLength(s, i);
        if (!n) return false;
        i += n;
    }
    return true;
}

// A JSON list of strings for the Python reference: a byte that is not part of well-formed UTF-8
// is written as the lone surrogate \udcXX, which Python's surrogateescape turns back into it.
std::string pythonJsonList(const std::vector<std::string>& texts) {
    std::string out = "[";
    char hex[16];
    for (size_t t = 0; t < texts.size(); ++t) {
        const std::string& s = texts[t];
        out += t ? ",\"" : "\"";
        for (size_t i = 0; i < s.size();) {
            const int n = utf8CharLength(s, i);
            const auto c = static_cast<unsigned char>(s[i]);
            if (!n) {
                std::snprintf(hex, sizeof hex, "\\udc%02x", c);
                out += hex;
                ++i;
            } else if (c == '"' || c == '\\') {
                out += '\\', out += s[i++];
            } else if (c < 0x20) {
                std::snprintf(hex, sizeof hex, "\\u%04x", c);
                out += hex;
                ++i;
            } else {
                out.append(s, i, n);
                i += n;
            }
        }
        out += "\"";
    }
    return out + "]";
}

std::string tempFile(const std::string& tag, const std::string& content) {
    const std::string path = cstest::makeTempDir(tag) + "/input.json";
    cstest::writeFile(path, content);
    return path;
}

std::vector<Ids> referenceEncode(const std::string& dir, const std::vector<std::string>& texts) {
    const std::string in = tempFile("ref-in", pythonJsonList(texts));
    const std::string out = cstest::runReference(
        "ref_gpt2_bpe.py", "--dir " + shellQuote(dir) + " --input " + shellQuote(in));
    auto ids = json::parse(out).get<std::vector<Ids>>();
    if (ids.size() != texts.size()) throw std::runtime_error("reference returned too few lists");
    return ids;
}

std::vector<std::string> referenceDecode(const std::string& dir, const std::vector<Ids>& ids) {
    const std::string in = tempFile("ref-in", json(ids).dump());
    const std::string out = cstest::runReference(
        "ref_gpt2_bpe.py", "--dir " + shellQuote(dir) + " --input " + shellQuote(in) + " --decode");
    return json::parse(out).get<std::vector<std::string>>();
}

std::string printable(const std::string& s) {
    std::string out;
    char hex[8];
    for (unsigned char c : s.substr(0, 80)) {
        if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
        else std::snprintf(hex, sizeof hex, "\\x%02x", c), out += hex;
    }
    return out;
}

std::string idsText(const Ids& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size() && i < 40; ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return "[" + s + (ids.size() > 40 ? ",...]" : "]");
}

#define COMPARE_IDS(actual, expected, text)                                                   \
    QVERIFY2((actual) == (expected),                                                          \
             ("text \"" + printable(text) + "\": ours " + idsText(actual) + " reference " + \
              idsText(expected))                                                              \
                 .c_str())

using cstest::byteChar;

// A small byte-level BPE: 256 byte pieces, a few merges, <|endoftext|> last. ("aa", "a") is
// ranked before ("a", "a") on purpose: a merge whose input only exists after a later merge.
// "xyz" is a piece no merge produces.
using Merges = std::vector<std::pair<std::string, std::string>>;

struct Synthetic {
    json vocab = json::object();
    Merges merges;
    int endOfText = -1;
};

Synthetic synthetic() {
    const std::string G = byteChar(' '), C = byteChar('\n');
    Synthetic s;
    for (int b = 0; b < 256; ++b) s.vocab[byteChar(b)] = b;
    s.merges = {{"t", "h"},    {"th", "e"},     {G, "the"},     {"aa", "a"},   {"a", "a"},
                {G, "w"},      {"o", "r"},      {G + "w", "or"}, {"l", "d"},   {G + "wor", "ld"},
                {C, C},        {G, G},          {G + G, G + G}, {"'", "s"},    {"e", "l"},
                {"el", "l"},   {"h", "ell"},    {"hell", "o"},  {"l", "l"},    {"1", "2"},
                {"12", "3"},   {byteChar(0xC3), byteChar(0xA9)},
                {"e", "l"}};  // listed twice: the last rank counts
    int next = 256;
    for (const auto& [a, b] : s.merges)
        if (!s.vocab.contains(a + b)) s.vocab[a + b] = next++;
    s.vocab["xyz"] = next++;
    s.endOfText = next;
    s.vocab["<|endoftext|>"] = next;
    return s;
}

std::string writeVocabMerges(const Synthetic& s, const std::string& dir) {
    cstest::writeFile(dir + "/vocab.json", s.vocab.dump());
    std::string merges = "#version: 0.2\n";
    for (const auto& [a, b] : s.merges) merges += a + " " + b + "\n";
    cstest::writeFile(dir + "/merges.txt", merges);
    return dir;
}

json tokenizerJson(const json& vocab, const Merges& merges, bool mergesAsArrays,
                   const json& addedTokens) {
    json m = json::array();
    for (const auto& [a, b] : merges)
        m.push_back(mergesAsArrays ? json::array({a, b}) : json(a + " " + b));
    return {{"version", "1.0"},
            {"added_tokens", addedTokens},
            {"normalizer", nullptr},
            {"pre_tokenizer",
             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
              {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model",
             {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
              {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"vocab", vocab},
              {"merges", m}}}};
}

json addedToken(int id, const std::string& content, bool lstrip = false) {
    return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", lstrip},
            {"rstrip", false},   {"normalized", false}, {"special", true}};
}

// The message of the cs::Error that f throws; fails the test when it throws nothing or something
// else.
std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const cs::Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<not a cs::Error: ") + e.what() + ">";
    }
    return "<nothing thrown>";
}

std::string gpt2Dir() { return cstest::sharedDir() + "/fixtures/gpt2-tokenizer"; }

// Spaces of every kind, contractions, digits, punctuation, scripts, emoji, control characters,
// characters PCRE2 and Python class differently unless handled, and broken UTF-8.
std::vector<std::string> trickyTexts() {
    std::string paragraph =
        "Once upon a time, in a small village nestled between rolling hills, there lived a "
        "curious girl named Mia. She'd often wander the meadows -- collecting stones, feathers "
        "and the occasional lost button (37 of them by 2023!). \"Why do clouds move?\" she asked "
        "her grandmother, who smiled: \"Because the wind can't sit still, dear.\"\n\nThe end.";
    return {"Hello world",
            "Hello, world! How's it going?",
            "   leading spaces",
            "trailing spaces   ",
            "multiple     spaces     between",
            " ",
            "",
            "\n",
            "\n\n\n",
            "line1\nline2\r\nline3\rline4",
            "\ttabs\tand\t\tmore\t",
            "  \n  \n \t ",
            "It's, they're, we've, I'm, you'll, he'd, she's, don't",
            "IT'S LOUD'S 'S 's's's '' 'x",
            "12345 67 8.9 1,000,000 3rd 0x1F 2024-01-01",
            "Price: $4.99!!! (50% off) -- #deal @user ~~~ ^_^ <tag/>",
            "na\xC3\xAFve caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9 \xC3\x85ngstr\xC3\xB6m \xC3\x9F",
            "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC "
            "\xD0\xA0\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9",
            "\xE4\xB8\xAD\xE6\x96\x87\xE5\x88\x86\xE8\xAF\x8D\xEF\xBC\x9A"
            "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82",
            "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9"
            "\xE3\x83\x88 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
            "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D"
            "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7!",
            "mixed\xF0\x9F\x98\x80text\xF0\x9F\x98\x80 \xF0\x9F\x98\x80",
            "zero\xE2\x80\x8Bwidth, nbsp\xC2\xA0here, ideographic\xE3\x80\x80space, "
            "nel\xC2\x85 ls\xE2\x80\xA8 em\xE2\x80\x83space",
            "Mongolian\xE1\xA0\x8Evowel \xE1\xA0\x8E separator",
            "unit\x1Cseparators\x1F and \x0B vertical \x0C feed",
            "unicode15 \xF0\x9E\x80\xB0\xF0\x9E\x80\xB1 letters \xF0\x9E\x93\xB0 digit "
            "\xF0\xB1\x8D\x90 cjk",
            "<|endoftext|>",
            "before<|endoftext|>after <|endoftext|> x",
            std::string("nul\0byte", 8),
            "\xFF\xFE invalid start",
            "trunc\xE2\x82 sequence \xE2\x82",
            "\xED\xA0\x80 encoded surrogate",
            "over\xC0\xAFlong and \xF5\x80 out of range",
            "tail \xF0\x9F\x98",
            " \x80\x80!! lone continuations",
            "code:\n    def f(x):\n        return x  # comment\n\n",
            paragraph,
            std::string(3000, 'a'),
            std::string(5000, ' ') + "x" + std::string(3000, '\n'),
            [] {
                std::string s;
                for (int i = 0; i < 50; ++i) s += "0123456789";
                return s;
            }()};
}

// ---- Hugging Face tokenizer.json pipelines (tests/reference/ref_hf_tokenizer.py) ------------

struct HfReference {
    std::vector<Ids> ids;              // per text
    std::vector<std::string> decoded;  // per id list given
    Ids prefix;                        // what the post-processor puts before a text
};

HfReference hfReference(const std::string& tokenizerJson, const std::vector<std::string>& texts,
                        const std::vector<Ids>& decode = {}) {
    const std::string in = tempFile("hf-in", "{\"encode\": " + pythonJsonList(texts) +
                                                 ", \"decode\": " + json(decode).dump() + "}");
    const json out = json::parse(cstest::runReference(
        "ref_hf_tokenizer.py",
        "--tokenizer " + shellQuote(tokenizerJson) + " --input " + shellQuote(in)));
    HfReference r{out["ids"].get<std::vector<Ids>>(),
                  out["decoded"].get<std::vector<std::string>>(), out["prefix"].get<Ids>()};
    if (r.ids.size() != texts.size() || r.decoded.size() != decode.size())
        throw std::runtime_error("reference returned too few lists");
    return r;
}

std::string writeTokenizerJson(const std::string& tag, const json& j) {
    const std::string dir = cstest::makeTempDir(tag);
    cstest::writeFile(dir + "/tokenizer.json", j.dump(1));
    return dir;
}

// Our ids for every text against the reference's, and our decoding of them against its decoding.
// Returns our ids.
std::vector<Ids> compareWithHf(const cs::Tokenizer& tok, const std::string& tokenizerJson,
                               const std::vector<std::string>& texts,
                               HfReference* refOut = nullptr) {
    std::vector<Ids> ours;
    for (const auto& t : texts) ours.push_back(tok.encode(t));
    const HfReference ref = hfReference(tokenizerJson, texts, ours);
    for (size_t i = 0; i < texts.size(); ++i) {
        [&] { COMPARE_IDS(ours[i], ref.ids[i], texts[i]); }();
        [&] {
            QVERIFY2(tok.decode(ours[i]) == ref.decoded[i],
                     ("decode of \"" + printable(texts[i]) + "\": ours \"" +
                      printable(tok.decode(ours[i])) + "\" reference \"" +
                      printable(ref.decoded[i]) + "\"")
                         .c_str());
        }();
        if (QTest::currentTestFailed()) break;
    }
    if (refOut) *refOut = ref;
    return ours;
}

// What the families' tokenizers find hard: whitespace runs, numbers, emoji with joiners, scripts,
// combining accents (NFC), contractions, typed special tokens of each family, characters that
// no vocabulary has (byte fallback), and Gemma's literal "▁".
std::vector<std::string> familyTexts() {
    return {
        "\t\t\n\n  \n\t x",
        "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nend",
        "\t\t\t\t\tindented\t\t",
        "   ",
        "x   ",
        "   x",
        " \n ",
        "1234567 12345678901234567890 3.14159 2,718 +42 -7 1e10 007",
        "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB \xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D"
        "\xF0\x9F\x8C\x88 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"
        "\xE2\x80\x8D\xF0\x9F\x91\xA6 \xE2\x9D\xA4\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x94\xA5 "
        "\xF0\x9F\x91\x8B\xF0\x9F\x8F\xBF",
        "\xE4\xB8\xAD\xE6\x96\x87\xEF\xBC\x8C\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x80\x81"
        "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
        "\xD9\x85\xD9\x8E\xD8\xB1\xD9\x92\xD8\xAD\xD9\x8E\xD8\xA8\xD9\x8B\xD8\xA7 "
        "\xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84\xD9\x85",
        "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87 "
        "\xE0\xA4\x95\xE0\xA5\x8D\xE0\xA4\xB7\xE0\xA4\xA4\xE0\xA5\x8D\xE0\xA4\xB0\xE0\xA4\xBF"
        "\xE0\xA4\xAF",
        "\xD0\xA1\xD1\x8A\xD0\xB5\xD1\x88\xD1\x8C \xD0\xB6\xD0\xB5 \xD0\xB5\xD1\x89\xD1\x91 "
        "\xD1\x8D\xD1\x82\xD0\xB8\xD1\x85",
        "e\xCC\x81 cafe\xCC\x81 vs caf\xC3\xA9, A\xCC\x8A \xC3\x85, \xE1\xBA\x9B\xCC\xA3, "
        "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8",
        "\xEF\xAC\x81 ligature \xE2\x91\xA0 \xC2\xB2 \xE2\x84\xAB",
        "'s 'T 'RE 'Ve 'M 'LL 'D I'M HE'S they'Re 'x '' \xE2\x80\x99s '\xC5\xBF",
        "<|begin_of_text|>Hello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi",
        "<|im_start|>system\nYou are<|im_end|>\n<think>\n\n</think><tool_call>",
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
        "<h1>title</h1> <table><tr><td>x</td></tr></table> <div class=\"a\">",
        "<|im_start <bos <<bos>> <|begin_of_text|<|begin_of_text|>>",
        "\xF4\x8F\xBF\xBD \xF3\xA0\x81\x81 \xF0\x93\x80\x80 \xF0\x92\x80\x80 \xEF\xBF\xBE "
        "\xF0\x9D\x9F\x98 \xF0\xAF\xA0\x80",
        "\xE2\x96\x81 \xE2\x96\x81\xE2\x96\x81 literal\xE2\x96\x81marks",
        // Words Llama 3's vocabulary has whole but its merges do not build (ignore_merges).
        "mektedir vi\xE1\xBB\x87"
        "c h\xE1\xBB\xA3p nhi\xE1\xBB\x81u \xC4\x91i\xE1\xBB\x81u jeho "
        "Vi\xE1\xBB\x87t \xD8\xA7\xDB\x8C\xD8\xB1\xD8\xA7\xD9\x86 bi\xE1\xBB\x87t",
        "Mixed: hello\xE4\xB8\x96\xE7\x95\x8C"
        "123abc\xD0\xB4\xD0\xB0!?",
    };
}

// Random strings over pieces that each family treats specially.
std::vector<std::string> randomFamilyTexts(int count, unsigned seed) {
    const std::vector<std::string> pool = {"a",
                                           "Z",
                                           "the",
                                           " ",
                                           "  ",
                                           "\n",
                                           "\n\n",
                                           "\r\n",
                                           "\t",
                                           "'",
                                           "'s",
                                           "'T",
                                           "1",
                                           "23",
                                           "4567",
                                           ".",
                                           "!?",
                                           "\xC3\xA9",
                                           "e\xCC\x81",
                                           "\xCC\x81",
                                           "\xE4\xB8\xAD",
                                           "\xF0\x9F\x98\x80",
                                           "\xE2\x80\x8D",
                                           "\xC2\xA0",
                                           "\xE1\xA0\x8E",
                                           "\xD9\x85\xD8\xB1",
                                           "\xE0\xA4\xB9\xE0\xA4\xBF",
                                           "<|begin_of_text|>",
                                           "<|im_start|>",
                                           "<think>",
                                           "<bos>",
                                           "<start_of_turn>",
                                           "<p>",
                                           "\xE2\x96\x81",
                                           "\xF4\x8F\xBF\xBD",
                                           "\xEF\xAC\x81",
                                           "\xFF",
                                           "\xE2\x82"};
    std::mt19937 rng(seed);
    std::vector<std::string> texts;
    for (int i = 0; i < count; ++i) {
        std::string s;
        const int n = 1 + static_cast<int>(rng() % 20);
        for (int k = 0; k < n; ++k) s += pool[rng() % pool.size()];
        texts.push_back(s);
    }
    return texts;
}

std::string tokenizersDir(const std::string& family) {
    return cstest::sharedDir() + "/fixtures/tokenizers/" + family;
}

// A byte-level tokenizer.json like Llama 3's and Qwen's: a Split regex, then ByteLevel without
// its own regex; the synthetic vocabulary and merges (with the merge order trap "aa" + "a").
json splitByteLevelJson(const json& split, const json& normalizer = nullptr,
                        const Synthetic& syn = synthetic()) {
    json j = tokenizerJson(syn.vocab, syn.merges, true, json::array());
    j["normalizer"] = normalizer;
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {split,
                            {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", false}}}}};
    return j;
}

// 256 byte pieces and a merge for every pair of a few characters, so that wherever a
// pre-tokenizer cuts between two of them shows in the ids.
Synthetic pairMerges() {
    Synthetic s;
    for (int b = 0; b < 256; ++b) s.vocab[byteChar(b)] = b;
    int next = 256;
    for (char x : std::string("abct he-12345wx"))
        for (char y : std::string("abct he-12345wx")) {
            s.merges.emplace_back(byteChar(x), byteChar(y));
            s.vocab[byteChar(x) + byteChar(y)] = next++;
        }
    s.endOfText = next;
    s.vocab["<|endoftext|>"] = next;
    return s;
}

json regexSplit(const std::string& pattern, const std::string& behavior = "Isolated",
                bool invert = false) {
    return {{"type", "Split"},
            {"pattern", {{"Regex", pattern}}},
            {"behavior", behavior},
            {"invert", invert}};
}

const char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char kQwenPattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A SentencePiece-style tokenizer.json (BPE over characters with byte fallback), as Gemma's
// ("gemma": Replace normalizer, Split(" ") pre-tokenizer) or Llama 2's ("llama2": Prepend +
// Replace, Strip decoder) are; "unk": Gemma's with the <0xE0>..<0xFF> pieces missing, so that
// some characters become a (fused) unk.
struct SpStyle {
    json file;
    int bos = -1, unk = -1;
};

SpStyle sentencePieceStyle(const std::string& kind) {
    const std::string mark = "\xE2\x96\x81";  // ▁
    json vocab = json::object();
    int next = 0;
    auto add = [&](const std::string& p) {
        if (!vocab.contains(p)) vocab[p] = next++;
        return vocab[p].get<int>();
    };
    SpStyle s;
    s.unk = add("<unk>");
    s.bos = add("<bos>");
    add("<eos>");
    char name[8];
    for (int b = 0; b < 256; ++b) {
        if (kind == "unk" && b >= 0xE0) continue;
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        add(name);
    }
    for (const char* c : {"a", "b", "d", "e", "h", "l", "o", "r", "w", "t", "1", "2", "\n",
                          "\xE4\xB8\xAD", "\xC3\xA9"})
        add(c);
    add(mark);
    const Merges merges = {{mark, mark},  {"h", "e"},          {"l", "l"},      {"he", "ll"},
                           {"hell", "o"}, {mark, "hello"},     {"w", "o"},      {"wo", "r"},
                           {"wor", "l"},  {"worl", "d"},       {mark, "world"}, {"aa", "a"},
                           {"a", "a"},    {mark + mark, mark}, {"1", "2"},      {"\n", "\n"}};
    json m = json::array();
    for (const auto& [a, b] : merges) {
        add(a + b);
        m.push_back(json::array({a, b}));
    }
    auto special = [](int id, const std::string& content, bool isSpecial, bool normalized) {
        return json{{"id", id},
                    {"content", content},
                    {"single_word", false},
                    {"lstrip", false},
                    {"rstrip", false},
                    {"normalized", normalized},
                    {"special", isSpecial}};
    };
    const int turn = next++, blank = next++, marks = next++, phrase = next++;
    json added = json::array(
        {special(s.unk, "<unk>", true, false), special(s.bos, "<bos>", true, false),
         special(turn, "<start_of_turn>", true, false), special(blank, "\n\n", false, false),
         special(marks, mark + mark + mark, false, false)});
    if (kind != "llama2") added.push_back(special(phrase, "hello world", false, true));
    json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", mark}};
    json decoders =
        json::array({{{"type", "Replace"}, {"pattern", {{"String", mark}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}});
    json normalizer = replace, pre = {{"type", "Split"},
                                      {"pattern", {{"String", " "}}},
                                      {"behavior", "MergedWithPrevious"},
                                      {"invert", false}};
    if (kind == "llama2") {
        normalizer = {{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", mark}}, replace}}};
        pre = nullptr;
        decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    }
    s.file = {{"version", "1.0"},
              {"added_tokens", added},
              {"normalizer", normalizer},
              {"pre_tokenizer", pre},
              {"post_processor",
               {{"type", "TemplateProcessing"},
                {"single",
                 {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                {"pair", json::array()},
                {"special_tokens",
                 {{"<bos>", {{"id", "<bos>"}, {"ids", {s.bos}}, {"tokens", {"<bos>"}}}}}}}},
              {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},
                {"byte_fallback", true},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", m}}}};
    return s;
}

}  // namespace

class TestTokenizers : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void realGpt2MatchesReference();
    void realGpt2RandomTextMatchesReference();
    void realGpt2CorpusAndThreads();
    void realGpt2TokenizerJsonAgreesWithVocabFiles();
    void syntheticBpeMatchesReference();
    void tokenizerJsonStringMerges() { checkTokenizerJson(false); }
    void tokenizerJsonArrayMerges() { checkTokenizerJson(true); }
    void tokenizerJsonPreTokenizerOptions();
    void loaderAppliesConfigFiles();
    void sentencePieceMatchesPython();
    void realTokenizerJsonMatchesReference_data();
    void realTokenizerJsonMatchesReference();
    void syntheticSplitByteLevelMatchesReference();
    void splitBehaviours_data();
    void splitBehaviours();
    void syntheticNormalizerMatchesReference_data();
    void syntheticNormalizerMatchesReference();
    void syntheticByteFallbackMatchesReference_data();
    void syntheticByteFallbackMatchesReference();
    void loaderBosRules();
    void tokenIdPrompts();
    void mangledTokenizerJsonNeverCrashes();
    void badInputNamesTheFile_data();
    void badInputNamesTheFile();

private:
    void checkTokenizerJson(bool mergesAsArrays);
};

void TestTokenizers::realGpt2MatchesReference() {
    if (cstest::sharedDir().empty()) QSKIP("../shared absent: skipping real GPT-2 tokenizer check");
    auto tok = cs::loadTokenizer(gpt2Dir());
    QCOMPARE(tok->vocabSize(), 50257);
    QCOMPARE(tok->bosId(), 50256);
    QCOMPARE(tok->eosId(), 50256);
    QVERIFY(!tok->prependBos());
    QCOMPARE(tok->idOf("\xC4\xA0world"), 995);
    QCOMPARE(tok->piece(995), std::string("\xC4\xA0world"));
    QCOMPARE(tok->tokenText(995), std::string(" world"));
    QCOMPARE(tok->idOf("no such piece"), -1);

    const auto texts = trickyTexts();
    const auto expected = referenceEncode(gpt2Dir(), texts);
    std::vector<Ids> ours;
    for (size_t i = 0; i < texts.size(); ++i) {
        ours.push_back(tok->encode(texts[i]));
        COMPARE_IDS(ours.back(), expected[i], texts[i]);
        if (isValidUtf8(texts[i])) QCOMPARE(tok->decode(ours.back()), texts[i]);
    }
    // The reference's vocab.json path has no special tokens: <|endoftext|> is spelled out.
    const size_t eot = std::find(texts.begin(), texts.end(), "<|endoftext|>") - texts.begin();
    QVERIFY(eot < texts.size() && expected[eot].size() > 1);
    // Lossy repair of broken bytes, as Python's errors='replace'.
    const auto decoded = referenceDecode(gpt2Dir(), ours);
    for (size_t i = 0; i < texts.size(); ++i) QCOMPARE(tok->decode(ours[i]), decoded[i]);
}

void TestTokenizers::realGpt2RandomTextMatchesReference() {
    if (cstest::sharedDir().empty()) QSKIP("../shared absent: skipping real GPT-2 tokenizer check");
    const std::vector<std::string> pool = {
        "a", "Z", "the", "The", " ", "  ", "\n", "\r\n", "\t", "'", "'s", "'ll", "'T", "1", "23",
        "4567", ".", "!?", ",", "--", "$", "\xC3\xA9", "\xC3\x9F", "\xE4\xB8\xAD",
        "\xF0\x9F\x98\x80", "\xE2\x80\x8D", "\xC2\xA0", "\xE3\x80\x80", "\xE1\xA0\x8E", "\x1C",
        "\xF0\x9E\x80\xB0", "\xFF", "\xE2\x82", "\x80", "<|endoftext|>", "\xD9\x85\xD8\xB1",
        "\xE0\xA4\xB9\xE0\xA4\xBF"};
    std::mt19937 rng(20240611);
    std::vector<std::string> texts;
    for (int i = 0; i < 400; ++i) {
        std::string s;
        const int n = 1 + static_cast<int>(rng() % 24);
        for (int k = 0; k < n; ++k) s += pool[rng() % pool.size()];
        texts.push_back(s);
    }
    auto tok = cs::loadTokenizer(gpt2Dir() + "/vocab.json");
    const auto expected = referenceEncode(gpt2Dir(), texts);
    std::vector<Ids> ours;
    for (size_t i = 0; i < texts.size(); ++i) {
        ours.push_back(tok->encode(texts[i]));
        COMPARE_IDS(ours.back(), expected[i], texts[i]);
    }
    // Slices of the id lists cut through characters: decoding must repair them as Python does.
    std::vector<Ids> slices;
    for (const auto& ids : ours)
        if (ids.size() > 2) slices.emplace_back(ids.begin() + 1, ids.end() - 1);
    const auto decoded = referenceDecode(gpt2Dir(), slices);
    for (size_t i = 0; i < slices.size(); ++i) QCOMPARE(tok->decode(slices[i]), decoded[i]);
}

void TestTokenizers::realGpt2CorpusAndThreads() {
    if (cstest::sharedDir().empty()) QSKIP("../shared absent: skipping real GPT-2 tokenizer check");
    const std::string corpus =
        cstest::readFile(cstest::sharedDir() + "/data/tinystories-sample.txt");
    QVERIFY(corpus.size() > 100000);
    auto tok = cs::loadTokenizer(gpt2Dir());
    const auto t0 = std::chrono::steady_clock::now();
    const Ids ours = tok->encode(corpus);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    qInfo("encoded %.2f MB into %zu tokens in %.3f s (%.1f MB/s, cold cache)", corpus.size() / 1e6,
          ours.size(), s, corpus.size() / 1e6 / s);
    const auto expected = referenceEncode(gpt2Dir(), {corpus});
    QCOMPARE(ours.size(), expected[0].size());
    QVERIFY(ours == expected[0]);
    QCOMPARE(tok->decode(ours), corpus);

    // A fresh tokenizer, so that the threads fill the word cache concurrently.
    auto shared = cs::loadTokenizer(gpt2Dir());
    const size_t chunk = corpus.size() / 4;
    std::vector<std::string> parts;
    for (int i = 0; i < 4; ++i) parts.push_back(corpus.substr(i * chunk / 2, chunk));
    std::vector<Ids> results(8);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] { results[i] = shared->encode(parts[i % 4]); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 8; ++i) QVERIFY(results[i] == tok->encode(parts[i % 4]));
}

void TestTokenizers::realGpt2TokenizerJsonAgreesWithVocabFiles() {
    if (cstest::sharedDir().empty()) QSKIP("../shared absent: skipping real GPT-2 tokenizer check");
    const json vocab = json::parse(cstest::readFile(gpt2Dir() + "/vocab.json"));
    Merges merges;
    const std::string text = cstest::readFile(gpt2Dir() + "/merges.txt");
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // #version
    while (std::getline(lines, line))
        if (!line.empty())
            merges.emplace_back(line.substr(0, line.find(' ')), line.substr(line.find(' ') + 1));
    QCOMPARE(merges.size(), size_t(50000));
    const std::string dir = cstest::makeTempDir("gpt2-json");
    const json added = json::array({addedToken(50256, "<|endoftext|>")});
    cstest::writeFile(dir + "/tokenizer.json", tokenizerJson(vocab, merges, true, added).dump());
    auto fromJson = cs::loadTokenizer(dir);
    auto fromFiles = cs::loadTokenizer(gpt2Dir());
    int compared = 0;
    for (const auto& t : trickyTexts()) {
        if (t.find("<|endoftext|>") != std::string::npos) continue;
        QVERIFY(fromJson->encode(t) == fromFiles->encode(t));
        ++compared;
    }
    QVERIFY(compared > 30);
    const auto ref = referenceEncode(gpt2Dir(), {"before", "after ", " x"});
    Ids expected = ref[0];
    expected.push_back(50256);
    expected.insert(expected.end(), ref[1].begin(), ref[1].end());
    expected.push_back(50256);
    expected.insert(expected.end(), ref[2].begin(), ref[2].end());
    COMPARE_IDS(fromJson->encode("before<|endoftext|>after <|endoftext|> x"), expected, "eot");
    QCOMPARE(fromJson->bosId(), 50256);
    QCOMPARE(fromJson->tokenText(50256), std::string("<|endoftext|>"));
}

void TestTokenizers::syntheticBpeMatchesReference() {
    const Synthetic syn = synthetic();
    const std::string dir = writeVocabMerges(syn, cstest::makeTempDir("synthetic"));
    const std::vector<std::string> texts = {
        "the world",      "aaaaaaa",         "aaaa aaa a aa", "  the  world  ",
        "hello hell hellooo",
        "\n\n\nthe\n\n",  "it's the cat's",  "caf\xC3\xA9 \xC3\xA9\xC3\xA9", "123 1234 12 3",
        "a<|endoftext|>b", "x",              "    indented\n\tthe  ", "all ll lll llll",
        "\xF0\x9F\x98\x80 \xFF\xE2\x82 the"};
    const auto expected = referenceEncode(dir, texts);
    auto tok = cs::loadTokenizer(dir);
    QCOMPARE(tok->vocabSize(), syn.endOfText + 1);
    QCOMPARE(tok->bosId(), syn.endOfText);
    QCOMPARE(tok->eosId(), syn.endOfText);
    QVERIFY(!tok->prependBos());
    int merged = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        const Ids ids = tok->encode(texts[i]);
        COMPARE_IDS(ids, expected[i], texts[i]);
        for (int id : ids) merged += id >= 256;
        if (isValidUtf8(texts[i])) QCOMPARE(tok->decode(ids), texts[i]);
    }
    QVERIFY(merged > 20);  // the merges were exercised, not just byte pieces
    const int the = syn.vocab[byteChar(' ') + "the"].get<int>();
    QCOMPARE(tok->idOf(byteChar(' ') + "the"), the);
    QCOMPARE(tok->tokenText(the), std::string(" the"));
    QCOMPARE(tok->tokenText(0xC3), std::string("\xC3"));  // half a character, left as it is
    QCOMPARE(tok->decode({0xC3}), std::string("\xEF\xBF\xBD"));
    QCOMPARE(tok->piece(-1), std::string());
    QCOMPARE(tok->encode(""), Ids());
}

void TestTokenizers::checkTokenizerJson(bool mergesAsArrays) {
    const Synthetic syn = synthetic();
    const std::string filesDir = writeVocabMerges(syn, cstest::makeTempDir("synthetic-files"));
    const int pad = syn.endOfText + 1;  // an added token outside model.vocab
    const json added = json::array(
        {addedToken(syn.endOfText, "<|endoftext|>"), addedToken(pad, "<|pad|>", /*lstrip=*/true)});
    const std::string jsonDir = cstest::makeTempDir("synthetic-json");
    cstest::writeFile(jsonDir + "/tokenizer.json",
                      tokenizerJson(syn.vocab, syn.merges, mergesAsArrays, added).dump(2));
    auto fromJson = cs::loadTokenizer(jsonDir + "/tokenizer.json");
    auto fromFiles = cs::loadTokenizer(filesDir);
    QCOMPARE(fromJson->vocabSize(), pad + 1);
    const std::vector<std::string> plain = {"the world", "aaaaaaa", "  the  world  ", "hellooo\n\n",
                                            "it's caf\xC3\xA9", "123 12", "x  y"};
    // Hugging Face's merge order, which is OpenAI's except for "aaaaaaa" here (see
    // syntheticSplitByteLevelMatchesReference).
    compareWithHf(*fromJson, jsonDir + "/tokenizer.json", plain);
    for (const auto& t : plain) {
        QVERIFY(!fromJson->encode(t).empty());
        if (t != "aaaaaaa") QVERIFY(fromJson->encode(t) == fromFiles->encode(t));
    }
    const auto ref = referenceEncode(filesDir, {"a", "b the", "x", "y", "<|endoftext|>"});
    QVERIFY(ref[4].size() > 1);  // spelled out without added tokens
    Ids expected = ref[0];
    expected.push_back(syn.endOfText);
    expected.insert(expected.end(), ref[1].begin(), ref[1].end());
    COMPARE_IDS(fromJson->encode("a<|endoftext|>b the"), expected, "a<|endoftext|>b the");
    // lstrip: the spaces before <|pad|> belong to it.
    expected = ref[2];
    expected.push_back(pad);
    expected.insert(expected.end(), ref[3].begin(), ref[3].end());
    COMPARE_IDS(fromJson->encode("x  <|pad|>y"), expected, "x  <|pad|>y");
    QCOMPARE(fromJson->encode("<|pad|><|endoftext|><|pad|>"), (Ids{pad, syn.endOfText, pad}));
    QCOMPARE(fromJson->idOf("<|pad|>"), pad);
    QCOMPARE(fromJson->piece(pad), std::string("<|pad|>"));
    QCOMPARE(fromJson->tokenText(pad), std::string("<|pad|>"));
    QCOMPARE(fromJson->decode({pad, syn.endOfText}), std::string("<|pad|><|endoftext|>"));
}

void TestTokenizers::tokenizerJsonPreTokenizerOptions() {
    const Synthetic syn = synthetic();
    const std::string filesDir = writeVocabMerges(syn, cstest::makeTempDir("options-files"));
    json j = tokenizerJson(syn.vocab, syn.merges, false, json::array());
    j["pre_tokenizer"]["add_prefix_space"] = true;
    j["model"]["ignore_merges"] = true;
    const std::string dir = cstest::makeTempDir("options-json");
    cstest::writeFile(dir + "/tokenizer.json", j.dump());
    auto tok = cs::loadTokenizer(dir);
    const auto ref = referenceEncode(filesDir, {" the world", " xyz", "xyz"});
    // add_prefix_space: a space goes in front unless there is one already.
    COMPARE_IDS(tok->encode("the world"), ref[0], "the world");
    COMPARE_IDS(tok->encode(" the world"), ref[0], " the world");
    // ignore_merges: a word that is a piece becomes that piece, whatever the merges say.
    const int xyz = syn.vocab["xyz"].get<int>();
    QCOMPARE(ref[2], (Ids{'x', 'y', 'z'}));
    j["pre_tokenizer"]["add_prefix_space"] = false;
    cstest::writeFile(dir + "/tokenizer.json", j.dump());
    tok = cs::loadTokenizer(dir);
    QCOMPARE(tok->encode("xyz"), Ids{xyz});
    COMPARE_IDS(tok->encode(" xyz"), ref[1], " xyz");
}

void TestTokenizers::loaderAppliesConfigFiles() {
    const Synthetic syn = synthetic();
    const std::string dir = writeVocabMerges(syn, cstest::makeTempDir("configs"));
    cstest::writeFile(dir + "/config.json", R"({"bos_token_id": 5, "eos_token_id": [7, 8]})");
    auto tok = cs::loadTokenizer(dir);
    QCOMPARE(tok->bosId(), 5);
    QCOMPARE(tok->eosId(), 7);
    QVERIFY(!tok->prependBos());
    cstest::writeFile(dir + "/tokenizer_config.json",
                      R"({"add_bos_token": true, "bos_token": {"content": "<|endoftext|>"},
                          "eos_token": "<|endoftext|>"})");
    tok = cs::loadTokenizer(dir + "/vocab.json");
    QCOMPARE(tok->bosId(), syn.endOfText);
    QCOMPARE(tok->eosId(), syn.endOfText);
    QVERIFY(tok->prependBos());
    const Ids prompt = tok->encodePrompt("the");
    QCOMPARE(prompt.size(), size_t(2));
    QCOMPARE(prompt[0], syn.endOfText);
}

void TestTokenizers::sentencePieceMatchesPython() {
    const std::vector<std::string> texts = {
        "Hello world",
        "The cat saw a toy.",
        "Lily liked the red box, and they were happy.",
        "the little boat in the park",
        "  two  spaces ",
        "Zebra \xE6\x97\xA5\xE6\x9C\xAC!",
        "tab\there",
        "\xC3\xBCn\xC3\xAF" "c\xC3\xB6" "d\xC3\xA9",
        ""};
    const std::string dir = cstest::makeTempDir("spm");
    const std::string in = tempFile("spm-in", json(texts).dump());
    const json ref = json::parse(cstest::runReference(
        "make_sentencepiece.py", "--out " + shellQuote(dir) + " --input " + shellQuote(in)));

    auto tok = cs::loadTokenizer(dir);
    const auto pieces = ref["pieces"].get<std::vector<std::string>>();
    QVERIFY(pieces.size() >= 50);
    QCOMPARE(tok->vocabSize(), static_cast<int>(pieces.size()));
    for (int i = 0; i < tok->vocabSize(); ++i) QCOMPARE(tok->piece(i), pieces[i]);
    QCOMPARE(tok->bosId(), ref["bos"].get<int>());
    QCOMPARE(tok->eosId(), ref["eos"].get<int>());
    QVERIFY(tok->bosId() >= 0);
    QVERIFY(tok->prependBos());
    for (size_t i = 0; i < texts.size(); ++i) {
        const Ids ids = tok->encode(texts[i]);
        COMPARE_IDS(ids, ref["ids"][i].get<Ids>(), texts[i]);
        QCOMPARE(tok->decode(ids), ref["decoded"][i].get<std::string>());
    }
    QVERIFY(!tok->encode(texts[1]).empty());
    QCOMPARE(tok->encodePrompt("the").front(), tok->bosId());

    const std::string mark = "\xE2\x96\x81";
    int spaced = 0;
    for (int i = 0; i < tok->vocabSize(); ++i) {
        QCOMPARE(tok->idOf(pieces[i]), i);
        if (pieces[i].rfind(mark, 0) == 0 && pieces[i].size() > mark.size()) {
            QCOMPARE(tok->tokenText(i), " " + pieces[i].substr(mark.size()));
            ++spaced;
        }
    }
    QVERIFY(spaced > 5);
    QCOMPARE(tok->tokenText(tok->bosId()), pieces[tok->bosId()]);
    QCOMPARE(tok->idOf("no such piece"), -1);

    // A continuation reads as it follows its prompt: decoded alone, SentencePiece would drop its
    // leading space; a BOS or EOS the model emitted is not printed as "<s>".
    const Ids prompt = tok->encodePrompt("the little boat");
    Ids cont = tok->encode("in the park");
    QCOMPARE(tok->decode(cont), std::string("in the park"));
    QCOMPARE(cs::continuationText(*tok, prompt, cont), std::string(" in the park"));
    cont.insert(cont.begin() + 1, tok->eosId());
    cont.push_back(tok->bosId());
    QCOMPARE(cs::continuationText(*tok, prompt, cont), std::string(" in the park"));
    QCOMPARE(cs::continuationText(*tok, prompt, Ids{tok->bosId()}), std::string());

    // A tokenizer.json we cannot run falls through to the tokenizer.model beside it.
    const std::string both = cstest::makeTempDir("spm-both");
    cstest::writeFile(both + "/tokenizer.model", cstest::readFile(dir + "/tokenizer.model"));
    cstest::writeFile(both + "/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
    cstest::writeFile(both + "/tokenizer_config.json", R"({"add_bos_token": false})");
    auto fallback = cs::loadTokenizer(both);
    QCOMPARE(fallback->vocabSize(), static_cast<int>(pieces.size()));
    QVERIFY(!fallback->prependBos());
    QVERIFY(fallback->encode(texts[2]) == ref["ids"][2].get<Ids>());

    // One we can run is preferred.
    const json runnable = sentencePieceStyle("gemma").file;
    cstest::writeFile(both + "/tokenizer.json", runnable.dump());
    auto preferred = cs::loadTokenizer(both);
    QCOMPARE(preferred->vocabSize(), static_cast<int>(runnable["model"]["vocab"].size()) + 4);
    QVERIFY(preferred->idOf("<start_of_turn>") >= 0);
}

// ---- tokenizer.json pipelines against tests/reference/ref_hf_tokenizer.py -------------------

void TestTokenizers::realTokenizerJsonMatchesReference_data() {
    QTest::addColumn<QString>("family");
    QTest::addColumn<int>("vocabSize");
    QTest::addColumn<QString>("bos");  // "" when none
    QTest::addColumn<QString>("eos");
    QTest::addColumn<bool>("prependBos");
    QTest::addColumn<QString>("lossy");  // what may keep decode(encode(s)) from giving s back
    QTest::newRow("llama3") << "llama3" << 128256 << "<|begin_of_text|>"
                            << "<|end_of_text|>" << true << "";
    QTest::newRow("qwen3")
        << "qwen3" << 151669 << ""
        << "<|im_end|>" << false
        << "\xCC\x81|\xCC\x8A|\xCC\xA3|\xE1\x84\x80|\xE2\x84\xAB|\xF0\xAF\xA0\x80";  // NFC changes
                                                                                     // these
    QTest::newRow("gemma3") << "gemma3" << 262145 << "<bos>"
                            << "<end_of_turn>" << true
                            << "\xE2\x96\x81";  // a typed "▁" comes back as a space
}

// Each family's real tokenizer.json: the hard strings, GPT-2's tricky ones (broken UTF-8
// included), random mixtures and a slice of TinyStories, ids and decoding against the
// reference; what BOS the files ask for; load time and throughput, reported.
void TestTokenizers::realTokenizerJsonMatchesReference() {
    if (cstest::sharedDir().empty()) QSKIP("../shared absent: skipping real tokenizer.json checks");
    QFETCH(QString, family);
    QFETCH(int, vocabSize);
    QFETCH(QString, bos);
    QFETCH(QString, eos);
    QFETCH(bool, prependBos);
    QFETCH(QString, lossy);
    const std::string dir = tokenizersDir(family.toStdString());
    const std::string file = dir + "/tokenizer.json";

    const auto t0 = std::chrono::steady_clock::now();
    auto tok = cs::loadTokenizer(dir);
    const double loadS =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QCOMPARE(tok->vocabSize(), vocabSize);
    QCOMPARE(tok->bosId(), bos.isEmpty() ? -1 : tok->idOf(bos.toStdString()));
    QCOMPARE(tok->eosId(), tok->idOf(eos.toStdString()));
    QVERIFY(tok->eosId() >= 0);
    QCOMPARE(tok->prependBos(), prependBos);

    const std::string corpus =
        cstest::readFile(cstest::sharedDir() + "/data/tinystories-sample.txt");
    std::vector<std::string> texts = familyTexts();
    for (const auto& t : trickyTexts()) texts.push_back(t);
    for (const auto& t : randomFamilyTexts(250, 20261203)) texts.push_back(t);
    for (size_t at = 0; at < 40000; at += 10000) texts.push_back(corpus.substr(at, 10000));
    HfReference ref;
    const std::vector<Ids> ours = compareWithHf(*tok, file, texts, &ref);
    if (QTest::currentTestFailed()) return;

    // decode(encode(s)) gives s back, unless s holds broken UTF-8 (repaired) or something the
    // normaliser changes.
    const QStringList lossyMarks = lossy.split('|', Qt::SkipEmptyParts);
    int lossyTexts = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        if (!isValidUtf8(texts[i]) || tok->decode(ours[i]) == texts[i]) continue;
        const bool explained = std::any_of(
            lossyMarks.begin(), lossyMarks.end(),
            [&](const QString& m) { return texts[i].find(m.toStdString()) != std::string::npos; });
        QVERIFY2(explained, ("no round trip for \"" + printable(texts[i]) + "\"").c_str());
        ++lossyTexts;
    }
    qInfo("%d of %zu texts do not come back unchanged (normalisation)", lossyTexts, texts.size());

    // What goes in front of a prompt: the file's TemplateProcessing when it has one (Gemma);
    // Llama 3's file has none, and tokenizer_config.json's own bos_token decides.
    const Ids prompt = tok->encodePrompt("Hello");
    if (prependBos) QCOMPARE(prompt.front(), tok->bosId());
    if (!ref.prefix.empty())
        QCOMPARE(Ids(prompt.begin(), prompt.begin() + ref.prefix.size()), ref.prefix);
    const Ids hello = tok->encode("Hello");
    QCOMPARE(prompt.size(), hello.size() + (prependBos ? 1 : 0));
    QCOMPARE(Ids(prompt.end() - hello.size(), prompt.end()), hello);

    if (family == "qwen3")  // NFC: a decomposed accent is the composed one
        QCOMPARE(tok->encode("cafe\xCC\x81"), tok->encode("caf\xC3\xA9"));
    if (family == "gemma3") {  // byte fallback was exercised, and pieces read as text
        int fallback = 0;
        for (const auto& ids : ours)
            for (int id : ids) fallback += tok->piece(id).rfind("<0x", 0) == 0;
        QVERIFY(fallback > 10);
        QCOMPARE(tok->tokenText(tok->idOf("<0x41>")), std::string("A"));
        QCOMPARE(tok->tokenText(tok->idOf("\xE2\x96\x81world")), std::string(" world"));
    }
    if (family == "llama3") {
        QCOMPARE(tok->idOf("<|begin_of_text|>"), 128000);
        QCOMPARE(tok->tokenText(tok->idOf("\xC4\xA0world")), std::string(" world"));
    }

    // Throughput on about 3.6 MB of stories (warm word cache after the first third).
    std::string big;
    for (int i = 0; i < 3; ++i) big += corpus;
    const auto t1 = std::chrono::steady_clock::now();
    const Ids all = tok->encode(big);
    const double encS =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    QCOMPARE(tok->decode(all), big);
    qInfo("%s: loaded in %.2f s; encoded %.2f MB into %zu tokens in %.2f s (%.1f MB/s)",
          qPrintable(family), loadS, big.size() / 1e6, all.size(), encS, big.size() / 1e6 / encS);
}

// Llama 3's pipeline on a small vocabulary: Split with Llama 3's regex, ByteLevel without its
// own, ignore_merges, special and non-special added tokens, a TemplateProcessing BOS, and the
// merge order trap ("aa" + "a" ranked before "a" + "a"), where Hugging Face's order (one merge
// at a time) and OpenAI's (every occurrence of a rank at once) differ.
void TestTokenizers::syntheticSplitByteLevelMatchesReference() {
    const Synthetic syn = synthetic();
    json j = splitByteLevelJson(regexSplit(kLlama3Pattern));
    j["model"]["ignore_merges"] = true;
    const int begin = syn.endOfText + 1, think = syn.endOfText + 2;
    j["added_tokens"] =
        json::array({addedToken(begin, "<|begin_of_text|>"), addedToken(think, "<think>")});
    j["added_tokens"][1]["special"] = false;
    j["post_processor"] = {{"type", "Sequence"},
                           {"processors",
                            {{{"type", "ByteLevel"},
                              {"add_prefix_space", true},
                              {"trim_offsets", false},
                              {"use_regex", true}},
                             {{"type", "TemplateProcessing"},
                              {"single",
                               {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                              {"special_tokens",
                               {{"<|begin_of_text|>",
                                 {{"id", "<|begin_of_text|>"},
                                  {"ids", {begin}},
                                  {"tokens", {"<|begin_of_text|>"}}}}}}}}}};
    const std::string dir = writeTokenizerJson("split-bytelevel", j);
    auto tok = cs::loadTokenizer(dir);
    QCOMPARE(tok->bosId(), begin);
    QVERIFY(tok->prependBos());
    QCOMPARE(tok->encodePrompt("the").front(), begin);
    std::vector<std::string> texts = {
        "aaaaaaa",      "aaaa aaa",     "the world",
        "xyz",          " xyz",         "IT'S it's 'T 'll",
        "1234567 12 3", "  \n\n the  ", "<|begin_of_text|>the<think>world</think>"};
    for (const auto& t : trickyTexts()) texts.push_back(t);
    HfReference ref;
    const auto ours = compareWithHf(*tok, dir + "/tokenizer.json", texts, &ref);
    if (QTest::currentTestFailed()) return;
    QCOMPARE(ref.prefix, Ids{begin});
    QCOMPARE(tok->encode("xyz"), Ids{syn.vocab["xyz"].get<int>()});  // ignore_merges
    // The trap is real: OpenAI's order gives another answer for "aaaaaaa".
    const std::string files = writeVocabMerges(syn, cstest::makeTempDir("split-files"));
    QVERIFY(referenceEncode(files, {"aaaaaaa"})[0] != ours[0]);
}

void TestTokenizers::splitBehaviours_data() {
    QTest::addColumn<QString>("behavior");
    QTest::addColumn<bool>("invert");
    QTest::addColumn<bool>("literal");
    for (const char* b :
         {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"})
        for (bool invert : {false, true})
            for (bool literal : {false, true})
                QTest::addRow("%s%s%s", b, invert ? " inverted" : "",
                              literal ? " string" : " regex")
                    << QString(b) << invert << literal;
}

void TestTokenizers::splitBehaviours() {
    QFETCH(QString, behavior);
    QFETCH(bool, invert);
    QFETCH(bool, literal);
    json split = regexSplit(R"(\d+|-)", behavior.toStdString(), invert);
    if (literal) split["pattern"] = {{"String", " "}};
    const std::string dir =
        writeTokenizerJson("split", splitByteLevelJson(split, nullptr, pairMerges()));
    auto tok = cs::loadTokenizer(dir);
    compareWithHf(*tok, dir + "/tokenizer.json",
                  {"a b  c", " the world ", "12-34 the-5", "x", "--1", "  ", "1 2-", ""});
}

void TestTokenizers::syntheticNormalizerMatchesReference_data() {
    QTest::addColumn<QString>("form");
    for (const char* f : {"NFC", "NFD", "NFKC", "NFKD"}) QTest::newRow(f) << QString(f);
}

// Qwen's pipeline on a small vocabulary: a Unicode normaliser, Split with single digits,
// ByteLevel.
void TestTokenizers::syntheticNormalizerMatchesReference() {
    QFETCH(QString, form);
    const std::string dir = writeTokenizerJson(
        "normalizer", splitByteLevelJson(regexSplit(kQwenPattern), {{"type", form.toStdString()}}));
    auto tok = cs::loadTokenizer(dir);
    const std::string composed = "caf\xC3\xA9", decomposed = "cafe\xCC\x81";
    std::vector<std::string> texts = {composed,
                                      decomposed,
                                      "\xC3\xA9\xC3\xA9 e\xCC\x81",
                                      "\xEF\xAC\x81 \xE2\x91\xA0 \xC2\xB2 \xE2\x84\xAB A\xCC\x8A",
                                      "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8 \xEA\xB0\x81",
                                      "12345 the world",
                                      "e\xCC\x81\xFF\xCC\x81 broken"};
    for (const auto& t : familyTexts()) texts.push_back(t);
    compareWithHf(*tok, dir + "/tokenizer.json", texts);
    const bool composes = form == "NFC" || form == "NFKC";
    QCOMPARE(tok->encode(composed) == tok->encode(decomposed), true);
    QCOMPARE(tok->decode(tok->encode(decomposed)), composes ? composed : decomposed);
    QCOMPARE(tok->encode("\xEF\xAC\x81") == tok->encode("fi"), form.startsWith("NFK"));
}

void TestTokenizers::syntheticByteFallbackMatchesReference_data() {
    QTest::addColumn<QString>("kind");
    for (const char* k : {"gemma", "llama2", "unk"}) QTest::newRow(k) << QString(k);
}

// Gemma's and Llama 2's pipelines on a small vocabulary: BPE over characters, byte fallback,
// fused unk, added tokens matched before normalisation (and one after), the decoder steps.
void TestTokenizers::syntheticByteFallbackMatchesReference() {
    QFETCH(QString, kind);
    const SpStyle sp = sentencePieceStyle(kind.toStdString());
    const std::string dir = writeTokenizerJson("byte-fallback", sp.file);
    auto tok = cs::loadTokenizer(dir);
    QCOMPARE(tok->bosId(), sp.bos);
    QVERIFY(tok->prependBos());
    std::vector<std::string> texts = {"hello world",
                                      " hello  world ",
                                      "hello world hello world",
                                      "aaaaaaa",
                                      "aaaa aaa",
                                      "\xE4\xB8\xAD \xC3\xBC \xC3\xB1 \xF0\x9F\x98\x80 \xC3\xA9",
                                      "\xE4\xB8\xAD\xC3\xBC\xE4\xB8\xAD\xE4\xB8\xAD",
                                      "<bos>hello<start_of_turn>x\n\n\nworld",
                                      "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81 hello",
                                      "",
                                      " ",
                                      "\n",
                                      "12 21",
                                      "\xFF\xC3 broken",
                                      "e\xCC\x81",
                                      "helloworld"};
    for (const auto& t : familyTexts()) texts.push_back(t);
    for (const auto& t : randomFamilyTexts(100, 7)) texts.push_back(t);
    HfReference ref;
    const auto ours = compareWithHf(*tok, dir + "/tokenizer.json", texts, &ref);
    if (QTest::currentTestFailed()) return;
    QCOMPARE(ref.prefix, Ids{sp.bos});
    int fallback = 0, unk = 0;
    for (const auto& ids : ours)
        for (int id : ids) fallback += tok->piece(id).rfind("<0x", 0) == 0, unk += id == sp.unk;
    QVERIFY(fallback > 10);
    QCOMPARE(unk > 0, kind == "unk");
    QCOMPARE(tok->tokenText(tok->idOf("<0x41>")), std::string("A"));
    QCOMPARE(tok->tokenText(tok->idOf("\xE2\x96\x81hello")), std::string(" hello"));
    QCOMPARE(tok->decode(tok->encode("hello world")), std::string("hello world"));
    if (kind != "unk")
        QCOMPARE(tok->decode(tok->encode("\xE4\xB8\xAD \xF0\x9F\x98\x80 \xC3\xBC")),
                 std::string("\xE4\xB8\xAD \xF0\x9F\x98\x80 \xC3\xBC"));
}

// What decides BOS: a TemplateProcessing in tokenizer.json; without one, tokenizer_config.json's
// add_bos_token; without that, a bos_token of its own (not the EOS).
// "#1 #403" is a prompt of ids (the only kind a model without a tokenizer takes); anything else
// is text.
void TestTokenizers::tokenIdPrompts() {
    QCOMPARE(cs::parseTokenIdPrompt(" #1  #403\t#0 ").value(), (std::vector<int>{1, 403, 0}));
    for (const char* text : {"", "   ", "#1 cat", "# 1", "#1#2", "#-3", "hello", "#12a"})
        QVERIFY2(!cs::parseTokenIdPrompt(text).has_value(), text);
    QVERIFY_THROWS_EXCEPTION(cs::Error, cs::parseTokenIdPrompt("#99999999999999999999"));
    QCOMPARE(cs::tokenIdPromptText({1, 403}), std::string("#1 #403"));
    const cs::TokenIdTokenizer ids(500);
    QCOMPARE(ids.encode("#7 #499"), (std::vector<int>{7, 499}));
    QCOMPARE(ids.decode({7, 499}), std::string("#7 #499"));
    QCOMPARE(ids.tokenText(12), std::string("#12"));
    QCOMPARE(ids.idOf("#12"), 12);
    QCOMPARE(ids.idOf("#500"), -1);
    try {
        ids.encode("Once upon a time");
        QFAIL("text accepted by a tokenizer of ids");
    } catch (const cs::Error& e) {
        QVERIFY2(std::string(e.what()).find("token ids") != std::string::npos, e.what());
    }
    try {
        ids.encode("#7 #500");
        QFAIL("an id outside the vocabulary accepted");
    } catch (const cs::Error& e) {
        QVERIFY2(std::string(e.what()).find("#500") != std::string::npos, e.what());
    }
    // Any tokenizer takes ids as written; text goes through the tokenizer.
    QCOMPARE(cs::promptTokenIds(ids, "#3 #4", 10), (std::vector<int>{3, 4}));
    QVERIFY_THROWS_EXCEPTION(cs::Error, cs::promptTokenIds(ids, "#3 #40", 10));
    QCOMPARE(cs::continuationText(ids, std::vector<int>{1, 2}, std::vector<int>{3}), std::string(" #3"));
}

void TestTokenizers::loaderBosRules() {
    json j = splitByteLevelJson(regexSplit(kLlama3Pattern));
    const Synthetic syn = synthetic();
    const int begin = syn.endOfText + 1;
    j["added_tokens"] = json::array(
        {addedToken(syn.endOfText, "<|endoftext|>"), addedToken(begin, "<|begin_of_text|>")});
    const std::string dir = writeTokenizerJson("bos-rules", j);
    auto load = [&](const std::string& config) {
        cstest::writeFile(dir + "/tokenizer_config.json", config);
        return cs::loadTokenizer(dir);
    };
    auto tok = load(R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>"})");
    QCOMPARE(tok->bosId(), begin);
    QVERIFY(tok->prependBos());  // Llama 3's case
    QVERIFY(!load(R"({"bos_token": "<|begin_of_text|>", "add_bos_token": false})")->prependBos());
    QVERIFY(!load(R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})")->prependBos());
    QVERIFY(!load(R"({"bos_token": null, "eos_token": "<|endoftext|>"})")->prependBos());
    // A template with nothing before $A has decided: no BOS.
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"special_tokens", json::object()}};
    cstest::writeFile(dir + "/tokenizer.json", j.dump());
    QVERIFY(
        !load(R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>"})")->prependBos());
    QVERIFY(load(R"({"bos_token": "<|begin_of_text|>", "add_bos_token": true})")->prependBos());
}

// Every member of a valid file replaced by a value of each other JSON type: the loader either
// copes or throws cs::Error with a one-line message, never anything else.
void TestTokenizers::mangledTokenizerJsonNeverCrashes() {
    const SpStyle sp = sentencePieceStyle("llama2");
    std::vector<json::json_pointer> paths;
    std::function<void(const json&, const json::json_pointer&)> walk =
        [&](const json& j, const json::json_pointer& at) {
            paths.push_back(at);
            const bool bulk = !at.empty() && (at.back() == "vocab" || at.back() == "merges");
            if (j.is_object() && !bulk)
                for (const auto& [k, v] : j.items()) walk(v, at / k);
            if (j.is_array())
                for (size_t i = 0; i < j.size() && i < (bulk ? 2 : j.size()); ++i)
                    walk(j[i], at / i);
        };
    walk(sp.file, json::json_pointer());
    QVERIFY(paths.size() > 60);
    const std::string dir = cstest::makeTempDir("mangled");
    const std::vector<json> values = {nullptr, 7, -1, "x", "", json::array(), json::object(), true};
    int loaded = 0, refused = 0;
    for (const auto& path : paths) {
        if (path.empty()) continue;
        for (const json& v : values) {
            json j = sp.file;
            j[path] = v;
            cstest::writeFile(dir + "/tokenizer.json", j.dump());
            const std::string message = errorOf([&] {
                auto tok = cs::loadTokenizer(dir);
                tok->decode(tok->encode(" hello <bos> world \xE4\xB8\xAD"));
            });
            if (message == "<nothing thrown>") {
                ++loaded;
                continue;
            }
            ++refused;
            QVERIFY2(message.rfind("<", 0) != 0 && message.find('\n') == std::string::npos,
                     (path.to_string() + " = " + v.dump() + ": " + message).c_str());
            QVERIFY2(message.find("tokenizer.json") != std::string::npos, message.c_str());
        }
    }
    qInfo("%d mangled files loaded, %d refused with a message", loaded, refused);
    QVERIFY(refused > 100);
}

void TestTokenizers::badInputNamesTheFile_data() {
    QTest::addColumn<QString>("path");
    QTest::addColumn<QString>("mustName");
    QTest::addColumn<QString>("detail");
    const Synthetic syn = synthetic();
    auto dirWith = [&](const std::string& tag,
                       const std::vector<std::pair<std::string, std::string>>& files) {
        const std::string dir = cstest::makeTempDir(tag);
        for (const auto& [name, content] : files) cstest::writeFile(dir + "/" + name, content);
        return dir;
    };
    auto row = [](const char* name, const std::string& path, const std::string& file,
                  const std::string& detail) {
        QTest::newRow(name) << QString::fromStdString(path) << QString::fromStdString(file)
                            << QString::fromStdString(detail);
    };
    const std::string vocab = syn.vocab.dump();
    const std::string missing = cstest::makeTempDir("missing") + "/no-such-dir";
    row("missing directory", missing, missing, "no such");
    const std::string empty = dirWith("empty", {});
    row("empty directory", empty, empty, "tokenizer.json");
    row("vocab.json invalid JSON",
        dirWith("badjson", {{"vocab.json", "{\"a\": 1,"}, {"merges.txt", "#version: 0.2\n"}}),
        "vocab.json", "JSON");
    row("vocab.json not an object",
        dirWith("notobj", {{"vocab.json", "[1, 2, 3]"}, {"merges.txt", "#version: 0.2\n"}}),
        "vocab.json", "object");
    row("vocab.json id not an integer",
        dirWith("notint", {{"vocab.json", R"({"a": 0, "b": "one"})"}, {"merges.txt", ""}}),
        "vocab.json", "'b'");
    row("merges.txt malformed line",
        dirWith("badline", {{"vocab.json", vocab}, {"merges.txt", "#version: 0.2\nt h\nthe\n"}}),
        "merges.txt:3", "two pieces");
    row("merges.txt unknown piece",
        dirWith("unknown", {{"vocab.json", vocab}, {"merges.txt", "#version: 0.2\nq zz\n"}}),
        "merges.txt:2", "'zz'");
    row("merges.txt merged piece missing",
        dirWith("nomerged", {{"vocab.json", vocab}, {"merges.txt", "#version: 0.2\nq r\n"}}),
        "merges.txt:2", "'qr'");
    row("vocab.json without merges.txt",
        dirWith("nomerges", {{"vocab.json", vocab}}) + "/vocab.json", "merges.txt", "missing");
    row("tokenizer.json invalid JSON", dirWith("tjbad", {{"tokenizer.json", "{\"model\": "}}),
        "tokenizer.json", "JSON");
    row("tokenizer.json unsupported model",
        dirWith("wordpiece",
                {{"tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})"}}),
        "tokenizer.json", "model.type");
    row("tokenizer.json unsupported pre_tokenizer",
        dirWith("metaspace", {{"tokenizer.json",
                               R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                   "pre_tokenizer": {"type": "Metaspace"}})"}}),
        "tokenizer.json", "pre_tokenizer");
    json badMerge = tokenizerJson(syn.vocab, {}, false, json::array());
    badMerge["model"]["merges"] = json::array({42});
    row("tokenizer.json bad merge entry", dirWith("tjmerge", {{"tokenizer.json", badMerge.dump()}}),
        "tokenizer.json", "model.merges[0]");
    json unknownMerge = tokenizerJson(syn.vocab, {{"q", "zz"}}, true, json::array());
    row("tokenizer.json merge of unknown piece",
        dirWith("tjunknown", {{"tokenizer.json", unknownMerge.dump()}}), "tokenizer.json", "'zz'");
    // tokenizer.json pipelines: the field is named, PCRE2's complaint and offset passed on.
    auto tj = [&](const char* tag, const json& j) {
        return dirWith(tag, {{"tokenizer.json", j.dump()}});
    };
    row("Split regex PCRE2 cannot compile",
        tj("badregex", splitByteLevelJson(regexSplit("(?i:'s|[a-"))), "tokenizer.json",
        "field 'pre_tokenizer.pretokenizers[0].pattern.Regex' is not a pattern PCRE2 can compile: "
        "missing terminating ] for character class at offset 10");
    row("Split pattern neither String nor Regex",
        tj("badpattern",
           splitByteLevelJson(
               {{"type", "Split"}, {"pattern", {{"Glob", "*"}}}, {"behavior", "Isolated"}})),
        "tokenizer.json", "'pre_tokenizer.pretokenizers[0].pattern' must be");
    row("Split behaviour unknown",
        tj("badbehavior", splitByteLevelJson(regexSplit("\\d", "Sideways"))), "tokenizer.json",
        "'pre_tokenizer.pretokenizers[0].behavior' is 'Sideways'");
    json byteLevelFirst = splitByteLevelJson(regexSplit("\\d"));
    std::swap(byteLevelFirst["pre_tokenizer"]["pretokenizers"][0],
              byteLevelFirst["pre_tokenizer"]["pretokenizers"][1]);
    row("ByteLevel before Split", tj("bytelevelfirst", byteLevelFirst), "tokenizer.json",
        "'pre_tokenizer.pretokenizers[1]' follows a ByteLevel");
    row("unsupported normalizer",
        tj("lowercase", splitByteLevelJson(regexSplit("\\d"), {{"type", "Lowercase"}})),
        "tokenizer.json", "field 'normalizer.type' is 'Lowercase'");
    json sp = sentencePieceStyle("gemma").file;
    json nested = sp;
    nested["normalizer"] = {{"type", "Sequence"},
                            {"normalizers", {{{"type", "NFC"}}, {{"type", "Precompiled"}}}}};
    row("unsupported normalizer in a Sequence", tj("precompiled", nested), "tokenizer.json",
        "'normalizer.normalizers[1].type' is 'Precompiled'");
    json replaceWithout = sp;
    replaceWithout["normalizer"].erase("content");
    row("Replace without content", tj("nocontent", replaceWithout), "tokenizer.json",
        "'normalizer.content' must be a string");
    json metaspace = sp;
    metaspace["decoder"]["decoders"][0] = {{"type", "Metaspace"}};
    row("unsupported decoder", tj("metaspacedec", metaspace), "tokenizer.json",
        "'decoder.decoders[0].type' is 'Metaspace'");
    json strip = sp;
    strip["decoder"]["decoders"].push_back({{"type", "Strip"}, {"content", "ab"}, {"start", 1}});
    row("Strip of two characters", tj("strip", strip), "tokenizer.json",
        "'decoder.decoders[3].content' must be one character");
    json twoBefore = sp;
    twoBefore["post_processor"]["single"].insert(twoBefore["post_processor"]["single"].begin(),
                                                 twoBefore["post_processor"]["single"][0]);
    row("template with two tokens before the text", tj("twobefore", twoBefore), "tokenizer.json",
        "'post_processor.single' puts 2 tokens");
    json unknownSpecial = sp;
    unknownSpecial["post_processor"]["single"][0]["SpecialToken"]["id"] = "<cls>";
    row("template naming a token it does not define", tj("nocls", unknownSpecial), "tokenizer.json",
        "'post_processor.special_tokens' has no entry '<cls>'");
    json roberta = sp;
    roberta["post_processor"] = {{"type", "RobertaProcessing"}};
    row("unsupported post_processor", tj("roberta", roberta), "tokenizer.json",
        "'post_processor.type' is 'RobertaProcessing'");
    json noUnk = sp;
    noUnk["model"]["unk_token"] = "<oov>";
    row("unk_token not in the vocabulary", tj("nounk", noUnk), "tokenizer.json",
        "'model.unk_token' ('<oov>') is not in model.vocab");
    json emptyAdded = sp;
    emptyAdded["added_tokens"][2]["content"] = "";
    row("added token without content", tj("emptyadded", emptyAdded), "tokenizer.json",
        "'added_tokens[2]' needs an integer 'id' and a non-empty 'content'");
    json dropout = sp;
    dropout["model"]["dropout"] = 0.1;
    row("BPE dropout", tj("dropout", dropout), "tokenizer.json", "'model.dropout'");
    json prefix = sp;
    prefix["model"]["continuing_subword_prefix"] = "##";
    row("continuing_subword_prefix", tj("prefix", prefix), "tokenizer.json",
        "'model.continuing_subword_prefix'");
    json newlinePiece = sp;
    newlinePiece["model"]["vocab"]["\n\nx"] = "seven";
    row("vocabulary entry with a newline, not an id", tj("newline", newlinePiece), "tokenizer.json",
        "entry '\\n\\nx' must be an integer id");
    row("garbage tokenizer.model",
        dirWith("garbage", {{"tokenizer.model", "this is not a protobuf\n\x01\x02\xFF"}}),
        "tokenizer.model", "SentencePiece");
    row("tokenizer_config.json bos not in vocab",
        dirWith("badbos", {{"vocab.json", vocab},
                           {"merges.txt", "#version: 0.2\n"},
                           {"tokenizer_config.json", R"({"bos_token": "<s>"})"}}),
        "tokenizer_config.json", "bos_token");
    row("config.json id out of range",
        dirWith("badcfg", {{"vocab.json", vocab},
                           {"merges.txt", "#version: 0.2\n"},
                           {"config.json", R"({"eos_token_id": 99999})"}}),
        "config.json", "eos_token_id");
}

void TestTokenizers::badInputNamesTheFile() {
    QFETCH(QString, path);
    QFETCH(QString, mustName);
    QFETCH(QString, detail);
    const std::string message = errorOf([&] { cs::loadTokenizer(path.toStdString()); });
    QVERIFY2(message.find(mustName.toStdString()) != std::string::npos, message.c_str());
    QVERIFY2(message.find(detail.toStdString()) != std::string::npos, message.c_str());
    QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    QVERIFY2(message.rfind("<", 0) != 0, message.c_str());
}

QTEST_MAIN(TestTokenizers)
#include "test_tokenizers.moc"
