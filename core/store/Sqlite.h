#pragma once
// A thin RAII layer over SQLite's C API: one connection, prepared statements with typed binds,
// and errors as cs::Error naming the database file. Nothing store-specific lives here.
#include <cstdint>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace cs::sql {

// Opens `path` (read-only, or read-write creating it) with a 30 s busy timeout, so a reader and a
// writer on one WAL file wait for each other's short locks instead of failing with SQLITE_BUSY.
sqlite3* open(const std::string& path, bool readOnly, bool create);
void close(sqlite3* db);
// Runs one or more statements without results. Throws naming the file and the error.
void exec(sqlite3* db, const std::string& sql);
std::string fileOf(sqlite3* db);

class Stmt {
public:
    Stmt(sqlite3* db, const std::string& sql);
    ~Stmt();
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, int64_t v);
    Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Stmt& bind(int i, double v);
    Stmt& bind(int i, const std::string& v);
    Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
    Stmt& bindBlob(int i, const void* data, size_t bytes);
    template <typename T>
    Stmt& bindVector(int i, const std::vector<T>& v) { return bindBlob(i, v.data(), v.size() * sizeof(T)); }

    // Steps once: true while there is a row. Throws on errors.
    bool step();
    // Steps a statement that returns no rows, then resets it for reuse.
    void run();
    void reset();

    int64_t integer(int col) const;
    double real(int col) const;
    std::string text(int col) const;
    bool isNull(int col) const;
    template <typename T>
    std::vector<T> vector(int col) const {
        std::vector<T> out(blobBytes(col) / sizeof(T));
        if (!out.empty()) copyBlob(col, out.data(), out.size() * sizeof(T));
        return out;
    }

private:
    size_t blobBytes(int col) const;
    void copyBlob(int col, void* dst, size_t bytes) const;
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back if not committed (an exception unwinding past it).
class Transaction {
public:
    explicit Transaction(sqlite3* db);
    ~Transaction();
    void commit();

private:
    sqlite3* db_;
    bool done_ = false;
};

}  // namespace cs::sql
