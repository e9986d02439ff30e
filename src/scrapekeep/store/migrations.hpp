#pragma once
// Schema migrations, embedded into the binary from migrations/ at build time.

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

// Highest version this binary knows.
int latest_schema_version();

// Version recorded in `db` (0 for an empty database). invalid_argument when
// the file is not a scrapekeep database.
core::Result<int> recorded_schema_version(SQLite::Database& db);

// Applies every migration newer than the recorded version, each in its own
// transaction, recording it. Refuses (invalid_argument) a database whose
// schema is newer than this binary.
core::Status migrate(SQLite::Database& db, long long now_micros);

} // namespace scrapekeep::store
