// Retention: terminal jobs older than the window are deleted with their
// events and results, in small batches; nothing else is touched. Through
// the Maintenance thread with a fake clock, and through `serve --retain-days`.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"
#include "support/child_process.hpp"
#include "support/fake_clock.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace core = scrapekeep::core;
namespace store = scrapekeep::store;
using scrapekeep::testing::ChildProcess;
using scrapekeep::testing::eventually;
using scrapekeep::testing::FakeClock;
using scrapekeep::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr core::Micros k_day = 24LL * 3600 * core::k_micros_per_second;
constexpr core::Micros k_lease = 60 * core::k_micros_per_second;

// A database with jobs in every state, made at chosen moments through the store.
class History {
 public:
  explicit History(const std::string& path, std::int64_t delete_batch_rows = 5000) {
    m_config.path = path;
    m_config.delete_batch_rows = delete_batch_rows;
    auto opened = store::JobStore::open(m_config);
    REQUIRE(opened.ok());
    m_store = std::move(*opened);
    auto key = m_store->create_key("default", 0);
    REQUIRE(key.ok());
    m_org = key->info.org_id;
  }

  const store::StoreConfig& config() const { return m_config; }

  // A job created at `at`, with one listing page of two items stored.
  store::Claim started(core::Micros at) {
    core::JobOptions options;
    options.selectors.item = "//article";
    options.selectors.fields = {{"title", ".//h2"}};
    options.timeout = 1800;
    auto job = m_store->create_job(m_org, "http://127.0.0.1:9/listings?page=1", options, at);
    REQUIRE(job.ok());
    auto claim = m_store->claim_next(at, k_lease);
    REQUIRE(claim.ok());
    REQUIRE(claim->has_value());
    REQUIRE((*claim)->job_id == job->job_id);
    store::ListingPageRecord page;
    page.url = job->url;
    page.http_status = 200;
    page.started_at = page.finished_at = at;
    page.items = {store::NewItem{{{"title", "a"}}, std::nullopt},
                  store::NewItem{{{"title", "b"}}, std::nullopt}};
    page.next_url = "http://127.0.0.1:9/listings?page=2";
    REQUIRE(m_store->record_listing_page(**claim, page, at).ok());
    return **claim;
  }

  // A job created at `created` (by default `at`) that ended at `at`.
  std::string finished(core::Micros at, core::CompletionReason reason,
                       std::optional<core::Micros> created = std::nullopt) {
    const store::Claim claim = started(created.value_or(at));
    if (reason == core::CompletionReason::cancelled) {
      REQUIRE(m_store->cancel_job(claim.job_id, std::nullopt, at).ok());
    } else {
      REQUIRE(m_store->finish(claim, reason, std::nullopt, at).ok());
    }
    return claim.job_id;
  }

  std::string pending(core::Micros at) {
    core::JobOptions options;
    options.selectors.item = "//article";
    auto job = m_store->create_job(m_org, "http://127.0.0.1:9/other", options, at);
    REQUIRE(job.ok());
    return job->job_id;
  }

  // Rows of `table` belonging to `job_id`.
  std::int64_t rows(const char* table, const std::string& job_id) {
    SQLite::Statement q(m_store->database(),
                        std::string("SELECT COUNT(*) FROM ") + table + " WHERE job_id = ?");
    q.bind(1, job_id);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }

  bool exists(const std::string& job_id) { return rows("jobs", job_id) == 1; }

  // Every row of a job: its own, its events and its items.
  std::int64_t all_rows(const std::string& job_id) {
    return rows("jobs", job_id) + rows("page_events", job_id) + rows("result_items", job_id);
  }

  std::int64_t jobs() { return count("SELECT COUNT(*) FROM jobs"); }

  std::int64_t count(const char* sql) {
    SQLite::Statement q(m_store->database(), sql);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }

 private:
  store::StoreConfig m_config;
  std::unique_ptr<store::JobStore> m_store;
  std::int64_t m_org = 0;
};

// The maintenance thread's log lines, as it writes them from its thread.
class Log {
 public:
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(m_mutex);
      m_lines.push_back(line);
    };
  }

  // The number at the start of each line after `prefix`, in order.
  std::vector<std::int64_t> numbers_after(const std::string& prefix) {
    std::lock_guard lock(m_mutex);
    std::vector<std::int64_t> out;
    for (const std::string& line : m_lines) {
      if (line.rfind(prefix, 0) == 0) {
        out.push_back(std::stoll(line.substr(prefix.size())));
      }
    }
    return out;
  }

 private:
  std::mutex m_mutex;
  std::vector<std::string> m_lines;
};

} // namespace

TEST_CASE("retention deletes old terminal jobs in batches and keeps everything else",
          "[retention]") {
  TempDir dir;
  History h(dir.file("scrapekeep.db"));
  const core::Micros now = 100 * k_day;
  const core::Micros old = now - 10 * k_day;

  std::vector<std::string> expired;
  for (int i = 0; i < 230; ++i) {
    expired.push_back(h.finished(old + i, core::CompletionReason::done));
  }
  expired.push_back(h.finished(old, core::CompletionReason::timeout));
  expired.push_back(h.finished(old, core::CompletionReason::error));
  expired.push_back(h.finished(old, core::CompletionReason::cancelled));
  expired.push_back(h.finished(old, core::CompletionReason::done, old - 30 * k_day));
  // Kept: finished inside the window (even if created long before), and old
  // jobs that are not terminal.
  const std::string recent = h.finished(now - 6 * k_day, core::CompletionReason::done);
  // (done: a timeout is dated when its time ran out, 30 minutes after it started.)
  const std::string long_running =
      h.finished(now - k_day, core::CompletionReason::done, old - 30 * k_day);
  const std::string recent_timeout =
      h.finished(now - k_day, core::CompletionReason::timeout, now - k_day - 600 * 1000000LL);
  const store::Claim old_processing = h.started(old);
  const std::string old_pending = h.pending(old);  // after: claim_next takes the oldest
  const std::int64_t recent_rows = h.all_rows(recent);
  const std::int64_t processing_rows = h.all_rows(old_processing.job_id);
  REQUIRE(recent_rows == 4);  // the job, its event, its two items

  FakeClock clock(now);
  Log log;
  store::MaintenanceConfig config;
  config.recover_interval = milliseconds(0);  // leave the processing job alone
  config.retain = std::chrono::hours(24 * 7);
  config.retention_batch = 50;
  config.log = log.sink();
  store::Maintenance maintenance(h.config(), config, clock);
  maintenance.start();
  REQUIRE(eventually([&] { return h.jobs() == 5; }));
  maintenance.stop();

  for (const std::string& id : expired) {
    INFO("job " << id);
    CHECK(h.all_rows(id) == 0);
  }
  CHECK(h.all_rows(recent) == recent_rows);
  CHECK(h.all_rows(long_running) == recent_rows);
  CHECK(h.all_rows(recent_timeout) == recent_rows);
  CHECK(h.exists(old_pending));
  CHECK(h.all_rows(old_processing.job_id) == processing_rows);

  // 234 jobs in batches of at most 50, each its own short transaction.
  const auto batches = log.numbers_after("retention: deleted ");
  for (const std::int64_t n : batches) {
    CHECK(n <= 50);
  }
  CHECK(std::accumulate(batches.begin(), batches.end(), std::int64_t{0}) == 234);
  CHECK(batches.size() >= 5);
}

TEST_CASE("retention: jobs with more rows than a delete batch leave at once, their rows follow",
          "[retention][purge]") {
  TempDir dir;
  // Each finished job has 3 rows (an event, two items): more than a batch of 2.
  History h(dir.file("scrapekeep.db"), 2);
  const core::Micros now = 100 * k_day;
  std::vector<std::string> expired;
  for (int i = 0; i < 12; ++i) {
    expired.push_back(h.finished(now - 10 * k_day + i, core::CompletionReason::done));
  }
  const std::string recent = h.finished(now - k_day, core::CompletionReason::done);

  FakeClock clock(now);
  Log log;
  store::MaintenanceConfig config;
  config.recover_interval = milliseconds(0);
  config.retain = std::chrono::hours(24 * 7);
  config.retention_batch = 5;
  config.log = log.sink();
  store::Maintenance maintenance(h.config(), config, clock);
  maintenance.start();
  REQUIRE(
      eventually([&] { return h.jobs() == 1 && h.count("SELECT COUNT(*) FROM job_purges") == 0; }));
  maintenance.stop();

  for (const std::string& id : expired) {
    INFO("job " << id);
    CHECK(h.all_rows(id) == 0);
  }
  CHECK(h.all_rows(recent) == 4);
  CHECK(h.count("SELECT COUNT(*) FROM pragma_foreign_key_check") == 0);
  const auto purged = log.numbers_after("purge: removed the last rows of ");
  CHECK(std::accumulate(purged.begin(), purged.end(), std::int64_t{0}) == 12);
}

TEST_CASE("retention: without a window nothing is deleted", "[retention]") {
  TempDir dir;
  History h(dir.file("scrapekeep.db"));
  const core::Micros now = 100 * k_day;
  const std::string ancient = h.finished(now - 90 * k_day, core::CompletionReason::done);
  FakeClock clock(now);
  store::MaintenanceConfig config;
  config.recover_interval = milliseconds(0);
  config.retention_interval = milliseconds(10);
  store::Maintenance maintenance(h.config(), config, clock);
  maintenance.start();
  std::this_thread::sleep_for(milliseconds(100));
  maintenance.stop();
  CHECK(h.all_rows(ancient) == 4);
}

TEST_CASE("retention: serve --retain-days deletes old finished jobs at start",
          "[retention][process]") {
  TempDir dir;
  const std::string db = dir.file("scrapekeep.db");
  const core::Micros now = core::SystemClock().now();
  std::string old_job;
  std::string recent_job;
  std::string old_pending;
  {
    History h(db);
    old_job = h.finished(now - 3 * k_day, core::CompletionReason::done);
    recent_job = h.finished(now - k_day / 2, core::CompletionReason::done);
    old_pending = h.pending(now - 3 * k_day);
  }
  ChildProcess serve(dir.path().string(), "serve",
                     {"serve", "--db", db, "--listen", "127.0.0.1:0", "--workers", "0",
                      "--retain-days", "2"});
  REQUIRE(wait_serving(serve, seconds(20)));
  REQUIRE(serve.wait_for_line("retention: deleted 1 job(s)", milliseconds(20000),
                              ChildProcess::Stream::err));
  serve.send(SIGTERM);
  const auto status = serve.wait(seconds(10));
  INFO("exit status " << status.value_or(-1) << ", stderr: " << serve.err());
  CHECK(status == std::optional<int>(0));

  History h(db);
  CHECK(h.all_rows(old_job) == 0);
  CHECK(h.all_rows(recent_job) == 4);
  CHECK(h.exists(old_pending));
}
