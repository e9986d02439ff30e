#include "scrapekeep/store/backup.hpp"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

core::Status backup_to(SQLite::Database& source, const std::string& target) {
  // A link counts, pointing anywhere or nowhere: a dangling one would be
  // written through, creating a file where it points.
  std::error_code link_ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(target, link_ec))) {
    return core::Error{core::ErrorCode::invalid_argument,
                       "backup target already exists: " + target};
  }
  // Said here, naming the target: SQLite's error would read as if the source
  // could not be read.
  const std::filesystem::path folder = std::filesystem::path(target).parent_path();
  std::error_code ec;
  if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
    return core::Error{core::ErrorCode::not_found,
                       "cannot create " + target + ": " +
                           (std::filesystem::exists(folder, ec)
                                ? folder.string() + " is not a folder"
                                : "its folder " + folder.string() + " does not exist")};
  }
  std::unique_ptr<SQLite::Database> opened;
  try {
    opened =
        std::make_unique<SQLite::Database>(target, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  } catch (const SQLite::Exception& e) {
    if ((e.getErrorCode() & 0xff) != SQLITE_CANTOPEN) {
      return translate(e);
    }
    return core::Error{core::ErrorCode::unavailable,
                       "cannot create " + target + ": its folder cannot be written to"};
  }
  auto result = guarded([&]() -> core::Status {
    SQLite::Database& copy = *opened;
    SQLite::Backup backup(copy, source);
    backup.executeStep(-1);
    return core::ok_status();
  });
  if (!result) {
    // Closed first: the copy's rollback journal (a full disk leaves one) goes too.
    opened.reset();
    std::filesystem::remove(target, ec);
    std::filesystem::remove(target + "-journal", ec);
  }
  return result;
}

} // namespace scrapekeep::store
