#include "scrapekeep/store/job_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/random.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/store/group_commit.hpp"
#include "scrapekeep/store/hashing.hpp"
#include "scrapekeep/store/holder.hpp"
#include "scrapekeep/store/job_row.hpp"
#include "scrapekeep/store/json_codec.hpp"
#include "scrapekeep/store/migrations.hpp"
#include "scrapekeep/store/sqlite_error.hpp"
#include "scrapekeep/store/synced_commit.hpp"

namespace scrapekeep::store {

using core::Error;
using core::ErrorCode;
using core::Job;
using core::JobStatus;

const char* to_string(PageKind kind) { return kind == PageKind::listing ? "listing" : "detail"; }

namespace {

// How long opening a file that is behind the binary's schema waits for
// another process migrating it (JobStore::open_connection).
constexpr int k_migration_wait_ms = 10 * 60 * 1000;

// The number of the job's last page event stored (0: none yet). A job's
// events are numbered 1, 2, 3... (`job_seq`) in the order they are stored:
// one writer at a time, and the unique index page_events_job finds the last.
template <typename Writer>
std::int64_t last_job_seq(Writer& x, const std::string& job_id) {
  auto q = x.prepared("SELECT IFNULL(MAX(job_seq), 0) FROM page_events WHERE job_id = ?");
  q->bind(1, job_id);
  q->executeStep();
  return q->getColumn(0).getInt64();
}

// The byte budget of one page of rows (k_page_bytes): a row fits while the
// texts read so far stay within it, and the first row always fits. With a
// shared budget, the rows' bytes are held in it too: the first row waits for
// them, a later one that does not fit there ends the page.
class PageBudget {
 public:
  PageBudget(std::int64_t max_bytes, SharedPageBytes* shared)
      : m_left(max_bytes), m_shared(shared) {}
  bool fits(std::int64_t row_bytes, bool first) {
    m_left -= row_bytes;
    if (!first && m_left < 0) {
      return false;
    }
    if (m_shared == nullptr || m_shared->budget == nullptr) {
      return true;
    }
    const auto bytes = static_cast<std::size_t>(row_bytes);
    if (!first) {
      return m_shared->lease.try_grow(bytes);
    }
    auto lease = m_shared->budget->acquire_within(bytes, m_shared->patience);
    if (!lease) {
      m_gave_up = true;
      return false;
    }
    m_shared->lease = std::move(*lease);
    return true;
  }
  // The first row's bytes did not fit in the shared budget in time.
  bool gave_up() const { return m_gave_up; }

 private:
  std::int64_t m_left;
  SharedPageBytes* m_shared;
  bool m_gave_up = false;
};

Error page_bytes_busy() {
  return Error{ErrorCode::unavailable, "other answers hold the memory for pages of rows"};
}

const std::string& k_job_columns() {
  static const std::string k_columns = job_columns();
  return k_columns;
}

template <typename T>
void bind_opt(SQLite::Statement& q, int index, const std::optional<T>& value) {
  if (value) {
    if constexpr (std::is_same_v<T, int>) {
      q.bind(index, *value);
    } else {
      q.bind(index, *value);
    }
  } else {
    q.bind(index);
  }
}

// A job_columns() list with NULL for the selectors (read_job_row leaves them empty).
std::string without_selectors(std::string columns) {
  const std::string name = ", selectors,";
  columns.replace(columns.find(name), name.size(), ", NULL,");
  return columns;
}

Job read_job(SQLite::Statement& q) {
  int i = 0;
  return read_job_row(q, i);
}

// A result item's stored fields or detail; nullopt when NULL or not the JSON
// this code writes (a damaged or hand-edited row, which `inspect check`
// reports): one such value does not hide the page of results around it.
std::optional<core::FieldValues> readable_field_values(const SQLite::Column& column) {
  if (column.isNull()) {
    return std::nullopt;
  }
  return stored_field_values(
      std::string_view(column.getText(), static_cast<std::size_t>(column.getBytes())));
}

Error not_found_job() { return {ErrorCode::not_found, "job not found"}; }
Error lost_claim() { return {ErrorCode::conflict, "the job is no longer held by this worker"}; }

} // namespace

struct JobStore::Impl : BatchConnection {
  Impl(const StoreConfig& c, int flags) : config(c), db(c.path, flags, c.busy_timeout_ms) {}

  StoreConfig config;
  SQLite::Database db;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache;
  // Shared with every other read-write connection to the same file; null for
  // read-only and in-memory stores.
  std::shared_ptr<GroupCommitter> committer;

  SQLite::Database& database() override { return db; }
  bool usable() override {
    int moved = 0;
    const int rc = sqlite3_file_control(db.getHandle(), "main", SQLITE_FCNTL_HAS_MOVED, &moved);
    return rc != SQLITE_OK || moved == 0;
  }

  // Runs `body(impl)` as one fenced write: in a group transaction with other
  // connections' writes when there is a committer (on whichever connection
  // leads the batch), else in a transaction of its own. `body` returns an
  // error to undo its own changes. `synced`: committed with the WAL synced
  // (synced_commit.hpp).
  template <typename Body>
  Status write(Body&& body, bool synced = false) {
    if (!committer) {
      return guarded([&]() -> Status {
        std::optional<SyncedCommit> sync;
        if (synced) {
          sync.emplace(db.getHandle());
        }
        SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
        Status status = body(*this);
        if (status) {
          tx.commit();
        }
        return status;
      });
    }
    return committer->run(
        *this, [&](BatchConnection& leader) -> Status { return body(static_cast<Impl&>(leader)); },
        synced);
  }

  // A prepared statement kept for the connection's life (keyed by the literal's
  // address), reset and unbound by the returned guard when it goes out of scope.
  class Prepared {
   public:
    explicit Prepared(SQLite::Statement& s) : m_s(s) {}
    ~Prepared() {
      m_s.tryReset();
      try {
        m_s.clearBindings();
      } catch (const SQLite::Exception&) {
        // Nothing to undo: the statement is rebound before its next use.
      }
    }
    SQLite::Statement* operator->() { return &m_s; }
    SQLite::Statement& operator*() { return m_s; }

   private:
    SQLite::Statement& m_s;
  };

  Prepared prepared(const char* sql) {
    auto& slot = cache[sql];
    if (!slot) {
      slot = std::make_unique<SQLite::Statement>(db, sql);
    }
    return Prepared(*slot);
  }

  std::optional<Job> load_job(const std::string& job_id, std::optional<std::int64_t> org_id) {
    static const std::string k_sql =
        std::string("SELECT ") + k_job_columns() + " FROM jobs WHERE job_id = ?";
    auto q = prepared(k_sql.c_str());
    q->bind(1, job_id);
    if (!q->executeStep()) {
      return std::nullopt;
    }
    Job job = read_job(*q);
    if (org_id && job.org_id != *org_id) {
      return std::nullopt;
    }
    return job;
  }

  // The progress columns of the job `claim` holds, read under its fence
  // (status processing, this claim's token); nullopt when the claim is lost.
  // The page writes update these counters in memory and store them in one
  // UPDATE with the percentage they give (core::shown_percentage), which
  // keeps in stopped_percentage the highest a running job has shown, so
  // that its progress never goes back.
  std::optional<Job> claimed_progress_row(const Claim& claim) {
    static const std::string k_sql =
        std::string("SELECT ") + job_columns("", JobColumns::progress) +
        " FROM jobs WHERE job_id = ? AND status = 'processing' AND claim_token = ?";
    auto q = prepared(k_sql.c_str());
    q->bind(1, claim.job_id);
    q->bind(2, claim.token);
    if (!q->executeStep()) {
      return std::nullopt;
    }
    return read_job(*q);
  }

  // Runs `body`, which opens its own transaction, with this connection's
  // foreign keys off: deleting a job's row then does not cascade to all its
  // events and items under the write lock (remove_jobs deletes them itself,
  // or leaves them to purge_deleted). The pragma does nothing inside a
  // transaction, hence outside body's; changing it re-prepares statements.
  // Set through sqlite3_db_config, as the pragma would set it: that compiles
  // and allocates nothing, so turning them back on cannot fail (the pragma
  // could, out of memory, and leave the connection without them).
  template <typename Body>
  auto without_cascade(Body&& body) {
    sqlite3_db_config(db.getHandle(), SQLITE_DBCONFIG_ENABLE_FKEY, 0, nullptr);
    struct Restore {
      sqlite3* handle;
      ~Restore() { sqlite3_db_config(handle, SQLITE_DBCONFIG_ENABLE_FKEY, 1, nullptr); }
    } restore{db.getHandle()};
    return body();
  }

  // Deletes jobs inside the caller's transaction, run without_cascade(): a
  // job whose rows (its page events and result items, as its counters count
  // them) fit in what is left of delete_batch_rows goes with them; a bigger
  // one's row goes and its id is listed in job_purges, its rows left for
  // purge_deleted(). Either way no read finds the job after the commit.
  void remove_jobs(const std::vector<std::string>& job_ids) {
    std::int64_t budget = config.delete_batch_rows;
    for (const auto& job_id : job_ids) {
      const auto run = [&](const char* sql) {
        auto q = prepared(sql);
        q->bind(1, job_id);
        q->exec();
      };
      std::int64_t rows = 0;
      {
        auto count = prepared(
            "SELECT listing_pages_scraped + listing_pages_failed + detail_pages_scraped + "
            "detail_pages_failed + items_found FROM jobs WHERE job_id = ?");
        count->bind(1, job_id);
        if (count->executeStep()) {
          rows = count->getColumn(0).getInt64();
        }
      }
      if (rows <= budget) {
        budget -= std::max<std::int64_t>(rows, 0);
        run("DELETE FROM page_events WHERE job_id = ?");
        run("DELETE FROM result_items WHERE job_id = ?");
      } else {
        run("INSERT INTO job_purges (job_id) VALUES (?) ON CONFLICT DO NOTHING");
      }
      run("DELETE FROM jobs WHERE job_id = ?");
    }
  }

  // The job if `claim` still holds it (processing, same token).
  std::optional<Job> load_claimed(const Claim& claim) {
    auto job = load_job(claim.job_id, std::nullopt);
    if (!job || job->status != JobStatus::processing || !job->claim_token ||
        *job->claim_token != claim.token) {
      return std::nullopt;
    }
    return job;
  }

  // When a job whose time ran out (core::time_up at or before `now`) ended:
  // when its time ran out, or at the latest end of a page it stored if a
  // worker stored one after that (it was stalled), but never after `now`.
  // The latest finished_at, not the last stored page's: detail pages
  // fetched at once are stored in no particular order of their ends, but
  // close together: the last 1000 stored, a seek on the (job_id, job_seq)
  // index, not a walk over every event of a job of millions. So a timeout
  // has one date whoever finds it: its worker, however late it woke, or
  // recovery.
  Micros timed_out_at(const Job& job, Micros time_up, Micros now) {
    auto last = prepared(
        "SELECT MAX(finished_at) FROM (SELECT finished_at FROM page_events WHERE job_id = ? "
        "ORDER BY job_seq DESC LIMIT 1000)");
    last->bind(1, job.job_id);
    const Micros last_stored =
        last->executeStep() && !last->getColumn(0).isNull() ? last->getColumn(0).getInt64() : 0;
    return std::min(now, std::max(time_up, last_stored));
  }
};

const std::string& JobStore::process_identity() {
  static const std::string k_identity = format_holder(this_process(core::random_hex(4)));
  return k_identity;
}

JobStore::JobStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
JobStore::~JobStore() = default;

SQLite::Database& JobStore::database() { return m_impl->db; }

namespace {

// A database file this process made, empty, for JobStore::open to begin.
struct MadeFile {
  std::string path;  // where SQLite keeps it: a link's target
  dev_t dev = 0;
  ino_t ino = 0;
};

// Makes the file a database is to be begun in, when there is none: where a
// link points (SQLite makes it there, and its -wal and -shm beside it), and
// exclusively, so that a file another process makes at the same moment is
// never taken for this call's. nullopt when there was one, or it cannot be
// made here (open_connection says why).
std::optional<MadeFile> make_database_file(const StoreConfig& config) {
  if (!config.migrate || !config.create || config.read_only || config.path.empty() ||
      config.path == ":memory:" || config.path.rfind("file:", 0) == 0) {  // a URI: SQLite's
    return std::nullopt;
  }
  MadeFile made;
  made.path = database_file(config.path);
  const int fd = ::open(made.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return std::nullopt;
  }
  struct stat st {};
  const bool known = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!known) {
    return std::nullopt;
  }
  made.dev = st.st_dev;
  made.ino = st.st_ino;
  return made;
}

} // namespace

Result<std::unique_ptr<JobStore>> JobStore::open(const StoreConfig& config) {
  const std::optional<MadeFile> made = make_database_file(config);
  auto impl = open_connection(config);
  if (!impl) {
    // A database this call began, on a full disk: its file, empty or half
    // made, and its WAL files would stay behind, taken for a database by the
    // next command (a worker waits for its tables). Not on other errors:
    // another process may be making the same file (busy). Only the file this
    // call made, still in its place: never another process's, nor a link.
    struct stat st {};
    if (made && impl.error().message == k_disk_full && ::stat(made->path.c_str(), &st) == 0 &&
        st.st_dev == made->dev && st.st_ino == made->ino) {
      std::error_code ec;
      for (const char* suffix : {"-wal", "-shm", "-journal", ""}) {
        std::filesystem::remove(made->path + suffix, ec);
      }
    }
    return impl.error();
  }
  return std::unique_ptr<JobStore>(new JobStore(std::move(*impl)));
}

Result<std::unique_ptr<JobStore::Impl>> JobStore::open_connection(const StoreConfig& config) {
  try {
    if (auto refused = not_a_regular_file(config.path)) {
      return *refused;
    }
    const bool may_create = config.migrate && config.create;
    const bool must_exist = config.read_only || (config.migrate && !config.create);
    std::error_code ec;
    const bool exists = std::filesystem::exists(uri_file(config.path), ec);
    if (must_exist && !exists) {
      return Error{ErrorCode::not_found, "database file does not exist: " + config.path};
    }
    if (!config.read_only && (exists || may_create)) {
      if (auto refused = not_writable(config.path)) {
        return *refused;
      }
    }
    const int flags = config.read_only ? SQLite::OPEN_READONLY
                      : may_create     ? (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE)
                                       : SQLite::OPEN_READWRITE;
    auto impl = std::make_unique<Impl>(config, flags | SQLite::OPEN_NOMUTEX);
    if (!config.read_only && config.group_commit) {
      // The committer's own connection: configured alike, no committer of its own.
      StoreConfig own = config;
      own.group_commit = false;
      own.migrate = false;
      impl->committer = GroupCommitter::for_database(
          config.path,
          [own]() -> std::unique_ptr<BatchConnection> {
            auto opened = open_connection(own);
            return opened ? std::move(*opened) : nullptr;
          },
          std::to_string(static_cast<int>(config.synchronous)) + ' ' +
              std::to_string(config.max_page_count) + ' ' + std::to_string(config.busy_timeout_ms) +
              ' ' + std::to_string(config.cache_kib));
    }
    auto& db = impl->db;
    db.exec("PRAGMA foreign_keys = ON");
    if (config.read_only) {
      db.exec("PRAGMA query_only = ON");
    }
    // Checks the file is a scrapekeep database (or empty) before anything
    // writes to it: a foreign file keeps its journal mode and its bytes.
    auto version = recorded_schema_version(db);
    if (!version) {
      return version.error();
    }
    if ((!config.migrate || !config.create) && *version == 0) {
      // Not made a database here (an empty file stays empty): not migrated,
      // or one that must exist already.
      return Error{ErrorCode::invalid_argument, no_scrapekeep_tables()};
    }
    if (config.cache_kib > 0) {
      db.exec("PRAGMA cache_size = -" + std::to_string(config.cache_kib));
    }
    if (!config.read_only) {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(config.synchronous == Synchronous::full ? "PRAGMA synchronous = FULL"
                                                      : "PRAGMA synchronous = NORMAL");
      // Whichever connection writes first after the WAL restarts cuts it back.
      db.exec("PRAGMA journal_size_limit = " + std::to_string(GroupCommitter::k_wal_size_limit));
      if (config.max_page_count > 0) {
        db.exec("PRAGMA max_page_count = " + std::to_string(config.max_page_count));
      }
    }
    if (*version > latest_schema_version()) {
      return Error{ErrorCode::invalid_argument,
                   "database schema version " + std::to_string(*version) +
                       " is newer than this binary (" + std::to_string(latest_schema_version()) +
                       "); upgrade scrapekeep"};
    }
    if (!config.read_only && config.migrate) {
      // A file still to be migrated may be being migrated by another process
      // (a serve and workers started together on an older file): wait for it
      // as long as a big migration takes, not the busy timeout (0007 rewrites
      // every page event: about 10 s for 2.4 million), then go on as usual.
      const bool behind = *version < latest_schema_version();
      if (behind) {
        db.setBusyTimeout(k_migration_wait_ms);
      }
      auto st = migrate(db, core::SystemClock().now());
      if (behind) {
        db.setBusyTimeout(config.busy_timeout_ms);
      }
      if (!st) {
        return st.error();
      }
    } else if (*version == 0) {
      return Error{ErrorCode::invalid_argument,
                   config.read_only ? no_scrapekeep_tables() : "database is not migrated"};
    }
    return impl;
  } catch (const SQLite::Exception& e) {
    Error err = translate(e);
    if ((e.getErrorCode() & 0xff) == SQLITE_CANTOPEN) {
      err.message = "cannot open database file " + config.path;
    } else if ((e.getErrorCode() & 0xff) == SQLITE_NOTADB ||
               (e.getErrorCode() & 0xff) == SQLITE_CORRUPT) {
      err = unreadable_database(config.path);
    }
    return err;
  } catch (const std::exception& e) {
    return Error{ErrorCode::internal, std::string("cannot open database: ") + e.what()};
  }
}

Result<std::int64_t> JobStore::schema_version() { return recorded_schema_version(m_impl->db); }

// ---- keys ----

namespace {

ApiKeyInfo read_key(SQLite::Statement& q) {
  ApiKeyInfo k;
  k.key_id = q.getColumn(0).getString();
  k.org_id = q.getColumn(1).getInt64();
  k.org_name = q.getColumn(2).getString();
  k.created_at = q.getColumn(3).getInt64();
  k.revoked_at = opt_int(q.getColumn(4));
  return k;
}

constexpr const char* k_key_select =
    "SELECT k.key_id, k.org_id, o.name, k.created_at, k.revoked_at, k.key_hash "
    "FROM api_keys k JOIN organizations o ON o.org_id = k.org_id ";

} // namespace

Result<CreatedKey> JobStore::create_key(const std::string& org_name, Micros now) {
  return guarded([&]() -> Result<CreatedKey> {
    const SyncedCommit synced(m_impl->db.getHandle());
    auto& db = m_impl->db;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement ins(db,
                          "INSERT INTO organizations (name, created_at) VALUES (?, ?) "
                          "ON CONFLICT (name) DO NOTHING");
    ins.bind(1, org_name);
    ins.bind(2, now);
    ins.exec();
    SQLite::Statement org(db, "SELECT org_id FROM organizations WHERE name = ?");
    org.bind(1, org_name);
    org.executeStep();
    CreatedKey out;
    out.key = core::new_api_key();
    out.info.key_id = "key_" + core::random_hex(8);
    out.info.org_id = org.getColumn(0).getInt64();
    out.info.org_name = org_name;
    out.info.created_at = now;
    SQLite::Statement key(db,
                          "INSERT INTO api_keys (key_id, org_id, key_hash, created_at) "
                          "VALUES (?, ?, ?, ?)");
    key.bind(1, out.info.key_id);
    key.bind(2, out.info.org_id);
    key.bind(3, sha256_hex(out.key));
    key.bind(4, now);
    key.exec();
    tx.commit();
    return out;
  });
}

Result<std::vector<ApiKeyInfo>> JobStore::list_keys() { return read_keys(m_impl->db); }

Result<std::vector<ApiKeyInfo>> read_keys(SQLite::Database& db) {
  return guarded([&]() -> Result<std::vector<ApiKeyInfo>> {
    SQLite::Statement q(db, std::string(k_key_select) + "ORDER BY k.created_at, k.key_id");
    std::vector<ApiKeyInfo> out;
    while (q.executeStep()) {
      out.push_back(read_key(q));
    }
    return out;
  });
}

Result<std::optional<Micros>> JobStore::revoke_key(const std::string& key_id, Micros now) {
  return guarded([&]() -> Result<std::optional<Micros>> {
    const SyncedCommit synced(m_impl->db.getHandle());
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(m_impl->db, "SELECT revoked_at FROM api_keys WHERE key_id = ?");
    q.bind(1, key_id);
    if (!q.executeStep()) {
      return Error{ErrorCode::not_found, "no such key: " + key_id};
    }
    if (!q.getColumn(0).isNull()) {
      return std::optional<Micros>(q.getColumn(0).getInt64());
    }
    q.reset();
    SQLite::Statement revoke(m_impl->db, "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?");
    revoke.bind(1, now);
    revoke.bind(2, key_id);
    revoke.exec();
    tx.commit();
    return std::optional<Micros>();
  });
}

Result<ApiKeyInfo> JobStore::find_key(const std::string& key) {
  return guarded([&]() -> Result<ApiKeyInfo> {
    static const std::string k_sql = std::string(k_key_select) + "WHERE k.key_hash = ?";
    const std::string hash = sha256_hex(key);
    auto q = m_impl->prepared(k_sql.c_str());
    q->bind(1, hash);
    if (!q->executeStep() || !constant_time_equal(q->getColumn(5).getString(), hash)) {
      return Error{ErrorCode::not_found, "unknown API key"};
    }
    return read_key(*q);
  });
}

Result<std::int64_t> JobStore::count_keys() {
  return guarded([&]() -> Result<std::int64_t> {
    SQLite::Statement q(m_impl->db, "SELECT COUNT(*) FROM api_keys");
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

// ---- jobs ----

Result<Job> JobStore::create_job(std::int64_t org_id, const std::string& url,
                                 const core::JobOptions& options, Micros now) {
  Job job;
  job.org_id = org_id;
  job.url = url;
  job.options = options;
  job.created_at = now;
  const std::string selectors = to_json(options.selectors).dump();
  // A group write, as a page's, synced with its commit (synced_commit.hpp):
  // concurrent creations share a transaction and its sync, instead of
  // taking the write lock in turn through SQLite's busy sleeps (8 clients:
  // p99 60-90 ms). It may run twice: the last run's id is the job's.
  Status created = m_impl->write(
      [&](Impl& x) -> Status {
        // Never the id of a deleted job whose rows are still being purged:
        // the new job would show them as its own.
        auto q = x.prepared(
            "INSERT INTO jobs (job_id, org_id, status, url, timeout_s, max_items, "
            "follow_pagination, max_pages, depth, selectors, created_at) SELECT ?1, ?2, "
            "'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (SELECT 1 FROM "
            "job_purges WHERE job_id = ?1)");
        q->bind(2, org_id);
        q->bind(3, url);
        q->bind(4, options.timeout);
        q->bind(5, options.max_items);
        q->bind(6, options.follow_pagination ? 1 : 0);
        q->bind(7, options.max_pages);
        q->bind(8, options.depth);
        q->bind(9, selectors);
        q->bind(10, now);
        // 96 random bits: a second try is already beyond belief.
        for (int attempt = 0; attempt < 4; ++attempt) {
          job.job_id = core::new_job_id();
          q->bind(1, job.job_id);
          if (q->exec() == 1) {
            return core::ok_status();
          }
          q->reset();
        }
        return Error{ErrorCode::internal, "no free job id found"};
      },
      /*synced=*/true);
  if (!created) {
    return created.error();
  }
  return job;
}

Result<Job> JobStore::get_job(const std::string& job_id, std::optional<std::int64_t> org_id) {
  return guarded([&]() -> Result<Job> {
    auto job = m_impl->load_job(job_id, org_id);
    if (!job) {
      return not_found_job();
    }
    return *job;
  });
}

Result<JobPage> JobStore::list_jobs(const JobFilter& f) {
  return guarded([&]() -> Result<JobPage> {
    std::string where = " WHERE 1 = 1";
    if (f.org_id) {
      where += " AND org_id = :org";
    }
    if (f.status) {
      where += " AND status = :status";
    }
    if (f.created_after) {
      where += " AND created_at >= :after";
    }
    if (f.created_before) {
      where += " AND created_at < :before";
    }
    auto bind_all = [&](SQLite::Statement& q) {
      if (f.org_id) {
        q.bind(":org", *f.org_id);
      }
      if (f.status) {
        q.bind(":status", core::to_string(*f.status));
      }
      if (f.created_after) {
        q.bind(":after", *f.created_after);
      }
      if (f.created_before) {
        q.bind(":before", *f.created_before);
      }
    };
    // One read transaction so the page and the total agree.
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::DEFERRED);
    JobPage page;
    SQLite::Statement count(m_impl->db, "SELECT COUNT(*) FROM jobs" + where);
    bind_all(count);
    count.executeStep();
    page.total = count.getColumn(0).getInt64();
    // The page is found in the index alone (created_at, then rowid: the
    // order of creation within one microsecond), and only its rows are read:
    // skipping `offset` rows costs an index walk, not a row read each (at
    // offset 999,900 of a million jobs: 31 ms instead of 770). The rows are
    // then read one by one, in that order: sorted by SQLite, all of a page's
    // rows were held at once (100 jobs of 400 KB of selectors: 40 MB for
    // each such request) before the page's byte budget saw one.
    SQLite::Statement ids(m_impl->db, "SELECT rowid FROM jobs" + where +
                                          " ORDER BY created_at DESC, rowid ASC"
                                          " LIMIT :limit OFFSET :offset");
    bind_all(ids);
    ids.bind(":limit", f.limit);
    ids.bind(":offset", f.offset);
    std::vector<std::int64_t> rowids;
    while (ids.executeStep()) {
      rowids.push_back(ids.getColumn(0).getInt64());
    }
    SQLite::Statement q(m_impl->db,
                        std::string("SELECT ") + k_job_columns() + " FROM jobs WHERE rowid = ?");
    PageBudget budget(f.max_bytes, f.shared);
    for (const std::int64_t rowid : rowids) {
      q.reset();
      q.bind(1, rowid);
      if (!q.executeStep() || !budget.fits(job_row_text_bytes(q, 0), page.jobs.empty())) {
        break;
      }
      page.jobs.push_back(read_job(q));
    }
    if (budget.gave_up()) {
      return page_bytes_busy();
    }
    tx.commit();
    return page;
  });
}

Result<Job> JobStore::cancel_job(const std::string& job_id, std::optional<std::int64_t> org_id,
                                 Micros now) {
  return guarded([&]() -> Result<Job> {
    const SyncedCommit synced(m_impl->db.getHandle());
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    auto job = m_impl->load_job(job_id, org_id);
    if (!job) {
      return not_found_job();
    }
    if (core::is_terminal(job->status)) {
      return Error{ErrorCode::conflict,
                   std::string("job is already ") + core::to_string(job->status)};
    }
    const double pct = job->status == JobStatus::pending ? 0.0 : core::live_percentage(*job);
    // `now` was read before this transaction waited for the write lock: a
    // worker may have started the job since, a little later. Never before
    // the job began either, were the clock set back since.
    const Micros completed_at = std::max(now, job->started_at.value_or(job->created_at));
    auto q = m_impl->prepared(
        "UPDATE jobs SET status = 'cancelled', completion_reason = 'cancelled', completed_at = ?, "
        "stopped_percentage = ?, claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL "
        "WHERE job_id = ?");
    q->bind(1, completed_at);
    q->bind(2, pct);
    q->bind(3, job_id);
    q->exec();
    tx.commit();
    job->status = JobStatus::cancelled;
    job->completion_reason = core::CompletionReason::cancelled;
    job->completed_at = completed_at;
    job->stopped_percentage = pct;
    job->claim_token.reset();
    job->lease_expires_at.reset();
    return *job;
  });
}

Status JobStore::delete_job(const std::string& job_id, std::optional<std::int64_t> org_id) {
  return guarded([&]() -> Status {
    const SyncedCommit synced(m_impl->db.getHandle());
    return m_impl->without_cascade([&]() -> Status {
      SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
      auto job = m_impl->load_job(job_id, org_id);
      if (!job) {
        return not_found_job();
      }
      if (!core::is_terminal(job->status)) {
        return Error{ErrorCode::conflict, std::string("job is ") + core::to_string(job->status) +
                                              "; cancel it before deleting"};
      }
      m_impl->remove_jobs({job_id});
      tx.commit();
      return core::ok_status();
    });
  });
}

Result<ResultPage> JobStore::list_results(const std::string& job_id, std::int64_t limit,
                                          std::int64_t offset, std::int64_t max_bytes,
                                          SharedPageBytes* shared) {
  return guarded([&]() -> Result<ResultPage> {
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::DEFERRED);
    ResultPage page;
    // A job's items are numbered 0, 1, 2... and counted in items_found by the
    // transaction that stores them (`inspect check` verifies both), so the
    // total is one row read and the page starts at index `offset`: neither
    // walks the items before it (a million items: COUNT(*) 90 ms, OFFSET
    // 999,900 70 ms; now well under a millisecond).
    SQLite::Statement count(m_impl->db, "SELECT items_found FROM jobs WHERE job_id = ?");
    count.bind(1, job_id);
    if (!count.executeStep()) {
      // No such job, or one deleted since the caller looked it up: its items
      // may still wait for purge_deleted(), and are nobody's.
      return page;
    }
    page.total = count.getColumn(0).getInt64();
    SQLite::Statement q(m_impl->db,
                        "SELECT item_index, page_url, page_number, fields, detail_url, detail "
                        "FROM result_items WHERE job_id = ? AND item_index >= ? "
                        "ORDER BY item_index LIMIT ?");
    q.bind(1, job_id);
    q.bind(2, offset);
    q.bind(3, limit);
    PageBudget budget(max_bytes, shared);
    auto item_bytes = [&q] {
      std::int64_t bytes = 0;
      for (const int text : {1, 3, 4, 5}) {
        bytes += q.getColumn(text).getBytes();
      }
      return bytes;
    };
    while (q.executeStep() && budget.fits(item_bytes(), page.items.empty())) {
      ResultItem item;
      item.index = q.getColumn(0).getInt64();
      item.page_url = q.getColumn(1).getString();
      item.page_number = q.getColumn(2).getInt64();
      item.fields = readable_field_values(q.getColumn(3));
      item.detail_url = opt_text(q.getColumn(4));
      item.detail = readable_field_values(q.getColumn(5));
      page.items.push_back(std::move(item));
    }
    if (budget.gave_up()) {
      return page_bytes_busy();
    }
    tx.commit();
    return page;
  });
}

Result<EventPage> JobStore::list_events(const std::string& job_id, std::int64_t after,
                                        std::int64_t limit, std::int64_t max_bytes,
                                        SharedPageBytes* shared) {
  return guarded([&]() -> Result<EventPage> {
    // The job's row in the same read: a job deleted since the caller looked
    // it up may have events still waiting for purge_deleted(), nobody's.
    SQLite::Statement q(m_impl->db,
                        "SELECT job_seq, kind, page_number, url, http_status, outcome, "
                        "items_found, error, started_at, finished_at FROM page_events "
                        "WHERE job_id = ?1 AND job_seq > ?2 AND EXISTS (SELECT 1 FROM jobs j "
                        "WHERE j.job_id = ?1) ORDER BY job_seq LIMIT ?3");
    q.bind(1, job_id);
    q.bind(2, after);
    q.bind(3, limit);
    EventPage page;
    page.next_after = after;
    PageBudget budget(max_bytes, shared);
    const auto event_bytes = [&q] {
      return std::int64_t{q.getColumn(3).getBytes()} + q.getColumn(7).getBytes();
    };
    while (q.executeStep() && budget.fits(event_bytes(), page.events.empty())) {
      PageEvent e;
      e.seq = q.getColumn(0).getInt64();
      e.kind = std::string(q.getColumn(1).getText()) == "listing" ? PageKind::listing
                                                                   : PageKind::detail;
      e.page_number = q.getColumn(2).getInt64();
      e.url = q.getColumn(3).getString();
      if (!q.getColumn(4).isNull()) {
        e.http_status = q.getColumn(4).getInt();
      }
      e.ok = std::string(q.getColumn(5).getText()) == "ok";
      e.items_found = q.getColumn(6).getInt64();
      e.error = opt_text(q.getColumn(7));
      e.started_at = q.getColumn(8).getInt64();
      e.finished_at = q.getColumn(9).getInt64();
      page.next_after = e.seq;
      page.events.push_back(std::move(e));
    }
    if (budget.gave_up()) {
      return page_bytes_busy();
    }
    return page;
  });
}

// ---- workers ----

Result<std::optional<Claim>> JobStore::claim_next(
    Micros now, Micros lease, std::vector<std::pair<std::string, std::string>>* failed_damaged) {
  std::vector<std::pair<std::string, std::string>> failed;
  auto claimed = guarded([&]() -> Result<std::optional<Claim>> {
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    // A damaged row (its selectors are not the JSON this code writes, its
    // URL is longer or its options outside what the API takes) can never
    // run, and would be picked first again and again, ahead of every job
    // behind it: it fails, and the next job is taken; this many at most in
    // one call.
    constexpr int k_damaged_per_claim = 100;
    for (int damaged = 0; damaged < k_damaged_per_claim; ++damaged) {
      // A job given back or taken back from a lost worker (processing, no
      // claim, no lease) resumes before a new one starts; one whose time ran
      // out meanwhile (core::time_up, in SQL here) is left to recover_expired,
      // which dates its timeout. A row without a job id (hand-edited: SQLite
      // lets a TEXT PRIMARY KEY hold NULL, or '') can be neither claimed nor
      // taken for "nothing to do", which would stop every job after it
      // (`job_id <> ''` is not true of NULL either).
      std::string job_id;
      {
        auto waiting = m_impl->prepared(
            "SELECT job_id FROM jobs WHERE status = 'processing' AND lease_expires_at IS NULL "
            "AND claim_token IS NULL AND started_at + timeout_s * 1000000 > ? "
            "AND job_id <> '' ORDER BY created_at, rowid LIMIT 1");
        waiting->bind(1, now);
        if (waiting->executeStep()) {
          job_id = waiting->getColumn(0).getString();
        }
      }
      if (job_id.empty()) {
        auto pending = m_impl->prepared(
            "SELECT job_id FROM jobs WHERE status = 'pending' AND job_id <> '' "
            "ORDER BY created_at, rowid LIMIT 1");
        if (pending->executeStep()) {
          job_id = pending->getColumn(0).getString();
        }
      }
      if (job_id.empty()) {
        break;
      }
      // No worker holds a pending job: a claim token left on one (a
      // hand-edited row) is replaced, not a reason to fail every claim.
      Claim claim;
      claim.job_id = job_id;
      claim.token = core::random_hex(16);
      {
        auto q = m_impl->prepared(
            "UPDATE jobs SET status = 'processing', started_at = COALESCE(started_at, "
            "MAX(?, created_at)), "
            "attempts = attempts + 1, claim_token = ?, claimed_by = ?, lease_expires_at = ?, "
            "current_page = MAX(current_page, 1) WHERE job_id = ? AND (status = 'pending' OR "
            "(status = 'processing' AND claim_token IS NULL))");
        q->bind(1, now);
        q->bind(2, claim.token);
        q->bind(3, JobStore::process_identity());
        q->bind(4, now + lease);
        q->bind(5, job_id);
        if (q->exec() != 1) {
          return Error{ErrorCode::internal, "the job picked to claim could not be claimed"};
        }
      }
      claim.job = *m_impl->load_job(job_id, std::nullopt);
      // A URL longer than the API takes (hand-edited: 50 MB) is not fetched,
      // nor copied into the job's error and the log.
      const bool url_damaged = core::utf8_length(claim.job.url) > core::k_max_url_chars;
      const bool options_damaged = !core::options_in_range(claim.job.options);
      if (!claim.job.selectors_damaged && !url_damaged && !options_damaged) {
        tx.commit();
        return std::optional<Claim>(std::move(claim));
      }
      const std::string error =
          url_damaged ? "the job's stored URL is longer than " +
                            std::to_string(core::k_max_url_chars) +
                            " characters (a damaged database row)"
          : options_damaged ? std::string("the job's stored options are outside the ranges "
                                          "API.md allows (a damaged database row)")
                            : std::string("the job's stored options cannot be read (a "
                                          "damaged database row)");
      auto fail = m_impl->prepared(
          "UPDATE jobs SET status = 'failed', completion_reason = 'error', error_message = ?, "
          "completed_at = ?, claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL "
          "WHERE job_id = ?");
      fail->bind(1, error);
      fail->bind(2, std::max(now, claim.job.started_at.value_or(now)));
      fail->bind(3, job_id);
      fail->exec();
      failed.emplace_back(job_id, error);
    }
    tx.commit();
    return std::optional<Claim>();
  });
  if (claimed && failed_damaged != nullptr) {
    failed_damaged->insert(failed_damaged->end(), failed.begin(), failed.end());
  }
  return claimed;
}

Status JobStore::renew_lease(const Claim& claim, Micros now, Micros lease) {
  return guarded([&]() -> Status {
    auto q = m_impl->prepared(
        "UPDATE jobs SET lease_expires_at = ? WHERE job_id = ? AND status = 'processing' "
        "AND claim_token = ?");
    q->bind(1, now + lease);
    q->bind(2, claim.job_id);
    q->bind(3, claim.token);
    if (q->exec() != 1) {
      return lost_claim();
    }
    return core::ok_status();
  });
}

Result<bool> JobStore::holds(const Claim& claim) {
  return guarded([&]() -> Result<bool> {
    auto q = m_impl->prepared(
        "SELECT 1 FROM jobs WHERE job_id = ? AND status = 'processing' AND claim_token = ?");
    q->bind(1, claim.job_id);
    q->bind(2, claim.token);
    return q->executeStep();
  });
}

Result<ResumePoint> JobStore::resume_point(const Claim& claim) {
  return guarded([&]() -> Result<ResumePoint> {
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::DEFERRED);
    auto job = m_impl->load_claimed(claim);
    if (!job) {
      return lost_claim();
    }
    ResumePoint rp;
    rp.next_url = job->url;
    SQLite::Statement pages(m_impl->db,
                            "SELECT page_number, url, outcome, next_url, final_url "
                            "FROM page_events WHERE job_id = ? AND kind = 'listing' "
                            "ORDER BY page_number");
    pages.bind(1, claim.job_id);
    while (pages.executeStep()) {
      rp.visited_listing_urls.push_back(pages.getColumn(1).getString());
      if (!pages.getColumn(4).isNull()) {
        rp.visited_listing_urls.push_back(pages.getColumn(4).getString());
      }
      rp.next_page_number = pages.getColumn(0).getInt64() + 1;
      rp.next_url = opt_text(pages.getColumn(3));
      if (std::string(pages.getColumn(2).getText()) != "ok") {
        rp.next_url.reset();
      }
    }
    if (job->pagination_complete) {
      rp.next_url.reset();
    }
    SQLite::Statement details(m_impl->db,
                              "SELECT r.item_index, r.page_number, r.detail_url FROM result_items r "
                              "WHERE r.job_id = ? AND r.detail_url IS NOT NULL AND NOT EXISTS ("
                              " SELECT 1 FROM page_events e WHERE e.job_id = r.job_id"
                              " AND e.kind = 'detail' AND e.item_index = r.item_index) "
                              "ORDER BY r.item_index");
    details.bind(1, claim.job_id);
    while (details.executeStep()) {
      rp.pending_details.push_back(PendingDetail{details.getColumn(0).getInt64(),
                                                 details.getColumn(1).getInt64(),
                                                 details.getColumn(2).getString()});
    }
    tx.commit();
    return rp;
  });
}

Status JobStore::record_listing_page(const Claim& claim, const ListingPageRecord& page,
                                     Micros now) {
  (void)now;
  // The options are the claim's (a job's options never change); only the
  // counter is read again, fenced by the claim.
  const core::JobOptions& options = claim.job.options;
  // The items' JSON, written here rather than in the write, which may run on
  // the thread that commits everyone's writes.
  std::vector<std::string> fields;
  fields.reserve(page.items.size());
  for (const NewItem& item : page.items) {
    fields.push_back(dump_scraped(item.fields));
  }
  return m_impl->write([&](Impl& x) -> Status {
    std::optional<Job> job = x.claimed_progress_row(claim);
    if (!job) {
      return lost_claim();
    }
    const std::int64_t items_found = job->counters.items_found;
    const std::int64_t room = std::max<std::int64_t>(0, options.max_items - items_found);
    const std::int64_t take =
        page.ok ? std::min<std::int64_t>(room, static_cast<std::int64_t>(page.items.size())) : 0;
    std::int64_t links = 0;
    {
      auto ins = x.prepared(
          "INSERT INTO result_items (job_id, item_index, page_number, page_url, fields, "
          "detail_url) VALUES (?, ?, ?, ?, ?, ?)");
      for (std::int64_t i = 0; i < take; ++i) {
        const NewItem& item = page.items[static_cast<size_t>(i)];
        const bool has_link = options.depth >= 1 && item.detail_url.has_value();
        links += has_link ? 1 : 0;
        ins->bind(1, claim.job_id);
        ins->bind(2, items_found + i);
        ins->bind(3, page.page_number);
        ins->bind(4, page.url);
        ins->bind(5, fields[static_cast<size_t>(i)]);
        if (has_link) {
          ins->bind(6, *item.detail_url);
        } else {
          ins->bind(6);
        }
        ins->exec();
        ins->reset();
      }
    }
    const bool complete = page.pagination_complete || !page.next_url ||
                          items_found + take >= options.max_items;
    {
      auto ev = x.prepared(
          "INSERT INTO page_events (job_id, kind, page_number, url, http_status, outcome, "
          "items_found, detail_links, next_url, error, started_at, finished_at, final_url, "
          "job_seq) VALUES (?, 'listing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      ev->bind(1, claim.job_id);
      ev->bind(2, page.page_number);
      ev->bind(3, page.url);
      bind_opt(*ev, 4, page.http_status);
      ev->bind(5, page.ok ? "ok" : "failed");
      ev->bind(6, take);
      ev->bind(7, links);
      bind_opt(*ev, 8, page.ok && !complete ? page.next_url : std::nullopt);
      bind_opt(*ev, 9, page.ok ? std::nullopt : std::optional<std::string>(page.error));
      ev->bind(10, page.started_at);
      ev->bind(11, page.finished_at);
      bind_opt(*ev, 12, page.final_url != page.url ? page.final_url : std::nullopt);
      ev->bind(13, last_job_seq(x, claim.job_id) + 1);
      ev->exec();
    }
    {
      core::JobCounters& c = job->counters;
      (page.ok ? c.listing_pages_scraped : c.listing_pages_failed) += 1;
      c.items_found += take;
      c.detail_pages_discovered += links;
      job->current_page = page.ok && !complete ? page.page_number + 1 : page.page_number;
      job->pagination_complete = page.ok && complete;
      auto up = x.prepared(
          "UPDATE jobs SET listing_pages_scraped = ?, listing_pages_failed = ?, items_found = ?, "
          "detail_pages_discovered = ?, current_page = ?, pagination_complete = ?, "
          "stopped_percentage = ?, lost_attempts = 0 "
          "WHERE job_id = ? AND status = 'processing' AND claim_token = ?");
      up->bind(1, c.listing_pages_scraped);
      up->bind(2, c.listing_pages_failed);
      up->bind(3, c.items_found);
      up->bind(4, c.detail_pages_discovered);
      up->bind(5, job->current_page);
      up->bind(6, job->pagination_complete ? 1 : 0);
      up->bind(7, core::shown_percentage(*job));
      up->bind(8, claim.job_id);
      up->bind(9, claim.token);
      up->exec();
    }
    return core::ok_status();
  });
}

Status JobStore::end_pagination(const Claim& claim, std::int64_t last_page) {
  return m_impl->write([&](Impl& x) -> Status {
    std::optional<Job> job = x.claimed_progress_row(claim);
    if (!job) {
      return lost_claim();
    }
    job->pagination_complete = true;
    auto up = x.prepared(
        "UPDATE jobs SET pagination_complete = 1, current_page = ?, stopped_percentage = ? "
        "WHERE job_id = ?");
    up->bind(1, last_page);
    up->bind(2, core::shown_percentage(*job));
    up->bind(3, claim.job_id);
    up->exec();
    return core::ok_status();
  });
}

Status JobStore::record_detail_page(const Claim& claim, const DetailPageRecord& page, Micros now) {
  return record_detail_pages(claim, {page}, now);
}

Status JobStore::record_detail_pages(const Claim& claim, const std::vector<DetailPageRecord>& pages,
                                     Micros now) {
  (void)now;
  // The details' JSON, written here rather than in the write (see
  // record_listing_page).
  std::vector<std::string> details;
  details.reserve(pages.size());
  for (const DetailPageRecord& page : pages) {
    details.push_back(page.ok ? dump_scraped(page.detail) : std::string());
  }
  return m_impl->write([&](Impl& x) -> Status {
    std::int64_t scraped = 0;
    std::int64_t failed = 0;
    // Fenced once: the pages are written in this one transaction.
    std::optional<Job> job = x.claimed_progress_row(claim);
    if (!job) {
      return lost_claim();
    }
    std::int64_t job_seq = last_job_seq(x, claim.job_id);  // once: the pages follow it
    for (std::size_t p = 0; p < pages.size(); ++p) {
      const DetailPageRecord& page = pages[p];
      std::int64_t page_number = 0;
      {
        auto item = x.prepared(
            "SELECT page_number FROM result_items WHERE job_id = ? AND item_index = ?");
        item->bind(1, claim.job_id);
        item->bind(2, page.item_index);
        if (!item->executeStep()) {
          return lost_claim();  // not an item of this job's
        }
        page_number = item->getColumn(0).getInt64();
      }
      {
        auto ev = x.prepared(
            "INSERT INTO page_events (job_id, kind, page_number, item_index, url, http_status, "
            "outcome, items_found, error, started_at, finished_at, job_seq) "
            "VALUES (?, 'detail', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)");
        ev->bind(1, claim.job_id);
        ev->bind(2, page_number);
        ev->bind(3, page.item_index);
        ev->bind(4, page.url);
        bind_opt(*ev, 5, page.http_status);
        ev->bind(6, page.ok ? "ok" : "failed");
        bind_opt(*ev, 7, page.ok ? std::nullopt : std::optional<std::string>(page.error));
        ev->bind(8, page.started_at);
        ev->bind(9, page.finished_at);
        ev->bind(10, ++job_seq);
        ev->exec();
      }
      if (page.ok) {
        auto up = x.prepared(
            "UPDATE result_items SET detail = ? WHERE job_id = ? AND item_index = ?");
        up->bind(1, details[p]);
        up->bind(2, claim.job_id);
        up->bind(3, page.item_index);
        up->exec();
      }
      (page.ok ? scraped : failed) += 1;
    }
    {
      job->counters.detail_pages_scraped += scraped;
      job->counters.detail_pages_failed += failed;
      auto up = x.prepared(
          "UPDATE jobs SET detail_pages_scraped = ?, detail_pages_failed = ?, "
          "stopped_percentage = ?, lost_attempts = 0 WHERE job_id = ?");
      up->bind(1, job->counters.detail_pages_scraped);
      up->bind(2, job->counters.detail_pages_failed);
      up->bind(3, core::shown_percentage(*job));
      up->bind(4, claim.job_id);
      up->exec();
    }
    return core::ok_status();
  });
}

Status JobStore::finish(const Claim& claim, core::CompletionReason reason,
                        std::optional<std::string> error_message, Micros now) {
  return guarded([&]() -> Status {
    const SyncedCommit synced(m_impl->db.getHandle());
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    auto job = m_impl->load_claimed(claim);
    if (!job) {
      return lost_claim();
    }
    const bool failed = reason == core::CompletionReason::error ||
                        reason == core::CompletionReason::cancelled;
    std::optional<double> stopped;
    if (failed) {
      stopped = core::live_percentage(*job);
    }
    auto q = m_impl->prepared(
        "UPDATE jobs SET status = ?, completion_reason = ?, error_message = ?, completed_at = ?, "
        "stopped_percentage = ?, pagination_complete = CASE WHEN ? THEN 1 ELSE "
        "pagination_complete END, claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL "
        "WHERE job_id = ? AND status = 'processing' AND claim_token = ?");
    const char* status = reason == core::CompletionReason::error       ? "failed"
                         : reason == core::CompletionReason::cancelled ? "cancelled"
                                                                       : "completed";
    q->bind(1, status);
    q->bind(2, core::to_string(reason));
    bind_opt(*q, 3, error_message);
    Micros completed_at = std::max(now, job->started_at.value_or(now));  // were the clock set back
    if (const std::optional<Micros> time_up = core::time_up(*job);
        reason == core::CompletionReason::timeout && time_up && *time_up <= now) {
      completed_at = m_impl->timed_out_at(*job, *time_up, now);
    }
    q->bind(4, completed_at);
    bind_opt(*q, 5, stopped);
    q->bind(6, reason == core::CompletionReason::done ? 1 : 0);
    q->bind(7, claim.job_id);
    q->bind(8, claim.token);
    q->exec();
    tx.commit();
    return core::ok_status();
  });
}

Status JobStore::release(const Claim& claim) {
  return guarded([&]() -> Status {
    auto q = m_impl->prepared(
        "UPDATE jobs SET claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL "
        "WHERE job_id = ? AND status = 'processing' AND claim_token = ?");
    q->bind(1, claim.job_id);
    q->bind(2, claim.token);
    if (q->exec() != 1) {
      return lost_claim();
    }
    return core::ok_status();
  });
}

Result<std::int64_t> JobStore::recover_expired(Micros now, std::int64_t max_attempts) {
  return guarded([&]() -> Result<std::int64_t> {
    // Synced when it ends jobs or puts them back; a pass that changes
    // nothing commits no page, and SQLite syncs nothing for it.
    const SyncedCommit synced(m_impl->db.getHandle());
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    std::vector<std::pair<Job, std::int64_t>> expired;  // and its lost_attempts
    {
      // Expired leases; jobs waiting for a worker (neither claim nor lease)
      // only once their time ran out (core::time_up, in SQL here), so that
      // those still waiting are not read again at every pass under the write
      // lock; and a claim without a lease, which nothing writes, taken back
      // like an expired one.
      // Without the selectors, which recovery does not use: a damaged row's
      // would stop a server from starting (its next claim fails that job).
      static const std::string k_sql =
          std::string("SELECT ") + without_selectors(k_job_columns()) +
          ", lost_attempts FROM jobs WHERE status = 'processing' AND (lease_expires_at < ?1 OR "
          "(lease_expires_at IS NULL AND (claim_token IS NOT NULL OR "
          "started_at + timeout_s * 1000000 <= ?1)))";
      auto q = m_impl->prepared(k_sql.c_str());
      q->bind(1, now);
      while (q->executeStep()) {
        int i = 0;
        Job job = read_job_row(*q, i);
        expired.emplace_back(std::move(job), q->getColumn(i).getInt64());
      }
    }
    for (const auto& [job, lost_before] : expired) {
      const std::optional<Micros> time_up = core::time_up(job);
      const bool timed_out = time_up && now >= *time_up;
      // Losses in a row without a page stored: a job that keeps killing its
      // worker (a page that crashes it) is given up on; one that moves
      // forward between crashes is not.
      const std::int64_t lost = lost_before + 1;
      if (timed_out || lost >= max_attempts) {
        auto q = m_impl->prepared(
            "UPDATE jobs SET status = ?, completion_reason = ?, error_message = ?, "
            "completed_at = ?, stopped_percentage = ?, claim_token = NULL, claimed_by = NULL, "
            "lease_expires_at = NULL WHERE job_id = ? AND status = 'processing'");
        q->bind(1, timed_out ? "completed" : "failed");
        q->bind(2, timed_out ? "timeout" : "error");
        if (timed_out) {
          q->bind(3);
          q->bind(5);
        } else {
          q->bind(3, "the job's worker was lost " + std::to_string(lost) +
                         (lost == 1 ? " time" : " times") +
                         " in a row without a page stored; giving up");
          q->bind(5, core::live_percentage(job));
        }
        // A timeout found late is dated when the time ran out, or when the
        // job's last page was stored if a lost worker stored one after that;
        // a job given up on, now, or at its start were the clock set back.
        Micros completed_at = std::max(now, job.started_at.value_or(now));
        if (timed_out) {
          completed_at = m_impl->timed_out_at(job, *time_up, now);
        }
        q->bind(4, completed_at);
        q->bind(6, job.job_id);
        q->exec();
      } else {
        // Back in work: still processing (its progress stays what it was),
        // waiting for the next worker, which resumes it before new jobs.
        auto q = m_impl->prepared(
            "UPDATE jobs SET claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL, "
            "lost_attempts = ? WHERE job_id = ? AND status = 'processing'");
        q->bind(1, lost);
        q->bind(2, job.job_id);
        q->exec();
      }
    }
    tx.commit();
    return static_cast<std::int64_t>(expired.size());
  });
}

Result<std::int64_t> JobStore::expire_orphaned_leases(
    const std::function<bool(const std::string& holder)>& holder_is_gone) {
  return guarded([&]() -> Result<std::int64_t> {
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    std::vector<std::string> gone;
    {
      SQLite::Statement q(m_impl->db,
                          "SELECT job_id, claimed_by FROM jobs WHERE status = 'processing' "
                          "AND claim_token IS NOT NULL");
      while (q.executeStep()) {
        if (q.getColumn(1).isNull() || holder_is_gone(q.getColumn(1).getString())) {
          gone.push_back(q.getColumn(0).getString());
        }
      }
    }
    SQLite::Statement up(m_impl->db,
                         "UPDATE jobs SET lease_expires_at = 0 WHERE job_id = ? "
                         "AND status = 'processing'");
    for (const auto& id : gone) {
      up.bind(1, id);
      up.exec();
      up.reset();
    }
    tx.commit();
    return static_cast<std::int64_t>(gone.size());
  });
}

Result<std::int64_t> JobStore::delete_terminal_before(Micros cutoff, std::int64_t batch) {
  return guarded([&]() -> Result<std::int64_t> {
    return m_impl->without_cascade([&]() -> Result<std::int64_t> {
      SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
      std::vector<std::string> doomed;
      {
        // A job completes after it was created, so only jobs created before
        // the cutoff are looked at: a range of the (status, created_at) index,
        // not every terminal job's row. This runs under the write lock: with
        // nothing to delete among a million jobs, 3 ms instead of 0.5-1.9 s.
        SQLite::Statement q(m_impl->db,
                            "SELECT job_id FROM jobs "
                            "WHERE status IN ('completed', 'failed', 'cancelled') "
                            "AND created_at < ?1 AND completed_at < ?1 LIMIT ?2");
        q.bind(1, cutoff);
        q.bind(2, batch);
        while (q.executeStep()) {
          doomed.push_back(q.getColumn(0).getString());
        }
      }
      m_impl->remove_jobs(doomed);
      tx.commit();
      return static_cast<std::int64_t>(doomed.size());
    });
  });
}

Result<PurgeStep> JobStore::purge_deleted() {
  return guarded([&]() -> Result<PurgeStep> {
    PurgeStep step;
    {
      // Read first: with nothing to purge (nearly always) no write lock is taken.
      auto any = m_impl->prepared("SELECT EXISTS (SELECT 1 FROM job_purges)");
      any->executeStep();
      if (any->getColumn(0).getInt() == 0) {
        return step;
      }
    }
    SQLite::Transaction tx(m_impl->db, SQLite::TransactionBehavior::IMMEDIATE);
    std::int64_t budget = std::max<std::int64_t>(1, m_impl->config.delete_batch_rows);
    while (budget > 0) {
      std::string job_id;
      bool listed_in_error = false;
      {
        auto next = m_impl->prepared(
            "SELECT job_id, EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = p.job_id) "
            "FROM job_purges p ORDER BY rowid LIMIT 1");
        if (!next->executeStep()) {
          break;
        }
        job_id = next->getColumn(0).getString();
        // No job takes a listed id (create_job), so a job of that id means the
        // entry itself is wrong (hand-edited): its rows are the job's, kept.
        listed_in_error = next->getColumn(1).getInt() != 0;
      }
      if (!listed_in_error) {
        for (const char* sql :
             {"DELETE FROM result_items WHERE job_id = ?1 AND item_index IN (SELECT item_index "
              "FROM result_items WHERE job_id = ?1 ORDER BY item_index LIMIT ?2)",
              "DELETE FROM page_events WHERE seq IN (SELECT seq FROM page_events "
              "WHERE job_id = ?1 ORDER BY job_seq LIMIT ?2)"}) {
          auto q = m_impl->prepared(sql);
          q->bind(1, job_id);
          q->bind(2, budget);
          const std::int64_t removed = q->exec();
          step.rows += removed;
          budget -= removed;
        }
        if (budget <= 0) {
          break;  // rows may be left: the next call looks
        }
        ++step.jobs;
      }
      auto done = m_impl->prepared("DELETE FROM job_purges WHERE job_id = ?");
      done->bind(1, job_id);
      done->exec();
      --budget;  // an entry without rows costs a little too
    }
    {
      auto left = m_impl->prepared("SELECT EXISTS (SELECT 1 FROM job_purges)");
      left->executeStep();
      step.more = left->getColumn(0).getInt() != 0;
    }
    tx.commit();
    return step;
  });
}

Status JobStore::check_file() {
  if (m_impl->config.path.empty() || m_impl->config.path == ":memory:" || m_impl->usable()) {
    return core::ok_status();
  }
  return Error{ErrorCode::unavailable, "the database file was removed or replaced"};
}

std::size_t JobStore::committed_batches() const {
  return m_impl->committer ? m_impl->committer->committed_batches() : 0;
}

Status JobStore::checkpoint() {
  return guarded([&]() -> Status {
    m_impl->db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return core::ok_status();
  });
}

} // namespace scrapekeep::store
