// scrapekeep worker: scraper workers without the API, on a shared database.

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <filesystem>
#include <iostream>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/cli/shutdown.hpp"
#include "scrapekeep/cli/workforce.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/store/migrations.hpp"

namespace scrapekeep::cli {

namespace {

struct WorkerOptions {
  WorkOptions work{.create_db = false};
  int concurrency = 2;
};

// Whether `path` is yet to be made a database: missing, or an SQLite file
// with no tables (empty: serve or migrate has created it and not yet
// committed its first migration, or a stray empty file). Anything else,
// an error included, is for the store to open or report.
bool not_made_yet(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(store::uri_file(path), error)) {
    return !error;
  }
  try {
    // Made once the first migration is recorded: migrate() commits the
    // empty schema_migrations table before it. A file being made is locked
    // by its maker meanwhile (its journal mode, its first tables).
    SQLite::Database db(path, SQLite::OPEN_READONLY, 2000);
    return db.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name <> 'schema_migrations'")
                   .getInt() == 0 &&
           (!db.tableExists("schema_migrations") ||
            db.execAndGet("SELECT COUNT(*) FROM schema_migrations").getInt() == 0);
  } catch (const SQLite::Exception& e) {
    return (e.getErrorCode() & 0xff) == SQLITE_BUSY;  // still being made: wait on
  } catch (const std::exception&) {
    return false;
  }
}

int run_worker(const WorkerOptions& o) {
  raise_open_file_limit();
  scrape::init_libxml();
  block_shutdown_signals();
  // Refused at once, as every command refuses it: opening a FIFO to look for
  // its tables would block until something writes to it, deaf to signals.
  if (auto refused = store::not_a_regular_file(o.work.db)) {
    return fail(refused->message);
  }
  // Refused before looking for its tables below: that read would leave an
  // empty -wal and -shm beside a file it cannot write.
  if (std::error_code error; std::filesystem::exists(store::uri_file(o.work.db), error)) {
    if (auto refused = store::not_writable(o.work.db)) {
      return fail(refused->message);
    }
  }
  // A worker started before the server that creates the file waits for it,
  // and says so, rather than create a database of its own: a mistyped path
  // would be a new empty database that no job ever reaches. A folder that
  // does not exist cannot get one (serve and migrate refuse it): said at once.
  if (not_made_yet(o.work.db)) {
    // The file a URI names (file:/abs/x.db): its folder is that file's.
    const std::string file = store::uri_file(o.work.db);
    const std::filesystem::path folder = std::filesystem::absolute(file).parent_path();
    std::error_code error;
    if (!std::filesystem::is_directory(folder, error)) {
      return fail("cannot wait for " + o.work.db + ": its folder " + folder.string() +
                  " does not exist");
    }
    say(o.work.db +
        (std::filesystem::exists(file, error) ? " has no tables yet" : " does not exist yet") +
        "; waiting for scrapekeep serve or scrapekeep migrate to create it");
    while (not_made_yet(o.work.db)) {
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
            << (o.concurrency == 1 ? " worker on " : " workers on ") << core::printable(o.work.db)
            << std::endl;
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
  cmd->get_option("--db")->required()->default_str("");  // no default shown: it must be given
  cmd->add_option("--concurrency", opts->concurrency, "Scraper workers (jobs scraped at once)")
      ->transform(whole_number(1, 64))
      ->capture_default_str();
  cmd->callback([&action, opts] { action = [opts] { return run_worker(*opts); }; });
}

} // namespace scrapekeep::cli
