// scrapekeep worker: scraper workers without the API, on a shared database.

#include "scrapekeep/cli/command.hpp"

namespace scrapekeep::cli {

void add_worker_command(CLI::App&, Action&) {}

} // namespace scrapekeep::cli
