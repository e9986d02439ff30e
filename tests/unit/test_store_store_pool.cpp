// store/store_pool: the request fast path's one-statement read of a key and a
// job (job_for_key) must agree with find_key + get_job on every case, and see
// a key revoked by another connection at once.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/store_pool.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::core::Job;
using scrapekeep::core::JobOptions;
using scrapekeep::core::Micros;
using scrapekeep::store::CreatedKey;
using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::store::StorePool;
using scrapekeep::testing::TempDir;

// 2026-01-12T07:00:00Z
constexpr Micros k_t0 = 1'768'201'200'000'000;

struct PoolFixture {
  PoolFixture() {
    config.path = dir.file("scrapekeep.db");
    auto opened = JobStore::open(config);
    REQUIRE(opened.ok());
    admin = std::move(opened.value());
    auto a = admin->create_key("org-a", k_t0);
    auto b = admin->create_key("org-b", k_t0);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    key_a = *a;
    key_b = *b;
    JobOptions options;
    options.selectors.item = "//li";
    options.selectors.fields = {{"title", ".//h2"}};
    auto job = admin->create_job(key_a.info.org_id, "http://127.0.0.1:9000/?page=1", options, k_t0);
    REQUIRE(job.ok());
    job_a = *job;
    pool = std::make_unique<StorePool>(config);
  }

  TempDir dir;
  StoreConfig config;
  std::unique_ptr<JobStore> admin;
  CreatedKey key_a;
  CreatedKey key_b;
  Job job_a;
  std::unique_ptr<StorePool> pool;
};

// Whether job_for_key finds the job; fails the test on a store error.
bool finds(StorePool::Lease& lease, const std::string& key, const std::string& job_id) {
  auto job = lease.job_for_key(key, job_id);
  REQUIRE(job.ok());
  return job->has_value();
}

} // namespace

TEST_CASE("job_for_key reads the job of the key's organization", "[store][pool]") {
  PoolFixture f;
  auto lease = f.pool->acquire();
  REQUIRE(lease.ok());
  for (int round = 0; round < 2; ++round) {  // the second with the statement and hash kept
    auto job = lease->job_for_key(f.key_a.key, f.job_a.job_id);
    REQUIRE(job.ok());
    REQUIRE(job->has_value());
    const Job& got = **job;
    auto full = (*lease)->get_job(f.job_a.job_id, f.key_a.info.org_id);
    REQUIRE(full.ok());
    CHECK(got.job_id == full->job_id);
    CHECK(got.org_id == full->org_id);
    CHECK(got.status == full->status);
    CHECK(got.url == full->url);
    CHECK(got.created_at == full->created_at);
    CHECK(got.options.max_pages == full->options.max_pages);
    CHECK(got.options.max_items == full->options.max_items);
    CHECK(got.options.follow_pagination == full->options.follow_pagination);
    CHECK(got.options.depth == full->options.depth);
    // Not read: progress does not use them.
    CHECK(got.options.selectors.item.empty());
    CHECK(got.options.selectors.fields.empty());
    CHECK(full->options.selectors.item == "//li");
  }
}

TEST_CASE("job_for_key finds nothing for another organization, a missing job or a bad key",
          "[store][pool]") {
  PoolFixture f;
  auto lease = f.pool->acquire();
  REQUIRE(lease.ok());
  CHECK_FALSE(finds(*lease, f.key_b.key, f.job_a.job_id));
  CHECK_FALSE(finds(*lease, f.key_a.key, "job_000000000000000000000000"));
  CHECK_FALSE(finds(*lease, "ak_" + std::string(40, '0'), f.job_a.job_id));
  // The key hashed last changes: the right job is read again.
  CHECK(finds(*lease, f.key_a.key, f.job_a.job_id));
}

TEST_CASE("job_for_key sees a key revoked by another connection at once", "[store][pool]") {
  PoolFixture f;
  auto lease = f.pool->acquire();
  REQUIRE(lease.ok());
  REQUIRE(finds(*lease, f.key_a.key, f.job_a.job_id));
  REQUIRE(f.admin->revoke_key(f.key_a.info.key_id, k_t0 + 1).ok());
  CHECK_FALSE(finds(*lease, f.key_a.key, f.job_a.job_id));
}

TEST_CASE("a pool keeps the connections given back, and closes those beyond its number to keep "
          "once they have been idle long enough",
          "[store][pool]") {
  PoolFixture f;
  const auto given_back = [&](StorePool& pool) {
    std::vector<StorePool::Lease> leases;
    for (int i = 0; i < 5; ++i) {
      auto lease = pool.acquire();
      REQUIRE(lease.ok());
      leases.push_back(std::move(lease.value()));
    }
    CHECK(pool.idle() == 0);
  };
  // Not idle long enough: all kept, for the next burst.
  StorePool lasting(f.config, 2, std::chrono::hours(1));
  given_back(lasting);
  CHECK(lasting.idle() == 5);
  // Idle long enough: all but 2 closed.
  StorePool brief(f.config, 2, std::chrono::milliseconds(0));
  given_back(brief);
  CHECK(brief.idle() == 2);
  // Those kept are used again.
  {
    auto again = brief.acquire();
    REQUIRE(again.ok());
    CHECK(brief.idle() == 1);
    CHECK(finds(*again, f.key_a.key, f.job_a.job_id));
  }
  CHECK(brief.idle() == 2);
}
