// tools/run: the arguments it hands to `scrapekeep serve`. The script runs
// from a copy in a temporary tree whose tools/setup does nothing and whose
// build/scrapekeep prints its arguments, one a line, so nothing is built or bound.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using scrapekeep::testing::run_program;
using scrapekeep::testing::TempDir;

void write_script(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add);
}

// The argument lines build/scrapekeep received from `tools/run args...`.
std::vector<std::string> serve_arguments(const std::vector<std::string>& args) {
  TempDir dir;
  const fs::path tools = dir.path() / "tools";
  fs::create_directories(tools);
  fs::copy_file(fs::path(SCRAPEKEEP_SOURCE_DIR) / "tools" / "run", tools / "run");
  write_script(tools / "setup", "#!/bin/sh\nexit 0\n");
  write_script(dir.path() / "build" / "scrapekeep", "#!/bin/sh\nprintf '%s\\n' \"$@\"\n");
  std::vector<std::string> argv = {(tools / "run").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_program(dir.path().string(), argv);
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

using Args = std::vector<std::string>;

}  // namespace

TEST_CASE("tools/run adds --db and --listen only when the caller gives neither", "[tools]") {
  CHECK(serve_arguments({}) ==
        Args{"serve", "--db", "./scrapekeep.db", "--listen", "127.0.0.1:8080"});
  CHECK(serve_arguments({"--workers", "4"}) ==
        Args{"serve", "--db", "./scrapekeep.db", "--listen", "127.0.0.1:8080", "--workers", "4"});
  CHECK(serve_arguments({"--listen", "127.0.0.1:9999"}) ==
        Args{"serve", "--db", "./scrapekeep.db", "--listen", "127.0.0.1:9999"});
  CHECK(serve_arguments({"--listen=127.0.0.1:9999"}) ==
        Args{"serve", "--db", "./scrapekeep.db", "--listen=127.0.0.1:9999"});
  CHECK(serve_arguments({"--db", "x.db", "--workers", "0"}) ==
        Args{"serve", "--listen", "127.0.0.1:8080", "--db", "x.db", "--workers", "0"});
  CHECK(serve_arguments({"--db=x.db"}) == Args{"serve", "--listen", "127.0.0.1:8080", "--db=x.db"});
  CHECK(serve_arguments({"--db=x.db", "--listen", "127.0.0.1:0"}) ==
        Args{"serve", "--db=x.db", "--listen", "127.0.0.1:0"});
  // Other options that merely start alike are not taken for them.
  CHECK(serve_arguments({"--dbx"}) ==
        Args{"serve", "--db", "./scrapekeep.db", "--listen", "127.0.0.1:8080", "--dbx"});
}
