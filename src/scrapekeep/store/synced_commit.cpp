#include "scrapekeep/store/synced_commit.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <string>

namespace scrapekeep::store {

SyncedCommit::SyncedCommit(sqlite3* db) {
  constexpr int k_full = 2;
  sqlite3_stmt* query = nullptr;
  int level = k_full;
  int rc = sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &query, nullptr);
  if (rc == SQLITE_OK && (rc = sqlite3_step(query)) == SQLITE_ROW) {
    level = sqlite3_column_int(query, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(query);
  if (rc != SQLITE_OK) {
    throw SQLite::Exception(db, rc);
  }
  if (level >= k_full) {
    return;  // FULL (or EXTRA) already syncs every commit
  }
  rc = sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    throw SQLite::Exception(db, rc);
  }
  m_db = db;
  m_level = level;
}

SyncedCommit::~SyncedCommit() {
  if (m_db != nullptr) {
    // Should this fail (no memory), the connection stays FULL: slower, not less safe.
    const std::string back = "PRAGMA synchronous = " + std::to_string(m_level);
    sqlite3_exec(m_db, back.c_str(), nullptr, nullptr, nullptr);
  }
}

}  // namespace scrapekeep::store
