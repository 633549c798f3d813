#pragma once
// The feature store's schema and its versions. A store is recognised by SQLite's application_id;
// PRAGMA user_version is the schema version, and each migration moves a store one version on.
// docs/store.md documents every table.
struct sqlite3;

namespace cs {

constexpr int kStoreApplicationId = 0x43534653;  // "CSFS"
constexpr int kStoreSchemaVersion = 2;

// Checks that `db` is a feature store (or an empty file) before anything is written, then
// creates or migrates the schema when `writable`. Throws cs::Error naming the file when it is not
// ours, newer than this build, or (read-only) older than this build and not yet migrated.
void prepareStoreSchema(sqlite3* db, bool writable);

}  // namespace cs
