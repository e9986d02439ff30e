#include "scrapekeep/store/migrations.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

int latest_schema_version() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

namespace {

// What the migrations up to `version` make: each table with its columns,
// each trigger with its SQL and each index with its table and SQL (none for
// those SQLite makes for a UNIQUE or PRIMARY KEY), from the migrations
// applied to an empty in-memory database, once per version.
struct IndexAt {
  std::string table;
  std::optional<std::string> sql;
  bool operator==(const IndexAt&) const = default;
};
struct SchemaAt {
  std::map<std::string, std::vector<std::string>> tables;
  std::map<std::string, std::string> triggers;
  std::map<std::string, IndexAt> indexes;
};

IndexAt index_at(SQLite::Statement& row) {
  return IndexAt{row.getColumn(1).getString(),
                 row.getColumn(2).isNull()
                     ? std::nullopt
                     : std::optional<std::string>(row.getColumn(2).getString())};
}

const SchemaAt& schema_at(int version) {
  static std::mutex mutex;
  static std::map<int, SchemaAt> built;
  std::lock_guard lock(mutex);
  if (const auto it = built.find(version); it != built.end()) {
    return it->second;
  }
  SQLite::Database scratch(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  for (const Migration& m : embedded_migrations()) {
    if (m.version <= version) {
      scratch.exec(m.sql);
    }
  }
  SchemaAt schema;
  SQLite::Statement triggers(scratch, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'");
  while (triggers.executeStep()) {
    schema.triggers[triggers.getColumn(0).getString()] = triggers.getColumn(1).getString();
  }
  SQLite::Statement indexes(scratch,
                            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'");
  while (indexes.executeStep()) {
    schema.indexes[indexes.getColumn(0).getString()] = index_at(indexes);
  }
  auto& tables = schema.tables;
  SQLite::Statement names(scratch,
                          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                          "'sqlite\\_%' ESCAPE '\\'");
  while (names.executeStep()) {
    const std::string table = names.getColumn(0).getString();
    SQLite::Statement info(scratch, "SELECT name FROM pragma_table_info(?)");
    info.bind(1, table);
    std::vector<std::string>& columns = tables[table];
    while (info.executeStep()) {
      columns.push_back(info.getColumn(0).getString());
    }
  }
  return built.emplace(version, std::move(schema)).first->second;
}

} // namespace

core::Result<std::int64_t> recorded_schema_version(SQLite::Database& db) {
  auto version = guarded([&]() -> core::Result<std::int64_t> {
    if (db.tableExists("schema_migrations")) {
      // `q` stays stepped (not reset) until the checks below are done: its
      // read transaction keeps them on the snapshot the version came from,
      // so a process creating or migrating the file meanwhile (0004 drops a
      // column) is not taken for a damaged file.
      SQLite::Statement q(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      q.executeStep();
      const std::int64_t version = q.getColumn(0).getInt64();
      if (version == 0) {
        // No migration recorded: a database being made (the table comes
        // first), or a hand-edited one whose tables are all there.
        SQLite::Statement other(db,
                                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name "
                                "NOT IN ('schema_migrations', 'sqlite_sequence')");
        other.executeStep();
        if (other.getColumn(0).getInt() > 0) {
          return core::Error{core::ErrorCode::invalid_argument,
                             "the file is not a scrapekeep database it can read: its "
                             "schema_migrations table records no migration, yet it has tables"};
        }
      }
      if (version < 0) {
        // No migration is numbered below 1: not a file scrapekeep made, and
        // none of the checks below would look at its tables (a view named
        // jobs would make every read run for ever).
        return core::Error{core::ErrorCode::invalid_argument,
                           "the file is not a scrapekeep database it can read: its "
                           "schema_migrations table records version " +
                               std::to_string(version) + ", which no migration has"};
      }
      if (version > latest_schema_version()) {
        return version;
      }
      // Each table the migrations up to this version made must be a table (a
      // view of that name, a hostile file's, could make a read run for ever)
      // with each of their columns: a file that lacks one (hand-edited) is
      // refused here, by name, rather than failing every read later. At
      // version 0 there are none, and no trigger either: one on
      // schema_migrations would run on every migration recorded.
      const SchemaAt& schema = schema_at(static_cast<int>(version));
      for (const auto& [table, columns] : schema.tables) {
        const std::string refused =
            "the file is not a scrapekeep database it can read: its table " + table;
        SQLite::Statement t(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
        t.bind(1, table);
        if (!t.executeStep()) {
          return core::Error{core::ErrorCode::invalid_argument,
                             refused + " is missing or is not a table"};
        }
        std::set<std::string> present;
        SQLite::Statement info(db, "SELECT name FROM pragma_table_info(?)");
        info.bind(1, table);
        while (info.executeStep()) {
          present.insert(info.getColumn(0).getString());
        }
        for (const std::string& column : columns) {
          if (!present.contains(column)) {
            return core::Error{core::ErrorCode::invalid_argument,
                               refused + " has no column " + column};
          }
        }
      }
      // A trigger runs on scrapekeep's own writes: one it did not make (or
      // changed) could delete jobs and events, or run for ever, under them.
      std::set<std::string> found;
      SQLite::Statement t(db,
                          "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'");
      while (t.executeStep()) {
        const std::string name = t.getColumn(0).getString();
        const auto it = schema.triggers.find(name);
        if (it == schema.triggers.end() || it->second != t.getColumn(2).getString()) {
          return core::Error{
              core::ErrorCode::invalid_argument,
              "the file is not a scrapekeep database it can read: its trigger " + name + " on " +
                  t.getColumn(1).getString() +
                  " is not one scrapekeep made (it would run on scrapekeep's writes)"};
        }
        found.insert(name);
      }
      for (const auto& [name, sql] : schema.triggers) {
        if (!found.contains(name)) {
          return core::Error{core::ErrorCode::invalid_argument,
                             "the file is not a scrapekeep database it can read: its trigger " +
                                 name + " is missing"};
        }
      }
      // Its indexes are what keeps a page from being counted twice (the
      // UNIQUE ones) and what the progress read takes a job's counters from
      // (jobs_progress, read alone): one dropped or changed (its columns
      // swapped) would count twice or show other columns' values. An index
      // of the user's own is no harm and stays.
      SQLite::Statement i(db,
                          "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND "
                          "name = ?");
      for (const auto& [name, made] : schema.indexes) {
        i.reset();
        i.bind(1, name);
        if (!i.executeStep()) {
          return core::Error{core::ErrorCode::invalid_argument,
                             "the file is not a scrapekeep database it can read: its index " +
                                 name + " is missing"};
        }
        if (!(index_at(i) == made)) {
          return core::Error{core::ErrorCode::invalid_argument,
                             "the file is not a scrapekeep database it can read: its index " +
                                 name + " is not the one scrapekeep made"};
        }
      }
      return version;
    }
    SQLite::Statement q(db, "SELECT COUNT(*) FROM sqlite_master");
    q.executeStep();
    if (q.getColumn(0).getInt() != 0) {
      return core::Error{core::ErrorCode::invalid_argument,
                         "the file is not a scrapekeep database"};
    }
    return 0;
  });
  // SQLite says "not a database" or "corrupt" on the first read, or (as
  // internal "storage error") that a header field is beyond what it reads,
  // such as a schema format number from the future.
  if (!version && version.error().code == core::ErrorCode::internal) {
    // The file's own path (the connection may have been opened by URI).
    const char* path = sqlite3_db_filename(db.getHandle(), "main");
    return unreadable_database(path != nullptr ? path : db.getFilename());
  }
  return version;
}

std::string uri_file(const std::string& path) {
  if (path.rfind("file:", 0) != 0) {
    return path;
  }
  std::string rest = path.substr(5);
  if (rest.rfind("//", 0) == 0) {
    const auto slash = rest.find('/', 2);
    rest = slash == std::string::npos ? std::string() : rest.substr(slash);
  }
  rest = rest.substr(0, rest.find_first_of("?#"));
  std::string out;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (const std::optional<char> c = core::percent_escape_at(rest, i)) {
      // SQLite ignores the rest of the path after an escaped NUL.
      if (*c == '\0') {
        break;
      }
      out += *c;
      i += 2;
    } else {
      out += rest[i];
    }
  }
  return out;
}

std::optional<core::Error> not_a_regular_file(const std::string& given) {
  // A URI (SQLite opens them) names its file after "file:".
  const std::string path = uri_file(given);
  if (path.empty()) {
    return std::nullopt;
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec == std::errc::too_many_symbolic_link_levels) {
    return core::Error{core::ErrorCode::invalid_argument,
                       path + " is a loop of symbolic links (or more than 40 in a row), not a "
                              "database file"};
  }
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    if (std::filesystem::is_directory(status)) {
      return core::Error{core::ErrorCode::invalid_argument,
                         path + " is a directory, not a database file"};
    }
    return core::Error{core::ErrorCode::invalid_argument,
                       path + " is not a regular file (a FIFO, socket or device), not a "
                              "database file"};
  }
  // SQLite opens these beside the file it opens and would wait on a FIFO
  // for ever as well.
  const std::string file = database_file(path);
  for (const char* suffix : {"-journal", "-wal", "-shm"}) {
    const std::string side = file + suffix;
    const auto side_status = std::filesystem::status(side, ec);
    if (!ec && std::filesystem::exists(side_status) &&
        !std::filesystem::is_regular_file(side_status)) {
      return core::Error{core::ErrorCode::invalid_argument,
                         side + " is not a regular file (a directory, FIFO, socket or device), "
                                "where SQLite keeps the database's " +
                             std::string(suffix + 1) + " file: remove it"};
    }
  }
  return std::nullopt;
}

std::string database_file(const std::string& path) {
  std::filesystem::path file = uri_file(path);
  std::error_code ec;
  // As the kernel does, at most 40 links in a row (a loop ends there).
  for (int hops = 0; hops < 40 && std::filesystem::is_symlink(file, ec); ++hops) {
    const std::filesystem::path target = std::filesystem::read_symlink(file, ec);
    if (ec) {
      break;
    }
    file = target.is_absolute() ? target : file.parent_path() / target;
  }
  return file.string();
}

std::optional<core::Error> not_writable(const std::string& given) {
  // The file, its -wal and -shm and their folder are those of the link's target.
  const std::string path = database_file(given);
  const auto refused = [](const std::string& what) {
    return core::Error{core::ErrorCode::unavailable,
                       "cannot write the database: " + what + " is not writable (" +
                           core::lower_ascii(std::strerror(errno)) + ")"};
  };
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (exists && ::access(path.c_str(), W_OK) != 0) {
    return refused(path);
  }
  if (!exists || !std::filesystem::exists(path + "-wal", ec) ||
      !std::filesystem::exists(path + "-shm", ec)) {
    std::string folder = std::filesystem::path(path).parent_path().string();
    if (folder.empty()) {
      folder = ".";
    }
    if (::access(folder.c_str(), W_OK | X_OK) != 0) {
      return refused("its folder " + folder);
    }
  }
  return std::nullopt;
}

std::string no_scrapekeep_tables() {
  return "the file is not a scrapekeep database: it has no tables (a copy made without its "
         "-wal file may have none yet)";
}

core::Error unreadable_database(const std::string& path) {
  char header[16] = {};
  std::ifstream file(path, std::ios::binary);
  file.read(header, sizeof header);
  if (file.gcount() == sizeof header && std::memcmp(header, "SQLite format 3", 16) == 0) {
    return core::Error{core::ErrorCode::invalid_argument,
                       "the database file is damaged: SQLite cannot read it (database disk image "
                       "is malformed)"};
  }
  return core::Error{core::ErrorCode::invalid_argument,
                     "the file is not a scrapekeep database (not an SQLite database at all)"};
}

core::Status migrate(SQLite::Database& db, long long now_micros) {
  return guarded([&]() -> core::Status {
    {
      // Takes the write lock first so that two processes migrating at once
      // apply each migration once.
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      auto version = recorded_schema_version(db);
      if (!version) {
        return version.error();
      }
      if (*version > latest_schema_version()) {
        return core::Error{core::ErrorCode::invalid_argument,
                           "database schema version " + std::to_string(*version) +
                               " is newer than this binary (" +
                               std::to_string(latest_schema_version()) + "); upgrade scrapekeep"};
      }
      db.exec(k_schema_migrations_table);
      tx.commit();
    }
    for (const Migration& m : embedded_migrations()) {
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement seen(db, "SELECT 1 FROM schema_migrations WHERE version = ?");
      seen.bind(1, m.version);
      if (seen.executeStep()) {
        continue;
      }
      try {
        db.exec(m.sql);
      } catch (const SQLite::Exception& e) {
        // A hostile or hand-edited file: its schema_migrations skips a
        // version whose tables or indexes it has ("index ... already exists").
        if ((e.getErrorCode() & 0xff) != SQLITE_ERROR) {
          throw;
        }
        return core::Error{core::ErrorCode::invalid_argument,
                           std::string("migration ") + m.name +
                               " cannot be applied to this database (" + e.what() +
                               "): its schema_migrations table does not match its tables"};
      }
      SQLite::Statement rec(db,
                            "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES (?, ?, ?)");
      rec.bind(1, m.version);
      rec.bind(2, m.name);
      rec.bind(3, static_cast<int64_t>(now_micros));
      rec.exec();
      tx.commit();
    }
    return core::ok_status();
  });
}

} // namespace scrapekeep::store
