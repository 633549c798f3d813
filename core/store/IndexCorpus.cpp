#include "store/IndexCorpus.h"

#include "model/Transformer.h"
#include "store/FeatureStats.h"
#include "tokenize/Tokenizer.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace cs {

long firstInvalidUtf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (len == 0 || (len == 2 && c < 0xC2) || i + len > n) return static_cast<long>(i);
        for (size_t k = 1; k < len; ++k)
            if ((p[i + k] & 0xC0) != 0x80) return static_cast<long>(i);
        if (len == 3) {
            const unsigned cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return static_cast<long>(i);
        } else if (len == 4) {
            const unsigned cp = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
            if (cp < 0x10000 || cp > 0x10FFFF) return static_cast<long>(i);
        }
        i += len;
    }
    return -1;
}

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string where(const std::string& path, long line) { return path + ":" + std::to_string(line); }

std::vector<int> encodeText(const Tokenizer* tok, const std::string& text, const std::string& at) {
    if (!tok) failIn(at, "a text document needs the model's tokenizer, and the model has none (give {\"tokens\": [...]})");
    return tok->encodePrompt(text);
}

}  // namespace

std::vector<std::vector<int>> readIndexCorpus(const std::string& path, const Tokenizer* tok, long vocabSize,
                                              long maxTokens) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failIn(path, "cannot read the corpus");
    const bool jsonl = endsWith(path, ".jsonl") || endsWith(path, ".json");
    std::vector<std::vector<int>> docs;
    long total = 0;
    std::string line, text;
    long lineNo = 0, textLine = 0;
    auto addDoc = [&](std::vector<int> ids, long at) {
        for (int id : ids)
            if (id < 0 || id >= vocabSize)
                failIn(where(path, at), "token id " + std::to_string(id) + " is outside the model's vocabulary [0, " +
                                            std::to_string(vocabSize) + ")");
        total += static_cast<long>(ids.size());
        docs.push_back(std::move(ids));
    };
    auto flushText = [&] {
        if (text.empty()) return;
        addDoc(encodeText(tok, text, where(path, textLine)), textLine);
        text.clear();
    };
    while (total < maxTokens && std::getline(in, line)) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const long bad = firstInvalidUtf8(line);
        if (bad >= 0)
            failIn(where(path, lineNo), "not UTF-8 (invalid byte at column " + std::to_string(bad + 1) +
                                            "); convert the corpus to UTF-8");
        if (!jsonl) {
            const bool blank = line.find_first_not_of(" \t") == std::string::npos;
            if (blank) {
                flushText();
            } else {
                if (text.empty()) textLine = lineNo;
                else text += "\n";
                text += line;
            }
            continue;
        }
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            failIn(where(path, lineNo), std::string("not a JSON object: ") + e.what());
        }
        if (!j.is_object()) failIn(where(path, lineNo), "expected a JSON object with \"text\" or \"tokens\"");
        if (j.contains("tokens")) {
            const auto& t = j["tokens"];
            if (!t.is_array()) failIn(where(path, lineNo), "\"tokens\" must be an array of token ids");
            if (t.empty()) failIn(where(path, lineNo), "empty document (\"tokens\" is [])");
            std::vector<int> ids;
            for (const auto& v : t) {
                if (!v.is_number_integer()) failIn(where(path, lineNo), "\"tokens\" holds a value that is not an integer");
                const long long id = v.get<long long>();
                if (id < 0 || id >= vocabSize)
                    failIn(where(path, lineNo), "token id " + std::to_string(id) +
                                                    " is outside the model's vocabulary [0, " + std::to_string(vocabSize) + ")");
                ids.push_back(static_cast<int>(id));
            }
            addDoc(std::move(ids), lineNo);
        } else if (j.contains("text")) {
            if (!j["text"].is_string()) failIn(where(path, lineNo), "\"text\" must be a string");
            const std::string s = j["text"].get<std::string>();
            if (s.find_first_not_of(" \t\r\n") == std::string::npos)
                failIn(where(path, lineNo), "empty document (\"text\" has no text)");
            auto ids = encodeText(tok, s, where(path, lineNo));
            addDoc(std::move(ids), lineNo);
        } else {
            failIn(where(path, lineNo), "expected a \"text\" or \"tokens\" field");
        }
    }
    if (!jsonl && total < maxTokens) flushText();
    if (docs.empty()) failIn(path, "the corpus holds no document");
    return docs;
}

std::vector<std::vector<int>> sampleIndexCorpus(const Transformer& model, const Tokenizer& tok, long count,
                                                int maxLength, uint64_t seed,
                                                const std::function<void(long)>& progress,
                                                const std::atomic<bool>* cancel) {
    c10::InferenceMode guard;
    const int bos = tok.bosId() >= 0 ? tok.bosId() : (tok.eosId() >= 0 ? tok.eosId() : 0);
    const int eos = tok.eosId();
    const long maxLen = std::min<long>(maxLength, model.config().nCtx);
    std::vector<std::vector<int>> docs;
    constexpr long kBatch = 32;
    for (long first = 0; first < count; first += kBatch) {
        if (cancel && cancel->load()) break;
        const long n = std::min(kBatch, count - first);
        std::vector<std::vector<int>> seqs(n, std::vector<int>{bos});
        std::vector<uint64_t> rng(n);
        std::vector<bool> open(n, true);
        for (long i = 0; i < n; ++i) rng[i] = splitmix64(seed * 0x100000001B3ull + static_cast<uint64_t>(first + i));
        KvCache kv = model.makeKvCache(n, maxLen);
        RunOptions o;
        o.kv = &kv;
        o.lastPositionOnly = true;
        at::Tensor input = at::full({n, 1}, static_cast<long>(bos), at::kLong);
        for (long step = 1; step < maxLen; ++step) {
            // Temperature-1 sampling by inverting the cumulative distribution in vocabulary order:
            // no sort per token, unlike chooseToken's top-k/top-p path.
            at::Tensor probs = at::softmax(model.forward(input, o).select(1, 0).to(at::kDouble), -1).contiguous();
            const double* pp = probs.data_ptr<double>();
            const long V = probs.size(1);
            std::vector<int64_t> next(n, bos);
            bool any = false;
            for (long i = 0; i < n; ++i) {
                const double u = static_cast<double>(splitmix64(rng[i]++) >> 11) * 0x1.0p-53;
                long t = V - 1;
                double acc = 0;
                for (long v = 0; v < V; ++v) {
                    acc += pp[i * V + v];
                    if (u < acc) {
                        t = v;
                        break;
                    }
                }
                next[i] = t;
                if (!open[i]) continue;
                if (t == eos || t == bos) {  // the demo marks document starts with BOS, not EOS
                    open[i] = false;
                    continue;
                }
                seqs[i].push_back(static_cast<int>(t));
                any = true;
            }
            if (!any) break;
            input = at::tensor(next, at::kLong).unsqueeze(1);
        }
        for (auto& sq : seqs)
            if (sq.size() > 1) docs.push_back(std::move(sq));
        if (progress) progress(static_cast<long>(first + n));
    }
    return docs;
}

std::vector<IndexWindow> cutWindows(const std::vector<std::vector<int>>& documents, int context, long maxTokens) {
    std::vector<IndexWindow> out;
    long total = 0;
    for (size_t d = 0; d < documents.size() && total < maxTokens; ++d) {
        const auto& doc = documents[d];
        for (size_t s = 0; s < doc.size() && total < maxTokens; s += context) {
            const long len = std::min<long>({static_cast<long>(context), static_cast<long>(doc.size() - s), maxTokens - total});
            IndexWindow w;
            w.document = static_cast<long>(d);
            w.start = static_cast<long>(s);
            w.tokens.assign(doc.begin() + s, doc.begin() + s + len);
            total += len;
            out.push_back(std::move(w));
        }
    }
    return out;
}

}  // namespace cs
