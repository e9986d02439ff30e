// scrapekeep's scraper on the benchmark site, driven in-process, and the
// parts of its cost taken apart.
//
//   scrape_pool --base URL --job chain|details --db PATH [--mode pool|nostore|record]
//               [--synchronous normal|full] [--detail-concurrency N]
//
// pool:    a WorkerPool (1 worker) runs the job from a fresh database; pages/s
//          over the job's started_at..completed_at, as the API reports it.
// nostore: the same fetches and extraction (HttpFetcher, extract_listing,
//          extract_detail, same concurrency) with the store writes left out.
// record:  only the store writes: record_listing_page for the chain's 300
//          pages of 20 items (or the details job's 50 + 1000 writes), timed.
// Prints one line: mode=... pages=N items=N seconds=S pages_per_s=X status=...

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/fetcher.hpp"
#include "scrapekeep/scrape/worker.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace {

using namespace scrapekeep;

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      return argv[i + 1];
    }
  }
  return fallback;
}

core::JobOptions job_options(bool details) {
  core::JobOptions o;
  o.timeout = 1800;
  o.max_items = 1000000;
  o.follow_pagination = true;
  o.max_pages = details ? 50 : 300;
  o.depth = details ? 1 : 0;
  o.selectors.item = "//article[@class='property']";
  o.selectors.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
  o.selectors.detail_link = ".//h2/a/@href";
  if (details) {
    o.selectors.detail_fields = {{"description", "//p[@class='desc']"}};
  }
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int die(const std::string& what) {
  std::fprintf(stderr, "scrape_pool: %s\n", what.c_str());
  return 1;
}

// Fetch and extract exactly as a job does, without the store.
int run_nostore(const std::string& start_url, bool details, int concurrency) {
  const core::JobOptions options = job_options(details);
  auto limiter = std::make_shared<scrape::HostLimiter>();
  scrape::FetchConfig config;
  scrape::HttpFetcher listing_fetcher(config, limiter);
  std::vector<std::unique_ptr<scrape::HttpFetcher>> detail_fetchers;
  for (int i = 0; i < concurrency; ++i) {
    detail_fetchers.push_back(std::make_unique<scrape::HttpFetcher>(config, limiter));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
  long pages = 0;
  long items = 0;
  long failed = 0;
  double fetch_s = 0;    // listing pages only
  double extract_s = 0;  // listing pages only
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::string> url = start_url;
  for (int page = 1; url && page <= options.max_pages; ++page) {
    const auto t0 = std::chrono::steady_clock::now();
    auto fetched = listing_fetcher.fetch(*url, deadline);
    if (!fetched.ok) {
      return die("listing page failed: " + fetched.error);
    }
    const auto t1 = std::chrono::steady_clock::now();
    auto extraction = scrape::extract_listing(fetched.body, fetched.final_url, options.selectors,
                                              details, fetched.charset);
    fetch_s += std::chrono::duration<double>(t1 - t0).count();
    extract_s += seconds_since(t1);
    ++pages;
    items += static_cast<long>(extraction.items.size());
    url = extraction.next_url;
    if (details) {
      std::atomic<std::size_t> next{0};
      std::atomic<long> ok{0};
      std::atomic<long> bad{0};
      std::vector<std::thread> group;
      for (int t = 0; t < concurrency; ++t) {
        group.emplace_back([&, t] {
          while (true) {
            const std::size_t i = next++;
            if (i >= extraction.items.size()) {
              break;
            }
            auto d = detail_fetchers[t]->fetch(*extraction.items[i].detail_url, deadline);
            if (d.ok) {
              scrape::extract_detail(d.body, d.final_url, options.selectors.detail_fields,
                                     d.charset);
              ++ok;
            } else {
              ++bad;
            }
          }
        });
      }
      for (auto& t : group) {
        t.join();
      }
      pages += ok;
      failed += bad;
    }
  }
  const double s = seconds_since(start);
  std::printf(
      "mode=nostore pages=%ld items=%ld failed=%ld seconds=%.3f pages_per_s=%.1f status=done "
      "listing_fetch_s=%.3f listing_extract_s=%.3f\n",
      pages, items, failed, s, static_cast<double>(pages) / s, fetch_s, extract_s);
  return 0;
}

// Only the store writes a job makes, with the site's item shapes.
int run_record(store::JobStore& db, const core::SystemClock& clock, std::int64_t org_id,
               const std::string& base, bool details) {
  const core::JobOptions options = job_options(details);
  auto job = db.create_job(org_id, base, options, clock.now());
  if (!job) {
    return die(job.error().message);
  }
  auto claim = db.claim_next(clock.now(), 60'000'000);
  if (!claim || !claim->has_value()) {
    return die("cannot claim the job");
  }
  const auto start = std::chrono::steady_clock::now();
  long writes = 0;
  for (int page = 1; page <= options.max_pages; ++page) {
    store::ListingPageRecord record;
    record.page_number = page;
    record.url = base + "?page=" + std::to_string(page);
    record.http_status = 200;
    record.started_at = clock.now();
    record.finished_at = clock.now();
    for (int i = 1; i <= 20; ++i) {
      const std::string id = std::to_string(page) + "-" + std::to_string(i);
      store::NewItem item;
      item.fields = {{"title", "Title " + id}, {"price", "CHF " + std::to_string(1000 + i)}};
      if (details) {
        item.detail_url = base + "/detail/" + id;
      }
      record.items.push_back(std::move(item));
    }
    if (page < options.max_pages) {
      record.next_url = base + "?page=" + std::to_string(page + 1);
    }
    record.pagination_complete = page == options.max_pages;
    if (auto s = db.record_listing_page(**claim, record, clock.now()); !s) {
      return die(s.error().message);
    }
    ++writes;
    if (details) {
      for (int i = 0; i < 20; ++i) {
        store::DetailPageRecord d;
        d.item_index = (page - 1) * 20 + i;
        d.url = base + "/detail/" + std::to_string(page) + "-" + std::to_string(i + 1);
        d.http_status = 200;
        d.started_at = clock.now();
        d.finished_at = clock.now();
        d.detail = {{"description",
                     "Description of " + std::to_string(page) + "-" + std::to_string(i + 1)}};
        if (auto s = db.record_detail_page(**claim, d, clock.now()); !s) {
          return die(s.error().message);
        }
        ++writes;
      }
    }
  }
  const double s = seconds_since(start);
  std::printf("mode=record pages=%ld items=%d seconds=%.3f pages_per_s=%.1f status=done\n", writes,
              options.max_pages * 20, s, static_cast<double>(writes) / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string base = arg(argc, argv, "--base", "");
  const std::string job_kind = arg(argc, argv, "--job", "chain");
  const std::string db_path = arg(argc, argv, "--db", "");
  const std::string mode = arg(argc, argv, "--mode", "pool");
  const std::string sync = arg(argc, argv, "--synchronous", "normal");
  const int concurrency =
      std::max(1, std::atoi(arg(argc, argv, "--detail-concurrency", "8").c_str()));
  if (base.empty() || (job_kind != "chain" && job_kind != "details") ||
      (mode != "nostore" && db_path.empty())) {
    return die(
        "usage: scrape_pool --base URL --job chain|details --db PATH [--mode pool|nostore|record] "
        "[--synchronous normal|full] [--detail-concurrency N]");
  }
  const bool details = job_kind == "details";
  const std::string start_url = base + (details ? "/listing?page=1" : "/chain?page=1");
  scrape::init_libxml();
  if (mode == "nostore") {
    return run_nostore(start_url, details, concurrency);
  }

  store::StoreConfig store_config;
  store_config.path = db_path;
  store_config.synchronous = sync == "full" ? store::Synchronous::full : store::Synchronous::normal;
  auto opened = store::JobStore::open(store_config);
  if (!opened) {
    return die(opened.error().message);
  }
  store::JobStore& db = **opened;
  core::SystemClock clock;
  auto key = db.create_key("bench", clock.now());
  if (!key) {
    return die(key.error().message);
  }
  if (mode == "record") {
    return run_record(db, clock, key->info.org_id, base, details);
  }

  auto job = db.create_job(key->info.org_id, start_url, job_options(details), clock.now());
  if (!job) {
    return die(job.error().message);
  }
  scrape::WorkerConfig worker_config;
  worker_config.workers = 1;
  worker_config.detail_concurrency = concurrency;
  worker_config.poll_interval = std::chrono::milliseconds(5);
  scrape::WorkerPool pool(
      store_config, worker_config, clock,
      scrape::http_fetcher_factory({}, std::make_shared<scrape::HostLimiter>()));
  pool.start();
  core::Job row;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (true) {
    auto got = db.get_job(job->job_id, std::nullopt);
    if (got && core::is_terminal(got->status)) {
      row = *got;
      break;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      pool.stop();
      return die("the job did not finish within 10 minutes");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pool.stop();
  const long pages =
      static_cast<long>(row.counters.listing_pages_scraped + row.counters.detail_pages_scraped);
  const double s =
      static_cast<double>(row.completed_at.value_or(0) - row.started_at.value_or(0)) / 1e6;
  std::printf(
      "mode=pool pages=%ld items=%ld failed=%ld seconds=%.3f pages_per_s=%.1f status=%s\n", pages,
      static_cast<long>(row.counters.items_found),
      static_cast<long>(row.counters.listing_pages_failed + row.counters.detail_pages_failed), s,
      static_cast<double>(pages) / s,
      row.completion_reason ? core::to_string(*row.completion_reason)
                            : core::to_string(row.status));
  return 0;
}
