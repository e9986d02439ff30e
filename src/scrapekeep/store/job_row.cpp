#include "scrapekeep/store/job_row.hpp"

#include <algorithm>
#include <limits>
#include <string_view>

#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/store/json_codec.hpp"

namespace scrapekeep::store {

namespace {

// Every column of a job row, and whether progress reads it (the columns of
// the index jobs_progress).
struct JobColumn {
  const char* name;
  bool progress;
};
constexpr JobColumn k_job_columns[] = {
    {"job_id", true},
    {"org_id", true},
    {"status", true},
    {"url", true},
    {"timeout_s", false},
    {"max_items", true},
    {"follow_pagination", true},
    {"max_pages", true},
    {"depth", true},
    {"selectors", false},
    {"created_at", true},
    {"started_at", true},
    {"completed_at", true},
    {"completion_reason", true},
    {"error_message", true},
    {"current_page", true},
    {"pagination_complete", true},
    {"listing_pages_scraped", true},
    {"listing_pages_failed", true},
    {"detail_pages_discovered", true},
    {"detail_pages_scraped", true},
    {"detail_pages_failed", true},
    {"items_found", true},
    {"stopped_percentage", true},
    {"attempts", false},
    {"claim_token", false},
    {"lease_expires_at", false},
};

}  // namespace

std::string job_columns(const std::string& table, JobColumns which) {
  std::string list;
  for (const JobColumn& column : k_job_columns) {
    list += list.empty() ? "" : ", ";
    if (which == JobColumns::progress && !column.progress) {
      list += "NULL";
    } else {
      list += table + column.name;
    }
  }
  return list;
}

std::int64_t job_row_text_bytes(SQLite::Statement& q, int first) {
  std::int64_t bytes = 0;
  int i = first;
  for (const JobColumn& column : k_job_columns) {
    const std::string_view name = column.name;
    if (name == "url" || name == "selectors" || name == "error_message") {
      bytes += q.getColumn(i).getBytes();
    }
    ++i;
  }
  return bytes;
}

std::optional<core::Micros> opt_int(const SQLite::Column& c) {
  if (c.isNull()) {
    return std::nullopt;
  }
  return c.getInt64();
}

std::optional<std::string> opt_text(const SQLite::Column& c) {
  if (c.isNull()) {
    return std::nullopt;
  }
  return c.getString();
}

core::Job read_job_row(SQLite::Statement& q, int& i, SelectorsCache* cache) {
  core::Job j;
  j.job_id = q.getColumn(i++).getString();
  j.org_id = q.getColumn(i++).getInt64();
  j.status = core::parse_job_status(q.getColumn(i++).getText()).value_or(core::JobStatus::failed);
  j.url = q.getColumn(i++).getString();
  // Read whole and bound to int's range (a damaged row's 99999999999 is not
  // cut to its low 32 bits); claim_next fails a job outside API.md's ranges.
  const auto option = [&q, &i]() {
    return static_cast<int>(std::clamp<std::int64_t>(q.getColumn(i++).getInt64(),
                                                     std::numeric_limits<int>::min(),
                                                     std::numeric_limits<int>::max()));
  };
  j.options.timeout = option();
  j.options.max_items = option();
  j.options.follow_pagination = q.getColumn(i++).getInt64() != 0;
  j.options.max_pages = option();
  j.options.depth = option();
  if (const SQLite::Column selectors = q.getColumn(i++); !selectors.isNull()) {
    const std::string_view text(selectors.getText(), static_cast<size_t>(selectors.getBytes()));
    // A damaged value does not hide the rest of the row, nor the jobs listed with it.
    if (!cache) {
      auto read = stored_selectors(text);
      j.selectors_damaged = !read;
      j.options.selectors = read ? std::move(*read) : core::Selectors{};
    } else {
      if (cache->text != text) {
        cache->value = stored_selectors(text);
        cache->text.assign(text);
      }
      j.selectors_damaged = !cache->value;
      j.options.selectors = cache->value.value_or(core::Selectors{});
    }
  }
  // Times and counters as core::clamp_time and clamp_count bound them (a
  // damaged row's), so that nothing computed from them overflows.
  const auto time = [&q, &i]() { return core::clamp_time(q.getColumn(i++).getInt64()); };
  const auto opt_time = [&q, &i]() -> std::optional<core::Micros> {
    const SQLite::Column c = q.getColumn(i++);
    return c.isNull() ? std::nullopt : std::optional(core::clamp_time(c.getInt64()));
  };
  const auto count = [&q, &i]() { return core::clamp_count(q.getColumn(i++).getInt64()); };
  j.created_at = time();
  j.started_at = opt_time();
  j.completed_at = opt_time();
  if (auto reason = opt_text(q.getColumn(i++))) {
    j.completion_reason = core::parse_completion_reason(*reason);
  }
  j.error_message = opt_text(q.getColumn(i++));
  j.current_page = count();
  j.pagination_complete = q.getColumn(i++).getInt() != 0;
  j.counters.listing_pages_scraped = count();
  j.counters.listing_pages_failed = count();
  j.counters.detail_pages_discovered = count();
  j.counters.detail_pages_scraped = count();
  j.counters.detail_pages_failed = count();
  j.counters.items_found = count();
  if (!q.getColumn(i).isNull()) {
    j.stopped_percentage = std::clamp(q.getColumn(i).getDouble(), 0.0, 100.0);
  }
  ++i;
  j.attempts = count();
  j.claim_token = opt_text(q.getColumn(i++));
  j.lease_expires_at = opt_time();
  return j;
}

}  // namespace scrapekeep::store
