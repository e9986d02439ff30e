#pragma once
// The job store: the only module that talks to SQLite. One JobStore owns one
// connection and is not thread-safe: give each thread its own (see StorePool).
// Every failure is a core::Error: busy/locked/full/read-only -> unavailable,
// constraint -> conflict, a missing row -> not_found.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/byte_budget.hpp"
#include "scrapekeep/core/error.hpp"
#include "scrapekeep/core/job.hpp"

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

using core::Micros;
using core::Result;
using core::Status;

enum class Synchronous { normal, full };

struct StoreConfig {
  std::string path = "scrapekeep.db";
  // How long a statement waits for a lock before failing with `unavailable`.
  int busy_timeout_ms = 5000;
  // NORMAL in WAL: a commit may be lost on power loss, never corrupted; FULL
  // syncs the WAL on every commit.
  Synchronous synchronous = Synchronous::normal;
  // Opens with SQLITE_OPEN_READONLY; never creates the file; no migrations.
  bool read_only = false;
  // Applies pending migrations on open (read-write only). Without it the
  // file is never created: a missing file (removed underneath a running
  // server) is `unavailable`, not a new empty database beside the old WAL.
  bool migrate = true;
  // With `migrate` (read-write), creates the file when it is missing. Off: a
  // missing file is `not_found`, nothing is created, an existing database
  // is still migrated, and a file that has no tables (empty) is refused.
  bool create = true;
  // Concurrent record_*_page calls from connections to the same file commit
  // together in one transaction (see group_commit.hpp); off: one each.
  bool group_commit = true;
  // Test hook for a full disk: when > 0, this connection never grows the file
  // past this many pages (SQLite's max_page_count, which is per connection
  // and never below the file's size at open); writes that would are
  // `unavailable`. 0: no limit.
  std::int64_t max_page_count = 0;
  // Most page events and result items one transaction deletes. A job deleted
  // with more (delete_job, retention) leaves every read at once, and its rows
  // go afterwards, this many per transaction (purge_deleted), so that other
  // writers wait for one such batch at most, not for the whole job.
  std::int64_t delete_batch_rows = 5000;
  // This connection's page cache in KiB; 0: SQLite's default (2 MiB). The
  // request pool keeps it small: with one connection per HTTP thread the
  // default would cost up to 2 MiB each, and the OS caches the file anyway.
  int cache_kib = 0;
};

struct ApiKeyInfo {
  std::string key_id;
  std::int64_t org_id = 0;
  std::string org_name;
  Micros created_at = 0;
  std::optional<Micros> revoked_at;
};

struct CreatedKey {
  ApiKeyInfo info;
  std::string key;  // plaintext; shown once, never stored
};

// A page of jobs or results ends early before the first row that would take
// the text it reads past this many bytes, and always holds at least one row:
// a page's memory is bounded however much each row holds.
constexpr std::int64_t k_page_bytes = 16 << 20;

// A page's rows may also hold their bytes in a budget shared with the other
// pages being read and sent (the server's, so that many large answers at once
// stay within it): the first row waits for its bytes, up to `patience`, and
// then the read fails as unavailable; a later row whose bytes do not fit there
// ends the page. `lease` holds them for the caller, to keep while they live.
struct SharedPageBytes {
  explicit SharedPageBytes(core::ByteBudget* shared_budget) : budget(shared_budget) {}
  core::ByteBudget* budget;
  std::chrono::milliseconds patience{10'000};
  core::ByteBudget::Lease lease;
};

struct JobFilter {
  std::optional<std::int64_t> org_id;
  std::optional<core::JobStatus> status;
  std::optional<Micros> created_after;   // inclusive
  std::optional<Micros> created_before;  // exclusive
  std::int64_t limit = 50;
  std::int64_t offset = 0;
  std::int64_t max_bytes = k_page_bytes;  // of url, selectors and error_message
  SharedPageBytes* shared = nullptr;
};

struct JobPage {
  std::vector<core::Job> jobs;
  std::int64_t total = 0;
};

struct ResultItem {
  std::int64_t index = 0;  // 0-based, in the order items were stored
  std::string page_url;
  std::int64_t page_number = 0;
  // Null only when the stored value is not the JSON this code writes (a
  // damaged or hand-edited row); the item is still listed.
  std::optional<core::FieldValues> fields;
  std::optional<std::string> detail_url;
  // Set once the detail page was scraped (and is readable, as fields).
  std::optional<core::FieldValues> detail;
};

struct ResultPage {
  std::vector<ResultItem> items;
  std::int64_t total = 0;
};

enum class PageKind { listing, detail };
const char* to_string(PageKind kind);

struct PageEvent {
  std::int64_t seq = 0;
  PageKind kind = PageKind::listing;
  std::int64_t page_number = 0;  // listing page number; for a detail page, its item's page
  std::string url;
  std::optional<int> http_status;
  bool ok = true;
  std::int64_t items_found = 0;
  std::optional<std::string> error;
  Micros started_at = 0;
  Micros finished_at = 0;
};

struct EventPage {
  std::vector<PageEvent> events;
  std::int64_t next_after = 0;  // seq of the last event returned (or `after` if none)
};

// A worker's hold on a processing job. Every write through it is fenced by
// `token`: once the lease is lost (expired, cancelled) writes return conflict.
struct Claim {
  std::string job_id;
  std::string token;
  core::Job job;  // the row as claimed (status processing, started_at set)
};

struct NewItem {
  core::FieldValues fields;
  std::optional<std::string> detail_url;  // depth 1 only
};

struct ListingPageRecord {
  std::int64_t page_number = 1;
  std::string url;
  // Where a redirect took the page, if not to `url`: a resumed job counts it
  // as visited too (ResumePoint::visited_listing_urls). Stored only if it differs.
  std::optional<std::string> final_url;
  std::optional<int> http_status;
  bool ok = true;
  std::string error;            // when !ok
  Micros started_at = 0;
  Micros finished_at = 0;
  std::vector<NewItem> items;   // trimmed by the store to max_items
  std::optional<std::string> next_url;  // where the next listing page is, if any
  bool pagination_complete = false;     // no further listing page will be fetched
};

struct DetailPageRecord {
  std::int64_t item_index = 0;
  std::string url;
  std::optional<int> http_status;
  bool ok = true;
  std::string error;
  Micros started_at = 0;
  Micros finished_at = 0;
  core::FieldValues detail;
};

struct PendingDetail {
  std::int64_t item_index = 0;
  std::int64_t page_number = 0;
  std::string url;
};

// Where a (possibly resumed) job continues.
struct ResumePoint {
  std::int64_t next_page_number = 1;
  std::optional<std::string> next_url;  // nullopt: no more listing pages
  std::vector<PendingDetail> pending_details;  // detail pages not yet stored
  // For loop detection: each stored listing page's url and, when a redirect
  // took it elsewhere, its final URL.
  std::vector<std::string> visited_listing_urls;
};

// What one purge_deleted() call did.
struct PurgeStep {
  std::int64_t rows = 0;  // page events and result items removed
  std::int64_t jobs = 0;  // deleted jobs whose last rows these were
  bool more = false;      // rows of deleted jobs are left for another call
};

class JobStore {
 public:
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Opens (and, per config, creates and migrates) the database.
  static Result<std::unique_ptr<JobStore>> open(const StoreConfig& config);

  // Schema version recorded in the database (0 when empty).
  Result<std::int64_t> schema_version();

  // --- keys ---
  Result<CreatedKey> create_key(const std::string& org_name, Micros now);
  Result<std::vector<ApiKeyInfo>> list_keys();
  // Revokes the key at `now`; a key revoked before stays so, and its time
  // then comes back.
  Result<std::optional<Micros>> revoke_key(const std::string& key_id, Micros now);
  // The key whose SHA-256 matches `key`, revoked or not; not_found otherwise.
  Result<ApiKeyInfo> find_key(const std::string& key);
  Result<std::int64_t> count_keys();

  // --- jobs, as the API sees them (org_id nullopt: any organization) ---
  Result<core::Job> create_job(std::int64_t org_id, const std::string& url,
                               const core::JobOptions& options, Micros now);
  Result<core::Job> get_job(const std::string& job_id, std::optional<std::int64_t> org_id);
  Result<JobPage> list_jobs(const JobFilter& filter);
  // conflict when the job is terminal.
  Result<core::Job> cancel_job(const std::string& job_id, std::optional<std::int64_t> org_id,
                               Micros now);
  // conflict when the job is not terminal. The job is gone from every read
  // once this returns; with more than delete_batch_rows events and items, its
  // rows are left to purge_deleted().
  Status delete_job(const std::string& job_id, std::optional<std::int64_t> org_id);
  // Up to `limit` items from index `offset`, ending early before the first
  // item that would take the text read (fields, details, URLs) past
  // `max_bytes` (the first item is always read) or, with `shared`, past what
  // fits there.
  Result<ResultPage> list_results(const std::string& job_id, std::int64_t limit,
                                  std::int64_t offset, std::int64_t max_bytes = k_page_bytes,
                                  SharedPageBytes* shared = nullptr);
  // Up to `limit` events after `after`, bounded in bytes as list_results()
  // is (their URLs and errors).
  Result<EventPage> list_events(const std::string& job_id, std::int64_t after,
                                std::int64_t limit, std::int64_t max_bytes = k_page_bytes,
                                SharedPageBytes* shared = nullptr);

  // --- workers ---
  // Takes the oldest job waiting for a worker (processing without a claim:
  // given back or taken back, to resume), else the oldest pending job: status
  // processing, attempts + 1, new token, lease until now + lease. nullopt
  // when there is nothing to do. A job whose row is damaged (its selectors
  // unreadable, its URL or options beyond what the API takes) fails instead,
  // and the next is taken; each such job's id and error are added to
  // `failed_damaged` if given.
  Result<std::optional<Claim>> claim_next(
      Micros now, Micros lease,
      std::vector<std::pair<std::string, std::string>>* failed_damaged = nullptr);
  // conflict when the claim was lost.
  Status renew_lease(const Claim& claim, Micros now, Micros lease);
  // Whether `claim` still holds its job (processing, same claim token): a
  // read, for a worker about to send a request for the job.
  Result<bool> holds(const Claim& claim);
  Result<ResumePoint> resume_point(const Claim& claim);
  // Stores the event, its items and the counter changes in one transaction.
  // Items beyond max_items are dropped. conflict when the claim was lost or the
  // page was already stored.
  Status record_listing_page(const Claim& claim, const ListingPageRecord& page, Micros now);
  // The job's listing pages end at `last_page`, stored before, though that
  // page has a next link (it led back to a page stored: a loop):
  // pagination_complete, and current_page is that page. conflict when the
  // claim was lost.
  Status end_pagination(const Claim& claim, std::int64_t last_page);
  Status record_detail_page(const Claim& claim, const DetailPageRecord& page, Micros now);
  // Several detail pages in one transaction: all stored, or none.
  Status record_detail_pages(const Claim& claim, const std::vector<DetailPageRecord>& pages,
                             Micros now);
  // Terminal write: completed (done/timeout) or failed (error).
  Status finish(const Claim& claim, core::CompletionReason reason,
                std::optional<std::string> error_message, Micros now);
  // Gives the job back (still processing, claim and lease cleared: waiting
  // for a worker) so another worker resumes it now.
  Status release(const Claim& claim);
  // Jobs whose lease expired go back to work (still processing, claim and
  // lease cleared: waiting for a worker), or fail after `max_attempts`, or
  // complete with timeout, dated when their time ran out, if it has (so do
  // jobs waiting for a worker). Returns how many moved.
  Result<std::int64_t> recover_expired(Micros now, std::int64_t max_attempts);

  // Ends the lease of every processing job whose holder (process_identity()
  // as written at claim) `holder_is_gone` says is dead, so recover_expired()
  // takes it back at once. Returns how many leases ended.
  Result<std::int64_t> expire_orphaned_leases(
      const std::function<bool(const std::string& holder)>& holder_is_gone);

  // Retention: deletes up to `batch` terminal jobs completed before `cutoff`
  // in one short transaction, as delete_job does (rows of big jobs left to
  // purge_deleted()). Returns how many.
  Result<std::int64_t> delete_terminal_before(Micros cutoff, std::int64_t batch);

  // Removes up to delete_batch_rows page events and result items of deleted
  // jobs (delete_job, retention) in one transaction, oldest deletion first.
  // A crash loses nothing: what is left is removed by the next call.
  Result<PurgeStep> purge_deleted();

  // unavailable when the file this connection opened has been removed or
  // replaced since: its writes would go to a file nobody will open again.
  Status check_file();

  // Copies the WAL into the database file and truncates it (at shutdown).
  Status checkpoint();
  // Transactions the group committer of this connection committed so far
  // (shared by every connection to the file configured alike); 0 without.
  std::size_t committed_batches() const;

  // This process as written into claimed_by: "host:pid:nonce/boot/pidns/start"
  // (holder.hpp).
  static const std::string& process_identity();

  // For tools and tests: the underlying connection.
  SQLite::Database& database();

 private:
  struct Impl;
  explicit JobStore(std::unique_ptr<Impl> impl);
  // One configured connection (open() without the wrapping).
  static Result<std::unique_ptr<Impl>> open_connection(const StoreConfig& config);
  std::unique_ptr<Impl> m_impl;
};

// Every key on `db`, oldest first: JobStore::list_keys, History::keys.
Result<std::vector<ApiKeyInfo>> read_keys(SQLite::Database& db);

} // namespace scrapekeep::store
