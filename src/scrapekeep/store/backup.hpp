#pragma once
// Online backup: a consistent copy of a live database.

#include <string>

#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::store {

// Copies `source` to a new file `target` with SQLite's backup API while
// writers go on. invalid_argument when `target` exists; not_found when its
// folder does not exist (or is a file), unavailable when the folder cannot be
// written to, each naming `target`; the partial file is removed on failure.
Status backup_to(JobStore& source, const std::string& target);

} // namespace scrapekeep::store
