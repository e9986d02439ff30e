#pragma once
// How a row of `jobs` maps to core::Job: the one column list and reader that
// the job store and the read-only history share.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>

#include "scrapekeep/core/job.hpp"

namespace scrapekeep::store {

// The job columns in read_job_row()'s order, each prefixed with `table`
// ("" or "j." in a join), comma-separated.
std::string job_columns(const std::string& table = "");

std::optional<core::Micros> opt_int(const SQLite::Column& c);
std::optional<std::string> opt_text(const SQLite::Column& c);

// The last selectors document parsed: jobs read in a row mostly share theirs,
// and parsing it is most of the cost of reading a job.
struct SelectorsCache {
  std::string text;
  core::Selectors value;
};

// Reads the job columns starting at column `i`, leaving `i` just past them.
core::Job read_job_row(SQLite::Statement& q, int& i, SelectorsCache* cache = nullptr);

}  // namespace scrapekeep::store
