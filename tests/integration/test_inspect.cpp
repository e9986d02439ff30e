// scrapekeep inspect: the real binary on databases built through the store.
// Every command must leave the database file's bytes unchanged.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/hashing.hpp"
#include "scrapekeep/store/history.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/read_only_dir.hpp"
#include "support/old_schema.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::testing::as_schema_version;
using scrapekeep::core::CompletionReason;
using scrapekeep::core::Job;
using scrapekeep::core::JobOptions;
using scrapekeep::core::Micros;
using scrapekeep::http::Json;
using scrapekeep::store::Claim;
using scrapekeep::store::DetailPageRecord;
using scrapekeep::store::JobFilter;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::in_read_only_dir;
using scrapekeep::testing::run_program;
using scrapekeep::testing::RunResult;
using scrapekeep::testing::read_file;
using scrapekeep::testing::TempDir;

constexpr Micros k_second = 1'000'000;
// 2026-01-12T07:00:00Z
const Micros k_t0 = *scrapekeep::core::parse_timestamp("2026-01-12T07:00:00Z");
constexpr Micros k_lease = 30 * k_second;

std::string file_hash(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return "(missing)";
  }
  return scrapekeep::store::sha256_hex(read_file(path));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  return lines;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `prefix... SCRAPEKEEP_BINARY args...` with stdout and stderr in files of `dir`.
RunResult run_binary(const TempDir& dir, const std::vector<std::string>& args,
                     const std::vector<std::string>& prefix = {}) {
  std::vector<std::string> all = prefix;
  all.push_back(SCRAPEKEEP_BINARY);
  all.insert(all.end(), args.begin(), args.end());
  return run_program(dir.path().string(), std::move(all));
}

// `scrapekeep inspect --db DB args...`, checking that the database file and its
// WAL have the same bytes afterwards.
RunResult inspect(const TempDir& dir, const std::string& db, const std::vector<std::string>& args,
                  const std::vector<std::string>& prefix = {}) {
  const std::string before = file_hash(db);
  const std::string wal_before = file_hash(db + "-wal");
  std::vector<std::string> all = {"inspect", "--db", db};
  all.insert(all.end(), args.begin(), args.end());
  RunResult r = run_binary(dir, all, prefix);
  INFO("inspect " << args.front() << " stderr: " << r.err);
  CHECK(file_hash(db) == before);
  if (wal_before != "(missing)") {
    CHECK(file_hash(db + "-wal") == wal_before);
  }
  return r;
}

JobOptions options(bool follow, int max_pages, int depth, int max_items = 100) {
  JobOptions o;
  o.follow_pagination = follow;
  o.max_pages = max_pages;
  o.depth = depth;
  o.max_items = max_items;
  o.selectors.item = "//article";
  o.selectors.fields = {{"title", ".//h2"}};
  return o;
}

std::vector<NewItem> items(int n, const std::string& base, bool with_links) {
  std::vector<NewItem> out;
  for (int i = 0; i < n; ++i) {
    NewItem item;
    item.fields = {{"title", "item " + std::to_string(i)}};
    if (with_links) {
      item.detail_url = base + "/detail/" + std::to_string(i);
    }
    out.push_back(std::move(item));
  }
  return out;
}

ListingPageRecord listing(std::int64_t page, const std::string& url, Micros start, Micros took,
                          std::vector<NewItem> found, std::optional<std::string> next) {
  ListingPageRecord r;
  r.page_number = page;
  r.url = url;
  r.http_status = 200;
  r.started_at = start;
  r.finished_at = start + took;
  r.items = std::move(found);
  r.next_url = std::move(next);
  r.pagination_complete = !r.next_url;
  return r;
}

// A new database at `db` with organization "acme", the store left open.
struct AcmeStore {
  std::unique_ptr<JobStore> store;
  std::int64_t org_id = 0;
};
AcmeStore open_acme(const std::string& db) {
  auto opened = JobStore::open(StoreConfig{.path = db});
  REQUIRE(opened);
  auto key = (*opened)->create_key("acme", k_t0);
  REQUIRE(key);
  return {std::move(*opened), key->info.org_id};
}

Claim claim(JobStore& store, Micros now) {
  auto claimed = store.claim_next(now, k_lease);
  REQUIRE(claimed);
  REQUIRE(claimed->has_value());
  return **claimed;
}

// The jobs of the test database, created in this order.
struct Built {
  std::string done;        // completed/done, depth 1, 2 listing pages, 5 details (1 failed)
  std::string failed;      // failed/error on its first listing page
  std::string failed2;     // failed/error, same cause, other URL
  std::string timeout;     // org "other", completed/timeout
  std::string cancelled;   // cancelled while pending
  std::string processing;  // interrupted mid-way: 1 listing page stored, lease held
  std::string pending;
  std::int64_t events = 0;
  Micros processing_claimed = 0;
};

Built build_db(const std::string& path) {
  auto opened = JobStore::open(StoreConfig{.path = path});
  REQUIRE(opened);
  JobStore& store = **opened;
  auto acme = store.create_key("acme", k_t0);
  auto other = store.create_key("other", k_t0);
  REQUIRE(acme);
  REQUIRE(other);
  const std::int64_t org = acme->info.org_id;
  Built b;
  Micros t = k_t0;

  {  // done: 63.5 s of processing
    auto job = store.create_job(org, "http://127.0.0.1:9/a?page=1", options(true, 5, 1), t);
    REQUIRE(job);
    b.done = job->job_id;
    const Micros start = t + k_second;
    Claim c = claim(store, start);
    REQUIRE(store.record_listing_page(
        c,
        listing(1, "http://127.0.0.1:9/a?page=1", start, 1500'000,
                items(3, "http://127.0.0.1:9/a", true), "http://127.0.0.1:9/a?page=2"),
        start));
    REQUIRE(store.record_listing_page(
        c,
        listing(2, "http://127.0.0.1:9/a?page=2", start + 2 * k_second, 500'000,
                items(2, "http://127.0.0.1:9/a2", true), std::nullopt),
        start));
    for (int i = 0; i < 5; ++i) {
      DetailPageRecord d;
      d.item_index = i;
      d.url = "http://127.0.0.1:9/a/detail/" + std::to_string(i);
      d.http_status = i == 4 ? 404 : 200;
      d.ok = i != 4;
      d.error = i == 4 ? "HTTP 404" : "";
      d.started_at = start + (10 + i) * k_second;
      d.finished_at = d.started_at + (i == 2 ? 7 * k_second : 250'000);
      d.detail = {{"description", "text " + std::to_string(i)}};
      REQUIRE(store.record_detail_page(c, d, start));
    }
    REQUIRE(store.finish(c, CompletionReason::done, std::nullopt, start + 63'500'000));
    b.events += 7;
    t += 100 * k_second;
  }
  int n = 0;
  for (std::string* id : {&b.failed, &b.failed2}) {  // failed: 2 s
    const std::string url = "http://127.0.0.1:9/b" + std::to_string(n++) + "?page=1";
    auto job = store.create_job(org, url, options(false, 10, 0), t);
    REQUIRE(job);
    *id = job->job_id;
    const Micros start = t + k_second;
    Claim c = claim(store, start);
    ListingPageRecord page = listing(1, url, start, 1'900'000, {}, std::nullopt);
    page.ok = false;
    page.http_status = 503;
    page.error = "HTTP 503 after 3 attempts";
    page.pagination_complete = false;
    REQUIRE(store.record_listing_page(c, page, start));
    REQUIRE(store.finish(c, CompletionReason::error, url + ": HTTP 503 after 3 attempts",
                         start + 2 * k_second));
    b.events += 1;
    t += 100 * k_second;
  }
  {  // timeout: 300 s, organization "other"
    auto job = store.create_job(other->info.org_id, "http://127.0.0.1:9/c?page=1",
                                options(true, 10, 0), t);
    REQUIRE(job);
    b.timeout = job->job_id;
    const Micros start = t + k_second;
    Claim c = claim(store, start);
    REQUIRE(store.record_listing_page(c,
                                      listing(1, "http://127.0.0.1:9/c?page=1", start, k_second,
                                              items(10, "", false), "http://127.0.0.1:9/c?page=2"),
                                      start));
    REQUIRE(store.finish(c, CompletionReason::timeout, std::nullopt, start + 300 * k_second));
    b.events += 1;
    t += 1000 * k_second;
  }
  {
    auto job = store.create_job(org, "http://127.0.0.1:9/d", options(false, 10, 0), t);
    REQUIRE(job);
    b.cancelled = job->job_id;
    REQUIRE(store.cancel_job(b.cancelled, std::nullopt, t + 5 * k_second));
    t += 100 * k_second;
  }
  {  // processing: the worker stored one of up to 10 pages, then vanished
    auto job = store.create_job(org, "http://127.0.0.1:9/e?page=1", options(true, 10, 0), t);
    REQUIRE(job);
    b.processing = job->job_id;
    b.processing_claimed = t + k_second;
    Claim c = claim(store, b.processing_claimed);
    REQUIRE(store.record_listing_page(
        c,
        listing(1, "http://127.0.0.1:9/e?page=1", b.processing_claimed, 800'000,
                items(4, "", false), "http://127.0.0.1:9/e?page=2"),
        b.processing_claimed));
    b.events += 1;
    t += 100 * k_second;
  }
  {
    auto job = store.create_job(org, "http://127.0.0.1:9/f", options(false, 10, 0), t);
    REQUIRE(job);
    b.pending = job->job_id;
  }
  return b;
}

Job stored_job(const std::string& db, const std::string& id) {
  auto opened = JobStore::open(StoreConfig{.path = db, .read_only = true});
  REQUIRE(opened);
  auto job = (*opened)->get_job(id, std::nullopt);
  REQUIRE(job);
  return *job;
}

// Rows of the human `jobs` table: lines between the header and the footer.
std::vector<std::string> table_rows(const std::string& out) {
  auto lines = lines_of(out);
  std::vector<std::string> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].rfind("job_", 0) == 0) {
      rows.push_back(lines[i]);
    }
  }
  return rows;
}

std::string at(Micros t) {
  return scrapekeep::core::format_timestamp(t);
}

}  // namespace

TEST_CASE("inspect jobs lists jobs newest first with filters", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  const Built b = build_db(db);

  auto all = inspect(dir, db, {"jobs"});
  REQUIRE(all.exit_code == 0);
  auto rows = table_rows(all.out);
  REQUIRE(rows.size() == 7);
  CHECK(rows.front().rfind(b.pending, 0) == 0);
  CHECK(rows.back().rfind(b.done, 0) == 0);
  CHECK(contains(all.out, "7 of 7 matching jobs"));
  CHECK(all.out.find('\033') == std::string::npos);  // no color when not on a terminal
  // The done job: 2 listing + 4 detail pages, 5 items, 63.5 s (rounded half away from zero).
  const std::string done_row = rows.back();
  CHECK(contains(done_row, "completed"));
  CHECK(contains(done_row, "done"));
  CHECK(contains(done_row, "      6         5  2026-01-12 07:00:00"));
  CHECK(contains(done_row, "1m 04s"));
  CHECK(contains(done_row, "http://127.0.0.1:9/a?page=1"));
  // Columns are aligned: every row has its URL at the same offset.
  const size_t url_at = rows.front().find("http://");
  for (const auto& row : rows) {
    CHECK(row.find("http://") == url_at);
  }

  auto failed = inspect(dir, db, {"jobs", "--status", "failed"});
  REQUIRE(failed.exit_code == 0);
  rows = table_rows(failed.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].rfind(b.failed2, 0) == 0);
  CHECK(rows[1].rfind(b.failed, 0) == 0);

  auto other = inspect(dir, db, {"jobs", "--org", "other"});
  REQUIRE(other.exit_code == 0);
  rows = table_rows(other.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].rfind(b.timeout, 0) == 0);

  // created_at: done t0, failed t0+100, failed2 t0+200, timeout t0+300, cancelled t0+1300.
  auto window = inspect(dir, db,
                        {"jobs", "--since", at(k_t0 + 100 * k_second), "--until",
                         at(k_t0 + 300 * k_second), "--json"});
  REQUIRE(window.exit_code == 0);
  Json listed = Json::parse(window.out);
  REQUIRE(listed["total"] == 2);
  REQUIRE(listed["jobs"].size() == 2);
  CHECK(listed["jobs"][0]["job_id"] == b.failed2);
  CHECK(listed["jobs"][1]["job_id"] == b.failed);
  CHECK(listed["jobs"][1]["org"] == "acme");
  // Each element is the API's job object (plus "org").
  Json api = scrapekeep::http::job_view(stored_job(db, b.failed));
  api["org"] = "acme";
  CHECK(listed["jobs"][1].dump() == api.dump());

  auto limited = inspect(dir, db, {"jobs", "--limit", "3", "--json"});
  REQUIRE(limited.exit_code == 0);
  listed = Json::parse(limited.out);
  CHECK(listed["total"] == 7);
  CHECK(listed["limit"] == 3);
  CHECK(listed["jobs"].size() == 3);

  SECTION("--db may follow the subcommand") {
    auto r = run_binary(dir, {"inspect", "jobs", "--db", db, "--status", "pending"});
    REQUIRE(r.exit_code == 0);
    CHECK(table_rows(r.out).size() == 1);
  }
  SECTION("an unknown organization is a failure") {
    auto r = inspect(dir, db, {"jobs", "--org", "nobody"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: no organization named 'nobody'\n");
  }
}

// On a terminal (script(1) gives the command one), colour unless NO_COLOR
// is set to something (no-color.org: an empty NO_COLOR does not count).
TEST_CASE("inspect jobs on a terminal is in colour unless NO_COLOR holds a value", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  build_db(db);
  const auto on_terminal = [&](const std::string& no_color) {
    const std::string command = "env " + no_color + " TERM=xterm '" +
                                std::string(SCRAPEKEEP_BINARY) + "' inspect --db '" + db + "' jobs";
    RunResult r = run_program(dir.path().string(), {"script", "-qec", command, "/dev/null"});
    INFO(command << " stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(contains(r.out, "7 of 7 matching jobs"));
    return r.out.find("\033[") != std::string::npos;
  };
  CHECK(on_terminal("-u NO_COLOR"));
  CHECK(on_terminal("NO_COLOR="));
  CHECK_FALSE(on_terminal("NO_COLOR=1"));
}

TEST_CASE("inspect jobs lists jobs created in the same microsecond in the API's order",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("ties.db");
  std::vector<std::string> listed_by_api;
  {
    auto opened = JobStore::open(StoreConfig{.path = db});
    REQUIRE(opened);
    auto key = (*opened)->create_key("acme", k_t0);
    REQUIRE(key);
    for (int i = 0; i < 6; ++i) {
      REQUIRE((*opened)->create_job(key->info.org_id, "http://127.0.0.1:9/t", {}, k_t0));
    }
    JobFilter all;
    auto page = (*opened)->list_jobs(all);
    REQUIRE(page);
    for (const auto& j : page->jobs) {
      listed_by_api.push_back(j.job_id);
    }
  }
  auto r = inspect(dir, db, {"jobs", "--json"});
  REQUIRE(r.exit_code == 0);
  const Json parsed = Json::parse(r.out);
  std::vector<std::string> listed;
  for (const auto& j : parsed["jobs"]) {
    listed.push_back(j["job_id"].get<std::string>());
  }
  CHECK(listed == listed_by_api);
}

TEST_CASE("inspect progress --json is the API's data object", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("progress.db");
  const Built b = build_db(db);
  const Micros when = b.processing_claimed + 10 * k_second;

  for (const std::string& id :
       {b.done, b.failed, b.timeout, b.cancelled, b.processing, b.pending}) {
    auto r = inspect(dir, db, {"progress", id, "--at", at(when), "--json"});
    INFO(id << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    const Json expected = scrapekeep::http::progress_view(
        scrapekeep::core::derive_progress(stored_job(db, id), when));
    CHECK(r.out == expected.dump() + "\n");
  }

  SECTION("a span before year 0000 is read as that year's start, not wrapped around") {
    auto r = inspect(dir, db, {"progress", b.done, "--at", "999999999w"});
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, " at 0000-01-01T00:00:00.000000+00:00\n"));
  }

  SECTION("a job interrupted mid-way is shown as processing, with a note") {
    auto r = inspect(dir, db, {"progress", b.processing, "--at", at(when), "--json"});
    REQUIRE(r.exit_code == 0);
    Json p = Json::parse(r.out);
    CHECK(p["status"] == "processing");
    CHECK(p["running_time"] == 10.0);
    CHECK(p["total_properties_found"] == 4);
    CHECK(p["progress_percentage"] == 10.0);  // 1 of max_pages 10
    CHECK(contains(r.err, "its worker may be gone"));

    auto human = inspect(dir, db, {"progress", b.processing, "--at", at(when)});
    REQUIRE(human.exit_code == 0);
    CHECK(contains(human.out, "status"));
    CHECK(contains(human.out, "processing"));
    CHECK(contains(human.out, "running_time            10.0 s\n"));
    CHECK(contains(human.out, "note: this job was processing when the database was read"));
    CHECK(contains(human.out, "lease expired"));

    // While its lease runs, the job's worker is not said to be gone.
    const Micros lease_end = scrapekeep::core::SystemClock().now() + 3600 * k_second;
    {
      SQLite::Database raw(db, SQLite::OPEN_READWRITE);
      raw.exec("UPDATE jobs SET lease_expires_at = " + std::to_string(lease_end) +
               " WHERE job_id = '" + b.processing + "'");
    }
    auto held = inspect(dir, db, {"progress", b.processing});
    INFO(held.out);
    REQUIRE(held.exit_code == 0);
    CHECK(contains(held.out, "note: this job was processing when the database was read; its "
                             "worker holds it until " +
                                 at(lease_end).substr(0, 10)));
    CHECK_FALSE(contains(held.out, "may be gone"));
  }
  SECTION("an unknown job is a failure") {
    auto r = inspect(dir, db, {"progress", "job_000000000000000000000000"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "scrapekeep: job not found: job_000000000000000000000000\n");
  }
}

TEST_CASE("inspect job shows counters and a timeline summary", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("job.db");
  const Built b = build_db(db);

  auto r = inspect(dir, db, {"job", b.done});
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "Job " + b.done));
  CHECK(contains(r.out, "completed (done)"));
  CHECK(contains(r.out, "processing time  1m 04s"));
  CHECK(contains(r.out, "listing pages  2 scraped, 0 failed"));
  CHECK(contains(r.out, "detail pages   5 discovered, 4 scraped, 1 failed"));
  CHECK(contains(r.out, "counters match"));
  CHECK(contains(r.out, "page events              7 (2 listing, 5 detail)"));
  CHECK(contains(r.out, "7.0s  detail  http://127.0.0.1:9/a/detail/2"));
  CHECK(contains(r.out, "200: 6, 404: 1"));

  auto json = inspect(dir, db, {"job", b.processing, "--json"});
  REQUIRE(json.exit_code == 0);
  Json j = Json::parse(json.out);
  CHECK(j["status"] == "processing");
  CHECK(j["attempts"] == 1);
  CHECK(j["lease_expires_at"] == at(b.processing_claimed + k_lease));
  CHECK(j["claimed_by"].is_string());
  CHECK(j["timeline"]["events"] == 1);
  CHECK(j["timeline"]["items_found"] == 4);
  CHECK(contains(json.err, "its worker may be gone"));
}

TEST_CASE("inspect events prints the page-event timeline", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("events.db");
  const Built b = build_db(db);

  auto r = inspect(dir, db, {"events", b.done});
  REQUIRE(r.exit_code == 0);
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 1 + 7 + 1);
  CHECK(lines[0].rfind("   SEQ  STARTED (UTC)", 0) == 0);
  // Each event's number in its job, as the API's seq.
  CHECK(lines[1].rfind("     1  2026-01-12 07:00:01.000", 0) == 0);
  CHECK(lines[7].rfind("     7  ", 0) == 0);
  CHECK(contains(lines[1], "2026-01-12 07:00:01.000  listing      1      -   200  ok"));
  CHECK(contains(lines[1], "    3      1.5s  http://127.0.0.1:9/a?page=1"));
  CHECK(contains(lines[7], "detail       2      4   404  failed"));
  CHECK(contains(lines[7], "error: HTTP 404"));
  CHECK(contains(lines[8], "7 page events"));

  // --json has the API's shape and objects.
  auto json = inspect(dir, db, {"events", b.done, "--json", "--limit", "3"});
  REQUIRE(json.exit_code == 0);
  auto opened = JobStore::open(StoreConfig{.path = db, .read_only = true});
  REQUIRE(opened);
  auto page = (*opened)->list_events(b.done, 0, 3);
  REQUIRE(page);
  Json expected = {{"events", Json::array()}, {"next_after", page->next_after}};
  for (const auto& e : page->events) {
    expected["events"].push_back(scrapekeep::http::event_view(e));
  }
  CHECK(json.out == expected.dump() + "\n");

  auto none = inspect(dir, db, {"events", b.pending});
  REQUIRE(none.exit_code == 0);
  CHECK(none.out == "no page events\n");
}

TEST_CASE("inspect and keys list print stored control characters and bytes that are not UTF-8 "
          "escaped",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("hostile.db");
  const Built b = build_db(db);
  // What a scraped site's headers or a damaged file may have put in the rows.
  const std::string hostile = "zz\x1b[31mRED\x07\xff\xc2\x9b" "2J\xe2\x80\xae";
  const std::string shown = "zz\\x1B[31mRED\\x07\\xFF\\u009B2J\\u202E";
  {
    auto opened = JobStore::open(StoreConfig{.path = db});
    REQUIRE(opened);
    SQLite::Database& raw = (*opened)->database();
    SQLite::Statement job(raw,
                          "UPDATE jobs SET error_message = ?1, url = 'http://x/' || ?1 WHERE "
                          "job_id = ?2");
    job.bind(1, hostile);
    job.bind(2, b.failed);
    REQUIRE(job.exec() == 1);
    SQLite::Statement event(raw, "UPDATE page_events SET error = ?1, url = 'http://x/' || ?1 "
                                 "WHERE job_id = ?2");
    event.bind(1, hostile);
    event.bind(2, b.failed);
    REQUIRE(event.exec() >= 1);
    SQLite::Statement org(raw, "UPDATE organizations SET name = ?1 WHERE name = 'other'");
    org.bind(1, "other" + hostile);
    REQUIRE(org.exec() == 1);
  }
  const std::vector<std::vector<std::string>> commands = {
      {"jobs"}, {"job", b.failed}, {"progress", b.failed}, {"events", b.failed}, {"stats"}};
  for (const auto& args : commands) {
    auto r = inspect(dir, db, args);
    INFO(args.front() << ":\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, shown));  // progress too: not its JSON view's U+FFFD
    CHECK_FALSE(contains(r.out, "\x1b"));
    CHECK_FALSE(contains(r.out, "\xff"));
    CHECK_FALSE(contains(r.out, "\x07"));
  }
  auto keys = run_binary(dir, {"keys", "list", "--db", db});
  INFO(keys.out << keys.err);
  CHECK(keys.exit_code == 0);
  CHECK(contains(keys.out, "other" + shown));
  CHECK_FALSE(contains(keys.out, "\x1b"));
  // What is typed on the command line, as the errors quote it, too: one line
  // each, playing nothing on the terminal.
  const std::string typed = "no\nsuch\x1b[31m.db";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"inspect", "--db", dir.file(typed), "jobs"},
        std::vector<std::string>{"inspect", "--db", db, "job", "job_\x1b[2J\n2"},
        std::vector<std::string>{"inspect", "--db", db, "jobs", "--org", "x\x1b[2Jy"},
        std::vector<std::string>{"serve", "--listen", "a\nb"}}) {
    auto r = run_binary(dir, args);
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(contains(r.err, "\x1b"));
  }
  CHECK(contains(run_binary(dir, {"inspect", "--db", dir.file(typed), "jobs"}).err,
                 "no\\x0Asuch\\x1B[31m.db"));
  // --json keeps the stored text, escaped as JSON escapes it.
  auto json = inspect(dir, db, {"job", b.failed, "--json"});
  REQUIRE(json.exit_code == 0);
  CHECK_FALSE(contains(json.out, "\x1b"));
  CHECK(contains(Json::parse(json.out)["error_message"].get<std::string>(), "zz\x1b[31mRED"));
}

// Overwrites with garbage every leaf page of `table` in the database `db`
// (checkpointed first): its rows cannot be read, the rest of the file can.
void damage_leaves(const std::string& db, const std::string& table) {
  std::vector<std::int64_t> leaves;
  {
    auto opened = JobStore::open(StoreConfig{.path = db});
    REQUIRE(opened);
    REQUIRE((*opened)->checkpoint());
    SQLite::Statement q((*opened)->database(),
                        "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'");
    q.bind(1, table);
    while (q.executeStep()) {
      leaves.push_back(q.getColumn(0).getInt64());
    }
  }
  REQUIRE_FALSE(leaves.empty());
  std::fstream file(db, std::ios::in | std::ios::out | std::ios::binary);
  const std::string garbage(4096, '\x5a');
  for (const std::int64_t page : leaves) {
    file.seekp((page - 1) * 4096);
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
}

TEST_CASE("inspect events --json on a damaged file prints no document that parses", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("events.db");
  const Built b = build_db(db);
  damage_leaves(db, "page_events");  // the jobs are intact
  auto r = inspect(dir, db, {"events", b.done, "--json"});
  CHECK(r.exit_code == 1);
  CHECK(lines_of(r.err).size() == 1);
  // What was streamed before the failure is not a document a script would take.
  CHECK_FALSE(Json::accept(r.out));
}

TEST_CASE("inspect jobs --json on a damaged file prints no document that parses", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  build_db(db);
  damage_leaves(db, "jobs");  // the indexes that count them are intact
  auto r = inspect(dir, db, {"jobs", "--json"});
  CHECK(r.exit_code == 1);
  CHECK(lines_of(r.err).size() == 1);
  // Not {"jobs":[],"total":7,...}: what was read before the failure is no
  // document a script would take for the list.
  CHECK_FALSE(Json::accept(r.out));
}

TEST_CASE("a damaged page is one finding per problem for check and fails backup with its copy kept",
          "[inspect][backup]") {
  TempDir dir;
  const std::string db = dir.file("damaged.db");
  build_db(db);
  std::int64_t index_page = 0;
  {
    auto opened = JobStore::open(StoreConfig{.path = db});
    REQUIRE(opened);
    REQUIRE((*opened)->checkpoint());
    index_page = (*opened)->database().execAndGet(
        "SELECT rootpage FROM sqlite_master WHERE name = 'jobs_org_created'");
  }
  REQUIRE(index_page > 1);
  {
    // An index page's header says a table leaf, with a first free block past
    // the page's end: SQLite reads on, and its check finds the page.
    std::fstream file(db, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp((index_page - 1) * 4096);
    const std::string garbage = std::string("\x0d\xff\xff\x00\x09", 5) + std::string(200, '\xee');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  const std::string page = "Page " + std::to_string(index_page) + ": ";

  // A query that meets the page: the file opened as a scrapekeep database.
  auto jobs = inspect(dir, db, {"jobs"});
  CHECK(jobs.exit_code == 1);
  CHECK(jobs.err == "scrapekeep: the database file is damaged: SQLite cannot read part of it\n");

  // Each problem its own line: SQLite's row holds a header line and then them.
  auto check = inspect(dir, db, {"check"});
  CHECK(check.exit_code == 1);
  INFO(check.out << check.err);
  const auto findings = lines_of(check.out);
  REQUIRE_FALSE(findings.empty());
  CHECK(findings.front().rfind("integrity: " + page, 0) == 0);
  for (const auto& line : findings) {
    CHECK_FALSE(contains(line, "***"));
    CHECK_FALSE(contains(line, "\\x0A"));
  }

  // The copy has the same damage: kept, but the command says so and fails.
  const std::string copy = dir.file("copy.db");
  auto backup = run_binary(dir, {"backup", "--db", db, "--to", copy});
  CHECK(backup.exit_code == 1);
  CHECK(backup.out.empty());
  CHECK(backup.err.rfind("scrapekeep: backup written to " + copy +
                             ", but the database is damaged and so is the copy: " + page,
                         0) == 0);
  CHECK(lines_of(backup.err).size() == 1);
  CHECK(std::filesystem::exists(copy));
  auto copied = inspect(dir, copy, {"check"});
  CHECK(copied.exit_code == 1);
  CHECK(lines_of(copied.out) == findings);
}

TEST_CASE("inspect stats counts, sums and percentiles", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("stats.db");
  build_db(db);

  auto r = inspect(dir, db, {"stats", "--json", "--per-day"});
  REQUIRE(r.exit_code == 0);
  Json s = Json::parse(r.out);
  CHECK(s["jobs"] == 7);
  std::map<std::string, std::int64_t> by;
  for (const auto& c : s["by_status"]) {
    by[c["status"].get<std::string>() + "/" +
       (c["completion_reason"].is_null() ? "-" : c["completion_reason"].get<std::string>())] =
        c["jobs"];
  }
  CHECK(by == std::map<std::string, std::int64_t>{{"pending/-", 1},
                                                  {"processing/-", 1},
                                                  {"completed/done", 1},
                                                  {"completed/timeout", 1},
                                                  {"failed/error", 2},
                                                  {"cancelled/cancelled", 1}});
  CHECK(s["totals"]["listing_pages_scraped"] == 4);
  CHECK(s["totals"]["listing_pages_failed"] == 2);
  CHECK(s["totals"]["detail_pages_discovered"] == 5);
  CHECK(s["totals"]["detail_pages_scraped"] == 4);
  CHECK(s["totals"]["detail_pages_failed"] == 1);
  CHECK(s["totals"]["items_found"] == 19);
  // Durations 2, 2, 63.5 and 300 s (the cancelled job never started).
  CHECK(s["processing_time"]["samples"] == 4);
  CHECK(s["processing_time"]["p50"] == 2.0);
  CHECK(s["processing_time"]["p90"] == 300.0);
  CHECK(s["processing_time"]["p99"] == 300.0);
  CHECK(s["processing_time"]["max"] == 300.0);
  REQUIRE(s["top_errors"].size() == 1);
  CHECK(s["top_errors"][0]["message"] == "<url>: HTTP 503 after 3 attempts");
  CHECK(s["top_errors"][0]["jobs"] == 2);
  REQUIRE(s["per_day"].size() == 1);
  CHECK(s["per_day"][0]["day"] == "2026-01-12");
  CHECK(s["per_day"][0]["created"] == 7);
  CHECK(s["per_day"][0]["open"] == 2);

  auto human = inspect(dir, db, {"stats"});
  REQUIRE(human.exit_code == 0);
  CHECK(contains(human.out, "failed      error         2  28.6%"));
  CHECK(contains(human.out, "p50 2.0s   p90 5m 00s   p99 5m 00s   max 5m 00s"));
  CHECK(contains(human.out, "   2  <url>: HTTP 503 after 3 attempts"));
}

TEST_CASE("inspect rounds durations half away from zero at the precision it shows", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("durations.db");
  // Processing time -> what inspect shows.
  const std::vector<std::pair<Micros, std::string>> k_shown = {
      {2'400, "2ms"},           {2'600, "3ms"},
      {999'600, "1.0s"},        {5'480'000, "5.5s"},
      {59'960'000, "1m 00s"},   {63'500'000, "1m 04s"},
      {3'599'500'000, "1h 00m 00s"}, {86'399'600'000, "1d 00h 00m"}};
  std::vector<std::string> ids;
  {
    AcmeStore acme = open_acme(db);
    JobStore& store = *acme.store;
    Micros t = k_t0;
    for (const auto& [took, shown] : k_shown) {
      auto job =
          store.create_job(acme.org_id, "http://127.0.0.1:9/", options(false, 1, 0), t);
      REQUIRE(job);
      ids.push_back(job->job_id);
      Claim c = claim(store, t);
      REQUIRE(store.finish(c, CompletionReason::done, std::nullopt, t + took));
      t += 100'000 * k_second;
    }
  }

  auto listed = inspect(dir, db, {"jobs"});
  REQUIRE(listed.exit_code == 0);
  const auto rows = table_rows(listed.out);
  REQUIRE(rows.size() == k_shown.size());
  for (size_t i = 0; i < k_shown.size(); ++i) {
    // Newest first; the duration column is right-aligned before the URL.
    const std::string& row = rows[k_shown.size() - 1 - i];
    INFO(row);
    CHECK(row.rfind(ids[i], 0) == 0);
    CHECK(contains(row, " " + k_shown[i].second + "  http://127.0.0.1:9/"));
  }

  auto job = inspect(dir, db, {"job", ids[3]});
  REQUIRE(job.exit_code == 0);
  CHECK(contains(job.out, "processing time  5.5s\n"));

  // Percentiles are exact at 10 ms: p50 is the 4th of 8, 5.48 s.
  auto stats = inspect(dir, db, {"stats"});
  REQUIRE(stats.exit_code == 0);
  CHECK(contains(stats.out, "p50 5.5s   p90 1d 00h 00m   p99 1d 00h 00m   max 1d 00h 00m\n"));
}

TEST_CASE("inspect export streams jobs and events as jsonl and csv", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("export.db");
  const Built b = build_db(db);

  auto jsonl = inspect(dir, db, {"export", "--format", "jsonl"});
  REQUIRE(jsonl.exit_code == 0);
  auto lines = lines_of(jsonl.out);
  REQUIRE(lines.size() == 7);
  // Storage order: the order jobs were created.
  CHECK(Json::parse(lines[0])["job_id"] == b.done);
  CHECK(Json::parse(lines[6])["job_id"] == b.pending);
  Json api = scrapekeep::http::job_view(stored_job(db, b.done));
  api["org"] = "acme";
  CHECK(lines[0] == api.dump());

  // --json is --format jsonl, alone or beside it.
  for (const auto& args : {std::vector<std::string>{"export", "--json"},
                           std::vector<std::string>{"export", "--format", "jsonl", "--json"}}) {
    auto same = inspect(dir, db, args);
    CHECK(same.exit_code == 0);
    CHECK(same.out == jsonl.out);
  }
  auto both = inspect(dir, db, {"export", "--json", "--format", "csv"});
  CHECK(both.exit_code == 2);
  CHECK(both.out.empty());
  CHECK(both.err ==
        "scrapekeep: --json: means --format jsonl, so it cannot go with --format csv (see "
        "scrapekeep inspect export --help)\n");

  auto csv = inspect(dir, db, {"export", "--format", "csv", "--status", "failed"});
  REQUIRE(csv.exit_code == 0);
  lines = lines_of(csv.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("job_id,org,status,completion_reason,url,", 0) == 0);
  CHECK(lines[1].rfind(b.failed + ",acme,failed,error,http://127.0.0.1:9/b0?page=1,", 0) == 0);
  CHECK(contains(lines[1],
                 ",2.00,0,1,0,0,0,0,1,300,100,false,10,0,"
                 "http://127.0.0.1:9/b0?page=1: HTTP 503 after 3 attempts"));

  auto events = inspect(dir, db, {"export", "--format", "jsonl", "--events"});
  REQUIRE(events.exit_code == 0);
  lines = lines_of(events.out);
  REQUIRE(static_cast<std::int64_t>(lines.size()) == b.events);
  Json first = Json::parse(lines[0]);
  CHECK(first["job_id"] == b.done);
  CHECK(first["kind"] == "listing");
  CHECK(first["detail_links"] == 3);

  auto events_csv =
      inspect(dir, db, {"export", "--format", "csv", "--events", "--org", "other", "--limit", "5"});
  REQUIRE(events_csv.exit_code == 0);
  lines = lines_of(events_csv.out);
  REQUIRE(lines.size() == 2);
  CHECK(contains(lines[1],
                 "," + b.timeout + ",listing,1,,http://127.0.0.1:9/c?page=1,200,ok,10,0,,"));

  auto limited = inspect(dir, db, {"export", "--format", "csv", "--limit", "2"});
  REQUIRE(limited.exit_code == 0);
  CHECK(lines_of(limited.out).size() == 3);
}

TEST_CASE("inspect export csv quotes a stored job id that holds a comma a quote or a newline",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("odd_id.db");
  const Built b = build_db(db);
  // A damaged or hand-edited row's id (inspect check reports it as a value).
  const std::string odd = "job_a,b\"c\nd";
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    for (const char* table : {"jobs", "page_events"}) {
      SQLite::Statement q(raw, std::string("UPDATE ") + table + " SET job_id = ? WHERE job_id = ?");
      q.bind(1, odd);
      q.bind(2, b.failed);
      REQUIRE(q.exec() == 1);
    }
  }
  const std::string quoted = "\"job_a,b\"\"c\nd\"";
  auto jobs = inspect(dir, db, {"export", "--format", "csv", "--status", "failed"});
  REQUIRE(jobs.exit_code == 0);
  INFO(jobs.out);
  CHECK(contains(jobs.out, "\n" + quoted + ",acme,failed,error,http://127.0.0.1:9/b0?page=1,"));
  auto events = inspect(dir, db, {"export", "--format", "csv", "--events", "--status", "failed"});
  REQUIRE(events.exit_code == 0);
  INFO(events.out);
  CHECK(contains(events.out, "\n1," + quoted + ",listing,1,,http://127.0.0.1:9/b0?page=1,503,"));
}

TEST_CASE("inspect export shows where a redirect took a listing page, on a database older "
          "than migration 0005 none", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("moved.db");
  std::string id;
  {
    AcmeStore acme = open_acme(db);
    JobStore& store = *acme.store;
    auto job = store.create_job(acme.org_id, "http://127.0.0.1:9/m?page=1",
                                options(true, 5, 0), k_t0);
    REQUIRE(job);
    id = job->job_id;
    Claim c = claim(store, k_t0);
    REQUIRE(store.record_listing_page(
        c,
        listing(1, "http://127.0.0.1:9/m?page=1", k_t0, k_second, items(1, "", false),
                "http://127.0.0.1:9/m?page=2"),
        k_t0));
    ListingPageRecord moved = listing(2, "http://127.0.0.1:9/m?page=2", k_t0 + k_second,
                                      k_second, items(1, "", false), std::nullopt);
    moved.final_url = "http://127.0.0.1:9/moved?page=2";
    REQUIRE(store.record_listing_page(c, moved, k_t0));
  }
  auto final_urls = [&](const std::vector<std::string>& args) {
    auto r = inspect(dir, db, args);
    REQUIRE(r.exit_code == 0);
    std::vector<Json> urls;
    for (const std::string& line : lines_of(r.out)) {
      urls.push_back(Json::parse(line)["final_url"]);
    }
    return urls;
  };
  CHECK(final_urls({"export", "--format", "jsonl", "--events"}) ==
        std::vector<Json>{nullptr, "http://127.0.0.1:9/moved?page=2"});
  // The CSV too, in its last two columns: next_url, final_url.
  {
    auto csv = inspect(dir, db, {"export", "--format", "csv", "--events"});
    REQUIRE(csv.exit_code == 0);
    const auto rows = lines_of(csv.out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].substr(rows[0].size() - 28) == ",duration,next_url,final_url");
    CHECK(rows[1].substr(rows[1].size() - 29) == ",http://127.0.0.1:9/m?page=2,");
    CHECK(rows[2].substr(rows[2].size() - 33) == ",,http://127.0.0.1:9/moved?page=2");
  }
  // events --json keeps the API's shape, whose fields API.md fixes.
  auto events = inspect(dir, db, {"events", id, "--json"});
  REQUIRE(events.exit_code == 0);
  CHECK(contains(events.out, "\"url\":\"http://127.0.0.1:9/m?page=2\""));
  CHECK_FALSE(contains(events.out, "final_url"));
  {
    // As a binary of schema version 4 left it: inspect reads it as it is.
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    as_schema_version(raw, 4);
  }
  CHECK(final_urls({"export", "--format", "jsonl", "--events"}) ==
        std::vector<Json>{nullptr, nullptr});
  auto old_events = inspect(dir, db, {"events", id, "--json"});
  CHECK(old_events.exit_code == 0);
  CHECK(contains(old_events.out, "\"url\":\"http://127.0.0.1:9/m?page=2\""));
  // Nor is anything being purged before migration 0006.
  auto check = inspect(dir, db, {"check", "--json"});
  CHECK(check.exit_code == 0);
  CHECK(Json::parse(check.out)["purging"] == 0);
}

TEST_CASE("inspect numbers each job's events from 1, on a database older than migration 0007 "
          "too", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("numbered.db");
  std::vector<std::string> ids;
  {
    AcmeStore acme = open_acme(db);
    JobStore& store = *acme.store;
    std::vector<Claim> claims;
    for (int j = 0; j < 2; ++j) {
      auto job = store.create_job(acme.org_id, "http://127.0.0.1:9/n?page=1",
                                  options(true, 5, 0), k_t0);
      REQUIRE(job);
      ids.push_back(job->job_id);
      claims.push_back(claim(store, k_t0));
    }
    // Interleaved: page 1 of each, then page 2 of the first, the slowest.
    for (const Claim& c : claims) {
      REQUIRE(store.record_listing_page(
          c,
          listing(1, "http://127.0.0.1:9/n?page=1", k_t0, k_second, items(1, "", false),
                  "http://127.0.0.1:9/n?page=2"),
          k_t0));
    }
    REQUIRE(store.record_listing_page(
        claims[0],
        listing(2, "http://127.0.0.1:9/n?page=2", k_t0, 5 * k_second, items(1, "", false),
                "http://127.0.0.1:9/n?page=3"),
        k_t0));
  }
  // (job, seq) of every event, as `export --events` and `events --json` show them.
  const auto exported = [&] {
    auto r = inspect(dir, db, {"export", "--format", "jsonl", "--events"});
    REQUIRE(r.exit_code == 0);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const std::string& line : lines_of(r.out)) {
      const Json e = Json::parse(line);
      out.emplace_back(e["job_id"].get<std::string>(), e["seq"].get<std::int64_t>());
    }
    return out;
  };
  const auto listed = [&](const std::string& id) {
    auto r = inspect(dir, db, {"events", id, "--json"});
    REQUIRE(r.exit_code == 0);
    const Json j = Json::parse(r.out);
    std::vector<std::int64_t> out;
    for (const Json& e : j["events"]) {
      out.push_back(e["seq"].get<std::int64_t>());
    }
    out.push_back(j["next_after"].get<std::int64_t>());
    return out;
  };
  const auto slowest = [&] {
    auto r = inspect(dir, db, {"job", ids[0], "--json"});
    REQUIRE(r.exit_code == 0);
    return Json::parse(r.out)["timeline"]["slowest"]["seq"].get<std::int64_t>();
  };
  const std::vector<std::pair<std::string, std::int64_t>> want = {
      {ids[0], 1}, {ids[1], 1}, {ids[0], 2}};
  for (const int version : {7, 6}) {
    INFO("schema version " << version);
    if (version == 6) {  // one sequence for the whole database, as version 6 stored it
      SQLite::Database raw(db, SQLite::OPEN_READWRITE);
      as_schema_version(raw, 6);
      CHECK(raw.execAndGet("SELECT MAX(seq) FROM page_events").getInt() == 3);
    }
    CHECK(exported() == want);
    CHECK(listed(ids[0]) == std::vector<std::int64_t>{1, 2, 2});  // seqs, then next_after
    CHECK(listed(ids[1]) == std::vector<std::int64_t>{1, 1});
    CHECK(slowest() == 2);
  }
}

TEST_CASE("inspect check accepts a sound database and reports each finding", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("check.db");
  const Built b = build_db(db);

  auto ok = inspect(dir, db, {"check"});
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "ok: 7 jobs and " + std::to_string(b.events) + " page events checked"));
  CHECK(contains(ok.err, "1 processing jobs have an expired lease"));

  {  // Tamper: a counter, an orphan event, a processing job without its lease.
    auto opened = JobStore::open(StoreConfig{.path = db});
    REQUIRE(opened);
    SQLite::Database& raw = (*opened)->database();
    raw.exec("UPDATE jobs SET items_found = items_found + 1 WHERE job_id = '" + b.done + "'");
    raw.exec("PRAGMA foreign_keys = OFF");
    raw.exec(
        "INSERT INTO page_events (job_id, kind, page_number, url, outcome, started_at, "
        "finished_at) VALUES ('job_ffffffffffffffffffffffff', 'listing', 1, 'http://x', 'ok', 0, "
        "0)");
    raw.exec("UPDATE jobs SET claim_token = NULL WHERE job_id = '" + b.processing + "'");
    // A result item renumbered: the results pages would skip it.
    raw.exec("UPDATE result_items SET item_index = 108 WHERE job_id = '" + b.timeout +
             "' AND item_index = 9");
  }
  auto bad = inspect(dir, db, {"check"});
  CHECK(bad.exit_code == 1);
  auto lines = lines_of(bad.out);
  INFO(bad.out);
  REQUIRE(lines.size() == 5);
  CHECK(std::count(lines.begin(), lines.end(),
                   "results: " + b.done +
                       ": 5 result items are stored (numbered 0 to 4) where items_found says 6, "
                       "numbered from 0") == 1);
  CHECK(std::count(lines.begin(), lines.end(),
                   "results: " + b.timeout +
                       ": 10 result items are stored (numbered 0 to 108) where items_found says "
                       "10, numbered from 0") == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l == "counters: " + b.done +
                          ": counters differ from page events: items_found is 6 but its events "
                          "say 5";
        }) == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
          return l ==
                 "orphan_events: job_ffffffffffffffffffffffff: 1 page events belong to a "
                 "job that does not exist";
        }) == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l ==
                 "lease: " + b.processing + ": processing without a lease: claim_token not set";
        }) == 1);
  CHECK(contains(bad.err, "scrapekeep: check found 5 problems"));

  auto json = inspect(dir, db, {"check", "--json"});
  CHECK(json.exit_code == 1);
  Json j = Json::parse(json.out);
  CHECK(j["ok"] == false);
  CHECK(j["findings"].size() == 5);
}

TEST_CASE("inspect shows nothing of a deleted job whose rows are still being purged",
          "[inspect][purge]") {
  TempDir dir;
  const std::string db = dir.file("purging.db");
  const Built b = build_db(db);
  {
    // `done` has 7 events and 5 items: more than a batch of 1, so its rows stay
    // for the purge, which nothing runs here.
    auto opened = JobStore::open(StoreConfig{.path = db, .delete_batch_rows = 1});
    REQUIRE(opened);
    REQUIRE((*opened)->delete_job(b.done, std::nullopt));
    SQLite::Statement left((*opened)->database(),
                           "SELECT COUNT(*) FROM result_items WHERE job_id = ?");
    left.bind(1, b.done);
    REQUIRE(left.executeStep());
    REQUIRE(left.getColumn(0).getInt64() == 5);
  }

  auto jobs = inspect(dir, db, {"jobs"});
  REQUIRE(jobs.exit_code == 0);
  CHECK(table_rows(jobs.out).size() == 6);
  CHECK_FALSE(contains(jobs.out, b.done));
  for (const char* command : {"job", "events", "progress"}) {
    auto one = inspect(dir, db, {command, b.done});
    INFO(command);
    CHECK(one.exit_code == 1);
    CHECK(contains(one.err, "not found"));
  }
  auto events = inspect(dir, db, {"export", "--format", "jsonl", "--events"});
  REQUIRE(events.exit_code == 0);
  CHECK(static_cast<std::int64_t>(lines_of(events.out).size()) == b.events - 7);
  CHECK_FALSE(contains(events.out, b.done));

  auto check = inspect(dir, db, {"check"});
  CHECK(check.exit_code == 0);
  CHECK(contains(check.out,
                 "ok: 6 jobs and " + std::to_string(b.events - 7) + " page events checked"));
  CHECK(contains(check.err, "1 deleted jobs still have page events or result items"));
  auto json = inspect(dir, db, {"check", "--json"});
  CHECK(json.exit_code == 0);
  Json j = Json::parse(json.out);
  CHECK(j["ok"] == true);
  CHECK(j["findings"].empty());
  CHECK(j["purging"] == 1);
}

TEST_CASE("inspect reads a copy without its -wal, and a live file under a writer's lock",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("live.db");
  const Built b = build_db(db);
  const std::string copy = dir.file("copy.db");

  auto opened = JobStore::open(StoreConfig{.path = db});
  REQUIRE(opened);
  JobStore& store = **opened;
  REQUIRE(store.checkpoint());
  // After the checkpoint the pending job is taken; that change lives only in the WAL.
  claim(store, k_t0 + 5000 * k_second);
  std::filesystem::copy_file(db, copy);
  REQUIRE_FALSE(std::filesystem::exists(copy + "-wal"));

  SECTION("the copy shows the state at the checkpoint") {
    auto r = inspect(dir, copy, {"jobs", "--status", "pending", "--json"});
    REQUIRE(r.exit_code == 0);
    Json listed = Json::parse(r.out);
    REQUIRE(listed["jobs"].size() == 1);
    CHECK(listed["jobs"][0]["job_id"] == b.pending);
    CHECK(inspect(dir, copy, {"check"}).exit_code == 0);
  }
  SECTION("the live file shows the change, while the writer holds its write lock") {
    store.database().exec("BEGIN IMMEDIATE");
    store.database().exec("UPDATE jobs SET url = 'http://changed' WHERE job_id = '" + b.done + "'");
    auto r = inspect(dir, db, {"jobs", "--status", "processing", "--json"});
    store.database().exec("ROLLBACK");
    REQUIRE(r.exit_code == 0);
    Json listed = Json::parse(r.out);
    CHECK(listed["total"] == 2);
    auto done = inspect(dir, db, {"progress", b.done, "--json"});
    REQUIRE(done.exit_code == 0);
    CHECK(Json::parse(done.out)["url"] == "http://127.0.0.1:9/a?page=1");
  }
  SECTION("a missing file is an error and is not created") {
    const std::string missing = dir.file("missing.db");
    auto r = run_binary(dir, {"inspect", "--db", missing, "jobs"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: database file does not exist: " + missing + "\n");
    CHECK_FALSE(std::filesystem::exists(missing));
    CHECK_FALSE(std::filesystem::exists(missing + "-wal"));
  }
}

TEST_CASE("inspect creates nothing beside a database at rest", "[inspect]") {
  TempDir dir;
  const auto folder = dir.path() / "dbs";
  std::filesystem::create_directory(folder);
  const std::string live = (folder / "live.db").string();
  const Built b = build_db(live);
  // The folder's files with their bytes.
  auto listing = [&] {
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      files[entry.path().filename().string()] = file_hash(entry.path().string());
    }
    return files;
  };
  const std::vector<std::vector<std::string>> commands = {
      {"jobs"},
      {"jobs", "--json"},
      {"job", b.done},
      {"job", b.done, "--json"},
      {"progress", b.processing},
      {"progress", b.done, "--json"},
      {"events", b.done},
      {"events", b.done, "--json"},
      {"stats", "--per-day"},
      {"stats", "--json"},
      {"export", "--json"},
      {"export", "--format", "csv", "--events"},
      {"check"},
      {"check", "--json"},
  };
  auto inspect_all = [&](const std::string& db) {
    for (const auto& args : commands) {
      auto r = inspect(dir, db, args);
      CHECK(r.exit_code == 0);
      CHECK_FALSE(contains(r.err, "immutable"));
    }
  };

  SECTION("a backup taken while the database is open") {
    auto opened = JobStore::open(StoreConfig{.path = live});
    REQUIRE(opened);
    REQUIRE(std::filesystem::exists(live + "-wal"));
    const std::string copy = (folder / "copy.db").string();
    auto backup = run_binary(dir, {"backup", "--db", live, "--to", copy});
    REQUIRE(backup.exit_code == 0);
    opened->reset();
    REQUIRE_FALSE(std::filesystem::exists(live + "-wal"));
    const auto before = listing();
    REQUIRE(before.size() == 2);
    inspect_all(copy);
    CHECK(listing() == before);
  }
  SECTION("a database whose last connection was closed") {
    REQUIRE_FALSE(std::filesystem::exists(live + "-wal"));
    const auto before = listing();
    REQUIRE(before.size() == 1);
    inspect_all(live);
    CHECK(listing() == before);
  }
  SECTION("beside an empty -journal") {
    for (const std::string& journal : {std::string()}) {
      {
        std::ofstream out(live + "-journal", std::ios::binary | std::ios::trunc);
        out << journal;
      }
      const auto before = listing();
      REQUIRE(before.size() == 2);
      inspect_all(live);
      CHECK(listing() == before);
      CHECK(run_binary(dir, {"keys", "list", "--db", live}).exit_code == 0);
      CHECK(listing() == before);
    }
  }
}

// Runs inspect on `db` (in `ro`) as in_read_only_dir does.
std::optional<RunResult> inspect_in_read_only_dir(const TempDir& dir, const std::filesystem::path& ro,
                                                  const std::string& db,
                                                  const std::vector<std::string>& args) {
  return in_read_only_dir(
      ro, [&](const std::vector<std::string>& prefix) { return inspect(dir, db, args, prefix); });
}

TEST_CASE("inspect reads a database in a read-only directory", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("source.db");
  build_db(db);
  const auto ro = dir.path() / "ro";
  std::filesystem::create_directory(ro);
  const std::string copy = (ro / "copy.db").string();
  std::filesystem::copy_file(db, copy);
  ::chmod(copy.c_str(), 0444);
  // With a -wal beside it (empty, as after a checkpoint) the file may be in
  // use, so it is not read as a file at rest: SQLite would need a -shm.
  std::ofstream(copy + "-wal").close();

  auto r = inspect_in_read_only_dir(dir, ro, copy, {"stats", "--json"});
  if (!r) {
    return;
  }
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  CHECK(Json::parse(r->out)["jobs"] == 7);
  CHECK(contains(r->err, "immutable snapshot"));
  CHECK(std::filesystem::file_size(copy + "-wal") == 0);
  CHECK_FALSE(std::filesystem::exists(copy + "-shm"));
}

TEST_CASE("inspect says why a read-only directory's database whose tables are all in its -wal "
          "cannot be read",
          "[inspect]") {
  TempDir dir;
  const auto ro = dir.path() / "ro";
  std::filesystem::create_directory(ro);
  const std::string source = dir.file("live.db");
  const std::string copy = (ro / "copy.db").string();
  {
    // A live database never checkpointed: its file holds no table yet, its
    // -wal all of them. Copied while open, as a copy of a running server's.
    SQLite::Database live(source, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    live.exec("PRAGMA journal_mode = WAL");
    live.exec("PRAGMA wal_autocheckpoint = 0");
    live.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)");
    live.exec("INSERT INTO schema_migrations VALUES (1, 0)");
    std::filesystem::copy_file(source, copy);
    std::filesystem::copy_file(source + "-wal", copy + "-wal");
  }
  REQUIRE(std::filesystem::file_size(copy + "-wal") > 0);

  auto r = inspect_in_read_only_dir(dir, ro, copy, {"jobs"});
  if (!r) {
    return;
  }
  CHECK(r->exit_code == 1);
  CHECK(lines_of(r->err).size() == 1);
  CHECK(contains(r->err, "everything in this database is still in its -wal file"));
  CHECK(contains(r->err, "copy the database and its -wal into a folder that can be written"));
  CHECK_FALSE(std::filesystem::exists(copy + "-shm"));
}

TEST_CASE("backup refuses a read-only directory's database whose latest transactions are in its "
          "-wal, instead of copying without them",
          "[cli][backup]") {
  TempDir dir;
  const auto ro = dir.path() / "ro";
  const auto out = dir.path() / "out";
  std::filesystem::create_directory(ro);
  std::filesystem::create_directory(out);
  ::chmod(out.c_str(), 0777);
  const std::string source = dir.file("live.db");
  const std::string copy = (ro / "copy.db").string();
  build_db(source);
  {
    // A live database with a write its file does not have yet, copied
    // while open (no -shm), as a running server's.
    SQLite::Database live(source, SQLite::OPEN_READWRITE);
    live.exec("PRAGMA wal_autocheckpoint = 0");
    live.exec("INSERT INTO organizations (name, created_at) VALUES ('late', 0)");
    std::filesystem::copy_file(source, copy);
    std::filesystem::copy_file(source + "-wal", copy + "-wal");
  }
  REQUIRE(std::filesystem::file_size(copy + "-wal") > 0);
  const std::string target = (out / "b.db").string();
  auto r = in_read_only_dir(ro, [&](const std::vector<std::string>& prefix) {
    return run_binary(dir, {"backup", "--db", copy, "--to", target}, prefix);
  });
  if (!r) {
    return;
  }
  const std::string unread = "the latest transactions, in " + copy + "-wal (" +
                             std::to_string(std::filesystem::file_size(copy + "-wal")) +
                             " bytes), cannot be read in a folder that cannot be written: copy "
                             "the database and its -wal into a folder that can be, and ";
  CHECK(r->exit_code == 1);
  CHECK(r->out.empty());
  CHECK(r->err == "scrapekeep: backup failed: " + unread + "back up the copy\n");
  CHECK_FALSE(std::filesystem::exists(target));

  // Nor does check say ok of the part it could read.
  auto checked = in_read_only_dir(ro, [&](const std::vector<std::string>& prefix) {
    return run_binary(dir, {"inspect", "--db", copy, "check"}, prefix);
  });
  REQUIRE(checked);
  CHECK(checked->exit_code == 1);
  CHECK(checked->out.empty());
  CHECK(lines_of(checked->err).back() == "scrapekeep: check failed: " + unread + "check the copy");
}

TEST_CASE("inspect refuses files that are not scrapekeep databases, and bad usage", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("db.db");
  const Built b = build_db(db);

  SECTION("a text file") {
    const std::string text = dir.file("notes.txt");
    std::ofstream(text) << "hello, this is not a database\n";
    auto r = inspect(dir, text, {"jobs"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("scrapekeep: ", 0) == 0);
    CHECK(lines_of(r.err).size() == 1);
  }
  SECTION("a damaged scrapekeep database, and one with no tables yet") {
    {
      auto opened = JobStore::open(StoreConfig{.path = db});
      REQUIRE(opened);
      REQUIRE((*opened)->checkpoint());
    }
    std::ifstream in(db, std::ios::binary);
    std::string first_page(4096, '\0');
    in.read(first_page.data(), 4096);
    REQUIRE(in.gcount() == 4096);
    REQUIRE(std::filesystem::file_size(db) > 4096);
    // Only its first page: the rest of the schema is gone.
    const std::string cut = dir.file("cut.db");
    std::ofstream(cut, std::ios::binary) << first_page;
    for (const std::string command : {"jobs", "check"}) {
      auto r = inspect(dir, cut, {command});
      INFO(command);
      CHECK(r.exit_code == 1);
      CHECK(r.err ==
            "scrapekeep: the database file is damaged: SQLite cannot read it (database disk "
            "image is malformed)\n");
    }
    // A database whose tables are all still in its -wal, copied without it.
    const std::string young = dir.file("young.db");
    {
      SQLite::Database raw(young, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      raw.exec("PRAGMA user_version = 0");
    }
    auto r = inspect(dir, young, {"jobs"});
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "scrapekeep: the file is not a scrapekeep database: it has no tables (a copy made "
          "without its -wal file may have none yet)\n");
  }
  SECTION("another SQLite database") {
    const std::string other = dir.file("other.db");
    {
      SQLite::Database raw(other, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      raw.exec("CREATE TABLE t (x)");
    }
    auto r = inspect(dir, other, {"jobs"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: the file is not a scrapekeep database\n");
  }
  SECTION("a newer schema") {
    {
      auto opened = JobStore::open(StoreConfig{.path = db});
      REQUIRE(opened);
      (*opened)->database().exec(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
    }
    auto r = inspect(dir, db, {"jobs"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "database schema version 999 is newer than this binary"));
  }
  SECTION("bad usage exits 2") {
    CHECK(run_binary(dir, {"inspect", "jobs"}).exit_code == 2);
    // --db before and after the subcommand: which one was meant is a guess.
    auto twice = inspect(dir, db, {"jobs", "--db", dir.file("other.db")});
    CHECK(twice.exit_code == 2);
    CHECK(twice.out.empty());
    CHECK(twice.err ==
          "scrapekeep: --db: given both before and after the subcommand's name (see scrapekeep "
          "inspect jobs --help)\n");
    CHECK(run_binary(dir, {"inspect", "jobs", "--db", db}).exit_code == 0);
    CHECK(inspect(dir, db, {"jobs", "--status", "done"}).exit_code == 2);
    auto zero = inspect(dir, db, {"jobs", "--limit", "0"});
    CHECK(zero.exit_code == 2);
    CHECK(zero.err ==
          "scrapekeep: --limit: must be a whole number of at least 1, not 0 (see scrapekeep "
          "inspect jobs --help)\n");
    CHECK(inspect(dir, db, {"progress", b.done, "--at", "yesterday"}).exit_code == 2);
    CHECK(inspect(dir, db, {"export", "--format", "xml"}).exit_code == 2);
    auto no_format = inspect(dir, db, {"export"});
    CHECK(no_format.exit_code == 2);
    CHECK(no_format.err ==
          "scrapekeep: --format is required (see scrapekeep inspect export --help)\n");
    auto unknown = inspect(dir, db, {"frobnicate"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err ==
          "scrapekeep: unknown command 'frobnicate' for scrapekeep inspect (see scrapekeep "
          "inspect --help)\n");
    auto r = inspect(dir, db, {"job"});
    CHECK(r.exit_code == 2);
    CHECK(lines_of(r.err).size() == 1);
  }
}

TEST_CASE("backup names a target it cannot create, and why", "[cli][backup]") {
  TempDir dir;
  const std::string db = dir.file("source.db");
  build_db(db);
  const auto missing = dir.path() / "missing" / "dir";
  const std::string to_missing = (missing / "b.db").string();
  auto r = run_binary(dir, {"backup", "--db", db, "--to", to_missing});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "scrapekeep: backup failed: cannot create " + to_missing + ": its folder " +
                     missing.string() + " does not exist\n");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "missing"));

  const std::string file = dir.file("a-file");
  std::ofstream(file) << "not a folder";
  const std::string to_file = file + "/b.db";
  r = run_binary(dir, {"backup", "--db", db, "--to", to_file});
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        "scrapekeep: backup failed: cannot create " + to_file + ": " + file + " is not a folder\n");
  CHECK(read_file(file) == "not a folder");

  // A link that points nowhere exists as a name: not written through.
  const std::string dangling = dir.file("dangling.db");
  std::filesystem::create_symlink(dir.file("elsewhere.db"), dangling);
  r = run_binary(dir, {"backup", "--db", db, "--to", dangling});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "scrapekeep: backup failed: backup target already exists: " + dangling + "\n");
  CHECK_FALSE(std::filesystem::exists(dir.file("elsewhere.db")));

  // The names SQLite gives the database's own files, also through a link.
  const std::string link = dir.file("link.db");
  std::filesystem::create_symlink(db, link);
  for (const std::string& to :
       {db + "-wal", db + "-shm", db + "-journal", dir.path().string() + "/./source.db-shm",
        std::string("./source.db-wal"), std::string("source.db-journal"),
        std::string("./source.db-journal")}) {
    for (const std::string& from : {db, link, std::string("source.db"), std::string("./link.db")}) {
      r = run_binary(dir, {"backup", "--db", from, "--to", to}, {"env", "-C", dir.path().string()});
      INFO(from << " to " << to);
      CHECK(r.exit_code == 1);
      const std::string suffix = to.substr(to.rfind('-'));
      CHECK(r.err == "scrapekeep: backup failed: " + to + " is the name of the database's own " +
                         suffix + " file; back up to another name\n");
      CHECK_FALSE(std::filesystem::exists(dir.path() / to));  // run in dir (an absolute `to` wins)
    }
  }
}

TEST_CASE("History reads jobs exactly as JobStore does", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("same.db");
  const Built b = build_db(db);
  auto history = scrapekeep::store::History::open(db);
  REQUIRE(history);
  for (const std::string& id :
       {b.done, b.failed, b.timeout, b.cancelled, b.processing, b.pending}) {
    auto record = (*history)->job(id);
    REQUIRE(record);
    const Job expected = stored_job(db, id);
    // Every field, through the API's view and the fields it leaves out.
    CHECK(scrapekeep::http::job_view(record->job).dump() ==
          scrapekeep::http::job_view(expected).dump());
    CHECK(record->job.current_page == expected.current_page);
    CHECK(record->job.pagination_complete == expected.pagination_complete);
    CHECK(record->job.stopped_percentage == expected.stopped_percentage);
    CHECK(record->job.claim_token == expected.claim_token);
    CHECK(record->job.lease_expires_at == expected.lease_expires_at);
    CHECK(record->job.org_id == expected.org_id);
  }
  CHECK(scrapekeep::store::normalize_error_message(
            "https://x.test/a?p=2: HTTP 503 (see http://y.test/z.)") ==
        "<url>: HTTP 503 (see <url>.)");
  CHECK(scrapekeep::store::normalize_error_message("HTTP://X.test/: connection failed") ==
        "<url>: connection failed");
}

namespace {

// Runs `write` once, as `history`'s connection begins to run the first
// statement whose SQL begins with `sql`: a live server's commit landing in
// the middle of what inspect reads.
struct WriteAt {
  std::string sql;
  std::function<bool()> write;
  std::optional<bool> written;
};

int write_at(unsigned, void* context, void* statement, void*) {
  auto* at = static_cast<WriteAt*>(context);
  const char* sql = sqlite3_sql(static_cast<sqlite3_stmt*>(statement));
  if (!at->written && sql != nullptr && std::string_view(sql).rfind(at->sql, 0) == 0) {
    at->written = at->write();
  }
  return 0;
}

}  // namespace

TEST_CASE("History reads a live job's counters and its page events in one snapshot", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("live.db");
  // Kept open: the file is in use (a -wal beside it), read as a server's is.
  AcmeStore acme = open_acme(db);
  JobStore& store = *acme.store;
  auto job =
      store.create_job(acme.org_id, "http://127.0.0.1:9/l?page=1", options(true, 10, 0), k_t0);
  REQUIRE(job);
  const Claim c = claim(store, k_t0);
  const auto url = [](int page) { return "http://127.0.0.1:9/l?page=" + std::to_string(page); };
  const auto store_page = [&](int page) {
    return store
        .record_listing_page(
            c, listing(page, url(page), k_t0, k_second, items(2, "", false), url(page + 1)), k_t0)
        .ok();
  };
  REQUIRE(store_page(1));
  auto history = scrapekeep::store::History::open(db);
  REQUIRE(history);
  REQUIRE_FALSE((*history)->snapshot());
  // Page 2 is stored after the job's row was read, as its events are summed.
  WriteAt at{"SELECT COUNT(*), TOTAL(", [&] { return store_page(2); }, std::nullopt};
  sqlite3* handle = (*history)->database().getHandle();
  sqlite3_trace_v2(handle, SQLITE_TRACE_STMT, write_at, &at);
  auto read = (*history)->timeline(job->job_id);
  sqlite3_trace_v2(handle, 0, nullptr, nullptr);
  REQUIRE(at.written == true);
  REQUIRE(read);
  // Both as the file was before that page: the counters match the events.
  CHECK(read->record.job.counters.listing_pages_scraped == 1);
  CHECK(read->timeline.listing_ok == 1);
  CHECK(read->record.job.counters.items_found == read->timeline.items);
  auto again = (*history)->timeline(job->job_id);
  REQUIRE(again);
  CHECK(again->record.job.counters.listing_pages_scraped == 2);
  CHECK(again->timeline.listing_ok == 2);
}

TEST_CASE("History counts jobs and lists them in one snapshot while a Reading is held",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("live.db");
  AcmeStore acme = open_acme(db);  // kept open: the file is in use
  JobStore& store = *acme.store;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(store.create_job(acme.org_id, "http://127.0.0.1:9/" + std::to_string(i),
                             options(false, 1, 0), k_t0 + i));
  }
  auto history = scrapekeep::store::History::open(db);
  REQUIRE(history);
  REQUIRE_FALSE((*history)->snapshot());
  scrapekeep::store::HistoryFilter filter;
  filter.limit = 50;
  auto reading = (*history)->begin_read();
  REQUIRE(reading);
  auto total = (*history)->count_jobs(filter);
  REQUIRE(total);
  CHECK(*total == 2);
  // A job created between the count and the list (inspect jobs showed "3 of 2").
  REQUIRE(store.create_job(acme.org_id, "http://127.0.0.1:9/new", options(false, 1, 0), k_t0 + 9));
  std::int64_t listed = 0;
  REQUIRE((*history)->each_job(filter, [&](const scrapekeep::store::JobRecord&) {
    ++listed;
    return true;
  }));
  CHECK(listed == *total);
}

// ---- hostile database files ----

namespace {

// `scrapekeep args...` as a child: its exit status within `limit`, nullopt
// when it still runs then (killed at scope exit).
std::optional<int> exit_within(const TempDir& dir, const std::string& name,
                               const std::vector<std::string>& args, std::string* err,
                               std::chrono::seconds limit = std::chrono::seconds(20)) {
  scrapekeep::testing::ChildProcess child(dir.path().string(), name, args);
  auto status = child.wait(limit);
  *err = child.err();
  return status;
}

// The names of the files in `folder`.
std::vector<std::string> file_names(const std::filesystem::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("backup reads a file at rest as inspect does, creating nothing beside it",
          "[cli][backup]") {
  TempDir dir;
  const auto folder = dir.path() / "rest";
  std::filesystem::create_directories(folder);
  const std::string db = (folder / "rest.db").string();
  build_db(db);
  REQUIRE(file_names(folder) == std::vector<std::string>{"rest.db"});
  const std::string copy = dir.file("copy.db");
  auto r = run_binary(dir, {"backup", "--db", db, "--to", copy});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(file_names(folder) == std::vector<std::string>{"rest.db"});
  auto original = inspect(dir, db, {"jobs", "--json"});
  auto copied = inspect(dir, copy, {"jobs", "--json"});
  REQUIRE(original.exit_code == 0);
  CHECK(copied.out == original.out);
}

TEST_CASE("inspect and backup read a live database through a symlink with its -wal",
          "[inspect][cli][backup]") {
  TempDir dir;
  const auto folder = dir.path() / "real";
  std::filesystem::create_directories(folder);
  const std::string db = (folder / "live.db").string();
  build_db(db);
  auto opened = JobStore::open(StoreConfig{.path = db});
  REQUIRE(opened);
  JobStore& store = **opened;
  REQUIRE(store.checkpoint());
  // The pending job is taken; that change lives only in the WAL, which SQLite
  // keeps beside the file the link points to, not beside the link.
  claim(store, k_t0 + 5000 * k_second);
  const std::string link = dir.file("link.db");
  std::filesystem::create_symlink(db, link);
  auto direct = inspect(dir, db, {"jobs", "--status", "pending", "--json"});
  REQUIRE(direct.exit_code == 0);
  REQUIRE(Json::parse(direct.out)["total"] == 0);

  auto linked = inspect(dir, link, {"jobs", "--status", "pending", "--json"});
  INFO(linked.err);
  REQUIRE(linked.exit_code == 0);
  CHECK(linked.out == direct.out);
  CHECK_FALSE(std::filesystem::exists(link + "-wal"));

  const std::string copy = dir.file("copy.db");
  auto backup = run_binary(dir, {"backup", "--db", link, "--to", copy});
  INFO(backup.err);
  REQUIRE(backup.exit_code == 0);
  auto copied = inspect(dir, copy, {"jobs", "--status", "pending", "--json"});
  REQUIRE(copied.exit_code == 0);
  CHECK(copied.out == direct.out);
}

}  // namespace

TEST_CASE("inspect, backup and migrate refuse a FIFO instead of waiting on it for ever",
          "[inspect]") {
  TempDir dir;
  const std::string fifo = dir.file("fifo.db");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::vector<std::vector<std::string>> commands = {
      {"inspect", "--db", fifo, "jobs"},
      {"inspect", "--db", fifo, "check"},
      {"backup", "--db", fifo, "--to", dir.file("copy.db")},
      {"migrate", "--db", fifo},
  };
  int n = 0;
  for (const auto& args : commands) {
    INFO(args.front() << " " << args.back());
    std::string err;
    const auto status = exit_within(dir, "fifo" + std::to_string(n++), args, &err);
    REQUIRE(status);
    CHECK(*status == 1);
    CHECK(err == "scrapekeep: " + fifo +
                     " is not a regular file (a FIFO, socket or device), not a database file\n");
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("copy.db")));
}

TEST_CASE("inspect refuses a file at rest that SQLite will not read, and creates nothing beside it",
          "[inspect]") {
  TempDir dir;
  const auto folder = dir.path() / "dbs";
  std::filesystem::create_directory(folder);
  const std::string db = (folder / "future.db").string();
  build_db(db);
  {
    // Schema format number 9 (offset 44): SQLite reads 1 to 4 only.
    std::fstream file(db, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(44);
    file.write("\0\0\0\x09", 4);
  }
  const auto before = file_names(folder);
  REQUIRE(before == std::vector<std::string>{"future.db"});
  for (const std::string command : {"jobs", "check"}) {
    auto r = inspect(dir, db, {command});
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "scrapekeep: the database file is damaged: SQLite cannot read it (database disk image "
          "is malformed)\n");
    CHECK(file_names(folder) == before);
  }
}

// Each of `commands` (whole argument lists) exits 1 within the time limit,
// saying `message` on stderr.
void check_each_refuses(const TempDir& dir, const std::string& name,
                        const std::vector<std::vector<std::string>>& commands,
                        const std::string& message) {
  int n = 0;
  for (const std::vector<std::string>& args : commands) {
    INFO(args[0] << " " << args.back());
    std::string err;
    const auto status = exit_within(dir, name + std::to_string(n++), args, &err);
    REQUIRE(status);
    CHECK(*status == 1);
    CHECK(err == "scrapekeep: " + message + "\n");
  }
}

TEST_CASE("a view in place of one of the tables is refused, not read for ever", "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("view.db");
  build_db(db);
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("ALTER TABLE jobs RENAME TO jobs_old");
    raw.exec(
        "CREATE VIEW jobs AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT j.* FROM c, jobs_old j");
  }
  check_each_refuses(dir, "view",
                     {{"inspect", "--db", db, "jobs"},
                      {"inspect", "--db", db, "stats"},
                      {"backup", "--db", db, "--to", dir.file("copy.db")}},
                     "the file is not a scrapekeep database it can read: its table jobs is "
                     "missing or is not a table");
}

TEST_CASE("a table without one of its columns is refused by name, not read as no rows",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("column.db");
  build_db(db);
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("ALTER TABLE jobs DROP COLUMN lost_attempts");
  }
  check_each_refuses(dir, "column",
                     {{"inspect", "--db", db, "jobs", "--json"},
                      {"inspect", "--db", db, "check"},
                      {"migrate", "--db", db},
                      {"backup", "--db", db, "--to", dir.file("copy.db")}},
                     "the file is not a scrapekeep database it can read: its table jobs has no "
                     "column lost_attempts");
  auto listed = inspect(dir, db, {"jobs", "--json"});
  CHECK(listed.exit_code == 1);
  CHECK(listed.out.empty());
}

TEST_CASE("a file whose schema_migrations records nothing, yet has tables, is refused as such",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("unrecorded.db");
  build_db(db);
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("DELETE FROM schema_migrations");
  }
  check_each_refuses(dir, "unrecorded",
                     {{"inspect", "--db", db, "jobs"},
                      {"keys", "list", "--db", db},
                      {"migrate", "--db", db}},
                     "the file is not a scrapekeep database it can read: its schema_migrations "
                     "table records no migration, yet it has tables");
}

TEST_CASE("inspect reads values scrapekeep never writes without overflow, and check reports them",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("odd.db");
  const Built b = build_db(db);
  const std::string max = "9223372036854775807";
  const std::string min = "(-9223372036854775807 - 1)";
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA ignore_check_constraints = ON");
    // Counters at the largest integer on every job; times at both ends.
    raw.exec("UPDATE jobs SET listing_pages_scraped = " + max + ", detail_pages_scraped = " + max +
             ", items_found = " + max + ", attempts = " + max);
    raw.exec("UPDATE jobs SET started_at = " + min + ", completed_at = " + max +
             " WHERE job_id = '" + b.done + "'");
    // Started at the smallest integer, 1 of 10 listing pages done: an
    // estimated completion far beyond year 9999.
    raw.exec("UPDATE jobs SET started_at = " + min + ", lease_expires_at = " + min +
             ", listing_pages_scraped = 1, detail_pages_scraped = 0, items_found = 0 "
             "WHERE job_id = '" + b.processing + "'");
    raw.exec("UPDATE page_events SET started_at = " + min + ", finished_at = " + max +
             " WHERE job_id = '" + b.done + "'");
    // A status outside the lifecycle, a start after the end.
    raw.exec("UPDATE jobs SET status = 'zombie' WHERE job_id = '" + b.failed + "'");
    raw.exec("UPDATE jobs SET started_at = completed_at + 1 WHERE job_id = '" + b.timeout + "'");
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"jobs"}, {"job", b.done}, {"job", b.processing, "--json"},
        {"progress", b.done, "--json"}, {"progress", b.processing}, {"events", b.done},
        {"stats", "--per-day"}, {"export", "--format", "csv", "--events"}}) {
    auto r = inspect(dir, db, args);
    INFO(args.front() << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(contains(r.err, "runtime error"));  // UBSan, in sanitizer builds
  }
  // Sums stay at the bound instead of wrapping around to negative numbers.
  auto stats = inspect(dir, db, {"stats", "--json"});
  REQUIRE(stats.exit_code == 0);
  CHECK_FALSE(contains(stats.err, "runtime error"));
  const Json totals = Json::parse(stats.out)["totals"];
  CHECK(totals["items_found"].get<std::int64_t>() == 6 * scrapekeep::core::k_max_count);
  CHECK(totals["attempts"].get<std::int64_t>() == 7 * scrapekeep::core::k_max_count);
  // A start after the time the file is read at: no negative running time,
  // as the API's running_time is none.
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET started_at = 253402300799000000 WHERE job_id = '" + b.processing +
             "'");
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"jobs"}, {"job", b.processing}}) {
    auto r = inspect(dir, db, args);
    REQUIRE(r.exit_code == 0);
    INFO(r.out);
    CHECK(contains(r.out, args.front() == "job" ? "running for   0ms+\n" : " 0ms+  "));
  }
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET started_at = " + min + " WHERE job_id = '" + b.processing + "'");
  }
  // Times are read within years 0000 to 9999.
  auto progress = inspect(dir, db, {"progress", b.processing, "--json"});
  REQUIRE(progress.exit_code == 0);
  CHECK(Json::parse(progress.out)["estimated_completion"] == "9999-12-31T23:59:59.999999+00:00");

  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET selectors = 'not json' WHERE job_id = '" + b.cancelled + "'");
    // JSON, but not what scrapekeep writes: no fields; a field that is a number.
    raw.exec("UPDATE jobs SET selectors = '{\"item\": \"//x\"}' WHERE job_id = '" +
             b.processing + "'");
    raw.exec("UPDATE result_items SET fields = '{\"title\": 7}' WHERE item_index = 0 AND "
             "job_id = '" + b.done + "'");
    // JSON to SQLite, but not UTF-8: a selector, and {"t": "<0xFF>"}.
    raw.exec("UPDATE jobs SET selectors = replace(selectors, 'article', CAST(X'FF' AS TEXT)) "
             "WHERE job_id = '" + b.pending + "'");
    raw.exec("UPDATE result_items SET fields = CAST(X'7B2274223A2022FF227D' AS TEXT) WHERE "
             "item_index = 1 AND job_id = '" + b.done + "'");
  }
  // Read all the same: the damaged values show as null, the rest as stored.
  auto jobs = inspect(dir, db, {"jobs", "--json"});
  INFO(jobs.err);
  REQUIRE(jobs.exit_code == 0);
  int unreadable = 0;
  const Json listed = Json::parse(jobs.out);
  for (const Json& job : listed["jobs"]) {
    const bool damaged = job["job_id"] == b.cancelled || job["job_id"] == b.processing ||
                         job["job_id"] == b.pending;
    CHECK(job["options"]["selectors"].is_null() == damaged);
    unreadable += damaged ? 1 : 0;
  }
  CHECK(unreadable == 3);
  auto about = inspect(dir, db, {"job", b.cancelled});
  CHECK(about.exit_code == 0);
  CHECK(contains(about.out, "cannot be read (a damaged database row)"));

  auto check = inspect(dir, db, {"check", "--json"});
  CHECK(check.exit_code == 1);
  CHECK_FALSE(contains(check.err, "runtime error"));
  std::vector<std::string> values;
  const Json findings = Json::parse(check.out)["findings"];
  for (const Json& f : findings) {
    if (f["check"] == "value") {
      values.push_back(f["job_id"].get<std::string>() + ": " + f["message"].get<std::string>());
    }
  }
  INFO(check.out);
  const auto has = [&](const std::string& line) {
    return std::count(values.begin(), values.end(), line) == 1;
  };
  CHECK(has(b.failed +
            ": status 'zombie' is not one of pending, processing, completed, failed, cancelled"));
  CHECK(has(b.timeout + ": started_at is after completed_at"));
  CHECK(has(b.cancelled + ": its selectors are not the JSON object scrapekeep writes"));
  CHECK(has(b.processing + ": its selectors are not the JSON object scrapekeep writes"));
  CHECK(has(b.pending + ": its selectors are not the JSON object scrapekeep writes"));
  CHECK(has(b.done + ": 2 result items have fields or a detail that are not the JSON "
                     "scrapekeep writes"));
  CHECK(has(b.done + ": started_at is -9223372036854775808, not a time in years 0000 to 9999"));
  CHECK(has(b.done + ": completed_at is 9223372036854775807, not a time in years 0000 to 9999"));
  CHECK(has(b.done + ": 7 page events have a kind, outcome or time scrapekeep never writes"));
}

TEST_CASE("migrate names a migration that schema_migrations skips", "[cli][migrate]") {
  TempDir dir;
  const std::string db = dir.file("gap.db");
  build_db(db);
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("DELETE FROM schema_migrations WHERE version = 2");
  }
  auto r = run_binary(dir, {"migrate", "--db", db});
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        "scrapekeep: migration 0002_jobs_progress_index.sql cannot be applied to this database "
        "(index jobs_progress already exists): its schema_migrations table does not match its "
        "tables\n");
}

TEST_CASE("inspect reads a file beside a leftover -shm as at rest, and refuses one with a "
          "-journal of a write cut short",
          "[inspect]") {
  TempDir dir;
  const auto folder = dir.path() / "dbs";
  std::filesystem::create_directory(folder);
  const std::string db = (folder / "left.db").string();
  build_db(db);
  REQUIRE(file_names(folder) == std::vector<std::string>{"left.db"});

  SECTION("a -shm alone (no -wal): no -wal is added beside it") {
    std::ofstream(db + "-shm", std::ios::binary) << std::string(32768, '\x5a');
    const auto before = file_names(folder);
    for (const std::string command : {"jobs", "check"}) {
      auto r = inspect(dir, db, {command});
      INFO(command << ": " << r.err);
      CHECK(r.exit_code == 0);
      CHECK_FALSE(contains(r.err, "immutable"));
      CHECK(file_names(folder) == before);
    }
  }
  SECTION("a hot -journal: refused, not read as a snapshot that may hold half a write") {
    std::ofstream(db + "-journal", std::ios::binary) << std::string(5000, '\x5a');
    const auto before = file_names(folder);
    auto r = inspect(dir, db, {"jobs"});
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "scrapekeep: the database's -journal file holds a write that was cut short, which "
          "only a writer can roll back: run scrapekeep migrate on the file (or on a copy of it "
          "and its -journal) first\n");
    CHECK(file_names(folder) == before);
  }
}

TEST_CASE("History's exports read past one chunk (5,000 rows) in order, each row once",
          "[inspect]") {
  TempDir dir;
  const std::string db = dir.file("chunks.db");
  constexpr int k_rows = 5003;  // one chunk and a bit
  std::string paged;
  {
    AcmeStore acme = open_acme(db);
    JobStore& store = *acme.store;
    auto job = store.create_job(acme.org_id, "http://127.0.0.1:9/l?page=1",
                                options(true, 10000, 0), k_t0);
    REQUIRE(job);
    paged = job->job_id;
    const Claim c = claim(store, k_t0);
    REQUIRE(c.job_id == paged);
    for (int page = 1; page <= k_rows; ++page) {
      const std::string url = "http://127.0.0.1:9/l?page=" + std::to_string(page);
      REQUIRE(store
                  .record_listing_page(c, listing(page, url, k_t0, k_second, {},
                                                  "http://127.0.0.1:9/l?page=" +
                                                      std::to_string(page + 1)),
                                       k_t0)
                  .ok());
    }
    for (int i = 1; i < k_rows; ++i) {
      REQUIRE(store.create_job(acme.org_id, "http://127.0.0.1:9/j" + std::to_string(i),
                               options(false, 1, 0), k_t0 + i));
    }
  }
  auto history = scrapekeep::store::History::open(db);
  REQUIRE(history);
  for (const std::optional<std::int64_t> limit :
       {std::optional<std::int64_t>(), std::optional<std::int64_t>(5001)}) {
    INFO("limit " << limit.value_or(-1));
    scrapekeep::store::HistoryFilter filter;
    filter.limit = limit;
    const std::size_t expected = static_cast<std::size_t>(limit.value_or(k_rows));
    std::vector<std::string> jobs;
    REQUIRE((*history)->export_jobs(filter, [&](const scrapekeep::store::JobRecord& r) {
      jobs.push_back(r.job.job_id);
      return true;
    }));
    CHECK(jobs.size() == expected);
    CHECK(std::set<std::string>(jobs.begin(), jobs.end()).size() == jobs.size());
    CHECK(jobs.front() == paged);  // storage order
    std::vector<std::int64_t> pages;
    REQUIRE((*history)->export_events(filter, [&](const scrapekeep::store::EventRecord& r) {
      pages.push_back(r.event.page_number);
      return true;
    }));
    REQUIRE(pages.size() == expected);
    for (std::size_t i = 0; i < pages.size(); ++i) {
      CHECK(pages[i] == static_cast<std::int64_t>(i) + 1);
    }
  }
  // A reader that has had enough stops the export in the second chunk.
  int seen = 0;
  REQUIRE((*history)->export_events({}, [&](const scrapekeep::store::EventRecord&) {
    return ++seen < 5002;
  }));
  CHECK(seen == 5002);
}
