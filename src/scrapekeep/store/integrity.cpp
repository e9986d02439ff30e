#include "scrapekeep/store/integrity.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <string_view>

namespace scrapekeep::store {

void integrity_problems(SQLite::Database& db, bool quick,
                        const std::function<void(const std::string&)>& fn) {
  SQLite::Statement q(db, quick ? "PRAGMA quick_check" : "PRAGMA integrity_check");
  while (q.executeStep()) {
    const std::string row = q.getColumn(0).getString();
    if (row == "ok") {
      continue;
    }
    std::string_view rest = row;
    while (!rest.empty()) {
      const std::size_t end = rest.find('\n');
      const std::string_view line = rest.substr(0, end);
      if (!line.empty() && line.rfind("*** in database ", 0) != 0) {
        fn(std::string(line));
      }
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
  }
}

}  // namespace scrapekeep::store
