// Storage faults: a locked, full or read-only database, and one removed
// underneath the server. The API answers 503 STORAGE_UNAVAILABLE to what it
// cannot do and serves the reads it can, workers wait and retry, nothing is
// half-written, and service resumes when the fault clears.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/http/server.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/worker.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"
#include "scrapekeep/store/store_pool.hpp"
#include "support/api_server.hpp"
#include "support/child_process.hpp"
#include "support/fixture_site.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace core = scrapekeep::core;
namespace http = scrapekeep::http;
namespace scrape = scrapekeep::scrape;
namespace store = scrapekeep::store;
using json = nlohmann::ordered_json;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::eventually;
using scrapekeep::testing::FixtureSite;
using scrapekeep::testing::FixtureSiteConfig;
using scrapekeep::testing::HttpReply;
using scrapekeep::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

core::JobOptions listing_options(int pages) {
  core::JobOptions options;
  options.timeout = 600;
  options.max_items = 100000;
  options.follow_pagination = true;
  options.max_pages = pages;
  options.selectors.item = "//article[@class='property']";
  options.selectors.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
  return options;
}

json create_body(const std::string& url) {
  return {{"url", url}, {"options", {{"selectors", {{"item", "//article"}}}}}};
}

// The database file with a key, an API server over it whose connections use
// `server_store` (busy timeout, read-only, page limit), and optionally
// scraper workers; the connection `admin` is the test's own, without faults.
class Faulty {
 public:
  Faulty() {
    config.path = m_dir.file("scrapekeep.db");
    config.busy_timeout_ms = 200;
    auto opened = store::JobStore::open(config);
    REQUIRE(opened.ok());
    admin = std::move(*opened);
    auto key = admin->create_key("default", m_clock.now());
    REQUIRE(key.ok());
    m_key = key->key;
    m_org = key->info.org_id;
  }

  ~Faulty() {
    if (m_workers) {
      m_workers->stop();
    }
    if (m_server) {
      m_server->stop();
      m_thread.join();
    }
  }

  const std::string& path() const { return config.path; }

  void serve(const store::StoreConfig& server_store) {
    scrape::init_libxml();
    http::ServerConfig server_config;
    server_config.host = "127.0.0.1";
    server_config.port = 0;
    server_config.xpath_check = scrape::xpath_error;
    m_pool = std::make_unique<store::StorePool>(server_store);
    m_server = std::make_unique<http::ApiServer>(server_config, *m_pool, m_clock);
    auto port = m_server->bind();
    REQUIRE(port.ok());
    m_port = *port;
    m_thread = std::thread([this] { m_server->serve(); });
    REQUIRE(eventually([&] { return client().get("/healthz").status != 0; }));
  }

  void work(const store::StoreConfig& worker_store, scrape::FetchConfig fetch = {}) {
    scrape::WorkerConfig worker_config;
    worker_config.workers = 1;
    worker_config.poll_interval = milliseconds(20);
    worker_config.renew_interval = milliseconds(500);
    worker_config.max_store_backoff = milliseconds(50);
    worker_config.log = [this](const std::string& line) {
      std::lock_guard lock(m_log_mutex);
      m_log.push_back(line);
    };
    fetch.backoff = milliseconds(10);
    m_workers = std::make_unique<scrape::WorkerPool>(
        worker_store, worker_config, m_clock,
        scrape::http_fetcher_factory(fetch, std::make_shared<scrape::HostLimiter>()));
    m_workers->start();
  }

  // Log lines of the workers containing `part`.
  int logged(const std::string& part) {
    std::lock_guard lock(m_log_mutex);
    int n = 0;
    for (const std::string& line : m_log) {
      n += line.find(part) != std::string::npos ? 1 : 0;
    }
    return n;
  }

  ApiClient client() const { return ApiClient("127.0.0.1", m_port, {{"X-API-Key", m_key}}); }

  std::string create(const std::string& url, const core::JobOptions& options) {
    auto job = admin->create_job(m_org, url, options, m_clock.now());
    REQUIRE(job.ok());
    return job->job_id;
  }

  core::Job job(const std::string& id) {
    auto job = admin->get_job(id, std::nullopt);
    REQUIRE(job.ok());
    return *job;
  }

  std::int64_t count(const std::string& sql) {
    SQLite::Statement q(admin->database(), sql);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }

  store::StoreConfig config;
  std::unique_ptr<store::JobStore> admin;
  std::int64_t org() const { return m_org; }
  core::SystemClock& clock() { return m_clock; }

 private:
  TempDir m_dir;
  core::SystemClock m_clock;
  std::string m_key;
  std::int64_t m_org = 0;
  std::unique_ptr<store::StorePool> m_pool;
  std::unique_ptr<http::ApiServer> m_server;
  std::thread m_thread;
  int m_port = 0;
  std::unique_ptr<scrape::WorkerPool> m_workers;
  std::mutex m_log_mutex;
  std::vector<std::string> m_log;
};

// A 503 STORAGE_UNAVAILABLE in the envelope, telling nothing of the file.
void check_unavailable(const HttpReply& reply, const std::string& path) {
  INFO(reply.body << reply.transport_error);
  CHECK(reply.status == 503);
  CHECK(reply.error()["code"] == "STORAGE_UNAVAILABLE");
  CHECK(reply.error()["type"] == "server_error");
  CHECK(reply.error()["status"] == 503);
  CHECK(reply.body.find(path) == std::string::npos);
  CHECK(reply.body.find("scrapekeep.db") == std::string::npos);
}

} // namespace

TEST_CASE("storage: a locked database answers 503 to writes, serves reads, then recovers",
          "[storage]") {
  Faulty f;
  f.serve(f.config);
  ApiClient api = f.client();
  const auto created = api.post("/v1/scrape", create_body("http://127.0.0.1:9/a"));
  REQUIRE(created.status == 201);
  const std::string id = created.data()["job_id"];

  // Another connection holds the write lock past the busy timeout. In WAL
  // mode readers are not blocked by it.
  f.admin->database().exec("BEGIN EXCLUSIVE");
  check_unavailable(api.post("/v1/scrape", create_body("http://127.0.0.1:9/b")), f.path());
  check_unavailable(api.post("/v1/scrape/jobs/" + id + "/cancel"), f.path());
  CHECK(api.get("/v1/scrape/jobs/" + id).status == 200);
  CHECK(api.get("/v1/scrape/jobs/" + id + "/progress").status == 200);
  CHECK(api.get("/v1/scrape/jobs").data()["total"] == 1);
  CHECK(api.get("/healthz").status == 200);
  CHECK(f.count("SELECT COUNT(*) FROM jobs") == 1);
  f.admin->database().exec("COMMIT");

  // The lock is gone: the same requests succeed, with no leftovers of the
  // refused ones.
  CHECK(api.post("/v1/scrape", create_body("http://127.0.0.1:9/b")).status == 201);
  CHECK(api.post("/v1/scrape/jobs/" + id + "/cancel").data()["status"] == "cancelled");
  CHECK(f.count("SELECT COUNT(*) FROM jobs") == 2);
}

TEST_CASE("storage: a full disk answers 503 to writes and pauses the worker, freeing space resumes both",
          "[storage]") {
  FixtureSiteConfig site_config;
  site_config.pages = 20;
  site_config.listing_delay = milliseconds(20);
  FixtureSite site(site_config);
  Faulty f;

  // Ballast: a finished job whose results take ~150 pages, deleted later to
  // make room.
  std::string ballast;
  {
    core::JobOptions options = listing_options(1);
    ballast = f.create("http://127.0.0.1:9/ballast", options);
    auto claim = f.admin->claim_next(f.clock().now(), 60 * core::k_micros_per_second);
    REQUIRE(claim.ok());
    REQUIRE(claim->has_value());
    store::ListingPageRecord page;
    page.url = "http://127.0.0.1:9/ballast";
    page.http_status = 200;
    for (int i = 0; i < 2000; ++i) {
      page.items.push_back(store::NewItem{{{"title", std::string(250, 'x') + std::to_string(i)}},
                                          std::nullopt});
    }
    REQUIRE(f.admin->record_listing_page(**claim, page, f.clock().now()).ok());
    REQUIRE(f.admin->finish(**claim, core::CompletionReason::done, std::nullopt,
                            f.clock().now())
                .ok());
  }
  const std::string job_id = f.create(site.url("/listings?page=1"), listing_options(20));
  // The disk is "full" at the file's size now, for every connection of the
  // server and the worker.
  const std::int64_t pages = f.count("PRAGMA page_count");
  store::StoreConfig full = f.config;
  full.max_page_count = pages;
  f.serve(full);
  f.work(full);
  ApiClient api = f.client();

  // Creating jobs fills the last free bytes of the file's pages, then fails.
  int created = 0;
  HttpReply refused;
  for (int i = 0; i < 2000; ++i) {
    refused = api.post("/v1/scrape", create_body("http://127.0.0.1:9/fill-" + std::to_string(i) +
                                                 std::string(400, 'p')));
    if (refused.status != 201) {
      break;
    }
    ++created;
  }
  check_unavailable(refused, f.path());
  CHECK(f.count("SELECT COUNT(*) FROM jobs") == 2 + created);
  CHECK(f.count("PRAGMA page_count") == pages);

  // The worker cannot store its pages: it waits, retrying, and what it did
  // store is whole.
  REQUIRE(eventually([&] { return f.logged("store unavailable") + f.logged("cannot claim") > 0; }));
  const core::Job stalled = f.job(job_id);
  CHECK_FALSE(core::is_terminal(stalled.status));
  CHECK(scrapekeep::testing::counter_mismatches(f.path(), job_id).empty());

  // Reads are served meanwhile.
  CHECK(api.get("/v1/scrape/jobs/" + job_id).status == 200);
  CHECK(api.get("/v1/scrape/jobs/" + job_id + "/events").status == 200);
  CHECK(api.get("/healthz").status == 200);

  // Deleting the ballast frees pages inside the file: service resumes by itself.
  const auto deleted = api.del("/v1/scrape/jobs/" + ballast);
  INFO(deleted.body);
  REQUIRE(deleted.status == 200);
  CHECK(api.post("/v1/scrape", create_body("http://127.0.0.1:9/after")).status == 201);
  REQUIRE(eventually([&] { return core::is_terminal(f.job(job_id).status); }));
  const core::Job job = f.job(job_id);
  CHECK(job.completion_reason == core::CompletionReason::done);
  CHECK(job.counters.listing_pages_scraped == 20);
  CHECK(job.counters.items_found == 80);
  CHECK(f.count("SELECT COUNT(*) FROM page_events WHERE job_id = '" + job_id + "'") == 20);
  CHECK(scrapekeep::testing::counter_mismatches(f.path(), job_id).empty());
  CHECK(f.count("PRAGMA page_count") <= pages);
  CHECK(scrapekeep::testing::integrity_check(f.path()) == "ok");
}

TEST_CASE("storage: a read-only database answers 503 to writes and serves reads", "[storage]") {
  FixtureSite site;
  Faulty f;
  const std::string id = f.create(site.url("/listings?page=1"), listing_options(3));
  store::StoreConfig read_only = f.config;
  read_only.read_only = true;
  f.serve(read_only);
  f.work(read_only);
  ApiClient api = f.client();

  check_unavailable(api.post("/v1/scrape", create_body("http://127.0.0.1:9/b")), f.path());
  check_unavailable(api.post("/v1/scrape/jobs/" + id + "/cancel"), f.path());
  CHECK(api.get("/v1/scrape/jobs/" + id).data()["status"] == "pending");
  CHECK(api.get("/v1/scrape/jobs/" + id + "/results").status == 200);
  CHECK(api.get("/healthz").status == 200);
  // The worker cannot claim: it keeps trying, says so once, and changes nothing.
  REQUIRE(eventually([&] { return f.logged("cannot claim a job") >= 1; }));
  std::this_thread::sleep_for(milliseconds(200));  // 10 polls
  CHECK(f.logged("cannot claim a job") == 1);
  const core::Job job = f.job(id);
  CHECK(job.status == core::JobStatus::pending);
  CHECK(job.attempts == 0);
  CHECK(site.total_hits() == 0);
  CHECK(f.count("SELECT COUNT(*) FROM jobs") == 1);
}

TEST_CASE("storage: the database file removed underneath the server", "[storage]") {
  Faulty f;
  f.serve(f.config);
  std::mutex log_mutex;
  std::vector<std::string> log;
  store::MaintenanceConfig maintenance_config;
  maintenance_config.recover_interval = milliseconds(10);
  maintenance_config.log = [&](const std::string& line) {
    std::lock_guard lock(log_mutex);
    log.push_back(line);
  };
  const auto logged = [&](const std::string& part) {
    std::lock_guard lock(log_mutex);
    int n = 0;
    for (const std::string& line : log) {
      n += line.find(part) != std::string::npos ? 1 : 0;
    }
    return n;
  };
  // A job whose lease is over: once maintenance has taken it back, its
  // connection is open.
  f.create("http://127.0.0.1:9/leased", listing_options(1));
  REQUIRE(f.admin->claim_next(f.clock().now() - 10 * core::k_micros_per_second,
                              core::k_micros_per_second)
              .ok());
  store::Maintenance maintenance(f.config, maintenance_config, f.clock());
  maintenance.start();
  REQUIRE(eventually([&] { return logged("recovered 1 job(s)") == 1; }));
  ApiClient api = f.client();
  REQUIRE(api.post("/v1/scrape", create_body("http://127.0.0.1:9/a")).status == 201);
  REQUIRE(api.get("/healthz").status == 200);

  std::filesystem::remove(f.path());

  // Health says the database is gone, without naming it.
  const HttpReply health = api.get("/healthz");
  check_unavailable(health, f.path());
  CHECK(health.error()["details"]["database"] == "unavailable");

  // A connection opened now does not create an empty database in its place
  // (which would also delete the old WAL): it is unavailable.
  store::StoreConfig pooled = f.config;
  pooled.migrate = false;
  store::StorePool fresh(pooled);
  auto lease = fresh.acquire();
  REQUIRE_FALSE(lease.ok());
  CHECK(lease.error().code == core::ErrorCode::unavailable);
  CHECK_FALSE(std::filesystem::exists(f.path()));

  // The process says so in its log, once.
  REQUIRE(eventually([&] { return logged("was removed or replaced") > 0; }));
  std::this_thread::sleep_for(milliseconds(50));
  maintenance.stop();
  CHECK(logged("was removed or replaced") == 1);
  CHECK_FALSE(std::filesystem::exists(f.path()));
}

TEST_CASE("storage: a worker whose database file is removed fetches nothing more, and goes on "
          "once it is back",
          "[storage]") {
  FixtureSiteConfig site_config;
  site_config.slow_delay = milliseconds(20);
  FixtureSite site(site_config);
  Faulty f;
  core::JobOptions options = listing_options(10000);
  const std::string job_id = f.create(site.url("/slow?page=1"), options);
  f.work(f.config);
  REQUIRE(eventually([&] { return f.job(job_id).counters.listing_pages_scraped >= 3; }));

  const std::string aside = f.path() + ".aside";
  std::filesystem::rename(f.path(), aside);
  REQUIRE(eventually([&] {
    return f.logged("the database file was removed or replaced; no job is taken until it is "
                    "back") == 1;
  }));
  // At most the request in flight then: none after it.
  const int hits = site.hits_with_prefix("/slow");
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(site.hits_with_prefix("/slow") <= hits + 1);
  const int stopped_at = site.hits_with_prefix("/slow");
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(site.hits_with_prefix("/slow") == stopped_at);
  CHECK(f.logged("no job is taken until it is back") == 1);  // said once, not per poll
  CHECK(f.logged("job " + job_id + ": no longer this worker's") == 1);

  // Back in place, the job is taken back once its lease ends, and goes on.
  std::filesystem::rename(aside, f.path());
  const std::int64_t pages = f.job(job_id).counters.listing_pages_scraped;
  const core::Micros after_lease = f.clock().now() + 11 * core::k_micros_per_second;
  REQUIRE(f.admin->recover_expired(after_lease, 10).ok());
  REQUIRE(eventually([&] { return f.job(job_id).counters.listing_pages_scraped > pages + 2; }));
  CHECK(f.job(job_id).attempts == 2);
  // Each page stored once: the one in flight at the removal was not stored.
  CHECK(site.pages_not_fetched_once("/slow", pages).empty());
  CHECK(f.count("SELECT COUNT(*) FROM page_events WHERE job_id = '" + job_id + "'") ==
        f.job(job_id).counters.listing_pages_scraped);
}

TEST_CASE("storage: a job whose database file is removed before its first request sends none",
          "[storage]") {
  FixtureSite site;
  Faulty f;
  // The host's lookup takes a while: the file is removed meanwhile, after
  // the claim and before the job's first request.
  std::atomic<bool> looked_up{false};
  scrape::FetchConfig fetch;
  fetch.resolver = [&looked_up](const std::string&) {
    looked_up = true;
    std::this_thread::sleep_for(milliseconds(400));
    return std::vector<std::string>{"127.0.0.1"};
  };
  const std::string job_id =
      f.create("http://site.test:" + std::to_string(site.port()) + "/listings?page=1",
               listing_options(3));
  f.work(f.config, fetch);
  REQUIRE(eventually([&] { return looked_up.load(); }));
  std::filesystem::remove(f.path());
  REQUIRE(eventually([&] { return f.logged("no job is taken until it is back") == 1; }));
  std::this_thread::sleep_for(milliseconds(600));
  CHECK(site.total_hits() == 0);
}

// An empty file: a new connection finds no scrapekeep database in it. (A
// file with other bytes is read together with the old database's WAL, which
// still holds its recent pages, by whatever opens it: SQLite's affair.)
TEST_CASE("storage: an empty file put in the database's place answers 503, not a client error",
          "[storage]") {
  Faulty f;
  f.serve(f.config);
  ApiClient api = f.client();
  const HttpReply created = api.post("/v1/scrape", create_body("http://127.0.0.1:9/a"));
  REQUIRE(created.status == 201);
  const std::string id = created.data()["job_id"];
  REQUIRE(api.get("/healthz").status == 200);

  std::filesystem::remove(f.path());
  std::ofstream(f.path(), std::ios::binary).close();

  // It answered 422 VALIDATION_ERROR, "not a scrapekeep database".
  check_unavailable(api.get("/healthz"), f.path());
  check_unavailable(api.get("/v1/scrape/jobs/" + id), f.path());
  check_unavailable(api.get("/v1/scrape/jobs"), f.path());
}

TEST_CASE("storage: a database that cannot be made on a full disk leaves no file behind",
          "[storage]") {
  TempDir dir;
  store::StoreConfig config;
  config.path = dir.file("new.db");
  config.max_page_count = 2;  // the disk is full after two pages
  auto opened = store::JobStore::open(config);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == core::ErrorCode::unavailable);
  CHECK(opened.error().message == "database or disk is full");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    INFO(suffix);
    CHECK_FALSE(std::filesystem::exists(config.path + suffix));
  }
  // Room again: made as usual.
  config.max_page_count = 0;
  CHECK(store::JobStore::open(config).ok());
}

TEST_CASE("storage: a database that cannot be made on a full disk through a link leaves the "
          "link, and no file where it points",
          "[storage]") {
  // A link made for a database still to come (the data on another disk):
  // SQLite makes the file, and its -wal and -shm, where the link points.
  TempDir dir;
  std::filesystem::create_directory(dir.file("data"));
  const std::string target = dir.file("data/jobs.db");
  store::StoreConfig config;
  config.path = dir.file("jobs.db");
  std::filesystem::create_symlink(target, config.path);
  config.max_page_count = 2;  // the disk is full after two pages
  auto opened = store::JobStore::open(config);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().message == "database or disk is full");
  CHECK(std::filesystem::is_symlink(config.path));
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    INFO(suffix);
    CHECK_FALSE(std::filesystem::exists(target + suffix));
  }
  // Room again: made where the link points, as usual.
  config.max_page_count = 0;
  CHECK(store::JobStore::open(config).ok());
  CHECK(std::filesystem::is_symlink(config.path));
  CHECK(std::filesystem::is_regular_file(target));
}
