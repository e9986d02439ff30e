#pragma once
// Housekeeping a serving or working process runs beside its workers: taking
// back jobs whose worker died (at start at once, then periodically),
// deleting terminal jobs older than the retention window, in small batches,
// removing the rows of deleted jobs a batch per transaction (at start too, so
// a purge cut short by a crash goes on); and saying once in the log when the
// database file was removed underneath.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::store {

// True when `holder` (JobStore::process_identity() as a claim wrote it) is
// surely gone, as store::holder_is_gone(Holder, Holder) judges it against
// this process: one of this host, boot and pid namespace that no longer runs,
// or one of an earlier boot of this host. Holders of other hosts or other pid
// namespaces (containers sharing the database) are never judged gone.
bool holder_is_gone(const std::string& holder);

struct RecoveryCount {
  std::int64_t orphaned = 0;   // leases ended because their process is gone
  std::int64_t recovered = 0;  // jobs moved by recover_expired()
};

// At start: ends the leases of dead processes of this machine and puts their
// jobs back to work (or to their terminal state: timeout, attempt cap).
core::Result<RecoveryCount> recover_at_start(JobStore& store, core::Micros now,
                                             std::int64_t max_attempts);

struct MaintenanceConfig {
  // How often expired leases are looked for; zero: never.
  std::chrono::milliseconds recover_interval{5000};
  std::int64_t max_attempts = 5;
  // Terminal jobs completed longer ago than this are deleted; nullopt: kept.
  std::optional<std::chrono::hours> retain;
  // How often retention runs, and how many jobs one transaction deletes (a
  // short write lock, so API writes never wait long behind it).
  std::chrono::milliseconds retention_interval{60000};
  std::int64_t retention_batch = 200;
  std::function<void(const std::string&)> log;
};

// One thread with its own connection, which never migrates or creates the
// database (open it first). start()/stop() from one thread.
class Maintenance {
 public:
  Maintenance(StoreConfig store_config, MaintenanceConfig config, const core::Clock& clock);
  ~Maintenance();  // stop()
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  void start();
  void stop();
  // Ends the wait between two passes at once, so that a job deleted just now
  // has its rows purged now rather than at the next pass. Thread-safe.
  void wake();

 private:
  void run();
  // Purges deleted jobs' rows for about a second at most; true when some are left.
  bool purge(JobStore& store);
  // false when stopping; `wakeable`: wake() ends it too.
  bool pause(std::chrono::milliseconds duration, bool wakeable = false);
  void log(const std::string& line) const;

  StoreConfig m_store_config;
  MaintenanceConfig m_config;
  const core::Clock& m_clock;
  std::thread m_thread;
  bool m_stopping = false;
  bool m_woken = false;
  std::mutex m_mutex;
  std::condition_variable m_cv;
};

} // namespace scrapekeep::store
