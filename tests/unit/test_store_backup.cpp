#include <SQLiteCpp/Database.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "scrapekeep/store/backup.hpp"
#include "support/temp_dir.hpp"

using scrapekeep::testing::TempDir;
namespace store = scrapekeep::store;
namespace core = scrapekeep::core;

namespace {

std::string make_source(const TempDir& dir, int rows) {
  const std::string path = dir.file("source.db");
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("CREATE TABLE t (n INTEGER)");
  for (int i = 0; i < rows; ++i) {
    db.exec("INSERT INTO t VALUES (" + std::to_string(i) + ")");
  }
  return path;
}

// The files in `dir` but the source database's own.
std::set<std::string> names_in(const TempDir& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("source.db", 0) != 0) {
      names.insert(name);
    }
  }
  return names;
}

std::set<std::string> partial_names(const TempDir& dir) {
  std::set<std::string> found;
  for (const auto& name : names_in(dir)) {
    if (name.find(".partial-") != std::string::npos) {
      found.insert(name);
    }
  }
  return found;
}

// The default VFS, but an open of the partial copy's -wal (made when its
// check reads it: a WAL source's copy is a WAL database) fails with
// `fail_with`, or, with `signal_after`, opens and then raises that signal.
// Made the default while it lives.
class PartialWalHook {
 public:
  PartialWalHook(int fail_with, int signal_after) : m_base(sqlite3_vfs_find(nullptr)) {
    s_base = m_base;
    s_fail_with = fail_with;
    s_signal_after = signal_after;
    m_vfs = *m_base;
    m_vfs.zName = "partial-wal-hook";
    m_vfs.xOpen = open;
    sqlite3_vfs_register(&m_vfs, 1);
  }
  PartialWalHook(const PartialWalHook&) = delete;
  PartialWalHook& operator=(const PartialWalHook&) = delete;
  ~PartialWalHook() {
    sqlite3_vfs_unregister(&m_vfs);
    sqlite3_vfs_register(m_base, 1);
  }

 private:
  static int open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
                  int* out) {
    const bool hooked =
        (flags & SQLITE_OPEN_WAL) != 0 && name != nullptr && std::strstr(name, ".partial-");
    if (hooked && s_fail_with != SQLITE_OK) {
      file->pMethods = nullptr;
      return s_fail_with;
    }
    const int rc = s_base->xOpen(s_base, name, file, flags, out);
    if (hooked && s_signal_after != 0) {
      ::raise(s_signal_after);
    }
    return rc;
  }

  static inline sqlite3_vfs* s_base = nullptr;
  static inline int s_fail_with = SQLITE_OK;
  static inline int s_signal_after = 0;
  sqlite3_vfs* m_base;
  sqlite3_vfs m_vfs{};
};

// Read as an immutable file: opening a WAL database otherwise leaves a -wal
// and -shm beside it.
int rows_in(const std::string& path) {
  SQLite::Database db("file:" + path + "?immutable=1", SQLite::OPEN_READONLY | SQLite::OPEN_URI);
  return db.execAndGet("SELECT count(*) FROM t").getInt();
}

// Runs `body` in a child process, which exits with what it returns (unless
// a signal ends it first); the child's pid.
pid_t in_child(const std::function<int()>& body) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::_exit(body());
  }
  return child;
}

// Waits for `child` and checks that signal `sig` ended it.
void check_ended_by(pid_t child, int sig) {
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == sig);
}

}  // namespace

TEST_CASE("backup_to gives the copy its name only once it is whole", "[store][backup]") {
  TempDir dir;
  SQLite::Database source(make_source(dir, 50), SQLite::OPEN_READWRITE);
  const std::string target = dir.file("copy.db");
  int checked = 0;
  auto done = store::backup_to(source, target, [&]() -> core::Status {
    ++checked;
    CHECK_FALSE(std::filesystem::exists(target));
    const auto partial = partial_names(dir);
    REQUIRE(partial.size() == 1);
    CHECK(partial.begin()->rfind("copy.db.partial-", 0) == 0);
    CHECK(rows_in(dir.file(*partial.begin())) == 50);
    return core::ok_status();
  });
  REQUIRE(done);
  CHECK(checked == 1);
  CHECK(rows_in(target) == 50);
  CHECK(names_in(dir) == std::set<std::string>{"copy.db"});
}

TEST_CASE("a backup refused after copying leaves nothing behind", "[store][backup]") {
  TempDir dir;
  SQLite::Database source(make_source(dir, 5), SQLite::OPEN_READWRITE);
  const std::string target = dir.file("copy.db");
  auto done = store::backup_to(source, target, [] {
    return core::Status(core::Error{core::ErrorCode::unavailable, "changed meanwhile"});
  });
  REQUIRE_FALSE(done);
  CHECK(done.error().message == "changed meanwhile");
  CHECK(names_in(dir).empty());
}

TEST_CASE("a target created while the copy is made is not overwritten", "[store][backup]") {
  TempDir dir;
  SQLite::Database source(make_source(dir, 5), SQLite::OPEN_READWRITE);
  const std::string target = dir.file("copy.db");
  auto done = store::backup_to(source, target, [&] {
    std::FILE* f = std::fopen(target.c_str(), "w");
    std::fputs("someone else's", f);
    std::fclose(f);
    return core::ok_status();
  });
  REQUIRE_FALSE(done);
  CHECK(done.error().code == core::ErrorCode::invalid_argument);
  CHECK(done.error().message == "backup target already exists: " + target);
  CHECK(scrapekeep::testing::read_file(target) == "someone else's");
  CHECK(partial_names(dir).empty());
}

TEST_CASE("a backup stopped by a signal leaves neither the target nor its partial copy",
          "[store][backup]") {
  TempDir dir;
  const std::string source_path = make_source(dir, 20);
  const std::string target = dir.file("copy.db");
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    INFO("signal " << sig);
    const pid_t child = in_child([&] {
      // The signal arrives while the copy is being made, as a Ctrl-C would.
      SQLite::Database source(source_path, SQLite::OPEN_READWRITE);
      (void)store::backup_to(source, target, [sig] {
        ::raise(sig);
        return core::ok_status();
      });
      return 0;  // not reached when the signal ends the process
    });
    check_ended_by(child, sig);
    CHECK(names_in(dir).empty());
  }
}

TEST_CASE("a signal ignored when the backup began (nohup) stays ignored", "[store][backup]") {
  TempDir dir;
  const std::string source_path = make_source(dir, 20);
  const std::string target = dir.file("copy.db");
  const pid_t child = in_child([&] {
    ::signal(SIGHUP, SIG_IGN);  // as nohup leaves it: the terminal closing
    SQLite::Database source(source_path, SQLite::OPEN_READWRITE);
    const auto done = store::backup_to(source, target, [] {
      ::raise(SIGHUP);
      return core::ok_status();
    });
    return done ? 0 : 3;
  });
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(names_in(dir) == std::set<std::string>{"copy.db"});
}

TEST_CASE("backup_to says when the target's name is too long", "[store][backup]") {
  TempDir dir;
  SQLite::Database source(make_source(dir, 1), SQLite::OPEN_READWRITE);
  const std::string target = dir.file(std::string(300, 'a') + ".db");
  auto done = store::backup_to(source, target);
  REQUIRE_FALSE(done);
  CHECK(done.error().message == "cannot create " + target + ": the name is too long");
}

TEST_CASE("backup_to says when the target's name leaves no room for the partial copy's suffix",
          "[store][backup]") {
  TempDir dir;
  SQLite::Database source(make_source(dir, 1), SQLite::OPEN_READWRITE);
  const std::string name = std::string(247, 'a') + ".db";  // 250 bytes: fits alone
  const std::string target = dir.file(name);
  auto done = store::backup_to(source, target);
  REQUIRE_FALSE(done);
  CHECK(done.error().message ==
        "cannot create " + target +
            ": the name is too long (at most 240 bytes: the copy is written as "
            "NAME.partial-XXXXXX)");
  CHECK(names_in(dir).empty());
}

TEST_CASE("a backup stopped by a signal while its copy is checked leaves no -wal or -shm",
          "[store][backup]") {
  // The copy of a WAL database is one: reading it for its check makes a -wal
  // and a -shm beside the partial copy, which the signal's handler left.
  TempDir dir;
  const std::string source_path = make_source(dir, 20);
  const std::string target = dir.file("copy.db");
  const pid_t child = in_child([&] {
    SQLite::Database source(source_path, SQLite::OPEN_READWRITE);
    PartialWalHook hook(SQLITE_OK, SIGTERM);
    (void)store::backup_to(source, target);
    return 0;  // not reached when the signal ends the process
  });
  check_ended_by(child, SIGTERM);
  CHECK(names_in(dir).empty());
}

TEST_CASE("a copy its check cannot read is a failed backup not a damaged database",
          "[store][backup]") {
  // The check opens the copy's -wal and maps its -shm: a full disk (or no
  // inode left) fails that, which said the database and its copy were damaged.
  TempDir dir;
  SQLite::Database source(make_source(dir, 20), SQLite::OPEN_READWRITE);
  const std::string target = dir.file("copy.db");
  store::BackupCopy copy;
  {
    PartialWalHook hook(SQLITE_CANTOPEN, 0);
    auto done = store::backup_to(source, target);
    if (done) {
      copy = *done;
    }
    INFO((done ? "problems: " + (copy.problems.empty() ? "" : copy.problems.front())
               : done.error().message));
    CHECK_FALSE(done);
    CHECK(copy.problems.empty());
  }
  CHECK(names_in(dir).empty());
}

TEST_CASE("a backup whose source stays locked fails and publishes no empty copy",
          "[store][backup]") {
  // sqlite3_backup_step() returns SQLITE_BUSY or SQLITE_LOCKED, it does not
  // throw them: a copy that got no page would pass its check (an empty
  // database is sound) and be published as the backup.
  TempDir dir;
  const std::string path = dir.file("source.db");
  {
    SQLite::Database made(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    made.exec("CREATE TABLE t (n INTEGER)");
    made.exec("INSERT INTO t VALUES (1)");
  }
  SQLite::Database locker(path, SQLite::OPEN_READWRITE);
  locker.exec("BEGIN EXCLUSIVE");
  SQLite::Database source(path, SQLite::OPEN_READWRITE);  // no busy timeout
  const std::string target = dir.file("copy.db");
  auto done = store::backup_to(source, target);
  locker.exec("ROLLBACK");
  INFO((done ? std::string("published, problems: ") +
                   std::to_string(done->problems.size())
             : done.error().message));
  CHECK_FALSE(done);
  CHECK(names_in(dir).empty());
}
