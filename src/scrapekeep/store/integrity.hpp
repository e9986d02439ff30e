#pragma once
// SQLite's own check of a database file's structure, one problem at a time.

#include <functional>
#include <string>

namespace SQLite {
class Database;
}

namespace scrapekeep::store {

// Runs PRAGMA integrity_check (quick_check when `quick`) on `db` and calls
// `fn` with each problem it finds, one line each ("Page 10: free space
// corruption"): SQLite puts several in one row, after a header line
// ("*** in database main ***") that is left out. Nothing when the file is
// sound. SQLite stops after 100 problems. Throws SQLite::Exception.
void integrity_problems(SQLite::Database& db, bool quick,
                        const std::function<void(const std::string&)>& fn);

}  // namespace scrapekeep::store
