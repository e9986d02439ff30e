// migrations/0002 (index jobs_progress): the progress read is answered from
// that index alone, gives the same progress body as the full row at every
// stage of a job, and a database migrated before the index existed gets it.

#include <catch2/catch.hpp>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <string>

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/migrations.hpp"
#include "scrapekeep/store/store_pool.hpp"
#include "support/old_schema.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::testing::as_schema_version;
using scrapekeep::core::Job;
using scrapekeep::core::Micros;
using scrapekeep::store::CreatedKey;
using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::store::StorePool;
using scrapekeep::testing::TempDir;

// 2026-03-02T10:00:00Z
constexpr Micros k_start = 1'772'445'600'000'000;
constexpr Micros k_lease = 60'000'000;

// The progress body of the job as job_for_key reads it and as get_job reads
// it, at `now`; fails the test when either read fails or misses.
std::pair<std::string, std::string> both_bodies(StorePool& pool, JobStore& store,
                                                const CreatedKey& key,
                                                const std::string& job_id, Micros now) {
  auto lease = pool.acquire();
  REQUIRE(lease.ok());
  auto fast = lease->job_for_key(key.key, job_id);
  REQUIRE(fast.ok());
  REQUIRE(fast->has_value());
  auto full = store.get_job(job_id, key.info.org_id);
  REQUIRE(full.ok());
  using scrapekeep::core::derive_progress;
  using scrapekeep::http::progress_json;
  return {progress_json(derive_progress(**fast, now)), progress_json(derive_progress(*full, now))};
}

} // namespace

TEST_CASE("the progress read uses the covering index jobs_progress", "[store][pool]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  auto store = JobStore::open(config);
  REQUIRE(store.ok());
  SQLite::Statement plan((*store)->database(),
                         "EXPLAIN QUERY PLAN " + StorePool::job_for_key_sql());
  std::string jobs_step;
  while (plan.executeStep()) {
    const std::string detail = plan.getColumn(3).getString();
    if (detail.rfind("SEARCH j ", 0) == 0) {
      jobs_step = detail;
    }
  }
  CHECK(jobs_step.find("USING COVERING INDEX jobs_progress (job_id=? AND org_id=?)") !=
        std::string::npos);
}

TEST_CASE("job_for_key gives the body of the full row at every stage of a job",
          "[store][pool]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  auto opened = JobStore::open(config);
  REQUIRE(opened.ok());
  JobStore& store = **opened;
  auto key = store.create_key("org-p", k_start);
  REQUIRE(key.ok());
  scrapekeep::core::JobOptions options;
  options.max_pages = 4;
  options.max_items = 100;
  options.follow_pagination = true;
  options.selectors.item = "//li";
  options.selectors.fields = {{"title", ".//h2"}};
  auto job = store.create_job(key->info.org_id, "http://127.0.0.1:9000/list?page=1", options,
                              k_start);
  REQUIRE(job.ok());
  StorePool pool(config);

  auto pending = both_bodies(pool, store, *key, job->job_id, k_start + 1'000'000);
  CHECK(pending.first == pending.second);
  CHECK(pending.first.find("\"status\":\"pending\"") != std::string::npos);

  auto claim = store.claim_next(k_start + 2'000'000, k_lease);
  REQUIRE(claim.ok());
  REQUIRE(claim->has_value());
  scrapekeep::store::ListingPageRecord page;
  page.page_number = 1;
  page.url = "http://127.0.0.1:9000/list?page=1";
  page.http_status = 200;
  page.started_at = k_start + 2'100'000;
  page.finished_at = k_start + 2'300'000;
  page.items.resize(3);
  for (auto& item : page.items) {
    item.fields = {{"title", std::string("t")}};
  }
  page.next_url = "http://127.0.0.1:9000/list?page=2";
  REQUIRE(store.record_listing_page(**claim, page, k_start + 2'300'000).ok());
  auto running = both_bodies(pool, store, *key, job->job_id, k_start + 3'000'000);
  CHECK(running.first == running.second);
  CHECK(running.first.find("\"total_properties_found\":3") != std::string::npos);
  CHECK(running.first.find("\"progress_percentage\":25.0") != std::string::npos);

  REQUIRE(store
              .finish(**claim, scrapekeep::core::CompletionReason::error,
                      std::string("listing page 2: HTTP 500"), k_start + 4'000'000)
              .ok());
  auto failed = both_bodies(pool, store, *key, job->job_id, k_start + 5'000'000);
  CHECK(failed.first == failed.second);
  CHECK(failed.first.find("\"status\":\"failed\"") != std::string::npos);
  CHECK(failed.first.find("listing page 2: HTTP 500") != std::string::npos);
}

TEST_CASE("a database of schema version 1 gets jobs_progress and loses its key prefixes when opened", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  CreatedKey key;
  std::string job_id;
  {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    auto created = (*store)->create_key("org-v1", k_start);
    REQUIRE(created.ok());
    key = *created;
    auto job = (*store)->create_job(key.info.org_id, "http://127.0.0.1:9000/", {}, k_start);
    REQUIRE(job.ok());
    job_id = job->job_id;
  }
  {
    // What a database written by a binary of schema version 1 looks like.
    SQLite::Database db(config.path, SQLite::OPEN_READWRITE);
    as_schema_version(db, 4);
    db.exec("DROP INDEX jobs_progress");
    db.exec("ALTER TABLE jobs DROP COLUMN lost_attempts");
    // Versions 1 to 3 kept the key's first characters beside its hash.
    db.exec("ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT ''");
    db.exec("UPDATE api_keys SET prefix = substr('" + key.key + "', 1, 11)");
    db.exec("DELETE FROM schema_migrations WHERE version > 1");
  }
  auto store = JobStore::open(config);
  REQUIRE(store.ok());
  auto version = (*store)->schema_version();
  REQUIRE(version.ok());
  CHECK(*version == scrapekeep::store::latest_schema_version());
  // Nothing of the key is left but its hash, and the key still works (below).
  CHECK((*store)->database().execAndGet(
                   "SELECT COUNT(*) FROM pragma_table_info('api_keys') WHERE name = 'prefix'")
            .getInt() == 0);
  CHECK((*store)->database().execAndGet(
                   "SELECT COUNT(*) FROM api_keys WHERE instr(key_id || org_id || key_hash, '" +
                   key.key.substr(3, 8) + "') > 0")
            .getInt() == 0);
  CHECK((*store)->database().execAndGet(
                   "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_progress'")
            .getInt() == 1);
  StorePool pool(config);
  auto lease = pool.acquire();
  REQUIRE(lease.ok());
  auto job = lease->job_for_key(key.key, job_id);
  REQUIRE(job.ok());
  REQUIRE(job->has_value());
  CHECK((*job)->url == "http://127.0.0.1:9000/");
}
