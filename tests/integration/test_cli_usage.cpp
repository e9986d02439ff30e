// Bad usage of any command: exit 2, one line on stderr that names what is
// wrong and the command whose --help explains it; nothing created.

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::testing::run_program;
using scrapekeep::testing::TempDir;

}  // namespace

TEST_CASE("numeric options out of range or not numbers are bad usage, said plainly", "[cli]") {
  TempDir dir;
  const std::string db = dir.file("usage.db");
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"serve", "--db", db, "--workers", "abc"},
       "scrapekeep: --workers: must be a whole number from 0 to 64, not abc (see scrapekeep "
       "serve --help)\n"},
      {{"serve", "--db", db, "--workers", "65"},
       "scrapekeep: --workers: must be a whole number from 0 to 64, not 65 (see scrapekeep "
       "serve --help)\n"},
      {{"serve", "--db", db, "--detail-concurrency", "1.5"},
       "scrapekeep: --detail-concurrency: must be a whole number from 1 to 64, not 1.5 (see "
       "scrapekeep serve --help)\n"},
      {{"serve", "--db", db, "--lease-seconds", "0.5"},
       "scrapekeep: --lease-seconds: must be a number from 1 to 3600, not 0.5 (see scrapekeep "
       "serve --help)\n"},
      {{"serve", "--db", db, "--lease-seconds", "0x10"},
       "scrapekeep: --lease-seconds: must be a number from 1 to 3600, not 0x10 (see scrapekeep "
       "serve --help)\n"},
      {{"serve", "--db", db, "--lease-seconds", " 5"},
       "scrapekeep: --lease-seconds: must be a number from 1 to 3600, not  5 (see scrapekeep "
       "serve --help)\n"},
      {{"serve", "--db", db, "--threads", "100", "--max-threads", "10"},
       "scrapekeep: --max-threads: must be at least --threads (100), not 10 (see scrapekeep "
       "serve --help)\n"},
      {{"worker", "--db", db, "--lease-seconds", "inf"},
       "scrapekeep: --lease-seconds: must be a number from 1 to 3600, not inf (see scrapekeep "
       "worker --help)\n"},
      {{"worker", "--db", db, "--concurrency", "0"},
       "scrapekeep: --concurrency: must be a whole number from 1 to 64, not 0 (see scrapekeep "
       "worker --help)\n"},
      {{"inspect", "--db", db, "stats", "--top-errors", "-1"},
       "scrapekeep: --top-errors: must be a whole number from 0 to 1000, not -1 (see "
       "scrapekeep inspect stats --help)\n"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> all = {SCRAPEKEEP_BINARY};
    all.insert(all.end(), c.args.begin(), c.args.end());
    const auto r = run_program(dir.path().string(), all);
    INFO(c.args[0] << " " << c.args[3]);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == c.err);
    CHECK_FALSE(std::filesystem::exists(db));
  }
}

TEST_CASE("a number with a leading zero means what it says in decimal, not octal", "[cli]") {
  TempDir dir;
  const std::string db = dir.file("zero.db");
  REQUIRE(run_program(dir.path().string(),
                      {SCRAPEKEEP_BINARY, "keys", "create", "--db", db, "--org", "a"})
              .exit_code == 0);
  // CLI11 alone reads 010 as 8.
  const auto r = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "inspect", "--db", db,
                                                   "jobs", "--limit", "010", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["limit"] == 10);
}

TEST_CASE("an empty or blank file path is bad usage on every command, and nothing is written",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("paths.db");
  REQUIRE(run_program(dir.path().string(),
                      {SCRAPEKEEP_BINARY, "keys", "create", "--db", db, "--org", "a"})
              .exit_code == 0);
  struct Case {
    std::vector<std::string> args;  // the path goes last, after its option
    std::string option;
    std::string command;
  };
  const std::vector<Case> cases = {
      {{"backup", "--db", db, "--to"}, "--to", "backup"},
      {{"backup", "--to", dir.file("copy.db"), "--db"}, "--db", "backup"},
      {{"migrate", "--db"}, "--db", "migrate"},
      {{"keys", "create", "--org", "a", "--db"}, "--db", "keys create"},
      {{"keys", "list", "--db"}, "--db", "keys list"},
      {{"keys", "revoke", "key_0123456789abcdef", "--db"}, "--db", "keys revoke"},
      {{"inspect", "jobs", "--db"}, "--db", "inspect jobs"},
      {{"serve", "--listen", "127.0.0.1:0", "--db"}, "--db", "serve"},
      {{"worker", "--db"}, "--db", "worker"},
  };
  const auto listing = [&] {
    std::vector<std::string> names;
    // The files but run_program's own stdout.txt and stderr.txt (" " would
    // be one, in the folder the commands run in).
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      const std::string name = entry.path().filename().string();
      if (name != "stdout.txt" && name != "stderr.txt") {
        names.push_back(name);
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = listing();
  for (const Case& c : cases) {
    for (const std::string path : {"", " ", " \t "}) {
      std::vector<std::string> all = {SCRAPEKEEP_BINARY};
      all.insert(all.end(), c.args.begin(), c.args.end());
      all.push_back(path);
      const auto r = run_program(dir.path().string(), all);
      INFO(c.command << " " << c.option << " '" << path << "'");
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());
      CHECK(r.err == "scrapekeep: " + c.option +
                         ": must name a file, not be empty or blank (see scrapekeep " +
                         c.command + " --help)\n");
      CHECK(listing() == before);
    }
  }
}

TEST_CASE("SQLite's in-memory and temporary databases are bad usage: nothing would be kept",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("mem.db");
  REQUIRE(run_program(dir.path().string(),
                      {SCRAPEKEEP_BINARY, "keys", "create", "--db", db, "--org", "a"})
              .exit_code == 0);
  // keys create printed a key for a database gone at exit, and serve served one.
  const std::vector<std::vector<std::string>> commands = {
      {"keys", "create", "--org", "a", "--db"},
      {"migrate", "--db"},
      {"serve", "--listen", "127.0.0.1:0", "--workers", "0", "--db"},
      {"worker", "--db"},
      {"backup", "--db", db, "--to"},
  };
  for (const auto& args : commands) {
    for (const std::string path :
         {":memory:", "file::memory:", "file:", "file:?mode=rwc", "file:x.db?mode=memory",
          "file:x.db?cache=shared&mode=memory", "file:x.db?mode=%6demory", "file:x.db?vfs=memdb",
          "file:%3Amemory%3A",
          // SQLite ignores the rest of a path, name or value after an
          // escaped NUL, and takes the last mode.
          "file:x.db?mode=memory%00z", "file:x.db?mode%00z=memory", "file::memory:%00z",
          "file:x.db?vfs=memdb%00", "file:x.db?mode=rwc&mode=memory"}) {
      std::vector<std::string> all = {SCRAPEKEEP_BINARY};
      all.insert(all.end(), args.begin(), args.end());
      all.push_back(path);
      const auto r = run_program(dir.path().string(), all);
      INFO(args[0] << " '" << path << "'");
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());
      CHECK(r.err.find(": must name a file, not SQLite's in-memory or temporary database (see "
                       "scrapekeep ") != std::string::npos);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
  }
  // A URI that names a file is still one.
  const auto uri = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "keys", "create", "--db",
                                                     "file:" + dir.file("uri.db"), "--org", "b"});
  CHECK(uri.exit_code == 0);
  CHECK(std::filesystem::exists(dir.file("uri.db")));
  // Nor are a mode that a later one replaces, an escaped `=` and an escaped NUL
  // ending a name other than mode.
  for (const std::string query : {"?mode=memory&mode=rwc", "?mode%3Dmemory", "?mo%00de=memory"}) {
    INFO(query);
    std::filesystem::remove(dir.file("uri.db"));
    const auto r =
        run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "keys", "create", "--db",
                                          "file:" + dir.file("uri.db") + query, "--org", "b"});
    CHECK(r.exit_code == 0);
    CHECK(std::filesystem::exists(dir.file("uri.db")));
  }
}

TEST_CASE("an option written with '=' and nothing after it is bad usage, not a taker of the "
          "next argument",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("eq.db");
  // CLI11 took the next argument for the value: a database called --help.
  const auto migrate = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db=", "--help"});
  CHECK(migrate.exit_code == 2);
  CHECK(migrate.err == "scrapekeep: --db= gives no value (see scrapekeep migrate --help)\n");
  CHECK_FALSE(std::filesystem::exists("--help"));  // run_program runs it in this folder
  const auto keys = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "keys", "create", "--org",
                                                      "acme", "--db=", "--org=x"});
  CHECK(keys.exit_code == 2);
  CHECK(keys.out.empty());
  CHECK(keys.err == "scrapekeep: --db= gives no value (see scrapekeep keys create --help)\n");
  CHECK_FALSE(std::filesystem::exists("--org=x"));
  const auto to = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "backup", "--db", db, "--to="});
  CHECK(to.exit_code == 2);
  CHECK(to.err == "scrapekeep: --to= gives no value (see scrapekeep backup --help)\n");
  // After "--" it is an argument like any other.
  CHECK(run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db", db, "--", "--x="})
            .err.find("gives no value") == std::string::npos);
}

TEST_CASE("an option where a file or organization name goes is bad usage, not a name", "[cli]") {
  TempDir dir;
  // CLI11 took the option for the value: a database called --help, an
  // organization called --db.
  const auto migrate =
      run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db", "--help"});
  CHECK(migrate.exit_code == 2);
  CHECK(migrate.out.empty());
  CHECK(migrate.err ==
        "scrapekeep: --db: must name a file, not an option (write ./--help for a file so named) "
        "(see scrapekeep migrate --help)\n");
  CHECK_FALSE(std::filesystem::exists("--help"));  // run_program runs it in this folder
  const auto keys = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "keys", "create", "--db",
                                                      dir.file("k.db"), "--org", "--db"});
  CHECK(keys.exit_code == 2);
  CHECK(keys.out.empty());
  CHECK(keys.err ==
        "scrapekeep: --org: the organization name must not begin with --, as options do (see "
        "scrapekeep keys create --help)\n");
  CHECK_FALSE(std::filesystem::exists(dir.file("k.db")));
  // Written as a path, such a file is one.
  CHECK(run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db", dir.file("-x")})
            .exit_code == 0);
  CHECK(std::filesystem::exists(dir.file("-x")));
}

TEST_CASE("an option before the name of the command it belongs to is said to be misplaced",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("o.db");
  struct Case {
    std::vector<std::string> args;
    std::string said;
  };
  for (const Case& c : std::vector<Case>{
           {{"keys", "--db", db, "list"},
            "--db goes after the command's name: scrapekeep keys list --db ... (see scrapekeep "
            "keys list --help)"},
           {{"--db", db, "serve"},
            "--db goes after the command's name: scrapekeep serve --db ... (see scrapekeep "
            "serve --help)"},
           {{"keys", "--org=a", "create", "--db", db},
            "--org goes after the command's name: scrapekeep keys create --org ... (see "
            "scrapekeep keys create --help)"}}) {
    std::vector<std::string> all = {SCRAPEKEEP_BINARY};
    all.insert(all.end(), c.args.begin(), c.args.end());
    const auto r = run_program(dir.path().string(), all);
    INFO(c.said);
    CHECK(r.exit_code == 2);
    CHECK(r.err == "scrapekeep: " + c.said + "\n");
  }
  CHECK_FALSE(std::filesystem::exists(db));
  // inspect takes --db before its subcommand: what is wrong there is said.
  const auto r = run_program(dir.path().string(),
                             {SCRAPEKEEP_BINARY, "inspect", "--db", db, "jobs", "--bogus"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "scrapekeep: The following argument was not expected: --bogus (see scrapekeep "
                 "inspect jobs --help)\n");
}

TEST_CASE("a --db written as an SQLite URI leaves no file named after the URI", "[cli]") {
  TempDir dir;
  const auto r = run_program(
      dir.path().string(),
      {"/bin/sh", "-c",
       "cd '" + dir.path().string() + "' && exec " SCRAPEKEEP_BINARY " migrate --db file:u.db"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(std::filesystem::exists(dir.file("u.db")));  // SQLite opens URIs (Debian's build)
  CHECK_FALSE(std::filesystem::exists(dir.file("file:u.db")));
}

TEST_CASE("a --db written as an absolute SQLite URI opens the file it names on every command",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("u.db");
  for (const std::string& uri : {"file:" + db, "file://" + db, "file:" + db + "?cache=private"}) {
    INFO(uri);
    const auto migrated =
        run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db", uri});
    INFO(migrated.err);
    CHECK(migrated.exit_code == 0);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"inspect", "--db", uri, "jobs"},
          std::vector<std::string>{"inspect", "--db", uri, "check"},
          std::vector<std::string>{"keys", "create", "--db", uri, "--org", "o"}}) {
      std::vector<std::string> all = {SCRAPEKEEP_BINARY};
      all.insert(all.end(), args.begin(), args.end());
      const auto r = run_program(dir.path().string(), all);
      INFO(args[0] << " " << args[args.size() - 1] << ": " << r.err);
      CHECK(r.exit_code == 0);
      // keys create says nothing of a new database: the file was there.
      CHECK(r.err.find("new database") == std::string::npos);
    }
  }
  CHECK(std::filesystem::exists(db));
  const auto missing = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "inspect", "--db",
                                                         "file:" + dir.file("no.db"), "jobs"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err ==
        "scrapekeep: database file does not exist: file:" + dir.file("no.db") + "\n");
}

TEST_CASE("inspect and backup read a --db written as an SQLite URI as they read its file",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("u.db");
  REQUIRE(run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "migrate", "--db", db})
              .exit_code == 0);
  const auto size = std::filesystem::file_size(db);
  for (const std::string& uri : {"file:" + db, "file://" + db}) {
    INFO(uri);
    // A file at rest is read as an immutable snapshot: nothing is made beside it.
    const auto stats =
        run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "inspect", "--db", uri, "stats"});
    INFO(stats.err);
    CHECK(stats.exit_code == 0);
    CHECK(stats.out.find("Database  " + uri + " (" + std::to_string(size / 1024) + " KiB") !=
          std::string::npos);
    const auto copied = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "backup", "--db",
                                                          uri, "--to", dir.file("copy.db")});
    INFO(copied.err);
    CHECK(copied.exit_code == 0);
    std::filesystem::remove(dir.file("copy.db"));
    for (const char* suffix : {"-wal", "-shm"}) {
      CHECK_FALSE(std::filesystem::exists(db + suffix));
    }
  }
}

TEST_CASE("a --db that is a loop of symbolic links is said to be one", "[cli]") {
  TempDir dir;
  std::filesystem::create_symlink(dir.file("b"), dir.file("a"));
  std::filesystem::create_symlink(dir.file("a"), dir.file("b"));
  for (const char* command : {"migrate", "inspect", "backup", "keys"}) {
    std::vector<std::string> all = {SCRAPEKEEP_BINARY, command};
    const std::string name = command;
    if (name == "keys") {
      all.push_back("list");
    }
    all.insert(all.end(), {"--db", dir.file("a")});
    if (name == "inspect") {
      all.push_back("jobs");
    } else if (name == "backup") {
      all.insert(all.end(), {"--to", dir.file("copy.db")});
    }
    const auto r = run_program(dir.path().string(), all);
    INFO(command);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: " + dir.file("a") +
                       " is a loop of symbolic links (or more than 40 in a row), not a database "
                       "file\n");
  }
}

TEST_CASE("usage errors CLI11 words its own way are said plainly", "[cli]") {
  TempDir dir;
  const std::string db = dir.file("plain.db");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "scrapekeep: no command given (see scrapekeep --help)\n"},
      {{"keys"}, "scrapekeep: no command given to scrapekeep keys (see scrapekeep keys --help)\n"},
      {{"serve", "--db", db, "--db", db},
       "scrapekeep: --db is given more than once (see scrapekeep serve --help)\n"},
      {{"inspect", "--db", db, "progress", "X", "--at"},
       "scrapekeep: --at needs a value (see scrapekeep inspect progress --help)\n"},
      // Arguments not expected are listed in the order given (CLI11 2.1 reverses them).
      {{"serve", "--db", db, "a", "b", "c"},
       "scrapekeep: The following arguments were not expected: a b c (see scrapekeep serve "
       "--help)\n"},
      {{"migrate", "--db", db, "--bogus", "1"},
       "scrapekeep: The following arguments were not expected: --bogus 1 (see scrapekeep migrate "
       "--help)\n"},
      {{"keys", "list", "--db", db, "one two", "three"},
       "scrapekeep: The following arguments were not expected: one two three (see scrapekeep "
       "keys list --help)\n"},
  };
  for (const auto& [args, err] : cases) {
    std::vector<std::string> all = {SCRAPEKEEP_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    const auto r = run_program(dir.path().string(), all);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == err);
    CHECK_FALSE(std::filesystem::exists(db));
  }
}

TEST_CASE("--help and --version that cannot be written fail, as other output does", "[cli]") {
  TempDir dir;
  for (const std::string flag : {"--help", "--version"}) {
    INFO(flag);
    const auto r = run_program(dir.path().string(),
                               {"/bin/sh", "-c", std::string(SCRAPEKEEP_BINARY) + " " + flag + " >/dev/full"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: cannot write to standard output\n");
    const auto ok = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, flag});
    CHECK(ok.exit_code == 0);
    CHECK_FALSE(ok.out.empty());
  }
  // Anything beside --version is bad usage, not ignored.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{SCRAPEKEEP_BINARY, "--version", "extra"},
        std::vector<std::string>{SCRAPEKEEP_BINARY, "--version", "--help"}}) {
    const auto r = run_program(dir.path().string(), args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "scrapekeep: --version takes nothing else (see scrapekeep --help)\n");
  }
}

TEST_CASE("serve on a --listen host that names no address says so, and makes no database",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("listen.db");
  for (const std::string host : {"999.1.1.1", " 127.0.0.1", "no-such-host.invalid"}) {
    INFO(host);
    const auto r = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "serve", "--db", db,
                                                     "--listen", host + ":0", "--workers", "0"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: cannot listen on " + host + ":0 (" + host +
                       " is neither an IP address nor a host name that resolves)\n");
    CHECK_FALSE(std::filesystem::exists(db));
  }
}

TEST_CASE("serve --listen takes a port of decimal digits only, as the other numbers", "[cli]") {
  TempDir dir;
  const std::string db = dir.file("port.db");
  // A host that names no address: a form taken for a port fails to listen (exit 1), not
  // serves.
  for (const std::string listen : {"999.1.1.1:+0", "999.1.1.1: 0", "999.1.1.1:-0", "999.1.1.1:0x10",
                                   "999.1.1.1:65536", "999.1.1.1:", "999.1.1.1", ":0"}) {
    INFO(listen);
    const auto r = run_program(dir.path().string(), {SCRAPEKEEP_BINARY, "serve", "--db", db,
                                                     "--listen", listen, "--workers", "0"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "scrapekeep: --listen must be HOST:PORT, got " + listen +
                       " (see scrapekeep serve --help)\n");
    CHECK_FALSE(std::filesystem::exists(db));
  }
}

TEST_CASE("serve --threads alone above the default --max-threads raises it, not bad usage",
          "[cli]") {
  TempDir dir;
  const std::string db = dir.file("threads.db");
  // The listen address fails after the options are taken: exit 1, not 2.
  const auto r = run_program(dir.path().string(),
                             {SCRAPEKEEP_BINARY, "serve", "--db", db, "--threads", "1000",
                              "--listen", "999.1.1.1:0", "--workers", "0"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot listen on 999.1.1.1:0") != std::string::npos);
}
