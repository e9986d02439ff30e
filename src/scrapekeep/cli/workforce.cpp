#include "scrapekeep/cli/workforce.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <system_error>
#include <thread>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/cli/shutdown.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/scrape/address_filter.hpp"
#include "scrapekeep/scrape/extractor.hpp"

namespace scrapekeep::cli {

namespace {

std::mutex g_log_mutex;

// How long a stop waits for the workers to give their jobs back.
constexpr std::chrono::seconds k_stop_grace{10};
// How often, past it, a stop looks again for an evaluation to leave behind.
constexpr std::chrono::milliseconds k_stop_recheck{200};

} // namespace

void log_line(const std::string& line) {
  std::lock_guard lock(g_log_mutex);
  // A job's URL may be in it: its password is not shown, nor the site's
  // control characters and bidi overrides played on the terminal.
  say(core::without_url_passwords(line));
}

void await_shutdown_signal() {
  const int sig = wait_for_shutdown_signal();
  log_line(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
           ", shutting down");
}

void add_work_options(CLI::App& command, WorkOptions& o) {
  add_path_option(command, "--db", o.db, "Database file")->capture_default_str();
  command
      .add_option("--synchronous", o.synchronous,
                  "SQLite synchronous mode: normal (a power cut may lose the last "
                  "page writes, never corrupts; jobs' and keys' changes are synced) or full "
                  "(every commit synced)")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  command
      .add_option("--detail-concurrency", o.detail_concurrency,
                  "Detail pages of one job fetched at once")
      ->transform(whole_number(1, 64))
      ->capture_default_str();
  command
      .add_option("--max-per-host", o.max_per_host,
                  "Concurrent requests to one host, across all workers of this process")
      ->transform(whole_number(1, 256))
      ->capture_default_str();
  command
      .add_option("--host-delay-ms", o.host_delay_ms,
                  "Least time between the starts of two requests to one host, across all "
                  "workers of this process")
      ->transform(whole_number(0, 60000))
      ->capture_default_str();
  command
      .add_option("--lease-seconds", o.lease_seconds,
                  "A job's lease; a job whose worker stops renewing it is taken back after this")
      ->check(number(1, 3600))
      ->capture_default_str();
  command
      .add_option("--max-attempts", o.max_attempts,
                  "Times in a row a job's worker may be lost (killed, crashed) without a page "
                  "stored before the job fails instead of crash-looping")
      ->transform(whole_number(1, 100))
      ->capture_default_str();
  command
      .add_option("--targets", o.targets,
                  "Scrape targets refused after DNS and on every redirect: refuse-link-local "
                  "(cloud metadata), refuse-private (also loopback and private networks) "
                  "or allow-all")
      ->check(CLI::IsMember({"refuse-link-local", "refuse-private", "allow-all"}))
      ->capture_default_str();
  command
      .add_option("--retain-days", o.retain_days,
                  "Delete finished jobs older than this many days (0: keep forever)")
      ->transform(whole_number(0, 36500))
      ->capture_default_str();
}

store::StoreConfig store_config_for(const WorkOptions& o) {
  return store::StoreConfig{
      .path = o.db, .synchronous = parse_synchronous(o.synchronous), .create = o.create_db};
}

std::unique_ptr<Workforce> Workforce::start(const WorkOptions& o, int workers,
                                            const core::Clock& clock) {
  const store::StoreConfig store_config = store_config_for(o);
  {
    auto opened = store::JobStore::open(store_config);
    if (!opened) {
      if (opened.error().code == core::ErrorCode::not_found) {
        fail(o.db + ": no such database file (start scrapekeep serve or scrapekeep migrate on "
                    "it first)");
      } else {
        fail(opened.error().message);
      }
      return nullptr;
    }
    auto& store = *opened;
    auto recovered = store::recover_at_start(*store, clock.now(), o.max_attempts);
    if (!recovered) {
      fail("cannot recover interrupted jobs: " + recovered.error().message);
      return nullptr;
    }
    if (recovered->recovered > 0) {
      log_line("recovered " + std::to_string(recovered->recovered) +
               " interrupted job(s) at start");
    }
  }
  const auto lease = std::chrono::milliseconds(static_cast<long>(o.lease_seconds * 1000));
  // The file exists now: the threads' own connections never make one (a
  // file removed meanwhile would be made anew, empty, and worked on).
  store::StoreConfig existing = store_config;
  existing.create = false;

  std::unique_ptr<Workforce> force(new Workforce());
  store::MaintenanceConfig maintenance;
  maintenance.recover_interval = std::max(std::chrono::milliseconds(500), lease / 2);
  maintenance.max_attempts = o.max_attempts;
  if (o.retain_days > 0) {
    maintenance.retain = std::chrono::hours(24 * o.retain_days);
  }
  maintenance.log = log_line;
  force->m_maintenance = std::make_unique<store::Maintenance>(existing, maintenance, clock);
  force->m_maintenance->start();

  if (workers > 0) {
    scrape::FetchConfig fetch;
    fetch.address_filter = scrape::address_filter_for(*scrape::parse_target_policy(o.targets));
    auto limiter = std::make_shared<scrape::HostLimiter>(scrape::HostLimiterConfig{
        .max_per_host = o.max_per_host,
        .delay = std::chrono::milliseconds(o.host_delay_ms)});
    scrape::WorkerConfig config;
    config.workers = workers;
    config.detail_concurrency = o.detail_concurrency;
    config.lease = lease;
    config.renew_interval = std::max(std::chrono::milliseconds(100), lease / 3);
    config.max_attempts = o.max_attempts;
    // The maintenance thread puts expired jobs back to work.
    config.recover_interval = std::chrono::milliseconds(0);
    config.log = log_line;
    force->m_pool = std::make_unique<scrape::WorkerPool>(
        existing, config, clock, scrape::http_fetcher_factory(fetch, limiter));
    force->m_pool->start();
  }
  return force;
}

Workforce::~Workforce() { stop(); }

void Workforce::stop() {
  if (m_pool) {
    // A worker inside an evaluation libxml2 cannot interrupt (README, "What
    // no step counts": a sort of a long run of text nodes), or inside a
    // page's parse (an element of very many attributes), would hold the
    // stop until that ends, hours on a hostile page. Past k_stop_grace,
    // once such an evaluation or parse is seen running, the process
    // exits, with status 0, without it, as after a kill -9: its job keeps
    // this process's lease, which the next start on this machine takes back
    // at once (another process's maintenance, once the lease has expired).
    // A stop that is only slow (a give-back waiting for a database another
    // process holds) is waited for: its job is given back, no loss counted
    // against it (--max-attempts).
    std::mutex mutex;
    std::condition_variable stopped_cv;
    bool stopped = false;
    std::thread watchdog;
    try {
      watchdog = std::thread([&] {
        std::unique_lock lock(mutex);
        if (stopped_cv.wait_for(lock, k_stop_grace, [&] { return stopped; })) {
          return;
        }
        do {
          if (scrape::libxml2_work_running() > 0) {
            log_line("a worker is still inside a page's XPath evaluation or parse, which "
                     "cannot be interrupted, " + std::to_string(k_stop_grace.count()) +
                     " s after the stop; exiting without it (its job resumes at the next "
                     "start)");
            std::_Exit(0);
          }
        } while (!stopped_cv.wait_for(lock, k_stop_recheck, [&] { return stopped; }));
      });
    } catch (const std::system_error&) {
      // No thread to spare (this may run in a destructor): the stop is waited for.
    }
    m_pool->stop();
    {
      std::lock_guard lock(mutex);
      stopped = true;
    }
    stopped_cv.notify_one();
    if (watchdog.joinable()) {
      watchdog.join();
    }
    m_pool.reset();
  }
  if (m_maintenance) {
    m_maintenance->stop();
  }
}

void Workforce::wake_maintenance() {
  if (m_maintenance) {
    m_maintenance->wake();
  }
}

} // namespace scrapekeep::cli
