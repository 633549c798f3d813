#include "tokenize/Gpt2BpeTokenizer.h"

#include "io/JsonFile.h"
#include "util/Error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>

namespace cs {
namespace {

// GPT-2's pre-tokenizer pattern, verbatim.
const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Python's `regex` (the OpenAI reference) and Oniguruma (Hugging Face) mean Unicode White_Space
// by \s; PCRE2's UCP \s also matches U+180E. So \s and \S are spelled out for PCRE2.
std::string pcrePattern() {
    const std::string ws = R"(\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029})"
                           R"(\x{202F}\x{205F}\x{3000})";
    std::string p = kGpt2Pattern;
    auto replaceAll = [&p](const std::string& from, const std::string& to) {
        for (size_t at = p.find(from); at != std::string::npos; at = p.find(from, at + to.size()))
            p.replace(at, from.size(), to);
    };
    replaceAll("[^\\s", "[^" + ws);
    replaceAll("(?!\\S)", "(?![^" + ws + "])");
    replaceAll("\\s+", "[" + ws + "]+");
    return p;
}

bool isWhiteSpace(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// Letters and digits new in Unicode 15, which the reference's `regex` knows and Debian 12's PCRE2
// (Unicode 14) does not; all lie outside the BMP.
struct CpRange {
    uint32_t lo, hi;
    char cls;
};
const CpRange kNewInUnicode15[] = {
    {0x1123F, 0x11240, 'L'}, {0x11F02, 0x11F02, 'L'}, {0x11F04, 0x11F10, 'L'},
    {0x11F12, 0x11F33, 'L'}, {0x11F50, 0x11F59, 'N'}, {0x1342F, 0x1342F, 'L'},
    {0x13441, 0x13446, 'L'}, {0x1B132, 0x1B132, 'L'}, {0x1B155, 0x1B155, 'L'},
    {0x1D2C0, 0x1D2D3, 'N'}, {0x1DF25, 0x1DF2A, 'L'}, {0x1E030, 0x1E06D, 'L'},
    {0x1E4D0, 0x1E4EB, 'L'}, {0x1E4F0, 0x1E4F9, 'N'}, {0x2B739, 0x2B739, 'L'},
    {0x31350, 0x323AF, 'L'},
};

char newInUnicode15(uint32_t c) {
    if (c < 0x1123F) return 0;
    for (const auto& r : kNewInUnicode15)
        if (c >= r.lo && c <= r.hi) return r.cls;
    return 0;
}

// A well-formed UTF-8 character at p: its length, with *cp set. Otherwise minus the length of the
// maximal ill-formed subpart (at least 1), the unit that a lossy decoder replaces by one U+FFFD.
int scanUtf8(const unsigned char* p, size_t n, uint32_t* cp) {
    const unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // no encoded surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i < len; ++i) {
        if (static_cast<size_t>(i) >= n || p[i] < lo || p[i] > hi) return -i;
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

void appendUtf8(std::string& s, uint32_t c) {
    if (c < 0x80) {
        s += static_cast<char>(c);
    } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    }
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// moved to U+0100.. in byte order, so every byte is a visible character in vocab.json.
struct ByteMap {
    std::array<std::string, 256> chars;  // byte -> its character, UTF-8
    std::vector<int> byteOf;             // code point (< 324) -> byte, or -1
    ByteMap() : byteOf(256 + 68, -1) {
        uint32_t moved = 0;
        for (int b = 0; b < 256; ++b) {
            const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            const uint32_t cp = keep ? b : 256 + moved++;
            appendUtf8(chars[b], cp);
            byteOf[cp] = b;
        }
    }
};

const ByteMap& byteMap() {
    static const ByteMap m;
    return m;
}

std::string pieceBytes(const std::string& piece) {
    const auto& m = byteMap();
    std::string out;
    const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
    for (size_t i = 0; i < piece.size();) {
        uint32_t cp = 0;
        const int k = scanUtf8(p + i, piece.size() - i, &cp);
        const int len = k > 0 ? k : -k;
        if (k > 0 && cp < m.byteOf.size() && m.byteOf[cp] >= 0)
            out += static_cast<char>(m.byteOf[cp]);
        else
            out.append(piece, i, len);  // not a byte-level character: keep it as written
        i += len;
    }
    return out;
}

// PCRE2 needs valid UTF-8 and knows Unicode 14. The reference sees a stray byte as a lone surrogate
// (neither space, letter nor digit) and knows Unicode 15. Such characters get same-class stand-ins
// before matching; `origin` maps offsets in the rewritten text back to the original.
bool needsStandIns(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < s.size();) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const int k = scanUtf8(p + i, s.size() - i, &cp);
        if (k <= 0 || (k == 4 && newInUnicode15(cp))) return true;
        i += k;
    }
    return false;
}

void withStandIns(std::string_view s, std::string& out, std::vector<size_t>& origin) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    out.reserve(s.size() + 16);
    origin.reserve(s.size() + 17);
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        const int k = scanUtf8(p + i, s.size() - i, &cp);
        std::string_view rep;
        size_t len;
        if (k <= 0) {
            rep = "\xEE\x80\x80";  // U+E000, private use: an "other" character, one per stray byte
            len = 1;
        } else if (const char cls = k == 4 ? newInUnicode15(cp) : 0) {
            rep = cls == 'L' ? "a" : "0";
            len = 4;
        } else {
            rep = s.substr(i, k);
            len = k;
        }
        out.append(rep.data(), rep.size());
        origin.insert(origin.end(), rep.size(), i);
        i += len;
    }
    origin.push_back(s.size());
}

// Lossy UTF-8 repair as Python's bytes.decode('utf-8', errors='replace') does it.
std::string repairUtf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        const int k = scanUtf8(p + i, s.size() - i, &cp);
        if (k > 0) out.append(s, i, k);
        else out += "\xEF\xBF\xBD";
        i += k > 0 ? k : -k;
    }
    return out;
}

// The start of the character that ends at `end`, not before `begin`.
size_t charStartBefore(std::string_view s, size_t begin, size_t end) {
    size_t i = end - 1;
    while (i > begin && end - i < 4 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return i;
}

bool isWhiteSpaceAt(std::string_view s, size_t i, size_t* len) {
    uint32_t cp = 0;
    const int k = scanUtf8(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i, &cp);
    *len = k > 0 ? k : 1;
    return k > 0 && isWhiteSpace(cp);
}

// Hugging Face's single_word test uses Unicode alphanumerics; every non-ASCII byte counts as one
// here, which is right for letters and errs (towards not matching) for non-ASCII punctuation.
bool isWordByte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::string clip(const std::string& s) { return s.size() > 60 ? s.substr(0, 60) + "..." : s; }

constexpr size_t kMaxCachedWord = 256;
constexpr size_t kMaxCacheEntries = 1 << 18;

}  // namespace

struct Gpt2BpeTokenizer::Regex {
    pcre2_code* code = nullptr;
    bool jit = false;
    ~Regex() {
        if (code) pcre2_code_free(code);
    }
};

Gpt2BpeTokenizer::Gpt2BpeTokenizer() { byteIds_.fill(-1); }
Gpt2BpeTokenizer::~Gpt2BpeTokenizer() = default;

void Gpt2BpeTokenizer::addPiece(const std::string& file, const std::string& piece, long id) {
    if (id < 0 || id >= (1L << 24))
        failIn(file,
               "id " + std::to_string(id) + " of piece '" + clip(piece) + "' is out of range");
    if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(id + 1);
    if (pieces_[id].empty()) pieces_[id] = piece;
    ids_[piece] = static_cast<int>(id);
}

void Gpt2BpeTokenizer::addMerge(const std::string& where, const std::string& context,
                                const std::string& a, const std::string& b, int rank,
                                const std::string& vocabName) {
    auto idOrFail = [&](const std::string& p, const char* what) {
        auto it = ids_.find(p);
        if (it == ids_.end())
            failIn(where, context + what + " '" + clip(p) + "' is not in " + vocabName);
        return it->second;
    };
    const int left = idOrFail(a, "piece");
    const int right = idOrFail(b, "piece");
    const int merged = idOrFail(a + b, "merged piece");
    // A repeated merge takes its last rank, as in both reference implementations.
    merges_[(static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right)] = {rank, merged};
}

void Gpt2BpeTokenizer::finish() {
    const auto& m = byteMap();
    for (int b = 0; b < 256; ++b) byteIds_[b] = idOf(m.chars[b]);
    bytes_.assign(pieces_.size(), std::string());
    for (size_t id = 0; id < pieces_.size(); ++id) bytes_[id] = pieceBytes(pieces_[id]);
    for (const auto& t : added_) bytes_[t.id] = t.content;
    std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& x, const AddedToken& y) {
        return x.content.size() > y.content.size();
    });
    for (const auto& t : added_) addedFirstByte_[static_cast<unsigned char>(t.content[0])] = true;

    regex_ = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE at = 0;
    const std::string pattern = pcrePattern();
    regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
    if (!regex_->code) throw Error("GPT-2 pre-tokenizer pattern failed to compile in PCRE2");
    regex_->jit = pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE) == 0;

    bosId_ = eosId_ = idOf("<|endoftext|>");
    prependBos_ = false;
}

std::unique_ptr<Gpt2BpeTokenizer> Gpt2BpeTokenizer::fromFiles(const std::string& vocabPath,
                                                              const std::string& mergesPath) {
    const auto vocab = readJsonFile(vocabPath);
    if (!vocab.is_object() || vocab.empty())
        failIn(vocabPath, "expected a non-empty JSON object of piece -> id");
    std::unique_ptr<Gpt2BpeTokenizer> t(new Gpt2BpeTokenizer);
    for (const auto& [piece, id] : vocab.items()) {
        if (!id.is_number_integer())
            failIn(vocabPath, "entry '" + clip(piece) + "' must map to an integer id");
        t->addPiece(vocabPath, piece, id.get<long>());
    }
    std::ifstream in(mergesPath, std::ios::binary);
    if (!in) failIn(mergesPath, "cannot open (missing file?)");
    const std::string vocabName = "vocab.json";
    std::string line;
    int lineNo = 0, rank = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0)) continue;
        const std::string where = mergesPath + ":" + std::to_string(lineNo);
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() ||
            line.find(' ', sp + 1) != std::string::npos)
            failIn(where, "expected two pieces separated by one space, got '" + clip(line) + "'");
        t->addMerge(where, "", line.substr(0, sp), line.substr(sp + 1), rank++, vocabName);
    }
    t->finish();
    return t;
}

std::string Gpt2BpeTokenizer::unsupportedReason(const nlohmann::json& root) {
    auto typeOf = [](const nlohmann::json& j) {
        return j.is_object() && j.contains("type") && j["type"].is_string()
                   ? j["type"].get<std::string>()
                   : std::string("?");
    };
    if (!root.is_object()) return "expected a JSON object";
    if (!root.contains("model") || !root["model"].is_object()) return "missing object 'model'";
    const auto& model = root["model"];
    if (typeOf(model) != "BPE")
        return "field 'model.type' is '" + typeOf(model) +
               "'; only BPE with a ByteLevel pre_tokenizer is supported here";
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
            return std::string("field 'model.") + key + "' is not supported with byte-level BPE";
    }
    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
        const auto& n = root["normalizer"];
        const bool emptySequence = typeOf(n) == "Sequence" && n.contains("normalizers") &&
                                   n["normalizers"].is_array() && n["normalizers"].empty();
        if (!emptySequence) return "field 'normalizer' ('" + typeOf(n) + "') is not supported";
    }
    const nlohmann::json* pre = root.contains("pre_tokenizer") ? &root["pre_tokenizer"] : nullptr;
    if (pre && typeOf(*pre) == "Sequence" && pre->contains("pretokenizers") &&
        (*pre)["pretokenizers"].is_array() && (*pre)["pretokenizers"].size() == 1)
        pre = &(*pre)["pretokenizers"][0];
    if (!pre || typeOf(*pre) != "ByteLevel")
        return "field 'pre_tokenizer' ('" + (pre ? typeOf(*pre) : std::string("none")) +
               "') is not supported; only ByteLevel is";
    return "";
}

std::unique_ptr<Gpt2BpeTokenizer> Gpt2BpeTokenizer::fromTokenizerJson(const std::string& path,
                                                                      const nlohmann::json& root) {
    const std::string why = unsupportedReason(root);
    if (!why.empty()) failIn(path, why);
    const auto& model = root["model"];
    JsonFields fields(model, path);
    if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
        failIn(path, "field 'model.vocab' must be a non-empty object of piece -> id");
    std::unique_ptr<Gpt2BpeTokenizer> t(new Gpt2BpeTokenizer);
    for (const auto& [piece, id] : model["vocab"].items()) {
        if (!id.is_number_integer())
            failIn(path, "field 'model.vocab': entry '" + clip(piece) + "' must be an integer id");
        t->addPiece(path, piece, id.get<long>());
    }
    if (fields.has("merges")) {
        const auto& merges = model["merges"];
        if (!merges.is_array()) failIn(path, "field 'model.merges' must be an array");
        for (size_t i = 0; i < merges.size(); ++i) {
            const auto& m = merges[i];
            const std::string field = "field 'model.merges[" + std::to_string(i) + "]'";
            std::string a, b;
            if (m.is_string()) {
                const auto s = m.get<std::string>();
                const size_t sp = s.find(' ');
                if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
                    s.find(' ', sp + 1) != std::string::npos)
                    failIn(path, field + " must be two pieces separated by one space");
                a = s.substr(0, sp), b = s.substr(sp + 1);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                a = m[0].get<std::string>(), b = m[1].get<std::string>();
            } else {
                failIn(path, field + " must be \"a b\" or [\"a\", \"b\"]");
            }
            t->addMerge(path, field + ": ", a, b, static_cast<int>(i), "model.vocab");
        }
    }
    if (model.contains("unk_token") && model["unk_token"].is_string())
        t->unkId_ = t->idOf(model["unk_token"].get<std::string>());
    t->ignoreMerges_ = fields.booleanOr("ignore_merges", false);

    const nlohmann::json* pre = &root["pre_tokenizer"];
    if ((*pre)["type"] == "Sequence") pre = &(*pre)["pretokenizers"][0];
    JsonFields preFields(*pre, path);
    t->addPrefixSpace_ = preFields.booleanOr("add_prefix_space", false);
    t->useRegex_ = preFields.booleanOr("use_regex", true);

    if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
        const auto& added = root["added_tokens"];
        if (!added.is_array()) failIn(path, "field 'added_tokens' must be an array");
        for (size_t i = 0; i < added.size(); ++i) {
            const auto& a = added[i];
            const std::string field = "added_tokens[" + std::to_string(i) + "]";
            if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
                !a.contains("content") || !a["content"].is_string() ||
                a["content"].get<std::string>().empty())
                failIn(path,
                       "field '" + field + "' needs an integer 'id' and a non-empty 'content'");
            JsonFields f(a, path);
            AddedToken tok{a["content"].get<std::string>(), static_cast<int>(a["id"].get<long>()),
                           f.booleanOr("lstrip", false), f.booleanOr("rstrip", false),
                           f.booleanOr("single_word", false)};
            t->addPiece(path, tok.content, tok.id);
            t->added_.push_back(tok);
        }
    }
    t->finish();
    return t;
}

int Gpt2BpeTokenizer::idOf(const std::string& piece) const {
    auto it = ids_.find(piece);
    return it == ids_.end() ? -1 : it->second;
}

std::string Gpt2BpeTokenizer::piece(int id) const {
    return id >= 0 && id < vocabSize() ? pieces_[id] : std::string();
}

std::string Gpt2BpeTokenizer::tokenText(int id) const {
    return id >= 0 && id < vocabSize() ? bytes_[id] : std::string();
}

std::string Gpt2BpeTokenizer::decode(const std::vector<int>& ids) const {
    std::string raw;
    for (int id : ids)
        if (id >= 0 && id < vocabSize()) raw += bytes_[id];
    return repairUtf8(raw);
}

const Gpt2BpeTokenizer::AddedToken* Gpt2BpeTokenizer::addedAt(std::string_view text,
                                                              size_t pos) const {
    if (!addedFirstByte_[static_cast<unsigned char>(text[pos])]) return nullptr;
    for (const auto& t : added_) {
        if (text.compare(pos, t.content.size(), t.content) != 0) continue;
        const size_t end = pos + t.content.size();
        if (t.singleWord && ((pos > 0 && isWordByte(text[pos - 1])) ||
                             (end < text.size() && isWordByte(text[end]))))
            continue;
        return &t;
    }
    return nullptr;
}

std::vector<int> Gpt2BpeTokenizer::encode(const std::string& textIn) const {
    const std::string_view text(textIn);
    std::vector<int> out;
    out.reserve(text.size() / 3 + 1);
    if (added_.empty()) {
        encodeOrdinary(text, out);
        return out;
    }
    // Added tokens first, leftmost-longest, as Hugging Face does; the text between them is
    // pre-tokenized on its own.
    size_t segment = 0;
    for (size_t i = 0; i < text.size();) {
        const AddedToken* t = addedAt(text, i);
        if (!t) {
            ++i;
            continue;
        }
        size_t segmentEnd = i, next = i + t->content.size(), len = 0;
        if (t->lstrip) {
            while (segmentEnd > segment) {
                const size_t start = charStartBefore(text, segment, segmentEnd);
                if (!isWhiteSpaceAt(text, start, &len) || start + len != segmentEnd) break;
                segmentEnd = start;
            }
        }
        if (t->rstrip)
            while (next < text.size() && isWhiteSpaceAt(text, next, &len)) next += len;
        encodeOrdinary(text.substr(segment, segmentEnd - segment), out);
        out.push_back(t->id);
        segment = i = next;
    }
    encodeOrdinary(text.substr(segment), out);
    return out;
}

void Gpt2BpeTokenizer::encodeOrdinary(std::string_view text, std::vector<int>& out) const {
    if (text.empty()) return;
    std::string prefixed;
    if (addPrefixSpace_ && text[0] != ' ') {
        prefixed = " " + std::string(text);
        text = prefixed;
    }
    if (!useRegex_) {
        encodeWord(text, out);
        return;
    }
    std::string rewritten;
    std::vector<size_t> origin;
    const bool mapped = needsStandIns(text);
    if (mapped) withStandIns(text, rewritten, origin);
    const std::string_view subject = mapped ? std::string_view(rewritten) : text;
    auto orig = [&](size_t at) { return mapped ? origin[at] : at; };

    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
    if (!md) throw Error("out of memory for PCRE2 match data");
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    size_t pos = 0;
    while (pos < subject.size()) {
        const int rc = regex_->jit ? pcre2_jit_match(regex_->code, s, subject.size(), pos, 0,
                                                     md.get(), nullptr)
                                   : pcre2_match(regex_->code, s, subject.size(), pos,
                                                 PCRE2_NO_UTF_CHECK, md.get(), nullptr);
        // Every character is a space, letter, digit or other, so the pattern always matches;
        // should PCRE2 give up (resource limits), the rest becomes one word rather than vanish.
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t begin = rc >= 0 ? ov[0] : subject.size();
        const size_t end = rc >= 0 ? ov[1] : subject.size();
        if (begin > pos) encodeWord(text.substr(orig(pos), orig(begin) - orig(pos)), out);
        if (end > begin) encodeWord(text.substr(orig(begin), orig(end) - orig(begin)), out);
        if (end <= pos) break;
        pos = end;
    }
}

void Gpt2BpeTokenizer::encodeWord(std::string_view word, std::vector<int>& out) const {
    if (word.size() == 1) {
        const int id = byteIds_[static_cast<unsigned char>(word[0])];
        if (id >= 0) out.push_back(id);
        else if (unkId_ >= 0) out.push_back(unkId_);
        return;
    }
    if (ignoreMerges_) {
        std::string mapped;
        for (unsigned char c : word) mapped += byteMap().chars[c];
        auto it = ids_.find(mapped);
        if (it != ids_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = word.size() <= kMaxCachedWord;
    std::string key;
    if (cacheable) {
        key.assign(word.data(), word.size());
        std::shared_lock<std::shared_mutex> lock(cacheMutex_);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t first = out.size();
    bpe(word, out);
    if (cacheable) {
        std::vector<int> ids(out.begin() + first, out.end());
        std::unique_lock<std::shared_mutex> lock(cacheMutex_);
        if (cache_.size() >= kMaxCacheEntries) cache_.clear();
        cache_.emplace(std::move(key), std::move(ids));
    }
}

// The reference repeatedly takes the lowest-ranked adjacent pair and merges all of its
// occurrences left to right. Same result here in O(n log n): a heap of candidate pairs ordered by
// (rank, position), one rank taken as a batch so that merges it creates wait for the next round,
// and stale candidates recognised by their symbol ids.
void Gpt2BpeTokenizer::bpe(std::string_view word, std::vector<int>& out) const {
    struct Sym {
        int id, prev, next;
    };
    struct Cand {
        int rank, pos, left, right, merged;
    };
    std::vector<Sym> syms;
    syms.reserve(word.size());
    for (unsigned char c : word) {
        int id = byteIds_[c] >= 0 ? byteIds_[c] : unkId_;
        if (id < 0) continue;  // a byte with no piece and no unk: dropped, as Hugging Face does
        const int n = static_cast<int>(syms.size());
        syms.push_back({id, n - 1, -1});
        if (n > 0) syms[n - 1].next = n;
    }
    auto later = [](const Cand& a, const Cand& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    std::vector<Cand> heap, batch;
    auto consider = [&](int pos) {
        const int next = syms[pos].next;
        if (next < 0) return;
        auto it = merges_.find((static_cast<uint64_t>(syms[pos].id) << 32) |
                               static_cast<uint32_t>(syms[next].id));
        if (it == merges_.end()) return;
        heap.push_back({it->second.rank, pos, syms[pos].id, syms[next].id, it->second.merged});
        std::push_heap(heap.begin(), heap.end(), later);
    };
    for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) consider(i);
    while (!heap.empty()) {
        const int rank = heap.front().rank;
        batch.clear();
        while (!heap.empty() && heap.front().rank == rank) {
            std::pop_heap(heap.begin(), heap.end(), later);
            batch.push_back(heap.back());
            heap.pop_back();
        }
        for (const Cand& c : batch) {  // ascending position: left to right
            Sym& a = syms[c.pos];
            if (a.id != c.left || a.next < 0 || syms[a.next].id != c.right) continue;
            const int dead = a.next;
            a.id = c.merged;
            a.next = syms[dead].next;
            if (a.next >= 0) syms[a.next].prev = c.pos;
            syms[dead].id = -1;
            if (a.prev >= 0) consider(a.prev);
            consider(c.pos);
        }
    }
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace cs
