#pragma once
// Group commit: concurrent writers of one database file, each on its own
// connection, hand their write to a queue; the first in line (the leader) runs
// everything queued in one BEGIN IMMEDIATE ... COMMIT, then wakes every writer
// with its own result. One commit (and one WAL sync) serves many writers, and
// the writers no longer fight for SQLite's write lock, whose busy handler
// sleeps.
//
// Writes run without savepoints: a savepoint copies every page its write
// touches into a statement journal, which cost more than a tenth of a batch.
// A write that fails having changed no row (as sqlite3_total_changes counts
// them; the usual case: fenced out by its first read) has nothing to undo. One that fails after changing rows rolls
// its batch back, and the batch runs again with each write inside its own
// SAVEPOINT, so that write alone is undone; a write may therefore run twice
// (only its last run counts).
//
// Batches run on the committer's own connection (opened by the `Opener` given
// at registration), whoever leads: being the only one to write, its page cache
// stays valid from one commit to the next, where a connection that another one
// has written behind must read every page it touches again. Without an opener,
// or while it fails, a batch runs on the leader's connection.
//
// That connection does not checkpoint the WAL on commit (SQLite's default,
// which makes every thousandth commit copy the WAL into the database and sync
// it while its writers wait): a thread of the committer's, on a connection of
// its own, checkpoints in the background once the WAL passes
// k_checkpoint_frames. Those checkpoints never start the WAL over: SQLite does
// that only when a write begins after every frame was copied and while no
// reader uses the WAL, which commits back to back and constant readers never
// leave room for (checkpoint starvation). So once the WAL passes
// k_restart_frames the leader itself runs a RESTART checkpoint between two
// batches: it copies what is left, waits (at most k_restart_wait_ms) for the
// readers of the WAL to finish, and the next commit writes the WAL from its
// start. Held back (a reader that outlasted the wait), it is tried again
// every k_checkpoint_frames without waiting, so the WAL starts over as soon
// as that reader is done, and with the wait once the WAL has doubled (a long
// reader, a backup, thus holds writers back a few times, not every round).
//
// Thread-safe. A write that fails (an error Status or a SQLite exception) is
// undone alone (see above); the others in its batch still commit. A failure of
// the transaction itself (BEGIN or COMMIT) fails the whole batch.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/error.hpp"

struct sqlite3;

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
  // False once the connection's file was removed or replaced underneath.
  virtual bool usable() { return true; }
};

class GroupCommitter {
 public:
  // The body of one write, run inside a transaction that the committer owns.
  // Returning an error or throwing SQLite::Exception undoes it. It may be run
  // again (see above): side effects beyond the database must happen once.
  using Write = std::function<core::Status(BatchConnection&)>;
  // Opens a connection to the committer's file for batches to run on; nullptr
  // when it cannot.
  using Opener = std::function<std::unique_ptr<BatchConnection>()>;

  // `max_batch` bounds how many writes share a transaction.
  explicit GroupCommitter(std::size_t max_batch = 256);
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // The committer shared by every connection to the database file `path`
  // (lives while anyone holds it); nullptr for in-memory or temporary
  // databases, which are private to their connection. Connections whose
  // `settings` differ (what the opener configures: sync mode, size limit) get
  // committers of their own; the first caller's `opener` serves every later
  // one with the same settings.
  static std::shared_ptr<GroupCommitter> for_database(const std::string& path,
                                                      Opener opener = nullptr,
                                                      const std::string& settings = "");

  // Runs `write` in a group transaction, on the committer's connection (or on
  // `mine` if there is none and this caller leads the batch, else on the
  // leader's); blocks until it is committed or has failed. Returns the write's
  // own result (store errors translated). `synced`: a write a client is told
  // about (see synced_commit.hpp): its batch commits with the WAL synced.
  core::Status run(BatchConnection& mine, const Write& write, bool synced = false);

  // Writes committed so far, and transactions that committed them (for tests
  // and benchmarks).
  std::size_t committed_writes() const;
  std::size_t committed_batches() const;

  // The WAL's length, in frames, past which the leader restarts it: about
  // 32 MiB with 4 KiB pages. Each restart holds writers back for a sync or
  // two: at 4000 frames, ingestion at full speed lost a tenth.
  static constexpr int k_restart_frames = 8000;
  // journal_size_limit for connections that write: a WAL left longer by a
  // burst (a restart held back) is cut back to this once it restarts. An
  // ordinary round (k_restart_frames and the batch that passed them) stays
  // below, so the file is not cut and grown again every round (that cost
  // another tenth).
  static constexpr std::int64_t k_wal_size_limit = 40 << 20;
  // The WAL's growth, in frames, after which the background thread copies
  // it to the database (SQLite's own default), and after which a restart
  // held back is tried again.
  static constexpr int k_checkpoint_frames = 1000;

 private:
  struct Waiter;
  static void run_batch(BatchConnection& connection, const std::vector<Waiter*>& batch);
  // One attempt at `batch`: false if a write failed after changing rows while
  // running without `savepoints` (the transaction is rolled back, nothing ran).
  static bool run_batch_once(BatchConnection& connection, const std::vector<Waiter*>& batch,
                             bool savepoints);
  // The connection the leader runs batches on (called by the leader only).
  BatchConnection& batch_connection(BatchConnection& mine);
  // The leader's work: batches of what is queued, then the lead handed on.
  // Called with `lock` held; returns with it let go.
  void lead(std::unique_lock<std::mutex>& lock, BatchConnection& mine, Waiter& self);
  void abandon_lead(std::unique_lock<std::mutex>& lock, BatchConnection& mine,
                    Waiter& self) noexcept;
  // After a commit: wakes the checkpointer, or restarts the WAL on
  // `connection` if it is long.
  void after_commit(BatchConnection& connection);
  // A RESTART checkpoint on `connection`, the WAL being `frames` long;
  // `wait`: waiting up to k_restart_wait_ms for readers, else not at all.
  void restart_wal(BatchConnection& connection, int frames, bool wait);
  void checkpoint_loop();
  static int on_wal_commit(void* self, ::sqlite3* db, const char* name, int frames);

  // How long a restart may wait for a writer of another connection and for
  // readers, its writers waiting meanwhile (the busy timeout, 5 s, would stall
  // them that long behind a backup).
  static constexpr int k_restart_wait_ms = 200;

  // Batches one leader runs before it hands over and returns.
  static constexpr int k_max_rounds = 8;

  const std::size_t m_max_batch;
  Opener m_opener;                            // set once, at registration
  std::unique_ptr<BatchConnection> m_own;     // used by the leader only
  std::atomic<int> m_wal_frames{0};           // the WAL's length after the last commit
  int m_frames_at_checkpoint = 0;             // its length when a checkpoint was last asked for
  int m_frames_before = 0;                    // its length after the commit before
  int m_restart_at = k_restart_frames;        // the length at which the leader restarts it
  int m_restart_wait_at = k_restart_frames;   // ... and may wait for readers to do so
  std::mutex m_checkpoint_mutex;
  std::condition_variable m_checkpoint_cv;
  bool m_checkpoint_wanted = false;
  bool m_checkpoint_running = false;  // the checkpointer is in a checkpoint
  bool m_stopping = false;
  std::thread m_checkpointer;  // started with the first checkpoint wanted
  mutable std::mutex m_mutex;
  std::deque<Waiter*> m_queue;  // oldest first; the batch being run is at the front
  bool m_leading = false;       // a leader runs batches, or the lead was handed to the first in line
  std::size_t m_committed_writes = 0;
  std::size_t m_committed_batches = 0;
};

} // namespace scrapekeep::store
