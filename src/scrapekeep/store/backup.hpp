#pragma once
// Online backup: a consistent copy of a live database.

#include <functional>
#include <string>
#include <vector>

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
//
// SQLite's backup copies pages as they are, damaged ones too: the copy is
// checked (PRAGMA quick_check) before it takes its name, and what that finds
// is returned. A damaged copy is kept all the same: it is no worse than its
// source, and may be all that is left of it. A check that fails for another
// reason (a full disk, no memory) fails the backup, as a copy that cannot be
// written does.
struct BackupCopy {
  std::vector<std::string> problems;  // integrity_problems() of the copy: none when sound
};
core::Result<BackupCopy> backup_to(SQLite::Database& source, const std::string& target,
                                   const std::function<core::Status()>& accept = {});

} // namespace scrapekeep::store
