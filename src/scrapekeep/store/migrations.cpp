#include "scrapekeep/store/migrations.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

int latest_schema_version() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

core::Result<int> recorded_schema_version(SQLite::Database& db) {
  auto version = guarded([&]() -> core::Result<int> {
    if (db.tableExists("schema_migrations")) {
      SQLite::Statement q(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      q.executeStep();
      return q.getColumn(0).getInt();
    }
    SQLite::Statement q(db, "SELECT COUNT(*) FROM sqlite_master");
    q.executeStep();
    if (q.getColumn(0).getInt() != 0) {
      return core::Error{core::ErrorCode::invalid_argument,
                         "the file is not a scrapekeep database"};
    }
    return 0;
  });
  // SQLite says "not a database" (or "corrupt" for some garbage headers)
  // on the first read: for the caller that is the same finding.
  if (!version && version.error().code == core::ErrorCode::internal &&
      version.error().message == "database file is damaged or not a database") {
    return core::Error{core::ErrorCode::invalid_argument, "the file is not a scrapekeep database"};
  }
  return version;
}

core::Status migrate(SQLite::Database& db, long long now_micros) {
  return guarded([&]() -> core::Status {
    {
      // Takes the write lock first so that two processes migrating at once
      // apply each migration once.
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      auto version = recorded_schema_version(db);
      if (!version) {
        return version.error();
      }
      if (*version > latest_schema_version()) {
        return core::Error{core::ErrorCode::invalid_argument,
                           "database schema version " + std::to_string(*version) +
                               " is newer than this binary (" +
                               std::to_string(latest_schema_version()) + "); upgrade scrapekeep"};
      }
      db.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
      tx.commit();
    }
    for (const Migration& m : embedded_migrations()) {
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement seen(db, "SELECT 1 FROM schema_migrations WHERE version = ?");
      seen.bind(1, m.version);
      if (seen.executeStep()) {
        continue;
      }
      db.exec(m.sql);
      SQLite::Statement rec(db,
                            "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES (?, ?, ?)");
      rec.bind(1, m.version);
      rec.bind(2, m.name);
      rec.bind(3, static_cast<int64_t>(now_micros));
      rec.exec();
      tx.commit();
    }
    return core::ok_status();
  });
}

} // namespace scrapekeep::store
