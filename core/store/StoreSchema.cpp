#include "store/StoreSchema.h"

#include "store/Sqlite.h"
#include "util/Error.h"

#include <string>

namespace cs {

namespace {

// Version 1: the tables. Version 2: the full-text index over labels (FTS5), filled from them.
const char* const kMigrations[] = {
    R"SQL(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE saes (
  id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL, path TEXT NOT NULL, hook TEXT NOT NULL,
  hook_out TEXT NOT NULL, architecture TEXT NOT NULL, d_sae INTEGER NOT NULL, d_in INTEGER NOT NULL,
  tokens INTEGER NOT NULL DEFAULT 0);
CREATE TABLE windows (id INTEGER PRIMARY KEY, document INTEGER NOT NULL, start INTEGER NOT NULL,
  tokens BLOB NOT NULL);
CREATE TABLE vocab (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE features (
  sae TEXT NOT NULL, idx INTEGER NOT NULL, max_act REAL NOT NULL, firings INTEGER NOT NULL,
  scale REAL NOT NULL, histogram BLOB NOT NULL, PRIMARY KEY (sae, idx)) WITHOUT ROWID;
CREATE TABLE examples (
  sae TEXT NOT NULL, idx INTEGER NOT NULL, kind INTEGER NOT NULL, window INTEGER NOT NULL,
  max REAL NOT NULL, peak INTEGER NOT NULL, peak_token INTEGER NOT NULL, priority INTEGER NOT NULL,
  span_start INTEGER NOT NULL, activations BLOB NOT NULL);
CREATE TABLE weight_facts (
  sae TEXT NOT NULL, idx INTEGER NOT NULL, logits TEXT NOT NULL, neighbours TEXT NOT NULL,
  PRIMARY KEY (sae, idx)) WITHOUT ROWID;
CREATE TABLE labels (
  sae TEXT NOT NULL, idx INTEGER NOT NULL, label TEXT NOT NULL, notes TEXT NOT NULL,
  PRIMARY KEY (sae, idx)) WITHOUT ROWID;
CREATE TABLE auto_labels (
  sae TEXT NOT NULL, idx INTEGER NOT NULL, label TEXT NOT NULL, PRIMARY KEY (sae, idx)) WITHOUT ROWID;
)SQL",
    R"SQL(
CREATE VIRTUAL TABLE label_search USING fts5 (text, sae UNINDEXED, idx UNINDEXED, source UNINDEXED);
INSERT INTO label_search (text, sae, idx, source) SELECT label || ' ' || notes, sae, idx, 'user' FROM labels;
INSERT INTO label_search (text, sae, idx, source) SELECT label, sae, idx, 'auto' FROM auto_labels;
)SQL",
};

int pragmaInt(sqlite3* db, const char* name) {
    sql::Stmt s(db, std::string("PRAGMA ") + name);
    return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

bool hasTables(sqlite3* db) {
    sql::Stmt s(db, "SELECT count(*) FROM sqlite_master");
    return s.step() && s.integer(0) > 0;
}

}  // namespace

void prepareStoreSchema(sqlite3* db, bool writable) {
    const std::string file = sql::fileOf(db);
    const int app = pragmaInt(db, "application_id");
    const int version = pragmaInt(db, "user_version");
    if (app != kStoreApplicationId) {
        if (app != 0 || hasTables(db) || version != 0)
            failIn(file, "not a Circuitscope feature store (another program's SQLite database); left untouched");
        if (!writable) failIn(file, "empty file, not a feature store yet (run `circuitscope index` to make one)");
    }
    if (version > kStoreSchemaVersion)
        failIn(file, "feature store schema version " + std::to_string(version) + " is newer than this build's (" +
                         std::to_string(kStoreSchemaVersion) + "); update Circuitscope");
    if (version == kStoreSchemaVersion) return;
    if (!writable)
        failIn(file, "feature store schema version " + std::to_string(version) +
                         " needs migrating; open it once writable (e.g. `circuitscope label`) or re-index");
    // Free pages go back to the file system after the indexer's compaction (incremental_vacuum),
    // which a plain VACUUM could not do while a viewer holds the file open. Only takes effect
    // on a new file, before its first table.
    if (version == 0) sql::exec(db, "PRAGMA auto_vacuum=INCREMENTAL");
    sql::exec(db, "PRAGMA journal_mode=WAL");
    sql::Transaction t(db);
    for (int v = version; v < kStoreSchemaVersion; ++v) sql::exec(db, kMigrations[v]);
    sql::exec(db, "PRAGMA application_id=" + std::to_string(kStoreApplicationId));
    sql::exec(db, "PRAGMA user_version=" + std::to_string(kStoreSchemaVersion));
    t.commit();
}

}  // namespace cs
