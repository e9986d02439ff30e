#pragma once
// Read-only queries over a scrapekeep database for offline inspection
// (`scrapekeep inspect`). A History never writes: its connection is opened
// read-only with query_only on. Long results are streamed through callbacks so
// that exports run in constant memory, in short read transactions so that a
// live server's checkpoints go on. One History per thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/error.hpp"
#include "scrapekeep/core/job.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace SQLite {
class Transaction;
}

namespace scrapekeep::store {

// Which jobs a listing or an export covers. Every field is optional.
struct HistoryFilter {
  std::optional<core::JobStatus> status;
  std::optional<std::string> org;     // organization name; not_found when unknown
  std::optional<Micros> since;        // created_at >= since
  std::optional<Micros> until;        // created_at < until
  std::optional<std::int64_t> limit;  // at most this many rows; nullopt: all
};

// A job row with what the API does not show but an operator wants.
struct JobRecord {
  core::Job job;
  std::string org;
  std::optional<std::string> claimed_by;  // its holder (store/holder.hpp) while processing
};

// A page event with its job and the columns the API's event object leaves out.
struct EventRecord {
  std::string job_id;
  PageEvent event;
  std::optional<std::int64_t> item_index;  // detail pages
  std::int64_t detail_links = 0;           // listing pages
  std::optional<std::string> next_url;     // listing pages
  std::optional<std::string> final_url;    // listing pages a redirect took elsewhere
};

// Summary of one job's page events.
struct Timeline {
  std::int64_t events = 0;
  std::int64_t listing_ok = 0;
  std::int64_t listing_failed = 0;
  std::int64_t detail_ok = 0;
  std::int64_t detail_failed = 0;
  std::int64_t items = 0;         // sum of listing items_found
  std::int64_t detail_links = 0;  // sum of listing detail_links
  std::optional<Micros> first_started;
  std::optional<Micros> last_finished;
  Micros fetch_time = 0;  // sum of (finished_at - started_at)
  std::optional<EventRecord> slowest;
  // HTTP status (nullopt: no response) -> events, most frequent first.
  std::vector<std::pair<std::optional<int>, std::int64_t>> http_statuses;
};

// A job and the summary of its page events, read together.
struct JobTimeline {
  JobRecord record;
  Timeline timeline;
};

struct StatusCount {
  core::JobStatus status = core::JobStatus::pending;
  std::optional<core::CompletionReason> reason;
  std::int64_t jobs = 0;
};

// Nearest-rank percentiles of processing time (completed_at - started_at) over
// terminal jobs that started, exact at the API's precision (10 ms). All zero
// when `samples` is 0.
struct Percentiles {
  std::int64_t samples = 0;
  Micros p50 = 0;
  Micros p90 = 0;
  Micros p99 = 0;
  Micros max = 0;
};

// An error message with its URLs replaced by "<url>", and how many jobs had it.
struct ErrorCount {
  std::string message;
  std::int64_t jobs = 0;
};

// Jobs created on one UTC day.
struct DayStats {
  Micros day = 0;  // midnight UTC
  std::int64_t created = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
  std::int64_t open = 0;   // pending or processing
  std::int64_t pages = 0;  // listing + detail pages scraped
  std::int64_t items = 0;
  std::optional<Micros> avg_processing;
};

struct StatsOptions {
  bool per_day = false;
  std::int64_t top_errors = 10;
};

struct Stats {
  std::int64_t jobs = 0;
  std::vector<StatusCount> by_status;  // ordered by status, then reason
  core::JobCounters totals;
  std::int64_t attempts = 0;
  std::optional<Micros> first_created;
  std::optional<Micros> last_created;
  Percentiles processing_time;
  std::vector<ErrorCount> top_errors;  // most frequent first
  std::vector<DayStats> per_day;       // oldest first; empty unless asked
};

enum class FindingKind {
  integrity,      // PRAGMA integrity_check / quick_check
  counters,       // a job's counters differ from the sums over its page events
  results,        // a job's result items are not numbered 0 .. items_found - 1
  orphan_events,  // page events whose job does not exist (nor is being purged)
  foreign_key,    // other rows whose parent does not exist (nor is being purged)
  lease,          // a processing job without a start, or with a claim token
                  // and no lease or the reverse (waiting jobs have neither)
  state,          // status, completion reason and timestamps disagree
  value,          // a stored value scrapekeep never writes: a status or reason
                  // outside the lifecycle, a time outside years 0000-9999, a
                  // negative or non-integer counter, options out of API.md's
                  // ranges, a job id of another shape, JSON that does not parse
};
const char* to_string(FindingKind kind);

struct Finding {
  FindingKind kind = FindingKind::integrity;
  std::string job_id;  // empty when not about one job
  std::string message;
};

struct CheckOptions {
  bool quick = false;  // quick_check instead of integrity_check
  Micros now = 0;      // for counting expired leases
};

struct CheckSummary {
  std::int64_t jobs = 0;
  std::int64_t events = 0;
  std::int64_t findings = 0;
  std::int64_t expired_leases = 0;  // processing jobs whose lease ended before `now`
  // Deleted jobs whose events and items are still being removed (job_purges):
  // neither they nor their rows are counted above or reported.
  std::int64_t purging = 0;
};

class History {
 public:
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Opens `path` read-only, never creating it: not_found when it is missing,
  // invalid_argument when it is not a scrapekeep database or its schema is
  // newer than this binary. A file at rest (no -wal, -shm or -journal beside
  // it: no connection has it open) is read as an immutable snapshot, so that
  // nothing is created beside it; a process that opens it meanwhile is not
  // seen. A file that SQLite cannot open read-only in place (a WAL database
  // in a read-only directory) is read that way too; open_note() then says so.
  static Result<std::unique_ptr<History>> open(const std::string& path);

  // Set when the database was opened in a degraded way a reader should know of.
  const std::optional<std::string>& open_note() const;

  // The read-only connection (for backup_to).
  SQLite::Database& database();
  // Whether it was opened as an immutable snapshot (a file at rest, or one in
  // a read-only folder): SQLite then neither locks the file nor sees changes.
  bool snapshot() const;
  // The size of a -wal beside a snapshot, whose transactions it cannot read
  // (a read-only folder); 0 otherwise.
  std::uintmax_t unread_wal_bytes() const;

  // A read transaction, held while it lives: what is read meanwhile through
  // its History is the file at one moment, so that on a live file reads
  // made together agree (a count and the jobs it counts). Not around
  // timeline() or check(), which begin their own.
  class Reading {
   public:
    ~Reading();
    Reading(Reading&& other) noexcept;
    Reading& operator=(Reading&& other) noexcept;

   private:
    friend class History;
    explicit Reading(std::unique_ptr<SQLite::Transaction> transaction);
    std::unique_ptr<SQLite::Transaction> m_transaction;
  };
  Result<Reading> begin_read();

  // Every API key, oldest first (as JobStore::list_keys).
  Result<std::vector<ApiKeyInfo>> keys();

  // not_found when there is no such job.
  Result<JobRecord> job(const std::string& job_id);
  // The job and its page events' summary from one read transaction, so that
  // on a live file its counters are those of the events summed (read apart,
  // a page stored between the two reads showed as a counter mismatch).
  Result<JobTimeline> timeline(const std::string& job_id);

  // Jobs matching `filter`, newest first, in one statement. `fn` returns false to stop.
  Status each_job(const HistoryFilter& filter, const std::function<bool(const JobRecord&)>& fn);
  // How many jobs match `filter`, ignoring its limit.
  Result<std::int64_t> count_jobs(const HistoryFilter& filter);
  // Page events of one job in storage order (not_found when the job does not exist).
  Status each_event(const std::string& job_id, std::optional<std::int64_t> limit,
                    const std::function<bool(const EventRecord&)>& fn);

  // Exports: every matching job (or page event of a matching job) in storage
  // order, read in chunks of short transactions; constant memory, but for
  // the events of a database older than migration 0007, whose per-job event
  // numbers are counted here: one count per job seen (about 100 bytes each).
  Status export_jobs(const HistoryFilter& filter, const std::function<bool(const JobRecord&)>& fn);
  Status export_events(const HistoryFilter& filter,
                       const std::function<bool(const EventRecord&)>& fn);

  // One sequential pass over the jobs table (one snapshot); memory is bounded
  // by the number of distinct error messages and days, not of jobs.
  Result<Stats> stats(const StatsOptions& options);

  // PRAGMA integrity_check (or quick_check) and the invariants: each job's
  // counters equal the sums over its page events, no page event or result
  // without its job, no processing job without claim token, lease and start,
  // status/reason/timestamps agree, every value is one scrapekeep writes. Each
  // finding goes to `fn` as it is found.
  Result<CheckSummary> check(const CheckOptions& options,
                             const std::function<void(const Finding&)>& fn);

 private:
  struct Impl;
  explicit History(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// "https://x/a?p=2: HTTP 503" -> "<url>: HTTP 503", so messages group by cause.
std::string normalize_error_message(const std::string& message);

}  // namespace scrapekeep::store
