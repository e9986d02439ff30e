// scrapekeep keys: the real binary, on a database file of its own.

#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"
#include "support/child_process.hpp"
#include "support/read_only_dir.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::store::JobStore;
using scrapekeep::store::StoreConfig;
using scrapekeep::testing::in_read_only_dir;
using scrapekeep::testing::run_program;
using scrapekeep::testing::RunResult;
using scrapekeep::testing::TempDir;

RunResult create_key(const TempDir& dir, const std::string& db, const std::string& org) {
  return run_program(dir.path().string(),
                     {SCRAPEKEEP_BINARY, "keys", "create", "--db", db, "--org", org});
}

RunResult keys(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> all = {SCRAPEKEEP_BINARY, "keys"};
  all.insert(all.end(), args.begin(), args.end());
  return run_program(dir.path().string(), all);
}

}  // namespace

TEST_CASE("keys create refuses an empty organization name as bad usage", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  const std::string k_refused =
      "scrapekeep: --org: the organization name must not be empty (see scrapekeep keys create "
      "--help)\n";

  SECTION("on a new file, which is not created") {
    for (const std::string org : {"", " ", " \t "}) {
      auto r = create_key(dir, db, org);
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());
      CHECK(r.err == k_refused);
      CHECK_FALSE(std::filesystem::exists(db));
    }
  }
  SECTION("on a database that has a key, which keeps only that key") {
    auto made = create_key(dir, db, "demo");
    REQUIRE(made.exit_code == 0);
    auto r = create_key(dir, db, "  ");
    CHECK(r.exit_code == 2);
    CHECK(r.err == k_refused);
    auto opened = JobStore::open(StoreConfig{.path = db, .read_only = true});
    REQUIRE(opened);
    auto keys = (*opened)->list_keys();
    REQUIRE(keys);
    REQUIRE(keys->size() == 1);
    CHECK((*keys)[0].org_name == "demo");
  }
}

TEST_CASE("keys create trims the organization name and refuses control characters",
          "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  const std::string k_refused =
      "scrapekeep: --org: the organization name must not contain control characters (see "
      "scrapekeep keys create --help)\n";
  // U+0085 (NEL) and U+009F are C1 controls; U+00A0 (no-break space) is not one.
  for (const std::string org : {"ac\tme\n", "ac\nme", "a\x01" "b", "ac\x7fme", " \v ",
                                "de\xc2\x85mo", "x\xc2\x9f"}) {
    auto r = create_key(dir, db, org);
    INFO(org);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == k_refused);
    CHECK_FALSE(std::filesystem::exists(db));
  }

  for (const std::string org : {"\xff\xfe", "ac\xc3me", "\xed\xa0\x80"}) {
    auto r = create_key(dir, db, org);
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          "scrapekeep: --org: the organization name must be UTF-8 text (see scrapekeep keys "
          "create --help)\n");
    CHECK_FALSE(std::filesystem::exists(db));
  }
  const auto long_name = create_key(dir, db, std::string(201, 'n'));
  CHECK(long_name.exit_code == 2);
  CHECK(long_name.err ==
        "scrapekeep: --org: the organization name must be at most 200 bytes (see scrapekeep keys "
        "create --help)\n");
  CHECK_FALSE(std::filesystem::exists(db));
  REQUIRE(create_key(dir, db, std::string(200, 'n')).exit_code == 0);
  std::filesystem::remove(db);
  REQUIRE(create_key(dir, db, "caf\xc3\xa9\xc2\xa0" "bar").exit_code == 0);
  std::filesystem::remove(db);

  auto made = create_key(dir, db, " \t acme \r\n");
  REQUIRE(made.exit_code == 0);
  CHECK(made.out.find(" for organization acme (shown once; store it now):\n") != std::string::npos);
  // The same organization as one created without the padding, listed on one line.
  REQUIRE(create_key(dir, db, "acme").exit_code == 0);
  auto listed = keys(dir, {"list", "--db", db});
  CHECK(listed.exit_code == 0);
  const auto lines = std::count(listed.out.begin(), listed.out.end(), '\n');
  CHECK(lines == 3);
  auto opened = JobStore::open(StoreConfig{.path = db, .read_only = true});
  REQUIRE(opened);
  auto found = (*opened)->list_keys();
  REQUIRE(found);
  REQUIRE(found->size() == 2);
  CHECK((*found)[0].org_name == "acme");
  CHECK((*found)[0].org_id == (*found)[1].org_id);
}

TEST_CASE("keys list and revoke: key ids, no part of a key, and no database made by a typo",
          "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  auto made = create_key(dir, db, "demo");
  REQUIRE(made.exit_code == 0);
  // A new database is said to be one, on the line before the key's two.
  const std::string k_new_db = "Created a new database, " + db + " (there was none at that path)\n";
  REQUIRE(made.out.rfind(k_new_db, 0) == 0);
  // "Created API key KEY_ID for organization demo (...):\nKEY\n"
  const std::size_t id_at = made.out.find("key_");
  const std::string key_id = made.out.substr(id_at, made.out.find(' ', id_at) - id_at);
  const std::size_t key_at = made.out.find('\n', k_new_db.size()) + 1;
  const std::string key = made.out.substr(key_at, made.out.find('\n', key_at) - key_at);
  REQUIRE(key.rfind("ak_", 0) == 0);
  CHECK(made.out.size() == key_at + key.size() + 1);
  // A second key in the same file: no such line.
  auto second = create_key(dir, db, "demo");
  REQUIRE(second.exit_code == 0);
  CHECK(second.out.rfind("Created API key key_", 0) == 0);
  // An empty file is no database yet, as worker and inspect read it.
  const std::string empty = dir.file("empty.db");
  std::ofstream{empty};
  auto into_empty = create_key(dir, empty, "demo");
  REQUIRE(into_empty.exit_code == 0);
  CHECK(into_empty.out.rfind("Created a new database, " + empty + " (there was none at that path)\n", 0) == 0);

  auto listed = keys(dir, {"list", "--db", db});
  CHECK(listed.exit_code == 0);
  CHECK(listed.out.rfind("KEY_ID", 0) == 0);
  CHECK(listed.out.find(key_id) != std::string::npos);
  CHECK(listed.out.find("active") != std::string::npos);
  CHECK(listed.out.find(key.substr(0, 11)) == std::string::npos);

  auto revoked = keys(dir, {"revoke", "--db", db, key_id});
  CHECK(revoked.exit_code == 0);
  CHECK(revoked.out == "Revoked " + key_id + "\n");
  CHECK(keys(dir, {"list", "--db", db}).out.find("revoked ") != std::string::npos);
  // Again: said to be revoked already, with when.
  auto again = keys(dir, {"revoke", "--db", db, key_id});
  CHECK(again.exit_code == 0);
  CHECK(again.out.rfind(key_id + " was revoked already, at ", 0) == 0);
  CHECK(again.out.find("+00:00\n") != std::string::npos);
  // The key itself in place of its id: bad usage, and the key is not echoed.
  auto by_key = keys(dir, {"revoke", "--db", db, key});
  CHECK(by_key.exit_code == 2);
  CHECK(by_key.out.empty());
  CHECK(by_key.err.find("that is an API key, not its id") != std::string::npos);
  CHECK(by_key.err.find(key) == std::string::npos);
  CHECK(by_key.err.find(key.substr(3, 8)) == std::string::npos);
  // Nor with a space before it, nor as an argument too many.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"revoke", "--db", db, " " + key},
        std::vector<std::string>{"revoke", "--db", db, key_id, key}}) {
    auto r = keys(dir, args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(key.substr(3, 8)) == std::string::npos);
  }

  for (const std::string& command : {std::string("list"), std::string("revoke")}) {
    const std::string missing = dir.file("typo.db");
    std::vector<std::string> args = {command, "--db", missing};
    if (command == "revoke") {
      args.push_back(key_id);
    }
    auto r = keys(dir, args);
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: database file does not exist: " + missing + "\n");
    CHECK_FALSE(std::filesystem::exists(missing));

    // An empty file is refused and left empty, not made a database.
    const std::string empty = dir.file("empty.db");
    std::ofstream(empty).close();
    args[2] = empty;
    auto e = keys(dir, args);
    INFO(command << ": " << e.err);
    CHECK(e.exit_code == 1);
    CHECK(e.err.find("not a scrapekeep database") != std::string::npos);
    CHECK(std::filesystem::file_size(empty) == 0);
    CHECK_FALSE(std::filesystem::exists(empty + "-wal"));
  }
}

TEST_CASE("keys list reads a database it cannot write, and commands that write say what is "
          "not writable",
          "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  auto made = create_key(dir, db, "demo");
  REQUIRE(made.exit_code == 0);
  const std::size_t id_at = made.out.find("key_");
  const std::string key_id = made.out.substr(id_at, made.out.find(' ', id_at) - id_at);
  const auto ro = dir.path() / "ro";
  std::filesystem::create_directory(ro);
  const std::string copy = (ro / "copy.db").string();
  std::filesystem::copy_file(db, copy);

  // Runs `args` on the copy with its folder read-only (or `folder_mode`), as a
  // user bound by permissions.
  mode_t folder_mode = 0555;
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), SCRAPEKEEP_BINARY);
    args.insert(args.end(), {"--db", copy});
    return in_read_only_dir(
        ro,
        [&](const std::vector<std::string>& prefix) {
          std::vector<std::string> all = prefix;
          all.insert(all.end(), args.begin(), args.end());
          return run_program(dir.path().string(), all);
        },
        folder_mode);
  };
  const std::vector<std::vector<std::string>> writers = {
      {"keys", "create", "--org", "other"},
      {"keys", "revoke", key_id},
      {"migrate"},
      {"serve", "--listen", "127.0.0.1:0"},
      {"worker"}};
  const auto check_writers = [&](const std::string& not_writable) {
    for (const auto& args : writers) {
      auto r = run(args);
      if (!r) {
        return;
      }
      INFO(args[0] << " " << args.back());
      CHECK(r->exit_code == 1);
      CHECK(r->out.empty());
      CHECK(r->err == "scrapekeep: cannot write the database: " + not_writable +
                          " is not writable (permission denied)\n");
    }
  };

  SECTION("the file and its folder read-only") {
    ::chmod(copy.c_str(), 0444);
    auto listed = run({"keys", "list"});
    if (!listed) {
      return;
    }
    INFO(listed->err);
    CHECK(listed->exit_code == 0);
    CHECK(listed->err.empty());
    CHECK(listed->out.find(key_id) != std::string::npos);
    CHECK(listed->out.find("active") != std::string::npos);
    check_writers(copy);
  }
  SECTION("the folder read-only, the file writable") {
    ::chmod(copy.c_str(), 0666);
    check_writers("its folder " + ro.string());
  }
  SECTION("the file read-only in a folder anyone may write") {
    // No command leaves an empty -wal and -shm beside a file it refuses (a
    // worker looked for its tables first, which made them).
    ::chmod(copy.c_str(), 0444);
    folder_mode = 0777;
    check_writers(copy);
  }
  CHECK_FALSE(std::filesystem::exists(copy + "-wal"));
  CHECK_FALSE(std::filesystem::exists(copy + "-shm"));
  auto opened = JobStore::open(StoreConfig{.path = copy, .read_only = true});
  REQUIRE(opened);
  auto keys = (*opened)->list_keys();
  REQUIRE(keys);
  REQUIRE(keys->size() == 1);
  CHECK_FALSE((*keys)[0].revoked_at);
}

TEST_CASE("a new key that cannot be written to stdout is revoked and the command fails, as is a "
          "report", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("full.db");
  // stdout on /dev/full: every write to it fails (ENOSPC).
  const auto to_full = [&](const std::string& args) {
    return run_program(dir.path().string(),
                       {"/bin/sh", "-c", std::string("exec ") + SCRAPEKEEP_BINARY + " " + args +
                                             " > /dev/full"});
  };
  const RunResult created = to_full("keys create --db " + db + " --org lost");
  CHECK(created.exit_code == 1);
  CHECK(created.err.find(
            "scrapekeep: cannot write to standard output: the new API key was revoked (key_") !=
        std::string::npos);
  const RunResult listed = keys(dir, {"list", "--db", db});
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out.find("lost") != std::string::npos);
  CHECK(listed.out.find("revoked 20") != std::string::npos);
  CHECK(listed.out.find("active") == std::string::npos);

  // A report that cannot be written is a failure too.
  for (const std::string& report : std::vector<std::string>{
           "keys list --db " + db, "inspect --db " + db + " jobs",
           "inspect --db " + db + " stats --json", "inspect --db " + db + " export --format csv"}) {
    INFO(report);
    const RunResult r = to_full(report);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "scrapekeep: cannot write to standard output\n");
  }
  // serve's first key likewise: the server does not start with a key nobody saw.
  const std::string fresh = dir.file("fresh.db");
  const RunResult served = to_full("serve --db " + fresh + " --listen 127.0.0.1:0 --workers 0");
  CHECK(served.exit_code == 1);
  CHECK(served.err.find("cannot write to standard output: the new API key") != std::string::npos);
  const RunResult fresh_keys = keys(dir, {"list", "--db", fresh});
  REQUIRE(fresh_keys.exit_code == 0);
  CHECK(fresh_keys.out.find("active") == std::string::npos);
}

TEST_CASE("a new key sent to a pipe nobody reads is revoked and the command fails, as is a "
          "report", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("piped.db");
  const std::string status = dir.file("status");
  // stdout is a pipe whose reader has exited (`true`, given half a second).
  // The shell is started by a test process that may ignore SIGPIPE, which
  // a child inherits: env gives the command SIGPIPE's default action back.
  const auto to_closed_pipe = [&](const std::string& args) {
    RunResult r = run_program(
        dir.path().string(),
        {"/bin/sh", "-c",
         "{ sleep 0.5; env --default-signal=PIPE " + std::string(SCRAPEKEEP_BINARY) + " " + args +
             "; echo $? > " + status + "; } | true"});
    std::ifstream in(status);
    in >> r.exit_code;
    return r;
  };
  const RunResult created = to_closed_pipe("keys create --db " + db + " --org piped");
  CHECK(created.exit_code == 1);
  CHECK(created.err.find(
            "scrapekeep: cannot write to standard output: the new API key was revoked (key_") !=
        std::string::npos);
  const RunResult listed = keys(dir, {"list", "--db", db});
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out.find("piped") != std::string::npos);
  CHECK(listed.out.find("active") == std::string::npos);

  const RunResult report = to_closed_pipe("keys list --db " + db);
  CHECK(report.exit_code == 1);
  CHECK(report.err == "scrapekeep: cannot write to standard output\n");
}

TEST_CASE("keys list lines up organization names that are not ASCII", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("utf8.db");
  REQUIRE(create_key(dir, db, "\xc3\x96rg \xc3\xbc").exit_code == 0);  // "Örg ü": 5 characters
  REQUIRE(create_key(dir, db, "plain").exit_code == 0);
  const RunResult listed = keys(dir, {"list", "--db", db});
  REQUIRE(listed.exit_code == 0);
  // The column after ORG starts at the same character in every line.
  std::vector<std::size_t> starts;
  std::size_t from = 0;
  while (from < listed.out.size()) {
    const std::size_t end = listed.out.find('\n', from);
    const std::string line = listed.out.substr(from, end - from);
    // Two spaces end a column: the key id and the name hold no such pair.
    const std::size_t at = line.find(line.rfind("KEY_ID", 0) == 0 ? "  CREATED" : "  20");
    REQUIRE(at != std::string::npos);
    starts.push_back(static_cast<std::size_t>(std::count_if(
        line.begin(), line.begin() + static_cast<std::ptrdiff_t>(at),
        [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; })));
    from = end + 1;
  }
  REQUIRE(starts.size() == 3);
  CHECK(starts[1] == starts[0]);
  CHECK(starts[2] == starts[0]);
}

TEST_CASE("keys commands print names as keys list shows them, and a blank KEY_ID is bad usage",
          "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  // U+202E (right-to-left override) would turn the rest of the line around.
  auto made = create_key(dir, db, "bidi\xe2\x80\xae" "abc");
  REQUIRE(made.exit_code == 0);
  CHECK(made.out.find(" for organization bidi\\u202Eabc (shown once; store it now):\n") !=
        std::string::npos);
  CHECK(made.out.find("\xe2\x80\xae") == std::string::npos);
  auto listed = keys(dir, {"list", "--db", db});
  CHECK(listed.out.find("bidi\\u202Eabc") != std::string::npos);

  for (const std::string id : {"", " ", " \t "}) {
    auto r = keys(dir, {"revoke", "--db", db, id});
    INFO("'" << id << "'");
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err ==
          "scrapekeep: KEY_ID: must be a key id, not empty or blank (see scrapekeep keys revoke "
          "--help)\n");
  }
}

TEST_CASE("keys list pads organization names to 40 characters at most", "[cli][keys]") {
  TempDir dir;
  const std::string db = dir.file("keys.db");
  REQUIRE(create_key(dir, db, std::string(200, 'n')).exit_code == 0);
  REQUIRE(create_key(dir, db, "acme").exit_code == 0);
  auto listed = keys(dir, {"list", "--db", db});
  REQUIRE(listed.exit_code == 0);
  std::istringstream lines(listed.out);
  std::string header, first, second;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  // KEY_ID (20) + 2 spaces + ORG padded to 40 + 2 spaces, then CREATED.
  CHECK(header.find("CREATED") == 64);
  CHECK(second.find("acme") == 22);
  CHECK(second.find("20", 26) == 64);
  CHECK(first.find(std::string(200, 'n')) == 22);
}
