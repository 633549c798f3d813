#include "tokenize/Decoder.h"

#include "tokenize/ByteLevel.h"
#include "tokenize/JsonSite.h"
#include "tokenize/Utf8.h"

#include <cstdlib>

namespace cs {
namespace {

// The byte a "<0xXX>" piece stands for, or -1.
int fallbackByte(const std::string& piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
        const char c = piece[i];
        const int digit = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                 : -1;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

template <typename Piece>
std::string joined(const std::vector<Piece>& pieces, const char* separator = "") {
    std::string out;
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (i) out += separator;
        out.append(pieces[i].data(), pieces[i].size());
    }
    return out;
}

// Up to `start` copies of the character c from the front and `stop` from the back.
std::string strip(const std::string& s, const std::string& c, long start, long stop) {
    if (c.empty()) return s;
    size_t begin = 0, end = s.size();
    for (long i = 0; i < start && end - begin >= c.size() && s.compare(begin, c.size(), c) == 0;
         ++i)
        begin += c.size();
    for (long i = 0;
         i < stop && end - begin >= c.size() && s.compare(end - c.size(), c.size(), c) == 0; ++i)
        end -= c.size();
    return s.substr(begin, end - begin);
}

}  // namespace

Decoder Decoder::fromJson(const JsonSite& site) {
    Decoder d;
    if (site.isNull())
        d.joinWithSpaces_ = true;
    else
        d.addFrom(site);
    return d;
}

Decoder Decoder::byteLevel() {
    Decoder d;
    d.steps_.emplace_back();
    return d;
}

void Decoder::addFrom(const JsonSite& site) {
    const std::string type = site.type();
    if (type == "Sequence") {
        const size_t count = site.arraySize("decoders");
        for (size_t i = 0; i < count; ++i) addFrom(site.at("decoders").at(i));
        return;
    }
    Step step;
    if (type == "ByteLevel") {
        step.kind = Step::ByteLevel;
    } else if (type == "Replace") {
        step.kind = Step::Replace;
        step.pattern = TextPattern::fromJson(site.at("pattern"));
        step.content = site.string("content");
    } else if (type == "ByteFallback") {
        step.kind = Step::ByteFallback;
    } else if (type == "Fuse") {
        step.kind = Step::Fuse;
    } else if (type == "Strip") {
        step.kind = Step::Strip;
        step.content = site.string("content");
        uint32_t cp = 0;
        if (step.content.empty() ||
            utf8::scan(step.content, 0, &cp) != static_cast<int>(step.content.size()))
            site.failAt("content", "must be one character");
        step.start = site.integer("start", 0);
        step.stop = site.integer("stop", 0);
    } else {
        site.unsupportedType("ByteLevel, Replace, ByteFallback, Fuse, Strip, Sequence");
    }
    steps_.push_back(std::move(step));
}

std::string Decoder::decode(const std::vector<std::string_view>& input) const {
    if (joinWithSpaces_) return joined(input, " ");
    std::vector<std::string> pieces;
    size_t first = 0;
    if (!steps_.empty() && steps_[0].kind == Step::ByteLevel) {  // straight from the views
        std::string bytes;
        for (std::string_view p : input)
            if (!byte_level::appendBytesOf(p, bytes)) bytes.append(p.data(), p.size());
        pieces = {utf8::repairLossy(bytes)};
        first = 1;
    } else {
        pieces.assign(input.begin(), input.end());
    }
    for (size_t s = first; s < steps_.size(); ++s) {
        const Step& step = steps_[s];
        switch (step.kind) {
        case Step::ByteLevel: {
            std::string bytes;
            for (const auto& p : pieces) bytes += byte_level::decodePiece(p);
            pieces = {utf8::repairLossy(bytes)};
            break;
        }
        case Step::Replace:
            for (auto& p : pieces) p = step.pattern.replaceAll(p, step.content);
            break;
        case Step::ByteFallback: {
            // Runs of <0xXX> pieces become their bytes when those are well-formed UTF-8, else one
            // U+FFFD per piece (not per ill-formed subpart).
            std::vector<std::string> out;
            std::string run;
            size_t runPieces = 0;
            auto flush = [&] {
                if (!runPieces) return;
                if (utf8::isWellFormed(run))
                    out.push_back(run);
                else
                    for (size_t i = 0; i < runPieces; ++i) out.push_back("\xEF\xBF\xBD");
                run.clear();
                runPieces = 0;
            };
            for (auto& p : pieces) {
                const int b = fallbackByte(p);
                if (b >= 0) {
                    run += static_cast<char>(b);
                    ++runPieces;
                } else {
                    flush();
                    out.push_back(std::move(p));
                }
            }
            flush();
            pieces.swap(out);
            break;
        }
        case Step::Fuse: pieces = {joined(pieces)}; break;
        case Step::Strip:
            for (auto& p : pieces) p = strip(p, step.content, step.start, step.stop);
            break;
        }
    }
    return joined(pieces);
}

std::string Decoder::pieceText(const std::string& piece) const {
    std::string text = piece;
    for (const Step& step : steps_) {
        switch (step.kind) {
        case Step::ByteLevel: text = byte_level::decodePiece(text); break;
        case Step::Replace: text = step.pattern.replaceAll(text, step.content); break;
        case Step::ByteFallback:
            if (const int b = fallbackByte(text); b >= 0)
                text = std::string(1, static_cast<char>(b));
            break;
        case Step::Fuse:
        case Step::Strip: break;
        }
    }
    return text;
}

}  // namespace cs
