// delete_wait: how long deleting a job with many items holds other writers up.
//
//   delete_wait --db PATH [--items 1000000] [--build-only] [--seconds-after 1]
//
// Without the file at PATH, builds it first: one completed job of `--items`
// items (1,000 pages of 1,000 items for a million, as max_items allows), and
// stops there with --build-only. Then, on the file as it is (copy it first: it
// is changed), a writer thread stores listing pages of another job through its
// own JobStore, as a worker does, one every 2 ms, and times each store; the
// main thread deletes the big job on a third connection (JobStore::delete_job,
// what DELETE /v1/scrape/jobs/{id} calls) while a Maintenance thread runs as
// `serve` runs it, until none of the big job's rows is left. Prints one line:
//   RESULT delete_ms purge_ms writes max_wait_ms p99_wait_ms

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"

namespace {

using scrapekeep::core::Micros;
using scrapekeep::store::Claim;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::StoreConfig;
using std::chrono::steady_clock;

struct Options {
  std::string db;
  long items = 1'000'000;
  bool build_only = false;
  double seconds_after = 1;
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "delete_wait: " << message << "\n";
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Deleting a job of a million items, and the longest wait of a writer meanwhile",
               "delete_wait");
  app.add_option("--db", o.db, "Database file")->required();
  app.add_option("--items", o.items, "Items of the job built")->capture_default_str();
  app.add_flag("--build-only", o.build_only, "Build the database and stop");
  app.add_option("--seconds-after", o.seconds_after, "Writes measured after the purge ends")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

template <typename T>
T must(scrapekeep::core::Result<T> r, const char* what) {
  if (!r) {
    die(std::string(what) + ": " + r.error().message);
  }
  return std::move(*r);
}

scrapekeep::core::JobOptions job_options(int max_items) {
  scrapekeep::core::JobOptions options;
  options.max_items = max_items;
  options.max_pages = 10000;
  options.follow_pagination = true;
  options.timeout = 1800;
  options.selectors.item = "//article";
  options.selectors.fields = {{"title", ".//h2"}, {"price", ".//span"}};
  return options;
}

ListingPageRecord page_of(long number, long items, Micros now) {
  ListingPageRecord page;
  page.page_number = number;
  page.url = "http://127.0.0.1:9/listings?page=" + std::to_string(number);
  page.http_status = 200;
  page.started_at = page.finished_at = now;
  page.next_url = "http://127.0.0.1:9/listings?page=" + std::to_string(number + 1);
  for (long i = 0; i < items; ++i) {
    page.items.push_back(NewItem{{{"title", "A flat of three rooms near the river, item " +
                                                std::to_string(number * 100000 + i)},
                                  {"price", "1,234,567"}},
                                 std::nullopt});
  }
  return page;
}

std::string build(const Options& o, JobStore& store, std::int64_t org) {
  scrapekeep::core::SystemClock clock;
  auto job = must(store.create_job(org, "http://127.0.0.1:9/listings?page=1",
                                   job_options(static_cast<int>(o.items)), clock.now()),
                  "create");
  auto claim = must(store.claim_next(clock.now(), 3'600'000'000LL), "claim");
  if (!claim) {
    die("nothing to claim");
  }
  const long per_page = std::min<long>(o.items, 1000);
  for (long n = 1, stored = 0; stored < o.items; ++n, stored += per_page) {
    auto st = store.record_listing_page(*claim, page_of(n, per_page, clock.now()), clock.now());
    if (!st) {
      die("record: " + st.error().message);
    }
  }
  auto st =
      store.finish(*claim, scrapekeep::core::CompletionReason::done, std::nullopt, clock.now());
  if (!st) {
    die("finish: " + st.error().message);
  }
  return job.job_id;
}

std::int64_t scalar(JobStore& store, const std::string& sql, const std::string& job_id) {
  SQLite::Statement q(store.database(), sql);
  q.bind(1, job_id);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

} // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  StoreConfig config;
  config.path = o.db;
  const bool fresh = !std::filesystem::exists(o.db);
  auto store = must(JobStore::open(config), "open");
  if (fresh) {
    const auto t0 = steady_clock::now();
    auto key = must(store->create_key("default", 0), "key");
    const std::string big = build(o, *store, key.info.org_id);
    store->checkpoint();
    std::cerr << "built " << big << " with " << o.items << " items in "
              << std::chrono::duration<double>(steady_clock::now() - t0).count() << " s\n";
  }
  if (o.build_only) {
    return 0;
  }
  std::string big;
  std::int64_t org = 0;
  {
    SQLite::Statement q(store->database(),
                        "SELECT job_id, org_id FROM jobs ORDER BY items_found DESC LIMIT 1");
    if (!q.executeStep()) {
      die("no job in the database");
    }
    big = q.getColumn(0).getString();
    org = q.getColumn(1).getInt64();
  }

  // The writer: another job's listing pages, 10 items each, as a worker stores them.
  scrapekeep::core::SystemClock clock;
  auto writer_store = must(JobStore::open(config), "open writer");
  must(writer_store->create_job(org, "http://127.0.0.1:9/other?page=1", job_options(1'000'000),
                                clock.now()),
       "create writer job");
  auto claim = must(writer_store->claim_next(clock.now(), 3'600'000'000LL), "claim writer job");
  if (!claim) {
    die("writer job not claimed");
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::vector<double> waits_ms;
  std::thread writer([&] {
    long number = 1;
    while (!stop.load()) {
      const auto t0 = steady_clock::now();
      auto st = writer_store->record_listing_page(*claim, page_of(number++, 10, clock.now()),
                                                  clock.now());
      const double ms = std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
      if (!st) {
        std::cerr << "writer: " << st.error().message << " after " << ms << " ms\n";
      }
      if (measuring.load()) {
        waits_ms.push_back(ms);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  scrapekeep::store::MaintenanceConfig maintenance_config;
  maintenance_config.recover_interval = std::chrono::milliseconds(5000);
  maintenance_config.log = [](const std::string& line) { std::cerr << line << "\n"; };
  scrapekeep::store::Maintenance maintenance(config, maintenance_config, clock);

  auto deleter = must(JobStore::open(config), "open deleter");
  measuring = true;
  const auto t0 = steady_clock::now();
  auto deleted = deleter->delete_job(big, org);
  const auto t1 = steady_clock::now();
  if (!deleted) {
    die("delete: " + deleted.error().message);
  }
  maintenance.start();
  const std::string left_sql =
      "SELECT (SELECT COUNT(*) FROM result_items WHERE job_id = ?1) + "
      "(SELECT COUNT(*) FROM page_events WHERE job_id = ?1)";
  while (scalar(*deleter, left_sql, big) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto t2 = steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds_after));
  measuring = false;
  stop = true;
  writer.join();
  maintenance.stop();

  std::sort(waits_ms.begin(), waits_ms.end());
  const double max = waits_ms.empty() ? 0 : waits_ms.back();
  const double p99 = waits_ms.empty() ? 0 : waits_ms[waits_ms.size() * 99 / 100];
  std::printf("RESULT delete_ms %.1f purge_ms %.1f writes %zu max_wait_ms %.1f p99_wait_ms %.1f\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(),
              std::chrono::duration<double, std::milli>(t2 - t0).count(), waits_ms.size(), max,
              p99);
  return 0;
}
