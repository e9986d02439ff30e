// store/migrations: schema/schema.sql is what all migrations produce, and the
// store refuses files it must not touch (newer schema, foreign or garbage).

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <chrono>
#include <thread>
#include <vector>
#include <functional>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdint>
#include <limits>

#include "scrapekeep/store/history.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/migrations.hpp"
#include "support/old_schema.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::testing::as_schema_version;
using scrapekeep::core::ErrorCode;
using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::read_file;
using scrapekeep::testing::TempDir;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// The SQL text with comments removed and whitespace runs collapsed to one
// space, so that layout and comments are not schema differences.
std::string normalize_sql(const std::string& sql) {
  std::string out;
  bool in_quote = false;
  bool pending_space = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (!in_quote && c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') {
        ++i;
      }
      pending_space = true;
      continue;
    }
    if (!in_quote && std::isspace(static_cast<unsigned char>(c))) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) {
      out.push_back(' ');
    }
    pending_space = false;
    if (c == '\'') {
      in_quote = !in_quote;
    }
    out.push_back(c);
  }
  return out;
}

using SchemaRow = std::tuple<std::string, std::string, std::string, std::string>;

// (type, name, tbl_name, normalized sql) of every schema object but the
// migration bookkeeping, in a stable order.
std::vector<SchemaRow> schema_of(SQLite::Database& db) {
  SQLite::Statement q(db,
                      "SELECT type, name, tbl_name, sql FROM sqlite_master "
                      "WHERE tbl_name NOT IN ('schema_migrations', 'sqlite_sequence') "
                      "ORDER BY type, name");
  std::vector<SchemaRow> rows;
  while (q.executeStep()) {
    rows.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString(),
                      q.getColumn(2).getString(),
                      q.getColumn(3).isNull() ? std::string("(null)")
                                              : normalize_sql(q.getColumn(3).getString()));
  }
  return rows;
}

std::vector<std::string> table_names(SQLite::Database& db) {
  SQLite::Statement q(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  std::vector<std::string> names;
  while (q.executeStep()) {
    names.push_back(q.getColumn(0).getString());
  }
  return names;
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("normalize_sql ignores comments and layout only", "[store]") {
  CHECK(normalize_sql("CREATE TABLE t (\n  a INTEGER, -- note\n  b TEXT\n)") ==
        "CREATE TABLE t ( a INTEGER, b TEXT )");
  CHECK(normalize_sql("CHECK (x IN ('a  b', '--'))") == "CHECK (x IN ('a  b', '--'))");
}

TEST_CASE("schema.sql equals the schema all migrations produce", "[store]") {
  TempDir dir;
  std::vector<SchemaRow> migrated;
  {
    StoreConfig config;
    config.path = dir.file("migrated.db");
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    migrated = schema_of((*store)->database());
  }
  std::vector<SchemaRow> from_file;
  {
    const std::string sql = read_file(std::string(SCRAPEKEEP_SOURCE_DIR) + "/schema/schema.sql");
    REQUIRE_FALSE(sql.empty());
    SQLite::Database db(dir.file("from_schema.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(sql);
    from_file = schema_of(db);
  }
  REQUIRE_FALSE(migrated.empty());
  // Row by row first, so a difference names the object.
  for (size_t i = 0; i < std::min(migrated.size(), from_file.size()); ++i) {
    INFO("object " << i << ": migrations " << std::get<1>(migrated[i]) << ", schema.sql "
                   << std::get<1>(from_file[i]));
    CHECK(std::get<0>(migrated[i]) == std::get<0>(from_file[i]));
    CHECK(std::get<1>(migrated[i]) == std::get<1>(from_file[i]));
    CHECK(std::get<2>(migrated[i]) == std::get<2>(from_file[i]));
    CHECK(std::get<3>(migrated[i]) == std::get<3>(from_file[i]));
  }
  CHECK(migrated.size() == from_file.size());
  CHECK(migrated == from_file);

  // The tables API.md and the foundation issue name are there.
  std::vector<std::string> tables;
  for (const auto& row : migrated) {
    if (std::get<0>(row) == "table") {
      tables.push_back(std::get<1>(row));
    }
  }
  for (const char* want : {"organizations", "api_keys", "jobs", "page_events", "result_items"}) {
    INFO(want);
    CHECK(std::find(tables.begin(), tables.end(), want) != tables.end());
  }
}

TEST_CASE("migrations are recorded once and reopening applies nothing twice", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  const auto& all = scrapekeep::store::embedded_migrations();
  REQUIRE_FALSE(all.empty());
  for (int round = 0; round < 2; ++round) {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    auto version = (*store)->schema_version();
    REQUIRE(version.ok());
    CHECK(*version == scrapekeep::store::latest_schema_version());
    CHECK(*version == all.back().version);
    SQLite::Statement q((*store)->database(),
                        "SELECT version, name FROM schema_migrations ORDER BY version");
    size_t i = 0;
    while (q.executeStep()) {
      REQUIRE(i < all.size());
      CHECK(q.getColumn(0).getInt() == all[i].version);
      CHECK(q.getColumn(1).getString() == all[i].name);
      ++i;
    }
    CHECK(i == all.size());
  }
}

TEST_CASE("every connection has WAL, foreign keys, a busy timeout and synchronous NORMAL",
          "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  auto store = JobStore::open(config);
  REQUIRE(store.ok());
  auto& db = (*store)->database();
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA foreign_keys").getInt() == 1);
  CHECK(db.execAndGet("PRAGMA busy_timeout").getInt() == config.busy_timeout_ms);
  CHECK(db.execAndGet("PRAGMA synchronous").getInt() == 1);  // NORMAL

  StoreConfig full = config;
  full.synchronous = scrapekeep::store::Synchronous::full;
  auto second = JobStore::open(full);
  REQUIRE(second.ok());
  CHECK((*second)->database().execAndGet("PRAGMA synchronous").getInt() == 2);  // FULL
  CHECK((*second)->database().execAndGet("PRAGMA foreign_keys").getInt() == 1);
}

TEST_CASE("a database newer than the binary is refused", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  const int latest = scrapekeep::store::latest_schema_version();
  {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    SQLite::Statement q((*store)->database(),
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (?, 'from_the_future.sql', 0)");
    q.bind(1, latest + 1);
    q.exec();
  }
  auto refused = JobStore::open(config);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::invalid_argument);
  const std::string& message = refused.error().message;
  INFO(message);
  CHECK(mentions(message, "newer"));
  CHECK(mentions(message, std::to_string(latest + 1)));
  CHECK_FALSE(mentions(message, "SELECT"));

  StoreConfig read_only = config;
  read_only.read_only = true;
  auto refused_ro = JobStore::open(read_only);
  REQUIRE_FALSE(refused_ro.ok());
  CHECK(refused_ro.error().code == ErrorCode::invalid_argument);

  StoreConfig no_migrate = config;
  no_migrate.migrate = false;
  CHECK_FALSE(JobStore::open(no_migrate).ok());

  // The migrations runner refuses it as well, and nothing was recorded.
  SQLite::Database db(config.path, SQLite::OPEN_READWRITE);
  auto st = scrapekeep::store::migrate(db, 0);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ErrorCode::invalid_argument);
  CHECK(db.execAndGet("SELECT MAX(version) FROM schema_migrations").getInt() == latest + 1);
  CHECK(db.execAndGet("SELECT COUNT(*) FROM schema_migrations").getInt() ==
        static_cast<int>(scrapekeep::store::embedded_migrations().size()) + 1);
}

TEST_CASE("a SQLite file of another program is refused and left alone", "[store]") {
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    db.exec("INSERT INTO notes (body) VALUES ('keep me')");
  }
  StoreConfig config;
  config.path = path;
  auto refused = JobStore::open(config);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::invalid_argument);
  INFO(refused.error().message);
  CHECK(mentions(refused.error().message, "not a scrapekeep database"));

  config.read_only = true;
  CHECK_FALSE(JobStore::open(config).ok());

  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(table_names(db) == std::vector<std::string>{"notes"});
  CHECK(db.execAndGet("SELECT body FROM notes").getString() == "keep me");
}

TEST_CASE("refusing a foreign SQLite file leaves its journal mode as it was", "[store]") {
  // Opening read-write switches the file to WAL before it is checked; the
  // refusal must not leave another program's database changed.
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    REQUIRE(db.execAndGet("PRAGMA journal_mode").getString() == "delete");
  }
  StoreConfig config;
  config.path = path;
  REQUIRE_FALSE(JobStore::open(config).ok());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "delete");
}

namespace {

std::string garbage_text() {
  std::string garbage;
  for (int i = 0; i < 512; ++i) {
    garbage += "this is not a database, just some text. ";
  }
  return garbage;
}

} // namespace

TEST_CASE("a file that is not a database is refused with a clear error", "[store]") {
  TempDir dir;
  const std::string path = dir.file("garbage.db");
  const std::string garbage = garbage_text();
  write_file(path, garbage);

  StoreConfig config;
  config.path = path;
  auto refused = JobStore::open(config);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::invalid_argument);
  INFO(refused.error().message);
  CHECK(mentions(refused.error().message, "not a scrapekeep database"));
  CHECK(read_file(path) == garbage);
}

TEST_CASE("a file that is not a database is refused the same way when read-only", "[store]") {
  // As the read-write open and recorded_schema_version()'s contract say:
  // invalid_argument, "not a scrapekeep database".
  TempDir dir;
  const std::string path = dir.file("garbage.db");
  const std::string garbage = garbage_text();
  write_file(path, garbage);

  StoreConfig config;
  config.path = path;
  config.read_only = true;
  auto refused = JobStore::open(config);
  REQUIRE_FALSE(refused.ok());
  INFO(refused.error().message);
  CHECK(refused.error().code == ErrorCode::invalid_argument);
  CHECK(mentions(refused.error().message, "not a scrapekeep database"));
  CHECK(read_file(path) == garbage);
}

TEST_CASE("read-only open of a missing file creates nothing", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("missing.db");
  config.read_only = true;
  auto refused = JobStore::open(config);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::not_found);
  CHECK_FALSE(std::filesystem::exists(config.path));
}

TEST_CASE("migration 0005 applies to a database of schema version 4 with rows in it",
          "[store]") {
  using scrapekeep::store::ListingPageRecord;
  TempDir dir;
  constexpr scrapekeep::core::Micros k_t0 = 1'768'201'200'000'000;
  constexpr scrapekeep::core::Micros k_lease = 30'000'000;
  const std::string base = "http://127.0.0.1:9000/listings?page=";
  // What a binary of schema version 4 made: migrations 0001 to 0004.
  std::vector<SchemaRow> version4;
  {
    SQLite::Database db(dir.file("version4.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    for (const auto& m : scrapekeep::store::embedded_migrations()) {
      if (m.version <= 4) {
        db.exec(m.sql);
      }
    }
    version4 = schema_of(db);
  }
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  std::string job_id;
  {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    auto key = (*store)->create_key("org-v4", k_t0);
    REQUIRE(key.ok());
    scrapekeep::core::JobOptions options;
    options.follow_pagination = true;
    options.max_pages = 5;
    options.selectors.item = "//article";
    options.selectors.fields = {{"title", ".//h2"}};
    auto job = (*store)->create_job(key->info.org_id, base + "1", options, k_t0);
    REQUIRE(job.ok());
    job_id = job->job_id;
    auto claim = (*store)->claim_next(k_t0, k_lease);
    REQUIRE(claim.ok());
    REQUIRE(claim->has_value());
    for (std::int64_t page = 1; page <= 2; ++page) {
      ListingPageRecord r;
      r.page_number = page;
      r.url = base + std::to_string(page);
      r.http_status = 200;
      r.started_at = r.finished_at = k_t0;
      r.items.push_back({{{"title", "Item " + std::to_string(page)}}, std::nullopt});
      r.next_url = base + std::to_string(page + 1);
      REQUIRE((*store)->record_listing_page(**claim, r, k_t0).ok());
    }
    REQUIRE((*store)->release(**claim).ok());
  }
  {
    // The same rows as version 4 held them.
    SQLite::Database db(config.path, SQLite::OPEN_READWRITE);
    as_schema_version(db, 4);
    REQUIRE(schema_of(db) == version4);
  }
  std::vector<SchemaRow> fresh;
  {
    StoreConfig fresh_config;
    fresh_config.path = dir.file("fresh.db");
    auto store = JobStore::open(fresh_config);
    REQUIRE(store.ok());
    fresh = schema_of((*store)->database());
  }
  auto store = JobStore::open(config);
  REQUIRE(store.ok());
  CHECK((*store)->schema_version().value() == scrapekeep::store::latest_schema_version());
  CHECK(schema_of((*store)->database()) == fresh);
  {
    SQLite::Statement old_rows((*store)->database(),
                               "SELECT COUNT(*) FROM page_events WHERE job_id = ? AND "
                               "final_url IS NULL");
    old_rows.bind(1, job_id);
    REQUIRE(old_rows.executeStep());
    CHECK(old_rows.getColumn(0).getInt() == 2);
  }
  // The job resumes after its two pages, and its next page's final URL is kept.
  auto claim = (*store)->claim_next(k_t0 + 1'000'000, k_lease);
  REQUIRE(claim.ok());
  REQUIRE(claim->has_value());
  CHECK((*claim)->job_id == job_id);
  auto rp = (*store)->resume_point(**claim);
  REQUIRE(rp.ok());
  CHECK(rp->next_page_number == 3);
  CHECK(rp->next_url == std::optional<std::string>(base + "3"));
  CHECK(rp->visited_listing_urls == std::vector<std::string>{base + "1", base + "2"});
  ListingPageRecord third;
  third.page_number = 3;
  third.url = base + "3";
  third.final_url = base + "3b";
  third.started_at = third.finished_at = k_t0 + 1'000'000;
  REQUIRE((*store)->record_listing_page(**claim, third, k_t0 + 1'000'000).ok());
  rp = (*store)->resume_point(**claim);
  REQUIRE(rp.ok());
  CHECK(rp->visited_listing_urls ==
        std::vector<std::string>{base + "1", base + "2", base + "3", base + "3b"});
}

TEST_CASE("migration 0007 numbers each job's events from 1 in the order they were stored",
          "[store]") {
  using scrapekeep::store::ListingPageRecord;
  TempDir dir;
  constexpr scrapekeep::core::Micros k_t0 = 1'768'201'200'000'000;
  const std::string base = "http://127.0.0.1:9000/listings?page=";
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  std::vector<std::string> jobs;
  const auto page = [&](std::int64_t n) {
    ListingPageRecord r;
    r.page_number = n;
    r.url = base + std::to_string(n);
    r.http_status = 200;
    r.started_at = r.finished_at = k_t0;
    r.next_url = base + std::to_string(n + 1);
    return r;
  };
  {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    auto key = (*store)->create_key("org-v6", k_t0);
    REQUIRE(key.ok());
    scrapekeep::core::JobOptions options;
    options.follow_pagination = true;
    options.max_pages = 10;
    options.selectors.item = "//article";
    std::vector<scrapekeep::store::Claim> claims;
    for (int j = 0; j < 2; ++j) {
      auto job = (*store)->create_job(key->info.org_id, base + "1", options, k_t0);
      REQUIRE(job.ok());
      jobs.push_back(job->job_id);
      auto claim = (*store)->claim_next(k_t0, 30'000'000);
      REQUIRE(claim.ok());
      REQUIRE(claim->has_value());
      claims.push_back(**claim);
    }
    // Interleaved: pages 1 and 2 of each job, then page 3 of the first.
    for (std::int64_t n = 1; n <= 2; ++n) {
      for (const auto& claim : claims) {
        REQUIRE((*store)->record_listing_page(claim, page(n), k_t0).ok());
      }
    }
    REQUIRE((*store)->record_listing_page(claims[0], page(3), k_t0).ok());
    for (const auto& claim : claims) {
      REQUIRE((*store)->release(claim).ok());
    }
  }
  // A job's event numbers, in the order stored: `column` seq (the whole
  // table's) or job_seq.
  const auto seqs = [&](SQLite::Database& db, const std::string& job_id, const char* column) {
    SQLite::Statement q(db, std::string("SELECT ") + column +
                                " FROM page_events WHERE job_id = ? ORDER BY seq");
    q.bind(1, job_id);
    std::vector<std::int64_t> out;
    while (q.executeStep()) {
      out.push_back(q.getColumn(0).getInt64());
    }
    return out;
  };
  {
    // As version 6 held them: one sequence for the whole database.
    SQLite::Database db(config.path, SQLite::OPEN_READWRITE);
    as_schema_version(db, 6);
    CHECK(seqs(db, jobs[0], "seq") == std::vector<std::int64_t>{1, 3, 5});
    CHECK(seqs(db, jobs[1], "seq") == std::vector<std::int64_t>{2, 4});
  }
  auto store = JobStore::open(config);
  REQUIRE(store.ok());
  SQLite::Database& db = (*store)->database();
  CHECK(seqs(db, jobs[0], "job_seq") == std::vector<std::int64_t>{1, 2, 3});
  CHECK(seqs(db, jobs[1], "job_seq") == std::vector<std::int64_t>{1, 2});
  // The whole table's numbers stay as they were: a binary of version 6 still
  // running on the file reads and deletes by them as before.
  CHECK(seqs(db, jobs[0], "seq") == std::vector<std::int64_t>{1, 3, 5});
  // The second job's next event follows its own last; `after` counts the job's.
  auto claim = (*store)->claim_next(k_t0 + 1'000'000, 30'000'000);
  REQUIRE(claim.ok());
  REQUIRE(claim->has_value());
  const std::string resumed = (*claim)->job_id;
  auto rp = (*store)->resume_point(**claim);
  REQUIRE(rp.ok());
  REQUIRE((*store)->record_listing_page(**claim, page(rp->next_page_number), k_t0).ok());
  const std::int64_t last = resumed == jobs[0] ? 4 : 3;
  auto events = (*store)->list_events(resumed, last - 2, 10);
  REQUIRE(events.ok());
  REQUIRE(events->events.size() == 2);
  CHECK(events->events[0].seq == last - 1);
  CHECK(events->events[1].seq == last);
  CHECK(events->events[1].page_number == last);
  CHECK(events->next_after == last);

  // An event a binary of version 6 stores (no job_seq) is numbered too.
  db.exec("INSERT INTO page_events (job_id, kind, page_number, url, outcome, started_at, "
          "finished_at) VALUES ('" + resumed + "', 'listing', 9, 'http://x/9', 'ok', 0, 0)");
  auto after_old = (*store)->list_events(resumed, last, 10);
  REQUIRE(after_old.ok());
  REQUIRE(after_old->events.size() == 1);
  CHECK(after_old->events[0].seq == last + 1);
  CHECK(after_old->events[0].page_number == 9);
}

TEST_CASE("opening a file behind the schema waits for another process migrating it, past the "
          "busy timeout", "[store]") {
  TempDir dir;
  StoreConfig config;
  config.path = dir.file("scrapekeep.db");
  {
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
  }
  {
    SQLite::Database db(config.path, SQLite::OPEN_READWRITE);
    as_schema_version(db, 6);
  }
  // Another process's long migration: the write lock held past the busy timeout.
  SQLite::Database other(config.path, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  std::thread release([&other] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    other.exec("COMMIT");
  });
  config.busy_timeout_ms = 200;
  const auto started = std::chrono::steady_clock::now();
  auto store = JobStore::open(config);
  const auto waited = std::chrono::steady_clock::now() - started;
  release.join();
  INFO((store.ok() ? std::string("opened") : store.error().message));
  REQUIRE(store.ok());
  CHECK(waited >= std::chrono::milliseconds(1000));
  CHECK((*store)->schema_version().value() == scrapekeep::store::latest_schema_version());
}

namespace {

// Runs `between` on another connection once, just before `db` runs its first
// statement whose SQL holds `marker` (the moment another process's commit
// may land between two of its statements).
struct CommitBetween {
  std::string marker;
  std::function<void()> between;
  bool done = false;
};

int commit_between(unsigned type, void* context, void* /*stmt*/, void* sql) {
  auto* c = static_cast<CommitBetween*>(context);
  if (type == SQLITE_TRACE_STMT && !c->done &&
      std::string(static_cast<const char*>(sql)).find(c->marker) != std::string::npos) {
    c->done = true;
    c->between();
  }
  return 0;
}

} // namespace

TEST_CASE("the schema version and the tables it checks are read from one snapshot, while "
          "another process creates or migrates the file",
          "[store]") {
  TempDir dir;
  const std::string path = dir.file("racing.db");
  SQLite::Database other(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  other.exec("PRAGMA journal_mode = WAL");
  std::string marker;
  int expected = 0;
  SECTION("a file being created: schema_migrations made, 0001 committed in between") {
    // As migrate() leaves it after its first transaction.
    other.exec(scrapekeep::store::k_schema_migrations_table);
    marker = "NOT IN ('schema_migrations'";
    expected = 0;
  }
  SECTION("a file of version 3 migrated (0004 drops api_keys.prefix) in between") {
    const auto& all = scrapekeep::store::embedded_migrations();
    other.exec(scrapekeep::store::k_schema_migrations_table);
    for (const auto& m : all) {
      if (m.version <= 3) {
        other.exec(m.sql);
        other.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) +
                   ", 'm', 0)");
      }
    }
    marker = "pragma_table_info";
    expected = 3;
  }
  CommitBetween hook{marker, [&other] {
                       REQUIRE(scrapekeep::store::migrate(other, 0).ok());
                     }};
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  sqlite3_trace_v2(db.getHandle(), SQLITE_TRACE_STMT, commit_between, &hook);
  auto version = scrapekeep::store::recorded_schema_version(db);
  sqlite3_trace_v2(db.getHandle(), 0, nullptr, nullptr);
  CHECK(hook.done);
  INFO((version ? std::string("ok") : version.error().message));
  REQUIRE(version.ok());
  CHECK(*version == expected);
  // Read again, it is the version the other process left.
  CHECK(scrapekeep::store::recorded_schema_version(db).value() ==
        scrapekeep::store::latest_schema_version());
}

namespace {

// Why each way of opening the file refuses it (read-write, read-only, as
// `inspect` reads it), or "" for one that opens it.
std::vector<std::string> refusals(const std::string& path) {
  std::vector<std::string> why;
  StoreConfig config;
  config.path = path;
  StoreConfig read_only = config;
  read_only.read_only = true;
  for (const StoreConfig& c : {config, read_only}) {
    auto store = JobStore::open(c);
    why.push_back(store ? "" : store.error().message);
  }
  auto history = scrapekeep::store::History::open(path);
  why.push_back(history ? "" : history.error().message);
  return why;
}

} // namespace

TEST_CASE("a schema version past 32 bits is read whole and refused as newer", "[store]") {
  const std::int64_t version = GENERATE(std::int64_t{2147483648}, std::int64_t{4294967300},
                                        std::numeric_limits<std::int64_t>::max());
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    StoreConfig config;
    config.path = path;
    REQUIRE(JobStore::open(config).ok());
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "INSERT INTO schema_migrations VALUES (?, 'x.sql', 0)");
    q.bind(1, static_cast<int64_t>(version));
    q.exec();
  }
  for (const std::string& why : refusals(path)) {
    INFO(why);
    CHECK(
        mentions(why, "schema version " + std::to_string(version) + " is newer than this binary"));
  }
}

TEST_CASE(
    "a trigger or index scrapekeep did not make, or changed, is refused before it can "
    "run, and the file is left as it was",
    "[store]") {
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    StoreConfig config;
    config.path = path;
    auto store = JobStore::open(config);
    REQUIRE(store.ok());
    auto key = (*store)->create_key("default", 0);
    REQUIRE(key.ok());
    scrapekeep::core::JobOptions options;
    options.selectors.item = "//li";
    REQUIRE((*store)->create_job(key->info.org_id, "http://127.0.0.1/", options, 0).ok());
    REQUIRE((*store)->create_job(key->info.org_id, "http://127.0.0.1/", options, 0).ok());
  }
  struct Tampering {
    std::string sql;
    std::string said;
  };
  const Tampering t = GENERATE(
      Tampering{"CREATE TRIGGER evil AFTER UPDATE ON jobs BEGIN DELETE FROM jobs; END",
                "its trigger evil on jobs is not one scrapekeep made"},
      Tampering{"DROP TRIGGER page_events_job_seq; CREATE TRIGGER page_events_job_seq AFTER "
                "INSERT ON page_events BEGIN DELETE FROM jobs; END",
                "its trigger page_events_job_seq on page_events is not one scrapekeep made"},
      Tampering{"DROP TRIGGER page_events_job_seq", "its trigger page_events_job_seq is missing"},
      // Without it a listing page could be stored, and counted, twice.
      Tampering{"DROP INDEX page_events_listing_once",
                "its index page_events_listing_once is missing"},
      Tampering{"DROP INDEX jobs_progress; CREATE INDEX jobs_progress ON jobs (job_id)",
                "its index jobs_progress is not the one scrapekeep made"},
      // Its columns swapped in sqlite_master, the table's rows as they were:
      // the progress read would show one counter's value as the other's.
      Tampering{"PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, "
                "'listing_pages_scraped, listing_pages_failed', 'listing_pages_failed, "
                "listing_pages_scraped') WHERE name = 'jobs_progress'",
                "its index jobs_progress is not the one scrapekeep made"},
      // An index of the user's own is no harm: the file opens (said is empty).
      Tampering{"CREATE INDEX mine ON result_items (job_id)", ""});
  INFO(t.sql);
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(t.sql);
  }
  const std::string before = read_file(path);
  for (const std::string& why : refusals(path)) {
    INFO(why);
    if (t.said.empty()) {
      CHECK(why.empty());
    } else {
      CHECK(mentions(why, "not a scrapekeep database it can read: " + t.said));
    }
  }
  CHECK(read_file(path) == before);
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT COUNT(*) FROM jobs").getInt() == 2);
}

TEST_CASE("a -journal, -wal or -shm that is not a regular file is refused at once", "[store]") {
  const std::string suffix = GENERATE(as<std::string>{}, "-journal", "-wal", "-shm");
  const bool fifo = GENERATE(true, false);
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    StoreConfig config;
    config.path = path;
    REQUIRE(JobStore::open(config).ok());
  }
  std::filesystem::remove(path + suffix);
  if (fifo) {
    REQUIRE(::mkfifo((path + suffix).c_str(), 0600) == 0);
  } else {
    std::filesystem::create_directory(path + suffix);
  }
  // The FIFO's open would wait for ever: refused before SQLite opens it.
  for (const std::string& why : refusals(path)) {
    INFO(why);
    CHECK(why == path + suffix +
                     " is not a regular file (a directory, FIFO, socket or device), where "
                     "SQLite keeps the database's " +
                     suffix.substr(1) + " file: remove it");
  }
}

TEST_CASE("a trigger in a file that records no migration yet is refused before the migrations "
          "run it",
          "[store]") {
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    // As a database being made looks (schema_migrations first, empty), with
    // a trigger that runs on every migration recorded: here it forgets each
    // one, so that every open migrates again; an endless one would hang.
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(scrapekeep::store::k_schema_migrations_table);
    db.exec("CREATE TRIGGER evil AFTER INSERT ON schema_migrations BEGIN DELETE FROM "
            "schema_migrations WHERE version = NEW.version; END");
  }
  const std::string before = read_file(path);
  StoreConfig config;
  config.path = path;
  auto store = JobStore::open(config);
  REQUIRE_FALSE(store.ok());
  CHECK(mentions(store.error().message,
                 "not a scrapekeep database it can read: its trigger evil on schema_migrations is "
                 "not one scrapekeep made"));
  CHECK(read_file(path) == before);
}

TEST_CASE("a schema version below 0 is refused, not read without its tables checked", "[store]") {
  const std::int64_t version = GENERATE(std::int64_t{-1}, std::int64_t{-4294967289},
                                        std::numeric_limits<std::int64_t>::min());
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    StoreConfig config;
    config.path = path;
    REQUIRE(JobStore::open(config).ok());
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM schema_migrations");
    SQLite::Statement q(db, "INSERT INTO schema_migrations VALUES (?, 'x.sql', 0)");
    q.bind(1, static_cast<int64_t>(version));
    q.exec();
  }
  for (const std::string& why : refusals(path)) {
    INFO(why);
    CHECK(why == "the file is not a scrapekeep database it can read: its schema_migrations table "
                 "records version " + std::to_string(version) + ", which no migration has");
  }
}

TEST_CASE("a -journal that is not a regular file is refused when --db is written as a URI",
          "[store]") {
  TempDir dir;
  const std::string path = dir.file("scrapekeep.db");
  {
    StoreConfig config;
    config.path = path;
    REQUIRE(JobStore::open(config).ok());
  }
  // A directory: a FIFO would hang the open this refuses (SQLite opens URIs).
  std::filesystem::create_directory(path + "-journal");
  for (const std::string& uri : {"file:" + path, "file://" + path + "?mode=rw"}) {
    for (const bool read_only : {false, true}) {
      StoreConfig config;
      config.path = uri;
      config.read_only = read_only;
      auto store = JobStore::open(config);
      INFO(uri << (read_only ? " read-only" : ""));
      REQUIRE_FALSE(store.ok());
      CHECK(store.error().message ==
            path + "-journal is not a regular file (a directory, FIFO, socket or device), where "
                   "SQLite keeps the database's journal file: remove it");
    }
  }
}
