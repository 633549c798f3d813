#pragma once
// Indexing: stream a corpus through the model once for every attached SAE, in batches of
// windows, and keep per feature what a dashboard shows without storing every activation:
// the top examples, interval samples, a histogram, firing counts (core/store/FeatureStats.h).
//
// Every batch is one transaction (WAL): a SIGKILL loses at most the batch in flight, and a re-run
// with the same arguments resumes after the last committed batch and ends with the same store as
// an uninterrupted run (selection rules are order-independent; see FeatureStats.h).
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs {

class Transformer;
class Tokenizer;
class Sae;

struct IndexSae {
    std::string id;    // unique within the store (the folder name by default)
    std::string path;  // as loaded
    std::shared_ptr<Sae> sae;
};

struct IndexOptions {
    std::string modelDir;     // recorded for live search ("demo" stays "demo")
    std::string corpusPath;   // .txt or .jsonl; empty when generating
    long generateDocuments = 0;  // > 0: sample this many documents from the model instead
    unsigned long long generateSeed = 1;
    long maxTokens = 1000000;    // token budget over all windows (the last window is cut to fit)
    int context = 0;             // window length T; 0: min(model context, 128)
    int batch = 256;             // windows per batch (and per transaction)
};

struct IndexProgress {
    std::string phase;  // "generating", "reading", "indexing", "finishing", "done"
    long done = 0;      // tokens (or documents while generating) done
    long total = 0;
};

struct IndexResult {
    long tokens = 0;          // indexed (non-BOS) tokens
    long windows = 0;
    bool resumed = false;     // continued an interrupted run
    bool alreadyComplete = false;
    bool cancelled = false;
    // Where the time went (this run only): model + SAE encoders, bookkeeping, SQLite commits.
    double forwardSeconds = 0, bookkeepingSeconds = 0, commitSeconds = 0;
    double setupSeconds = 0;   // reading or sampling the corpus, weight facts, vocabulary
    double finishSeconds = 0;  // compaction, indexes, automatic labels
};

// Writes (or resumes) the store at `dbPath`. `tok` may be null for a model without a tokenizer
// (then only {"tokens": [...]} corpora, and no BOS is excluded). The SAEs' hooks and widths are checked against the
// model before anything is written. A store indexed with other arguments is refused (name the
// difference), never mixed. `cancel` (may be null) stops after the batch in flight; the store is
// then resumable. Throws cs::Error naming the file, line, hook or field at fault.
IndexResult indexFeatures(const std::string& dbPath, const Transformer& model, const Tokenizer* tok,
                          const std::vector<IndexSae>& saes, const IndexOptions& opt,
                          const std::function<void(const IndexProgress&)>& progress = {},
                          const std::atomic<bool>* cancel = nullptr);

}  // namespace cs
