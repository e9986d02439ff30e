#pragma once
// Online backup: a consistent copy of a live database.

#include <string>

#include "scrapekeep/core/error.hpp"

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

// Copies the database `source` is open on to a new file `target` with
// SQLite's backup API while writers go on. invalid_argument when `target`
// exists; not_found when its folder does not exist (or is a file),
// unavailable when the folder cannot be written to, each naming `target`;
// the partial file is removed on failure.
core::Status backup_to(SQLite::Database& source, const std::string& target);

} // namespace scrapekeep::store
