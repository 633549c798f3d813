#include "train/TextCorpus.h"

#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <fstream>
#include <sstream>

namespace cs {

CorpusSplit readCorpus(const std::string& path, double heldOutFraction) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failIn(path, "cannot open corpus (missing file?)");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<std::pair<size_t, std::string>> paragraphs;  // (start offset, text)
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) paragraphs.emplace_back(pos, std::move(line));
        pos = end + 1;
    }
    if (paragraphs.size() < 2) failIn(path, "corpus has fewer than two non-empty lines of text");
    const size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - heldOutFraction));
    CorpusSplit split;
    for (auto& [start, p] : paragraphs) {
        if (start < cut || split.train.empty()) {
            split.train.push_back(std::move(p));
        } else {
            split.heldOutBytes += static_cast<long>(p.size());
            split.heldOut.push_back(std::move(p));
        }
    }
    if (heldOutFraction > 0 && split.heldOut.empty()) failIn(path, "corpus too small to hold out any text");
    return split;
}

std::vector<int32_t> tokenStream(const Tokenizer& tok, const std::vector<std::string>& paragraphs) {
    std::vector<int32_t> out;
    for (const auto& p : paragraphs) {
        out.push_back(tok.bosId());
        for (int id : tok.encode(p)) out.push_back(id);
    }
    return out;
}

}  // namespace cs
