#pragma once
// JSON views of stored values, field for field as API.md lists them.

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/http/api_error.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

Json job_view(const core::Job& job);
// The progress object in API.md's field order, as JSON text written directly
// (the server's hot path: building a Json costs more than the rest of the
// answer), byte for byte what dumping progress_view() gives.
std::string progress_json(const core::Progress& progress);
// The same object as a Json (parsed from progress_json, for `inspect`).
Json progress_view(const core::Progress& progress);
Json result_item_view(const store::ResultItem& item);
Json event_view(const store::PageEvent& event);

// JSON text as the server writes it (UTF-8 that is not valid is replaced).
std::string json_text(const Json& value);

// Appends `rows` to `out` as a JSON array, each row written by `view` and
// freed once written: a page's rows and its text are never both whole twice.
template <typename Row, typename View>
void append_json_array(std::string& out, std::vector<Row>& rows, View view) {
  out += '[';
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += json_text(view(rows[i]));
    rows[i] = Row{};
  }
  out += ']';
}

// The end of a page of a list: `,"total":T,"limit":L,"offset":O}`.
std::string page_tail(std::int64_t total, std::int64_t limit, std::int64_t offset);

} // namespace scrapekeep::http
