// gen_db: writes a scrapekeep database of N synthetic jobs (default 1,000,000)
// with a realistic mix of statuses, reasons, options and counters, and the page
// events that those counters sum. For inspection benchmarks; result_items are
// not generated (a million jobs' items would be tens of gigabytes), so
// `scrapekeep inspect check` reports every job with items as missing them.
//
//   gen_db --db PATH [--jobs N] [--days D] [--orgs K] [--seed S] [--force]
//
// The schema comes from the store's migrations; rows are then inserted with
// the SQLite C API in large transactions with the journal off (the file is
// garbage if the generator is interrupted) and the file is left in WAL mode.

#include <sqlite3.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/json_codec.hpp"

namespace {

using scrapekeep::core::CompletionReason;
using scrapekeep::core::Job;
using scrapekeep::core::JobStatus;
using scrapekeep::core::Micros;

constexpr Micros k_ms = 1000;
constexpr Micros k_second = 1'000'000;
constexpr std::int64_t k_jobs_per_transaction = 50'000;

struct Options {
  std::string db;
  std::int64_t jobs = 1'000'000;
  std::int64_t days = 90;
  std::int64_t orgs = 20;
  std::uint64_t seed = 42;
  bool force = false;
};

// splitmix64: fast, good enough for synthetic data, reproducible from --seed.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : m_state(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  // True with probability p.
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  std::uint64_t m_state;
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "gen_db: " << message << "\n";
  std::exit(1);
}

void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    die(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

void exec(sqlite3* db, const char* sql) {
  check(db, sqlite3_exec(db, sql, nullptr, nullptr, nullptr), sql);
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : m_db(db) {
    check(db, sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m_stmt, nullptr), sql);
  }
  ~Stmt() { sqlite3_finalize(m_stmt); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void bind(int i, std::int64_t v) { sqlite3_bind_int64(m_stmt, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(m_stmt, i, v); }
  // Text is bound without a copy: it must outlive run().
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(m_stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind(int i, const char* v) { sqlite3_bind_text(m_stmt, i, v, -1, SQLITE_STATIC); }
  void bind_null(int i) { sqlite3_bind_null(m_stmt, i); }
  template <typename T>
  void bind(int i, const std::optional<T>& v) {
    if (v) {
      bind(i, *v);
    } else {
      bind_null(i);
    }
  }
  void run() {
    check(m_db, sqlite3_step(m_stmt), "insert");
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }

 private:
  sqlite3* m_db;
  sqlite3_stmt* m_stmt = nullptr;
};

struct Event {
  bool listing = true;
  std::int64_t page_number = 1;
  std::optional<std::int64_t> item_index;
  std::string url;
  std::optional<std::int64_t> http_status;
  bool ok = true;
  std::int64_t items = 0;
  std::int64_t links = 0;
  std::optional<std::string> next_url;
  std::optional<std::string> error;
  Micros started = 0;
  Micros finished = 0;
};

std::string hex_id(Rng& rng, int bytes) {
  static const char* k_hex = "0123456789abcdef";
  std::string out;
  while (bytes > 0) {
    std::uint64_t r = rng.next();
    for (int i = 0; i < 8 && bytes > 0; ++i, --bytes) {
      out += k_hex[(r >> 4) & 0xf];
      out += k_hex[r & 0xf];
      r >>= 8;
    }
  }
  return out;
}

const char* const k_listing_errors[] = {"HTTP 503 after 3 attempts",
                                        "HTTP 500 after 3 attempts",
                                        "connection refused",
                                        "timed out after 30 s",
                                        "HTTP 404",
                                        "TLS handshake failed"};
const char* const k_detail_errors[] = {"HTTP 404", "HTTP 410", "timed out after 30 s",
                                       "HTTP 503 after 3 attempts"};

// Decides one job's fate and fills in its row and events, consistently.
void make_job(Rng& rng, Job& job, std::vector<Event>& events, bool recent, Micros now) {
  events.clear();
  const std::string site = "https://shop-" + std::to_string(rng.range(1, 400)) + ".example";
  job.url = site + "/listings?page=1";
  job.options.follow_pagination = rng.chance(0.6);
  job.options.max_pages = job.options.follow_pagination ? static_cast<int>(rng.range(2, 20)) : 10;
  job.options.depth = rng.chance(0.1) ? 1 : 0;
  job.options.max_items =
      job.options.depth == 1 ? static_cast<int>(rng.range(3, 10)) : (rng.chance(0.7) ? 100 : 500);
  job.options.timeout = rng.chance(0.8) ? 300 : 60;

  // Status and reason: recent jobs are still queued or running.
  const double roll = static_cast<double>(rng.range(0, 9999)) / 10000.0;
  enum class Fate {
    pending,
    processing,
    done,
    timeout,
    error,
    cancelled_pending,
    cancelled_running
  };
  Fate fate;
  if (recent) {
    fate = roll < 0.5 ? Fate::pending : roll < 0.85 ? Fate::processing : Fate::done;
  } else {
    fate = roll < 0.78   ? Fate::done
           : roll < 0.83 ? Fate::timeout
           : roll < 0.94 ? Fate::error
           : roll < 0.97 ? Fate::cancelled_pending
                         : Fate::cancelled_running;
  }
  if (fate == Fate::pending || fate == Fate::cancelled_pending) {
    job.status = fate == Fate::pending ? JobStatus::pending : JobStatus::cancelled;
    if (fate == Fate::cancelled_pending) {
      job.completion_reason = CompletionReason::cancelled;
      job.completed_at = job.created_at + rng.range(1, 600) * k_second;
      job.stopped_percentage = 0.0;
    }
    return;
  }

  const Micros start = job.created_at + rng.range(10, 5000) * k_ms;
  job.started_at = start;
  job.attempts = rng.chance(0.02) ? 2 : 1;
  Micros t = start + rng.range(20, 300) * k_ms;
  auto& c = job.counters;

  // Listing pages, then (depth 1) the detail pages of their items.
  const std::int64_t planned_pages =
      job.options.follow_pagination
          ? std::min<std::int64_t>(job.options.max_pages, 1 + rng.range(0, 2) + rng.range(0, 2))
          : 1;
  std::int64_t pages = planned_pages;
  bool stop_early = fate == Fate::error || fate == Fate::processing ||
                    fate == Fate::cancelled_running || fate == Fate::timeout;
  if (stop_early) {
    pages = rng.range(1, planned_pages);
  }
  struct Item {
    std::int64_t page;
  };
  std::vector<Item> items;
  for (std::int64_t p = 1; p <= pages; ++p) {
    Event e;
    e.page_number = p;
    e.url = site + "/listings?page=" + std::to_string(p);
    e.started = t;
    e.finished = t + rng.range(150, 2500) * k_ms;
    t = e.finished + rng.range(0, 1500) * k_ms;
    const bool last = p == pages;
    if (fate == Fate::error && last) {
      e.ok = false;
      const char* error = k_listing_errors[rng.range(0, 5)];
      e.error = error;
      if (std::strncmp(error, "HTTP ", 5) == 0) {
        e.http_status = std::atoll(error + 5);
      }
      ++c.listing_pages_failed;
      job.current_page = p;
      job.error_message = e.url + ": " + error;
      events.push_back(std::move(e));
      break;
    }
    e.http_status = 200;
    // A failing job stops at its failed page, before max_items could complete it.
    const std::int64_t room = std::max<std::int64_t>(
        0, job.options.max_items - c.items_found - (fate == Fate::error ? 1 : 0));
    e.items = std::min<std::int64_t>(room, rng.range(8, 24));
    e.links = job.options.depth == 1 ? e.items : 0;
    for (std::int64_t i = 0; i < e.items; ++i) {
      items.push_back(Item{p});
    }
    ++c.listing_pages_scraped;
    c.items_found += e.items;
    c.detail_pages_discovered += e.links;
    const bool complete = (last && !stop_early) || c.items_found >= job.options.max_items ||
                          !job.options.follow_pagination || p == job.options.max_pages;
    if (!complete) {
      e.next_url = site + "/listings?page=" + std::to_string(p + 1);
    }
    job.current_page = complete ? p : p + 1;
    job.pagination_complete = complete;
    events.push_back(std::move(e));
    if (complete) {
      break;
    }
  }
  if (job.options.depth == 1 && fate != Fate::error) {
    const auto n = static_cast<std::int64_t>(items.size());
    const std::int64_t done = stop_early ? rng.range(0, n) : n;
    for (std::int64_t i = 0; i < done; ++i) {
      Event e;
      e.listing = false;
      e.page_number = items[static_cast<size_t>(i)].page;
      e.item_index = i;
      e.url = site + "/item/" + std::to_string(rng.range(1, 999999));
      e.started = t;
      e.finished = t + rng.range(100, 1800) * k_ms;
      t = e.finished + rng.range(0, 300) * k_ms;
      if (rng.chance(0.05)) {
        e.ok = false;
        const char* error = k_detail_errors[rng.range(0, 3)];
        e.error = error;
        if (std::strncmp(error, "HTTP ", 5) == 0) {
          e.http_status = std::atoll(error + 5);
        }
        ++c.detail_pages_failed;
      } else {
        e.http_status = 200;
        ++c.detail_pages_scraped;
      }
      events.push_back(std::move(e));
    }
  }

  switch (fate) {
    case Fate::done:
      job.status = JobStatus::completed;
      job.completion_reason = CompletionReason::done;
      job.pagination_complete = true;
      job.completed_at = t + rng.range(1, 50) * k_ms;
      break;
    case Fate::timeout:
      job.status = JobStatus::completed;
      job.completion_reason = CompletionReason::timeout;
      job.completed_at = std::max(t, start + job.options.timeout * k_second);
      break;
    case Fate::error:
      job.status = JobStatus::failed;
      job.completion_reason = CompletionReason::error;
      job.completed_at = t + rng.range(1, 50) * k_ms;
      job.stopped_percentage = scrapekeep::core::live_percentage(job);
      break;
    case Fate::cancelled_running:
      job.status = JobStatus::cancelled;
      job.completion_reason = CompletionReason::cancelled;
      job.completed_at = t + rng.range(1, 5000) * k_ms;
      job.stopped_percentage = scrapekeep::core::live_percentage(job);
      break;
    case Fate::processing:
      job.status = JobStatus::processing;
      job.claim_token = hex_id(rng, 16);
      // Most leases are live (renewed recently); some workers vanished.
      job.lease_expires_at =
          rng.chance(0.8) ? now + rng.range(1, 30) * k_second : t + 30 * k_second;
      break;
    case Fate::pending:
    case Fate::cancelled_pending:
      break;
  }
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("A synthetic scrapekeep database for benchmarks", "gen_db");
  app.add_option("--db", o.db, "Database file to create")->required();
  const auto whole = scrapekeep::cli::whole_number(0, std::numeric_limits<long long>::max());
  app.add_option("--jobs", o.jobs)->transform(whole)->capture_default_str();
  app.add_option("--days", o.days, "Jobs spread over this many days")
      ->transform(scrapekeep::cli::at_least_one())
      ->capture_default_str();
  app.add_option("--orgs", o.orgs, "Organizations")
      ->transform(scrapekeep::cli::at_least_one())
      ->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  app.add_flag("--force", o.force, "Replace an existing file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  // Before SQLite initializes: no allocation statistics (a mutex per malloc).
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (std::filesystem::exists(o.db)) {
    if (!o.force) {
      die(o.db + " exists (pass --force to replace it)");
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(o.db + suffix);
    }
  }
  const auto began = std::chrono::steady_clock::now();
  const Micros now = scrapekeep::core::SystemClock().now();
  const Micros first = now - o.days * 86400 * k_second;

  // Schema and organizations (with one API key each) through the store.
  std::vector<std::int64_t> org_ids;
  {
    auto opened = scrapekeep::store::JobStore::open(scrapekeep::store::StoreConfig{.path = o.db});
    if (!opened) {
      die(opened.error().message);
    }
    for (std::int64_t k = 0; k < o.orgs; ++k) {
      char name[32];
      std::snprintf(name, sizeof name, "org-%02lld", static_cast<long long>(k + 1));
      auto key = (*opened)->create_key(name, first);
      if (!key) {
        die(key.error().message);
      }
      org_ids.push_back(key->info.org_id);
    }
  }

  sqlite3* db = nullptr;
  if (sqlite3_open_v2(o.db.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    die("cannot open " + o.db);
  }
  exec(db, "PRAGMA journal_mode = OFF");
  exec(db, "PRAGMA synchronous = OFF");
  exec(db, "PRAGMA locking_mode = EXCLUSIVE");
  exec(db, "PRAGMA cache_size = -262144");  // 256 MiB: the job_id index stays in memory
  exec(db, "PRAGMA temp_store = MEMORY");
  exec(db, "PRAGMA threads = 4");

  // Secondary indexes are dropped while rows go in and rebuilt from their own
  // SQL text afterwards (a sort instead of a million random inserts), so the
  // schema stays exactly what the migrations made.
  std::vector<std::string> index_sql;
  {
    sqlite3_stmt* q = nullptr;
    check(
        db,
        sqlite3_prepare_v2(db,
                           "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name IN ('jobs', 'page_events') AND sql IS NOT NULL ORDER BY rowid",
                           -1, &q, nullptr),
        "list indexes");
    std::vector<std::string> names;
    while (sqlite3_step(q) == SQLITE_ROW) {
      names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
      index_sql.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 1)));
    }
    sqlite3_finalize(q);
    for (const auto& name : names) {
      exec(db, ("DROP INDEX \"" + name + "\"").c_str());
    }
  }

  const std::string selectors = [] {
    scrapekeep::core::Selectors s;
    s.item = "//article[@class='property']";
    s.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
    s.detail_fields = {{"description", "//p[@class='desc']"}};
    return scrapekeep::store::to_json(s).dump();
  }();

  Stmt insert_job(
      db,
      "INSERT INTO jobs (job_id, org_id, status, url, timeout_s, max_items, follow_pagination, "
      "max_pages, depth, selectors, created_at, started_at, completed_at, completion_reason, "
      "error_message, current_page, pagination_complete, listing_pages_scraped, "
      "listing_pages_failed, detail_pages_discovered, detail_pages_scraped, detail_pages_failed, "
      "items_found, stopped_percentage, attempts, claim_token, claimed_by, lease_expires_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?)");
  Stmt insert_event(
      db,
      "INSERT INTO page_events (job_id, kind, page_number, item_index, url, http_status, outcome, "
      "items_found, detail_links, next_url, error, started_at, finished_at, job_seq) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

  Rng rng(o.seed);
  Job job;
  std::vector<Event> events;
  std::int64_t event_count = 0;
  std::int64_t by_status[5] = {0, 0, 0, 0, 0};
  std::string sample_failed;
  std::string sample_processing;
  const std::int64_t recent_from = o.jobs - std::max<std::int64_t>(1, o.jobs / 200);
  const Micros span = now - first;

  exec(db, "BEGIN");
  for (std::int64_t i = 0; i < o.jobs; ++i) {
    job = Job{};
    job.job_id = "job_" + hex_id(rng, 12);
    job.org_id = org_ids[static_cast<size_t>(
        std::min<std::int64_t>(rng.range(0, o.orgs - 1), rng.range(0, o.orgs - 1)))];
    job.created_at = first +
                     static_cast<Micros>(static_cast<double>(span) * static_cast<double>(i) /
                                         static_cast<double>(std::max<std::int64_t>(1, o.jobs))) +
                     rng.range(0, 999);
    make_job(rng, job, events, i >= recent_from, now);
    ++by_status[static_cast<int>(job.status)];
    if (job.status == JobStatus::failed) {
      sample_failed = job.job_id;
    } else if (job.status == JobStatus::processing && sample_processing.empty()) {
      sample_processing = job.job_id;
    }

    int k = 1;
    const auto& c = job.counters;
    insert_job.bind(k++, job.job_id);
    insert_job.bind(k++, job.org_id);
    insert_job.bind(k++, scrapekeep::core::to_string(job.status));
    insert_job.bind(k++, job.url);
    insert_job.bind(k++, std::int64_t{job.options.timeout});
    insert_job.bind(k++, std::int64_t{job.options.max_items});
    insert_job.bind(k++, std::int64_t{job.options.follow_pagination ? 1 : 0});
    insert_job.bind(k++, std::int64_t{job.options.max_pages});
    insert_job.bind(k++, std::int64_t{job.options.depth});
    insert_job.bind(k++, selectors);
    insert_job.bind(k++, job.created_at);
    insert_job.bind(k++, job.started_at);
    insert_job.bind(k++, job.completed_at);
    if (job.completion_reason) {
      insert_job.bind(k++, scrapekeep::core::to_string(*job.completion_reason));
    } else {
      insert_job.bind_null(k++);
    }
    insert_job.bind(k++, job.error_message);
    insert_job.bind(k++, job.current_page);
    insert_job.bind(k++, std::int64_t{job.pagination_complete ? 1 : 0});
    insert_job.bind(k++, c.listing_pages_scraped);
    insert_job.bind(k++, c.listing_pages_failed);
    insert_job.bind(k++, c.detail_pages_discovered);
    insert_job.bind(k++, c.detail_pages_scraped);
    insert_job.bind(k++, c.detail_pages_failed);
    insert_job.bind(k++, c.items_found);
    insert_job.bind(k++, job.stopped_percentage);
    insert_job.bind(k++, job.attempts);
    insert_job.bind(k++, job.claim_token);
    const std::string holder =
        job.claim_token ? "gen-host:4242:" + job.claim_token->substr(0, 8) : "";
    if (job.claim_token) {
      insert_job.bind(k++, holder);
    } else {
      insert_job.bind_null(k++);
    }
    insert_job.bind(k++, job.lease_expires_at);
    insert_job.run();

    std::int64_t seq = 0;  // the job's events are numbered 1, 2, 3...
    for (const Event& e : events) {
      int n = 1;
      insert_event.bind(n++, job.job_id);
      insert_event.bind(n++, e.listing ? "listing" : "detail");
      insert_event.bind(n++, e.page_number);
      insert_event.bind(n++, e.item_index);
      insert_event.bind(n++, e.url);
      insert_event.bind(n++, e.http_status);
      insert_event.bind(n++, e.ok ? "ok" : "failed");
      insert_event.bind(n++, e.items);
      insert_event.bind(n++, e.links);
      insert_event.bind(n++, e.next_url);
      insert_event.bind(n++, e.error);
      insert_event.bind(n++, e.started);
      insert_event.bind(n++, e.finished);
      insert_event.bind(n++, ++seq);
      insert_event.run();
    }
    event_count += static_cast<std::int64_t>(events.size());
    if ((i + 1) % k_jobs_per_transaction == 0) {
      exec(db, "COMMIT");
      exec(db, "BEGIN");
    }
  }
  exec(db, "COMMIT");
  exec(db, "BEGIN");
  for (const auto& sql : index_sql) {
    exec(db, sql.c_str());
  }
  exec(db, "COMMIT");
  // Leave the file as the server keeps it: in WAL mode.
  exec(db, "PRAGMA locking_mode = NORMAL");
  exec(db, "PRAGMA journal_mode = WAL");
  sqlite3_close(db);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::printf(
      "wrote %s: %lld jobs (pending %lld, processing %lld, completed %lld, failed %lld, "
      "cancelled %lld), %lld page events, %.1f MB in %.1f s\n",
      o.db.c_str(), static_cast<long long>(o.jobs), static_cast<long long>(by_status[0]),
      static_cast<long long>(by_status[1]), static_cast<long long>(by_status[2]),
      static_cast<long long>(by_status[3]), static_cast<long long>(by_status[4]),
      static_cast<long long>(event_count),
      static_cast<double>(std::filesystem::file_size(o.db)) / 1e6, seconds);
  if (!sample_failed.empty()) {
    std::printf("a failed job: %s\n", sample_failed.c_str());
  }
  if (!sample_processing.empty()) {
    std::printf("a processing job: %s\n", sample_processing.c_str());
  }
  return 0;
}
