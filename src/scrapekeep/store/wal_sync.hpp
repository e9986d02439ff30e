#pragma once
// One fsync of a database's WAL for several commits. A commit a client is
// told about is followed by a sync of the WAL (JobStore, README
// "Durability"); an fsync flushes the whole file, every commit written to it
// before the fsync began, from any connection. So a caller whose commit is
// done waits for the sync running, if any (it may have begun before the
// commit), and then either finds its commit covered by a sync that began
// after it, or runs one itself for everyone waiting. With 8 clients
// creating jobs, their fsyncs queued one behind the other, one job each.
//
// Thread-safe; one per database file in a process (GroupCommitter holds it).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace scrapekeep::store {

class WalSync {
 public:
  // Syncs the WAL; false when that failed.
  using Sync = std::function<bool()>;

  // Call after a commit: returns true once a sync that began after this call
  // has succeeded (`sync`, run here, or another caller's); false when the
  // sync run here failed (a failed sync covers nobody: each waiter then runs
  // its own).
  bool after_commit(const Sync& sync);

  // How many callers have asked, and syncs run (for tests).
  std::uint64_t asked() const;
  std::uint64_t syncs_run() const;

 private:
  mutable std::mutex m_mutex;
  std::condition_variable m_done;
  std::uint64_t m_asked = 0;    // callers so far: each one's number is its turn
  std::uint64_t m_covered = 0;  // every caller up to this number is synced
  std::uint64_t m_syncs = 0;
  bool m_running = false;  // a sync is running
};

}  // namespace scrapekeep::store
