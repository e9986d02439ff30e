#include "scrapekeep/cli/app.hpp"

#include <iostream>

#include "scrapekeep/cli/command.hpp"

namespace scrapekeep::cli {

int fail(const std::string& message) {
  std::cerr << "scrapekeep: " << message << "\n";
  return 1;
}

std::unique_ptr<store::JobStore> open_store_or_report(const store::StoreConfig& config) {
  auto opened = store::JobStore::open(config);
  if (!opened) {
    fail(opened.error().message);
    return nullptr;
  }
  return std::move(opened.value());
}

store::Synchronous parse_synchronous(const std::string& text) {
  return text == "full" ? store::Synchronous::full : store::Synchronous::normal;
}

int run(int argc, char** argv) {
  CLI::App app{"scrapekeep: a persistent job store for web-scraping jobs", "scrapekeep"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SCRAPEKEEP_VERSION);
  Action action;
  add_serve_command(app, action);
  add_worker_command(app, action);
  add_keys_command(app, action);
  add_inspect_command(app, action);
  add_admin_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "scrapekeep: " << e.what() << " (see scrapekeep --help)\n";
    return 2;
  }
  if (!action) {
    std::cerr << "scrapekeep: no command given (see scrapekeep --help)\n";
    return 2;
  }
  try {
    return action();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

} // namespace scrapekeep::cli
