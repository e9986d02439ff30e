#include <catch2/catch.hpp>

#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <pthread.h>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/scrape/address_filter.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/fetcher.hpp"
#include "scrapekeep/scrape/worker.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/fixture_site.hpp"
#include "support/hanging_resolver.hpp"
#include "support/temp_dir.hpp"

namespace core = scrapekeep::core;
namespace store = scrapekeep::store;
namespace scrape = scrapekeep::scrape;
using scrapekeep::testing::eventually;
using scrapekeep::testing::FixtureSite;
using scrapekeep::testing::FixtureSiteConfig;
using scrapekeep::testing::HangingResolver;
using scrapekeep::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

// The system clock moved by an offset that a test may change, to make a
// job's time run out between two runs without waiting.
class OffsetClock final : public core::Clock {
 public:
  core::Micros now() const override { return m_system.now() + m_offset.load(); }
  void advance(core::Micros by) { m_offset += by; }

 private:
  core::SystemClock m_system;
  std::atomic<core::Micros> m_offset{0};
};

core::JobOptions listing_options() {
  core::JobOptions options;
  options.timeout = 60;
  options.max_items = 1000;
  options.follow_pagination = true;
  options.max_pages = 20;
  options.depth = 0;
  options.selectors.item = "//article[@class='property']";
  options.selectors.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
  return options;
}

core::JobOptions detail_options() {
  core::JobOptions options = listing_options();
  options.depth = 1;
  options.selectors.detail_fields = {{"description", "//p[@class='desc']"}};
  return options;
}

class Harness {
 public:
  Harness() {
    m_config.path = m_dir.file("scrapekeep.db");
    auto opened = store::JobStore::open(m_config);
    REQUIRE(opened.ok());
    m_store = std::move(*opened);
    auto key = m_store->create_key("default", clock.now());
    REQUIRE(key.ok());
    m_org_id = key->info.org_id;
    fetch.backoff = milliseconds(10);
  }

  std::string create(const std::string& url, const core::JobOptions& options) {
    auto job = m_store->create_job(m_org_id, url, options, clock.now());
    REQUIRE(job.ok());
    return job->job_id;
  }

  core::Job job(const std::string& job_id) {
    auto job = m_store->get_job(job_id, std::nullopt);
    REQUIRE(job.ok());
    return *job;
  }

  core::Job wait_terminal(const std::string& job_id) {
    core::Job last;
    const bool done = eventually([&] {
      last = job(job_id);
      return core::is_terminal(last.status);
    });
    INFO("status " << core::to_string(last.status));
    REQUIRE(done);
    return last;
  }

  std::vector<store::ResultItem> results(const std::string& job_id) {
    auto page = m_store->list_results(job_id, 100000, 0);
    REQUIRE(page.ok());
    return page->items;
  }

  std::vector<store::PageEvent> events(const std::string& job_id) {
    auto page = m_store->list_events(job_id, 0, 100000);
    REQUIRE(page.ok());
    return page->events;
  }

  // The URL of each of the job's page events, in the order they were stored.
  std::vector<std::string> event_urls(const std::string& job_id) {
    std::vector<std::string> urls;
    for (const store::PageEvent& e : events(job_id)) {
      urls.push_back(e.url);
    }
    return urls;
  }

  struct Run {
    std::string id;
    core::Job job;  // terminal
  };
  // Creates a job and runs a worker pool until the job is terminal.
  Run run(const std::string& url, const core::JobOptions& options) {
    Run r;
    r.id = create(url, options);
    auto workers = pool();
    workers->start();
    r.job = wait_terminal(r.id);
    return r;
  }

  std::unique_ptr<scrape::WorkerPool> pool(scrape::WorkerConfig config = worker_config(),
                                           int busy_timeout_ms = 5000) {
    store::StoreConfig store_config = m_config;
    store_config.busy_timeout_ms = busy_timeout_ms;
    return std::make_unique<scrape::WorkerPool>(store_config, config, clock,
                                                scrape::http_fetcher_factory(fetch, m_limiter));
  }

  static scrape::WorkerConfig worker_config() {
    scrape::WorkerConfig config;
    config.workers = 1;
    config.poll_interval = milliseconds(20);
    config.renew_interval = milliseconds(500);
    config.detail_concurrency = 4;
    return config;
  }

  // The per-host politeness of the pools made after this call.
  void limit_hosts(scrape::HostLimiterConfig config) {
    m_limiter = std::make_shared<scrape::HostLimiter>(config);
  }

  store::JobStore& db() { return *m_store; }
  const store::StoreConfig& store_config() const { return m_config; }

  OffsetClock clock;
  // How the pools made after a change to it fetch.
  scrape::FetchConfig fetch;

 private:
  TempDir m_dir;
  store::StoreConfig m_config;
  std::unique_ptr<store::JobStore> m_store;
  std::int64_t m_org_id = 0;
  std::shared_ptr<scrape::HostLimiter> m_limiter = std::make_shared<scrape::HostLimiter>();
};

std::optional<std::string> value(const core::FieldValues& values, const std::string& name) {
  for (const auto& [key, v] : values) {
    if (key == name) {
      return v;
    }
  }
  return std::nullopt;
}

// A stored item's fields (or detail), which must be there.
std::optional<std::string> value(const std::optional<core::FieldValues>& values,
                                 const std::string& name) {
  return value(values.value(), name);
}

// The listing items of pages first..last with `per_page` items each, as the
// site writes them.
void check_listing_results(const std::vector<store::ResultItem>& results, const FixtureSite& site,
                           const std::string& path, int first_page, std::size_t count, int per_page) {
  REQUIRE(results.size() == count);
  for (std::size_t i = 0; i < count; ++i) {
    const int page = first_page + static_cast<int>(i) / per_page;
    const int item = 1 + static_cast<int>(i) % per_page;
    INFO("result " << i);
    CHECK(results[i].index == static_cast<std::int64_t>(i));
    CHECK(results[i].page_number == page - first_page + 1);
    CHECK(results[i].page_url == site.url(path + "?page=" + std::to_string(page)));
    const core::FieldValues expected = {{"title", FixtureSite::title(page, item)},
                                        {"price", FixtureSite::price(page, item)}};
    CHECK(results[i].fields == expected);
  }
}

// A job that failed on its first listing page, `target`, with `error`: what
// the job, its one event and the site's count of requests for it say.
void check_failed_first_page(Harness& h, const FixtureSite& site, const std::string& id,
                             const std::string& target, const std::string& error,
                             std::optional<int> http_status, int requests) {
  INFO(target);
  const core::Job job = h.wait_terminal(id);
  CHECK(job.status == core::JobStatus::failed);
  CHECK(job.completion_reason == core::CompletionReason::error);
  CHECK(job.error_message == std::optional<std::string>(site.url(target) + ": " + error));
  CHECK(job.counters.listing_pages_failed == 1);
  const auto events = h.events(id);
  REQUIRE(events.size() == 1);
  CHECK_FALSE(events[0].ok);
  CHECK(events[0].url == site.url(target));
  CHECK(events[0].http_status == http_status);
  CHECK(events[0].error == std::optional<std::string>(error));
  CHECK(site.hits(target) == requests);
}

} // namespace

TEST_CASE("worker: pagination over many pages, relative and absolute next links",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 12;
  FixtureSite site(site_config);
  Harness h;
  const auto [id, job] = h.run(site.url("/listings?page=1"), listing_options());

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK_FALSE(job.error_message);
  CHECK(job.counters.listing_pages_scraped == 12);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(job.counters.items_found == 48);
  CHECK(job.counters.detail_pages_discovered == 0);
  CHECK(job.pagination_complete);
  CHECK(job.current_page == 12);
  CHECK(job.attempts == 1);
  check_listing_results(h.results(id), site, "/listings", 1, 48, 4);

  const auto events = h.events(id);
  REQUIRE(events.size() == 12);
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i);
    CHECK(events[i].kind == store::PageKind::listing);
    CHECK(events[i].page_number == static_cast<std::int64_t>(i) + 1);
    CHECK(events[i].url == site.url("/listings?page=" + std::to_string(i + 1)));
    CHECK(events[i].ok);
    CHECK(events[i].http_status == std::optional<int>(200));
    CHECK(events[i].items_found == 4);
  }
  CHECK(site.pages_not_fetched_once("/listings", 12) == std::vector<std::int64_t>{});
  CHECK(site.hits("/listings?page=13") == 0);
  CHECK(site.hits_with_prefix("/detail/") == 0);
}

TEST_CASE("worker: without follow_pagination only page 1", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.follow_pagination = false;
  const auto [id, job] = h.run(site.url("/listings?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 1);
  CHECK(job.counters.items_found == 4);
  CHECK(job.pagination_complete);
  check_listing_results(h.results(id), site, "/listings", 1, 4, 4);
  CHECK(site.hits("/listings?page=2") == 0);
}

TEST_CASE("worker: an endless site stops at max_pages", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.max_pages = 5;
  const auto [id, job] = h.run(site.url("/endless?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 5);
  CHECK(job.counters.items_found == 20);
  CHECK(job.pagination_complete);
  CHECK(job.current_page == 5);
  check_listing_results(h.results(id), site, "/endless", 1, 20, 4);
  CHECK(site.hits("/endless?page=5") == 1);
  CHECK(site.hits("/endless?page=6") == 0);
}

TEST_CASE("worker: max_items stops inside a page", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.max_items = 10;
  const auto [id, job] = h.run(site.url("/listings?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.items_found == 10);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.pagination_complete);
  check_listing_results(h.results(id), site, "/listings", 1, 10, 4);
  const auto events = h.events(id);
  REQUIRE(events.size() == 3);
  CHECK(events[2].items_found == 2);
  CHECK(site.hits("/listings?page=3") == 1);
  CHECK(site.hits("/listings?page=4") == 0);
}

TEST_CASE("worker: max_items reached at a page's end stops pagination there, its next link unfollowed",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 12;
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.max_items = 8;
  const auto [id, job] = h.run(site.url("/listings?page=1"), options);

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 2);
  CHECK(job.counters.items_found == 8);
  CHECK(job.pagination_complete);
  CHECK(job.current_page == 2);
  check_listing_results(h.results(id), site, "/listings", 1, 8, 4);
  const auto events = h.events(id);
  REQUIRE(events.size() == 2);
  CHECK(events[1].items_found == 4);
  CHECK(site.hits("/listings?page=2") == 1);
  CHECK(site.hits("/listings?page=3") == 0);
  CHECK(core::derive_progress(job, h.clock.now()).progress_percentage == 100);
}

TEST_CASE("worker: max_items inside the first page at depth 1 fetches the stored items' detail "
          "pages only",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = detail_options();
  options.max_items = 3;
  const auto [id, job] = h.run(site.url("/listings?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 1);
  CHECK(job.counters.items_found == 3);
  CHECK(job.counters.detail_pages_discovered == 3);
  CHECK(job.counters.detail_pages_scraped == 3);
  CHECK(job.counters.detail_pages_failed == 0);
  CHECK(job.pagination_complete);
  const auto results = h.results(id);
  REQUIRE(results.size() == 3);
  for (int i = 0; i < 3; ++i) {
    INFO("item " << i);
    CHECK(results[static_cast<std::size_t>(i)].detail.has_value());
  }
  const auto events = h.events(id);
  CHECK(events.size() == 4);
  CHECK(site.hits(FixtureSite::detail_path(1, 3)) == 1);
  CHECK(site.hits(FixtureSite::detail_path(1, 4)) == 0);
  CHECK(site.hits("/listings?page=2") == 0);
}

TEST_CASE("worker: a listing page with no items and no next link is a done job with none",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/empty"), detail_options());

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 1);
  CHECK(job.counters.items_found == 0);
  CHECK(job.counters.detail_pages_discovered == 0);
  CHECK(job.pagination_complete);
  CHECK(job.current_page == 1);
  CHECK(h.results(id).empty());
  const auto events = h.events(id);
  REQUIRE(events.size() == 1);
  CHECK(events[0].ok);
  CHECK(events[0].http_status == std::optional<int>(200));
  CHECK(events[0].items_found == 0);
  CHECK(core::derive_progress(job, h.clock.now()).progress_percentage == 100);
}

TEST_CASE("worker: detail pages that fail in other ways are counted and the job goes on",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = detail_options();
  options.follow_pagination = false;
  struct Case {
    std::string path;
    std::string error;
    int hits;  // of the path, for the page's 4 items
  };
  for (const Case& c : {Case{"/unavailable", "HTTP 503", 12},
                        Case{"/data.json", "not an HTML page (Content-Type application/json)", 4},
                        Case{"/gone", "HTTP 404", 4}}) {
    INFO(c.path);
    options.selectors.detail_link = "'" + c.path + "'";
    const int before = site.hits(c.path);
    const auto [id, job] = h.run(site.url("/listings?page=1"), options);
    CHECK(job.status == core::JobStatus::completed);
    CHECK(job.completion_reason == core::CompletionReason::done);
    CHECK(job.counters.items_found == 4);
    CHECK(job.counters.detail_pages_discovered == 4);
    CHECK(job.counters.detail_pages_scraped == 0);
    CHECK(job.counters.detail_pages_failed == 4);
    const auto events = h.events(id);
    REQUIRE(events.size() == 5);
    for (std::size_t i = 1; i < events.size(); ++i) {
      CHECK(events[i].kind == store::PageKind::detail);
      CHECK_FALSE(events[i].ok);
      CHECK(events[i].url == site.url(c.path));
      CHECK(events[i].error == c.error);
    }
    for (const auto& item : h.results(id)) {
      CHECK_FALSE(item.detail.has_value());
    }
    CHECK(site.hits(c.path) - before == c.hits);
  }
}

TEST_CASE("worker: a next link to another site (another port) is followed, and a link back to "
          "a page seen is a loop",
          "[scrape][worker]") {
  FixtureSite a;
  FixtureSite b;
  Harness h;
  core::JobOptions options = listing_options();
  options.selectors.next_page = "'" + b.url("/listings?page=2") + "'";
  const auto [id, job] = h.run(a.url("/listings?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 2);
  CHECK(job.counters.items_found == 8);
  CHECK(job.pagination_complete);
  const auto events = h.events(id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].url == a.url("/listings?page=1"));
  CHECK(events[1].url == b.url("/listings?page=2"));
  const auto results = h.results(id);
  REQUIRE(results.size() == 8);
  CHECK(results[0].page_url == a.url("/listings?page=1"));
  CHECK(results[4].page_url == b.url("/listings?page=2"));
  CHECK(value(results[4].fields, "title") == std::optional<std::string>(FixtureSite::title(2, 1)));
  CHECK(a.hits("/listings?page=1") == 1);
  CHECK(a.hits("/listings?page=2") == 0);
  CHECK(b.hits("/listings?page=2") == 1);
}

TEST_CASE("worker: a job's timeout counts from its start, not from its creation",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.timeout = 1;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  h.clock.advance(10 * core::k_micros_per_second);  // pending 10 s before a worker takes it
  auto pool = h.pool(Harness::worker_config());
  pool->start();
  REQUIRE(scrapekeep::testing::eventually(
      [&] { return core::is_terminal(h.job(id).status); }, seconds(30)));
  pool->stop();
  const core::Job job = h.job(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
}

TEST_CASE("worker: depth 1 fetches detail pages, and a missing one is counted, not fatal",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 3;
  site_config.missing_details = {"2-3"};
  FixtureSite site(site_config);
  Harness h;
  const auto [id, job] = h.run(site.url("/listings?page=1"), detail_options());

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  CHECK(job.counters.detail_pages_discovered == 12);
  CHECK(job.counters.detail_pages_scraped == 11);
  CHECK(job.counters.detail_pages_failed == 1);

  const auto results = h.results(id);
  check_listing_results(results, site, "/listings", 1, 12, 4);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const int page = 1 + static_cast<int>(i) / 4;
    const int item = 1 + static_cast<int>(i) % 4;
    INFO("result " << i);
    CHECK(results[i].detail_url == std::optional<std::string>(site.url(FixtureSite::detail_path(page, item))));
    if (page == 2 && item == 3) {
      CHECK_FALSE(results[i].detail);
    } else {
      REQUIRE(results[i].detail);
      const core::FieldValues expected = {{"description", FixtureSite::description(page, item)}};
      CHECK(*results[i].detail == expected);
    }
    CHECK(site.hits(FixtureSite::detail_path(page, item)) == 1);
  }

  const auto events = h.events(id);
  REQUIRE(events.size() == 15);
  int listing = 0;
  int detail_ok = 0;
  int detail_failed = 0;
  for (const auto& e : events) {
    if (e.kind == store::PageKind::listing) {
      ++listing;
      continue;
    }
    if (e.ok) {
      ++detail_ok;
    } else {
      ++detail_failed;
      CHECK(e.url == site.url("/detail/2-3"));
      CHECK(e.http_status == std::optional<int>(404));
      CHECK(e.error == std::optional<std::string>("HTTP 404"));
      CHECK(e.page_number == 2);
    }
  }
  CHECK(listing == 3);
  CHECK(detail_ok == 11);
  CHECK(detail_failed == 1);
}

TEST_CASE("worker: a page event starts when its request goes out, not while it waits for the host",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 1;
  site_config.detail_delay = milliseconds(200);
  FixtureSite site(site_config);
  Harness h;
  // One request to the site at a time: the 4 detail fetches of the crew queue
  // for the host, and go out one after the other.
  h.limit_hosts(scrape::HostLimiterConfig{1, milliseconds(0)});
  const auto [id, job] = h.run(site.url("/listings?page=1"), detail_options());
  REQUIRE(job.status == core::JobStatus::completed);
  CHECK(job.counters.detail_pages_scraped == 4);

  std::vector<store::PageEvent> details;
  for (const auto& e : h.events(id)) {
    CHECK(e.started_at <= e.finished_at);
    if (e.kind == store::PageKind::detail) {
      details.push_back(e);
    }
  }
  REQUIRE(details.size() == 4);
  std::sort(details.begin(), details.end(),
            [](const auto& a, const auto& b) { return a.started_at < b.started_at; });
  for (std::size_t i = 1; i < details.size(); ++i) {
    INFO("detail event " << i);
    // The requests, 200 ms each, did not overlap, and neither do their
    // events: a request goes out once the one before is answered, which is
    // before that page is parsed and its finished_at taken (hence the 100 ms
    // of slack). Events that started when their fetch was queued overlap by
    // 200 ms or more.
    CHECK(details[i].started_at >= details[i - 1].finished_at - 100 * 1000);
  }
}

TEST_CASE("worker: a page that fails once with 503 is retried", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/flaky?page=1"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.listing_pages_failed == 0);
  check_listing_results(h.results(id), site, "/flaky", 1, 12, 4);
  for (const auto& item : h.results(id)) {
    CHECK_FALSE(item.detail_url);  // depth 0: no detail pages
    CHECK_FALSE(item.detail);
  }
  // The failed try is retried within the page: one event, ok, per page.
  const auto events = h.events(id);
  REQUIRE(events.size() == 3);
  for (const auto& event : events) {
    CHECK(event.ok);
    CHECK(event.http_status == std::optional<int>(200));
    CHECK(event.items_found == 4);
  }
  CHECK(site.hits("/flaky?page=1") == 1);
  CHECK(site.hits("/flaky?page=2") == 2);
  CHECK(site.hits("/flaky?page=3") == 1);
}

TEST_CASE("worker: a permanently missing listing page fails the job", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/holey?page=1"), listing_options());

  CHECK(job.status == core::JobStatus::failed);
  CHECK(job.completion_reason == core::CompletionReason::error);
  CHECK(job.error_message == std::optional<std::string>(site.url("/holey?page=2") + ": HTTP 404"));
  CHECK(job.counters.listing_pages_scraped == 1);
  CHECK(job.counters.listing_pages_failed == 1);
  CHECK(job.counters.items_found == 4);
  check_listing_results(h.results(id), site, "/holey", 1, 4, 4);
  const auto events = h.events(id);
  REQUIRE(events.size() == 2);
  CHECK(events[1].page_number == 2);
  CHECK_FALSE(events[1].ok);
  CHECK(events[1].http_status == std::optional<int>(404));
  CHECK(events[1].error == std::optional<std::string>("HTTP 404"));
  CHECK(site.hits("/holey?page=2") == 1);
  CHECK(site.hits("/holey?page=3") == 0);
}

TEST_CASE("worker: a Retry-After over 5 s is waited for, and a cancel or a stop ends the wait",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  auto pool = h.pool();
  pool->start();

  // Ten seconds asked, sixty left: the job waits rather than failing.
  const std::string cancelled_target = "/ratelimited?after=10";
  const std::string cancelled = h.create(site.url(cancelled_target), listing_options());
  REQUIRE(eventually([&] { return site.hits(cancelled_target) == 1; }));
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(h.job(cancelled).status == core::JobStatus::processing);
  CHECK(h.events(cancelled).empty());
  const auto cancelled_at = steady_clock::now();
  REQUIRE(h.db().cancel_job(cancelled, std::nullopt, h.clock.now()).ok());
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));
  CHECK(steady_clock::now() - cancelled_at < seconds(2));
  const core::Job job = h.job(cancelled);
  CHECK(job.status == core::JobStatus::cancelled);
  CHECK(job.completion_reason == core::CompletionReason::cancelled);
  CHECK_FALSE(job.error_message);
  CHECK(h.events(cancelled).empty());
  CHECK(site.hits(cancelled_target) == 1);

  // A stop ends the wait as soon, and gives the job back unharmed.
  const std::string stopped_target = "/ratelimited?after=11";
  const std::string stopped = h.create(site.url(stopped_target), listing_options());
  REQUIRE(eventually([&] { return site.hits(stopped_target) == 1; }));
  std::this_thread::sleep_for(milliseconds(100));
  const auto stopped_at = steady_clock::now();
  pool->stop();
  CHECK(steady_clock::now() - stopped_at < seconds(2));
  const core::Job given_back = h.job(stopped);
  CHECK(given_back.status == core::JobStatus::processing);
  CHECK_FALSE(given_back.claim_token);
  CHECK(h.events(stopped).empty());
  CHECK(site.hits(stopped_target) == 1);
}

namespace {

// One listing page of 2 items whose detail pages take 15 s each.
FixtureSiteConfig slow_details_site() {
  FixtureSiteConfig site_config;
  site_config.pages = 1;
  site_config.items_per_page = 2;
  site_config.detail_delay = milliseconds(15000);
  return site_config;
}

// One worker, one detail fetch at a time, whose lease renewal (every 60 s)
// notices nothing during a test.
scrape::WorkerConfig unrenewed_worker() {
  scrape::WorkerConfig config = Harness::worker_config();
  config.lease = milliseconds(120000);
  config.renew_interval = milliseconds(60000);
  config.detail_concurrency = 1;
  return config;
}

} // namespace

TEST_CASE("worker: a cancel ends a slow page or a Retry-After wait well before the lease is "
          "renewed",
          "[scrape][worker]") {
  FixtureSite site(slow_details_site());
  Harness h;
  const scrape::WorkerConfig config = unrenewed_worker();
  auto pool = h.pool(config);
  pool->start();
  // Cancels `id` once the site has seen `target`, and gives the time until
  // the worker is free again.
  const auto cancel_after_hit = [&](const std::string& id, const std::string& target) {
    REQUIRE(eventually([&] { return site.hits(target) == 1; }));
    std::this_thread::sleep_for(milliseconds(300));
    REQUIRE(h.job(id).status == core::JobStatus::processing);
    REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
    const auto cancelled_at = steady_clock::now();
    REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));
    return steady_clock::now() - cancelled_at;
  };

  SECTION("a listing page waiting out a Retry-After of 10 s") {
    const std::string target = "/ratelimited?after=10";
    const std::string id = h.create(site.url(target), listing_options());
    CHECK(cancel_after_hit(id, target) < seconds(3));
    CHECK(h.job(id).completion_reason == core::CompletionReason::cancelled);
    CHECK(h.events(id).empty());
    CHECK(site.hits(target) == 1);
  }
  SECTION("a detail page that takes 15 s, the listing done") {
    const std::string id = h.create(site.url("/listings?page=1"), detail_options());
    REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped == 1; }));
    CHECK(cancel_after_hit(id, site.detail_path(1, 1)) < seconds(3));
    const core::Job job = h.job(id);
    CHECK(job.completion_reason == core::CompletionReason::cancelled);
    CHECK(job.counters.detail_pages_scraped == 0);
    CHECK(job.counters.detail_pages_failed == 0);
    CHECK(site.hits_with_prefix("/detail") == 1);
  }
}

TEST_CASE("worker: a Retry-After past the job's deadline or over 60 s fails the page at once",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions short_job = listing_options();
  short_job.timeout = 5;
  const std::string past_deadline = h.create(site.url("/ratelimited?after=10"), short_job);
  core::JobOptions long_job = listing_options();
  long_job.timeout = 1800;
  const std::string too_long = h.create(site.url("/ratelimited?after=900"), long_job);
  const auto started = steady_clock::now();
  auto pool = h.pool();
  pool->start();

  check_failed_first_page(h, site, past_deadline, "/ratelimited?after=10",
                          "HTTP 429, and the site asked to wait 10 s, past the job's deadline",
                          429, 1);
  check_failed_first_page(
      h, site, too_long, "/ratelimited?after=900",
      "HTTP 429, and the site asked to wait 900 s, more than the 60 s a page may wait", 429, 1);
  CHECK(steady_clock::now() - started < seconds(3));
}

TEST_CASE("worker: a gzip body that cannot be decoded fails at once, a body cut short after "
          "three tries, each saying so",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string bad_gzip = h.create(site.url("/bad-gzip"), listing_options());
  const std::string truncated = h.create(site.url("/truncated"), listing_options());
  auto pool = h.pool();
  pool->start();

  // Decoding is not retried: the site would send the same bytes again.
  check_failed_first_page(h, site, bad_gzip, "/bad-gzip", "cannot decode the gzip body", 200, 1);
  check_failed_first_page(h, site, truncated, "/truncated",
                          "the response ended before its Content-Length (100 of 1000 bytes)", 200,
                          3);
}

TEST_CASE("worker: a redirect that cannot be followed records the redirect's status, refused "
          "address and unsupported scheme alike",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  h.fetch.address_filter = scrape::address_filter_for(scrape::TargetPolicy::refuse_link_local);
  const std::string refused = h.create(site.url("/redirect-metadata"), listing_options());
  const std::string ftp = h.create(site.url("/redirect-ftp"), listing_options());
  auto pool = h.pool();
  pool->start();

  check_failed_first_page(h, site, refused, "/redirect-metadata",
                          "address not allowed: 169.254.169.254 (redirected to "
                          "http://169.254.169.254/latest/meta-data/)",
                          302, 1);
  check_failed_first_page(h, site, ftp, "/redirect-ftp",
                          "redirect to an unsupported URL: ftp://127.0.0.1/file", 302, 1);
}

TEST_CASE("worker: a listing page whose field values pass 16 MiB fails the job, max_items is "
          "extracted alone",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.selectors.item = "//i";
  options.selectors.fields = {{"all", "//body"}};
  options.max_items = 5000;
  const std::string bloated = h.create(site.url("/bloat"), options);
  options.max_items = 1000;  // the first 1000 items: 10 MB, within the budget
  const std::string capped = h.create(site.url("/bloat?capped"), options);
  auto pool = h.pool();
  pool->start();

  const core::Job failed = h.wait_terminal(bloated);
  CHECK(failed.status == core::JobStatus::failed);
  CHECK(failed.error_message ==
        std::optional<std::string>(site.url("/bloat") +
                                   ": cannot parse the page: the values its selectors extract "
                                   "pass 16 MiB"));
  CHECK(failed.counters.listing_pages_failed == 1);
  CHECK(failed.counters.items_found == 0);

  const core::Job done = h.wait_terminal(capped);
  CHECK(done.completion_reason == core::CompletionReason::done);
  CHECK(done.counters.items_found == 1000);
}

TEST_CASE("worker: a listing page whose fields take longer than the lease keeps its job: "
          "taken once, fetched once",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  // The text of the page, built for each of 15,000 items, walks its 40,000
  // empty elements: 600 million nodes, which no XPath step counts (the text
  // is empty): seconds, where the lease lasts 400 ms.
  options.selectors.item = "//i";
  options.selectors.fields = {{"n", "string-length(string(/))"}};
  options.max_items = 15000;
  const std::string id = h.create(site.url("/empties"), options);
  scrape::WorkerConfig config = Harness::worker_config();
  config.workers = 2;  // the other one would take the job once its lease is over
  config.lease = milliseconds(400);
  config.renew_interval = milliseconds(50);
  config.recover_interval = milliseconds(20);
  auto pool = h.pool(config);
  pool->start();

  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.attempts == 1);
  CHECK(job.counters.items_found == 15000);
  CHECK(site.hits("/empties") == 1);
  const auto results = h.results(id);
  REQUIRE(results.size() == 15000);
  CHECK(value(results[14999].fields, "n") == std::optional<std::string>("9"));  // "Empties", 2 \n
}

namespace {

// Makes the process's parse budget `bytes` while it lives.
class SmallParseBudget {
 public:
  explicit SmallParseBudget(std::size_t bytes)
      : m_before(scrape::process_parse_budget().resize(bytes)) {}
  ~SmallParseBudget() { scrape::process_parse_budget().resize(m_before); }
  SmallParseBudget(const SmallParseBudget&) = delete;
  SmallParseBudget& operator=(const SmallParseBudget&) = delete;

 private:
  std::size_t m_before;
};

// A job on /empties (40,000 empty elements) whose selector at `stage`
// ("item", "field" or "detail") builds the page's text, empty, for each
// element: hours of walks that no XPath step counts. `tag` tells its
// requests apart in the site's hits.
core::JobOptions endless_walk(const std::string& stage, const std::string& tag) {
  const std::string walk = "count(//i[string-length(string(/)) >= 0])";
  core::JobOptions options = listing_options();
  if (stage == "item") {
    options.selectors.item = "//i[" + walk + " >= 0]";
  } else if (stage == "field") {
    options.selectors.item = "//i";
    options.selectors.fields = {{"n", walk}};
  } else {
    options.selectors.item = "/html";
    options.depth = 1;
    options.selectors.detail_link = "'/empties?detail-" + tag + "'";
    // Nested, as for the item: one walk of each element is seconds here.
    options.selectors.detail_fields = {{"n", "count(//i[" + walk + " >= 0])"}};
  }
  return options;
}

} // namespace

TEST_CASE("worker: an evaluation that no step counts ends with its job, by cancel, timeout or "
          "stop, and frees its worker",
          "[scrape][worker]") {
  const std::string stage = GENERATE(as<std::string>{}, "item", "field", "detail");
  INFO("the walk is in the " << stage);
  FixtureSite site;
  Harness h;
  auto pool = h.pool();
  pool->start();
  const bool detail = stage == "detail";
  // The request that the worker is stuck evaluating once it is answered.
  const auto stuck_on = [&](const std::string& tag) {
    return detail ? "/empties?detail-" + tag : "/empties?" + tag;
  };
  const auto check_nothing_counted = [&](const core::Job& job) {
    CHECK(job.counters.listing_pages_scraped == (detail ? 1 : 0));
    CHECK(job.counters.items_found == (detail ? 1 : 0));
    CHECK(job.counters.detail_pages_scraped == 0);
    CHECK(job.counters.detail_pages_failed == 0);
    CHECK(job.counters.listing_pages_failed == 0);
  };

  const std::string cancelled = h.create(site.url("/empties?cancel"), endless_walk(stage, "cancel"));
  REQUIRE(eventually([&] { return site.hits(stuck_on("cancel")) == 1; }));
  std::this_thread::sleep_for(milliseconds(200));
  REQUIRE(h.db().cancel_job(cancelled, std::nullopt, h.clock.now()).ok());
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));
  const core::Job cancelled_job = h.job(cancelled);
  CHECK(cancelled_job.status == core::JobStatus::cancelled);
  check_nothing_counted(cancelled_job);

  core::JobOptions timed = endless_walk(stage, "timeout");
  timed.timeout = 1;
  const core::Job timed_out = h.wait_terminal(h.create(site.url("/empties?timeout"), timed));
  CHECK(timed_out.status == core::JobStatus::completed);
  CHECK(timed_out.completion_reason == core::CompletionReason::timeout);
  CHECK_FALSE(timed_out.error_message);
  CHECK(site.hits(stuck_on("timeout")) == 1);
  check_nothing_counted(timed_out);

  // The worker is free: the next job runs.
  const core::Job next = h.wait_terminal(h.create(site.url("/listings?page=1"), listing_options()));
  CHECK(next.completion_reason == core::CompletionReason::done);

  const std::string stopped = h.create(site.url("/empties?stop"), endless_walk(stage, "stop"));
  REQUIRE(eventually([&] { return site.hits(stuck_on("stop")) == 1; }));
  std::this_thread::sleep_for(milliseconds(200));
  pool->stop();
  const core::Job given_back = h.job(stopped);
  CHECK(given_back.status == core::JobStatus::processing);
  CHECK_FALSE(given_back.claim_token);
  check_nothing_counted(given_back);
}

TEST_CASE("worker: a detail page's endless evaluation ends with its job while the next listing "
          "page waits for its parse turn behind it",
          "[scrape][worker]") {
  // A parse budget that the walked detail page (/empties) takes alone: the
  // pipeline's next listing page waits for its turn behind it.
  const SmallParseBudget budget(100 * 1024);
  const std::string how = GENERATE(as<std::string>{}, "cancel", "stop");
  INFO("ended by " << how);
  FixtureSite site;
  Harness h;
  auto pool = h.pool();
  pool->start();
  core::JobOptions options = listing_options();
  options.timeout = 40;
  options.selectors.item = "/html";
  options.depth = 1;
  options.selectors.detail_link = "'/empties?detail'";
  // Nested, as endless_walk's "item": hours (one level is seconds on /empties).
  options.selectors.detail_fields = {
      {"n", "count(//i[count(//i[string-length(string(/)) >= 0]) >= 0])"}};
  const std::string id = h.create(site.url("/endless?page=1"), options);
  REQUIRE(eventually([&] { return site.hits("/empties?detail") >= 1; }));
  // The listing page after it (and the other detail pages) wait for their turn.
  REQUIRE(eventually([&] { return scrape::process_parse_budget().waiting() >= 1; }));
  std::this_thread::sleep_for(milliseconds(200));
  if (how == "cancel") {
    REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
    // Not held until the job's timeout (40 s), when the parse wait ends.
    CHECK(eventually([&] { return pool->busy_workers() == 0; }, seconds(10)));
    CHECK(h.job(id).status == core::JobStatus::cancelled);
  } else {
    pool->stop();
    // Given back, not held until the job's timeout and ended by it.
    const core::Job given_back = h.job(id);
    CHECK(given_back.status == core::JobStatus::processing);
    CHECK_FALSE(given_back.claim_token);
  }
  pool->stop();
}

TEST_CASE("worker: a cancelled job's page waiting for its parse turn behind another job's "
          "endless evaluation gives up at once",
          "[scrape][worker]") {
  // A parse budget that one /empties page takes alone.
  const SmallParseBudget budget(100 * 1024);
  FixtureSite site;
  Harness h;
  scrape::WorkerConfig config = Harness::worker_config();
  config.workers = 2;
  auto pool = h.pool(config);
  pool->start();
  const std::string endless = h.create(site.url("/empties?cancel"), endless_walk("item", "a"));
  REQUIRE(eventually([&] { return site.hits("/empties?cancel") == 1; }));
  const std::string waiting = h.create(site.url("/empties?waiting"), listing_options());
  REQUIRE(eventually([&] { return scrape::process_parse_budget().waiting() == 1; }));
  REQUIRE(h.db().cancel_job(waiting, std::nullopt, h.clock.now()).ok());
  // Not held until its timeout (60 s), when the wait would end.
  CHECK(eventually([&] { return pool->busy_workers() == 1; }, seconds(10)));
  CHECK(scrape::process_parse_budget().waiting() == 0);
  CHECK(h.events(waiting).empty());
  REQUIRE(h.db().cancel_job(endless, std::nullopt, h.clock.now()).ok());
  CHECK(eventually([&] { return pool->busy_workers() == 0; }, seconds(10)));
}

TEST_CASE("worker: broken HTML, non-ASCII text and charsets", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  const std::string broken = h.create(site.url("/broken"), options);
  const std::string unicode = h.create(site.url("/unicode"), options);
  const std::string latin1 = h.create(site.url("/latin1"), options);
  auto pool = h.pool();
  pool->start();

  CHECK(h.wait_terminal(broken).completion_reason == core::CompletionReason::done);
  const auto broken_results = h.results(broken);
  REQUIRE(broken_results.size() == 3);
  CHECK(value(broken_results[0].fields, "title") == std::optional<std::string>("Broken one"));
  CHECK(value(broken_results[1].fields, "price") == std::optional<std::string>("$ 2 < 3"));
  CHECK(value(broken_results[2].fields, "title") == std::optional<std::string>("Broken three"));
  CHECK(value(broken_results[2].fields, "price") == std::nullopt);

  CHECK(h.wait_terminal(unicode).completion_reason == core::CompletionReason::done);
  const auto unicode_results = h.results(unicode);
  REQUIRE(unicode_results.size() == 1);
  const core::FieldValues expected = {{"title", std::string(FixtureSite::unicode_title())},
                                      {"price", std::string("\xE2\x82\xAC 1.200")}};
  CHECK(unicode_results[0].fields == expected);

  CHECK(h.wait_terminal(latin1).completion_reason == core::CompletionReason::done);
  const auto latin1_results = h.results(latin1);
  REQUIRE(latin1_results.size() == 1);
  CHECK(value(latin1_results[0].fields, "title") ==
        std::optional<std::string>("Caf\xC3\xA9 Z\xC3\xBCrich"));
}

TEST_CASE("worker: a redirected start URL, links resolved against the final URL", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/redirect"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  const auto events = h.events(id);
  REQUIRE(events.size() == 3);
  CHECK(events[0].url == site.url("/redirect"));
  CHECK(events[1].url == site.url("/listings?page=2"));
  CHECK(site.hits("/redirect") == 1);
  CHECK(site.hits("/listings?page=1") == 1);
  CHECK(site.hits("/listings?page=3") == 1);
}

TEST_CASE("worker: an oversize or non-HTML listing page fails the job", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string oversize = h.create(site.url("/oversize"), listing_options());
  const std::string json = h.create(site.url("/data.json"), listing_options());
  const std::string ftp = h.create("ftp://127.0.0.1/listings", listing_options());
  auto pool = h.pool();
  pool->start();

  const core::Job a = h.wait_terminal(oversize);
  CHECK(a.status == core::JobStatus::failed);
  CHECK(a.completion_reason == core::CompletionReason::error);
  CHECK(a.error_message ==
        std::optional<std::string>(site.url("/oversize") + ": response body exceeds 10485760 bytes"));
  CHECK(a.counters.listing_pages_failed == 1);
  CHECK(a.counters.items_found == 0);
  const auto events = h.events(oversize);
  REQUIRE(events.size() == 1);
  CHECK(events[0].http_status == std::optional<int>(200));

  const core::Job b = h.wait_terminal(json);
  CHECK(b.completion_reason == core::CompletionReason::error);
  CHECK(b.error_message == std::optional<std::string>(
                               site.url("/data.json") + ": not an HTML page (Content-Type application/json)"));

  const core::Job c = h.wait_terminal(ftp);
  CHECK(c.completion_reason == core::CompletionReason::error);
  CHECK(c.error_message == std::optional<std::string>("ftp://127.0.0.1/listings: not an http(s) URL"));
}

TEST_CASE("worker: a pagination loop ends the listing", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/loop?page=1"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  CHECK(job.pagination_complete);
  check_listing_results(h.results(id), site, "/loop", 1, 12, 4);
  CHECK(site.hits("/loop?page=1") == 1);
}

TEST_CASE("worker: a pagination loop is found however its URL is written", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/caseloop?page=1"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  check_listing_results(h.results(id), site, "/caseloop", 1, 12, 4);
  CHECK(site.hits("/caseloop?page=1") == 1);
}

TEST_CASE("worker: a start URL is asked for as a link to it would be: dot segments and fragment "
          "gone, and a loop back to it is found",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/x/./../loop?page=1#top"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  CHECK(site.hits("/loop?page=1") == 1);
  CHECK(site.total_hits() == 3);
  const auto events = h.events(id);
  REQUIRE(events.size() == 3);
  CHECK(events[0].url == site.url("/loop?page=1"));
  CHECK(h.job(id).url == site.url("/x/./../loop?page=1#top"));  // the job's own URL as given
}

TEST_CASE("worker: brackets, '|' and '^' in a query are sent as written, in the start URL and "
          "in next links",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/brackets?page[number]=1&f=a|b^c"), listing_options());

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(job.counters.items_found == 12);
  for (int page = 1; page <= 3; ++page) {
    CHECK(site.hits("/brackets?page[number]=" + std::to_string(page) + "&f=a|b^c") == 1);
  }
  CHECK(h.event_urls(id) == std::vector<std::string>{
                                site.url("/brackets?page[number]=1&f=a|b^c"),
                                site.url("/brackets?page[number]=2&f=a|b^c"),
                                site.url("/brackets?page[number]=3&f=a|b^c")});
}

// A /moved job as it must end however often it was interrupted: its three
// pages stored at the URLs asked for, and no page counted twice.
// The final_url stored with each listing page of a job, in page order.
std::vector<std::optional<std::string>> stored_final_urls(Harness& h, const std::string& id) {
  SQLite::Database db(h.store_config().path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT final_url FROM page_events WHERE job_id = ? AND kind = 'listing' "
                          "ORDER BY page_number");
  q.bind(1, id);
  std::vector<std::optional<std::string>> urls;
  while (q.executeStep()) {
    urls.push_back(q.getColumn(0).isNull() ? std::nullopt
                                           : std::optional<std::string>(q.getColumn(0).getString()));
  }
  return urls;
}

void check_moved_job(Harness& h, const FixtureSite& site, const std::string& id,
                     const core::Job& job) {
  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(job.counters.items_found == 12);
  CHECK(job.pagination_complete);
  CHECK(h.event_urls(id) == std::vector<std::string>{site.url("/moved?page=1"),
                                                     site.url("/moved?page=2"),
                                                     site.url("/moved?page=3")});
  check_listing_results(h.results(id), site, "/moved", 1, 12, 4);
  CHECK(scrapekeep::testing::counter_mismatches(h.store_config().path, id).empty());
  CHECK(stored_final_urls(h, id) ==
        std::vector<std::optional<std::string>>{std::nullopt, site.url("/moved-to?page=2"),
                                                std::nullopt});
}

TEST_CASE("worker: a loop through a redirect's target ends the listing, resumed or not",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(1000);  // /moved?page=3
  FixtureSite site(site_config);
  Harness h;
  const auto [whole_id, whole] = h.run(site.url("/moved?page=1"), listing_options());
  check_moved_job(h, site, whole_id, whole);
  CHECK(whole.attempts == 1);
  CHECK(site.hits("/moved-to?page=2") == 1);

  // Given back after the redirected page 2 was stored, while page 3 is on
  // its way: the next worker fetches page 3, whose next link is page 2's
  // final URL, which the first worker knew it had visited.
  const std::string id = h.create(site.url("/moved?page=1"), listing_options());
  auto first = h.pool();
  first->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped >= 2; }));
  first->stop();
  const core::Job stopped = h.job(id);
  REQUIRE(stopped.status == core::JobStatus::processing);
  REQUIRE(stopped.counters.listing_pages_scraped == 2);
  auto second = h.pool();
  second->start();
  const core::Job resumed = h.wait_terminal(id);
  check_moved_job(h, site, id, resumed);
  CHECK(resumed.attempts == 2);
  CHECK(site.hits("/moved-to?page=2") == 2);  // once per job
  CHECK(resumed.current_page == whole.current_page);
  const auto whole_items = h.results(whole_id);
  const auto resumed_items = h.results(id);
  REQUIRE(resumed_items.size() == whole_items.size());
  for (std::size_t i = 0; i < whole_items.size(); ++i) {
    CHECK(resumed_items[i].fields == whole_items[i].fields);
  }
}

TEST_CASE("worker: a next link redirected to a page stored before is a loop: not stored again",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/back?page=1"), listing_options());
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(job.counters.items_found == 12);
  CHECK(job.pagination_complete);
  CHECK(core::derive_progress(job, *job.completed_at).current_page == 3);
  check_listing_results(h.results(id), site, "/back", 1, 12, 4);
  CHECK(h.events(id).size() == 3);
  CHECK(site.hits("/back?page=4") == 1);
  CHECK(site.hits("/back?page=2") == 2);  // asked for once by page 1's link, once by the redirect
  CHECK(scrapekeep::testing::counter_mismatches(h.store_config().path, id).empty());
}

TEST_CASE("worker: a loop found through a redirect makes the set of listing pages final at once, "
          "as a last page does, though the detail pages are still on their way",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.detail_delay = milliseconds(3000);
  FixtureSite site(site_config);
  Harness h;
  const std::string id = h.create(site.url("/back?page=1"), detail_options());
  auto pool = h.pool();
  pool->start();
  // Page 4, the 302 back to page 2, fetched and found a loop: the runner
  // takes it (and breaks out) as soon as page 3 is stored.
  REQUIRE(eventually([&] {
    return h.job(id).counters.listing_pages_scraped == 3 && site.hits("/back?page=2") == 2;
  }));
  REQUIRE(eventually([&] { return h.job(id).pagination_complete; }, std::chrono::seconds(2)));
  const core::Job settling = h.job(id);
  CHECK(settling.status == core::JobStatus::processing);
  CHECK(settling.current_page == 3);
  CHECK(settling.counters.detail_pages_scraped < 12);
  // Cancelled now, the job keeps the set of listing pages it found final.
  REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
  const core::Job cancelled = h.wait_terminal(id);
  pool->stop();
  CHECK(cancelled.status == core::JobStatus::cancelled);
  CHECK(cancelled.pagination_complete);
  CHECK(h.events(id).size() == 3 + static_cast<std::size_t>(cancelled.counters.detail_pages_scraped +
                                                            cancelled.counters.detail_pages_failed));
  CHECK(scrapekeep::testing::counter_mismatches(h.store_config().path, id).empty());
}

TEST_CASE("worker: a start URL with a fragment is no redirect, and stores no final_url",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const auto [id, job] = h.run(site.url("/listings?page=1#top"), listing_options());
  CHECK(job.status == core::JobStatus::completed);
  REQUIRE(job.counters.listing_pages_scraped == 3);
  CHECK(stored_final_urls(h, id) == std::vector<std::optional<std::string>>(3, std::nullopt));
}

TEST_CASE("worker: timeout keeps the partial results", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(150);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.timeout = 1;
  options.max_pages = 1000;
  const auto [id, job] = h.run(site.url("/slow?page=1"), options);

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK_FALSE(job.error_message);
  CHECK_FALSE(job.pagination_complete);
  REQUIRE(job.started_at);
  REQUIRE(job.completed_at);
  CHECK(*job.completed_at >= *job.started_at + core::k_micros_per_second);
  const std::int64_t pages = job.counters.listing_pages_scraped;
  CHECK(pages >= 1);
  CHECK(pages < 1000);
  CHECK(job.counters.items_found == 4 * pages);
  check_listing_results(h.results(id), site, "/slow", 1, static_cast<std::size_t>(4 * pages), 4);
  CHECK(h.events(id).size() == static_cast<std::size_t>(pages));
  // The page in flight at the deadline was abandoned, not counted.
  CHECK(site.hits_with_prefix("/slow") <= pages + 1);
  CHECK(core::derive_progress(job, h.clock.now()).progress_percentage == 100);
}

TEST_CASE("worker: detail pages cut short by the deadline end the job with timeout, not done",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 1;
  site_config.detail_delay = milliseconds(2000);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = detail_options();
  options.timeout = 1;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  auto pool = h.pool();
  pool->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped == 1; }));
  // The job clock now lags the worker's steady clock: its detail fetches
  // meet their deadline while the job clock has not reached it yet.
  h.clock.advance(-500'000);
  const core::Job job = h.wait_terminal(id);

  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK(job.counters.items_found == 4);
  CHECK(job.counters.detail_pages_discovered == 4);
  CHECK(job.counters.detail_pages_scraped == 0);
  CHECK(job.counters.detail_pages_failed == 0);
  CHECK(h.events(id).size() == 1);
}

// The whole process parse budget held, as other parses would hold it, for
// `how_long` from a thread of its own (joined by the destructor).
class ParseBudgetHeld {
 public:
  explicit ParseBudgetHeld(std::chrono::seconds how_long)
      : m_lease(scrape::process_parse_budget().acquire(16 * 1024 * 1024)),
        m_release([this, how_long] {
          std::this_thread::sleep_for(how_long);
          m_lease.reset();
          m_released = true;
        }) {}
  ~ParseBudgetHeld() { m_release.join(); }
  ParseBudgetHeld(const ParseBudgetHeld&) = delete;
  ParseBudgetHeld& operator=(const ParseBudgetHeld&) = delete;
  bool released() const { return m_released; }

 private:
  std::optional<scrape::ParseBudget::Lease> m_lease;
  std::atomic<bool> m_released{false};
  std::thread m_release;
};

TEST_CASE("worker: detail pages still waiting for their turn to be parsed when the job's time "
          "runs out are abandoned, and the job ends at its time",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 1;
  site_config.detail_delay = milliseconds(400);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = detail_options();
  options.timeout = 1;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  auto pool = h.pool();
  pool->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped == 1; }));
  // Other parses (of 10 MiB pages, say) hold the whole budget for 4 s.
  ParseBudgetHeld others(seconds(4));
  const core::Job job = h.wait_terminal(id);
  const bool ended_first = !others.released();

  CHECK(ended_first);  // the job ended while the budget was still held
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK(job.counters.detail_pages_discovered == 4);
  CHECK(job.counters.detail_pages_scraped == 0);
  CHECK(job.counters.detail_pages_failed == 0);
  REQUIRE(job.started_at);
  REQUIRE(job.completed_at);
  CHECK(*job.completed_at - *job.started_at < 2 * core::k_micros_per_second);
}

TEST_CASE("worker: a cancel stops the detail pages too while a listing page is on its way",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 2;
  site_config.items_per_page = 8;
  site_config.listing_delay = milliseconds(1500);
  site_config.detail_delay = milliseconds(100);
  FixtureSite site(site_config);
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  scrape::WorkerConfig config = Harness::worker_config();
  config.detail_concurrency = 1;
  config.renew_interval = milliseconds(5000);  // no lease renewal notices the cancel
  auto pool = h.pool(config);
  pool->start();
  // Page 1 is stored: its 8 detail pages (100 ms each, one at a time) start
  // while page 2 (1.5 s) is on its way.
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped == 1; }));
  REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
  const int at_cancel = site.hits_with_prefix("/detail");
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));

  const core::Job job = h.job(id);
  CHECK(job.status == core::JobStatus::cancelled);
  CHECK(job.counters.listing_pages_scraped == 1);
  // The detail page in flight when the cancel came, and no other: its thread
  // asks the database before each request (an answer at most 10 ms old).
  CHECK(site.hits_with_prefix("/detail") <= at_cancel + 1);
  CHECK(site.hits_with_prefix("/detail") < 8);
}

TEST_CASE("worker: detail pages are stored as they come in, not held back for a batch",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 1;
  site_config.detail_delay = milliseconds(300);
  FixtureSite site(site_config);
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  scrape::WorkerConfig config = Harness::worker_config();
  config.detail_concurrency = 1;
  auto pool = h.pool(config);
  pool->start();
  // One detail page every 300 ms: each counts within a tick of being
  // fetched, while the others are still to come.
  CHECK(eventually([&] {
    const std::int64_t scraped = h.job(id).counters.detail_pages_scraped;
    return scraped >= 1 && scraped < 4;
  }));
  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.detail_pages_scraped == 4);
}

TEST_CASE("worker: at the deadline only the requests in flight are dropped, no more go out",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 5;
  site_config.detail_delay = milliseconds(300);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = detail_options();
  options.timeout = 1;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  scrape::WorkerConfig config = Harness::worker_config();
  config.detail_concurrency = 4;
  auto pool = h.pool(config);
  pool->start();
  const core::Job job = h.wait_terminal(id);
  REQUIRE(job.completion_reason == core::CompletionReason::timeout);
  const std::int64_t stored = job.counters.detail_pages_scraped + job.counters.detail_pages_failed;
  CHECK(stored < 20);
  // Every detail request was stored but the (at most 4) that the deadline
  // cut short: none went out in the deadline's last moments to be dropped.
  CHECK(site.hits_with_prefix("/detail") <= stored + 4);
}

TEST_CASE("worker: after a cancel no detail thread starts another request", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 3;
  site_config.detail_delay = milliseconds(300);
  FixtureSite site(site_config);
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  scrape::WorkerConfig config = Harness::worker_config();
  config.detail_concurrency = 4;
  config.renew_interval = milliseconds(5000);  // no lease renewal notices the cancel
  auto pool = h.pool(config);
  pool->start();
  // 4 detail pages of 300 ms in flight at once, 8 more queued behind them.
  REQUIRE(eventually([&] { return site.hits_with_prefix("/detail") >= 4; }));
  REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
  const int at_cancel = site.hits_with_prefix("/detail");
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));

  CHECK(h.job(id).status == core::JobStatus::cancelled);
  // The threads finishing their pages after the cancel take no new ones; a
  // request may slip only if its thread asked within 10 ms before the cancel.
  CHECK(site.hits_with_prefix("/detail") <= at_cancel + 1);
  CHECK(h.events(id).size() <= 3);  // listing pages only: the details came too late
}

TEST_CASE("worker: a cancel stops the worker within one page fetch", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(150);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.max_pages = 1000;
  const std::string id = h.create(site.url("/slow?page=1"), options);
  auto pool = h.pool();
  pool->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped >= 2; }));

  auto cancelled = h.db().cancel_job(id, std::nullopt, h.clock.now());
  REQUIRE(cancelled.ok());
  const int at_cancel = site.hits_with_prefix("/slow");
  const std::int64_t pages = cancelled->counters.listing_pages_scraped;
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }));

  const core::Job job = h.job(id);
  CHECK(job.status == core::JobStatus::cancelled);
  CHECK(job.completion_reason == core::CompletionReason::cancelled);
  CHECK(job.counters.listing_pages_scraped == pages);
  CHECK(job.counters.items_found == 4 * pages);
  CHECK(h.events(id).size() == static_cast<std::size_t>(pages));
  // No listing request after the cancel but the one in flight (its gate
  // asked just before the cancel); pages fetched ahead of those stored are
  // at most three.
  CHECK(site.hits_with_prefix("/slow") <= at_cancel + 1);
  CHECK(site.hits_with_prefix("/slow") <= pages + 3);
  CHECK(pool->jobs_finished() == 0);
}

TEST_CASE("worker: a job whose host lookup hangs ends with timeout at its deadline",
          "[scrape][worker]") {
  HangingResolver hanging;  // 60 s, or until the test ends
  Harness h;
  h.fetch.resolver = hanging.resolver();
  core::JobOptions options = listing_options();
  options.timeout = 1;
  const auto started = steady_clock::now();
  const auto [id, job] = h.run("http://hangs.test/listings?page=1", options);
  CHECK(steady_clock::now() - started < seconds(10));
  CHECK(hanging.calls() == 1);
  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK_FALSE(job.error_message);
  REQUIRE(job.started_at);
  REQUIRE(job.completed_at);
  CHECK(*job.completed_at >= *job.started_at + core::k_micros_per_second);
  // The page was not tried: nothing is counted or stored for it.
  CHECK(job.counters.listing_pages_scraped == 0);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(h.events(id).empty());
}

TEST_CASE("worker: a cancel stops a job whose host lookup hangs", "[scrape][worker]") {
  HangingResolver hanging;
  Harness h;
  h.fetch.resolver = hanging.resolver();
  const std::string id = h.create("http://hangs.test/listings?page=1", listing_options());
  auto pool = h.pool();  // renews its lease every 500 ms, which notices the cancel
  pool->start();
  REQUIRE(eventually([&] { return hanging.calls() == 1; }));
  REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
  const auto cancelled_at = steady_clock::now();
  REQUIRE(eventually([&] { return pool->busy_workers() == 0; }, seconds(20)));
  CHECK(steady_clock::now() - cancelled_at < seconds(5));  // not the 60 s the lookup hangs

  const core::Job job = h.job(id);
  CHECK(job.status == core::JobStatus::cancelled);
  CHECK(job.completion_reason == core::CompletionReason::cancelled);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK(h.events(id).empty());
  CHECK(pool->jobs_finished() == 0);
}

TEST_CASE("worker: stop() gives the job back, and the next start resumes it", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(100);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.max_pages = 6;
  options.timeout = 120;
  const std::string id = h.create(site.url("/slow?page=1"), options);
  auto first = h.pool();
  first->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped >= 2; }));
  first->stop();

  const core::Job stopped = h.job(id);
  CHECK(stopped.status == core::JobStatus::processing);  // waiting for a worker
  CHECK(stopped.attempts == 1);
  CHECK_FALSE(stopped.claim_token);
  const std::int64_t stored = stopped.counters.listing_pages_scraped;
  CHECK(stored < 6);
  CHECK(site.pages_not_fetched_once("/slow", stored) == std::vector<std::int64_t>{});

  SECTION("resumed after the last stored page: nothing counted twice") {
    auto second = h.pool();
    second->start();
    const core::Job job = h.wait_terminal(id);
    CHECK(job.completion_reason == core::CompletionReason::done);
    CHECK(job.attempts == 2);
    CHECK(job.counters.listing_pages_scraped == 6);
    CHECK(job.counters.items_found == 24);
    check_listing_results(h.results(id), site, "/slow", 1, 24, 4);
    CHECK(h.events(id).size() == 6);
    CHECK(site.hits("/slow?page=7") == 0);
  }
  SECTION("resumed after its time ran out: completed with timeout at once") {
    h.clock.advance(200 * core::k_micros_per_second);
    const int hits_before = site.total_hits();
    auto second = h.pool();
    second->start();
    const core::Job job = h.wait_terminal(id);
    CHECK(job.status == core::JobStatus::completed);
    CHECK(job.completion_reason == core::CompletionReason::timeout);
    CHECK(job.counters.listing_pages_scraped == stored);
    CHECK(job.counters.items_found == 4 * stored);
    CHECK(site.total_hits() == hits_before);
  }
}

TEST_CASE("worker: several workers never take a job twice", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(h.create(site.url("/listings?page=1"), detail_options()));
  }
  scrape::WorkerConfig config = Harness::worker_config();
  config.workers = 3;
  config.detail_concurrency = 2;
  auto pool = h.pool(config);
  pool->start();
  for (const std::string& id : ids) {
    const core::Job job = h.wait_terminal(id);
    CHECK(job.completion_reason == core::CompletionReason::done);
    CHECK(job.attempts == 1);
    CHECK(job.counters.listing_pages_scraped == 3);
    CHECK(job.counters.items_found == 12);
    CHECK(job.counters.detail_pages_scraped == 12);
    CHECK(h.events(id).size() == 15);
  }
  for (int page = 1; page <= 3; ++page) {
    CHECK(site.hits("/listings?page=" + std::to_string(page)) == 5);
    for (int item = 1; item <= 4; ++item) {
      CHECK(site.hits(FixtureSite::detail_path(page, item)) == 5);
    }
  }
  CHECK(eventually([&] { return pool->jobs_finished() == 5; }));
}

TEST_CASE("worker: progress never goes backwards and ends at the site's truth", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 4;
  site_config.items_per_page = 3;
  site_config.listing_delay = milliseconds(40);
  site_config.detail_delay = milliseconds(20);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = detail_options();
  options.max_pages = 10;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  scrape::WorkerConfig config = Harness::worker_config();
  config.detail_concurrency = 2;
  auto pool = h.pool(config);
  pool->start();

  core::Progress last;
  int samples = 0;
  int running_samples = 0;
  const auto until = steady_clock::now() + seconds(30);
  while (steady_clock::now() < until) {
    const core::Job job = h.job(id);
    const core::Progress p = core::derive_progress(job, h.clock.now());
    ++samples;
    INFO("sample " << samples << ": " << p.progress_percentage << "% status "
                   << core::to_string(p.status));
    CHECK(p.progress_percentage >= last.progress_percentage);
    CHECK(p.total_pages_scraped >= last.total_pages_scraped);
    CHECK(p.total_properties_found >= last.total_properties_found);
    CHECK(p.current_page >= last.current_page);
    CHECK((p.pagination_complete || !last.pagination_complete));
    if (p.status == core::JobStatus::processing) {
      ++running_samples;
      CHECK(p.progress_percentage < 100);
      CHECK_FALSE(p.completion_reason);
    }
    if (p.progress_percentage >= 100 || core::is_terminal(p.status)) {
      // Nothing final is reported before all the work is stored.
      CHECK(p.status == core::JobStatus::completed);
      CHECK(job.counters.listing_pages_scraped == 4);
      CHECK(job.counters.items_found == 12);
      CHECK(job.counters.detail_pages_scraped == 12);
    }
    last = p;
    if (core::is_terminal(p.status)) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  CHECK(running_samples > 0);
  CHECK(last.status == core::JobStatus::completed);
  CHECK(last.completion_reason == core::CompletionReason::done);
  CHECK(last.progress_percentage == 100);
  CHECK(last.total_pages_scraped == 16);
  CHECK(last.total_properties_found == 12);
  CHECK(last.pagination_complete);
  CHECK(last.current_page == 4);
  CHECK_FALSE(last.error_message);
  CHECK(last.processing_time);
  CHECK_FALSE(last.running_time);
}

// A listing page with more items than the pages before it raises API.md's
// estimate of the detail pages to come, so its formula alone goes back
// (here from 10.0 to 4.6): the progress shown holds the highest value.
TEST_CASE("progress holds its highest value when a page brings more items than the ones before",
          "[scrape][worker][progress]") {
  Harness h;
  core::JobOptions options = detail_options();
  options.max_pages = 10;
  const std::string base = "http://127.0.0.1:1";
  const std::string id = h.create(base + "/listings?page=1", options);
  auto claimed = h.db().claim_next(h.clock.now(), 60 * core::k_micros_per_second);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());
  const store::Claim claim = **claimed;

  std::int64_t next_index = 0;
  const auto listing = [&](int number, int items, bool last) {
    store::ListingPageRecord page;
    page.page_number = number;
    page.url = base + "/listings?page=" + std::to_string(number);
    page.http_status = 200;
    page.started_at = page.finished_at = h.clock.now();
    for (int i = 1; i <= items; ++i) {
      page.items.push_back(store::NewItem{{{"title", "t"}, {"price", "1"}},
                                          base + "/detail/" + std::to_string(number) + "-" +
                                              std::to_string(i)});
    }
    if (!last) {
      page.next_url = base + "/listings?page=" + std::to_string(number + 1);
    }
    REQUIRE(h.db().record_listing_page(claim, page, h.clock.now()).ok());
  };
  const auto details = [&](int count) {
    std::vector<store::DetailPageRecord> pages;
    for (int i = 0; i < count; ++i) {
      store::DetailPageRecord page;
      page.item_index = next_index++;
      page.url = base + "/detail/" + std::to_string(page.item_index);
      page.http_status = 200;
      page.started_at = page.finished_at = h.clock.now();
      page.detail = {{"description", "d"}};
      pages.push_back(page);
    }
    REQUIRE(h.db().record_detail_pages(claim, pages, h.clock.now()).ok());
  };
  const auto shown = [&] { return core::derive_progress(h.job(id), h.clock.now()); };

  listing(1, 1, false);  // 1 / (10 + 1 + 9 x 1)
  CHECK(shown().progress_percentage == 5.0);
  details(1);  // 2 / (10 + 10)
  CHECK(shown().progress_percentage == 10.0);
  listing(2, 10, false);  // 3 / (10 + 11 + 8 x 5.5): the formula alone says 4.6
  CHECK(core::round_1dp(100 * core::work_fraction(h.job(id))) == 4.6);
  CHECK(shown().progress_percentage == 10.0);

  SECTION("until the pages done pass it") {
    details(4);  // 7 / 65
    CHECK(shown().progress_percentage == 10.8);
    details(6);  // 13 / 65
    CHECK(shown().progress_percentage == 20.0);
    listing(3, 1, true);  // pagination complete: 14 / (3 + 12)
    CHECK(shown().progress_percentage == 93.3);
    details(1);
    CHECK(shown().progress_percentage == 99.9);
  }
  SECTION("and a cancel freezes the value shown") {
    REQUIRE(h.db().cancel_job(id, std::nullopt, h.clock.now()).ok());
    const core::Progress p = shown();
    CHECK(p.status == core::JobStatus::cancelled);
    CHECK(p.progress_percentage == 10.0);
  }
}

// Claims the job and stores its page 1 of /listings with the 4 items'
// detail links and the next link, as a worker would have before it died.
static store::Claim claim_with_first_page(Harness& h, const FixtureSite& site) {
  auto claimed = h.db().claim_next(h.clock.now(), 60 * core::k_micros_per_second);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());
  const store::Claim claim = **claimed;
  store::ListingPageRecord page;
  page.page_number = 1;
  page.url = site.url("/listings?page=1");
  page.http_status = 200;
  page.started_at = page.finished_at = h.clock.now();
  for (int item = 1; item <= 4; ++item) {
    page.items.push_back(store::NewItem{{{"title", FixtureSite::title(1, item)},
                                         {"price", FixtureSite::price(1, item)}},
                                        site.url(FixtureSite::detail_path(1, item))});
  }
  page.next_url = site.url("/listings?page=2");
  REQUIRE(h.db().record_listing_page(claim, page, h.clock.now()).ok());
  return claim;
}

TEST_CASE("worker: a resumed job fetches its pending detail pages, then the next listing page",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  // A worker that stored page 1 (with its detail links) and then died.
  const store::Claim claim = claim_with_first_page(h, site);
  REQUIRE(h.db().release(claim).ok());

  auto pool = h.pool();
  pool->start();
  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.attempts == 2);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 12);
  CHECK(job.counters.detail_pages_scraped == 12);
  check_listing_results(h.results(id), site, "/listings", 1, 12, 4);
  CHECK(site.hits("/listings?page=1") == 0);
  CHECK(site.hits("/listings?page=2") == 1);
  for (int item = 1; item <= 4; ++item) {
    CHECK(site.hits(FixtureSite::detail_path(1, item)) == 1);
  }
  CHECK(h.events(id).size() == 15);
}

TEST_CASE("worker: a job interrupted after a failed listing page fetches the detail pages found "
          "before it, then fails",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  // A worker that stored page 1 (with its detail links) and page 2's
  // failure, and died before the detail pages.
  const store::Claim claim = claim_with_first_page(h, site);
  store::ListingPageRecord failed;
  failed.page_number = 2;
  failed.url = site.url("/listings?page=2");
  failed.http_status = 500;
  failed.ok = false;
  failed.error = "HTTP 500";
  failed.pagination_complete = true;
  failed.started_at = failed.finished_at = h.clock.now();
  REQUIRE(h.db().record_listing_page(claim, failed, h.clock.now()).ok());
  REQUIRE(h.db().release(claim).ok());

  auto pool = h.pool();
  pool->start();
  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::error);
  CHECK(job.error_message == site.url("/listings?page=2") + ": HTTP 500");
  CHECK(job.attempts == 2);
  CHECK(job.counters.listing_pages_scraped == 1);
  CHECK(job.counters.listing_pages_failed == 1);
  CHECK(job.counters.detail_pages_scraped == 4);
  for (int item = 1; item <= 4; ++item) {
    CHECK(site.hits(FixtureSite::detail_path(1, item)) == 1);
  }
  CHECK(site.hits("/listings?page=2") == 0);
  CHECK(h.events(id).size() == 6);
}

TEST_CASE("worker: an expired lease puts the job back to work", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), listing_options());
  // A worker that claimed the job with a lease that is already over.
  auto claimed = h.db().claim_next(h.clock.now() - 10 * core::k_micros_per_second,
                                   core::k_micros_per_second);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());

  scrape::WorkerConfig config = Harness::worker_config();
  config.recover_interval = milliseconds(20);
  auto pool = h.pool(config);
  pool->start();
  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.attempts == 2);
  CHECK(job.counters.listing_pages_scraped == 3);
  check_listing_results(h.results(id), site, "/listings", 1, 12, 4);

  // The old claim can change nothing any more.
  store::ListingPageRecord late;
  late.page_number = 4;
  late.url = site.url("/listings?page=4");
  CHECK(h.db().record_listing_page(**claimed, late, h.clock.now()).error().code ==
        core::ErrorCode::conflict);
}

TEST_CASE("worker: a job interrupted after its failed listing page fails on resume", "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  const std::string id = h.create(site.url("/gone"), listing_options());
  auto claimed = h.db().claim_next(h.clock.now(), 60 * core::k_micros_per_second);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());
  store::ListingPageRecord page;
  page.page_number = 1;
  page.url = site.url("/gone");
  page.http_status = 404;
  page.ok = false;
  page.error = "HTTP 404";
  page.pagination_complete = true;
  page.started_at = page.finished_at = h.clock.now();
  REQUIRE(h.db().record_listing_page(**claimed, page, h.clock.now()).ok());
  REQUIRE(h.db().release(**claimed).ok());

  auto pool = h.pool();
  pool->start();
  const core::Job job = h.wait_terminal(id);
  CHECK(job.status == core::JobStatus::failed);
  CHECK(job.completion_reason == core::CompletionReason::error);
  CHECK(job.error_message == std::optional<std::string>(site.url("/gone") + ": HTTP 404"));
  CHECK(job.counters.listing_pages_failed == 1);
  CHECK(site.hits("/gone") == 0);
}

TEST_CASE("worker: a job failed at its claim as a damaged row is said in the worker's log, and "
          "the next job runs",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.max_pages = 1;
  const std::string damaged = h.create(site.url("/listings?page=1"), options);
  const std::string next = h.create(site.url("/listings?page=1"), options);
  {
    SQLite::Database raw(h.store_config().path, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET depth = 7 WHERE job_id = '" + damaged + "'");
  }
  std::mutex log_mutex;
  std::vector<std::string> log;
  scrape::WorkerConfig config = Harness::worker_config();
  config.log = [&](const std::string& line) {
    std::lock_guard lock(log_mutex);
    log.push_back(line);
  };
  auto pool = h.pool(config, 20);
  pool->start();
  const core::Job ran = h.wait_terminal(next);
  CHECK(ran.completion_reason == core::CompletionReason::done);
  pool->stop();
  const core::Job failed = h.job(damaged);
  CHECK(failed.status == core::JobStatus::failed);
  const std::string line = "job " + damaged + " finished: error (the job's stored options are "
                           "outside the ranges API.md allows (a damaged database row))";
  std::lock_guard lock(log_mutex);
  CHECK(std::count(log.begin(), log.end(), line) == 1);
}

TEST_CASE("worker: a busy database delays page writes, never drops them", "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(100);
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.max_pages = 4;
  const std::string id = h.create(site.url("/slow?page=1"), options);

  std::mutex log_mutex;
  std::vector<std::string> log;
  scrape::WorkerConfig config = Harness::worker_config();
  config.max_store_backoff = milliseconds(50);
  config.log = [&](const std::string& line) {
    std::lock_guard lock(log_mutex);
    log.push_back(line);
  };
  auto saw_unavailable = [&] {
    std::lock_guard lock(log_mutex);
    for (const std::string& line : log) {
      if (line.find("store unavailable") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  auto pool = h.pool(config, 20);
  pool->start();
  REQUIRE(eventually([&] { return h.job(id).counters.listing_pages_scraped >= 1; }));

  // Another connection holds the write lock until the worker has had to
  // wait for it at least once.
  auto locker = store::JobStore::open(h.store_config());
  REQUIRE(locker.ok());
  (*locker)->database().exec("BEGIN EXCLUSIVE");
  const bool waited = eventually(saw_unavailable);
  (*locker)->database().exec("COMMIT");
  CHECK(waited);

  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 4);
  CHECK(job.counters.items_found == 16);
  check_listing_results(h.results(id), site, "/slow", 1, 16, 4);
  CHECK(h.events(id).size() == 4);
  CHECK(site.pages_not_fetched_once("/slow", 4) == std::vector<std::int64_t>{});
}

TEST_CASE("worker: no more than three listing pages are fetched and not stored while a write waits",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 10;
  site_config.listing_delay = milliseconds(50);
  FixtureSite site(site_config);
  Harness h;
  const std::string id = h.create(site.url("/listings?page=1"), listing_options());
  auto pool = h.pool(Harness::worker_config(), 50);  // the write retries while the lock is held
  pool->start();
  REQUIRE(eventually([&] { return site.hits("/listings?page=1") >= 1; }));
  {
    SQLite::Database locker(h.store_config().path, SQLite::OPEN_READWRITE);
    locker.exec("BEGIN IMMEDIATE");
    std::this_thread::sleep_for(milliseconds(800));  // 16 pages' time
    const std::int64_t stored = h.job(id).counters.listing_pages_scraped;
    // One being stored, one waiting to be, one fetched and waiting for room.
    CHECK(site.hits_with_prefix("/listings") - stored <= 3);
    locker.exec("ROLLBACK");
  }
  const core::Job job = h.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 10);
  CHECK(site.pages_not_fetched_once("/listings", 10) == std::vector<std::int64_t>{});
}

TEST_CASE("worker: listing pages that together exceed the parse budget are all scraped",
          "[scrape][worker]") {
  // Two pages of about 8.5 MB do not fit in the process's 16 MiB at once:
  // the page before must be freed before the next one is parsed.
  FixtureSiteConfig site_config;
  site_config.pages = 3;
  site_config.items_per_page = 55000;
  FixtureSite site(site_config);
  Harness h;
  core::JobOptions options = listing_options();
  options.max_items = 1000000;
  options.timeout = 120;
  const std::string id = h.create(site.url("/listings?page=1"), options);
  auto pool = h.pool();
  pool->start();
  // Under ctest's 120 s for the test; about 5 s on 2 cores.
  const bool done = eventually([&] { return core::is_terminal(h.job(id).status); },
                               std::chrono::seconds(60));
  REQUIRE(done);
  const core::Job job = h.job(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.items_found == 3 * 55000);
}

namespace {

// Whether `pool` stops (stop() returns) within `limit`. One that does not is
// leaked: its threads are wedged, and destroying it would hang the test.
bool stops_within(std::unique_ptr<scrape::WorkerPool>& pool, seconds limit) {
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  std::thread([raw = pool.get(), stopped] {
    raw->stop();
    *stopped = true;
  }).detach();
  if (eventually([&] { return stopped->load(); }, limit)) {
    return true;
  }
  (void)pool.release();
  return false;
}

// A job of three listing pages of 40 items each, with their detail pages,
// that runs with a parse budget in which two listing pages do not fit at
// once but one and a detail page do, and max_details_ahead 10. Were a
// listing page parsed and waiting to be stored only once the detail pages
// fall back to 10, the next listing page (which does not fit beside it) and
// every detail page queued behind that would wait for ever.
class BudgetFillingJob {
 public:
  BudgetFillingJob() : m_site(site_config()), m_budget(budget_for(m_site)) {
    scrape::WorkerConfig config = Harness::worker_config();
    config.max_details_ahead = 10;
    id = h.create(m_site.url("/listings?page=1"), detail_options());
    pool = h.pool(config);
    pool->start();
  }
  ~BudgetFillingJob() {
    if (pool) {
      (void)stops_within(pool, seconds(10));
    }
  }
  BudgetFillingJob(const BudgetFillingJob&) = delete;
  BudgetFillingJob& operator=(const BudgetFillingJob&) = delete;

  // Whether detail pages came back: stored, or some waiting for the parse
  // budget beside the next listing page.
  bool details_came_back() {
    return h.job(id).counters.detail_pages_scraped >= 1 ||
           scrape::process_parse_budget().waiting() >= 2;
  }

  // For failure messages.
  std::string state() {
    const core::Job job = h.job(id);
    return std::string("status ") + core::to_string(job.status) + ", listing pages " +
           std::to_string(job.counters.listing_pages_scraped) + ", detail pages " +
           std::to_string(job.counters.detail_pages_scraped) + ", parse budget held " +
           std::to_string(scrape::process_parse_budget().held()) + ", parses waiting " +
           std::to_string(scrape::process_parse_budget().waiting());
  }

  static constexpr std::int64_t k_details = 3 * 40;

 private:
  static FixtureSiteConfig site_config() {
    FixtureSiteConfig config;
    config.pages = 3;
    config.items_per_page = 40;
    config.detail_delay = milliseconds(30);  // 4 threads: about 130 detail pages/s
    return config;
  }
  // One and a half listing pages (the last, without a next link: the smallest).
  static std::size_t budget_for(const FixtureSite& site) {
    scrape::HttpFetcher probe{scrape::FetchConfig{}};
    const scrape::FetchResult page =
        probe.fetch(site.url("/listings?page=3"), steady_clock::now() + seconds(10));
    REQUIRE(page.ok);
    return page.body.size() * 3 / 2;
  }

  FixtureSite m_site;
  SmallParseBudget m_budget;

 public:
  Harness h;
  std::string id;
  std::unique_ptr<scrape::WorkerPool> pool;
};

} // namespace

TEST_CASE("worker: detail pages behind listing pages that fill the parse budget are all scraped",
          "[scrape][worker]") {
  BudgetFillingJob run;
  const bool done = eventually([&] { return core::is_terminal(run.h.job(run.id).status); });
  INFO(run.state());
  REQUIRE(done);
  const core::Job job = run.h.job(run.id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 3);
  CHECK(job.counters.detail_pages_scraped == BudgetFillingJob::k_details);
  REQUIRE(stops_within(run.pool, seconds(10)));
  CHECK(scrape::process_parse_budget().held() == 0);
}

TEST_CASE("worker: stop() returns while detail pages are behind listing pages that fill the "
          "parse budget",
          "[scrape][worker]") {
  BudgetFillingJob run;
  REQUIRE(eventually([&] { return run.details_came_back(); }));
  INFO(run.state());
  REQUIRE(stops_within(run.pool, seconds(10)));
  const core::Job job = run.h.job(run.id);
  CHECK(job.status == core::JobStatus::processing);  // waiting for a worker
  CHECK_FALSE(job.claim_token);
  CHECK(job.counters.detail_pages_scraped < BudgetFillingJob::k_details);
}

TEST_CASE("worker: the timeout ends a job whose detail pages are behind listing pages that fill "
          "the parse budget",
          "[scrape][worker]") {
  BudgetFillingJob run;
  REQUIRE(eventually([&] { return run.details_came_back(); }));
  run.h.clock.advance(120 * core::k_micros_per_second);
  const bool done =
      eventually([&] { return core::is_terminal(run.h.job(run.id).status); }, seconds(10));
  INFO(run.state());
  REQUIRE(done);
  const core::Job job = run.h.job(run.id);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK(job.counters.detail_pages_scraped < BudgetFillingJob::k_details);
  REQUIRE(stops_within(run.pool, seconds(10)));
}

namespace {

// A clock that, once armed, lets a stop begin inside the next reading a
// worker's own thread takes (tick() reads it between its stop check and the
// job gate), and gives that stop time to be seen before it answers.
class StopInsideClock final : public core::Clock {
 public:
  core::Micros now() const override {
    if (m_armed.load()) {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      if (std::string(name) == "sk-worker" && !m_fired.exchange(true)) {
        m_on_fire();
        std::this_thread::sleep_for(milliseconds(300));
      }
    }
    return m_base.now();
  }
  void arm(std::function<void()> on_fire) {
    m_on_fire = std::move(on_fire);
    m_armed = true;
  }

 private:
  core::SystemClock m_base;
  std::function<void()> m_on_fire;
  std::atomic<bool> m_armed{false};
  mutable std::atomic<bool> m_fired{false};
};

} // namespace

TEST_CASE("worker: a stop that comes while tick() asks the job gate gives the job back, not "
          "up as lost",
          "[scrape][worker][stop]") {
  FixtureSite site(slow_details_site());
  Harness h;
  const scrape::WorkerConfig config = unrenewed_worker();
  StopInsideClock clock;
  store::StoreConfig store_config = h.store_config();
  scrape::WorkerPool pool(store_config, config, clock,
                          scrape::http_fetcher_factory(h.fetch, std::make_shared<scrape::HostLimiter>()));
  const std::string id = h.create(site.url("/listings?page=1"), detail_options());
  pool.start();
  REQUIRE(eventually([&] { return site.hits(site.detail_path(1, 1)) == 1; }));
  std::this_thread::sleep_for(milliseconds(200));  // the runner waits in store_details()
  std::thread stopper;
  clock.arm([&] { stopper = std::thread([&] { pool.stop(); }); });
  REQUIRE(eventually([&] { return pool.busy_workers() == 0; }, seconds(10)));
  if (stopper.joinable()) {
    stopper.join();
  }
  const core::Job job = h.job(id);
  INFO("status " << core::to_string(job.status));
  // Given back (JobStore::release): no claim nor lease, so the next start
  // resumes it at once; given up as lost, it kept both until the lease ran out.
  CHECK(job.status == core::JobStatus::processing);
  CHECK_FALSE(job.claim_token.has_value());
  CHECK_FALSE(job.lease_expires_at.has_value());
}

TEST_CASE("worker: a listing page still waiting for its turn to be parsed when the job's time "
          "runs out ends the job with timeout, not error",
          "[scrape][worker]") {
  FixtureSite site;
  Harness h;
  core::JobOptions options = listing_options();
  options.timeout = 1;
  // Other parses hold the whole budget for 3 s.
  ParseBudgetHeld others(seconds(3));
  const std::string id = h.create(site.url("/listings?page=1"), options);
  auto pool = h.pool();
  pool->start();
  const core::Job job = h.wait_terminal(id);
  const bool ended_first = !others.released();

  CHECK(ended_first);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK(job.counters.listing_pages_scraped == 0);
  CHECK(job.counters.listing_pages_failed == 0);
  CHECK_FALSE(job.error_message.has_value());
}

TEST_CASE("worker: detail bodies waiting for the parse budget behind a listing page given back "
          "while the next one waits for body room are all scraped",
          "[scrape][worker]") {
  FixtureSiteConfig site_config;
  site_config.pages = 2;
  site_config.items_per_page = 8;
  site_config.listing_delay = milliseconds(300);  // details come in while page 2 is on its way
  FixtureSite site(site_config);
  Harness h;
  h.fetch.decompress = false;  // rooms of their Content-Length
  scrape::HttpFetcher probe(h.fetch);
  scrape::FetchResult listing =
      probe.fetch(site.url("/listings?page=1"), steady_clock::now() + seconds(10));
  scrape::FetchResult last =
      probe.fetch(site.url("/listings?page=2"), steady_clock::now() + seconds(10));
  scrape::FetchResult detail =
      probe.fetch(site.url(FixtureSite::detail_path(1, 1)), steady_clock::now() + seconds(10));
  REQUIRE((listing.ok && last.ok && detail.ok));
  REQUIRE(detail.body.size() < last.body.size());
  const std::size_t listing_bytes = listing.body.size();
  const std::size_t last_bytes = last.body.size();
  const std::size_t detail_bytes = detail.body.size();
  listing = scrape::FetchResult();  // their room given back
  last = scrape::FetchResult();
  detail = scrape::FetchResult();
  // Page 1's parse and a detail page's do not fit at once; two detail pages do. The four
  // detail threads' bodies fit in the body budget, page 2's beside them does not.
  const SmallParseBudget parse_budget(listing_bytes + detail_bytes - 1);
  struct SmallBodyBudget {
    std::size_t bytes;
    std::size_t before = scrape::process_body_budget().resize(bytes);
    ~SmallBodyBudget() { scrape::process_body_budget().resize(before); }
  } body_budget{4 * detail_bytes + last_bytes - 1};
  core::JobOptions options = detail_options();
  options.timeout = 5;
  const auto [id, job] = h.run(site.url("/listings?page=1"), options);

  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 2);
  CHECK(job.counters.detail_pages_scraped == 16);
  CHECK(scrape::process_body_budget().held() == 0);
}
