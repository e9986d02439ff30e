#pragma once
// A SQLite VFS that forwards everything to the default one and counts the
// syncs of each kind of file: what a power cut keeps is what was synced.
// While a SyncCountingVfs lives it is the default VFS, so every connection
// opened meanwhile (a JobStore's included) goes through it.

#include <atomic>
#include <string>

struct sqlite3_vfs;

namespace scrapekeep::testing {

class SyncCountingVfs {
 public:
  SyncCountingVfs();
  ~SyncCountingVfs();
  SyncCountingVfs(const SyncCountingVfs&) = delete;
  SyncCountingVfs& operator=(const SyncCountingVfs&) = delete;

  // Syncs of files whose name ends in "-wal", since the VFS was made.
  long wal_syncs() const { return m_wal_syncs.load(); }

  // From now on, syncs of "-wal" files fail (SQLITE_IOERR_FSYNC), as a
  // disk's fsync can (EIO).
  void fail_wal_syncs(bool fail) { m_fail_wal_syncs = fail; }

  // For the VFS's own calls.
  sqlite3_vfs* inner() const { return m_inner; }
  // Counts a "-wal" file's sync; false when it is to fail.
  bool count_wal_sync() {
    ++m_wal_syncs;
    return !m_fail_wal_syncs.load();
  }

 private:
  sqlite3_vfs* m_vfs;
  sqlite3_vfs* m_inner;
  std::atomic<long> m_wal_syncs{0};
  std::atomic<bool> m_fail_wal_syncs{false};
};

}  // namespace scrapekeep::testing
