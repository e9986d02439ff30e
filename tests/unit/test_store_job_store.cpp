// store/job_store: the store driven as a simulated worker would drive it:
// claim, pages and items, leases, finish, cancel, recovery, deletion, and the
// read side (lists, events, results). After every write the counters on the
// job row must equal what the page events say.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/random.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "support/fake_clock.hpp"
#include "support/sync_counting_vfs.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::core::CompletionReason;
using scrapekeep::core::ErrorCode;
using scrapekeep::core::FieldValues;
using scrapekeep::core::Job;
using scrapekeep::core::JobOptions;
using scrapekeep::core::JobStatus;
using scrapekeep::core::Micros;
using scrapekeep::store::Claim;
using scrapekeep::store::DetailPageRecord;
using scrapekeep::store::JobFilter;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::PageKind;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::FakeClock;
using scrapekeep::testing::SyncCountingVfs;
using scrapekeep::testing::TempDir;

constexpr Micros k_second = 1'000'000;
// 2026-01-12T07:00:00Z
constexpr Micros k_t0 = 1'768'201'200'000'000;
constexpr Micros k_lease = 30 * k_second;
const std::string k_url = "http://127.0.0.1:9000/listings?page=1";

std::string page_url(std::int64_t page) {
  return "http://127.0.0.1:9000/listings?page=" + std::to_string(page);
}

// A store over a fresh database with two organizations.
class StoreFixture {
 public:
  StoreFixture() : clock(k_t0) {
    StoreConfig config;
    config.path = path();
    auto opened = JobStore::open(config);
    REQUIRE(opened.ok());
    m_store = std::move(opened.value());
    auto a = m_store->create_key("org-a", clock.now());
    auto b = m_store->create_key("org-b", clock.now());
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    org = a->info.org_id;
    other_org = b->info.org_id;
  }

  JobStore& store() { return *m_store; }
  std::string path() const { return m_dir.file("scrapekeep.db"); }

  Job create(JobOptions options = {}, const std::string& url = k_url) {
    auto job = m_store->create_job(org, url, options, clock.now());
    REQUIRE(job.ok());
    return *job;
  }

  Claim claim() {
    auto claim = m_store->claim_next(clock.now(), k_lease);
    REQUIRE(claim.ok());
    REQUIRE(claim->has_value());
    return **claim;
  }

  Job get(const std::string& job_id) {
    auto job = m_store->get_job(job_id, std::nullopt);
    REQUIRE(job.ok());
    return *job;
  }

  FakeClock clock;
  std::int64_t org = 0;
  std::int64_t other_org = 0;

 private:
  TempDir m_dir;
  std::unique_ptr<JobStore> m_store;
};

FieldValues item_fields(std::int64_t page, int i) {
  return {{"title", "Item " + std::to_string(page) + "-" + std::to_string(i)},
          {"price",
           i % 2 == 0 ? std::optional<std::string>("$" + std::to_string(100 + i)) : std::nullopt}};
}

// Listing page `page` with `n` items; detail links on every item when
// `with_links`; a next link unless `next` is false.
ListingPageRecord listing(std::int64_t page, int n, Micros at, bool next = true,
                          bool with_links = false) {
  ListingPageRecord r;
  r.page_number = page;
  r.url = page_url(page);
  r.http_status = 200;
  r.ok = true;
  r.started_at = at;
  r.finished_at = at + 250'000;
  for (int i = 0; i < n; ++i) {
    NewItem item;
    item.fields = item_fields(page, i);
    if (with_links) {
      item.detail_url =
          "http://127.0.0.1:9000/item/" + std::to_string(page) + "-" + std::to_string(i);
    }
    r.items.push_back(std::move(item));
  }
  if (next) {
    r.next_url = page_url(page + 1);
  }
  r.pagination_complete = !next;
  return r;
}

ListingPageRecord failed_listing(std::int64_t page, Micros at) {
  ListingPageRecord r;
  r.page_number = page;
  r.url = page_url(page);
  r.http_status = 500;
  r.ok = false;
  r.error = "HTTP 500 after 3 attempts";
  r.started_at = at;
  r.finished_at = at + 100'000;
  return r;
}

DetailPageRecord detail(std::int64_t item_index, const std::string& url, Micros at,
                        bool ok = true) {
  DetailPageRecord r;
  r.item_index = item_index;
  r.url = url;
  r.http_status = ok ? 200 : 404;
  r.ok = ok;
  r.error = ok ? "" : "HTTP 404";
  r.started_at = at;
  r.finished_at = at + 50'000;
  if (ok) {
    r.detail = {{"description", "about item " + std::to_string(item_index)}};
  }
  return r;
}

std::int64_t count_rows(SQLite::Database& db, const char* table, const std::string& job_id) {
  SQLite::Statement q(db, std::string("SELECT COUNT(*) FROM ") + table + " WHERE job_id = ?");
  q.bind(1, job_id);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// The job's counters recomputed from page_events and result_items.
void check_counters_match_events(JobStore& store, const std::string& job_id) {
  auto job = store.get_job(job_id, std::nullopt);
  REQUIRE(job.ok());
  SQLite::Statement q(store.database(),
                      "SELECT "
                      " COALESCE(SUM(kind = 'listing' AND outcome = 'ok'), 0),"
                      " COALESCE(SUM(kind = 'listing' AND outcome = 'failed'), 0),"
                      " COALESCE(SUM(CASE WHEN kind = 'listing' THEN detail_links END), 0),"
                      " COALESCE(SUM(kind = 'detail' AND outcome = 'ok'), 0),"
                      " COALESCE(SUM(kind = 'detail' AND outcome = 'failed'), 0),"
                      " COALESCE(SUM(CASE WHEN kind = 'listing' THEN items_found END), 0) "
                      "FROM page_events WHERE job_id = ?");
  q.bind(1, job_id);
  REQUIRE(q.executeStep());
  const auto& c = job->counters;
  INFO("job " << job_id);
  CHECK(c.listing_pages_scraped == q.getColumn(0).getInt64());
  CHECK(c.listing_pages_failed == q.getColumn(1).getInt64());
  CHECK(c.detail_pages_discovered == q.getColumn(2).getInt64());
  CHECK(c.detail_pages_scraped == q.getColumn(3).getInt64());
  CHECK(c.detail_pages_failed == q.getColumn(4).getInt64());
  CHECK(c.items_found == q.getColumn(5).getInt64());
  CHECK(c.items_found == count_rows(store.database(), "result_items", job_id));
  SQLite::Statement links(store.database(),
                          "SELECT COUNT(*) FROM result_items WHERE job_id = ? "
                          "AND detail_url IS NOT NULL");
  links.bind(1, job_id);
  links.executeStep();
  CHECK(c.detail_pages_discovered == links.getColumn(0).getInt64());
}

// Everything stored about a job, as one string, to show a write changed nothing.
std::string snapshot(JobStore& store, const std::string& job_id) {
  auto& db = store.database();
  std::string out;
  {
    SQLite::Statement q(db, "SELECT * FROM jobs WHERE job_id = ?");
    q.bind(1, job_id);
    while (q.executeStep()) {
      for (int i = 0; i < q.getColumnCount(); ++i) {
        out += q.getColumn(i).isNull() ? "NULL" : q.getColumn(i).getString();
        out += "|";
      }
    }
  }
  for (const char* sql :
       {"SELECT seq, kind, page_number, outcome, items_found FROM page_events WHERE job_id = ? "
        "ORDER BY seq",
        "SELECT item_index, fields, detail_url, detail FROM result_items WHERE job_id = ? "
        "ORDER BY item_index"}) {
    SQLite::Statement q(db, sql);
    q.bind(1, job_id);
    while (q.executeStep()) {
      for (int i = 0; i < q.getColumnCount(); ++i) {
        out += q.getColumn(i).isNull() ? "NULL" : q.getColumn(i).getString();
        out += ",";
      }
      out += "\n";
    }
  }
  return out;
}

void check_conflict(const scrapekeep::core::Status& st) {
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ErrorCode::conflict);
}

JobOptions paged_options(int max_pages, int max_items = 100, int depth = 0) {
  JobOptions o;
  o.follow_pagination = true;
  o.max_pages = max_pages;
  o.max_items = max_items;
  o.depth = depth;
  o.selectors.item = "//article";
  o.selectors.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
  return o;
}

} // namespace

TEST_CASE("create_job stores a pending job with normalized options", "[store]") {
  StoreFixture f;
  JobOptions o = paged_options(7, 250, 1);
  o.timeout = 120;
  o.selectors.detail_fields = {{"description", "//p[@class='desc']"}};
  const Job created = f.create(o);
  CHECK(scrapekeep::core::looks_like_job_id(created.job_id));
  CHECK(created.status == JobStatus::pending);
  CHECK(created.created_at == k_t0);

  const Job job = f.get(created.job_id);
  CHECK(job.job_id == created.job_id);
  CHECK(job.org_id == f.org);
  CHECK(job.status == JobStatus::pending);
  CHECK(job.url == k_url);
  CHECK(job.created_at == k_t0);
  CHECK_FALSE(job.started_at.has_value());
  CHECK_FALSE(job.completed_at.has_value());
  CHECK_FALSE(job.completion_reason.has_value());
  CHECK_FALSE(job.error_message.has_value());
  CHECK_FALSE(job.claim_token.has_value());
  CHECK_FALSE(job.lease_expires_at.has_value());
  CHECK(job.attempts == 0);
  CHECK(job.current_page == 0);
  CHECK_FALSE(job.pagination_complete);
  CHECK(job.counters.items_found == 0);
  CHECK(job.options.timeout == 120);
  CHECK(job.options.max_items == 250);
  CHECK(job.options.follow_pagination);
  CHECK(job.options.max_pages == 7);
  CHECK(job.options.depth == 1);
  CHECK(job.options.selectors.item == "//article");
  CHECK(job.options.selectors.fields == o.selectors.fields);
  CHECK(job.options.selectors.next_page == o.selectors.next_page);
  CHECK(job.options.selectors.detail_link == ".//a/@href");
  CHECK(job.options.selectors.detail_fields == o.selectors.detail_fields);

  SECTION("organizations are isolated") {
    CHECK(f.store().get_job(job.job_id, f.org).ok());
    auto other = f.store().get_job(job.job_id, f.other_org);
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().code == ErrorCode::not_found);
  }
  SECTION("unknown ids are not found") {
    auto missing = f.store().get_job("job_000000000000000000000000", std::nullopt);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::not_found);
  }
  SECTION("ids are unique and random-looking") {
    std::set<std::string> ids{job.job_id};
    for (int i = 0; i < 50; ++i) {
      const Job j = f.create();
      CHECK(scrapekeep::core::looks_like_job_id(j.job_id));
      ids.insert(j.job_id);
    }
    CHECK(ids.size() == 51);
  }
}

TEST_CASE("claim_next takes the oldest pending job with a token and a lease", "[store]") {
  StoreFixture f;
  const Job first = f.create();
  f.clock.advance(k_second);
  const Job second = f.create();
  f.clock.advance(9 * k_second);  // t0 + 10 s

  const Claim a = f.claim();
  CHECK(a.job_id == first.job_id);
  CHECK_FALSE(a.token.empty());
  CHECK(a.job.status == JobStatus::processing);
  CHECK(a.job.attempts == 1);
  CHECK(a.job.started_at == std::optional<Micros>(k_t0 + 10 * k_second));
  CHECK(a.job.lease_expires_at == std::optional<Micros>(k_t0 + 10 * k_second + k_lease));
  CHECK(a.job.claim_token == std::optional<std::string>(a.token));
  CHECK(a.job.current_page == 1);

  const Job stored = f.get(first.job_id);
  CHECK(stored.status == JobStatus::processing);
  CHECK(stored.claim_token == std::optional<std::string>(a.token));
  CHECK(stored.attempts == 1);

  const Claim b = f.claim();
  CHECK(b.job_id == second.job_id);
  CHECK(b.token != a.token);

  auto none = f.store().claim_next(f.clock.now(), k_lease);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

namespace {

// The row of a job that a claim found damaged: failed, with `message`.
void check_failed_at_claim(StoreFixture& f, const std::string& id, const std::string& message) {
  SQLite::Database raw(f.path(), SQLite::OPEN_READONLY);
  SQLite::Statement q(raw,
                      "SELECT status, completion_reason, error_message, claim_token, "
                      "completed_at >= started_at FROM jobs WHERE job_id = ?");
  q.bind(1, id);
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "failed");
  CHECK(q.getColumn(1).getString() == "error");
  CHECK(q.getColumn(2).getString() == message);
  CHECK(q.getColumn(3).isNull());
  CHECK(q.getColumn(4).getInt() == 1);
}

} // namespace

TEST_CASE("a job whose stored URL is longer than the API takes fails at its claim, the next "
          "one runs",
          "[store]") {
  StoreFixture f;
  const Job damaged = f.create();
  f.clock.advance(k_second);
  const Job next = f.create();
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    // 2049 characters: one more than the API takes (2048 of them are fine).
    raw.exec("UPDATE jobs SET url = 'http://example.com/' || printf('%.2030c', 'a') "
             "WHERE job_id = '" + damaged.job_id + "'");
    REQUIRE(raw.execAndGet("SELECT length(url) FROM jobs WHERE job_id = '" + damaged.job_id + "'")
                .getInt() == 2049);
  }
  std::vector<std::pair<std::string, std::string>> failed;
  auto c = f.store().claim_next(f.clock.now(), k_lease, &failed);
  REQUIRE(c.ok());
  REQUIRE(c->has_value());
  CHECK((*c)->job_id == next.job_id);
  const std::string message =
      "the job's stored URL is longer than 2048 characters (a damaged database row)";
  check_failed_at_claim(f, damaged.job_id, message);
  // Said to the caller, for its log.
  CHECK(failed == std::vector<std::pair<std::string, std::string>>{{damaged.job_id, message}});
}

TEST_CASE("a job whose stored options are outside API.md's ranges fails at its claim, the next "
          "one runs, and reads them bounded to int",
          "[store]") {
  // 99999999999 read as 32 bits was 1215752191; depth 2 has no meaning.
  const std::string set = GENERATE(as<std::string>{}, "depth = 99999999999", "depth = 2",
                                   "max_pages = 0", "timeout_s = -4294967295",
                                   "max_items = 1000001");
  INFO(set);
  StoreFixture f;
  const Job damaged = f.create();
  f.clock.advance(k_second);
  const Job next = f.create();
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET " + set + " WHERE job_id = '" + damaged.job_id + "'");
  }
  const Job read = f.store().get_job(damaged.job_id, std::nullopt).value();
  if (set == "depth = 99999999999") {
    CHECK(read.options.depth == std::numeric_limits<int>::max());
  }
  if (set == "timeout_s = -4294967295") {
    CHECK(read.options.timeout == std::numeric_limits<int>::min());
  }
  const Claim c = f.claim();
  CHECK(c.job_id == next.job_id);
  check_failed_at_claim(f, damaged.job_id,
                        "the job's stored options are outside the ranges API.md allows (a "
                        "damaged database row)");
}

TEST_CASE("a job whose stored selectors are not JSON fails at its claim, the next one runs",
          "[store]") {
  StoreFixture f;
  const Job damaged = f.create();
  f.clock.advance(k_second);
  const Job next = f.create();
  f.clock.advance(k_second);
  const Job waiting = f.create();
  {
    // A damaged or hand-edited row; and one processing, waiting for a worker.
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET selectors = 'not json' WHERE job_id = '" + damaged.job_id + "'");
    raw.exec("UPDATE jobs SET status = 'processing', started_at = " + std::to_string(k_t0) +
             ", claim_token = 'gone', lease_expires_at = 0, selectors = '{}' WHERE job_id = '" +
             waiting.job_id + "'");
  }

  // Recovery reads no selectors: it takes the waiting job back.
  auto moved = f.store().recover_expired(f.clock.now(), 5);
  REQUIRE(moved.ok());
  CHECK(*moved == 1);

  // The waiting job resumes first, but its selectors cannot be read: it
  // fails; so does the damaged one after it, and the same claim takes the
  // next job, rather than the damaged ones again and again.
  const Claim c = f.claim();
  CHECK(c.job_id == next.job_id);
  CHECK_FALSE(c.job.selectors_damaged);

  for (const std::string& id : {damaged.job_id, waiting.job_id}) {
    check_failed_at_claim(f, id, "the job's stored options cannot be read (a damaged database row)");
  }
  // Reading it gives the rest of the row, its selectors marked unreadable.
  auto read = f.store().get_job(damaged.job_id, std::nullopt);
  REQUIRE(read.ok());
  CHECK(read->selectors_damaged);
  CHECK(read->url == damaged.url);
  CHECK(read->status == JobStatus::failed);
  CHECK(read->options.max_items == damaged.options.max_items);
  // And it does not hide the jobs listed with it.
  auto listed = f.store().list_jobs(JobFilter{});
  REQUIRE(listed.ok());
  CHECK(listed->total == 3);
  REQUIRE(listed->jobs.size() == 3);
  CHECK(listed->jobs[0].selectors_damaged);   // waiting, the newest
  CHECK_FALSE(listed->jobs[1].selectors_damaged);
  CHECK(listed->jobs[2].selectors_damaged);
}

TEST_CASE("a pending job with a claim token left on it is claimed and blocks no other job",
          "[store]") {
  StoreFixture f;
  const Job stray = f.create();
  f.clock.advance(k_second);
  const Job next = f.create();
  {
    // A hand-edited row (inspect check reports it): no worker holds a pending job.
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET claim_token = 'stray', lease_expires_at = 0 WHERE job_id = '" +
             stray.job_id + "'");
  }
  const Claim first = f.claim();
  CHECK(first.job_id == stray.job_id);
  CHECK(first.token != "stray");
  CHECK(f.claim().job_id == next.job_id);
}

TEST_CASE("a pending job without a job id blocks no job created after it", "[store]") {
  StoreFixture f;
  const Job job = f.create();
  // A hand-edited row: SQLite lets a TEXT PRIMARY KEY hold NULL, or ''.
  const std::string id = GENERATE(as<std::string>{}, "NULL", "''");
  INFO("job_id " << id);
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    raw.exec("INSERT INTO jobs (job_id, org_id, status, url, timeout_s, max_items, "
             "follow_pagination, max_pages, depth, selectors, created_at) SELECT " + id +
             ", org_id, status, url, timeout_s, max_items, follow_pagination, max_pages, depth, "
             "selectors, 0 FROM jobs");
  }
  CHECK(f.claim().job_id == job.job_id);
}

TEST_CASE("result items whose stored fields or detail are not the JSON written read as null",
          "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(5));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 4, f.clock.now()), f.clock.now()).ok());
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE result_items SET fields = 'not json' WHERE item_index = 0");
    raw.exec("UPDATE result_items SET fields = '{\"title\": 7}' WHERE item_index = 1");
    raw.exec("UPDATE result_items SET detail = '[1' WHERE item_index = 2");
    raw.exec("UPDATE result_items SET detail = '{\"d\": \"ok\"}' WHERE item_index = 3");
  }
  auto results = f.store().list_results(job.job_id, 10, 0);
  REQUIRE(results.ok());
  CHECK(results->total == 4);
  REQUIRE(results->items.size() == 4);
  CHECK_FALSE(results->items[0].fields.has_value());
  CHECK_FALSE(results->items[1].fields.has_value());
  CHECK(results->items[2].fields == item_fields(1, 2));
  CHECK_FALSE(results->items[2].detail.has_value());
  CHECK(results->items[3].fields == item_fields(1, 3));
  CHECK(results->items[3].detail == FieldValues{{"d", std::string("ok")}});
  for (const auto& item : results->items) {
    CHECK(item.page_number == 1);
  }
}

TEST_CASE("listing pages store the event, the items and the counters together", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(5));
  const Claim c = f.claim();
  check_counters_match_events(f.store(), job.job_id);

  // Page 1: 3 items and a next link.
  REQUIRE(f.store().record_listing_page(c, listing(1, 3, f.clock.now()), f.clock.now()).ok());
  Job j = f.get(job.job_id);
  CHECK(j.counters.listing_pages_scraped == 1);
  CHECK(j.counters.items_found == 3);
  CHECK(j.current_page == 2);
  CHECK_FALSE(j.pagination_complete);
  check_counters_match_events(f.store(), job.job_id);

  // Page 2 fails: counted as failed, no items.
  f.clock.advance(k_second);
  REQUIRE(f.store().record_listing_page(c, failed_listing(2, f.clock.now()), f.clock.now()).ok());
  j = f.get(job.job_id);
  CHECK(j.counters.listing_pages_scraped == 1);
  CHECK(j.counters.listing_pages_failed == 1);
  CHECK(j.counters.items_found == 3);
  CHECK(j.current_page == 2);
  check_counters_match_events(f.store(), job.job_id);

  // Page 3: the last one (no next link).
  f.clock.advance(k_second);
  REQUIRE(
      f.store().record_listing_page(c, listing(3, 2, f.clock.now(), false), f.clock.now()).ok());
  j = f.get(job.job_id);
  CHECK(j.counters.listing_pages_scraped == 2);
  CHECK(j.counters.items_found == 5);
  CHECK(j.current_page == 3);
  CHECK(j.pagination_complete);
  check_counters_match_events(f.store(), job.job_id);

  SECTION("the events, in order") {
    auto events = f.store().list_events(job.job_id, 0, 100);
    REQUIRE(events.ok());
    REQUIRE(events->events.size() == 3);
    const auto& e1 = events->events[0];
    CHECK(e1.kind == PageKind::listing);
    CHECK(e1.page_number == 1);
    CHECK(e1.url == page_url(1));
    CHECK(e1.http_status == std::optional<int>(200));
    CHECK(e1.ok);
    CHECK(e1.items_found == 3);
    CHECK_FALSE(e1.error.has_value());
    CHECK(e1.started_at == k_t0);
    CHECK(e1.finished_at == k_t0 + 250'000);
    const auto& e2 = events->events[1];
    CHECK(e2.page_number == 2);
    CHECK_FALSE(e2.ok);
    CHECK(e2.http_status == std::optional<int>(500));
    CHECK(e2.error == std::optional<std::string>("HTTP 500 after 3 attempts"));
    CHECK(e2.items_found == 0);
    CHECK(events->events[2].page_number == 3);
    // Numbered per job, in the order stored.
    CHECK(e1.seq == 1);
    CHECK(e2.seq == 2);
    CHECK(events->events[2].seq == 3);
    CHECK(events->next_after == 3);
  }
  SECTION("the items, in order, with their fields") {
    auto results = f.store().list_results(job.job_id, 100, 0);
    REQUIRE(results.ok());
    CHECK(results->total == 5);
    REQUIRE(results->items.size() == 5);
    for (std::int64_t i = 0; i < 5; ++i) {
      CHECK(results->items[static_cast<size_t>(i)].index == i);
    }
    CHECK(results->items[0].page_number == 1);
    CHECK(results->items[0].page_url == page_url(1));
    CHECK(results->items[0].fields == item_fields(1, 0));
    CHECK(results->items[1].fields == item_fields(1, 1));
    CHECK(results->items[3].page_number == 3);
    CHECK(results->items[3].fields == item_fields(3, 0));
    CHECK_FALSE(results->items[0].detail.has_value());
  }
  SECTION("a page stored twice is a conflict and changes nothing") {
    const std::string before = snapshot(f.store(), job.job_id);
    check_conflict(f.store().record_listing_page(c, listing(1, 3, f.clock.now()), f.clock.now()));
    CHECK(snapshot(f.store(), job.job_id) == before);
  }
  SECTION("the resume point is after the last stored page") {
    auto rp = f.store().resume_point(c);
    REQUIRE(rp.ok());
    CHECK(rp->next_page_number == 4);
    CHECK_FALSE(rp->next_url.has_value());
    CHECK(rp->visited_listing_urls ==
          std::vector<std::string>{page_url(1), page_url(2), page_url(3)});
  }
}

TEST_CASE("max_items is never exceeded, even inside a page", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(10, 5));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 3, f.clock.now()), f.clock.now()).ok());
  // Page 2 has 4 items; only 2 fit.
  REQUIRE(f.store().record_listing_page(c, listing(2, 4, f.clock.now()), f.clock.now()).ok());
  const Job j = f.get(job.job_id);
  CHECK(j.counters.items_found == 5);
  CHECK(j.counters.listing_pages_scraped == 2);
  // max_items reached: no further listing page is planned despite the next link.
  CHECK(j.pagination_complete);
  check_counters_match_events(f.store(), job.job_id);

  auto results = f.store().list_results(job.job_id, 100, 0);
  REQUIRE(results.ok());
  CHECK(results->total == 5);
  REQUIRE(results->items.size() == 5);
  CHECK(results->items[3].fields == item_fields(2, 0));
  CHECK(results->items[4].fields == item_fields(2, 1));

  auto events = f.store().list_events(job.job_id, 0, 10);
  REQUIRE(events.ok());
  REQUIRE(events->events.size() == 2);
  CHECK(events->events[1].items_found == 2);

  auto rp = f.store().resume_point(c);
  REQUIRE(rp.ok());
  CHECK_FALSE(rp->next_url.has_value());
}

TEST_CASE("detail pages are counted and merged into their items", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(3, 100, 1));
  const Claim c = f.claim();
  auto page = listing(1, 3, f.clock.now(), true, true);
  page.items[2].detail_url.reset();  // an item without a detail link
  REQUIRE(f.store().record_listing_page(c, page, f.clock.now()).ok());
  Job j = f.get(job.job_id);
  CHECK(j.counters.detail_pages_discovered == 2);
  check_counters_match_events(f.store(), job.job_id);

  auto rp = f.store().resume_point(c);
  REQUIRE(rp.ok());
  REQUIRE(rp->pending_details.size() == 2);
  CHECK(rp->pending_details[0].item_index == 0);
  CHECK(rp->pending_details[0].page_number == 1);
  CHECK(rp->pending_details[0].url == *page.items[0].detail_url);
  CHECK(rp->pending_details[1].item_index == 1);

  f.clock.advance(k_second);
  REQUIRE(
      f.store()
          .record_detail_page(c, detail(0, *page.items[0].detail_url, f.clock.now()), f.clock.now())
          .ok());
  REQUIRE(f.store()
              .record_detail_page(c, detail(1, *page.items[1].detail_url, f.clock.now(), false),
                                  f.clock.now())
              .ok());
  j = f.get(job.job_id);
  CHECK(j.counters.detail_pages_scraped == 1);
  CHECK(j.counters.detail_pages_failed == 1);
  CHECK(j.counters.listing_pages_scraped == 1);
  check_counters_match_events(f.store(), job.job_id);
  // total_pages_scraped counts the successful listing and detail pages.
  CHECK(scrapekeep::core::derive_progress(j, f.clock.now()).total_pages_scraped == 2);

  auto results = f.store().list_results(job.job_id, 10, 0);
  REQUIRE(results.ok());
  REQUIRE(results->items.size() == 3);
  REQUIRE(results->items[0].detail.has_value());
  CHECK(*results->items[0].detail == FieldValues{{"description", "about item 0"}});
  CHECK(results->items[0].detail_url == page.items[0].detail_url);
  CHECK_FALSE(results->items[1].detail.has_value());  // its detail page failed
  CHECK_FALSE(results->items[2].detail.has_value());

  auto events = f.store().list_events(job.job_id, 0, 10);
  REQUIRE(events.ok());
  REQUIRE(events->events.size() == 3);
  CHECK(events->events[1].kind == PageKind::detail);
  CHECK(events->events[1].page_number == 1);
  CHECK(events->events[1].url == *page.items[0].detail_url);
  CHECK(events->events[1].ok);
  CHECK(events->events[2].kind == PageKind::detail);
  CHECK_FALSE(events->events[2].ok);
  CHECK(events->events[2].http_status == std::optional<int>(404));
  CHECK(events->events[2].error == std::optional<std::string>("HTTP 404"));

  rp = f.store().resume_point(c);
  REQUIRE(rp.ok());
  CHECK(rp->pending_details.empty());

  SECTION("a detail page stored twice is a conflict and changes nothing") {
    const std::string before = snapshot(f.store(), job.job_id);
    check_conflict(f.store().record_detail_page(
        c, detail(0, *page.items[0].detail_url, f.clock.now()), f.clock.now()));
    CHECK(snapshot(f.store(), job.job_id) == before);
    check_counters_match_events(f.store(), job.job_id);
  }
  SECTION("a detail page of an item that does not exist is refused") {
    const std::string before = snapshot(f.store(), job.job_id);
    CHECK_FALSE(f.store()
                    .record_detail_page(
                        c, detail(99, "http://127.0.0.1:9000/item/x", f.clock.now()), f.clock.now())
                    .ok());
    CHECK(snapshot(f.store(), job.job_id) == before);
  }
}

TEST_CASE("scraped values that are not UTF-8 are stored with U+FFFD in their place", "[store]") {
  // A stray byte in an undeclared UTF-8 page reaches the store as it came:
  // "caf\xe9" is not UTF-8.
  StoreFixture f;
  const Job job = f.create(paged_options(3, 100, 1));
  const Claim c = f.claim();
  auto page = listing(1, 2, f.clock.now(), true, true);
  page.items[0].fields = {{"title", std::string("caf\xe9")}, {"price", std::nullopt}};
  REQUIRE(f.store().record_listing_page(c, page, f.clock.now()).ok());
  auto d = detail(0, *page.items[0].detail_url, f.clock.now());
  d.detail = {{"description", std::string("cr\xe8me \xff")}};
  REQUIRE(f.store().record_detail_page(c, d, f.clock.now()).ok());

  auto results = f.store().list_results(job.job_id, 10, 0);
  REQUIRE(results.ok());
  REQUIRE(results->items.size() == 2);
  const FieldValues title = {{"title", std::string("caf\xef\xbf\xbd")}, {"price", std::nullopt}};
  CHECK(results->items[0].fields == title);
  REQUIRE(results->items[0].detail);
  const FieldValues description = {{"description", std::string("cr\xef\xbf\xbdme \xef\xbf\xbd")}};
  CHECK(*results->items[0].detail == description);
  CHECK(results->items[1].fields == item_fields(1, 1));
  const Job j = f.get(job.job_id);
  CHECK(j.counters.items_found == 2);
  CHECK(j.counters.detail_pages_scraped == 1);
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("detail links are not planned at depth 0", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(3, 100, 0));
  const Claim c = f.claim();
  REQUIRE(f.store()
              .record_listing_page(c, listing(1, 2, f.clock.now(), true, true), f.clock.now())
              .ok());
  CHECK(f.get(job.job_id).counters.detail_pages_discovered == 0);
  check_counters_match_events(f.store(), job.job_id);
  auto rp = f.store().resume_point(c);
  REQUIRE(rp.ok());
  CHECK(rp->pending_details.empty());
}

TEST_CASE("renew_lease extends the lease of the holder only", "[store]") {
  StoreFixture f;
  const Job job = f.create();
  const Claim c = f.claim();
  f.clock.advance(20 * k_second);
  REQUIRE(f.store().renew_lease(c, f.clock.now(), k_lease).ok());
  CHECK(f.get(job.job_id).lease_expires_at ==
        std::optional<Micros>(k_t0 + 20 * k_second + k_lease));

  Claim forged = c;
  forged.token = "not-the-token";
  check_conflict(f.store().renew_lease(forged, f.clock.now(), 10 * k_lease));
  CHECK(f.get(job.job_id).lease_expires_at ==
        std::optional<Micros>(k_t0 + 20 * k_second + k_lease));
}

TEST_CASE("a timeout its worker finds late is dated when the time ran out, as recovery dates it",
          "[store]") {
  StoreFixture f;
  JobOptions o = paged_options(8);
  o.timeout = 10;
  const Job job = f.create(o);
  const Claim c = f.claim();  // started at k_t0: the time runs out at k_t0 + 10 s
  f.clock.advance(k_second);
  REQUIRE(f.store().record_listing_page(c, listing(1, 4, f.clock.now()), f.clock.now()).ok());

  SECTION("a worker stalled past the deadline (stopped, swapped out) finishes later") {
    f.clock.advance(24 * k_second);
    REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, f.clock.now()).ok());
    const Job j = f.get(job.job_id);
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 10 * k_second));
    CHECK(scrapekeep::core::derive_progress(j, f.clock.now()).processing_time ==
          std::optional<double>(10.0));
  }
  SECTION("a page it stored after the deadline dates the end at that page") {
    f.clock.advance(11 * k_second);  // k_t0 + 12 s
    REQUIRE(f.store().record_listing_page(c, listing(2, 4, f.clock.now()), f.clock.now()).ok());
    f.clock.advance(5 * k_second);
    REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, f.clock.now()).ok());
    CHECK(f.get(job.job_id).completed_at == std::optional<Micros>(k_t0 + 12 * k_second + 250000));
  }
  SECTION("half a second late, it is dated at the deadline too") {
    f.clock.advance(9 * k_second + 500000);  // k_t0 + 10.5 s
    REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, f.clock.now()).ok());
    CHECK(f.get(job.job_id).completed_at == std::optional<Micros>(k_t0 + 10 * k_second));
  }
  SECTION("before the deadline by the stored clock, it is dated when the worker finished") {
    f.clock.advance(8 * k_second + 900000);  // k_t0 + 9.9 s
    REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, f.clock.now()).ok());
    CHECK(f.get(job.job_id).completed_at == std::optional<Micros>(k_t0 + 9 * k_second + 900000));
  }
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("a timeout found late is dated at the latest end of a stored page, whatever order the "
          "pages were stored in",
          "[store]") {
  // With several detail fetches at once, a page that finished earlier may be
  // stored after one that finished later: the end is the latest finished_at,
  // not that of the page stored last, so no page ends after the job.
  StoreFixture f;
  JobOptions o = paged_options(8);
  o.timeout = 10;
  o.depth = 1;
  const Job job = f.create(o);
  const Claim c = f.claim();  // started at k_t0: the time runs out at k_t0 + 10 s
  const ListingPageRecord page = listing(1, 2, f.clock.now(), false, true);
  REQUIRE(f.store().record_listing_page(c, page, f.clock.now()).ok());
  f.clock.set_now(k_t0 + 13 * k_second);
  DetailPageRecord late = detail(0, *page.items[0].detail_url, k_t0 + 9 * k_second);
  late.finished_at = k_t0 + 12 * k_second;  // finished last, stored first
  DetailPageRecord early = detail(1, *page.items[1].detail_url, k_t0 + 9 * k_second);
  early.finished_at = k_t0 + 11 * k_second;
  REQUIRE(f.store().record_detail_page(c, late, f.clock.now()).ok());
  REQUIRE(f.store().record_detail_page(c, early, f.clock.now()).ok());
  f.clock.advance(5 * k_second);
  REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, f.clock.now()).ok());
  CHECK(f.get(job.job_id).completed_at == std::optional<Micros>(k_t0 + 12 * k_second));
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("finish ends a job as done, timeout or error", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(8));
  const Claim c = f.claim();  // started at k_t0
  REQUIRE(f.store().record_listing_page(c, listing(1, 4, f.clock.now()), f.clock.now()).ok());
  f.clock.advance(k_second);
  REQUIRE(f.store().record_listing_page(c, listing(2, 4, f.clock.now()), f.clock.now()).ok());
  f.clock.advance(40 * k_second);
  const Micros end = f.clock.now();

  SECTION("done") {
    REQUIRE(f.store().finish(c, CompletionReason::done, std::nullopt, end).ok());
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::completed);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::done));
    CHECK(j.completed_at == std::optional<Micros>(end));
    CHECK(j.started_at == std::optional<Micros>(k_t0));
    CHECK_FALSE(j.error_message.has_value());
    CHECK(j.pagination_complete);
    CHECK_FALSE(j.claim_token.has_value());
    CHECK_FALSE(j.lease_expires_at.has_value());
    CHECK(j.counters.items_found == 8);
    check_counters_match_events(f.store(), job.job_id);
    const auto p = scrapekeep::core::derive_progress(j, end + k_second);
    CHECK(p.progress_percentage == 100.0);
    CHECK(p.processing_time == std::optional<double>(41.0));
  }
  SECTION("timeout keeps what was scraped") {
    REQUIRE(f.store().finish(c, CompletionReason::timeout, std::nullopt, end).ok());
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::completed);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::timeout));
    CHECK(j.completed_at == std::optional<Micros>(end));
    CHECK_FALSE(j.pagination_complete);
    CHECK(j.counters.items_found == 8);
    CHECK(j.counters.listing_pages_scraped == 2);
    auto results = f.store().list_results(job.job_id, 100, 0);
    REQUIRE(results.ok());
    CHECK(results->total == 8);
    check_counters_match_events(f.store(), job.job_id);
  }
  SECTION("error freezes the percentage reached") {
    const std::string why = "listing page " + page_url(3) + " failed: HTTP 500";
    REQUIRE(f.store().record_listing_page(c, failed_listing(3, end), end).ok());
    REQUIRE(f.store().finish(c, CompletionReason::error, why, end).ok());
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::failed);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::error));
    CHECK(j.error_message == std::optional<std::string>(why));
    CHECK(j.completed_at == std::optional<Micros>(end));
    // 3 listing pages done of max_pages 8: 37.5 %.
    REQUIRE(j.stopped_percentage.has_value());
    CHECK(*j.stopped_percentage == 37.5);
    CHECK(scrapekeep::core::derive_progress(j, end + 3600 * k_second).progress_percentage == 37.5);
    check_counters_match_events(f.store(), job.job_id);
  }
  SECTION("a terminal job never changes again") {
    REQUIRE(f.store().finish(c, CompletionReason::done, std::nullopt, end).ok());
    const std::string before = snapshot(f.store(), job.job_id);
    check_conflict(f.store().finish(c, CompletionReason::error, std::string("late"), end));
    check_conflict(f.store().record_listing_page(c, listing(3, 1, end), end));
    check_conflict(f.store().renew_lease(c, end, k_lease));
    check_conflict(f.store().release(c));
    auto cancelled = f.store().cancel_job(job.job_id, f.org, end);
    REQUIRE_FALSE(cancelled.ok());
    CHECK(cancelled.error().code == ErrorCode::conflict);
    auto moved = f.store().recover_expired(end + 3600 * k_second, 3);
    REQUIRE(moved.ok());
    CHECK(*moved == 0);
    CHECK(snapshot(f.store(), job.job_id) == before);
  }
}

// What a power cut keeps is what was synced. Under synchronous NORMAL (the
// default) a page write is not synced (a resumed job fetches the page
// again), but what a client was told is: a job's creation, its cancel, its
// deletion and its end, and a key's creation and revocation.
TEST_CASE("under synchronous normal what a client is told is synced and page writes are not",
          "[store]") {
  SyncCountingVfs vfs;  // before the store: every connection goes through it
  StoreFixture f;
  long syncs = vfs.wal_syncs();
  const auto new_syncs = [&] {
    const long now = vfs.wal_syncs();
    const long n = now - syncs;
    syncs = now;
    return n;
  };

  // A creation is a group write (concurrent ones share a transaction and
  // its sync), as a page is.
  const std::size_t batches = f.store().committed_batches();
  const Job job = f.create(paged_options(5));
  CHECK(new_syncs() == 1);
  CHECK(f.store().committed_batches() == batches + 1);
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 4, f.clock.now()), f.clock.now()).ok());
  REQUIRE(f.store().record_listing_page(c, listing(2, 4, f.clock.now()), f.clock.now()).ok());
  CHECK(new_syncs() == 0);
  REQUIRE(f.store().finish(c, CompletionReason::done, std::nullopt, f.clock.now()).ok());
  CHECK(new_syncs() == 1);
  REQUIRE(f.store().delete_job(job.job_id, std::nullopt).ok());
  CHECK(new_syncs() == 1);

  const Job other = f.create();
  CHECK(new_syncs() == 1);
  REQUIRE(f.store().cancel_job(other.job_id, std::nullopt, f.clock.now()).ok());
  CHECK(new_syncs() == 1);
  CHECK(f.get(other.job_id).status == JobStatus::cancelled);

  auto key = f.store().create_key("org-c", f.clock.now());
  REQUIRE(key.ok());
  CHECK(new_syncs() == 1);
  REQUIRE(f.store().revoke_key(key->info.key_id, f.clock.now()).ok());
  CHECK(new_syncs() == 1);

  // The connection is back to NORMAL after each: pages are still not synced.
  JobOptions short_job = paged_options(5);
  short_job.timeout = 1;
  const Job last = f.create(short_job);
  new_syncs();
  const Claim next = f.claim();
  REQUIRE(f.store().record_listing_page(next, listing(1, 4, f.clock.now()), f.clock.now()).ok());
  CHECK(new_syncs() == 0);

  // Recovery's passes with nothing to recover sync nothing (they would
  // sync the workers' pages every few seconds); ending a job whose time ran
  // out while its worker was gone is synced.
  REQUIRE(f.store().recover_expired(f.clock.now(), 3).ok());
  CHECK(new_syncs() == 0);
  f.clock.advance(k_lease + 2 * k_second);
  auto recovered = f.store().recover_expired(f.clock.now(), 3);
  REQUIRE(recovered.ok());
  CHECK(f.get(last.job_id).status == JobStatus::completed);
  CHECK(new_syncs() == 1);
}

// The sync is part of the commit: when it fails, the commit does, and
// nothing was changed (a client told to retry makes no second job).
TEST_CASE("a change whose sync fails is unavailable and not made", "[store]") {
  SyncCountingVfs vfs;
  StoreFixture f;
  const Job done = f.create();
  vfs.fail_wal_syncs(true);
  auto job = f.store().create_job(f.org, k_url, JobOptions{}, f.clock.now());
  REQUIRE_FALSE(job.ok());
  CHECK(job.error().code == ErrorCode::unavailable);
  auto cancelled = f.store().cancel_job(done.job_id, std::nullopt, f.clock.now());
  REQUIRE_FALSE(cancelled.ok());
  CHECK(cancelled.error().code == ErrorCode::unavailable);
  vfs.fail_wal_syncs(false);
  auto listed = f.store().list_jobs(JobFilter{});
  REQUIRE(listed.ok());
  CHECK(listed->total == 1);
  CHECK(f.get(done.job_id).status == JobStatus::pending);
  // And the connections work on.
  f.create();
  CHECK(f.store().list_jobs(JobFilter{})->total == 2);
}

TEST_CASE("cancel stops pending and processing jobs and fences the worker", "[store]") {
  StoreFixture f;

  SECTION("pending") {
    const Job job = f.create();
    f.clock.advance(5 * k_second);
    auto cancelled = f.store().cancel_job(job.job_id, f.org, f.clock.now());
    REQUIRE(cancelled.ok());
    CHECK(cancelled->status == JobStatus::cancelled);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::cancelled);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::cancelled));
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 5 * k_second));
    CHECK_FALSE(j.started_at.has_value());
    CHECK(scrapekeep::core::derive_progress(j, f.clock.now()).progress_percentage == 0.0);
    // A cancelled job is never claimed.
    auto none = f.store().claim_next(f.clock.now(), k_lease);
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
  }

  SECTION("a cancel whose time was read before a worker started the job ends after the start") {
    const Job job = f.create();
    const Micros asked_at = f.clock.now();  // the cancel reads its clock...
    f.clock.advance(2 * k_second);
    const Claim c = f.claim();  // ...then waits for the write lock while a worker claims
    REQUIRE(c.job.started_at == std::optional<Micros>(asked_at + 2 * k_second));
    auto cancelled = f.store().cancel_job(job.job_id, f.org, asked_at);
    REQUIRE(cancelled.ok());
    CHECK(cancelled->completed_at == c.job.started_at);
    CHECK(f.get(job.job_id).completed_at == c.job.started_at);
    CHECK(scrapekeep::core::derive_progress(f.get(job.job_id), f.clock.now()).processing_time ==
          std::optional<double>(0.0));
  }

  SECTION("processing, then every write of the old holder is refused") {
    const Job job = f.create(paged_options(4, 100, 1));
    const Claim c = f.claim();
    auto page = listing(1, 2, f.clock.now(), true, true);
    REQUIRE(f.store().record_listing_page(c, page, f.clock.now()).ok());
    f.clock.advance(3 * k_second);
    auto cancelled = f.store().cancel_job(job.job_id, f.org, f.clock.now());
    REQUIRE(cancelled.ok());
    CHECK(cancelled->status == JobStatus::cancelled);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::cancelled);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::cancelled));
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 3 * k_second));
    CHECK_FALSE(j.claim_token.has_value());
    CHECK_FALSE(j.lease_expires_at.has_value());
    // L = 4, D = 2 + (4 - 1) x 2 = 8: 1 / 12 = 8.3 %.
    REQUIRE(j.stopped_percentage.has_value());
    CHECK(*j.stopped_percentage == 8.3);
    CHECK(scrapekeep::core::derive_progress(j, f.clock.now()).progress_percentage == 8.3);

    const std::string before = snapshot(f.store(), job.job_id);
    const Micros now = f.clock.now();
    check_conflict(f.store().record_listing_page(c, listing(2, 2, now), now));
    check_conflict(f.store().record_detail_page(c, detail(0, *page.items[0].detail_url, now), now));
    check_conflict(f.store().renew_lease(c, now, k_lease));
    check_conflict(f.store().finish(c, CompletionReason::done, std::nullopt, now));
    check_conflict(f.store().release(c));
    CHECK_FALSE(f.store().resume_point(c).ok());
    CHECK(snapshot(f.store(), job.job_id) == before);
    check_counters_match_events(f.store(), job.job_id);
  }

  SECTION("terminal jobs, other organizations and unknown ids") {
    const Job job = f.create();
    REQUIRE(f.store().cancel_job(job.job_id, f.org, f.clock.now()).ok());
    auto again = f.store().cancel_job(job.job_id, f.org, f.clock.now());
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ErrorCode::conflict);

    const Job other = f.create();
    auto foreign = f.store().cancel_job(other.job_id, f.other_org, f.clock.now());
    REQUIRE_FALSE(foreign.ok());
    CHECK(foreign.error().code == ErrorCode::not_found);
    CHECK(f.get(other.job_id).status == JobStatus::pending);

    auto missing = f.store().cancel_job("job_000000000000000000000000", f.org, f.clock.now());
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::not_found);
  }
}

TEST_CASE("a worker that lost its lease can change nothing", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(5));
  const Claim old_claim = f.claim();  // lease until t0 + 30 s
  REQUIRE(
      f.store().record_listing_page(old_claim, listing(1, 3, f.clock.now()), f.clock.now()).ok());

  f.clock.advance(31 * k_second);
  auto moved = f.store().recover_expired(f.clock.now(), 3);
  REQUIRE(moved.ok());
  CHECK(*moved == 1);
  Job j = f.get(job.job_id);
  // Still processing, waiting for a worker: its progress does not go back.
  CHECK(j.status == JobStatus::processing);
  CHECK_FALSE(j.claim_token.has_value());
  CHECK_FALSE(j.lease_expires_at.has_value());
  CHECK(j.counters.items_found == 3);  // kept for the next attempt
  CHECK(scrapekeep::core::derive_progress(j, f.clock.now()).progress_percentage == 20.0);

  const Claim new_claim = f.claim();
  CHECK(new_claim.job_id == job.job_id);
  CHECK(new_claim.job.attempts == 2);
  // started_at is the first start: the timeout counts from there.
  CHECK(new_claim.job.started_at == std::optional<Micros>(k_t0));
  CHECK(new_claim.token != old_claim.token);

  const std::string before = snapshot(f.store(), job.job_id);
  const Micros now = f.clock.now();
  check_conflict(f.store().record_listing_page(old_claim, listing(2, 3, now), now));
  check_conflict(f.store().renew_lease(old_claim, now, k_lease));
  check_conflict(f.store().finish(old_claim, CompletionReason::done, std::nullopt, now));
  check_conflict(f.store().release(old_claim));
  CHECK(snapshot(f.store(), job.job_id) == before);

  // The new holder resumes after page 1 and counts nothing twice.
  auto rp = f.store().resume_point(new_claim);
  REQUIRE(rp.ok());
  CHECK(rp->next_page_number == 2);
  CHECK(rp->next_url == std::optional<std::string>(page_url(2)));
  REQUIRE(f.store().record_listing_page(new_claim, listing(2, 3, now), now).ok());
  j = f.get(job.job_id);
  CHECK(j.counters.listing_pages_scraped == 2);
  CHECK(j.counters.items_found == 6);
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("release gives a job back to be resumed at once", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(5));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 2, f.clock.now()), f.clock.now()).ok());
  REQUIRE(f.store().release(c).ok());
  const Job j = f.get(job.job_id);
  CHECK(j.status == JobStatus::processing);
  CHECK_FALSE(j.claim_token.has_value());
  CHECK_FALSE(j.lease_expires_at.has_value());
  CHECK(j.counters.items_found == 2);

  check_conflict(f.store().release(c));
  check_conflict(f.store().record_listing_page(c, listing(2, 2, f.clock.now()), f.clock.now()));

  const Claim again = f.claim();
  CHECK(again.job_id == job.job_id);
  CHECK(again.job.attempts == 2);
  auto rp = f.store().resume_point(again);
  REQUIRE(rp.ok());
  CHECK(rp->next_page_number == 2);
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("a resumed job's visited listing URLs include where a redirect took a page",
          "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(5));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 2, f.clock.now()), f.clock.now()).ok());
  // Page 2, asked for at its url, came from /moved/2 after a redirect.
  ListingPageRecord redirected = listing(2, 2, f.clock.now());
  redirected.final_url = "http://127.0.0.1:9000/moved/2";
  REQUIRE(f.store().record_listing_page(c, redirected, f.clock.now()).ok());
  // Page 3 came from its url: a final URL equal to it is not stored.
  ListingPageRecord direct = listing(3, 2, f.clock.now());
  direct.final_url = direct.url;
  REQUIRE(f.store().record_listing_page(c, direct, f.clock.now()).ok());
  REQUIRE(f.store().release(c).ok());

  const Claim again = f.claim();
  REQUIRE(again.job_id == job.job_id);
  auto rp = f.store().resume_point(again);
  REQUIRE(rp.ok());
  CHECK(rp->next_page_number == 4);
  CHECK(rp->visited_listing_urls ==
        std::vector<std::string>{page_url(1), page_url(2), "http://127.0.0.1:9000/moved/2",
                                 page_url(3)});
  SQLite::Statement q(f.store().database(),
                      "SELECT page_number, final_url FROM page_events WHERE job_id = ? "
                      "ORDER BY page_number");
  q.bind(1, job.job_id);
  std::vector<std::pair<std::int64_t, std::optional<std::string>>> rows;
  while (q.executeStep()) {
    rows.emplace_back(q.getColumn(0).getInt64(),
                      q.getColumn(1).isNull() ? std::nullopt
                                              : std::optional<std::string>(
                                                    q.getColumn(1).getString()));
  }
  CHECK(rows == std::vector<std::pair<std::int64_t, std::optional<std::string>>>{
                    {1, std::nullopt}, {2, "http://127.0.0.1:9000/moved/2"}, {3, std::nullopt}});
  check_counters_match_events(f.store(), job.job_id);
}

TEST_CASE("recover_expired puts back, gives up on, or times out interrupted jobs", "[store]") {
  StoreFixture f;

  SECTION("a live lease is left alone") {
    const Job job = f.create();
    f.claim();
    f.clock.advance(k_lease - 1);
    auto moved = f.store().recover_expired(f.clock.now(), 3);
    REQUIRE(moved.ok());
    CHECK(*moved == 0);
    CHECK(f.get(job.job_id).status == JobStatus::processing);
  }

  SECTION("attempts cap: the job fails after max_attempts interruptions") {
    JobOptions o = paged_options(4);
    o.timeout = 1800;
    const Job job = f.create(o);
    const Claim first = f.claim();
    REQUIRE(f.store().record_listing_page(first, listing(1, 1, f.clock.now()), f.clock.now()).ok());
    f.clock.advance(k_lease + k_second);
    REQUIRE(*f.store().recover_expired(f.clock.now(), 2) == 1);
    CHECK(f.get(job.job_id).status == JobStatus::processing);
    // Waiting for a worker, it is not moved again.
    CHECK(*f.store().recover_expired(f.clock.now() + k_lease, 2) == 0);

    const Claim second = f.claim();
    CHECK(second.job.attempts == 2);
    f.clock.advance(k_lease + k_second);
    const Micros now = f.clock.now();
    REQUIRE(*f.store().recover_expired(now, 2) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::failed);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::error));
    REQUIRE(j.error_message.has_value());
    CHECK_FALSE(j.error_message->empty());
    CHECK(j.completed_at == std::optional<Micros>(now));
    CHECK_FALSE(j.claim_token.has_value());
    // 1 of 4 listing pages: frozen at 25.0.
    REQUIRE(j.stopped_percentage.has_value());
    CHECK(*j.stopped_percentage == 25.0);
    check_counters_match_events(f.store(), job.job_id);
    auto none = f.store().claim_next(now, k_lease);
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
  }

  SECTION("a cap of 1: the first loss fails the job, said in the singular") {
    const Job job = f.create(paged_options(4));
    f.claim();
    f.clock.advance(k_lease + k_second);
    REQUIRE(*f.store().recover_expired(f.clock.now(), 1) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::failed);
    CHECK(j.error_message ==
          std::optional<std::string>("the job's worker was lost 1 time in a row without a page "
                                     "stored; giving up"));
  }

  SECTION("a job given up on with the clock set back is not dated before its start") {
    const Job job = f.create(paged_options(4));
    const Claim c = f.claim();
    // Its process found gone (expire_orphaned_leases), by a clock set back an hour since.
    REQUIRE(*f.store().expire_orphaned_leases([](const std::string&) { return true; }) == 1);
    const Micros earlier = f.clock.now() - 3600 * k_second;
    REQUIRE(*f.store().recover_expired(earlier, 1) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::failed);
    REQUIRE(j.started_at.has_value());
    CHECK(j.completed_at == j.started_at);
    CHECK(*j.started_at == *c.job.started_at);
  }

  SECTION("the cap counts losses in a row without a page stored") {
    JobOptions o = paged_options(10);
    o.timeout = 1800;
    const Job job = f.create(o);
    // Three losses, a page stored in each attempt: never given up on.
    for (int page = 1; page <= 3; ++page) {
      const Claim c = f.claim();
      REQUIRE(f.store().record_listing_page(c, listing(page, 1, f.clock.now()), f.clock.now()).ok());
      f.clock.advance(k_lease + k_second);
      REQUIRE(*f.store().recover_expired(f.clock.now(), 2) == 1);
      CHECK(f.get(job.job_id).status == JobStatus::processing);
    }
    // A detail page stored counts as moving forward too.
    const Claim with_detail = f.claim();
    scrapekeep::store::DetailPageRecord detail;
    detail.item_index = 0;
    detail.url = "http://127.0.0.1:9/detail/0";
    detail.http_status = 200;
    detail.ok = true;
    detail.started_at = detail.finished_at = f.clock.now();
    REQUIRE(f.store().record_detail_pages(with_detail, {detail}, f.clock.now()).ok());
    f.clock.advance(k_lease + k_second);
    REQUIRE(*f.store().recover_expired(f.clock.now(), 2) == 1);
    CHECK(f.get(job.job_id).status == JobStatus::processing);
    // The loss after it and one more with nothing stored between: 2 in a row.
    f.claim();
    f.clock.advance(k_lease + k_second);
    REQUIRE(*f.store().recover_expired(f.clock.now(), 2) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::failed);
    CHECK(j.attempts == 5);
    CHECK(j.error_message ==
          std::optional<std::string>("the job's worker was lost 2 times in a row without a page "
                                     "stored; giving up"));
  }

  SECTION("timeout passed: completed with reason timeout, partial results kept") {
    JobOptions o = paged_options(4);
    o.timeout = 60;
    const Job job = f.create(o);
    const Claim c = f.claim();  // started at t0
    REQUIRE(f.store().record_listing_page(c, listing(1, 3, f.clock.now()), f.clock.now()).ok());
    f.clock.advance(61 * k_second);
    const Micros now = f.clock.now();
    REQUIRE(*f.store().recover_expired(now, 3) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::completed);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::timeout));
    // Dated when its time ran out, not when the timeout was found.
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 60 * k_second));
    CHECK(scrapekeep::core::derive_progress(j, now).processing_time == std::optional<double>(60.0));
    CHECK(j.counters.items_found == 3);
    CHECK_FALSE(j.claim_token.has_value());
    check_counters_match_events(f.store(), job.job_id);
    CHECK(scrapekeep::core::derive_progress(j, now).progress_percentage == 100.0);
  }

  SECTION("a job waiting for a worker completes with timeout when its time runs out") {
    JobOptions o = paged_options(4);
    o.timeout = 60;
    const Job job = f.create(o);
    const Claim c = f.claim();
    REQUIRE(f.store().release(c).ok());
    f.clock.advance(59 * k_second);
    CHECK(*f.store().recover_expired(f.clock.now(), 3) == 0);
    CHECK(f.get(job.job_id).status == JobStatus::processing);
    f.clock.advance(2 * k_second);
    // Its time is up: no worker takes it up again, recovery ends it.
    auto none = f.store().claim_next(f.clock.now(), k_lease);
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
    CHECK(*f.store().recover_expired(f.clock.now(), 3) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::timeout));
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 60 * k_second));
    CHECK(j.attempts == 1);
  }

  SECTION("a late timeout is dated no earlier than the last page stored") {
    JobOptions o = paged_options(4);
    o.timeout = 60;
    const Job job = f.create(o);
    const Claim c = f.claim();  // lease until t0 + 30 s, renewed below
    REQUIRE(f.store().renew_lease(c, k_t0 + 50 * k_second, k_lease).ok());
    // Its worker stored a page that finished after the time was up.
    f.clock.advance(65 * k_second);
    REQUIRE(f.store().record_listing_page(c, listing(1, 1, f.clock.now()), f.clock.now()).ok());
    f.clock.advance(30 * k_second);
    CHECK(*f.store().recover_expired(f.clock.now(), 3) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.completion_reason == std::optional<CompletionReason>(CompletionReason::timeout));
    CHECK(j.completed_at == std::optional<Micros>(k_t0 + 65 * k_second + 250000));
  }

  SECTION("a claim without a lease (written by hand) is taken back") {
    const Job job = f.create();
    f.claim();
    REQUIRE(f.store().database().exec("UPDATE jobs SET lease_expires_at = NULL WHERE job_id = '" +
                                      job.job_id + "'") == 1);
    CHECK(*f.store().recover_expired(f.clock.now(), 3) == 1);
    const Job j = f.get(job.job_id);
    CHECK(j.status == JobStatus::processing);
    CHECK_FALSE(j.claim_token.has_value());
    const Claim again = f.claim();
    CHECK(again.job_id == job.job_id);
  }
}

TEST_CASE("claim_next resumes a job waiting for a worker before it starts a new one", "[store]") {
  StoreFixture f;
  const Job interrupted = f.create();
  const Claim first = f.claim();
  REQUIRE(first.job_id == interrupted.job_id);
  REQUIRE(f.store().release(first).ok());
  // A pending job created before it.
  f.clock.advance(k_second);
  const Job older = f.create();
  REQUIRE(f.store().database().exec("UPDATE jobs SET created_at = " + std::to_string(k_t0 - k_second) +
                                    " WHERE job_id = '" + older.job_id + "'") == 1);

  const Claim resumed = f.claim();
  CHECK(resumed.job_id == interrupted.job_id);
  CHECK(resumed.job.attempts == 2);
  CHECK(resumed.job.started_at == std::optional<Micros>(k_t0));
  const Claim next = f.claim();
  CHECK(next.job_id == older.job_id);
  CHECK(next.job.attempts == 1);
}

TEST_CASE("delete removes only terminal jobs, with their events and results", "[store]") {
  StoreFixture f;
  const Job keep = f.create(paged_options(3));
  f.clock.advance(k_second);
  const Job job = f.create(paged_options(3));
  // claim_next takes the oldest: `keep`, then `job`.
  const Claim keep_claim = f.claim();
  const Claim c = f.claim();
  REQUIRE(c.job_id == job.job_id);
  REQUIRE(
      f.store().record_listing_page(keep_claim, listing(1, 2, f.clock.now()), f.clock.now()).ok());
  REQUIRE(f.store().record_listing_page(c, listing(1, 2, f.clock.now()), f.clock.now()).ok());

  // Processing: not deletable.
  auto refused = f.store().delete_job(job.job_id, f.org);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::conflict);
  // Pending: not deletable either.
  const Job pending = f.create();
  auto refused_pending = f.store().delete_job(pending.job_id, f.org);
  REQUIRE_FALSE(refused_pending.ok());
  CHECK(refused_pending.error().code == ErrorCode::conflict);

  REQUIRE(f.store().finish(c, CompletionReason::done, std::nullopt, f.clock.now()).ok());
  auto foreign = f.store().delete_job(job.job_id, f.other_org);
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.error().code == ErrorCode::not_found);

  auto& db = f.store().database();
  CHECK(count_rows(db, "page_events", job.job_id) == 1);
  CHECK(count_rows(db, "result_items", job.job_id) == 2);
  REQUIRE(f.store().delete_job(job.job_id, f.org).ok());
  CHECK(count_rows(db, "jobs", job.job_id) == 0);
  CHECK(count_rows(db, "page_events", job.job_id) == 0);
  CHECK(count_rows(db, "result_items", job.job_id) == 0);
  auto gone = f.store().get_job(job.job_id, std::nullopt);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == ErrorCode::not_found);
  auto twice = f.store().delete_job(job.job_id, f.org);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == ErrorCode::not_found);

  // The other job is untouched.
  CHECK(count_rows(db, "page_events", keep.job_id) == 1);
  CHECK(count_rows(db, "result_items", keep.job_id) == 2);
  CHECK(f.get(keep.job_id).status == JobStatus::processing);
}

TEST_CASE("list_jobs filters, pages and counts, newest first", "[store]") {
  StoreFixture f;
  // Six jobs of org-a one second apart (t0 .. t0 + 5 s), one of org-b.
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) {
    jobs.push_back(f.create());
    f.clock.advance(k_second);
  }
  REQUIRE(f.store().create_job(f.other_org, k_url, {}, k_t0 + 2 * k_second).ok());
  // jobs[0] processing, jobs[1] cancelled.
  const Claim c = f.claim();
  REQUIRE(c.job_id == jobs[0].job_id);
  REQUIRE(f.store().cancel_job(jobs[1].job_id, f.org, f.clock.now()).ok());

  auto ids = [](const scrapekeep::store::JobPage& page) {
    std::vector<std::string> out;
    for (const auto& j : page.jobs) {
      out.push_back(j.job_id);
    }
    return out;
  };

  JobFilter all;
  all.org_id = f.org;
  auto page = f.store().list_jobs(all);
  REQUIRE(page.ok());
  CHECK(page->total == 6);
  CHECK(ids(*page) == std::vector<std::string>{jobs[5].job_id, jobs[4].job_id, jobs[3].job_id,
                                               jobs[2].job_id, jobs[1].job_id, jobs[0].job_id});

  SECTION("any organization") {
    JobFilter any;
    auto p = f.store().list_jobs(any);
    REQUIRE(p.ok());
    CHECK(p->total == 7);
  }
  SECTION("status") {
    JobFilter by_status = all;
    by_status.status = JobStatus::pending;
    auto p = f.store().list_jobs(by_status);
    REQUIRE(p.ok());
    CHECK(p->total == 4);
    CHECK(ids(*p) ==
          std::vector<std::string>{jobs[5].job_id, jobs[4].job_id, jobs[3].job_id, jobs[2].job_id});
    by_status.status = JobStatus::processing;
    p = f.store().list_jobs(by_status);
    REQUIRE(p.ok());
    CHECK(ids(*p) == std::vector<std::string>{jobs[0].job_id});
    by_status.status = JobStatus::cancelled;
    p = f.store().list_jobs(by_status);
    REQUIRE(p.ok());
    CHECK(ids(*p) == std::vector<std::string>{jobs[1].job_id});
    by_status.status = JobStatus::completed;
    p = f.store().list_jobs(by_status);
    REQUIRE(p.ok());
    CHECK(p->total == 0);
    CHECK(p->jobs.empty());
  }
  SECTION("limit and offset; total ignores them") {
    JobFilter paged = all;
    paged.limit = 2;
    paged.offset = 1;
    auto p = f.store().list_jobs(paged);
    REQUIRE(p.ok());
    CHECK(p->total == 6);
    CHECK(ids(*p) == std::vector<std::string>{jobs[4].job_id, jobs[3].job_id});
    paged.offset = 5;
    p = f.store().list_jobs(paged);
    REQUIRE(p.ok());
    CHECK(ids(*p) == std::vector<std::string>{jobs[0].job_id});
    paged.offset = 6;
    p = f.store().list_jobs(paged);
    REQUIRE(p.ok());
    CHECK(p->total == 6);
    CHECK(p->jobs.empty());
  }
  SECTION("created_after is inclusive, created_before exclusive") {
    JobFilter window = all;
    window.created_after = k_t0 + 2 * k_second;
    window.created_before = k_t0 + 4 * k_second;
    auto p = f.store().list_jobs(window);
    REQUIRE(p.ok());
    CHECK(p->total == 2);
    CHECK(ids(*p) == std::vector<std::string>{jobs[3].job_id, jobs[2].job_id});
  }
}

TEST_CASE("jobs created in the same microsecond are claimed in creation order", "[store]") {
  StoreFixture f;
  std::vector<std::string> created;
  for (int i = 0; i < 10; ++i) {
    created.push_back(f.create().job_id);  // the fixture's clock does not move
  }
  std::vector<std::string> claimed;
  for (int i = 0; i < 10; ++i) {
    claimed.push_back(f.claim().job_id);
  }
  CHECK(claimed == created);  // not in the order of their random ids
}

TEST_CASE("a clock set back since a job was created dates neither its start nor its cancel "
          "before its creation",
          "[store]") {
  StoreFixture f;
  const Job pending = f.create();
  f.clock.advance(-3600 * k_second);
  auto cancelled = f.store().cancel_job(pending.job_id, f.org, f.clock.now());
  REQUIRE(cancelled.ok());
  CHECK(cancelled->completed_at == std::optional<Micros>(pending.created_at));
  f.clock.advance(3600 * k_second);
  const Job started = f.create();
  f.clock.advance(-3600 * k_second);
  const Claim c = f.claim();
  REQUIRE(c.job_id == started.job_id);
  CHECK(f.store().get_job(started.job_id, f.org)->started_at ==
        std::optional<Micros>(started.created_at));
}

TEST_CASE("list_jobs: jobs created in the same microsecond page in creation order", "[store]") {
  StoreFixture f;
  std::vector<std::string> created;
  for (int i = 0; i < 7; ++i) {
    created.push_back(f.create().job_id);  // the fixture's clock does not move
  }
  f.clock.advance(k_second);
  const std::string newest = f.create().job_id;

  JobFilter paged;
  paged.org_id = f.org;
  paged.limit = 3;
  std::vector<std::string> seen;
  for (paged.offset = 0; paged.offset < 12; paged.offset += 3) {
    auto p = f.store().list_jobs(paged);
    REQUIRE(p.ok());
    CHECK(p->total == 8);
    for (const auto& j : p->jobs) {
      seen.push_back(j.job_id);
    }
  }
  std::vector<std::string> expected{newest};
  expected.insert(expected.end(), created.begin(), created.end());
  CHECK(seen == expected);
}

TEST_CASE("a page of jobs ends before the job that takes it past its byte budget", "[store]") {
  StoreFixture f;
  // Newest first: jobs[4] .. jobs[0], with urls of different lengths.
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.insert(ids.begin(),
               f.create({}, std::string(k_url) + "?q=" + std::string(100 * (i + 1), 'x')).job_id);
    f.clock.advance(k_second);
  }
  // The text each job's row holds that its creator chose: url, selectors,
  // error_message.
  std::vector<std::int64_t> sizes;
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(raw,
                        "SELECT length(CAST(url AS BLOB)) + length(CAST(selectors AS BLOB)) + "
                        "COALESCE(length(CAST(error_message AS BLOB)), 0) FROM jobs "
                        "ORDER BY created_at DESC");
    while (q.executeStep()) {
      sizes.push_back(q.getColumn(0).getInt64());
    }
  }
  REQUIRE(sizes.size() == 5);
  auto listed = [&](std::int64_t offset, std::int64_t max_bytes, std::int64_t limit = 50) {
    JobFilter filter;
    filter.org_id = f.org;
    filter.offset = offset;
    filter.limit = limit;
    filter.max_bytes = max_bytes;
    auto page = f.store().list_jobs(filter);
    REQUIRE(page.ok());
    CHECK(page->total == 5);
    std::vector<std::string> out;
    for (const auto& j : page->jobs) {
      out.push_back(j.job_id);
    }
    return out;
  };
  const std::int64_t three = sizes[0] + sizes[1] + sizes[2];
  CHECK(listed(0, three) == std::vector<std::string>{ids[0], ids[1], ids[2]});
  CHECK(listed(0, three - 1) == std::vector<std::string>{ids[0], ids[1]});
  // The next page goes on where it ended.
  CHECK(listed(2, sizes[2] + sizes[3]) == std::vector<std::string>{ids[2], ids[3]});
  // A job larger than the budget alone still comes, alone.
  CHECK(listed(1, 1) == std::vector<std::string>{ids[1]});
  // The limit still counts first.
  CHECK(listed(0, 1 << 20, 2) == std::vector<std::string>{ids[0], ids[1]});
}

TEST_CASE("a page of jobs or results holds its rows in a shared budget: a row that does not "
          "fit there ends the page, a first row waits for it or gives up",
          "[store]") {
  StoreFixture f;
  std::vector<std::string> ids;  // newest first
  for (int i = 0; i < 3; ++i) {
    ids.insert(ids.begin(), f.create({}, std::string(k_url) + "?q=" + std::string(1000, 'x')).job_id);
    f.clock.advance(k_second);
  }
  auto listed = [&](scrapekeep::store::SharedPageBytes& shared) {
    JobFilter filter;
    filter.org_id = f.org;
    filter.shared = &shared;
    auto page = f.store().list_jobs(filter);
    std::vector<std::string> out;
    if (page.ok()) {
      for (const auto& j : page->jobs) {
        out.push_back(j.job_id);
      }
    } else {
      CHECK(page.error().code == ErrorCode::unavailable);
    }
    return out;
  };
  scrapekeep::core::ByteBudget budget(1 << 20);
  {
    scrapekeep::store::SharedPageBytes shared(&budget);
    CHECK(listed(shared) == ids);
    // The rows' bytes stay held until the caller lets the lease go.
    CHECK(budget.held() == shared.lease.bytes());
    CHECK(shared.lease.bytes() > 3000);
  }
  CHECK(budget.held() == 0);
  // Another answer holds all but room for one row: the page ends after it.
  std::optional<scrapekeep::core::ByteBudget::Lease> other(budget.acquire((1 << 20) - 1500));
  {
    scrapekeep::store::SharedPageBytes shared(&budget);
    CHECK(listed(shared) == std::vector<std::string>{ids[0]});
  }
  // It holds all of it: the first row waits, and gives up after its patience.
  other.reset();
  other.emplace(budget.acquire(1 << 20));
  {
    scrapekeep::store::SharedPageBytes shared(&budget);
    shared.patience = std::chrono::milliseconds(50);
    CHECK(listed(shared).empty());
    auto results = f.store().list_results(ids[0], 10, 0, scrapekeep::store::k_page_bytes, &shared);
    REQUIRE(results.ok());  // the job has no items: nothing to wait for
    CHECK(results->items.empty());
  }
  other.reset();
  // Results share it the same way.
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 3, f.clock.now()), f.clock.now()).ok());
  std::size_t three_items = 0;
  {
    scrapekeep::store::SharedPageBytes shared(&budget);
    auto results = f.store().list_results(c.job_id, 10, 0, scrapekeep::store::k_page_bytes, &shared);
    REQUIRE(results.ok());
    CHECK(results->items.size() == 3);
    three_items = shared.lease.bytes();
  }
  // The three items are the same size: room for one and a half.
  other.emplace(budget.acquire((1 << 20) - three_items / 2));
  {
    scrapekeep::store::SharedPageBytes shared(&budget);
    auto results = f.store().list_results(c.job_id, 10, 0, scrapekeep::store::k_page_bytes, &shared);
    REQUIRE(results.ok());
    CHECK(results->items.size() == 1);
    CHECK(results->total == 3);
  }
  other.reset();
  CHECK(budget.held() == 0);
}

TEST_CASE("a page of jobs reads its rows one at a time: SQLite never holds them all at once",
          "[store]") {
  StoreFixture f;
  // 20 jobs of 200 KB of selectors each: 4 MB of rows.
  JobOptions options;
  for (int i = 0; i < 100; ++i) {
    options.selectors.fields.emplace_back("f" + std::to_string(i),
                                          "//div[@class='" + std::string(1990, 'x') + "']");
  }
  for (int i = 0; i < 20; ++i) {
    f.create(options);
    f.clock.advance(k_second);
  }
  JobFilter filter;
  filter.org_id = f.org;
  filter.limit = 20;
  filter.max_bytes = 1;  // one job's row
  f.store().list_jobs(filter);  // statements prepared, caches filled
  sqlite3_memory_highwater(1);
  const sqlite3_int64 before = sqlite3_memory_used();
  auto page = f.store().list_jobs(filter);
  REQUIRE(page.ok());
  CHECK(page->jobs.size() == 1);
  CHECK(page->total == 20);
  // Sorted by SQLite, all 20 rows were held before the first was returned.
  CHECK(sqlite3_memory_highwater(0) - before < 1'000'000);
}

TEST_CASE("list_events pages with after, limit and next_after", "[store]") {
  StoreFixture f;
  const Job other = f.create(paged_options(10));
  f.clock.advance(k_second);
  const Job job = f.create(paged_options(10));
  const Claim oc = f.claim();
  const Claim c = f.claim();
  REQUIRE(c.job_id == job.job_id);
  // Interleave the two jobs' events.
  for (int page = 1; page <= 5; ++page) {
    REQUIRE(f.store().record_listing_page(c, listing(page, 1, f.clock.now()), f.clock.now()).ok());
    REQUIRE(f.store().record_listing_page(oc, listing(page, 1, f.clock.now()), f.clock.now()).ok());
  }
  std::vector<std::int64_t> pages;
  std::int64_t after = 0;
  std::int64_t last_seq = 0;
  int rounds = 0;
  while (true) {
    auto batch = f.store().list_events(job.job_id, after, 2);
    REQUIRE(batch.ok());
    ++rounds;
    if (batch->events.empty()) {
      CHECK(batch->next_after == after);
      break;
    }
    CHECK(batch->events.size() <= 2);
    for (const auto& e : batch->events) {
      CHECK(e.seq > last_seq);
      last_seq = e.seq;
      pages.push_back(e.page_number);
    }
    CHECK(batch->next_after == batch->events.back().seq);
    after = batch->next_after;
    REQUIRE(rounds < 10);
  }
  CHECK(pages == std::vector<std::int64_t>{1, 2, 3, 4, 5});
  CHECK(rounds == 4);  // 2 + 2 + 1, then an empty page
}

TEST_CASE("list_results pages with limit and offset", "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(10));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 4, f.clock.now()), f.clock.now()).ok());
  REQUIRE(f.store().record_listing_page(c, listing(2, 3, f.clock.now()), f.clock.now()).ok());
  auto page = f.store().list_results(job.job_id, 3, 2);
  REQUIRE(page.ok());
  CHECK(page->total == 7);
  REQUIRE(page->items.size() == 3);
  CHECK(page->items[0].index == 2);
  CHECK(page->items[0].fields == item_fields(1, 2));
  CHECK(page->items[2].index == 4);
  CHECK(page->items[2].page_number == 2);
  CHECK(page->items[2].fields == item_fields(2, 0));
  auto tail = f.store().list_results(job.job_id, 100, 6);
  REQUIRE(tail.ok());
  REQUIRE(tail->items.size() == 1);
  CHECK(tail->items[0].index == 6);
  auto past = f.store().list_results(job.job_id, 100, 50);
  REQUIRE(past.ok());
  CHECK(past->total == 7);
  CHECK(past->items.empty());
}

TEST_CASE("a page of results ends before the item that takes it past its byte budget",
          "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(10));
  const Claim c = f.claim();
  REQUIRE(f.store().record_listing_page(c, listing(1, 5, f.clock.now()), f.clock.now()).ok());
  // The text each item's row holds: page_url, fields, detail_url, detail.
  std::vector<std::int64_t> sizes;
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(raw,
                        "SELECT length(CAST(page_url AS BLOB)) + length(CAST(fields AS BLOB)) + "
                        "COALESCE(length(CAST(detail_url AS BLOB)), 0) + "
                        "COALESCE(length(CAST(detail AS BLOB)), 0) FROM result_items "
                        "ORDER BY item_index");
    while (q.executeStep()) {
      sizes.push_back(q.getColumn(0).getInt64());
    }
  }
  REQUIRE(sizes.size() == 5);
  // Room for exactly the first three.
  const std::int64_t three = sizes[0] + sizes[1] + sizes[2];
  auto page = f.store().list_results(job.job_id, 100, 0, three);
  REQUIRE(page.ok());
  CHECK(page->total == 5);
  REQUIRE(page->items.size() == 3);
  CHECK(page->items[2].index == 2);
  page = f.store().list_results(job.job_id, 100, 0, three - 1);
  REQUIRE(page.ok());
  CHECK(page->items.size() == 2);
  // The next page goes on where it ended.
  page = f.store().list_results(job.job_id, 100, 2, three);
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 3);
  CHECK(page->items[0].index == 2);
  CHECK(page->items[2].fields == item_fields(1, 4));
  // An item larger than the budget alone still comes, alone.
  page = f.store().list_results(job.job_id, 100, 1, 1);
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].index == 1);
  // The limit still counts first.
  page = f.store().list_results(job.job_id, 2, 0, 1 << 20);
  REQUIRE(page.ok());
  CHECK(page->items.size() == 2);
}

TEST_CASE("a page of events ends before the event that takes it past its byte budget, and its "
          "next_after goes on from there",
          "[store]") {
  StoreFixture f;
  const Job job = f.create(paged_options(10));
  const Claim c = f.claim();
  for (int page = 1; page <= 4; ++page) {
    REQUIRE(f.store().record_listing_page(c, listing(page, 1, f.clock.now()), f.clock.now()).ok());
  }
  // The text each event's row holds: its url and error.
  std::vector<std::int64_t> sizes;
  {
    SQLite::Database raw(f.path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(raw,
                        "SELECT length(CAST(url AS BLOB)) + COALESCE(length(CAST(error AS BLOB)), "
                        "0) FROM page_events ORDER BY job_seq");
    while (q.executeStep()) {
      sizes.push_back(q.getColumn(0).getInt64());
    }
  }
  REQUIRE(sizes.size() == 4);
  const std::int64_t two = sizes[0] + sizes[1];
  auto page = f.store().list_events(job.job_id, 0, 100, two);
  REQUIRE(page.ok());
  REQUIRE(page->events.size() == 2);
  CHECK(page->next_after == page->events[1].seq);
  page = f.store().list_events(job.job_id, 0, 100, two - 1);
  REQUIRE(page.ok());
  CHECK(page->events.size() == 1);
  page = f.store().list_events(job.job_id, page->next_after, 100, two);
  REQUIRE(page.ok());
  REQUIRE(page->events.size() == 2);
  CHECK(page->events[0].page_number == 2);
  // One larger than the budget alone still comes, alone.
  page = f.store().list_events(job.job_id, 0, 100, 1);
  REQUIRE(page.ok());
  CHECK(page->events.size() == 1);
  page = f.store().list_events(job.job_id, 0, 100);
  REQUIRE(page.ok());
  CHECK(page->events.size() == 4);
}

TEST_CASE("two workers on their own connections never claim the same job", "[store]") {
  StoreFixture f;
  constexpr int k_jobs = 40;
  for (int i = 0; i < k_jobs; ++i) {
    f.create();
    f.clock.advance(1);
  }
  constexpr int k_workers = 3;
  // Catch assertions are not thread-safe: each worker records what it saw.
  std::vector<std::vector<std::string>> claimed(k_workers);
  std::vector<std::string> errors(k_workers);
  std::vector<std::thread> workers;
  const Micros now = f.clock.now();
  for (int w = 0; w < k_workers; ++w) {
    workers.emplace_back([&, w] {
      StoreConfig config;
      config.path = f.path();
      auto store = JobStore::open(config);
      if (!store.ok()) {
        errors[w] = store.error().message;
        return;
      }
      while (true) {
        auto c = (*store)->claim_next(now, k_lease);
        if (!c.ok()) {
          errors[w] = c.error().message;
          return;
        }
        if (!c->has_value()) {
          return;
        }
        claimed[w].push_back((*c)->job_id);
      }
    });
  }
  for (auto& t : workers) {
    t.join();
  }
  std::set<std::string> all;
  size_t total = 0;
  for (int w = 0; w < k_workers; ++w) {
    INFO("worker " << w);
    CHECK(errors[w].empty());
    total += claimed[w].size();
    all.insert(claimed[w].begin(), claimed[w].end());
  }
  CHECK(total == static_cast<size_t>(k_jobs));
  CHECK(all.size() == static_cast<size_t>(k_jobs));
  for (const auto& id : all) {
    const Job j = f.get(id);
    CHECK(j.status == JobStatus::processing);
    CHECK(j.attempts == 1);
  }
}
