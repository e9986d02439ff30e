#pragma once
// What `serve` and `worker` share: the scraping and durability options, and
// the workforce they start: recovery at start, scraper workers and
// maintenance (lease recovery, retention).

#include <CLI/CLI.hpp>

#include <memory>
#include <mutex>
#include <string>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/scrape/worker.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"

namespace scrapekeep::cli {

struct WorkOptions {
  std::string db = "scrapekeep.db";
  std::string synchronous = "normal";
  int detail_concurrency = 8;
  int max_per_host = 8;
  int host_delay_ms = 0;
  double lease_seconds = 10;
  int max_attempts = 5;
  std::string targets = "refuse-link-local";
  int retain_days = 0;  // 0: keep forever
  // Whether a missing --db is created (serve) or refused (worker: a mistyped
  // path would otherwise be a new empty database that no job ever reaches).
  bool create_db = true;
};

// Adds --db, --synchronous, --detail-concurrency, --max-per-host,
// --host-delay-ms, --lease-seconds, --max-attempts, --targets, --retain-days.
void add_work_options(CLI::App& command, WorkOptions& options);

store::StoreConfig store_config_for(const WorkOptions& options);

// One line to stderr per event, whole lines even from many threads.
void log_line(const std::string& line);

// Waits for SIGINT or SIGTERM (blocked earlier by block_shutdown_signals())
// and logs which arrived.
void await_shutdown_signal();

class Workforce {
 public:
  // Recovers jobs left by dead processes of this machine (at once, not after
  // their lease), then starts `workers` scraper threads (none: 0) and the
  // maintenance thread. nullptr (reason printed) when the database fails.
  static std::unique_ptr<Workforce> start(const WorkOptions& options, int workers,
                                          const core::Clock& clock);
  ~Workforce();  // stop()
  // Stops claiming, gives held jobs back (waiting for a worker: they resume
  // at once on the next start) and joins every thread.
  void stop();
  // Wakes the maintenance thread (Maintenance::wake): a deleted job's rows go now.
  void wake_maintenance();

 private:
  Workforce() = default;
  std::unique_ptr<scrape::WorkerPool> m_pool;
  std::unique_ptr<store::Maintenance> m_maintenance;
};

} // namespace scrapekeep::cli
