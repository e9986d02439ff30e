#pragma once
// Scraper workers: threads that claim pending jobs from the store and scrape
// them (listing pages, pagination, detail pages) under a renewed lease.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/scrape/fetcher.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::scrape {

// Makes a fresh Fetcher. Called from worker threads (must be thread-safe);
// each fetcher is used by one thread and dropped when its job ends.
using FetcherFactory = std::function<std::unique_ptr<Fetcher>()>;

// HttpFetchers with `config`, all sharing `limiter` (may be null): the
// per-host politeness of every worker of a process.
FetcherFactory http_fetcher_factory(FetchConfig config, std::shared_ptr<HostLimiter> limiter);

struct WorkerConfig {
  int workers = 2;  // threads; each opens its own store connection
  // A job's lease: another process may take the job over once it expires.
  std::chrono::milliseconds lease{10000};
  // How often a busy worker renews its lease (well below `lease`).
  std::chrono::milliseconds renew_interval{3000};
  // How long an idle worker waits before looking for work again.
  std::chrono::milliseconds poll_interval{200};
  // Detail pages of one job fetched at once (depth 1), >= 1.
  int detail_concurrency = 8;
  // Detail pages of a job left to fetch beyond which its next listing page
  // waits (depth 1): how far listing pages run ahead of their detail pages.
  std::size_t max_details_ahead = 1000;
  // recover_expired(): a job whose worker was lost (its lease expired) this
  // many times in a row without a page stored in between fails.
  std::int64_t max_attempts = 5;
  // How often an idle worker puts jobs with expired leases back to work;
  // zero: never (someone else does it).
  std::chrono::milliseconds recover_interval{5000};
  // Longest pause between retries of a store write that found the database
  // unavailable (busy, full); writes are retried until they succeed.
  std::chrono::milliseconds max_store_backoff{2000};
  // Optional: one line per notable event (job finished, store trouble).
  std::function<void(const std::string&)> log;
};

// Runs `workers` threads. Each claims a job (the oldest waiting for a worker,
// else the oldest pending one: JobStore::claim_next), scrapes it and
// writes every page through its claim; a lost claim (cancel, lease taken
// over) makes it drop the job silently. start()/stop() are not thread-safe
// with each other; busy_workers() is.
class WorkerPool {
 public:
  WorkerPool(store::StoreConfig store_config, WorkerConfig config, const core::Clock& clock,
             FetcherFactory factory);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts the threads; no-op when running.
  void start();
  // Stops claiming, abandons in-flight fetches, gives each held job back
  // (waiting for a worker, so it resumes at once on the next start) and
  // joins. Idempotent.
  void stop();

  bool running() const;
  // Workers holding a job right now.
  int busy_workers() const;
  // Jobs the pool's workers brought to a terminal state since construction.
  std::int64_t jobs_finished() const;

 private:
  void run_worker();
  bool pause(std::chrono::milliseconds duration);  // false when stopping
  void log(const std::string& line) const;

  store::StoreConfig m_store_config;
  WorkerConfig m_config;
  const core::Clock& m_clock;
  FetcherFactory m_factory;

  std::vector<std::thread> m_threads;
  std::atomic<bool> m_stopping{false};
  std::atomic<int> m_busy{0};
  std::atomic<std::int64_t> m_finished{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
};

} // namespace scrapekeep::scrape
