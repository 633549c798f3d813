// Index corpora in .jsonl ({"text": ...} or {"tokens": [...]} per line), with a byte tokenizer
// so that text documents are read too.
#include "FuzzInput.h"
#include "store/IndexCorpus.h"
#include "tokenize/Tokenizer.h"

namespace {

// One id per byte, BOS 256: enough to reach every path of the reader.
class ByteTokenizer final : public cs::Tokenizer {
public:
    ByteTokenizer() {
        bosId_ = 256;
        prependBos_ = true;
    }
    std::vector<int> encode(const std::string& text) const override {
        return std::vector<int>(reinterpret_cast<const unsigned char*>(text.data()),
                                reinterpret_cast<const unsigned char*>(text.data()) + text.size());
    }
    std::string decode(const std::vector<int>& ids) const override {
        return std::string(ids.begin(), ids.end());
    }
    std::string piece(int id) const override { return std::string(1, static_cast<char>(id)); }
    std::string tokenText(int id) const override { return piece(id); }
    int vocabSize() const override { return 257; }
    int idOf(const std::string&) const override { return -1; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const ByteTokenizer tok;
    const std::string path = csfuzz::writeFile("corpus.jsonl", data, size);
    try {
        auto docs = cs::readIndexCorpus(path, &tok, tok.vocabSize(), 4096);
        (void)cs::cutWindows(docs, 16, 4096);
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    try {
        (void)cs::readIndexCorpus(path, nullptr, 50000, 4096);  // tokens only: no tokenizer
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
