// scrapekeep cancel: the real binary, on a database file of its own.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace core = scrapekeep::core;
using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::run_program;
using scrapekeep::testing::RunResult;
using scrapekeep::testing::TempDir;

constexpr core::Micros k_t0 = 1'768'201'200'000'000;  // 2026-01-12T07:00:00Z

RunResult cancel(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> all = {SCRAPEKEEP_BINARY, "cancel"};
  all.insert(all.end(), args.begin(), args.end());
  return run_program(dir.path().string(), all);
}

std::unique_ptr<JobStore> open_store(const std::string& path) {
  auto opened = JobStore::open(StoreConfig{.path = path});
  REQUIRE(opened.ok());
  return std::move(*opened);
}

std::string new_job(JobStore& store, std::int64_t org, core::Micros at) {
  core::JobOptions options;
  options.selectors.item = "//article";
  options.selectors.fields = {{"title", ".//h2"}};
  auto job = store.create_job(org, "http://127.0.0.1:9/l?page=1", options, at);
  REQUIRE(job.ok());
  return job->job_id;
}

}  // namespace

TEST_CASE("cancel ends a pending or a processing job of any organization, as the API's cancel",
          "[cli][cancel]") {
  TempDir dir;
  const std::string db = dir.file("cancel.db");
  std::string pending;
  std::string processing;
  {
    auto store = open_store(db);
    auto a = store->create_key("org-a", k_t0);
    auto b = store->create_key("org-b", k_t0);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    processing = new_job(*store, a->info.org_id, k_t0);  // claimed first: created first
    pending = new_job(*store, b->info.org_id, k_t0 + 1'000'000);
    auto claimed = store->claim_next(k_t0 + 2'000'000, 30'000'000);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->has_value());
    REQUIRE((*claimed)->job_id == processing);
  }

  for (const std::string& id : {pending, processing}) {
    INFO(id);
    const RunResult r = cancel(dir, {"--db", db, id});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "Cancelled job " + id + "\n");
    CHECK(r.err.empty());
    auto store = open_store(db);
    auto job = store->get_job(id, std::nullopt);
    REQUIRE(job.ok());
    CHECK(job->status == core::JobStatus::cancelled);
    CHECK(job->completion_reason == core::CompletionReason::cancelled);
    CHECK(job->completed_at.has_value());
    CHECK_FALSE(job->claim_token.has_value());
    CHECK_FALSE(job->lease_expires_at.has_value());
  }

  SECTION("a job already ended is refused, and stays as it was") {
    const RunResult r = cancel(dir, {"--db", db, pending});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "scrapekeep: cannot cancel " + pending + ": job is already cancelled\n");
  }
  SECTION("an id that names no job is refused") {
    const std::string id = "job_0123456789abcdef01234567";
    const RunResult r = cancel(dir, {"--db", db, id});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: cannot cancel " + id + ": job not found\n");
  }
}

TEST_CASE("cancel without a job id is bad usage, and a missing database is not created",
          "[cli][cancel]") {
  TempDir dir;
  const std::string db = dir.file("missing.db");
  const RunResult usage = cancel(dir, {"--db", db});
  CHECK(usage.exit_code == 2);
  CHECK(usage.out.empty());
  // The argument is named as the README names it (`cancel --db PATH JOB_ID`).
  CHECK(usage.err == "scrapekeep: JOB_ID is required (see scrapekeep cancel --help)\n");
  const RunResult missing = cancel(dir, {"--db", db, "job_0123456789abcdef01234567"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("scrapekeep: ") == 0);
  CHECK_FALSE(std::filesystem::exists(db));
  // Nor is an empty file made one.
  { std::ofstream touch(db); }
  const RunResult empty = cancel(dir, {"--db", db, "job_0123456789abcdef01234567"});
  CHECK(empty.exit_code == 1);
  CHECK(empty.err ==
        "scrapekeep: the file is not a scrapekeep database: it has no tables (a copy made "
        "without its -wal file may have none yet)\n");
  CHECK(std::filesystem::file_size(db) == 0);
}
