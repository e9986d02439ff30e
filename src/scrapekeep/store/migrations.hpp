#pragma once
// Schema migrations, embedded into the binary from migrations/ at build time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/error.hpp"

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Every migration in order (generated from migrations/migrations.cmake).
const std::vector<Migration>& embedded_migrations();

// The table where migrate() records each migration applied, made before the
// first of them (IF NOT EXISTS).
constexpr const char* k_schema_migrations_table =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

// Highest version this binary knows.
int latest_schema_version();

// Version recorded in `db` (0 for an empty database), as the 64-bit number
// stored. invalid_argument when the file is not a scrapekeep database (for a
// version this binary knows: one of the tables its migrations made is
// missing, is not a table, such as a view that would run without end, or
// lacks one of their columns; or a trigger is not one of those they made,
// which would run on scrapekeep's own writes), or SQLite cannot read it.
core::Result<std::int64_t> recorded_schema_version(SQLite::Database& db);

// The error for a file at `path` that SQLite refused to read (SQLITE_NOTADB,
// SQLITE_CORRUPT): one that starts as an SQLite database does is damaged;
// another is not a scrapekeep database. invalid_argument either way.
core::Error unreadable_database(const std::string& path);

// The file an SQLite URI ("file:PATH?...", "file:///PATH", "file://localhost/PATH",
// %HH decoded) names, as SQLite opens it; `path` itself when it is not one.
std::string uri_file(const std::string& path);

// invalid_argument when `path` exists and is not a regular file: a directory,
// or a FIFO or device, whose open() SQLite would wait on for ever or read as
// an endless empty file, or a loop of symbolic links; or when its -journal,
// -wal or -shm (beside the file a link leads to) exists and is not one.
// nullopt otherwise (a missing path included).
std::optional<core::Error> not_a_regular_file(const std::string& path);

// The database file SQLite opens for `path` (a file name or an SQLite URI,
// uri_file()): a symbolic link followed to its target, beside which SQLite
// keeps the -wal, -shm and -journal files (not beside the link). The file
// `path` names when it is no link or cannot be followed.
std::string database_file(const std::string& path);

// unavailable, saying which, when this process cannot write the file at
// `path` (SQLite would open it read-only without a word and fail at the first
// write) or, for a missing file or one without both its -wal and -shm, its
// folder (where SQLite creates them). nullopt otherwise.
std::optional<core::Error> not_writable(const std::string& path);

// The message for an SQLite file with no tables read where a scrapekeep
// database was expected (a copy of a young database made without its -wal
// file looks like that).
std::string no_scrapekeep_tables();

// Applies every migration newer than the recorded version, each in its own
// transaction, recording it. Refuses (invalid_argument) a database whose
// schema is newer than this binary.
core::Status migrate(SQLite::Database& db, long long now_micros);

} // namespace scrapekeep::store
