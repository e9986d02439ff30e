#pragma once
// Group commit: concurrent writers of one database file, each on its own
// connection, hand their write to a queue; the first in line (the leader) runs
// everything queued in one BEGIN IMMEDIATE ... COMMIT on its own connection,
// each write inside its own SAVEPOINT, then wakes every writer with its own
// result. One commit (and one WAL sync) serves many writers, and the writers
// no longer fight for SQLite's write lock, whose busy handler sleeps.
//
// Thread-safe. A write that fails (an error Status or a SQLite exception) is
// rolled back to its savepoint alone; the others in its batch still commit. A
// failure of the transaction itself (BEGIN or COMMIT) fails the whole batch.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "scrapekeep/core/error.hpp"

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

// The connection a batch runs on: the leader's. Writes receive it and must do
// all their work through it (never through their own connection).
class BatchConnection {
 public:
  virtual ~BatchConnection() = default;
  virtual SQLite::Database& database() = 0;
};

class GroupCommitter {
 public:
  // The body of one write, run inside a transaction and a savepoint that the
  // committer owns. Returning an error or throwing SQLite::Exception undoes it.
  using Write = std::function<core::Status(BatchConnection&)>;

  // `max_batch` bounds how many writes share a transaction.
  explicit GroupCommitter(std::size_t max_batch = 256);
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // The committer shared by every connection to the database file `path`
  // (lives while anyone holds it); nullptr for in-memory or temporary
  // databases, which are private to their connection.
  static std::shared_ptr<GroupCommitter> for_database(const std::string& path);

  // Runs `write` in a group transaction, on `mine` if this caller leads the
  // batch, else on the leader's connection; blocks until it is committed or
  // has failed. Returns the write's own result (store errors translated).
  core::Status run(BatchConnection& mine, const Write& write);

  // Writes committed so far, and transactions that committed them (for tests
  // and benchmarks).
  std::size_t committed_writes() const;
  std::size_t committed_batches() const;

 private:
  struct Waiter;
  static void run_batch(BatchConnection& connection, const std::vector<Waiter*>& batch);

  // Batches one leader runs before it hands over and returns.
  static constexpr int k_max_rounds = 8;

  const std::size_t m_max_batch;
  mutable std::mutex m_mutex;
  std::deque<Waiter*> m_queue;  // oldest first; the batch being run is at the front
  bool m_leading = false;       // a leader is running batches
  std::size_t m_committed_writes = 0;
  std::size_t m_committed_batches = 0;
};

} // namespace scrapekeep::store
