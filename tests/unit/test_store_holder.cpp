// store/holder: whether the process that holds a claim (jobs.claimed_by) is
// gone, judged with real processes: this one, a child alive, then reaped.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "scrapekeep/store/holder.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/maintenance.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::store::format_holder;
using scrapekeep::store::Holder;
using scrapekeep::store::holder_is_gone;
using scrapekeep::store::parse_holder;
using scrapekeep::store::process_start_ticks;
using scrapekeep::store::this_process;

Holder me() {
  Holder h = this_process("aaaaaaaa");
  // Linux with /proc, as everywhere scrapekeep runs.
  REQUIRE_FALSE(h.boot_id.empty());
  REQUIRE_FALSE(h.pid_namespace.empty());
  REQUIRE(h.start_ticks > 0);
  return h;
}

} // namespace

TEST_CASE("a holder reads back from its text, and the older form still reads", "[store][holder]") {
  const Holder mine = me();
  const auto back = parse_holder(format_holder(mine));
  REQUIRE(back);
  CHECK(back->host == mine.host);
  CHECK(back->pid == mine.pid);
  CHECK(back->nonce == "aaaaaaaa");
  CHECK(back->boot_id == mine.boot_id);
  CHECK(back->pid_namespace == mine.pid_namespace);
  CHECK(back->start_ticks == mine.start_ticks);
  CHECK(format_holder(mine).rfind(mine.host + ":" + std::to_string(mine.pid) + ":aaaaaaaa/", 0) ==
        0);

  const auto older = parse_holder("web-1:4242:deadbeef");
  REQUIRE(older);
  CHECK(older->host == "web-1");
  CHECK(older->pid == 4242);
  CHECK(older->nonce == "deadbeef");
  CHECK(older->boot_id.empty());

  // a host name may hold '/' and ':' (sethostname takes any byte)
  const auto odd_host = parse_holder("a/b:c:77:n/boot/ns/5");
  REQUIRE(odd_host);
  CHECK(odd_host->host == "a/b:c");
  CHECK(odd_host->pid == 77);
  CHECK(odd_host->nonce == "n");
  CHECK(odd_host->boot_id == "boot");
  CHECK(odd_host->start_ticks == 5);
  Holder slashed = mine;
  slashed.host = "rack/7";
  const auto slashed_back = parse_holder(format_holder(slashed));
  REQUIRE(slashed_back);
  CHECK(slashed_back->host == "rack/7");
  CHECK(slashed_back->start_ticks == mine.start_ticks);

  for (const char* bad :
       {"web-1:0:deadbeef", "deadbeef", "web-1:-3:x", "web-1:12:n/boot/ns",
        "web-1:4294967297:n", "web-1:2147483648:n/boot/ns/5",
        "web-1:12:n/boot/ns/soon", "web-1:12:n/boot/ns/5/6", "web-1:12:n//ns/5"}) {
    INFO(bad);
    CHECK_FALSE(parse_holder(bad));
  }
}

TEST_CASE("a process with this host and pid in another pid namespace is never judged gone",
          "[store][holder]") {
  const Holder mine = me();
  CHECK_FALSE(holder_is_gone(mine, mine));

  // A container beside this one, sharing the database and the host name: its
  // pid 1 is not this pid 1, nor are its other pids this namespace's.
  Holder twin = mine;
  twin.nonce = "bbbbbbbb";
  twin.pid_namespace = mine.pid_namespace + "1";
  twin.start_ticks = mine.start_ticks + 7;
  CHECK_FALSE(holder_is_gone(twin, mine));
  twin.pid = mine.pid + 100000;  // free here, or another process: says nothing of the twin
  CHECK_FALSE(holder_is_gone(twin, mine));

  // In this namespace, this pid under another nonce was an earlier process.
  Holder earlier = mine;
  earlier.nonce = "bbbbbbbb";
  CHECK(holder_is_gone(earlier, mine));
  CHECK(holder_is_gone(*parse_holder(mine.host + ":" + std::to_string(mine.pid) + ":bbbbbbbb"),
                       mine));
}

TEST_CASE("a holder of an earlier boot of this host is gone, one of another host is not",
          "[store][holder]") {
  const Holder mine = me();
  Holder before_restart = mine;
  before_restart.boot_id = "00000000-0000-4000-8000-000000000000";
  before_restart.nonce = "cccccccc";
  before_restart.pid_namespace = "4026531836";
  CHECK(holder_is_gone(before_restart, mine));
  Holder elsewhere = before_restart;
  elsewhere.host = mine.host + "-other";
  CHECK_FALSE(holder_is_gone(elsewhere, mine));
}

TEST_CASE("a process of this namespace is gone once it exited (reaped or not), or once its pid is "
          "another's",
          "[store][holder]") {
  const Holder mine = me();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const auto started = process_start_ticks(child);
  REQUIRE(started);
  Holder theirs = mine;
  theirs.pid = child;
  theirs.nonce = "dddddddd";
  theirs.start_ticks = *started;
  CHECK_FALSE(holder_is_gone(theirs, mine));
  CHECK_FALSE(holder_is_gone(*parse_holder(format_holder(theirs)), mine));
  // The holder's pid, now taken by a process that started later.
  Holder reused = theirs;
  reused.start_ticks = *started - 1;
  CHECK(holder_is_gone(reused, mine));

  kill(child, SIGKILL);
  // Killed and not reaped yet (a zombie): gone already.
  siginfo_t info{};
  REQUIRE(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);
  CHECK(process_start_ticks(child) == started);  // its /proc entry stays until reaped
  CHECK(holder_is_gone(theirs, mine));
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(holder_is_gone(theirs, mine));
  CHECK(holder_is_gone(*parse_holder(mine.host + ":" + std::to_string(child) + ":dddddddd"), mine));
}

TEST_CASE("recovery at start leaves the jobs of a same-pid process in another pid namespace, and "
          "takes back those of an earlier boot",
          "[store][holder]") {
  namespace store = scrapekeep::store;
  scrapekeep::testing::TempDir dir;
  auto opened = store::JobStore::open(store::StoreConfig{.path = dir.file("scrapekeep.db")});
  REQUIRE(opened.ok());
  store::JobStore& s = **opened;
  auto key = s.create_key("org-a", 0);
  REQUIRE(key.ok());
  constexpr scrapekeep::core::Micros k_now = 1'768'201'200'000'000;
  constexpr scrapekeep::core::Micros k_lease = 60'000'000;
  scrapekeep::core::JobOptions options;
  options.selectors.item = "//article";
  std::string ids[2];
  for (std::string& id : ids) {
    auto job = s.create_job(key->info.org_id, "http://127.0.0.1:9/", options, k_now);
    REQUIRE(job.ok());
    auto claimed = s.claim_next(k_now, k_lease);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->has_value());
    REQUIRE((*claimed)->job_id == job->job_id);
    id = job->job_id;
  }
  const Holder mine = *parse_holder(store::JobStore::process_identity());
  Holder twin = mine;  // the container beside this one
  twin.nonce = "bbbbbbbb";
  twin.pid_namespace = mine.pid_namespace + "1";
  Holder before_restart = mine;
  before_restart.nonce = "cccccccc";
  before_restart.boot_id = "00000000-0000-4000-8000-000000000000";
  const Holder holders[2] = {twin, before_restart};
  for (int i = 0; i < 2; ++i) {
    SQLite::Statement q(s.database(), "UPDATE jobs SET claimed_by = ? WHERE job_id = ?");
    q.bind(1, format_holder(holders[i]));
    q.bind(2, ids[i]);
    REQUIRE(q.exec() == 1);
  }

  auto count = store::recover_at_start(s, k_now + 1, 5);
  REQUIRE(count.ok());
  CHECK(count->orphaned == 1);
  CHECK(count->recovered == 1);
  auto twins_job = s.get_job(ids[0], std::nullopt);
  REQUIRE(twins_job.ok());
  CHECK(twins_job->claim_token.has_value());  // still held by the twin
  auto taken_back = s.get_job(ids[1], std::nullopt);
  REQUIRE(taken_back.ok());
  CHECK_FALSE(taken_back->claim_token.has_value());  // waiting for a worker
  CHECK(taken_back->status == scrapekeep::core::JobStatus::processing);
}
