#include "tokenize/PreTokenizer.h"

#include "tokenize/JsonSite.h"
#include "tokenize/Utf8.h"
#include "util/Error.h"

#include <algorithm>

namespace cs {
namespace {

// GPT-2's pre-tokenizer pattern, verbatim; Hugging Face's ByteLevel uses it when use_regex is on.
const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

TextPattern gpt2Pattern() {
    static const std::shared_ptr<const UnicodeRegex> regex = [] {
        std::string error;
        std::shared_ptr<const UnicodeRegex> r = UnicodeRegex::compile(kGpt2Pattern, &error);
        if (!r) throw Error("GPT-2's pre-tokenizer pattern failed to compile in PCRE2: " + error);
        return r;
    }();
    return TextPattern::regex(regex);
}

}  // namespace

PreTokenizer PreTokenizer::fromJson(const JsonSite& site) {
    PreTokenizer p;
    if (!site.isNull()) p.addFrom(site);
    return p;
}

PreTokenizer PreTokenizer::gpt2() {
    PreTokenizer p;
    Step step;
    step.kind = Step::ByteLevel;
    step.pattern = gpt2Pattern();
    p.steps_.push_back(std::move(step));
    return p;
}

void PreTokenizer::addFrom(const JsonSite& site) {
    const std::string type = site.type();
    if (byteLevel())
        throw UnsupportedTokenizer(site.file() + ": field '" + site.path() +
                                   "' follows a ByteLevel pre-tokenizer, which is supported only "
                                   "as the last one");
    if (type == "Sequence") {
        const size_t count = site.arraySize("pretokenizers");
        for (size_t i = 0; i < count; ++i) addFrom(site.at("pretokenizers").at(i));
        return;
    }
    if (type == "ByteLevel") {
        Step step;
        step.kind = Step::ByteLevel;
        step.addPrefixSpace = site.boolean("add_prefix_space", true);
        if (site.boolean("use_regex", true)) step.pattern = gpt2Pattern();
        steps_.push_back(std::move(step));
        return;
    }
    if (type != "Split") site.unsupportedType("Split, ByteLevel, Sequence");
    Step step;
    step.pattern = TextPattern::fromJson(site.at("pattern"));
    step.invert = site.boolean("invert", false);
    const std::string behavior = site.string("behavior");
    if (behavior == "Removed")
        step.behavior = Behavior::Removed;
    else if (behavior == "Isolated")
        step.behavior = Behavior::Isolated;
    else if (behavior == "MergedWithPrevious")
        step.behavior = Behavior::MergedWithPrevious;
    else if (behavior == "MergedWithNext")
        step.behavior = Behavior::MergedWithNext;
    else if (behavior == "Contiguous")
        step.behavior = Behavior::Contiguous;
    else
        site.failAt("behavior", "is '" + utf8::forMessage(behavior) +
                                    "'; expected Removed, Isolated, MergedWithPrevious, "
                                    "MergedWithNext or Contiguous");
    steps_.push_back(std::move(step));
}

void PreTokenizer::split(std::string_view text, const OnWord& onWord,
                         std::list<std::string>& arena) const {
    if (text.empty()) return;
    if (steps_.empty()) return onWord(text);
    // Every step but the last collects its pieces; the last hands words straight on.
    std::vector<std::string_view> pieces{text}, next;
    const OnWord collect = [&next](std::string_view w) { next.push_back(w); };
    for (size_t i = 0; i + 1 < steps_.size(); ++i) {
        next.clear();
        for (std::string_view piece : pieces) splitOne(steps_[i], piece, collect, arena);
        pieces.swap(next);
    }
    for (std::string_view piece : pieces) splitOne(steps_.back(), piece, onWord, arena);
}

// Hugging Face's NormalizedString::split: the pattern's matches and the text between them cover
// the piece; the behaviour decides which are kept and what they join.
void PreTokenizer::splitOne(const Step& step, std::string_view piece, const OnWord& out,
                            std::list<std::string>& arena) {
    if (step.kind == Step::ByteLevel) {
        if (step.addPrefixSpace && piece[0] != ' ') {
            arena.push_back(" " + std::string(piece));
            piece = arena.back();
        }
        if (step.pattern.empty()) return out(piece);
    }
    const Behavior behavior = step.kind == Step::ByteLevel ? Behavior::Isolated : step.behavior;
    size_t done = 0;
    if (behavior == Behavior::Isolated) {  // the common case, without the bookkeeping below
        step.pattern.forEachMatch(piece, [&](size_t begin, size_t end) {
            if (begin > done) out(piece.substr(done, begin - done));
            if (end > begin) out(piece.substr(begin, end - begin));
            done = end;
        });
        if (done < piece.size()) out(piece.substr(done));
        return;
    }
    struct Part {
        size_t begin, end;
        bool match;
    };
    std::vector<Part> parts;
    step.pattern.forEachMatch(piece, [&](size_t begin, size_t end) {
        if (begin != done) parts.push_back({done, begin, step.invert});
        parts.push_back({begin, end, !step.invert});
        done = end;
    });
    if (done != piece.size()) parts.push_back({done, piece.size(), step.invert});

    std::vector<Part> kept;
    bool previousMatch = false;
    switch (behavior) {
    case Behavior::Isolated: break;  // done above
    case Behavior::Removed:
        for (const Part& p : parts)
            if (!p.match) kept.push_back(p);
        break;
    case Behavior::Contiguous:
        for (const Part& p : parts) {
            if (p.match == previousMatch && !kept.empty())
                kept.back().end = p.end;
            else
                kept.push_back(p);
            previousMatch = p.match;
        }
        break;
    case Behavior::MergedWithPrevious:
        for (const Part& p : parts) {
            if (p.match && !previousMatch && !kept.empty())
                kept.back().end = p.end;
            else
                kept.push_back(p);
            previousMatch = p.match;
        }
        break;
    case Behavior::MergedWithNext:
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
            if (it->match && !previousMatch && !kept.empty())
                kept.back().begin = it->begin;
            else
                kept.push_back(*it);
            previousMatch = it->match;
        }
        std::reverse(kept.begin(), kept.end());
        break;
    }
    for (const Part& p : kept)
        if (p.end > p.begin) out(piece.substr(p.begin, p.end - p.begin));
}

}  // namespace cs
