// store/group_commit: concurrent writers on their own connections commit in
// shared transactions; each gets its own result; a failing write is undone
// alone; the job store's fenced page writes keep their counters exact.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <catch2/catch.hpp>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/store/group_commit.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::core::Error;
using scrapekeep::core::ErrorCode;
using scrapekeep::core::JobOptions;
using scrapekeep::core::Micros;
using scrapekeep::core::Status;
using scrapekeep::store::BatchConnection;
using scrapekeep::store::Claim;
using scrapekeep::store::GroupCommitter;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::TempDir;

constexpr Micros k_t0 = 1'768'201'200'000'000;
constexpr Micros k_lease = 3600LL * 1'000'000;

class Connection : public BatchConnection {
 public:
  explicit Connection(const std::string& path)
      : m_db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000) {
    m_db.exec("PRAGMA journal_mode = WAL");
  }
  SQLite::Database& database() override { return m_db; }

 private:
  SQLite::Database m_db;
};

// A database with table t (v INTEGER UNIQUE), and a connection to it.
struct Table {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection setup{path};
  Table() { setup.database().exec("CREATE TABLE t (v INTEGER UNIQUE)"); }
};

std::int64_t count(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

GroupCommitter::Write insert(int value) {
  return [value](BatchConnection& c) -> Status {
    SQLite::Statement q(c.database(), "INSERT INTO t (v) VALUES (?)");
    q.bind(1, value);
    q.exec();
    return scrapekeep::core::ok_status();
  };
}

ListingPageRecord page(std::int64_t number, int items) {
  ListingPageRecord r;
  r.page_number = number;
  r.url = "http://127.0.0.1:9000/p" + std::to_string(number);
  r.http_status = 200;
  r.started_at = k_t0;
  r.finished_at = k_t0 + 1000;
  for (int i = 0; i < items; ++i) {
    NewItem item;
    item.fields = {{"title", "item " + std::to_string(i)}};
    r.items.push_back(std::move(item));
  }
  r.next_url = "http://127.0.0.1:9000/p" + std::to_string(number + 1);
  return r;
}

// Runs `body(i)` on `n` threads at once, i from 0, and waits for them all.
void in_threads(int n, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back(body, i);
  }
  for (auto& t : threads) {
    t.join();
  }
}

// `n` jobs created and claimed in `store` (up to 1000 pages, 100,000 items).
std::vector<Claim> claimed_jobs(JobStore& store, int n) {
  auto key = store.create_key("org", k_t0);
  REQUIRE(key.ok());
  JobOptions options;
  options.follow_pagination = true;
  options.max_pages = 1000;
  options.max_items = 100000;
  std::vector<Claim> claims;
  for (int i = 0; i < n; ++i) {
    REQUIRE(store.create_job(key->info.org_id, "http://127.0.0.1:9000/p1", options, k_t0).ok());
  }
  for (int i = 0; i < n; ++i) {
    auto claim = store.claim_next(k_t0, k_lease);
    REQUIRE(claim.ok());
    REQUIRE(claim->has_value());
    claims.push_back(**claim);
  }
  return claims;
}

// Each claimed job's counters say `pages` listing pages of 3 items each.
void check_counters(JobStore& store, const std::vector<Claim>& claims, int pages) {
  for (const Claim& claim : claims) {
    auto job = store.get_job(claim.job_id, std::nullopt);
    REQUIRE(job.ok());
    CHECK(job->counters.listing_pages_scraped == pages);
    CHECK(job->counters.items_found == 3 * pages);
    CHECK(job->current_page == pages + 1);
  }
}

// A WAL frame: a 4 KiB page and its header.
constexpr std::uintmax_t k_frame_bytes = 4096 + 24;

// A job store with claimed jobs, whose pages are stored as a worker stores
// them, each with items of a database page of their own (about 14 WAL frames
// a page), and its -wal file's size.
struct WalLoad {
  TempDir dir;
  StoreConfig config;
  std::unique_ptr<JobStore> store;
  std::vector<Claim> claims;
  int stored = 0;
  int failures = 0;
  std::uintmax_t wal_max = 0;  // the largest wal_bytes() after a page

  explicit WalLoad(int jobs) {
    config.path = dir.file("scrapekeep.db");
    auto opened = JobStore::open(config);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    claims = claimed_jobs(*store, jobs);
  }

  std::uintmax_t wal_bytes() const {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(config.path + "-wal", ec);
    return ec ? 0 : size;
  }

  // Stores the next page of the next job, round-robin.
  void store_page() {
    const std::size_t n = claims.size();
    const auto i = static_cast<std::size_t>(stored);
    ListingPageRecord record = page(static_cast<std::int64_t>(i / n) + 1, 2);
    for (NewItem& item : record.items) {
      item.fields.emplace_back("text", std::string(3000, 'x'));
    }
    failures += store->record_listing_page(claims[i % n], record, k_t0).ok() ? 0 : 1;
    ++stored;
    wal_max = std::max(wal_max, wal_bytes());
  }
};

} // namespace

TEST_CASE("group commit: every concurrent write commits, in fewer transactions", "[store]") {
  Table table;
  const std::string& path = table.path;
  Connection& setup = table.setup;
  GroupCommitter committer;
  constexpr int k_threads = 16;
  constexpr int k_each = 50;
  std::atomic<int> failures{0};
  in_threads(k_threads, [&](int t) {
    Connection mine(path);
    for (int i = 0; i < k_each; ++i) {
      if (!committer.run(mine, insert(t * k_each + i))) {
        ++failures;
      }
    }
  });
  CHECK(failures == 0);
  CHECK(count(setup.database(), "SELECT COUNT(*) FROM t") == k_threads * k_each);
  CHECK(committer.committed_writes() == k_threads * k_each);
  CHECK(committer.committed_batches() <= committer.committed_writes());
  CHECK(committer.committed_batches() >= 1);
}

TEST_CASE("group commit: a failing write is undone alone and gets its own error", "[store]") {
  Table table;
  const std::string& path = table.path;
  Connection& setup = table.setup;
  setup.database().exec("INSERT INTO t (v) VALUES (7)");
  GroupCommitter committer;
  Connection mine(path);

  SECTION("a constraint failure is a conflict; the write's earlier rows are rolled back") {
    auto half_done = [](BatchConnection& c) -> Status {
      c.database().exec("INSERT INTO t (v) VALUES (100)");
      c.database().exec("INSERT INTO t (v) VALUES (7)");  // duplicate
      return scrapekeep::core::ok_status();
    };
    auto st = committer.run(mine, half_done);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == ErrorCode::conflict);
    CHECK(count(setup.database(), "SELECT COUNT(*) FROM t WHERE v = 100") == 0);
  }
  SECTION("a returned error undoes the write and is passed back as is") {
    auto refused = [](BatchConnection& c) -> Status {
      c.database().exec("INSERT INTO t (v) VALUES (200)");
      return Error{ErrorCode::conflict, "fenced out"};
    };
    auto st = committer.run(mine, refused);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message == "fenced out");
    CHECK(count(setup.database(), "SELECT COUNT(*) FROM t WHERE v = 200") == 0);
  }
  // Either way the connection is usable and later writes commit.
  REQUIRE(committer.run(mine, insert(8)).ok());
  CHECK(count(setup.database(), "SELECT COUNT(*) FROM t") == 2);
}

TEST_CASE("group commit: failures in a shared batch do not sink the others", "[store]") {
  Table table;
  const std::string& path = table.path;
  Connection& setup = table.setup;
  GroupCommitter committer;
  // Every thread inserts the same values: for each value exactly one insert
  // wins and every other one fails with conflict, whatever the batching.
  constexpr int k_threads = 8;
  constexpr int k_values = 40;
  std::atomic<int> ok{0};
  std::atomic<int> conflicts{0};
  in_threads(k_threads, [&](int) {
    Connection mine(path);
    for (int v = 0; v < k_values; ++v) {
      auto st = committer.run(mine, insert(v));
      if (st.ok()) {
        ++ok;
      } else if (st.error().code == ErrorCode::conflict) {
        ++conflicts;
      }
    }
  });
  CHECK(ok == k_values);
  CHECK(conflicts == (k_threads - 1) * k_values);
  CHECK(count(setup.database(), "SELECT COUNT(*) FROM t") == k_values);
}

TEST_CASE("group commit: a write that fails after changing rows is undone alone, its batch "
          "commits the others once",
          "[store]") {
  Table table;
  const std::string& path = table.path;
  Connection& setup = table.setup;
  setup.database().exec("INSERT INTO t (v) VALUES (-1)");
  GroupCommitter committer;
  // Every thread alternates a good insert with one that inserts a row and then
  // fails on a duplicate: batches shared with such a write run again.
  constexpr int k_threads = 8;
  constexpr int k_each = 30;
  std::atomic<int> good_failed{0};
  std::atomic<int> half_done_ok{0};
  in_threads(k_threads, [&](int t) {
    Connection mine(path);
    for (int i = 0; i < k_each; ++i) {
      const int v = t * k_each + i;
      if (!committer.run(mine, insert(v))) {
        ++good_failed;
      }
      auto half_done = [v](BatchConnection& c) -> Status {
        SQLite::Statement q(c.database(), "INSERT INTO t (v) VALUES (?)");
        q.bind(1, 100000 + v);
        q.exec();
        c.database().exec("INSERT INTO t (v) VALUES (-1)");  // duplicate
        return scrapekeep::core::ok_status();
      };
      if (committer.run(mine, half_done)) {
        ++half_done_ok;
      }
    }
  });
  CHECK(good_failed == 0);
  CHECK(half_done_ok == 0);
  CHECK(count(setup.database(), "SELECT COUNT(*) FROM t WHERE v >= 100000") == 0);
  CHECK(count(setup.database(), "SELECT COUNT(*) FROM t WHERE v >= 0") == k_threads * k_each);
  CHECK(committer.committed_writes() == k_threads * k_each);
}

TEST_CASE("group commit: the committer is shared per database file", "[store]") {
  TempDir dir;
  auto a = GroupCommitter::for_database(dir.file("a.db"));
  auto a2 = GroupCommitter::for_database(dir.path().string() + "/./a.db");
  auto b = GroupCommitter::for_database(dir.file("b.db"));
  REQUIRE(a);
  CHECK(a == a2);
  CHECK(a != b);
  CHECK(GroupCommitter::for_database(":memory:") == nullptr);
}

TEST_CASE("group commit: concurrent workers' fenced pages keep counters exact", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  auto opened = JobStore::open(config);
  REQUIRE(opened.ok());
  auto& store = **opened;
  constexpr int k_workers = 8;
  constexpr int k_pages = 20;
  std::vector<Claim> claims = claimed_jobs(store, k_workers + 1);
  // The last job's claim is lost (cancelled): its writer is fenced out while
  // the others share batches with it.
  Claim fenced = claims.back();
  claims.pop_back();
  REQUIRE(store.cancel_job(fenced.job_id, std::nullopt, k_t0).ok());

  std::atomic<int> failures{0};
  std::atomic<int> fenced_conflicts{0};
  in_threads(k_workers, [&](int w) {
    auto mine = JobStore::open(config);
    if (!mine.ok()) {  // asserted after the threads: Catch2's macros are not thread-safe
      failures += k_pages;
      return;
    }
    for (int p = 1; p <= k_pages; ++p) {
      if (!(*mine)->record_listing_page(claims[static_cast<size_t>(w)], page(p, 3), k_t0)) {
        ++failures;
      }
      auto st = (*mine)->record_listing_page(fenced, page(p, 3), k_t0);
      if (!st.ok() && st.error().code == ErrorCode::conflict) {
        ++fenced_conflicts;
      }
    }
  });
  CHECK(failures == 0);
  CHECK(fenced_conflicts == k_workers * k_pages);
  check_counters(store, claims, k_pages);
  auto gone = store.get_job(fenced.job_id, std::nullopt);
  REQUIRE(gone.ok());
  CHECK(gone->counters.listing_pages_scraped == 0);
  CHECK(count(store.database(),
              "SELECT COUNT(*) FROM page_events WHERE job_id = '" + fenced.job_id + "'") == 0);
  CHECK(count(store.database(), "SELECT COUNT(*) FROM page_events") == k_workers * k_pages);
  CHECK(count(store.database(), "SELECT COUNT(*) FROM result_items") == 3 * k_workers * k_pages);
}

TEST_CASE("group commit: a listing page stored twice fails the second time and leaves the "
          "counters exact",
          "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  auto opened = JobStore::open(config);
  REQUIRE(opened.ok());
  auto& store = **opened;
  constexpr int k_workers = 6;
  constexpr int k_pages = 15;
  const std::vector<Claim> claims = claimed_jobs(store, k_workers);
  std::atomic<int> failures{0};
  std::atomic<int> duplicates{0};
  in_threads(k_workers, [&](int w) {
    auto mine = JobStore::open(config);
    if (!mine.ok()) {  // asserted after the threads: Catch2's macros are not thread-safe
      failures += k_pages;
      return;
    }
    const Claim& claim = claims[static_cast<size_t>(w)];
    for (int p = 1; p <= k_pages; ++p) {
      // The second one inserts its items before its event fails as a
      // duplicate, which sends its batch round again.
      if (!(*mine)->record_listing_page(claim, page(p, 3), k_t0)) {
        ++failures;
      }
      auto st = (*mine)->record_listing_page(claim, page(p, 3), k_t0);
      if (!st.ok() && st.error().code == ErrorCode::conflict) {
        ++duplicates;
      }
    }
  });
  CHECK(failures == 0);
  CHECK(duplicates == k_workers * k_pages);
  check_counters(store, claims, k_pages);
  CHECK(count(store.database(), "SELECT COUNT(*) FROM page_events") == k_workers * k_pages);
  CHECK(count(store.database(), "SELECT COUNT(*) FROM result_items") == 3 * k_workers * k_pages);
}

TEST_CASE("group commit: batches run on the committer's own connection, which the WAL "
          "checkpoints leave alone",
          "[store]") {
  TempDir dir;
  const std::string path = dir.file("own.db");
  {
    Connection setup(path);
    setup.database().exec("CREATE TABLE t (v INTEGER UNIQUE, pad TEXT)");
  }
  std::atomic<int> opened{0};
  Connection* own = nullptr;
  auto committer = GroupCommitter::for_database(path, [&]() -> std::unique_ptr<BatchConnection> {
    ++opened;
    auto c = std::make_unique<Connection>(path);
    if (own == nullptr) {
      own = c.get();  // the first one opened is for batches, a later one for checkpoints
    }
    return c;
  });
  REQUIRE(committer != nullptr);
  Connection mine(path);
  std::vector<BatchConnection*> ran_on;
  // 4 KiB a row: about 3000 WAL frames in all, so the WAL passes 1000 frames.
  for (int i = 0; i < 3000; ++i) {
    const Status st = committer->run(mine, [&, i](BatchConnection& c) -> Status {
      ran_on.push_back(&c);
      SQLite::Statement q(c.database(), "INSERT INTO t (v, pad) VALUES (?, ?)");
      q.bind(1, i);
      q.bind(2, std::string(4000, 'x'));
      q.exec();
      return scrapekeep::core::ok_status();
    });
    REQUIRE(st.ok());
  }
  REQUIRE(own != nullptr);
  CHECK(std::count(ran_on.begin(), ran_on.end(), static_cast<BatchConnection*>(own)) == 3000);
  // The checkpoint thread opened a connection of its own and copied pages
  // into the database file: nobody else checkpointed (the writer's connection
  // does not, and `mine` never wrote).
  CHECK(opened.load() == 2);
  CHECK(scrapekeep::testing::eventually(
      [&] { return std::filesystem::file_size(path) > 4000u * 1000u; }));
  CHECK(count(mine.database(), "SELECT COUNT(*) FROM t") == 3000);
}

TEST_CASE("group commit: a leader whose batch failed is answered and hands the next batch on",
          "[store]") {
  // Another connection holds the database: the leader's batch fails after
  // its busy timeout. Leading on, it ran the batch queued behind it too, on
  // its own connection and its own timeout, and was answered only after it
  // (a creation, while requests kept coming: after 8 timeouts, 40 s).
  Table table;
  GroupCommitter committer;  // no opener: a batch runs on its leader's connection
  Connection leader_connection(table.path);
  leader_connection.database().setBusyTimeout(200);
  table.setup.database().exec("BEGIN IMMEDIATE");
  std::atomic<bool> leader_done{false};
  Status leader = scrapekeep::core::ok_status();
  std::thread first([&] {
    leader = committer.run(leader_connection, insert(1));
    leader_done = true;
  });
  // Queued while the leader waits for the lock (its connection's 200 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Status behind = scrapekeep::core::ok_status();
  std::thread second([&] {
    Connection mine(table.path);  // 5 s busy timeout
    behind = committer.run(mine, insert(2));
  });
  REQUIRE(scrapekeep::testing::eventually([&] { return leader_done.load(); }));
  table.setup.database().exec("ROLLBACK");
  first.join();
  second.join();
  REQUIRE_FALSE(leader.ok());
  CHECK(leader.error().code == ErrorCode::unavailable);
  // The write behind it led its own batch, with its own timeout, and
  // committed once the lock was let go.
  CHECK(behind.ok());
  CHECK(count(table.setup.database(), "SELECT COUNT(*) FROM t WHERE v = 2") == 1);
}

TEST_CASE("group commit: a leader that throws (out of memory) leaves nobody waiting for ever",
          "[store]") {
  TempDir dir;
  const std::string path = dir.file("oom.db");
  {
    Connection setup(path);
    setup.database().exec("CREATE TABLE t (v INTEGER UNIQUE)");
  }
  std::atomic<int> opened{0};
  auto committer = GroupCommitter::for_database(path, [&]() -> std::unique_ptr<BatchConnection> {
    if (opened++ == 0) {
      // The first leader fails while the others queue behind it.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      throw std::bad_alloc();
    }
    return std::make_unique<Connection>(path);
  });
  REQUIRE(committer != nullptr);
  constexpr int k_writers = 8;
  std::vector<int> outcome(k_writers, -1);  // 1 ok, 0 unavailable, 2 threw
  in_threads(k_writers, [&](int i) {
    if (i > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // behind writer 0
    }
    Connection mine(path);
    try {
      const Status st = committer->run(mine, insert(i));
      outcome[i] = st.ok() ? 1 : (st.error().code == ErrorCode::unavailable ? 0 : 3);
    } catch (const std::bad_alloc&) {
      outcome[i] = 2;
    }
  });
  // Exactly one leader met the failure; everyone returned; what said ok is
  // stored and nothing else is.
  CHECK(std::count(outcome.begin(), outcome.end(), 2) == 1);
  CHECK(std::count(outcome.begin(), outcome.end(), 3) == 0);
  CHECK(std::count(outcome.begin(), outcome.end(), -1) == 0);
  Connection check(path);
  CHECK(count(check.database(), "SELECT COUNT(*) FROM t") ==
        std::count(outcome.begin(), outcome.end(), 1));
  // And the committer goes on.
  Connection mine(path);
  CHECK(committer->run(mine, insert(100)).ok());
  CHECK(count(check.database(), "SELECT COUNT(*) FROM t WHERE v = 100") == 1);
}

TEST_CASE("group commit: the WAL stays bounded while pages are stored back to back and a "
          "poller always holds a read",
          "[store][wal]") {
  WalLoad load(4);
  // A progress poller that is never idle: one of its two connections always
  // holds a read transaction, and it takes the next before it ends the last,
  // so SQLite alone never finds the WAL unused and never starts it over.
  std::atomic<bool> writing{true};
  std::atomic<int> reads{0};
  std::atomic<int> read_errors{0};
  std::thread poller([&] {
    try {
      SQLite::Database first(load.config.path, SQLite::OPEN_READONLY, 5000);
      SQLite::Database second(load.config.path, SQLite::OPEN_READONLY, 5000);
      SQLite::Database* held = &first;
      SQLite::Database* next = &second;
      held->exec("BEGIN");
      count(*held, "SELECT COUNT(*) FROM jobs");
      while (writing) {
        next->exec("BEGIN");
        count(*next, "SELECT COUNT(*) FROM jobs");
        held->exec("COMMIT");
        std::swap(held, next);
        ++reads;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      held->exec("COMMIT");
    } catch (const std::exception&) {  // asserted below: Catch2's macros are not thread-safe
      ++read_errors;
    }
  });
  constexpr int k_pages = 2900;  // about 40,000 WAL frames (165 MB) in all
  while (load.stored < k_pages) {
    load.store_page();
  }
  writing = false;
  poller.join();
  CHECK(load.failures == 0);
  CHECK(read_errors == 0);
  CHECK(reads > 0);
  CHECK(count(load.store->database(), "SELECT COUNT(*) FROM page_events") == k_pages);
  // The committer starts the WAL over once it passes k_restart_frames.
  // Without it, the WAL grew to 88-166 MB here: past 16,000 frames (66 MB)
  // the leader's checkpoints only sometimes let SQLite restart it.
  CHECK(load.wal_max < 3 * GroupCommitter::k_restart_frames * k_frame_bytes / 2);
}

TEST_CASE("group commit: a WAL that a long read kept from restarting is cut back once it "
          "restarts",
          "[store][wal]") {
  WalLoad load(4);
  constexpr int k_most_pages = 2500;  // about 35,000 WAL frames
  std::uintmax_t released_at = 0;
  {
    // A read held on this thread: the restart due past k_restart_frames waits
    // for it in vain, and so do the tries after it, until the WAL is past
    // the size a restart cuts it back to.
    SQLite::Database reader(load.config.path, SQLite::OPEN_READONLY, 5000);
    reader.exec("BEGIN");
    count(reader, "SELECT COUNT(*) FROM jobs");
    const std::uintmax_t past_limit = GroupCommitter::k_wal_size_limit + (1 << 20);
    while (load.wal_bytes() < past_limit && load.stored < k_most_pages) {
      load.store_page();
    }
    released_at = load.wal_bytes();
    reader.exec("COMMIT");
  }
  // Once the WAL restarts, the next commit cuts the file back.
  while (load.wal_bytes() == load.wal_max && load.stored < k_most_pages) {
    load.store_page();
  }
  CHECK(load.failures == 0);
  CHECK(count(load.store->database(), "SELECT COUNT(*) FROM page_events") == load.stored);
  CHECK(load.wal_max > static_cast<std::uintmax_t>(GroupCommitter::k_wal_size_limit));
  CHECK(load.wal_bytes() <= static_cast<std::uintmax_t>(GroupCommitter::k_wal_size_limit));
  // It restarted within the next k_checkpoint_frames or so of the read's
  // end, not once the WAL had doubled (at about 2 * 8,250 frames, 68 MB).
  INFO("released at " << released_at << " bytes, longest " << load.wal_max);
  CHECK(load.wal_max <
        released_at + 2 * GroupCommitter::k_checkpoint_frames * k_frame_bytes + (1 << 20));
}

TEST_CASE("group commit: a WAL restart waits for a slow background checkpoint a short time only",
          "[store][wal]") {
  Table table;
  table.setup.database().exec("CREATE TABLE blobs (b BLOB)");
  // The background checkpointer's connection (the second one the committer
  // opens) takes 4 s to open, as on a disk that stalls: the checkpoint it
  // was woken for runs that long.
  std::atomic<int> opened{0};
  auto committer = GroupCommitter::for_database(
      table.path, [&]() -> std::unique_ptr<BatchConnection> {
        if (++opened == 2) {
          std::this_thread::sleep_for(std::chrono::seconds(4));
        }
        auto c = std::make_unique<Connection>(table.path);
        c->database().exec("PRAGMA synchronous = OFF");
        return c;
      });
  REQUIRE(committer);
  Connection mine(table.path);
  const GroupCommitter::Write blob = [](BatchConnection& c) -> Status {
    c.database().exec("INSERT INTO blobs (b) VALUES (zeroblob(4000))");
    return scrapekeep::core::ok_status();
  };
  // About 2 frames a write: past a background checkpoint (1000 frames) and
  // a restart (8000) well before the checkpointer has its connection.
  std::chrono::steady_clock::duration longest{};
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 6000; ++i) {
    const auto before = std::chrono::steady_clock::now();
    REQUIRE(committer->run(mine, blob).ok());
    longest = std::max(longest, std::chrono::steady_clock::now() - before);
  }
  INFO("6000 writes in " << std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                          started).count() << " s");
  CHECK(opened == 2);
  // A restart that waited for the checkpoint to end held this write up to 4 s.
  CHECK(longest < std::chrono::seconds(2));
  CHECK(count(mine.database(), "SELECT COUNT(*) FROM blobs") == 6000);
}
