#pragma once
// How a row of `jobs` maps to core::Job: the one column list and reader that
// the job store and the read-only history share.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>

#include "scrapekeep/core/job.hpp"

namespace scrapekeep::store {

// Whether a read parses the job's selectors: progress does not need them, and
// parsing them is most of the cost of reading a job.
enum class Selectors { read, skip };

// The job columns in read_job_row()'s order, each prefixed with `table`
// ("" or "j." in a join), comma-separated. With Selectors::skip a NULL stands
// in for the selectors column and read_job_row() leaves them empty.
std::string job_columns(const std::string& table = "", Selectors selectors = Selectors::read);

std::optional<core::Micros> opt_int(const SQLite::Column& c);
std::optional<std::string> opt_text(const SQLite::Column& c);

// The last selectors document parsed: jobs read in a row mostly share theirs,
// and parsing it is most of the cost of reading a job.
struct SelectorsCache {
  std::string text;
  core::Selectors value;
};

// Reads the job columns starting at column `i`, leaving `i` just past them.
// A NULL selectors column (Selectors::skip) leaves the job's selectors empty.
core::Job read_job_row(SQLite::Statement& q, int& i, SelectorsCache* cache = nullptr);

}  // namespace scrapekeep::store
