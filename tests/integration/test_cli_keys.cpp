// scrapekeep keys: the real binary, on a database file of its own.

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::run_program;
using scrapekeep::testing::RunResult;
using scrapekeep::testing::TempDir;

RunResult create_key(const TempDir& dir, const std::string& db, const std::string& org) {
  return run_program(dir.path().string(),
                     {SCRAPEKEEP_BINARY, "keys", "create", "--db", db, "--org", org});
}

}  // namespace

TEST_CASE("keys create refuses an empty organization name as bad usage", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  const std::string k_refused =
      "scrapekeep: --org: the organization name must not be empty (see scrapekeep --help)\n";

  SECTION("on a new file, which is not created") {
    for (const std::string org : {"", " ", " \t "}) {
      auto r = create_key(dir, db, org);
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());
      CHECK(r.err == k_refused);
      CHECK_FALSE(std::filesystem::exists(db));
    }
  }
  SECTION("on a database that has a key, which keeps only that key") {
    auto made = create_key(dir, db, "demo");
    REQUIRE(made.exit_code == 0);
    auto r = create_key(dir, db, "  ");
    CHECK(r.exit_code == 2);
    CHECK(r.err == k_refused);
    auto opened = JobStore::open(StoreConfig{.path = db, .read_only = true});
    REQUIRE(opened);
    auto keys = (*opened)->list_keys();
    REQUIRE(keys);
    REQUIRE(keys->size() == 1);
    CHECK((*keys)[0].org_name == "demo");
  }
}
