#include "scrapekeep/store/backup.hpp"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>

#include <filesystem>

#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

Status backup_to(JobStore& source, const std::string& target) {
  if (std::filesystem::exists(target)) {
    return core::Error{core::ErrorCode::invalid_argument,
                       "backup target already exists: " + target};
  }
  auto result = guarded([&]() -> Status {
    SQLite::Database copy(target, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Backup backup(copy, source.database());
    backup.executeStep(-1);
    return core::ok_status();
  });
  if (!result) {
    std::error_code ec;
    std::filesystem::remove(target, ec);
  }
  return result;
}

} // namespace scrapekeep::store
