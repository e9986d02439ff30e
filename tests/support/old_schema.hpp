#pragma once
// A database as an older binary left it, for tests of migrations and of
// inspect on old files: the newer migrations undone in SQL, rows kept.

#include <SQLiteCpp/Database.h>

#include <string>

namespace scrapekeep::testing {

// Undoes migrations 0007 down to `version` + 1 (at least 4) on a database
// of the latest schema, and forgets them in schema_migrations.
inline void as_schema_version(SQLite::Database& db, int version) {
  if (version < 7) {  // 0007: job_seq, a job's own event numbers
    db.exec("DROP TRIGGER page_events_job_seq");
    db.exec("DROP INDEX page_events_job");
    db.exec("ALTER TABLE page_events DROP COLUMN job_seq");
    db.exec("CREATE INDEX page_events_job ON page_events (job_id, seq)");
  }
  if (version < 6) {  // 0006: job_purges
    db.exec("DROP TABLE job_purges");
  }
  if (version < 5) {  // 0005: page_events.final_url
    db.exec("ALTER TABLE page_events DROP COLUMN final_url");
  }
  db.exec("DELETE FROM schema_migrations WHERE version > " + std::to_string(version));
}

}  // namespace scrapekeep::testing
