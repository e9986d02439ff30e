#include "scrapekeep/store/group_commit.hpp"

#include <SQLiteCpp/Database.h>
#include <linux/futex.h>
#include <sqlite3.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <system_error>
#include <thread>

#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/store/sqlite_error.hpp"
#include "scrapekeep/store/synced_commit.hpp"

namespace scrapekeep::store {

using core::Error;
using core::ErrorCode;
using core::Status;

namespace {

// What a waiting writer's word says; set by the leader.
constexpr std::uint32_t k_waiting = 0;
constexpr std::uint32_t k_done = 1;  // its result is final
constexpr std::uint32_t k_lead = 2;  // it leads next

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

// Sleeps until `word` is no longer `value` (a futex: no lock to take again
// once woken, unlike a condition variable).
void wait_while(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  while (word.load(std::memory_order_acquire) == value) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value,
            nullptr, nullptr, 0);
  }
}

// Sets `*word` and wakes its sleeper. The word may be gone as soon as it is
// set (its writer returns): the wake-up uses its address only as a key, and a
// sleeper on whatever lives there now wakes, finds its own word unchanged and
// sleeps again.
void set_and_wake(std::atomic<std::uint32_t>* word, std::uint32_t value) {
  word->store(value, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

} // namespace

struct GroupCommitter::Waiter {
  Waiter(const Write& w, bool s) : write(&w), synced(s) {}
  const Write* write;
  bool synced;
  Status result = core::ok_status();
  bool committed = false;
  // k_waiting until a leader sets it (see set_and_wake); `result` and
  // `committed` are written before it is, and read after.
  std::atomic<std::uint32_t> state{k_waiting};
};

GroupCommitter::GroupCommitter(std::size_t max_batch) : m_max_batch(std::max<std::size_t>(1, max_batch)) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(m_checkpoint_mutex);
    m_stopping = true;
  }
  m_checkpoint_cv.notify_all();
  if (m_checkpointer.joinable()) {
    m_checkpointer.join();
  }
}

std::shared_ptr<GroupCommitter> GroupCommitter::for_database(const std::string& path,
                                                             Opener opener,
                                                             const std::string& settings) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) {
    return nullptr;
  }
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec || key.empty()) {
    key = path;
  }
  key += '\n' + settings;
  // Process-wide by nature: every connection to one file (configured alike)
  // must meet the same queue. Entries die with their last holder.
  static std::mutex registry_mutex;
  static std::map<std::string, std::weak_ptr<GroupCommitter>> registry;
  std::lock_guard lock(registry_mutex);
  for (auto it = registry.begin(); it != registry.end();) {
    it = it->second.expired() ? registry.erase(it) : std::next(it);
  }
  auto& slot = registry[key];
  auto committer = slot.lock();
  if (!committer) {
    committer = std::make_shared<GroupCommitter>();
    committer->m_opener = std::move(opener);
    slot = committer;
  }
  return committer;
}

Status GroupCommitter::run(BatchConnection& mine, const Write& write, bool synced) {
  Waiter self(write, synced);
  std::unique_lock lock(m_mutex);
  m_queue.push_back(&self);
  if (m_leading) {
    lock.unlock();
    wait_while(self.state, k_waiting);
    if (self.state.load(std::memory_order_acquire) == k_done) {
      return std::move(self.result);
    }
    lock.lock();  // handed the lead: m_leading was kept set for this caller
  }
  // This caller leads: it runs whatever is queued, itself first, then keeps
  // running what queued up meanwhile (a few rounds), which saves a hand-over
  // (a thread wake-up) per batch.
  m_leading = true;
  try {
    lead(lock, mine, self);
  } catch (...) {
    abandon_lead(lock, mine, self);
    throw;
  }
  return std::move(self.result);
}

void GroupCommitter::lead(std::unique_lock<std::mutex>& lock, BatchConnection& mine, Waiter& self) {
  for (int round = 0; round < k_max_rounds; ++round) {
    if (m_queue.empty() && round > 0) {
      // The writers just woken are likely about to queue their next write:
      // let them run once before giving up the lead.
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
      if (m_queue.empty()) {
        break;
      }
    }
    const std::size_t n = std::min(m_queue.size(), m_max_batch);
    std::vector<Waiter*> batch(m_queue.begin(), m_queue.begin() + static_cast<std::ptrdiff_t>(n));
    lock.unlock();
    BatchConnection& connection = batch_connection(mine);
    run_batch(connection, batch);
    after_commit(connection);
    lock.lock();
    m_queue.erase(m_queue.begin(), m_queue.begin() + static_cast<std::ptrdiff_t>(n));
    std::size_t committed = 0;
    for (Waiter* w : batch) {
      committed += w->committed ? 1 : 0;
    }
    if (committed > 0) {
      m_committed_writes += committed;
      ++m_committed_batches;
    }
    // Woken without the lock held, they return without taking it; and the
    // writers meanwhile queue up for the next batch.
    lock.unlock();
    for (Waiter* w : batch) {
      if (w != &self) {
        set_and_wake(&w->state, k_done);
      }
    }
    lock.lock();
    if (committed == 0) {
      // The transaction failed (the database held past the busy timeout, a
      // full disk), and the next may fail as slowly: this caller, whose
      // write ran in the first round, is answered now, and the first in
      // line leads the next batch. Leading on, a creation that led while
      // another process held the database was answered after k_max_rounds
      // busy timeouts (40 s), where each writer waits one or two.
      break;
    }
  }
  // The lead goes to the first writer in line, if any (m_leading stays set
  // for it: nobody else may take it meanwhile).
  Waiter* next = m_queue.empty() ? nullptr : m_queue.front();
  m_leading = next != nullptr;
  lock.unlock();
  if (next != nullptr) {
    set_and_wake(&next->state, k_lead);
  }
}

// Something threw while this caller led (out of memory, in practice): no
// writer may wait for ever and the lead must not stay taken. A transaction
// left open is rolled back; every writer still queued that did not commit
// fails as unavailable (its caller may try again), one that did is told so.
// Allocates nothing: the message fits std::string's inline buffer.
void GroupCommitter::abandon_lead(std::unique_lock<std::mutex>& lock, BatchConnection& mine,
                                  Waiter& self) noexcept {
  sqlite3* handle = (m_own ? *m_own : mine).database().getHandle();
  if (sqlite3_get_autocommit(handle) == 0) {
    sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  if (!lock.owns_lock()) {
    lock.lock();
  }
  for (Waiter* w : m_queue) {
    if (w == &self) {
      continue;
    }
    if (!w->committed) {
      w->result = Error{ErrorCode::unavailable, "out of memory"};
    }
    set_and_wake(&w->state, k_done);  // it returns without taking the lock
  }
  m_queue.clear();
  m_leading = false;
  lock.unlock();
}

BatchConnection& GroupCommitter::batch_connection(BatchConnection& mine) {
  if (m_own && !m_own->usable()) {
    m_own.reset();
  }
  if (!m_own && m_opener) {
    m_own = m_opener();
    if (m_own) {
      sqlite3_wal_hook(m_own->database().getHandle(), &GroupCommitter::on_wal_commit, this);
    }
  }
  return m_own ? *m_own : mine;
}

int GroupCommitter::on_wal_commit(void* self, sqlite3*, const char*, int frames) {
  static_cast<GroupCommitter*>(self)->m_wal_frames.store(frames, std::memory_order_relaxed);
  return SQLITE_OK;
}

void GroupCommitter::after_commit(BatchConnection& connection) {
  if (&connection != m_own.get()) {
    return;  // a connection of a writer's own checkpoints by itself, as SQLite does
  }
  const int frames = m_wal_frames.load(std::memory_order_relaxed);
  if (frames < m_frames_before) {
    // The WAL started over (here, or by another connection).
    m_frames_at_checkpoint = 0;
    m_restart_at = k_restart_frames;
    m_restart_wait_at = k_restart_frames;
  }
  m_frames_before = frames;
  if (frames >= m_restart_at) {
    restart_wal(connection, frames, frames >= m_restart_wait_at);
    return;
  }
  // One checkpoint per k_checkpoint_frames the WAL grew: one asked for at
  // every commit would copy (and, synchronous=full, sync) a few pages each.
  if (frames < m_frames_at_checkpoint + k_checkpoint_frames) {
    return;
  }
  m_frames_at_checkpoint = frames;
  std::lock_guard lock(m_checkpoint_mutex);
  m_checkpoint_wanted = true;
  if (!m_checkpointer.joinable()) {
    try {
      m_checkpointer = std::thread([this] {
        core::name_this_thread("sk-checkpoint");
        checkpoint_loop();
      });
    } catch (const std::system_error&) {
      // No thread to be had: checkpoint here, as SQLite itself would.
      sqlite3_wal_checkpoint_v2(connection.database().getHandle(), "main",
                                SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      return;
    }
  }
  m_checkpoint_cv.notify_one();
}

void GroupCommitter::restart_wal(BatchConnection& connection, int frames, bool wait) {
  constexpr int k_most = std::numeric_limits<int>::max();
  {
    // SQLite runs one checkpoint at a time and refuses a second at once:
    // waiting for ours to end keeps the WAL from growing meanwhile. But not
    // for longer than a restart waits for readers: one that takes longer (a
    // slow disk, its connection slow to open) is left to finish, and the
    // restart tried again k_checkpoint_frames later.
    std::unique_lock lock(m_checkpoint_mutex);
    if (!m_checkpoint_cv.wait_for(lock, std::chrono::milliseconds(k_restart_wait_ms),
                                  [&] { return !m_checkpoint_running; })) {
      m_restart_at = frames < k_most - k_checkpoint_frames ? frames + k_checkpoint_frames : k_most;
      return;
    }
    m_checkpoint_wanted = false;  // this one copies everything
  }
  sqlite3* handle = connection.database().getHandle();
  int busy_ms = -1;  // the connection's own timeout, put back after
  sqlite3_stmt* query = nullptr;
  if (sqlite3_prepare_v2(handle, "PRAGMA busy_timeout", -1, &query, nullptr) == SQLITE_OK &&
      sqlite3_step(query) == SQLITE_ROW) {
    busy_ms = sqlite3_column_int(query, 0);
  }
  sqlite3_finalize(query);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(wait ? k_restart_wait_ms : 0);
  if (busy_ms >= 0) {
    // Tries again every millisecond until the deadline: SQLite's own handler
    // sleeps up to 100 ms between tries, and may keep missing the moment no
    // old reader is left.
    auto retry = [](void* until, int) -> int {
      if (std::chrono::steady_clock::now() >=
          *static_cast<const std::chrono::steady_clock::time_point*>(until)) {
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return 1;
    };
    sqlite3_busy_handler(handle, retry, &deadline);
  }
  int log = -1;
  const int rc =
      sqlite3_wal_checkpoint_v2(handle, "main", SQLITE_CHECKPOINT_RESTART, &log, nullptr);
  if (busy_ms >= 0) {
    sqlite3_busy_timeout(handle, busy_ms);
  }
  if (rc == SQLITE_OK) {
    m_frames_at_checkpoint = 0;  // the next commit writes the WAL from its start
  } else if (rc == SQLITE_BUSY && log < 0) {
    // Another connection's checkpoint runs (SQLite refuses at once, without
    // waiting): tried again at the next commit.
  } else {
    // Held back (a reader, a writer elsewhere): tried again without waiting
    // every k_checkpoint_frames, so the WAL starts over once a reader that
    // was only slow (preempted on a busy machine) is done; and with the wait
    // once the WAL doubled, so a long reader (a backup) holds writers back a
    // few times, not at every k_restart_frames.
    m_restart_at = frames < k_most - k_checkpoint_frames ? frames + k_checkpoint_frames : k_most;
    if (wait) {
      m_restart_wait_at = frames < k_most / 2 ? 2 * frames : k_most;
    }
  }
}

void GroupCommitter::checkpoint_loop() {
  std::unique_ptr<BatchConnection> connection;
  std::unique_lock lock(m_checkpoint_mutex);
  while (true) {
    m_checkpoint_cv.wait(lock, [&] { return m_stopping || m_checkpoint_wanted; });
    if (m_stopping) {
      return;
    }
    m_checkpoint_wanted = false;
    m_checkpoint_running = true;
    lock.unlock();
    if (connection && !connection->usable()) {
      connection.reset();
    }
    if (!connection) {
      connection = m_opener();
    }
    if (connection) {
      // Copies what no reader still needs; a busy database is tried again at
      // the next commit that finds the WAL long.
      sqlite3_wal_checkpoint_v2(connection->database().getHandle(), "main",
                                SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    lock.lock();
    m_checkpoint_running = false;
    m_checkpoint_cv.notify_all();  // a leader may wait to restart the WAL
  }
}

void GroupCommitter::run_batch(BatchConnection& connection, const std::vector<Waiter*>& batch) {
  if (!run_batch_once(connection, batch, false)) {
    run_batch_once(connection, batch, true);
  }
}

bool GroupCommitter::run_batch_once(BatchConnection& connection, const std::vector<Waiter*>& batch,
                                    bool savepoints) {
  SQLite::Database& db = connection.database();
  sqlite3* handle = db.getHandle();
  // Fails every write that had succeeded so far (its work is gone) and every
  // write not yet run, with `error`.
  auto fail_from = [&](std::size_t next, const Error& error) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (i >= next || batch[i]->result.ok()) {
        batch[i]->result = error;
      }
    }
    if (sqlite3_get_autocommit(handle) == 0) {
      sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  };
  // Synced with its commit when a write in it is (a job's creation): every
  // write of the batch is then on disk before any is answered or read.
  std::optional<SyncedCommit> synced;
  try {
    if (std::any_of(batch.begin(), batch.end(), [](const Waiter* w) { return w->synced; })) {
      synced.emplace(handle);
    }
    db.exec("BEGIN IMMEDIATE");
  } catch (const SQLite::Exception& e) {
    fail_from(0, translate(e));
    return true;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Waiter* w = batch[i];
    try {
      if (savepoints) {
        db.exec("SAVEPOINT group_write");
      }
      const sqlite3_int64 changes_before = sqlite3_total_changes64(handle);
      Status status = core::ok_status();
      try {
        status = (*w->write)(connection);
      } catch (const SQLite::Exception& e) {
        status = translate(e);
      } catch (const std::exception& e) {
        status = Error{ErrorCode::internal, std::string("storage error: ") + e.what()};
      }
      if (sqlite3_get_autocommit(handle) != 0) {
        // SQLite rolled the whole transaction back (disk full, I/O error).
        fail_from(i, status.ok() ? Error{ErrorCode::unavailable, "the write was rolled back"}
                                 : status.error());
        return true;
      }
      if (!status.ok() && !savepoints && sqlite3_total_changes64(handle) != changes_before) {
        // It failed after changing rows, which only a savepoint of its own
        // could undo alone: the batch runs again, each write in one.
        sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
        return false;
      }
      if (savepoints) {
        if (!status.ok()) {
          db.exec("ROLLBACK TO group_write");
        }
        db.exec("RELEASE group_write");
      }
      w->result = std::move(status);
    } catch (const SQLite::Exception& e) {
      fail_from(i, translate(e));
      return true;
    }
  }
  try {
    db.exec("COMMIT");
  } catch (const SQLite::Exception& e) {
    fail_from(batch.size(), translate(e));
    return true;
  }
  for (Waiter* w : batch) {
    w->committed = w->result.ok();
  }
  return true;
}

std::size_t GroupCommitter::committed_writes() const {
  std::lock_guard lock(m_mutex);
  return m_committed_writes;
}

std::size_t GroupCommitter::committed_batches() const {
  std::lock_guard lock(m_mutex);
  return m_committed_batches;
}

} // namespace scrapekeep::store
