#include "scrapekeep/store/history.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/store/integrity.hpp"
#include "scrapekeep/store/job_row.hpp"
#include "scrapekeep/store/json_codec.hpp"
#include "scrapekeep/store/migrations.hpp"
#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

using core::Error;
using core::ErrorCode;
using core::JobStatus;

const char* to_string(FindingKind kind) {
  switch (kind) {
    case FindingKind::integrity:
      return "integrity";
    case FindingKind::counters:
      return "counters";
    case FindingKind::results:
      return "results";
    case FindingKind::orphan_events:
      return "orphan_events";
    case FindingKind::foreign_key:
      return "foreign_key";
    case FindingKind::lease:
      return "lease";
    case FindingKind::state:
      return "state";
    case FindingKind::value:
      return "value";
  }
  return "integrity";
}

namespace {

// Rows per read transaction in exports: long enough to be efficient, short
// enough that a live server's checkpoints are not held back for long.
constexpr std::int64_t k_export_chunk = 5000;

// The job row as JobStore reads it, plus the organization's name, the lease
// holder and the rowid.
const std::string& k_job_select() {
  static const std::string k_select =
      "SELECT " + job_columns("j.") +
      ", IFNULL(o.name, ''), j.claimed_by, j.rowid "
      "FROM jobs j LEFT JOIN organizations o ON o.org_id = j.org_id ";
  return k_select;
}

bool has_column(SQLite::Database& db, const char* table, const char* column) {
  SQLite::Statement q(db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  q.bind(1, table);
  q.bind(2, column);
  return q.executeStep();
}

// The event columns read_event_record() reads, from `page_events e`, which
// inspect reads as it is. A database older than migration 0005 has no
// final_url: read as NULL. One older than 0007 has no job_seq, a job's own
// numbers: they are left to EventNumbers (read as NULL). `job_order` puts a
// job's events in order along an index (page_events_job) in either.
struct EventSelect {
  std::string sql;
  bool numbered_per_job = true;
  const char* job_order = "e.job_seq";
};

EventSelect event_select(SQLite::Database& db) {
  const std::string final_url = has_column(db, "page_events", "final_url") ? "e.final_url" : "NULL";
  const bool numbered = has_column(db, "page_events", "job_seq");
  return {"SELECT e.seq, e.job_id, e.kind, e.page_number, e.item_index, e.url, e.http_status, "
          "e.outcome, e.items_found, e.detail_links, e.next_url, e.error, e.started_at, "
          "e.finished_at, " +
              final_url + (numbered ? ", e.job_seq" : ", NULL") + " FROM page_events e ",
          numbered, numbered ? "e.job_seq" : "e.seq"};
}

// A job's own event numbers in a database older than migration 0007: its
// events read in their order are numbered 1, 2, 3... as the migration
// numbers them. In a newer database the stored numbers are kept.
class EventNumbers {
 public:
  explicit EventNumbers(const EventSelect& select) : m_counted(!select.numbered_per_job) {}
  void number(EventRecord& r) {
    if (m_counted) {
      r.event.seq = ++m_last[r.job_id];
    }
  }

 private:
  bool m_counted;
  std::unordered_map<std::string, std::int64_t> m_last;  // by job
};

// Reads a row of k_job_select(); returns the job's rowid through `rowid`.
JobRecord read_job_record(SQLite::Statement& q, std::int64_t* rowid = nullptr,
                          SelectorsCache* cache = nullptr) {
  JobRecord r;
  int i = 0;
  r.job = read_job_row(q, i, cache);
  r.org = q.getColumn(i++).getString();
  r.claimed_by = opt_text(q.getColumn(i++));
  if (rowid) {
    *rowid = q.getColumn(i).getInt64();
  }
  return r;
}

// Reads a row of event_select(); returns the row's `seq` (its place in the
// table) through `row_seq`.
EventRecord read_event_record(SQLite::Statement& q, std::int64_t* row_seq = nullptr) {
  EventRecord r;
  PageEvent& e = r.event;
  int i = 0;
  if (row_seq) {
    *row_seq = q.getColumn(i).getInt64();
  }
  ++i;
  r.job_id = q.getColumn(i++).getString();
  e.kind =
      std::string(q.getColumn(i++).getText()) == "listing" ? PageKind::listing : PageKind::detail;
  e.page_number = core::clamp_count(q.getColumn(i++).getInt64());
  r.item_index = opt_int(q.getColumn(i++));
  e.url = q.getColumn(i++).getString();
  if (!q.getColumn(i).isNull()) {
    e.http_status = q.getColumn(i).getInt();
  }
  ++i;
  e.ok = std::string(q.getColumn(i++).getText()) == "ok";
  e.items_found = core::clamp_count(q.getColumn(i++).getInt64());
  r.detail_links = core::clamp_count(q.getColumn(i++).getInt64());
  r.next_url = opt_text(q.getColumn(i++));
  e.error = opt_text(q.getColumn(i++));
  e.started_at = core::clamp_time(q.getColumn(i++).getInt64());
  e.finished_at = core::clamp_time(q.getColumn(i++).getInt64());
  r.final_url = opt_text(q.getColumn(i++));
  e.seq = q.getColumn(i++).getInt64();  // NULL (0): see EventNumbers
  return r;
}

// SQL function scrapekeep_readable(KIND, TEXT): 1 when TEXT is a value the
// readers read (KIND 'selectors': a job's selectors; otherwise an item's
// fields or detail), by the same code (json_codec), else 0.
void readable_json(sqlite3_context* context, int, sqlite3_value** args) {
  const auto* kind = reinterpret_cast<const char*>(sqlite3_value_text(args[0]));
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(args[1]));
  bool readable = false;
  if (text != nullptr) {
    const std::string_view value(text, static_cast<std::size_t>(sqlite3_value_bytes(args[1])));
    readable = kind != nullptr && std::string_view(kind) == "selectors"
                   ? stored_selectors(value).has_value()
                   : stored_field_values(value).has_value();
  }
  sqlite3_result_int(context, readable ? 1 : 0);
}

Error newer_schema(std::int64_t version) {
  return Error{ErrorCode::invalid_argument, "database schema version " + std::to_string(version) +
                                                " is newer than this binary (" +
                                                std::to_string(latest_schema_version()) +
                                                "); upgrade scrapekeep"};
}

// The extended SQLite result code of reading `path` read-only in place.
int probe_read(const std::string& path) {
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    db.exec("SELECT COUNT(*) FROM sqlite_master");
    return SQLITE_OK;
  } catch (const SQLite::Exception& e) {
    return e.getExtendedErrorCode();
  }
}

// "file:/abs/path?immutable=1", percent-encoding what a URI path cannot hold.
std::string immutable_uri(const std::string& path) {
  // The file a URI names (its parameters are not kept).
  const std::string abs = std::filesystem::absolute(uri_file(path)).string();
  std::string uri = "file:";
  for (unsigned char c : abs) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      core::append_percent_encoded(uri, c);
    }
  }
  return uri + "?immutable=1";
}

// True when `path` exists and neither PATH-wal nor PATH-journal does: SQLite
// keeps the -wal and -shm of a WAL database while any connection has it open
// (it creates the -wal before the -shm and removes it after), so nothing is
// using the file and all of its content is in the file itself. A -shm alone
// is a leftover (a copy, a crash): reading the usual way would add a -wal
// beside it. So is an empty -journal (journal_mode TRUNCATE leaves one):
// one whose header is zeroed may be a writer's whose transaction has begun,
// so it is not taken as holding nothing.
bool at_rest(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(uri_file(path), ec)) {
    return false;
  }
  // Beside the file a link points to, where SQLite keeps them.
  const std::string file = database_file(path);
  if (std::filesystem::exists(file + "-wal", ec) || ec) {
    return false;
  }
  if (std::filesystem::exists(file + "-journal", ec) || ec) {
    if (std::filesystem::file_size(file + "-journal", ec) != 0 || ec) {
      return false;
    }
  }
  return true;
}

// " AND ..." conditions on jobs `j` for `filter` (named parameters :status,
// :org, :since, :until). `plain` prefixes columns with '+' so that SQLite
// walks the table in rowid order instead of using an index.
std::string filter_sql(const HistoryFilter& filter, bool has_org, bool plain) {
  const std::string p = plain ? "+" : "";
  std::string sql;
  if (filter.status) {
    sql += " AND " + p + "j.status = :status";
  }
  if (has_org) {
    sql += " AND " + p + "j.org_id = :org";
  }
  if (filter.since) {
    sql += " AND " + p + "j.created_at >= :since";
  }
  if (filter.until) {
    sql += " AND " + p + "j.created_at < :until";
  }
  return sql;
}

void bind_filter(SQLite::Statement& q, const HistoryFilter& filter,
                 std::optional<std::int64_t> org_id) {
  if (filter.status) {
    q.bind(":status", core::to_string(*filter.status));
  }
  if (org_id) {
    q.bind(":org", *org_id);
  }
  if (filter.since) {
    q.bind(":since", *filter.since);
  }
  if (filter.until) {
    q.bind(":until", *filter.until);
  }
}

// Keyset pagination for the exports: `q` (with the filter's parameters,
// :after and :chunk) is run a chunk at a time, each one range scan and its
// own short read transaction. `read_row(q, after)` reads the current row and
// moves `after` past it; `fn` is given each record until it returns false or
// the filter's limit is reached.
template <typename Record, typename ReadRow>
void read_in_chunks(SQLite::Statement& q, const HistoryFilter& filter,
                    std::optional<std::int64_t> org_id, ReadRow read_row,
                    const std::function<bool(const Record&)>& fn) {
  std::int64_t after = std::numeric_limits<std::int64_t>::min();
  std::int64_t left = filter.limit.value_or(std::numeric_limits<std::int64_t>::max());
  while (left > 0) {
    q.reset();
    bind_filter(q, filter, org_id);
    q.bind(":after", after);
    q.bind(":chunk", std::min(left, k_export_chunk));
    std::int64_t rows = 0;
    while (q.executeStep()) {
      const Record r = read_row(q, after);
      ++rows;
      --left;
      if (!fn(r)) {
        return;
      }
    }
    if (rows < k_export_chunk) {
      return;
    }
  }
}

// `sum += n`, staying at the int64 bound it would pass (sums over a damaged
// database's rows).
void add_bounded(std::int64_t& sum, std::int64_t n) {
  if (__builtin_add_overflow(sum, n, &sum)) {
    sum = n > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  }
}

// Nearest rank (1-based) of percentile `p` among `n` sorted samples.
std::int64_t nearest_rank(double p, std::int64_t n) {
  const auto rank = static_cast<std::int64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  return std::clamp<std::int64_t>(rank, 1, n);
}

// Exact nearest-rank percentiles of durations at the precision the API shows
// them (10 ms, seconds with 2 decimals; rounding keeps ranks) in bounded
// memory: dense counts up to an hour, a sparse map beyond.
class DurationHistogram {
 public:
  void add(Micros d) {
    const std::int64_t cs = (std::max<Micros>(0, d) + 5000) / 10000;
    if (cs < k_dense) {
      ++m_dense[static_cast<size_t>(cs)];
    } else {
      ++m_sparse[cs];
    }
    ++m_count;
  }
  std::int64_t count() const { return m_count; }
  // The duration at 1-based `rank` (1..count()), rounded to 10 ms.
  Micros at_rank(std::int64_t rank) const {
    std::int64_t seen = 0;
    for (size_t cs = 0; cs < m_dense.size(); ++cs) {
      seen += m_dense[cs];
      if (seen >= rank) {
        return static_cast<Micros>(cs) * 10000;
      }
    }
    for (const auto& [cs, n] : m_sparse) {
      seen += n;
      if (seen >= rank) {
        return cs * 10000;
      }
    }
    return 0;
  }

 private:
  static constexpr std::int64_t k_dense = 3600 * 100;
  std::vector<std::int64_t> m_dense = std::vector<std::int64_t>(k_dense, 0);
  std::map<std::int64_t, std::int64_t> m_sparse;
  std::int64_t m_count = 0;
};

}  // namespace

std::string normalize_error_message(const std::string& message) {
  // Schemes in any case ("HTTP://" as a user may have typed it).
  const std::string lower = core::lower_ascii(message);
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    const size_t found = std::min(lower.find("http://", i), lower.find("https://", i));
    if (found == std::string::npos) {
      out.append(message, i, std::string::npos);
      break;
    }
    out.append(message, i, found - i);
    size_t end = found;
    while (end < message.size() && !std::isspace(static_cast<unsigned char>(message[end]))) {
      ++end;
    }
    // Punctuation that ends a sentence or introduces the reason is not part of the URL.
    while (end > found &&
           std::string_view(":,;.)'\"").find(message[end - 1]) != std::string_view::npos) {
      --end;
    }
    out += "<url>";
    i = end;
  }
  return out;
}

struct History::Impl {
  std::unique_ptr<JobStore> store;           // the normal read-only connection
  std::unique_ptr<SQLite::Database> frozen;  // or the immutable fallback
  SQLite::Database* db = nullptr;
  std::optional<std::string> note;
  std::uintmax_t unread_wal_bytes = 0;

  // Opens `path` as an immutable snapshot into `frozen`: invalid_argument
  // when it is not a scrapekeep database or is newer than this binary,
  // another error when SQLite cannot read it this way. `wal_bytes`: the size
  // of a -wal beside it, which a snapshot cannot read.
  Status open_frozen(const std::string& path, std::uintmax_t wal_bytes = 0) {
    try {
      frozen = std::make_unique<SQLite::Database>(
          immutable_uri(path), SQLite::OPEN_READONLY | SQLite::OPEN_URI | SQLite::OPEN_NOMUTEX);
      db = frozen.get();
      db->exec("PRAGMA query_only = ON");
      auto version = recorded_schema_version(*db);
      if (!version) {
        return version.error();
      }
      if (*version == 0 && wal_bytes > 0) {
        return Error{ErrorCode::invalid_argument,
                     "everything in this database is still in its -wal file (" +
                         std::to_string(wal_bytes) +
                         " bytes), which SQLite reads only beside a -shm file, and the "
                         "database's directory is not writable: copy the database and its "
                         "-wal into a folder that can be written, and inspect the copy"};
      }
      if (*version == 0) {
        return Error{ErrorCode::invalid_argument, no_scrapekeep_tables()};
      }
      if (*version > latest_schema_version()) {
        return newer_schema(*version);
      }
      return core::ok_status();
    } catch (const SQLite::Exception& e) {
      return Error{ErrorCode::unavailable, e.what()};
    }
  }

  std::optional<std::int64_t> org_id(const std::string& name) {
    SQLite::Statement q(*db, "SELECT org_id FROM organizations WHERE name = ?");
    q.bind(1, name);
    if (!q.executeStep()) {
      return std::nullopt;
    }
    return q.getColumn(0).getInt64();
  }

  // The organization id of `filter.org` (nullopt when no org filter), or not_found.
  Result<std::optional<std::int64_t>> resolve_org(const HistoryFilter& filter) {
    if (!filter.org) {
      return std::optional<std::int64_t>();
    }
    auto id = org_id(*filter.org);
    if (!id) {
      return Error{ErrorCode::not_found, "no organization named '" + *filter.org + "'"};
    }
    return std::optional<std::int64_t>(*id);
  }

  bool job_exists(const std::string& job_id) {
    SQLite::Statement q(*db, "SELECT 1 FROM jobs WHERE job_id = ?");
    q.bind(1, job_id);
    return q.executeStep();
  }

  std::int64_t scalar(const char* sql) {
    SQLite::Statement q(*db, sql);
    q.executeStep();
    return q.getColumn(0).isNull() ? 0 : q.getColumn(0).getInt64();
  }
};

History::History(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
History::~History() = default;

const std::optional<std::string>& History::open_note() const {
  return m_impl->note;
}

SQLite::Database& History::database() { return *m_impl->db; }

bool History::snapshot() const { return m_impl->frozen != nullptr; }

std::uintmax_t History::unread_wal_bytes() const { return m_impl->unread_wal_bytes; }

Result<std::unique_ptr<History>> History::open(const std::string& path) {
  if (auto refused = not_a_regular_file(path)) {
    return *refused;
  }
  auto impl = std::make_unique<Impl>();
  // A file at rest is read as an immutable snapshot, so that reading it
  // creates no -wal or -shm beside it. A file that cannot be read that way
  // goes the usual way below, which says why.
  if (at_rest(path)) {
    auto frozen = impl->open_frozen(path);
    if (frozen) {
      return std::unique_ptr<History>(new History(std::move(impl)));
    }
    if (frozen.error().code == ErrorCode::invalid_argument) {
      return frozen.error();
    }
    impl = std::make_unique<Impl>();
  }
  auto opened = JobStore::open(StoreConfig{.path = path, .read_only = true, .migrate = false});
  if (opened) {
    impl->store = std::move(opened.value());
    impl->db = &impl->store->database();
    return std::unique_ptr<History>(new History(std::move(impl)));
  }
  if (opened.error().code != ErrorCode::unavailable) {
    return opened.error();
  }
  // SQLite reads a WAL database through its -shm and -wal files, which it
  // creates next to the file when they are missing. Where it cannot (a
  // read-only directory) the file is still readable as an immutable snapshot.
  const int why = probe_read(path);
  if (why == SQLITE_READONLY_ROLLBACK) {
    // A -journal of a write cut short: the file may hold half of it until a
    // writer rolls it back, so no snapshot of it can be trusted.
    return Error{ErrorCode::invalid_argument,
                 "the database's -journal file holds a write that was cut short, which only a "
                 "writer can roll back: run scrapekeep migrate on the file (or on a copy of it "
                 "and its -journal) first"};
  }
  if ((why & 0xff) != SQLITE_CANTOPEN && (why & 0xff) != SQLITE_READONLY) {
    return opened.error();
  }
  std::error_code ec;
  std::uintmax_t wal_size = std::filesystem::file_size(database_file(path) + "-wal", ec);
  if (ec) {
    wal_size = 0;
  }
  auto frozen = impl->open_frozen(path, wal_size);
  if (!frozen) {
    return frozen.error().code == ErrorCode::invalid_argument ? frozen.error() : opened.error();
  }
  std::string note =
      "the database's directory is not writable, so it is read as an immutable snapshot "
      "(changes made meanwhile are not seen)";
  if (wal_size > 0) {
    note += "; its -wal file (" + std::to_string(wal_size) +
            " bytes) cannot be read this way, so the latest transactions may be missing (those "
            "not yet copied into the database file)";
  }
  impl->note = std::move(note);
  impl->unread_wal_bytes = wal_size;
  return std::unique_ptr<History>(new History(std::move(impl)));
}

History::Reading::Reading(std::unique_ptr<SQLite::Transaction> transaction)
    : m_transaction(std::move(transaction)) {}
History::Reading::~Reading() = default;
History::Reading::Reading(Reading&& other) noexcept = default;
History::Reading& History::Reading::operator=(Reading&& other) noexcept = default;

Result<History::Reading> History::begin_read() {
  return guarded([&]() -> Result<Reading> {
    return Reading(
        std::make_unique<SQLite::Transaction>(*m_impl->db, SQLite::TransactionBehavior::DEFERRED));
  });
}

Result<std::vector<ApiKeyInfo>> History::keys() { return read_keys(*m_impl->db); }

Result<JobRecord> History::job(const std::string& job_id) {
  return guarded([&]() -> Result<JobRecord> {
    SQLite::Statement q(*m_impl->db, k_job_select() + "WHERE j.job_id = ?");
    q.bind(1, job_id);
    if (!q.executeStep()) {
      return Error{ErrorCode::not_found, "job not found: " + job_id};
    }
    return read_job_record(q);
  });
}

Result<JobTimeline> History::timeline(const std::string& job_id) {
  return guarded([&]() -> Result<JobTimeline> {
    auto& db = *m_impl->db;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::DEFERRED);
    SQLite::Statement job(db, k_job_select() + "WHERE j.job_id = ?");
    job.bind(1, job_id);
    if (!job.executeStep()) {
      return Error{ErrorCode::not_found, "job not found: " + job_id};
    }
    JobTimeline read{read_job_record(job), Timeline{}};
    Timeline& t = read.timeline;
    SQLite::Statement sums(
        db,
        // TOTAL, not SUM: a damaged row's huge values make SUM fail with
        // "integer overflow"; TOTAL's double is exact up to 2^53.
        "SELECT COUNT(*), TOTAL(kind = 'listing' AND outcome = 'ok'), "
        "TOTAL(kind = 'listing' AND outcome = 'failed'), "
        "TOTAL(kind = 'detail' AND outcome = 'ok'), "
        "TOTAL(kind = 'detail' AND outcome = 'failed'), "
        "TOTAL(CASE WHEN kind = 'listing' THEN items_found ELSE 0 END), "
        "TOTAL(CASE WHEN kind = 'listing' THEN detail_links ELSE 0 END), "
        "MIN(started_at), MAX(finished_at), TOTAL(MAX(0, finished_at - started_at)) "
        "FROM page_events WHERE job_id = ?");
    sums.bind(1, job_id);
    sums.executeStep();
    t.events = sums.getColumn(0).getInt64();
    t.listing_ok = core::clamp_count(sums.getColumn(1).getInt64());
    t.listing_failed = core::clamp_count(sums.getColumn(2).getInt64());
    t.detail_ok = core::clamp_count(sums.getColumn(3).getInt64());
    t.detail_failed = core::clamp_count(sums.getColumn(4).getInt64());
    t.items = core::clamp_count(sums.getColumn(5).getInt64());
    t.detail_links = core::clamp_count(sums.getColumn(6).getInt64());
    if (!sums.getColumn(7).isNull()) {
      t.first_started = core::clamp_time(sums.getColumn(7).getInt64());
    }
    if (!sums.getColumn(8).isNull()) {
      t.last_finished = core::clamp_time(sums.getColumn(8).getInt64());
    }
    t.fetch_time = std::min(sums.getColumn(9).getInt64(), core::k_max_time - core::k_min_time);

    const EventSelect select = event_select(db);
    SQLite::Statement slowest(db, select.sql +
                                      "WHERE e.job_id = ? ORDER BY e.finished_at - e.started_at "
                                      "DESC, " + select.job_order + " LIMIT 1");
    slowest.bind(1, job_id);
    if (slowest.executeStep()) {
      t.slowest = read_event_record(slowest);
      if (!select.numbered_per_job) {  // the job's events up to it
        SQLite::Statement number(db,
                                 "SELECT COUNT(*) FROM page_events WHERE job_id = ? AND seq <= ?");
        number.bind(1, job_id);
        number.bind(2, slowest.getColumn(0).getInt64());
        number.executeStep();
        t.slowest->event.seq = number.getColumn(0).getInt64();
      }
    }
    SQLite::Statement statuses(db,
                               "SELECT http_status, COUNT(*) FROM page_events WHERE job_id = ? "
                               "GROUP BY http_status ORDER BY 2 DESC, 1");
    statuses.bind(1, job_id);
    while (statuses.executeStep()) {
      std::optional<int> status;
      if (!statuses.getColumn(0).isNull()) {
        status = statuses.getColumn(0).getInt();
      }
      t.http_statuses.emplace_back(status, statuses.getColumn(1).getInt64());
    }
    tx.commit();
    return read;
  });
}

Status History::each_job(const HistoryFilter& filter,
                         const std::function<bool(const JobRecord&)>& fn) {
  return guarded([&]() -> Status {
    auto org = m_impl->resolve_org(filter);
    if (!org) {
      return org.error();
    }
    // Newest first, jobs created in the same microsecond in the order they
    // were created, as the API lists them: (status|org, created_at) indexes
    // walked backwards, only each run of one created_at sorted.
    SQLite::Statement q(*m_impl->db, k_job_select() + "WHERE 1 = 1" +
                                         filter_sql(filter, org->has_value(), false) +
                                         " ORDER BY j.created_at DESC, j.rowid ASC LIMIT :limit");
    bind_filter(q, filter, *org);
    q.bind(":limit", filter.limit.value_or(-1));
    SelectorsCache cache;
    while (q.executeStep()) {
      if (!fn(read_job_record(q, nullptr, &cache))) {
        break;
      }
    }
    return core::ok_status();
  });
}

Result<std::int64_t> History::count_jobs(const HistoryFilter& filter) {
  return guarded([&]() -> Result<std::int64_t> {
    auto org = m_impl->resolve_org(filter);
    if (!org) {
      return org.error();
    }
    SQLite::Statement q(*m_impl->db, "SELECT COUNT(*) FROM jobs j WHERE 1 = 1" +
                                         filter_sql(filter, org->has_value(), false));
    bind_filter(q, filter, *org);
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

Status History::each_event(const std::string& job_id, std::optional<std::int64_t> limit,
                           const std::function<bool(const EventRecord&)>& fn) {
  return guarded([&]() -> Status {
    if (!m_impl->job_exists(job_id)) {
      return Error{ErrorCode::not_found, "job not found: " + job_id};
    }
    const EventSelect select = event_select(*m_impl->db);
    SQLite::Statement q(*m_impl->db, select.sql + "WHERE e.job_id = ? ORDER BY " +
                                         select.job_order + " LIMIT ?");
    q.bind(1, job_id);
    q.bind(2, limit.value_or(-1));
    EventNumbers numbers(select);
    while (q.executeStep()) {
      EventRecord r = read_event_record(q);
      numbers.number(r);
      if (!fn(r)) {
        break;
      }
    }
    return core::ok_status();
  });
}

Status History::export_jobs(const HistoryFilter& filter,
                            const std::function<bool(const JobRecord&)>& fn) {
  return guarded([&]() -> Status {
    auto org = m_impl->resolve_org(filter);
    if (!org) {
      return org.error();
    }
    // Keyset pagination on rowid.
    SQLite::Statement q(*m_impl->db, k_job_select() + "WHERE j.rowid > :after" +
                                         filter_sql(filter, org->has_value(), true) +
                                         " ORDER BY j.rowid LIMIT :chunk");
    SelectorsCache cache;
    read_in_chunks<JobRecord>(
        q, filter, *org,
        [&cache](SQLite::Statement& row, std::int64_t& after) {
          return read_job_record(row, &after, &cache);
        },
        fn);
    return core::ok_status();
  });
}

Status History::export_events(const HistoryFilter& filter,
                              const std::function<bool(const EventRecord&)>& fn) {
  return guarded([&]() -> Status {
    auto org = m_impl->resolve_org(filter);
    if (!org) {
      return org.error();
    }
    // CROSS JOIN keeps page_events the outer loop, so each chunk is a seq
    // range scan. The filters are on jobs: a job's events are all read or none.
    const EventSelect select = event_select(*m_impl->db);
    SQLite::Statement q(*m_impl->db,
                        select.sql +
                            "CROSS JOIN jobs j ON j.job_id = e.job_id WHERE e.seq > :after" +
                            filter_sql(filter, org->has_value(), true) +
                            " ORDER BY e.seq LIMIT :chunk");
    EventNumbers numbers(select);
    read_in_chunks<EventRecord>(
        q, filter, *org,
        [&numbers](SQLite::Statement& row, std::int64_t& after) {
          EventRecord r = read_event_record(row, &after);
          numbers.number(r);
          return r;
        },
        fn);
    return core::ok_status();
  });
}

Result<Stats> History::stats(const StatsOptions& options) {
  return guarded([&]() -> Result<Stats> {
    // One sequential pass over the jobs table, aggregated here: cheaper than
    // one SQL aggregate per question, and it needs no index.
    SQLite::Statement q(*m_impl->db,
                        "SELECT status, completion_reason, listing_pages_scraped, "
                        "listing_pages_failed, detail_pages_discovered, detail_pages_scraped, "
                        "detail_pages_failed, items_found, attempts, created_at, started_at, "
                        "completed_at, error_message FROM jobs");
    constexpr int k_statuses = 5;
    constexpr int k_reasons = 5;  // 4 reasons + none
    std::int64_t groups[k_statuses][k_reasons] = {};
    Stats s;
    DurationHistogram durations;
    std::unordered_map<std::string, std::int64_t> errors;
    struct DayTotals {
      DayStats stats;
      std::int64_t timed = 0;
      double time_sum = 0;
    };
    std::map<std::int64_t, DayTotals> days;
    constexpr Micros k_day = 86400 * core::k_micros_per_second;
    while (q.executeStep()) {
      const JobStatus status =
          core::parse_job_status(q.getColumn(0).getText()).value_or(JobStatus::failed);
      std::optional<core::CompletionReason> reason;
      if (!q.getColumn(1).isNull()) {
        reason = core::parse_completion_reason(q.getColumn(1).getText());
      }
      ++groups[static_cast<int>(status)][reason ? static_cast<int>(*reason) + 1 : 0];
      core::JobCounters& t = s.totals;
      // Values as read_job_row bounds them, summed without overflow.
      const auto count = [&q](int column) { return core::clamp_count(q.getColumn(column).getInt64()); };
      const std::int64_t listing_ok = count(2);
      const std::int64_t detail_ok = count(5);
      const std::int64_t items = count(7);
      add_bounded(t.listing_pages_scraped, listing_ok);
      add_bounded(t.listing_pages_failed, count(3));
      add_bounded(t.detail_pages_discovered, count(4));
      add_bounded(t.detail_pages_scraped, detail_ok);
      add_bounded(t.detail_pages_failed, count(6));
      add_bounded(t.items_found, items);
      add_bounded(s.attempts, count(8));
      const Micros created = core::clamp_time(q.getColumn(9).getInt64());
      s.first_created = s.first_created ? std::min(*s.first_created, created) : created;
      s.last_created = s.last_created ? std::max(*s.last_created, created) : created;
      std::optional<Micros> processing;
      if (core::is_terminal(status) && !q.getColumn(10).isNull() && !q.getColumn(11).isNull()) {
        processing = std::max<Micros>(0, core::clamp_time(q.getColumn(11).getInt64()) -
                                             core::clamp_time(q.getColumn(10).getInt64()));
        durations.add(*processing);
      }
      if (options.top_errors > 0 && !q.getColumn(12).isNull()) {
        ++errors[normalize_error_message(q.getColumn(12).getString())];
      }
      if (options.per_day) {
        const std::int64_t day = created >= 0 ? created / k_day : (created - k_day + 1) / k_day;
        DayTotals& d = days[day];
        ++d.stats.created;
        d.stats.completed += status == JobStatus::completed ? 1 : 0;
        d.stats.failed += status == JobStatus::failed ? 1 : 0;
        d.stats.cancelled += status == JobStatus::cancelled ? 1 : 0;
        d.stats.open += core::is_terminal(status) ? 0 : 1;
        add_bounded(d.stats.pages, listing_ok + detail_ok);
        add_bounded(d.stats.items, items);
        if (processing) {
          ++d.timed;
          d.time_sum += static_cast<double>(*processing);
        }
      }
    }
    for (int st = 0; st < k_statuses; ++st) {
      for (int r = 0; r < k_reasons; ++r) {
        if (groups[st][r] == 0) {
          continue;
        }
        StatusCount c;
        c.status = static_cast<JobStatus>(st);
        if (r > 0) {
          c.reason = static_cast<core::CompletionReason>(r - 1);
        }
        c.jobs = groups[st][r];
        s.jobs += c.jobs;
        s.by_status.push_back(c);
      }
    }
    Percentiles& p = s.processing_time;
    p.samples = durations.count();
    if (p.samples > 0) {
      p.p50 = durations.at_rank(nearest_rank(50, p.samples));
      p.p90 = durations.at_rank(nearest_rank(90, p.samples));
      p.p99 = durations.at_rank(nearest_rank(99, p.samples));
      p.max = durations.at_rank(p.samples);
    }
    s.top_errors.reserve(errors.size());
    for (auto& [message, jobs] : errors) {
      s.top_errors.push_back(ErrorCount{message, jobs});
    }
    const auto keep = std::min<size_t>(
        s.top_errors.size(), static_cast<size_t>(std::max<std::int64_t>(0, options.top_errors)));
    std::partial_sort(s.top_errors.begin(), s.top_errors.begin() + static_cast<long>(keep),
                      s.top_errors.end(), [](const ErrorCount& a, const ErrorCount& b) {
                        return a.jobs != b.jobs ? a.jobs > b.jobs : a.message < b.message;
                      });
    s.top_errors.resize(keep);
    for (auto& [day, d] : days) {
      d.stats.day = day * k_day;
      if (d.timed > 0) {
        d.stats.avg_processing =
            static_cast<Micros>(std::llround(d.time_sum / static_cast<double>(d.timed)));
      }
      s.per_day.push_back(d.stats);
    }
    return s;
  });
}

Result<CheckSummary> History::check(const CheckOptions& options,
                                    const std::function<void(const Finding&)>& fn) {
  return guarded([&]() -> Result<CheckSummary> {
    auto& db = *m_impl->db;
    CheckSummary summary;
    auto report = [&](FindingKind kind, std::string job_id, std::string message) {
      ++summary.findings;
      fn(Finding{kind, std::move(job_id), std::move(message)});
    };

    {
      // integrity_check looks every row up in every index: a larger page cache
      // (allocated only as pages are read) makes it ~1.5x faster on big files.
      // The sorts below are faster with the default one.
      db.exec("PRAGMA cache_size = -262144");
      integrity_problems(db, options.quick, [&](const std::string& line) {
        report(FindingKind::integrity, "", line);
      });
      db.exec("PRAGMA cache_size = -2000");
      db.exec("PRAGMA shrink_memory");
    }

    // A page event is written in the same transaction as the counters it
    // changes, so a snapshot never shows them apart: a live server cannot
    // cause a false finding.
    // A deleted job's rows wait in job_purges (migration 0006) to be removed
    // a batch at a time: neither orphans nor findings. One snapshot from here
    // to the orphan items, so a job deleted meanwhile is seen either way.
    SQLite::Transaction snapshot(db, SQLite::TransactionBehavior::DEFERRED);
    const bool has_purges = db.tableExists("job_purges");
    std::unordered_set<std::string> purging;
    if (has_purges) {
      SQLite::Statement q(db, "SELECT job_id FROM job_purges");
      while (q.executeStep()) {
        purging.insert(q.getColumn(0).getString());
      }
    }
    summary.purging = static_cast<std::int64_t>(purging.size());
    summary.jobs = m_impl->scalar("SELECT COUNT(*) FROM jobs");
    summary.events = m_impl->scalar("SELECT COUNT(*) FROM page_events");
    if (has_purges) {
      summary.events -= m_impl->scalar(
          "SELECT COUNT(*) FROM page_events WHERE job_id IN (SELECT job_id FROM job_purges)");
    }
    {
      // Counters against event sums: both tables read sequentially, each
      // sorted by job_id by SQLite's external sorter, and merged here. (Joining
      // through the job_id indexes reads rows in random order: 5x slower.)
      // Both statements are open at once, so they read the same snapshot.
      SQLite::Statement events(
          db,
          "SELECT job_id, COUNT(*), "
          "SUM(kind = 'listing' AND outcome = 'ok'), SUM(kind = 'listing' AND outcome = 'failed'), "
          "SUM(kind = 'detail' AND outcome = 'ok'), SUM(kind = 'detail' AND outcome = 'failed'), "
          "TOTAL(CASE WHEN kind = 'listing' THEN items_found ELSE 0 END), "
          "TOTAL(CASE WHEN kind = 'listing' THEN detail_links ELSE 0 END) "
          "FROM page_events NOT INDEXED GROUP BY job_id ORDER BY job_id");
      SQLite::Statement jobs(
          db,
          "SELECT job_id, listing_pages_scraped, listing_pages_failed, detail_pages_scraped, "
          "detail_pages_failed, items_found, detail_pages_discovered "
          "FROM jobs NOT INDEXED ORDER BY job_id");
      static const char* k_names[] = {"listing_pages_scraped", "listing_pages_failed",
                                      "detail_pages_scraped",  "detail_pages_failed",
                                      "items_found",           "detail_pages_discovered"};
      // And each job's result items against its items_found: numbered 0 to
      // items_found - 1 (the API's results pages rely on it). Read in
      // primary-key order, no sort.
      SQLite::Statement items(db,
                              "SELECT job_id, COUNT(*), MIN(item_index), MAX(item_index) "
                              "FROM result_items GROUP BY job_id ORDER BY job_id");
      bool has_event = events.executeStep();
      bool has_job = jobs.executeStep();
      bool has_items = items.executeStep();
      while (has_event || has_job) {
        const std::string event_job = has_event ? events.getColumn(0).getString() : "";
        const std::string job_id = has_job ? jobs.getColumn(0).getString() : "";
        const int order = !has_event ? 1 : !has_job ? -1 : event_job.compare(job_id);
        if (order < 0) {
          if (purging.count(event_job) == 0) {
            report(FindingKind::orphan_events, event_job,
                   std::to_string(events.getColumn(1).getInt64()) +
                       " page events belong to a job that does not exist");
          }
          has_event = events.executeStep();
          continue;
        }
        std::string diffs;
        for (int k = 0; k < 6; ++k) {
          const std::int64_t stored = jobs.getColumn(1 + k).getInt64();
          const std::int64_t summed = order == 0 ? events.getColumn(2 + k).getInt64() : 0;
          if (stored != summed) {
            diffs += std::string(diffs.empty() ? "" : ", ") + k_names[k] + " is " +
                     std::to_string(stored) + " but its events say " + std::to_string(summed);
          }
        }
        if (!diffs.empty()) {
          report(FindingKind::counters, job_id,
                 std::string("counters differ from page events") +
                     (order == 0 ? "" : " (it has none)") + ": " + diffs);
        }
        while (has_items && items.getColumn(0).getString() < job_id) {
          has_items = items.executeStep();  // a missing job: foreign_key below
        }
        const bool stored = has_items && items.getColumn(0).getString() == job_id;
        const std::int64_t count = stored ? items.getColumn(1).getInt64() : 0;
        const std::int64_t items_found = jobs.getColumn(5).getInt64();
        if (count != items_found ||
            (stored && (items.getColumn(2).getInt64() != 0 ||
                        items.getColumn(3).getInt64() != count - 1))) {
          report(FindingKind::results, job_id,
                 std::to_string(count) + " result items are stored" +
                     (stored ? " (numbered " + std::to_string(items.getColumn(2).getInt64()) +
                                   " to " + std::to_string(items.getColumn(3).getInt64()) + ")"
                             : std::string()) +
                     " where items_found says " + std::to_string(items_found) +
                     ", numbered from 0");
        }
        if (order == 0) {
          has_event = events.executeStep();
        }
        has_job = jobs.executeStep();
      }
    }
    {
      SQLite::Statement q(db,
                          "SELECT job_id, COUNT(*) FROM result_items r WHERE NOT EXISTS "
                          "(SELECT 1 FROM jobs j WHERE j.job_id = r.job_id) GROUP BY job_id");
      while (q.executeStep()) {
        if (purging.count(q.getColumn(0).getString()) > 0) {
          continue;
        }
        report(FindingKind::foreign_key, q.getColumn(0).getString(),
               std::to_string(q.getColumn(1).getInt64()) +
                   " result items belong to a job that does not exist");
      }
    }
    snapshot.commit();
    {
      SQLite::Statement q(db,
                          "SELECT job_id, org_id FROM jobs j WHERE NOT EXISTS "
                          "(SELECT 1 FROM organizations o WHERE o.org_id = j.org_id)");
      while (q.executeStep()) {
        report(FindingKind::foreign_key, q.getColumn(0).getString(),
               "the job belongs to organization " + std::to_string(q.getColumn(1).getInt64()) +
                   ", which does not exist");
      }
    }
    {
      SQLite::Statement q(db,
                          "SELECT key_id, org_id FROM api_keys k WHERE NOT EXISTS "
                          "(SELECT 1 FROM organizations o WHERE o.org_id = k.org_id)");
      while (q.executeStep()) {
        report(FindingKind::foreign_key, "",
               "API key " + q.getColumn(0).getString() + " belongs to organization " +
                   std::to_string(q.getColumn(1).getInt64()) + ", which does not exist");
      }
    }
    {
      SQLite::Statement q(
          db,
          "SELECT job_id, status, completion_reason, started_at IS NOT NULL, "
          "completed_at IS NOT NULL, claim_token IS NOT NULL, lease_expires_at IS NOT NULL "
          "FROM jobs WHERE "
          "(status = 'processing' AND (started_at IS NULL OR "
          " (claim_token IS NULL) != (lease_expires_at IS NULL))) "
          "OR (status IN ('pending', 'processing') AND "
          " (completion_reason IS NOT NULL OR completed_at IS NOT NULL)) "
          "OR (status != 'processing' AND (claim_token IS NOT NULL OR "
          " lease_expires_at IS NOT NULL)) "
          "OR (status IN ('completed', 'failed', 'cancelled') AND completed_at IS NULL) "
          "OR (status = 'completed' AND IFNULL(completion_reason, '') NOT IN ('done', 'timeout')) "
          "OR (status = 'failed' AND IFNULL(completion_reason, '') != 'error') "
          "OR (status = 'cancelled' AND IFNULL(completion_reason, '') != 'cancelled')");
      while (q.executeStep()) {
        const std::string job_id = q.getColumn(0).getString();
        const std::string status = q.getColumn(1).getString();
        const auto reason = opt_text(q.getColumn(2));
        const bool started = q.getColumn(3).getInt() != 0;
        const bool completed = q.getColumn(4).getInt() != 0;
        const bool token = q.getColumn(5).getInt() != 0;
        const bool lease = q.getColumn(6).getInt() != 0;
        const bool terminal = status != "pending" && status != "processing";
        if (status == "processing") {
          // Held (a claim token and a lease) or waiting for a worker (neither),
          // and started either way.
          std::string missing;
          for (auto [has, name] :
               {std::pair{token || !lease, "claim_token"}, std::pair{lease || !token, "lease_expires_at"},
                std::pair{started, "started_at"}}) {
            if (!has) {
              missing += std::string(missing.empty() ? "" : ", ") + name;
            }
          }
          if (!missing.empty()) {
            report(FindingKind::lease, job_id,
                   "processing without a lease: " + missing + " not set");
          }
        } else if (token || lease) {
          report(FindingKind::lease, job_id, status + " but still holds a claim or lease");
        }
        if (!terminal && (reason || completed)) {
          report(FindingKind::state, job_id,
                 status + " but has a completion_reason or completed_at");
        }
        if (terminal && !completed) {
          report(FindingKind::state, job_id, status + " without completed_at");
        }
        const std::string r = reason.value_or("null");
        const bool reason_ok =
            !terminal || (status == "completed" && (r == "done" || r == "timeout")) ||
            (status == "failed" && r == "error") || (status == "cancelled" && r == "cancelled");
        if (!reason_ok) {
          report(FindingKind::state, job_id, status + " with completion_reason " + r);
        }
      }
    }
    {
      // Values no code path writes (a damaged or hand-edited row): the
      // readers above take them as something else (an unknown status as
      // failed, a NULL counter as 0) or bound them (a time beyond year 9999).
      // Quoted values are cut at 40 characters.
      const auto shown = [](const std::string& column) {
        return "CASE WHEN length(quote(" + column + ")) > 40 THEN substr(quote(" + column +
               "), 1, 40) || '...' ELSE quote(" + column + ") END";
      };
      const auto time_ok = [](const std::string& column, bool nullable) {
        return std::string("(") + (nullable ? column + " IS NULL OR " : "") + "(typeof(" +
               column + ") = 'integer' AND " + column + " BETWEEN :min AND :max))";
      };
      const auto in_range = [](const std::string& column, core::OptionRange range) {
        return "(typeof(" + column + ") = 'integer' AND " + column + " BETWEEN " +
               std::to_string(range.lo) + " AND " + std::to_string(range.hi) + ")";
      };
      // The readers' own test of a stored JSON value (SQLite's json_valid
      // differs from them: it takes invalid UTF-8, for one).
      db.createFunction("scrapekeep_readable", 2, true, nullptr, readable_json);
      std::string counters_bad;
      for (const char* c : {"listing_pages_scraped", "listing_pages_failed",
                            "detail_pages_discovered", "detail_pages_scraped",
                            "detail_pages_failed", "items_found", "current_page", "attempts"}) {
        counters_bad += std::string(counters_bad.empty() ? "" : " OR ") + "typeof(" + c +
                        ") != 'integer' OR " + c + " < 0";
      }
      std::string sql =
          "SELECT job_id, 'status ' || " + shown("status") +
          " || ' is not one of pending, processing, completed, failed, cancelled' FROM jobs "
          "WHERE status IS NULL OR status NOT IN ('pending', 'processing', 'completed', "
          "'failed', 'cancelled') "
          "UNION ALL SELECT job_id, 'completion_reason ' || " +
          shown("completion_reason") +
          " || ' is not one of done, timeout, error, cancelled' FROM jobs WHERE "
          "completion_reason NOT IN ('done', 'timeout', 'error', 'cancelled') ";
      for (auto [column, nullable] : {std::pair{"created_at", false}, {"started_at", true},
                                      {"completed_at", true}, {"lease_expires_at", true}}) {
        sql += std::string("UNION ALL SELECT job_id, '") + column + " is ' || " + shown(column) +
               " || ', not a time in years 0000 to 9999' FROM jobs WHERE NOT " +
               time_ok(column, nullable) + " ";
      }
      sql +=
          "UNION ALL SELECT job_id, 'started_at is after completed_at' FROM jobs WHERE "
          "started_at > completed_at "
          "UNION ALL SELECT job_id, 'a counter (or current_page, attempts) is negative or not "
          "an integer' FROM jobs WHERE " +
          counters_bad +
          " UNION ALL SELECT job_id, 'its options are outside the ranges API.md allows' FROM "
          "jobs WHERE NOT (" +
          in_range("timeout_s", core::k_timeout_range) + " AND " +
          in_range("max_items", core::k_max_items_range) + " AND " +
          in_range("max_pages", core::k_max_pages_range) + " AND " +
          in_range("depth", core::k_depth_range) +
          " AND follow_pagination IN (0, 1)) "
          "UNION ALL SELECT job_id, 'its selectors are not the JSON object scrapekeep writes' "
          "FROM jobs WHERE typeof(selectors) != 'text' OR NOT "
          "scrapekeep_readable('selectors', selectors) "
          "UNION ALL SELECT job_id, 'the job id ' || " +
          shown("job_id") +
          " || ' is not job_ and 24 lowercase hex characters' FROM jobs WHERE job_id IS NULL OR "
          "length(job_id) != 28 OR job_id NOT GLOB 'job_" +
          [] {
            std::string hex;
            for (int k = 0; k < 24; ++k) {
              hex += "[0-9a-f]";
            }
            return hex;
          }() +
          "' "
          "UNION ALL SELECT job_id, COUNT(*) || ' page events have a kind, outcome or time "
          "scrapekeep never writes' FROM page_events WHERE kind IS NULL OR kind NOT IN "
          "('listing', 'detail') OR outcome IS NULL OR outcome NOT IN ('ok', 'failed') OR NOT " +
          time_ok("started_at", false) + " OR NOT " + time_ok("finished_at", false) +
          " GROUP BY job_id "
          "UNION ALL SELECT job_id, COUNT(*) || ' result items have fields or a detail that "
          "are not the JSON scrapekeep writes' FROM result_items WHERE typeof(fields) != "
          "'text' OR NOT scrapekeep_readable('fields', fields) OR (detail IS NOT NULL AND "
          "(typeof(detail) != 'text' OR NOT scrapekeep_readable('fields', detail))) "
          "GROUP BY job_id";
      SQLite::Statement q(db, sql);
      q.bind(":min", core::k_min_time);
      q.bind(":max", core::k_max_time);
      while (q.executeStep()) {
        report(FindingKind::value, q.getColumn(0).getString(), q.getColumn(1).getString());
      }
    }
    {
      SQLite::Statement q(db,
                          "SELECT COUNT(*) FROM jobs WHERE status = 'processing' AND "
                          "lease_expires_at < ?");
      q.bind(1, options.now);
      q.executeStep();
      summary.expired_leases = q.getColumn(0).getInt64();
    }
    return summary;
  });
}

}  // namespace scrapekeep::store
