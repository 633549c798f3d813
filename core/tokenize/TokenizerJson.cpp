// Reading a tokenizer.json into an HfTokenizer: the pipeline parts first (so that a file asking
// for something we do not run is refused before its vocabulary is read), then the BPE model, the
// added tokens and what the post-processor puts in front of a text.
#include "tokenize/HfTokenizer.h"
#include "tokenize/Utf8.h"
#include "tokenize/JsonSite.h"

#include <nlohmann/json.hpp>

#include <optional>

namespace cs {
namespace {

std::unique_ptr<BpeModel> readModel(const JsonSite& model, bool byteLevel) {
    if (model.isNull()) model.fail("is missing");
    if (model.type() != "BPE") model.unsupportedType("BPE");
    const auto& j = model.json();
    if (j.contains("dropout") && j.at("dropout").is_number() && j.at("dropout").get<double>() > 0)
        throw UnsupportedTokenizer(model.file() +
                                   ": field 'model.dropout' is set; BPE dropout "
                                   "(random merges) is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.has(key) && !model.string(key).empty())
            throw UnsupportedTokenizer(model.file() + ": field 'model." + key +
                                       "' is set, which is not supported");
    }
    BpeModel::Options options;
    options.byteLevel = byteLevel;
    options.ignoreMerges = model.boolean("ignore_merges", false);
    options.byteFallback = model.boolean("byte_fallback", false);
    options.fuseUnk = model.boolean("fuse_unk", false);
    options.order = BpeModel::MergeOrder::LowestFirst;
    auto bpe = std::make_unique<BpeModel>(options);

    const std::string& file = model.file();
    if (!model.has("vocab") || !j.at("vocab").is_object() || j.at("vocab").empty())
        model.failAt("vocab", "must be a non-empty object of piece -> id");
    const size_t merges = model.has("merges") ? model.arraySize("merges") : 0;
    bpe->reserve(j.at("vocab").size(), merges);
    for (const auto& [piece, id] : j.at("vocab").items()) {
        if (!id.is_number_integer())
            model.failAt("vocab", "entry '" + utf8::forMessage(piece) + "' must be an integer id");
        bpe->addPiece(file, piece, id.get<long>());
    }
    const auto& list = merges ? j.at("merges") : j;
    std::string a, b, missing;
    for (size_t i = 0; i < merges; ++i) {
        const auto& m = list[i];
        auto field = [i] { return "field 'model.merges[" + std::to_string(i) + "]'"; };
        if (m.is_string()) {
            if (!BpeModel::splitMerge(m.get_ref<const std::string&>(), &a, &b))
                failIn(file, field() + " must be two pieces separated by one space");
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            a = m[0].get_ref<const std::string&>();
            b = m[1].get_ref<const std::string&>();
        } else {
            failIn(file, field() + " must be \"a b\" or [\"a\", \"b\"]");
        }
        if (!bpe->addMerge(a, b, static_cast<int>(i), &missing))
            failIn(file, field() + ": " + missing + " is not in model.vocab");
    }
    if (model.has("unk_token")) {
        const std::string unk = model.string("unk_token");
        const int id = bpe->idOf(unk);
        if (id < 0)
            model.failAt("unk_token", "('" + utf8::forMessage(unk) + "') is not in model.vocab");
        bpe->setUnknown(id);
    }
    bpe->finish();
    return bpe;
}

void readAddedTokens(const JsonSite& added, HfTokenizer::Parts& parts) {
    if (added.isNull()) return;
    if (!added.json().is_array()) added.fail("must be an array");
    for (size_t i = 0; i < added.json().size(); ++i) {
        const JsonSite a = added.at(i);
        if (!a.json().is_object() || !a.has("id") || !a.json().at("id").is_number_integer() ||
            !a.has("content") || !a.json().at("content").is_string() || a.string("content").empty())
            a.fail("needs an integer 'id' and a non-empty 'content'");
        AddedTokens::Token t;
        t.content = a.string("content");
        const long id = a.integer("id", -1);
        if (id < 0 || id >= (1L << 24)) a.failAt("id", "is out of range");
        t.id = static_cast<int>(id);
        t.lstrip = a.boolean("lstrip", false);
        t.rstrip = a.boolean("rstrip", false);
        t.singleWord = a.boolean("single_word", false);
        parts.addedPieces[t.id] = t.content;
        // A normalized token is looked for in normalised text, as its normalised content.
        if (a.boolean("normalized", !a.boolean("special", false))) {
            if (!parts.normalizer.empty()) t.content = parts.normalizer.apply(t.content);
            if (!t.content.empty()) parts.normalizedAdded.add(std::move(t));
        } else {
            parts.rawAdded.add(std::move(t));
        }
    }
}

// The ids a TemplateProcessing puts before the text ($A) of a single sequence.
std::vector<int> templatePrefix(const JsonSite& tp) {
    const JsonSite single = tp.at("single");
    const size_t count = tp.arraySize("single");
    std::vector<int> ids;
    for (size_t i = 0; i < count; ++i) {
        const JsonSite item = single.at(i);
        if (item.has("Sequence")) break;
        if (!item.has("SpecialToken")) item.fail("must hold a SpecialToken or a Sequence");
        const std::string name = item.at("SpecialToken").string("id");
        const JsonSite special = tp.at("special_tokens").at(name);
        if (special.isNull())
            tp.failAt("special_tokens", "has no entry '" + utf8::forMessage(name) + "'");
        const size_t n = special.arraySize("ids");
        for (size_t k = 0; k < n; ++k) {
            const auto& id = special.json().at("ids").at(k);
            if (!id.is_number_integer() || id.get<long>() < 0 || id.get<long>() >= (1L << 24))
                special.failAt("ids", "must hold ids (integers from 0)");
            ids.push_back(static_cast<int>(id.get<long>()));
        }
    }
    return ids;
}

// The TemplateProcessing that decides what goes in front of a text, if any.
std::optional<JsonSite> findTemplate(const JsonSite& post) {
    if (post.isNull()) return std::nullopt;
    const std::string type = post.type();
    if (type == "TemplateProcessing") return post;
    if (type == "ByteLevel") return std::nullopt;  // trims offsets only
    if (type != "Sequence") post.unsupportedType("TemplateProcessing, ByteLevel, Sequence");
    const size_t count = post.arraySize("processors");
    std::optional<JsonSite> found;
    for (size_t i = 0; i < count; ++i)
        if (auto t = findTemplate(post.at("processors").at(i))) found.emplace(*t);
    return found;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::fromTokenizerJson(const std::string& path,
                                                            const nlohmann::json& root) {
    if (!root.is_object()) failIn(path, "expected a JSON object");
    const JsonSite top(root, path, "");
    Parts parts;
    parts.normalizer = Normalizer::fromJson(top.at("normalizer"));
    parts.preTokenizer = PreTokenizer::fromJson(top.at("pre_tokenizer"));
    parts.decoder = Decoder::fromJson(top.at("decoder"));
    const std::optional<JsonSite> tmpl = findTemplate(top.at("post_processor"));
    std::vector<int> prefix;
    if (tmpl) {
        prefix = templatePrefix(*tmpl);
        if (prefix.size() > 1)
            throw UnsupportedTokenizer(path + ": field '" + tmpl->path() + ".single' puts " +
                                       std::to_string(prefix.size()) +
                                       " tokens before the text; only one (a BOS) is supported");
    }
    parts.model = readModel(top.at("model"), parts.preTokenizer.byteLevel());
    readAddedTokens(top.at("added_tokens"), parts);

    auto t = std::make_unique<HfTokenizer>(std::move(parts));
    // GPT-2's convention, which tokenizer.json cannot state; tokenizer_config.json may say more.
    const int endOfText = t->idOf("<|endoftext|>");
    t->setBos(endOfText);
    t->setEos(endOfText);
    if (tmpl) {
        t->templateDecidesBos_ = true;
        if (!prefix.empty()) {
            if (prefix[0] < 0 || prefix[0] >= t->vocabSize())
                failIn(path, "field '" + tmpl->path() + ".special_tokens': id " +
                                 std::to_string(prefix[0]) + " is outside the vocabulary");
            t->setBos(prefix[0]);
        }
        t->setPrependBos(!prefix.empty());
    }
    return t;
}

}  // namespace cs
