// store/job_store: deleting a job with more events and items than one delete
// batch. The job leaves every read at once; its rows follow a batch per
// transaction (purge_deleted), and a purge cut short (the store closed half
// way, as by a crash) goes on when a maintenance thread starts on the file.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"
#include "support/child_process.hpp"
#include "support/fake_clock.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace core = scrapekeep::core;
using scrapekeep::core::CompletionReason;
using scrapekeep::core::ErrorCode;
using scrapekeep::core::Micros;
using scrapekeep::store::Claim;
using scrapekeep::store::JobFilter;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::eventually;
using scrapekeep::testing::FakeClock;
using scrapekeep::testing::TempDir;

constexpr Micros k_t0 = 1'768'201'200'000'000;  // 2026-01-12T07:00:00Z
constexpr Micros k_lease = 30'000'000;
constexpr std::int64_t k_batch = 10;

std::unique_ptr<JobStore> open_store(const std::string& path) {
  StoreConfig config;
  config.path = path;
  config.delete_batch_rows = k_batch;
  auto opened = JobStore::open(config);
  REQUIRE(opened.ok());
  return std::move(*opened);
}

std::int64_t count(JobStore& store, const std::string& sql, const std::string& job_id = {}) {
  SQLite::Statement q(store.database(), sql);
  if (!job_id.empty()) {
    q.bind(1, job_id);
  }
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// Page events and result items of `job_id`.
std::int64_t rows_of(JobStore& store, const std::string& job_id) {
  return count(store,
               "SELECT (SELECT COUNT(*) FROM page_events WHERE job_id = ?1) + "
               "(SELECT COUNT(*) FROM result_items WHERE job_id = ?1)",
               job_id);
}

std::int64_t queued(JobStore& store) {
  return count(store, "SELECT COUNT(*) FROM job_purges");
}

// A completed job of `pages` listing pages of `per_page` items each.
std::string finished_job(JobStore& store, std::int64_t org, int pages, int per_page) {
  core::JobOptions options;
  options.follow_pagination = true;
  options.max_pages = 100;
  options.max_items = 10000;
  options.selectors.item = "//article";
  options.selectors.fields = {{"title", ".//h2"}};
  auto job = store.create_job(org, "http://127.0.0.1:9/l?page=1", options, k_t0);
  REQUIRE(job.ok());
  auto claimed = store.claim_next(k_t0, k_lease);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());
  const Claim claim = **claimed;
  REQUIRE(claim.job_id == job->job_id);
  for (int page = 1; page <= pages; ++page) {
    ListingPageRecord r;
    r.page_number = page;
    r.url = "http://127.0.0.1:9/l?page=" + std::to_string(page);
    r.http_status = 200;
    r.started_at = r.finished_at = k_t0;
    for (int i = 0; i < per_page; ++i) {
      r.items.push_back(NewItem{{{"title", "item " + std::to_string(i)}}, std::nullopt});
    }
    if (page < pages) {
      r.next_url = "http://127.0.0.1:9/l?page=" + std::to_string(page + 1);
    }
    r.pagination_complete = page == pages;
    REQUIRE(store.record_listing_page(claim, r, k_t0).ok());
  }
  REQUIRE(store.finish(claim, CompletionReason::done, std::nullopt, k_t0).ok());
  return job->job_id;
}

} // namespace

TEST_CASE("a deleted job bigger than a delete batch leaves every read at once, its rows follow "
          "a batch at a time",
          "[store][purge]") {
  TempDir dir;
  auto store = open_store(dir.file("scrapekeep.db"));
  auto key = store->create_key("org-a", k_t0);
  REQUIRE(key.ok());
  const std::int64_t org = key->info.org_id;
  const std::string big = finished_job(*store, org, 4, 8);    // 4 events + 32 items
  const std::string kept = finished_job(*store, org, 2, 3);   // 2 events + 6 items
  const std::string small = finished_job(*store, org, 1, 2);  // 1 event + 2 items
  REQUIRE(rows_of(*store, big) == 36);

  REQUIRE(store->delete_job(big, org).ok());
  // Gone from every read the API makes.
  auto job = store->get_job(big, std::nullopt);
  REQUIRE_FALSE(job.ok());
  CHECK(job.error().code == ErrorCode::not_found);
  auto again = store->delete_job(big, org);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::not_found);
  auto cancel = store->cancel_job(big, org, k_t0);
  REQUIRE_FALSE(cancel.ok());
  CHECK(cancel.error().code == ErrorCode::not_found);
  JobFilter all;
  all.org_id = org;
  auto listed = store->list_jobs(all);
  REQUIRE(listed.ok());
  CHECK(listed->total == 2);
  for (const auto& j : listed->jobs) {
    CHECK(j.job_id != big);
  }

  // A job that fits in a batch goes with its rows at once.
  REQUIRE(store->delete_job(small, org).ok());
  CHECK(rows_of(*store, small) == 0);
  CHECK(queued(*store) == 1);

  // The big one's rows: at most a batch per call.
  std::vector<std::int64_t> steps;
  for (int call = 0; call < 100; ++call) {
    auto step = store->purge_deleted();
    REQUIRE(step.ok());
    steps.push_back(step->rows);
    CHECK(step->rows <= k_batch);
    if (!step->more) {
      CHECK(step->jobs == 1);
      break;
    }
  }
  CHECK(steps.size() == 4);  // 10 + 10 + 10 + 6
  CHECK(rows_of(*store, big) == 0);
  CHECK(queued(*store) == 0);
  CHECK(rows_of(*store, kept) == 8);
  auto step = store->purge_deleted();
  REQUIRE(step.ok());
  CHECK(step->rows == 0);
  CHECK_FALSE(step->more);

  // The database says nothing is left dangling.
  CHECK(count(*store, "SELECT COUNT(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("a delete turns foreign keys off for its own transaction only, whatever its outcome",
          "[store][purge]") {
  TempDir dir;
  auto store = open_store(dir.file("scrapekeep.db"));
  const auto foreign_keys = [&] { return count(*store, "PRAGMA foreign_keys"); };
  auto key = store->create_key("org-a", k_t0);
  REQUIRE(key.ok());
  const std::int64_t org = key->info.org_id;
  REQUIRE(foreign_keys() == 1);
  REQUIRE(store->delete_job(finished_job(*store, org, 4, 8), org).ok());  // purged later
  CHECK(foreign_keys() == 1);
  REQUIRE(store->delete_job(finished_job(*store, org, 1, 2), org).ok());  // at once
  CHECK(foreign_keys() == 1);
  CHECK(store->delete_job("job_0123456789abcdef01234567", org).error().code ==
        ErrorCode::not_found);
  CHECK(foreign_keys() == 1);
  core::JobOptions options;
  options.selectors.item = "//article";
  auto pending = store->create_job(org, "http://127.0.0.1:9/", options, k_t0);
  REQUIRE(pending.ok());
  CHECK(store->delete_job(pending->job_id, org).error().code == ErrorCode::conflict);
  CHECK(foreign_keys() == 1);
  auto deleted = store->delete_terminal_before(k_t0 + 1, 10);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 0);
  CHECK(foreign_keys() == 1);
  // And they are enforced again: an item of a job that does not exist is refused.
  CHECK_THROWS_WITH(store->database().exec(
                        "INSERT INTO result_items (job_id, item_index, page_number, page_url, "
                        "fields) VALUES ('job_none', 0, 1, 'http://x/', '{}')"),
                    Catch::Contains("FOREIGN KEY constraint failed"));
}

TEST_CASE("the results and events of a deleted job whose rows wait for the purge read as none",
          "[store][purge]") {
  // The API checks the caller's job, then reads its results or events: a
  // delete (a client's, retention) may commit in between. The rows left to
  // purge_deleted() must not come back as the page of a job that is gone.
  TempDir dir;
  auto store = open_store(dir.file("scrapekeep.db"));
  auto key = store->create_key("org-a", k_t0);
  REQUIRE(key.ok());
  const std::int64_t org = key->info.org_id;
  const std::string big = finished_job(*store, org, 4, 8);
  const std::string kept = finished_job(*store, org, 2, 3);
  REQUIRE(store->delete_job(big, org).ok());
  REQUIRE(rows_of(*store, big) == 36);  // waiting for the purge

  auto results = store->list_results(big, 100, 0);
  REQUIRE(results.ok());
  CHECK(results->total == 0);
  CHECK(results->items.empty());
  auto events = store->list_events(big, 0, 100);
  REQUIRE(events.ok());
  CHECK(events->events.empty());
  CHECK(events->next_after == 0);

  // A live job's pages are read as before.
  auto kept_results = store->list_results(kept, 100, 0);
  REQUIRE(kept_results.ok());
  CHECK(kept_results->total == 6);
  CHECK(kept_results->items.size() == 6);
  auto kept_events = store->list_events(kept, 0, 100);
  REQUIRE(kept_events.ok());
  CHECK(kept_events->events.size() == 2);
}

TEST_CASE("a purge cut short goes on when a maintenance thread starts on the file",
          "[store][purge]") {
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  std::string big;
  std::string kept;
  {
    auto store = open_store(path);
    auto key = store->create_key("org-a", k_t0);
    REQUIRE(key.ok());
    big = finished_job(*store, key->info.org_id, 5, 10);
    kept = finished_job(*store, key->info.org_id, 1, 3);
    REQUIRE(store->delete_job(big, std::nullopt).ok());
    auto step = store->purge_deleted();
    REQUIRE(step.ok());
    REQUIRE(step->more);
    REQUIRE(rows_of(*store, big) == 55 - k_batch);
  }  // closed half way, as a crash would leave it

  auto store = open_store(path);
  CHECK_FALSE(store->get_job(big, std::nullopt).ok());
  CHECK(queued(*store) == 1);
  FakeClock clock(k_t0);
  scrapekeep::store::MaintenanceConfig config;
  config.recover_interval = std::chrono::milliseconds(0);
  scrapekeep::store::Maintenance maintenance(
      StoreConfig{.path = path, .delete_batch_rows = k_batch}, config, clock);
  maintenance.start();
  CHECK(eventually([&] { return queued(*store) == 0; }));
  maintenance.stop();
  CHECK(rows_of(*store, big) == 0);
  CHECK(rows_of(*store, kept) == 4);
  CHECK(store->get_job(kept, std::nullopt).ok());
  CHECK(count(*store, "SELECT COUNT(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("a job deleted while maintenance waits for its next pass is purged once it is woken",
          "[store][purge]") {
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  auto store = open_store(path);
  auto key = store->create_key("org-a", k_t0);
  REQUIRE(key.ok());
  const std::string first = finished_job(*store, key->info.org_id, 5, 10);
  const std::string second = finished_job(*store, key->info.org_id, 5, 10);
  REQUIRE(store->delete_job(first, std::nullopt).ok());
  FakeClock clock(k_t0);
  scrapekeep::store::MaintenanceConfig config;
  config.recover_interval = std::chrono::milliseconds(0);  // a pass a minute
  scrapekeep::store::Maintenance maintenance(
      StoreConfig{.path = path, .delete_batch_rows = k_batch}, config, clock);
  maintenance.start();
  // The pass at start purges the first; the thread then waits a minute.
  REQUIRE(eventually([&] { return queued(*store) == 0; }));
  CHECK(rows_of(*store, first) == 0);

  REQUIRE(store->delete_job(second, std::nullopt).ok());
  CHECK(queued(*store) == 1);
  maintenance.wake();
  CHECK(eventually([&] { return queued(*store) == 0; }, std::chrono::seconds(20)));
  CHECK(rows_of(*store, second) == 0);
  maintenance.stop();
}
