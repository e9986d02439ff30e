#pragma once
// How a row of `jobs` maps to core::Job: the one column list and reader that
// the job store and the read-only history share.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>

#include "scrapekeep/core/job.hpp"

namespace scrapekeep::store {

// Which job columns a read fills: all, or only those progress is derived from.
// The index jobs_progress (migrations/0002) holds exactly the latter, so a
// progress read never visits the table (nor parses the selectors, most of the
// cost of reading a job). The others read as NULL: no selectors, 0 for timeout
// and attempts, no claim token or lease.
enum class JobColumns { all, progress };

// The job columns in read_job_row()'s order, each prefixed with `table`
// ("" or "j." in a join), comma-separated, NULL for those `which` leaves out.
std::string job_columns(const std::string& table = "", JobColumns which = JobColumns::all);

std::optional<core::Micros> opt_int(const SQLite::Column& c);
std::optional<std::string> opt_text(const SQLite::Column& c);

// The last selectors document parsed: jobs read in a row mostly share theirs,
// and parsing it is most of the cost of reading a job.
struct SelectorsCache {
  std::string text;
  std::optional<core::Selectors> value;  // nullopt: `text` is not readable
};

// The bytes of the texts in a job row that its creator sets at will (url,
// selectors, error_message), with the job columns starting at column
// `first`: what bounds a page of jobs in memory.
std::int64_t job_row_text_bytes(SQLite::Statement& q, int first);

// Reads the job columns starting at column `i`, leaving `i` just past them.
// A NULL selectors column (JobColumns::progress) leaves the job's selectors empty.
core::Job read_job_row(SQLite::Statement& q, int& i, SelectorsCache* cache = nullptr);

}  // namespace scrapekeep::store
