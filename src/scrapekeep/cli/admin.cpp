// scrapekeep migrate, scrapekeep backup, scrapekeep cancel

#include <filesystem>
#include <iostream>
#include <string>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/core/job.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/store/backup.hpp"
#include "scrapekeep/store/migrations.hpp"

namespace scrapekeep::cli {

namespace {

struct AdminOptions {
  std::string db = "scrapekeep.db";
  std::string to;
  std::string job_id;
};

int run_migrate(const AdminOptions& o) {
  auto store = open_store_or_report(store::StoreConfig{.path = o.db});
  if (!store) {
    return 1;
  }
  auto version = store->schema_version();
  if (!version) {
    return fail(version.error().message);
  }
  std::cout << "Database " << core::printable(o.db) << " is at schema version " << *version << "\n";
  return 0;
}

// What says whether a file changed: its size and time, and whether a -wal or
// -journal is beside it.
struct FileState {
  std::uintmax_t size = 0;
  std::filesystem::file_time_type written{};
  bool wal = false;
  bool journal = false;
  bool operator==(const FileState& other) const {
    return size == other.size && written == other.written && wal == other.wal &&
           journal == other.journal;
  }
};

FileState file_state(const std::string& path) {
  std::error_code ec;
  FileState state;
  state.size = std::filesystem::file_size(store::uri_file(path), ec);
  state.written = std::filesystem::last_write_time(store::uri_file(path), ec);
  const std::string file = store::database_file(path);  // a link's target
  state.wal = std::filesystem::exists(file + "-wal", ec);
  state.journal = std::filesystem::exists(file + "-journal", ec);
  return state;
}

int run_backup(const AdminOptions& o) {
  // Read as inspect reads it: a file at rest as an immutable snapshot, with
  // nothing created beside it, and one in a read-only folder too. But a copy
  // must be whole: one that would miss a -wal's transactions is refused, and
  // one of a snapshot is checked against the file after (a snapshot takes no
  // lock: a process that opened the file meanwhile may have changed it).
  // SQLite keeps its own files beside the database (those of a link's
  // target): a copy written under one of their names would be taken for one.
  // Compared as absolute paths, links resolved: a name that does not exist
  // yet stays relative under weakly_canonical alone.
  const auto resolved = [](const std::string& path) {
    std::error_code ec;
    auto full = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    return ec ? std::filesystem::path(path) : full;
  };
  const auto target = resolved(o.to);
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (target == resolved(store::database_file(o.db) + suffix)) {
      return fail("backup failed: " + o.to + " is the name of the database's own " + suffix +
                  " file; back up to another name");
    }
  }
  const FileState before = file_state(o.db);
  auto source = store::History::open(o.db);
  if (!source) {
    return fail(source.error().message);
  }
  if (const std::uintmax_t wal = (*source)->unread_wal_bytes(); wal > 0) {
    return fail("backup failed: " + unread_wal_error(o.db, wal, "back up the copy"));
  }
  auto done = store::backup_to((*source)->database(), o.to, [&]() -> core::Status {
    if ((*source)->snapshot() && !(file_state(o.db) == before)) {
      return core::Error{core::ErrorCode::unavailable,
                         "another process opened the database while it was copied, so the copy "
                         "may mix old and new pages and was removed: run backup again"};
    }
    return core::ok_status();
  });
  if (!done) {
    return fail("backup failed: " + done.error().message);
  }
  if (const auto& problems = done->problems; !problems.empty()) {
    // Kept (it may be all that is left of the data), but no backup to rely on.
    return fail("backup written to " + o.to +
                ", but the database is damaged and so is the copy: " + problems.front() +
                (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)"
                                     : std::string()) +
                "; scrapekeep inspect --db " + o.to + " check lists them");
  }
  std::cout << "Backed up " << core::printable(o.db) << " to " << core::printable(o.to) << "\n";
  return 0;
}

// As POST /v1/scrape/jobs/{job_id}/cancel, for a job of any organization: a
// pending job is cancelled at once; a processing one too, and its worker (in
// any process on the file) stops within a quarter of a second.
int run_cancel(const AdminOptions& o) {
  auto store = open_store_or_report(store::StoreConfig{.path = o.db, .create = false});
  if (!store) {
    return 1;
  }
  auto job = store->cancel_job(o.job_id, std::nullopt, core::SystemClock().now());
  if (!job) {
    return fail("cannot cancel " + o.job_id + ": " + job.error().message);
  }
  std::cout << "Cancelled job " << core::printable(job->job_id) << "\n";
  return 0;
}

} // namespace

void add_admin_commands(CLI::App& app, Action& action) {
  auto opts = std::make_shared<AdminOptions>();
  auto* migrate = app.add_subcommand("migrate", "Apply pending schema migrations");
  add_path_option(*migrate, "--db", opts->db, "Database file")->required();
  migrate->callback([&action, opts] { action = [opts] { return run_migrate(*opts); }; });

  auto* backup = app.add_subcommand("backup", "Copy a consistent snapshot of the database");
  add_path_option(*backup, "--db", opts->db, "Database file")->required();
  add_path_option(*backup, "--to", opts->to, "Backup file to create")->required();
  backup->callback([&action, opts] { action = [opts] { return run_backup(*opts); }; });

  auto* cancel = app.add_subcommand("cancel", "Cancel a pending or processing job");
  add_path_option(*cancel, "--db", opts->db, "Database file")->required();
  cancel->add_option("JOB_ID", opts->job_id, "The job's id (job_...)")->required();
  cancel->callback([&action, opts] { action = [opts] { return run_cancel(*opts); }; });
}

} // namespace scrapekeep::cli
