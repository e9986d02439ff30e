#include "scrapekeep/store/sqlite_error.hpp"

#include <sqlite3.h>

namespace scrapekeep::store {

core::Error translate(const SQLite::Exception& e) {
  switch (e.getErrorCode() & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return {core::ErrorCode::unavailable,
              "database is busy (another process held it past the busy timeout): try again"};
    case SQLITE_FULL:
      return {core::ErrorCode::unavailable, k_disk_full};
    case SQLITE_READONLY:
      return {core::ErrorCode::unavailable, "database is read-only"};
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return {core::ErrorCode::unavailable, "database cannot be read or written"};
    case SQLITE_CORRUPT:
      // A file that opened as a database: one of its pages cannot be read.
      return {core::ErrorCode::internal,
              "the database file is damaged: SQLite cannot read part of it"};
    case SQLITE_NOTADB:
      return {core::ErrorCode::internal, "database file is damaged or not a database"};
    case SQLITE_CONSTRAINT:
      return {core::ErrorCode::conflict, "constraint violated"};
    default:
      return {core::ErrorCode::internal, "storage error"};
  }
}

core::Error malformed_json() {
  return {core::ErrorCode::internal, "a stored JSON value is malformed"};
}

} // namespace scrapekeep::store
