// Tokenizers against independent references: tests/reference/ref_gpt2_bpe.py (the original GPT-2
// encoder algorithm in Python) and the sentencepiece Python package.
#include <QtTest>

#include "TestSupport.h"
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
    for (const auto& t : plain) {
        QVERIFY(!fromJson->encode(t).empty());
        QVERIFY(fromJson->encode(t) == fromFiles->encode(t));
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

    // A tokenizer.json we cannot run falls through to the tokenizer.model beside it.
    const std::string both = cstest::makeTempDir("spm-both");
    cstest::writeFile(both + "/tokenizer.model", cstest::readFile(dir + "/tokenizer.model"));
    cstest::writeFile(both + "/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
    cstest::writeFile(both + "/tokenizer_config.json", R"({"add_bos_token": false})");
    auto fallback = cs::loadTokenizer(both);
    QCOMPARE(fallback->vocabSize(), static_cast<int>(pieces.size()));
    QVERIFY(!fallback->prependBos());
    QVERIFY(fallback->encode(texts[2]) == ref["ids"][2].get<Ids>());
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
