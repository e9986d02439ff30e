#pragma once
// Running the built binary where a folder cannot be written, for tests of
// read-only databases. Include after Catch2 (it warns when it cannot).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace scrapekeep::testing {

// Runs `run(prefix)` with `ro` made read-only meanwhile (or given
// `folder_mode`), as a user the directory's permissions bind (the command
// goes after `prefix`); nullopt (with a warning) where that cannot be done here.
template <typename Run>
std::optional<RunResult> in_read_only_dir(const std::filesystem::path& ro, Run run,
                                          mode_t folder_mode = 0555) {
  // root ignores directory permissions: run the binary as nobody instead.
  std::vector<std::string> prefix;
  if (geteuid() == 0) {
    if (!std::filesystem::exists("/usr/bin/setpriv")) {
      WARN("running as root without setpriv: read-only directory not tested");
      return std::nullopt;
    }
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    // Asked before, of --version: the command's own end (a crash is 128 +
    // its signal) is a result to check, not a sign that nobody cannot run it.
    std::vector<std::string> probe = prefix;
    probe.insert(probe.end(), {SCRAPEKEEP_BINARY, "--version"});
    if (run_program(ro.parent_path().string(), probe).exit_code != 0) {
      WARN("nobody cannot run " SCRAPEKEEP_BINARY ": read-only directory not tested");
      return std::nullopt;
    }
  }
  ::chmod(ro.c_str(), folder_mode);
  RunResult r = run(prefix);
  ::chmod(ro.c_str(), 0755);
  return r;
}

} // namespace scrapekeep::testing
