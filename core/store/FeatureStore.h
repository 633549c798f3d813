#pragma once
// A SQLite feature store (one file): per SAE feature its top examples, interval samples,
// activation histogram, density, logit effects, neighbours, labels and notes. Written by
// indexFeatures (core/store/FeatureIndexer.h), read by the dashboard, the browser and the CLI.
//
// The file is opened in WAL mode with a busy timeout, so a GUI reading and an indexer writing at
// once never see "database is locked". A file that is not a Circuitscope store is refused before
// anything is written to it; an older schema is migrated forward on open (docs/store.md).
#include "store/FeatureRecord.h"

#include <memory>
#include <string>
#include <vector>

struct sqlite3;

namespace cs {

class FeatureStore {
public:
    enum class Mode { ReadOnly, ReadWrite, Create };  // Create: ReadWrite, making the file if needed
    // Throws cs::Error naming the file when it cannot be opened, is not a store, or is newer than
    // this build understands.
    explicit FeatureStore(const std::string& path, Mode mode = Mode::ReadOnly);
    ~FeatureStore();
    FeatureStore(const FeatureStore&) = delete;
    FeatureStore& operator=(const FeatureStore&) = delete;

    // True when `path` holds no store yet: missing, empty, or a SQLite file with no table and no
    // application id (what a process killed while creating the store leaves behind).
    static bool isBlank(const std::string& path);

    const std::string& path() const { return path_; }
    sqlite3* db() const { return db_; }  // for the indexer and tests; views use the functions below

    // Store-wide facts the indexer recorded ("model", "context", "corpus", ...); "" when absent.
    std::string meta(const std::string& key) const;
    void setMeta(const std::string& key, const std::string& value);

    // Whether indexing finished (a store being written, or interrupted, is readable but partial).
    bool isComplete() const { return meta("complete") == "1"; }

    std::vector<StoredSae> saes() const;
    // The SAE called `id`; "" means the only one (error when there are several). Throws cs::Error
    // listing the ids when there is no such SAE.
    StoredSae sae(const std::string& id) const;

    // Every feature of an SAE, in index order (features that never fired included).
    std::vector<FeatureSummary> summaries(const std::string& saeId) const;
    // Throws cs::Error when the index is out of range.
    FeatureDetail feature(const std::string& saeId, long index) const;
    // Only the logit effects (a hover tooltip needs no examples).
    void logits(const std::string& saeId, long index, std::vector<LogitEffect>* positive,
                std::vector<LogitEffect>* negative) const;
    // The label shown for a feature (user label, else automatic), empty when neither exists.
    std::string label(const std::string& saeId, long index, bool* isAuto = nullptr) const;

    // Saves (or, with an empty label and notes, clears) the user's label and notes at once.
    void setLabel(const std::string& saeId, long index, const std::string& label, const std::string& notes);

    // Full-text search (FTS5) over user and automatic labels and notes; best match first.
    std::vector<FeatureHit> searchLabels(const std::string& saeId, const std::string& text, int top) const;
    // Features whose top examples peak on `tokenId`, most such examples first (ties: higher max).
    std::vector<FeatureHit> searchToken(const std::string& saeId, int tokenId, int top) const;

    // The text of a vocabulary id as the indexer's tokenizer spelled it; "#id" when unknown.
    std::string piece(int tokenId) const;
    // A vocabulary id for what a user typed: exact token text, then exact piece; -1 if none.
    int tokenIdFor(const std::string& text) const;

private:
    std::string path_;
    sqlite3* db_ = nullptr;
    mutable std::vector<std::string> vocab_;  // token texts, read once on first use
};

}  // namespace cs
