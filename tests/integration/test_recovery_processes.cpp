// Recovery across real processes: a worker process killed while serve runs,
// SIGTERM and restart, a timeout that passed while nothing ran, the attempt
// cap, and recovery at start without waiting for the lease.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/core/job.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/migrations.hpp"
#include "support/api_server.hpp"
#include "support/child_process.hpp"
#include "support/fixture_site.hpp"
#include "support/ipv6_loopback.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace core = scrapekeep::core;
namespace store = scrapekeep::store;
using json = nlohmann::ordered_json;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::HttpReply;
using scrapekeep::testing::ChildProcess;
using scrapekeep::testing::eventually;
using scrapekeep::testing::has_ipv6_loopback;
using scrapekeep::testing::FixtureSite;
using scrapekeep::testing::FixtureSiteConfig;
using scrapekeep::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

json job_body(const std::string& url, int depth, int timeout, int max_pages) {
  json selectors = {{"item", "//article[@class='property']"},
                    {"fields", {{"title", ".//h2"}, {"price", ".//span[@class='price']"}}}};
  if (depth == 1) {
    selectors["detail_fields"] = {{"description", "//p[@class='desc']"}};
  }
  return {{"url", url},
          {"options",
           {{"timeout", timeout},
            {"max_items", 1000},
            {"follow_pagination", true},
            {"max_pages", max_pages},
            {"depth", depth},
            {"selectors", selectors}}}};
}

// One database, the processes started on it, and a read-only view of it.
class Deployment {
 public:
  Deployment() : m_db(m_dir.file("scrapekeep.db")) {}

  const std::string& db() const { return m_db; }
  std::string dir() const { return m_dir.path().string(); }

  // Starts `scrapekeep serve` with `extra` options; returns once it serves.
  std::unique_ptr<ChildProcess> serve(const std::vector<std::string>& extra,
                                      const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = {"serve", "--db", m_db, "--listen", listen};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = std::make_unique<ChildProcess>(dir(), "serve-" + std::to_string(++m_started), args);
    const auto started = wait_serving(*child, seconds(20));
    INFO("serve stderr: " << child->err());
    REQUIRE(started);
    if (!started->key.empty()) {
      m_key = started->key;
    }
    m_port = started->port;
    return child;
  }

  // Starts `scrapekeep worker` with `extra` options; returns once it works.
  std::unique_ptr<ChildProcess> worker(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"worker", "--db", m_db};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child =
        std::make_unique<ChildProcess>(dir(), "worker-" + std::to_string(++m_started), args);
    INFO("worker stderr: " << child->err());
    REQUIRE(child->wait_for_line(" worker: ", milliseconds(20000)));
    return child;
  }

  // The port of the last serve started.
  int port() const { return m_port; }

  // A client of the last serve started.
  ApiClient client() const { return ApiClient("127.0.0.1", m_port, {{"X-API-Key", m_key}}); }

  std::string create(const json& body) {
    const auto reply = client().post("/v1/scrape", body);
    REQUIRE(reply.status == 201);
    return reply.data()["job_id"].get<std::string>();
  }

  // The job as stored, read on a connection of its own (works while no
  // process runs).
  core::Job job(const std::string& id) const {
    store::StoreConfig config;
    config.path = m_db;
    config.read_only = true;
    auto opened = store::JobStore::open(config);
    REQUIRE(opened.ok());
    auto job = (*opened)->get_job(id, std::nullopt);
    REQUIRE(job.ok());
    return *job;
  }

  std::vector<store::PageEvent> events(const std::string& id) const {
    store::StoreConfig config;
    config.path = m_db;
    config.read_only = true;
    auto opened = store::JobStore::open(config);
    REQUIRE(opened.ok());
    auto page = (*opened)->list_events(id, 0, 100000);
    REQUIRE(page.ok());
    return page->events;
  }

  core::Job wait_terminal(const std::string& id, seconds limit = seconds(30)) {
    core::Job last;
    const bool done = eventually(
        [&] {
          last = job(id);
          return core::is_terminal(last.status);
        },
        limit);
    INFO("status " << core::to_string(last.status));
    REQUIRE(done);
    return last;
  }

 private:
  TempDir m_dir;
  std::string m_db;
  std::string m_key;
  int m_port = 0;
  int m_started = 0;
};

// Listing page numbers of `events`, and that each came once.
std::multiset<std::int64_t> listing_pages(const std::vector<store::PageEvent>& events) {
  std::multiset<std::int64_t> pages;
  for (const auto& e : events) {
    if (e.kind == store::PageKind::listing) {
      pages.insert(e.page_number);
    }
  }
  return pages;
}

std::multiset<std::int64_t> one_to(std::int64_t n) {
  std::multiset<std::int64_t> out;
  for (std::int64_t i = 1; i <= n; ++i) {
    out.insert(i);
  }
  return out;
}

} // namespace

TEST_CASE("processes: a worker process killed while serve runs, its job is taken back",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.pages = 20;
  site_config.listing_delay = milliseconds(100);
  FixtureSite site(site_config);
  Deployment d;
  // API only: the jobs go to the worker processes.
  auto serve = d.serve({"--workers", "0", "--lease-seconds", "2"});
  auto first = d.worker({"--concurrency", "1", "--lease-seconds", "2"});
  const std::string id = d.create(job_body(site.url("/listings?page=1"), 0, 600, 20));
  REQUIRE(eventually([&] { return d.job(id).counters.listing_pages_scraped >= 3; }));
  // A second worker, started while the first still runs, is idle until the
  // first one's lease runs out.
  auto second = d.worker({"--concurrency", "1", "--lease-seconds", "2"});
  CHECK(first->kill_now() == 128 + SIGKILL);
  const core::Job killed = d.job(id);
  REQUIRE(killed.status == core::JobStatus::processing);
  const std::int64_t stored = killed.counters.listing_pages_scraped;

  const core::Job job = d.wait_terminal(id);
  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  // 2, or more if a starved machine let the survivor's lease lapse too:
  // fencing keeps that harmless, as the checks below show.
  CHECK(job.attempts >= 2);
  CHECK(job.counters.listing_pages_scraped == 20);
  CHECK(job.counters.items_found == 80);
  CHECK(listing_pages(d.events(id)) == one_to(20));
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  CHECK(site.pages_not_fetched_once("/listings", stored) == std::vector<std::int64_t>{});
  // The survivors shut down cleanly.
  second->send(SIGTERM);
  serve->send(SIGTERM);
  CHECK(second->wait(seconds(10)) == std::optional<int>(0));
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: a worker waits for a database file that does not exist, creating nothing",
          "[recovery][process]") {
  Deployment d;
  const std::filesystem::path folder = std::filesystem::path(d.dir()) / "dbs";
  std::filesystem::create_directory(folder);
  const std::string typo = (folder / "typo.db").string();
  {
    ChildProcess worker(d.dir(), "typo", {"worker", "--db", typo});
    CHECK(worker.wait_for_line("does not exist yet", seconds(20), ChildProcess::Stream::err) ==
          "scrapekeep: " + typo +
              " does not exist yet; waiting for scrapekeep serve or scrapekeep migrate to "
              "create it");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(worker.running());
    CHECK(std::filesystem::is_empty(folder));
    worker.send(SIGTERM);
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
    CHECK(worker.out().empty());
    CHECK(std::filesystem::is_empty(folder));
  }
  {
    // Started before the file exists, it works on it once it does.
    ChildProcess worker(d.dir(), "early", {"worker", "--db", typo, "--concurrency", "1"});
    REQUIRE(worker.wait_for_line("does not exist yet", seconds(20), ChildProcess::Stream::err));
    const scrapekeep::testing::RunResult migrated =
        scrapekeep::testing::run_program(d.dir(), {SCRAPEKEEP_BINARY, "migrate", "--db", typo});
    REQUIRE(migrated.exit_code == 0);
    CHECK(worker.wait_for_line("worker: 1 worker on " + typo, seconds(20)));
    worker.send(SIGTERM);
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
  }
  {
    // An empty file is no database either: waited for, left empty.
    const std::string empty = (folder / "empty.db").string();
    { std::ofstream touch(empty); }
    ChildProcess worker(d.dir(), "empty", {"worker", "--db", empty});
    CHECK(worker.wait_for_line("has no tables yet", seconds(20), ChildProcess::Stream::err) ==
          "scrapekeep: " + empty +
              " has no tables yet; waiting for scrapekeep serve or scrapekeep migrate to "
              "create it");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(worker.running());
    CHECK(std::filesystem::file_size(empty) == 0);
    worker.send(SIGTERM);
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
    CHECK(std::filesystem::file_size(empty) == 0);
  }
  {
    // Caught while serve or migrate makes it: schema_migrations is committed,
    // empty, before the first migration. Still waited for.
    const std::string young = (folder / "young.db").string();
    {
      SQLite::Database made(young, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      made.exec(store::k_schema_migrations_table);
    }
    ChildProcess worker(d.dir(), "young", {"worker", "--db", young, "--concurrency", "1"});
    CHECK(worker.wait_for_line("has no tables yet", seconds(20), ChildProcess::Stream::err));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(worker.running());
    const scrapekeep::testing::RunResult migrated =
        scrapekeep::testing::run_program(d.dir(), {SCRAPEKEEP_BINARY, "migrate", "--db", young});
    REQUIRE(migrated.exit_code == 0);
    CHECK(worker.wait_for_line("worker: 1 worker on " + young, seconds(20)));
    worker.send(SIGTERM);
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
  }
  {
    // Caught while its maker holds it locked (its journal mode, its first
    // tables): waited for, not read as a file with no tables (exit 1).
    const std::string locked = (folder / "locked.db").string();
    SQLite::Database maker(locked, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    maker.exec("BEGIN EXCLUSIVE");
    maker.exec("CREATE TABLE being_made (x)");
    ChildProcess worker(d.dir(), "locked", {"worker", "--db", locked, "--concurrency", "1"});
    std::this_thread::sleep_for(std::chrono::milliseconds(6000));  // past SQLite's busy wait
    CHECK(worker.running());
    maker.exec("ROLLBACK");
    const scrapekeep::testing::RunResult migrated =
        scrapekeep::testing::run_program(d.dir(), {SCRAPEKEEP_BINARY, "migrate", "--db", locked});
    REQUIRE(migrated.exit_code == 0);
    CHECK(worker.wait_for_line("worker: 1 worker on " + locked, seconds(20)));
    worker.send(SIGTERM);
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
  }
  {
    // A FIFO is refused at once: opened to look for its tables, it blocked
    // until something wrote to it, deaf to SIGTERM.
    const std::string fifo = (folder / "fifo.db").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const scrapekeep::testing::RunResult r =
        scrapekeep::testing::run_program(d.dir(), {"timeout", "-s", "KILL", "20", SCRAPEKEEP_BINARY,
                                                   "worker", "--db", fifo});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: " + fifo +
                       " is not a regular file (a FIFO, socket or device), not a database file\n");
  }
  {
    // Written as an SQLite URI: waited for in the folder of the file it names.
    const std::string uri = "file:" + (folder / "later.db").string();
    ChildProcess worker(d.dir(), "uri", {"worker", "--db", uri, "--concurrency", "1"});
    CHECK(worker.wait_for_line(uri + " does not exist yet; waiting", seconds(20),
                               ChildProcess::Stream::err));
    const scrapekeep::testing::RunResult migrated =
        scrapekeep::testing::run_program(d.dir(), {SCRAPEKEEP_BINARY, "migrate", "--db", uri});
    REQUIRE(migrated.exit_code == 0);
    CHECK(worker.wait_for_line("worker: 1 worker on " + uri, seconds(20)));
    worker.send(SIGTERM);
    INFO(worker.err());
    CHECK(worker.wait(seconds(10)) == std::optional<int>(0));
  }
  {
    // In a folder that does not exist, no file can ever come: said at once.
    const std::string nowhere = (folder / "missing" / "x.db").string();
    const scrapekeep::testing::RunResult r =
        scrapekeep::testing::run_program(d.dir(), {SCRAPEKEEP_BINARY, "worker", "--db", nowhere});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: cannot wait for " + nowhere + ": its folder " +
                       (folder / "missing").string() + " does not exist\n");
  }

  // A database at an older schema version is still migrated.
  {
    SQLite::Database old(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    const store::Migration& first = store::embedded_migrations().front();
    old.exec(store::k_schema_migrations_table);
    old.exec(first.sql);
    SQLite::Statement rec(old, "INSERT INTO schema_migrations VALUES (?, ?, 0)");
    rec.bind(1, first.version);
    rec.bind(2, first.name);
    rec.exec();
  }
  REQUIRE(store::latest_schema_version() > store::embedded_migrations().front().version);
  auto migrated = d.worker({"--concurrency", "1"});
  migrated->send(SIGTERM);
  CHECK(migrated->wait(seconds(10)) == std::optional<int>(0));
  store::StoreConfig config;
  config.path = d.db();
  config.read_only = true;
  auto opened = store::JobStore::open(config);
  REQUIRE(opened.ok());
  CHECK((*opened)->schema_version().value() == store::latest_schema_version());
}

TEST_CASE("processes: the next worker process resumes a killed one's job at once",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.pages = 8;
  site_config.listing_delay = milliseconds(80);
  FixtureSite site(site_config);
  Deployment d;
  auto serve = d.serve({"--workers", "0"});
  // Leases of an hour: only recovery at start can take the job back now.
  const std::vector<std::string> options = {"--concurrency", "1", "--lease-seconds", "3600"};
  auto first = d.worker(options);
  const std::string id = d.create(job_body(site.url("/listings?page=1"), 0, 600, 8));
  REQUIRE(eventually([&] { return d.job(id).counters.listing_pages_scraped >= 2; }));
  first->kill_now();
  const std::int64_t stored = d.job(id).counters.listing_pages_scraped;

  auto second = d.worker(options);
  const core::Job job = d.wait_terminal(id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.attempts == 2);
  CHECK(listing_pages(d.events(id)) == one_to(8));
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  CHECK(site.pages_not_fetched_once("/listings", stored) == std::vector<std::int64_t>{});
  CHECK(second->err().find("recovered 1 interrupted job(s) at start") != std::string::npos);
  second->send(SIGTERM);
  serve->send(SIGTERM);
  CHECK(second->wait(seconds(10)) == std::optional<int>(0));
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: SIGTERM gives the job back, the next start resumes it at once",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.pages = 10;
  site_config.listing_delay = milliseconds(60);
  site_config.detail_delay = milliseconds(60);
  FixtureSite site(site_config);
  Deployment d;
  // A lease of an hour: only the release at shutdown lets the job resume now.
  const std::vector<std::string> options = {"--workers", "1", "--detail-concurrency", "2",
                                            "--lease-seconds", "3600"};
  auto serve = d.serve(options);
  const std::string id = d.create(job_body(site.url("/listings?page=1"), 1, 600, 10));
  REQUIRE(eventually([&] { return d.job(id).counters.detail_pages_scraped >= 6; }));

  serve->send(SIGTERM);
  const auto status = serve->wait(seconds(10));
  INFO("stderr: " << serve->err());
  CHECK(status == std::optional<int>(0));
  CHECK(serve->err().find("received SIGTERM") != std::string::npos);
  // Checkpointed: the WAL was copied into the file and emptied (or removed).
  const std::string wal = d.db() + "-wal";
  CHECK((!std::filesystem::exists(wal) || std::filesystem::file_size(wal) == 0));

  const core::Job stopped = d.job(id);
  CHECK(stopped.status == core::JobStatus::processing);  // waiting for a worker
  CHECK(stopped.attempts == 1);
  CHECK_FALSE(stopped.claim_token);
  CHECK_FALSE(stopped.lease_expires_at);
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  // What was stored before the stop, to check it is never fetched again.
  const std::int64_t pages_stored = stopped.counters.listing_pages_scraped;
  std::vector<std::string> details_stored;  // "/detail/K-I"
  for (const auto& e : d.events(id)) {
    if (e.kind == store::PageKind::detail) {
      details_stored.push_back(e.url.substr(e.url.find("/detail/")));
    }
  }
  REQUIRE(pages_stored < 10);

  serve = d.serve(options);
  const core::Job job = d.wait_terminal(id);
  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.attempts == 2);
  CHECK(job.counters.listing_pages_scraped == 10);
  CHECK(job.counters.items_found == 40);
  CHECK(job.counters.detail_pages_scraped == 40);
  CHECK(job.counters.detail_pages_failed == 0);
  const auto events = d.events(id);
  CHECK(listing_pages(events) == one_to(10));
  CHECK(events.size() == 50);
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  CHECK(site.pages_not_fetched_once("/listings", pages_stored) == std::vector<std::int64_t>{});
  for (const std::string& path : details_stored) {
    CHECK(site.hits(path) == 1);
  }
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: SIGTERM ends serve while a worker is inside an evaluation that cannot be "
          "interrupted, and the next start takes its job back at once",
          "[recovery][process]") {
  FixtureSite site;
  Deployment d;
  const std::vector<std::string> options = {"--workers", "1", "--lease-seconds", "3600"};
  auto serve = d.serve(options);
  json body = job_body(site.url("/elements"), 0, 600, 1);
  // A union libxml2 makes (README: namespace nodes stay libxml2's), of
  // 400,002 nodes with as many: minutes.
  body["options"]["selectors"]["fields"] = {{"n", "count(//namespace::* | //namespace::*)"}};
  const std::string id = d.create(body);
  REQUIRE(eventually([&] { return site.hits("/elements") == 1; }));
  // Parsed and in the sort well within this.
  std::this_thread::sleep_for(milliseconds(1500));

  serve->send(SIGTERM);
  const auto status = serve->wait(seconds(60));
  INFO("stderr: " << serve->err());
  CHECK(status == std::optional<int>(0));
  CHECK(serve->err().find("a worker is still inside a page's XPath evaluation or parse") !=
        std::string::npos);
  const core::Job left = d.job(id);
  CHECK(left.status == core::JobStatus::processing);
  CHECK(left.claim_token);  // as after kill -9
  CHECK(left.counters.listing_pages_scraped == 0);

  // Taken back at start, not after the hour's lease: waiting for a worker.
  serve = d.serve({"--workers", "0"});
  const core::Job back = d.job(id);
  CHECK(back.status == core::JobStatus::processing);
  CHECK_FALSE(back.claim_token);
  CHECK_FALSE(back.lease_expires_at);
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: SIGTERM waits past 10 s for a give-back that waits for the database, and "
          "the job is given back, not lost",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(120000);
  FixtureSite site(site_config);
  Deployment d;
  // One attempt: a job left as kill -9 leaves it would fail at the next start.
  const std::vector<std::string> options = {"--workers", "1", "--lease-seconds", "3600",
                                            "--max-attempts", "1"};
  auto serve = d.serve(options);
  const std::string id = d.create(job_body(site.url("/slow?page=1"), 0, 600, 1));
  REQUIRE(eventually([&] { return site.hits("/slow?page=1") == 1; }));

  {
    // Another process's write transaction, held past the stop's 10 s of grace.
    SQLite::Database other(d.db(), SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    serve->send(SIGTERM);
    std::this_thread::sleep_for(seconds(12));
    other.exec("COMMIT");
  }
  const auto status = serve->wait(seconds(60));
  INFO("stderr: " << serve->err());
  CHECK(status == std::optional<int>(0));
  CHECK(serve->err().find("XPath evaluation") == std::string::npos);
  const core::Job stopped = d.job(id);
  CHECK(stopped.status == core::JobStatus::processing);
  CHECK_FALSE(stopped.claim_token);

  serve = d.serve({"--workers", "0", "--max-attempts", "1"});
  CHECK(d.job(id).status == core::JobStatus::processing);
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: serve starts again at once on the port it served on, and refuses one in use",
          "[recovery][process]") {
  Deployment d;
  auto serve = d.serve({"--workers", "0"});
  const std::string listen = "127.0.0.1:" + std::to_string(d.port());
  // The server closes this connection first, so its side of it waits in
  // TIME_WAIT for a minute after the server is gone.
  const HttpReply closed = d.client().request("GET", "/healthz", "", {{"Connection", "close"}});
  REQUIRE(closed.status == 200);

  // While it listens, a second server on its port is refused.
  ChildProcess second(d.dir(), "second", {"serve", "--db", d.db(), "--listen", listen});
  CHECK(second.wait(seconds(20)) == std::optional<int>(1));
  CHECK(second.err() == "scrapekeep: cannot listen on " + listen + " (address in use or not allowed)\n");
  // On a new database file: none is left behind (the port is bound first).
  const std::string fresh = d.dir() + "/fresh.db";
  ChildProcess third(d.dir(), "third", {"serve", "--db", fresh, "--listen", listen});
  CHECK(third.wait(seconds(20)) == std::optional<int>(1));
  CHECK(third.out().empty());
  CHECK(third.err() ==
        "scrapekeep: cannot listen on " + listen + " (address in use or not allowed)\n");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    INFO(fresh << suffix);
    CHECK_FALSE(std::filesystem::exists(fresh + suffix));
  }

  serve->send(SIGTERM);
  REQUIRE(serve->wait(seconds(10)) == std::optional<int>(0));
  serve = d.serve({"--workers", "0"}, listen);
  CHECK(d.port() == std::stoi(listen.substr(listen.find(':') + 1)));
  CHECK(d.client().get("/healthz").status == 200);
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: serve's banner brackets an IPv6 host in its URLs, as a URL must",
          "[recovery][process]") {
  Deployment d;
  auto serve = d.serve({"--workers", "1"});
  const std::string v4 = "127.0.0.1:" + std::to_string(d.port());
  CHECK(serve->out().find("scrapekeep " SCRAPEKEEP_VERSION " serving on http://" + v4 +
                          " (database " + d.db() + ", 1 worker)\nTry: curl -s http://" + v4 +
                          "/healthz\n") != std::string::npos);
  serve->send(SIGTERM);
  REQUIRE(serve->wait(seconds(10)) == std::optional<int>(0));

  // Whether ::1 can be had is asked of the host, not of serve: a serve that
  // cannot listen on "[::1]:0" (brackets kept in the host) also says
  // "cannot listen on".
  if (!has_ipv6_loopback()) {
    WARN("no IPv6 loopback here: the IPv6 banner is not tested");
    return;
  }
  ChildProcess v6(d.dir(), "serve-v6", {"serve", "--db", d.db(), "--listen", "[::1]:0",
                                        "--workers", "0"});
  const auto started = wait_serving(v6, seconds(20));
  INFO("serve stderr: " << v6.err());
  REQUIRE(started);
  const std::string url = "http://[::1]:" + std::to_string(started->port);
  CHECK(v6.out() == "scrapekeep " SCRAPEKEEP_VERSION " serving on " + url + " (database " +
                        d.db() + ", 0 workers)\nTry: curl -s " + url + "/healthz\n");
  const HttpReply health = ApiClient("::1", started->port, {}).get("/healthz");
  CHECK(health.status == 200);
  v6.send(SIGTERM);
  CHECK(v6.wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: a job whose timeout passed while nothing ran completes with timeout",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(150);
  FixtureSite site(site_config);
  Deployment d;
  auto serve = d.serve({"--workers", "1"});
  const std::string id = d.create(job_body(site.url("/slow?page=1"), 0, 60, 1000));
  REQUIRE(eventually([&] { return d.job(id).counters.listing_pages_scraped >= 1; }));
  serve->kill_now();
  const core::Job killed = d.job(id);
  REQUIRE(killed.status == core::JobStatus::processing);
  REQUIRE(killed.started_at);
  // The down time outlasts the job's 60 s: its clock started 2 minutes ago.
  {
    SQLite::Database db(d.db(), SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "UPDATE jobs SET started_at = started_at - ? WHERE job_id = ?");
    q.bind(1, static_cast<std::int64_t>(120 * core::k_micros_per_second));
    q.bind(2, id);
    REQUIRE(q.exec() == 1);
  }
  const int hits_before = site.total_hits();

  serve = d.serve({"--workers", "1"});
  const core::Job job = d.wait_terminal(id);
  CHECK(job.status == core::JobStatus::completed);
  CHECK(job.completion_reason == core::CompletionReason::timeout);
  CHECK(job.attempts == 1);
  CHECK(job.counters.listing_pages_scraped == killed.counters.listing_pages_scraped);
  CHECK(job.counters.items_found == killed.counters.items_found);
  CHECK(job.counters.items_found == 4 * job.counters.listing_pages_scraped);
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  CHECK(site.total_hits() == hits_before);

  const auto progress = d.client().get("/v1/scrape/jobs/" + id + "/progress");
  REQUIRE(progress.status == 200);
  CHECK(progress.data()["completion_reason"] == "timeout");
  CHECK(progress.data()["total_properties_found"] == killed.counters.items_found);
  CHECK(progress.data()["progress_percentage"] == 100.0);
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}

TEST_CASE("processes: a job that moves forward between kills is never given up on",
          "[recovery][process]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(100);
  FixtureSite site(site_config);
  Deployment d;
  // An attempt cap of 2 and leases of an hour: every restart must take the
  // job back at once, and three kills must not end it while it stores pages.
  const std::vector<std::string> options = {"--workers", "1", "--max-attempts", "2",
                                            "--lease-seconds", "3600"};
  auto serve = d.serve(options);
  const std::string id = d.create(job_body(site.url("/slow?page=1"), 0, 600, 1000));
  std::int64_t pages = 0;
  for (int kill = 1; kill <= 3; ++kill) {
    REQUIRE(eventually([&] {
      const core::Job job = d.job(id);
      return job.attempts == kill && job.counters.listing_pages_scraped >= pages + 2;
    }));
    serve->kill_now();
    pages = d.job(id).counters.listing_pages_scraped;
    serve = d.serve(options);
  }
  REQUIRE(eventually([&] { return d.job(id).counters.listing_pages_scraped > pages; }));
  const core::Job job = d.job(id);
  CHECK(job.status == core::JobStatus::processing);
  CHECK(job.attempts == 4);
  CHECK(scrapekeep::testing::counter_mismatches(d.db(), id).empty());
  const auto events = d.events(id);
  CHECK(listing_pages(events) == one_to(static_cast<std::int64_t>(events.size())));

  const auto cancelled = d.client().post("/v1/scrape/jobs/" + id + "/cancel");
  CHECK(cancelled.status == 200);
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));
}
