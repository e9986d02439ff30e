// The crash test of issue 4: a real `scrapekeep serve` scraping the fixture
// site is killed with SIGKILL at random moments and restarted each time;
// afterwards the database is sound and every job holds exactly the site.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/api_server.hpp"
#include "support/child_process.hpp"
#include "support/fixture_site.hpp"
#include "support/temp_dir.hpp"

namespace {

using json = nlohmann::ordered_json;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::ChildProcess;
using scrapekeep::testing::FixtureSite;
using scrapekeep::testing::FixtureSiteConfig;
using scrapekeep::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr int k_pages = 30;
constexpr int k_items_per_page = 4;
constexpr int k_items = k_pages * k_items_per_page;
constexpr int k_kills = 6;

json job_body(const FixtureSite& site, int depth) {
  json selectors = {{"item", "//article[@class='property']"},
                    {"fields", {{"title", ".//h2"}, {"price", ".//span[@class='price']"}}}};
  if (depth == 1) {
    selectors["detail_fields"] = {{"description", "//p[@class='desc']"}};
  }
  return {{"url", site.url("/listings?page=1")},
          {"options",
           {{"timeout", 600},
            {"max_items", 1000},
            {"follow_pagination", true},
            {"max_pages", k_pages},
            {"depth", depth},
            {"selectors", selectors}}}};
}

// Everything one job stored, checked against the site's pages.
void check_job_holds_the_site(SQLite::Database& db, const std::string& job_id, int depth) {
  INFO("job " << job_id << " depth " << depth);
  SQLite::Statement job(db,
                        "SELECT status, completion_reason, listing_pages_scraped, items_found, "
                        "detail_pages_scraped, detail_pages_failed, attempts FROM jobs "
                        "WHERE job_id = ?");
  job.bind(1, job_id);
  REQUIRE(job.executeStep());
  CHECK(job.getColumn(0).getString() == "completed");
  CHECK(job.getColumn(1).getString() == "done");
  CHECK(job.getColumn(2).getInt() == k_pages);
  CHECK(job.getColumn(3).getInt() == k_items);
  CHECK(job.getColumn(4).getInt() == (depth == 1 ? k_items : 0));
  CHECK(job.getColumn(5).getInt() == 0);
  CHECK(job.getColumn(6).getInt() >= 1);

  // Each listing page once, all of them, all ok.
  std::multiset<int> listing_pages;
  SQLite::Statement listing(
      db, "SELECT page_number, outcome FROM page_events WHERE job_id = ? AND kind = 'listing'");
  listing.bind(1, job_id);
  while (listing.executeStep()) {
    listing_pages.insert(listing.getColumn(0).getInt());
    CHECK(listing.getColumn(1).getString() == "ok");
  }
  std::multiset<int> expected_pages;
  for (int page = 1; page <= k_pages; ++page) {
    expected_pages.insert(page);
  }
  CHECK(listing_pages == expected_pages);

  // Each detail page once (depth 1), none at depth 0.
  std::multiset<int> detail_items;
  SQLite::Statement detail(
      db, "SELECT item_index FROM page_events WHERE job_id = ? AND kind = 'detail'");
  detail.bind(1, job_id);
  while (detail.executeStep()) {
    detail_items.insert(detail.getColumn(0).getInt());
  }
  std::multiset<int> expected_items;
  if (depth == 1) {
    for (int i = 0; i < k_items; ++i) {
      expected_items.insert(i);
    }
  }
  CHECK(detail_items == expected_items);

  // The items, in the site's order, with their fields and details.
  SQLite::Statement items(db,
                          "SELECT item_index, page_number, fields, detail FROM result_items "
                          "WHERE job_id = ? ORDER BY item_index");
  items.bind(1, job_id);
  int count = 0;
  while (items.executeStep()) {
    const int i = items.getColumn(0).getInt();
    const int page = 1 + i / k_items_per_page;
    const int item = 1 + i % k_items_per_page;
    INFO("item " << i);
    CHECK(i == count);
    CHECK(items.getColumn(1).getInt() == page);
    const json fields = json::parse(items.getColumn(2).getString());
    CHECK(fields == json{{"title", FixtureSite::title(page, item)},
                         {"price", FixtureSite::price(page, item)}});
    if (depth == 1) {
      REQUIRE_FALSE(items.getColumn(3).isNull());
      CHECK(json::parse(items.getColumn(3).getString()) ==
            json{{"description", FixtureSite::description(page, item)}});
    } else {
      CHECK(items.getColumn(3).isNull());
    }
    ++count;
  }
  CHECK(count == k_items);
  CHECK(scrapekeep::testing::counter_mismatches(db.getFilename(), job_id).empty());
}

} // namespace

TEST_CASE("crash: serve killed with SIGKILL at random moments loses and repeats nothing",
          "[recovery][crash][process]") {
  FixtureSiteConfig site_config;
  site_config.pages = k_pages;
  site_config.items_per_page = k_items_per_page;
  site_config.listing_delay = milliseconds(40);
  site_config.detail_delay = milliseconds(15);
  FixtureSite site(site_config);
  TempDir dir;
  const std::string db_path = dir.file("scrapekeep.db");
  const std::vector<std::string> args = {
      "serve",          "--db",          db_path, "--listen",   "127.0.0.1:0",
      "--workers",      "2",             "--detail-concurrency",  "4",
      "--lease-seconds", "2",            "--max-attempts",        "100"};

  const unsigned seed = std::random_device{}();
  INFO("kill timing seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kill_after_ms(100, 900);

  auto serve = std::make_unique<ChildProcess>(dir.path().string(), "serve-0", args);
  auto started = wait_serving(*serve, seconds(20));
  INFO("stderr: " << serve->err());
  REQUIRE(started);
  const std::string key = started->key;
  REQUIRE_FALSE(key.empty());

  // Two depth-1 jobs and a depth-0 one, created before the first kill.
  std::vector<std::pair<std::string, int>> jobs;
  {
    ApiClient client("127.0.0.1", started->port, {{"X-API-Key", key}});
    for (int depth : {1, 0, 1}) {
      const auto created = client.post("/v1/scrape", job_body(site, depth));
      REQUIRE(created.status == 201);
      jobs.emplace_back(created.data()["job_id"].get<std::string>(), depth);
    }
  }

  for (int round = 1; round <= k_kills; ++round) {
    std::this_thread::sleep_for(milliseconds(kill_after_ms(rng)));
    CHECK(serve->kill_now() == 128 + SIGKILL);
    serve = std::make_unique<ChildProcess>(dir.path().string(), "serve-" + std::to_string(round),
                                           args);
    started = wait_serving(*serve, seconds(20));
    INFO("round " << round << " stderr: " << serve->err());
    REQUIRE(started);
    CHECK(started->key.empty());  // the database kept its key
  }

  // The last run finishes every job, then shuts down cleanly.
  {
    // Scoped: an idle keep-alive connection would hold serve's shutdown
    // until the keep-alive timeout.
    ApiClient client("127.0.0.1", started->port, {{"X-API-Key", key}});
    const auto until = steady_clock::now() + seconds(60);
    std::vector<std::string> statuses;
    while (true) {
      statuses.clear();
      bool all_terminal = true;
      for (const auto& [id, depth] : jobs) {
        const auto reply = client.get("/v1/scrape/jobs/" + id);
        REQUIRE(reply.status == 200);
        const std::string status = reply.data()["status"].get<std::string>();
        statuses.push_back(status);
        all_terminal = all_terminal && status != "pending" && status != "processing";
      }
      if (all_terminal || steady_clock::now() > until) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  serve->send(SIGTERM);
  CHECK(serve->wait(seconds(10)) == std::optional<int>(0));

  CHECK(scrapekeep::testing::integrity_check(db_path) == "ok");
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  for (const auto& [id, depth] : jobs) {
    check_job_holds_the_site(db, id, depth);
  }
  // The kills did land in the middle of the work: some job was taken up again.
  SQLite::Statement retaken(db, "SELECT MAX(attempts) FROM jobs");
  REQUIRE(retaken.executeStep());
  CHECK(retaken.getColumn(0).getInt() >= 2);
}
