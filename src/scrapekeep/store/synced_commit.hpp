#pragma once
// The commits a client is told about (a job created, cancelled, deleted or
// ended, a key made or revoked) are synced to disk with the commit itself,
// under synchronous NORMAL too (README, "Durability"): a power cut then
// never takes back what was answered, and nobody reads the change before it
// is on disk, since SQLite updates the WAL's index, which readers go by,
// only after the sync. A failed sync fails the commit: nothing is changed.
// Page writes keep NORMAL (a page a resumed job fetches again).

struct sqlite3;

namespace scrapekeep::store {

// While it lives, `db` commits with synchronous FULL if it ran below it.
// Made before the transaction begins: the pragma takes effect at the next
// BEGIN. Throws SQLite::Exception if the pragma fails.
class SyncedCommit {
 public:
  explicit SyncedCommit(sqlite3* db);
  ~SyncedCommit();
  SyncedCommit(const SyncedCommit&) = delete;
  SyncedCommit& operator=(const SyncedCommit&) = delete;

 private:
  sqlite3* m_db = nullptr;  // set when raised
  int m_level = 2;          // the level to go back to
};

}  // namespace scrapekeep::store
