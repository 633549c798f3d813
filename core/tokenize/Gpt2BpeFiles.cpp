#include "tokenize/Gpt2BpeFiles.h"

#include "io/JsonFile.h"
#include "tokenize/HfTokenizer.h"
#include "tokenize/Utf8.h"
#include "util/Error.h"

#include <fstream>

namespace cs {

std::unique_ptr<Tokenizer> loadGpt2BpeFiles(const std::string& vocabPath,
                                            const std::string& mergesPath) {
    const auto vocab = readJsonFile(vocabPath);
    if (!vocab.is_object() || vocab.empty())
        failIn(vocabPath, "expected a non-empty JSON object of piece -> id");
    BpeModel::Options options;
    options.byteLevel = true;
    options.order = BpeModel::MergeOrder::RankByRank;
    auto model = std::make_unique<BpeModel>(options);
    for (const auto& [piece, id] : vocab.items()) {
        if (!id.is_number_integer())
            failIn(vocabPath, "entry '" + utf8::forMessage(piece) + "' must map to an integer id");
        model->addPiece(vocabPath, piece, id.get<long>());
    }
    std::ifstream in(mergesPath, std::ios::binary);
    if (!in) failIn(mergesPath, "cannot open (missing file?)");
    std::string line, missing, a, b;
    int lineNo = 0, rank = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0)) continue;
        const std::string where = mergesPath + ":" + std::to_string(lineNo);
        if (!BpeModel::splitMerge(line, &a, &b))
            failIn(where, "expected two pieces separated by one space, got '" +
                              utf8::forMessage(line) + "'");
        if (!model->addMerge(a, b, rank++, &missing))
            failIn(where, missing + " is not in vocab.json");
    }
    model->finish();

    HfTokenizer::Parts parts;
    parts.model = std::move(model);
    parts.preTokenizer = PreTokenizer::gpt2();
    parts.decoder = Decoder::byteLevel();
    auto t = std::make_unique<HfTokenizer>(std::move(parts));
    const int endOfText = t->idOf("<|endoftext|>");
    t->setBos(endOfText);
    t->setEos(endOfText);
    t->setPrependBos(false);
    return t;
}

}  // namespace cs
