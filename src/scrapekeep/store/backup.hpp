#pragma once
// Online backup: a consistent copy of a live database.

#include <functional>
#include <string>

#include "scrapekeep/core/error.hpp"

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

// Copies the database `source` is open on to a new file `target` with
// SQLite's backup API while writers go on. The copy is written under a name
// of its own beside `target` (`target.partial-XXXXXX`) and takes the name
// `target` only once it is whole and `accept` (if given) returns ok, so an
// interrupted backup never leaves a file under `target`; the partial file
// is removed on failure and on SIGINT, SIGTERM or SIGHUP (not SIGKILL; one
// the process ignores, as under nohup, stays ignored).
// invalid_argument when `target` exists (or comes to exist meanwhile);
// not_found when its folder does not exist (or is a file), unavailable when
// the folder cannot be written to or the name is too long, each naming `target`.
core::Status backup_to(SQLite::Database& source, const std::string& target,
                       const std::function<core::Status()>& accept = {});

} // namespace scrapekeep::store
