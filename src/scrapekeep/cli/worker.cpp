// scrapekeep worker: scraper workers without the API, on a shared database.

#include <filesystem>
#include <iostream>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/cli/shutdown.hpp"
#include "scrapekeep/cli/workforce.hpp"
#include "scrapekeep/scrape/extractor.hpp"

namespace scrapekeep::cli {

namespace {

struct WorkerOptions {
  WorkOptions work{.create_db = false};
  int concurrency = 2;
};

int run_worker(const WorkerOptions& o) {
  scrape::init_libxml();
  block_shutdown_signals();
  // A worker started before the server that creates the file waits for it,
  // and says so, rather than create a database of its own: a mistyped path
  // would be a new empty database that no job ever reaches.
  if (!std::filesystem::exists(o.work.db)) {
    std::cerr << "scrapekeep: " << o.work.db
              << " does not exist yet; waiting for scrapekeep serve or scrapekeep migrate to "
                 "create it"
              << std::endl;
    while (!std::filesystem::exists(o.work.db)) {
      if (shutdown_signal_within(100)) {
        return 0;
      }
    }
  }
  core::SystemClock clock;
  auto workforce = Workforce::start(o.work, o.concurrency, clock);
  if (!workforce) {
    return 1;
  }
  std::cout << "scrapekeep " << SCRAPEKEEP_VERSION << " worker: " << o.concurrency
            << " workers on " << o.work.db << std::endl;
  await_shutdown_signal();
  workforce->stop();
  // Never creates or migrates: a file removed meanwhile stays removed.
  store::StoreConfig checkpoint_config = store_config_for(o.work);
  checkpoint_config.migrate = false;
  if (auto store = open_store_or_report(checkpoint_config)) {
    store->checkpoint();
  }
  return 0;
}

} // namespace

void add_worker_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<WorkerOptions>();
  auto* cmd = app.add_subcommand("worker", "Run scraper workers without the API");
  add_work_options(*cmd, opts->work);
  cmd->get_option("--db")->required();
  cmd->add_option("--concurrency", opts->concurrency, "Scraper workers (jobs scraped at once)")
      ->transform(whole_number(1, 64))
      ->capture_default_str();
  cmd->callback([&action, opts] { action = [opts] { return run_worker(*opts); }; });
}

} // namespace scrapekeep::cli
