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
  ::chmod(ro.c_str(), folder_mode);
  // root ignores directory permissions: run the binary as nobody instead.
  std::vector<std::string> prefix;
  if (geteuid() == 0) {
    if (!std::filesystem::exists("/usr/bin/setpriv")) {
      ::chmod(ro.c_str(), 0755);
      WARN("running as root without setpriv: read-only directory not tested");
      return std::nullopt;
    }
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  RunResult r = run(prefix);
  ::chmod(ro.c_str(), 0755);
  if (!prefix.empty() && r.exit_code >= 126) {
    WARN("nobody cannot run " SCRAPEKEEP_BINARY ": read-only directory not tested");
    return std::nullopt;
  }
  return r;
}

} // namespace scrapekeep::testing
