// scrapekeep migrate, scrapekeep backup

#include <iostream>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/store/backup.hpp"

namespace scrapekeep::cli {

namespace {

struct AdminOptions {
  std::string db = "scrapekeep.db";
  std::string to;
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
  std::cout << "Database " << o.db << " is at schema version " << *version << "\n";
  return 0;
}

int run_backup(const AdminOptions& o) {
  // Read as inspect reads it: a file at rest as an immutable snapshot, with
  // nothing created beside it, and one in a read-only folder too.
  auto source = open_history_or_report(o.db);
  if (!source) {
    return 1;
  }
  auto done = store::backup_to(source->database(), o.to);
  if (!done) {
    return fail("backup failed: " + done.error().message);
  }
  std::cout << "Backed up " << o.db << " to " << o.to << "\n";
  return 0;
}

} // namespace

void add_admin_commands(CLI::App& app, Action& action) {
  auto opts = std::make_shared<AdminOptions>();
  auto* migrate = app.add_subcommand("migrate", "Apply pending schema migrations");
  migrate->add_option("--db", opts->db, "Database file")->required();
  migrate->callback([&action, opts] { action = [opts] { return run_migrate(*opts); }; });

  auto* backup = app.add_subcommand("backup", "Copy a consistent snapshot of the database");
  backup->add_option("--db", opts->db, "Database file")->required();
  backup->add_option("--to", opts->to, "Backup file to create")->required();
  backup->callback([&action, opts] { action = [opts] { return run_backup(*opts); }; });
}

} // namespace scrapekeep::cli
