#include "scrapekeep/store/backup.hpp"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "scrapekeep/store/integrity.hpp"
#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

namespace {

// The partial copy's names, for the signal handler (which may only call
// async-signal-safe functions: it unlinks them and dies of the signal): the
// copy, its -journal while it is written, and its -wal and -shm while it is
// checked (a WAL database's copy is one, and SQLite makes both to read it).
// One backup at a time per process: the command line makes one.
constexpr std::array<const char*, 3> k_side_files{"-journal", "-wal", "-shm"};
std::array<char, 4096> g_partial{};
std::array<std::array<char, 4096>, k_side_files.size()> g_partial_sides{};

extern "C" void remove_partial_and_die(int sig) {
  if (g_partial[0] != '\0') {
    ::unlink(g_partial.data());
    for (const auto& side : g_partial_sides) {
      ::unlink(side.data());
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

constexpr std::array<int, 3> k_signals{SIGINT, SIGTERM, SIGHUP};

// Holds the partial file's names for the handler while it lives; removes
// the file and its side files unless it was published.
class PartialFile {
 public:
  explicit PartialFile(std::string path) : m_path(std::move(path)) {
    // "-journal" is the longest suffix.
    if (m_path.size() + std::strlen("-journal") < g_partial.size()) {
      for (std::size_t i = 0; i < k_side_files.size(); ++i) {
        const std::string side = m_path + k_side_files[i];
        std::memcpy(g_partial_sides[i].data(), side.c_str(), side.size() + 1);
      }
      std::memcpy(g_partial.data(), m_path.c_str(), m_path.size() + 1);
      for (std::size_t i = 0; i < k_signals.size(); ++i) {
        // A signal ignored when the command began (nohup's SIGHUP, SIGINT
        // of a job a script put in the background) stays ignored.
        ::sigaction(k_signals[i], nullptr, &m_previous[i]);
        if (m_previous[i].sa_handler == SIG_IGN) {
          continue;
        }
        struct sigaction action {};
        action.sa_handler = remove_partial_and_die;
        sigemptyset(&action.sa_mask);
        m_installed[i] = ::sigaction(k_signals[i], &action, nullptr) == 0;
      }
    }
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    // Removed while the handler still stands: a signal now finds nothing left.
    if (!m_published) {
      ::unlink(m_path.c_str());
      for (const char* suffix : k_side_files) {
        ::unlink((m_path + suffix).c_str());
      }
    }
    for (std::size_t i = 0; i < k_signals.size(); ++i) {
      if (m_installed[i]) {
        ::sigaction(k_signals[i], &m_previous[i], nullptr);
      }
    }
    g_partial[0] = '\0';
  }
  const std::string& path() const { return m_path; }
  void published() { m_published = true; }

 private:
  std::string m_path;
  bool m_published = false;
  std::array<bool, k_signals.size()> m_installed{};
  std::array<struct sigaction, k_signals.size()> m_previous{};
};

// Holds k_signals back from its construction until end(): none can then
// come between the partial file's creation and its handler.
class BlockedSignals {
 public:
  BlockedSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (const int sig : k_signals) {
      sigaddset(&set, sig);
    }
    m_blocked = ::pthread_sigmask(SIG_BLOCK, &set, &m_before) == 0;
  }
  BlockedSignals(const BlockedSignals&) = delete;
  BlockedSignals& operator=(const BlockedSignals&) = delete;
  ~BlockedSignals() { end(); }
  // Those that came meanwhile are delivered now.
  void end() {
    if (m_blocked) {
      ::pthread_sigmask(SIG_SETMASK, &m_before, nullptr);
      m_blocked = false;
    }
  }

 private:
  sigset_t m_before{};
  bool m_blocked = false;
};

core::Error cannot_create(const std::string& target, int err) {
  const std::filesystem::path folder = std::filesystem::path(target).parent_path();
  const std::string shown = folder.empty() ? std::string(".") : folder.string();
  std::error_code ec;
  if (err == ENOENT || err == ENOTDIR) {
    return core::Error{core::ErrorCode::not_found,
                       "cannot create " + target + ": " +
                           (std::filesystem::exists(folder, ec)
                                ? shown + " is not a folder"
                                : "its folder " + shown + " does not exist")};
  }
  if (err == ENAMETOOLONG) {
    // A name that fits alone may not with the partial copy's suffix.
    const std::string name = std::filesystem::path(target).filename().string();
    return core::Error{core::ErrorCode::unavailable,
                       "cannot create " + target + ": the name is too long" +
                           (name.size() <= NAME_MAX && name.size() + 15 > NAME_MAX
                                ? " (at most " + std::to_string(NAME_MAX - 15) +
                                      " bytes: the copy is written as NAME.partial-XXXXXX)"
                                : std::string())};
  }
  if (err == ENOSPC || err == EDQUOT) {
    return core::Error{core::ErrorCode::unavailable,
                       "cannot create " + target + ": database or disk is full"};
  }
  return core::Error{core::ErrorCode::unavailable,
                     "cannot create " + target + ": its folder cannot be written to"};
}

// Gives `from` the name `to` unless `to` exists; false with errno set if not.
bool rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return false;
  }
  // A file system without RENAME_NOREPLACE: a hard link fails if `to` exists.
  if (::link(from.c_str(), to.c_str()) != 0) {
    return false;
  }
  ::unlink(from.c_str());
  return true;
}

void sync_folder(const std::string& target) {
  const std::filesystem::path folder = std::filesystem::path(target).parent_path();
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

core::Result<BackupCopy> backup_to(SQLite::Database& source, const std::string& target,
                                   const std::function<core::Status()>& accept) {
  // A link counts, pointing anywhere or nowhere: a dangling one would be
  // written through, creating a file where it points.
  std::error_code link_ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(target, link_ec))) {
    return core::Error{core::ErrorCode::invalid_argument,
                       "backup target already exists: " + target};
  }
  std::string name = target + ".partial-XXXXXX";
  BlockedSignals blocked;
  const int fd = ::mkstemp(name.data());
  if (fd < 0) {
    return cannot_create(target, errno);
  }
  PartialFile partial(name);
  blocked.end();
  // As SQLite would create it (mkstemp makes it 0600).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0644 & ~mask);
  ::close(fd);

  std::unique_ptr<SQLite::Database> opened;
  BackupCopy copy;
  auto result = guarded([&]() -> core::Status {
    opened = std::make_unique<SQLite::Database>(partial.path(), SQLite::OPEN_READWRITE);
    {
      // Finished before the copy is used (SQLite: not before
      // sqlite3_backup_finish).
      SQLite::Backup backup(*opened, source);
      // SQLITE_BUSY and SQLITE_LOCKED are returned, not thrown: the copy
      // then holds none or part of the pages (an empty one passes its check).
      const int step = backup.executeStep(-1);
      if (step != SQLITE_DONE) {
        throw SQLite::Exception("the backup did not copy every page", step);
      }
    }
    try {
      integrity_problems(*opened, true,
                         [&](const std::string& line) { copy.problems.push_back(line); });
    } catch (const SQLite::Exception& e) {
      // Damage the check cannot read past (the schema's own pages) is damage
      // too. Anything else (a full disk as it makes the copy's -wal and
      // -shm, no memory) says nothing of the copy: the backup fails with it.
      const int code = e.getErrorCode() & 0xff;
      if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB) {
        throw;
      }
      copy.problems.push_back(std::string("SQLite's check stopped: ") + e.getErrorStr());
    }
    return core::ok_status();
  });
  // Closed first: the copy's rollback journal (a full disk leaves one) goes with it.
  opened.reset();
  if (result && accept) {
    result = accept();
  }
  if (!result) {
    return result.error();
  }
  if (!rename_no_replace(partial.path(), target)) {
    const int err = errno;
    if (err == EEXIST) {
      return core::Error{core::ErrorCode::invalid_argument,
                         "backup target already exists: " + target};
    }
    return cannot_create(target, err);
  }
  partial.published();
  sync_folder(target);
  return copy;
}

} // namespace scrapekeep::store
