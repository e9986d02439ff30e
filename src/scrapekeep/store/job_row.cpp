#include "scrapekeep/store/job_row.hpp"

#include <string_view>

#include "scrapekeep/store/json_codec.hpp"

namespace scrapekeep::store {

namespace {

constexpr const char* k_job_columns[] = {"job_id",
                                         "org_id",
                                         "status",
                                         "url",
                                         "timeout_s",
                                         "max_items",
                                         "follow_pagination",
                                         "max_pages",
                                         "depth",
                                         "selectors",
                                         "created_at",
                                         "started_at",
                                         "completed_at",
                                         "completion_reason",
                                         "error_message",
                                         "current_page",
                                         "pagination_complete",
                                         "listing_pages_scraped",
                                         "listing_pages_failed",
                                         "detail_pages_discovered",
                                         "detail_pages_scraped",
                                         "detail_pages_failed",
                                         "items_found",
                                         "stopped_percentage",
                                         "attempts",
                                         "claim_token",
                                         "lease_expires_at"};

}  // namespace

std::string job_columns(const std::string& table, Selectors selectors) {
  std::string list;
  for (const char* column : k_job_columns) {
    list += list.empty() ? "" : ", ";
    if (selectors == Selectors::skip && std::string_view(column) == "selectors") {
      list += "NULL";
    } else {
      list += table + column;
    }
  }
  return list;
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
  j.options.timeout = q.getColumn(i++).getInt();
  j.options.max_items = q.getColumn(i++).getInt();
  j.options.follow_pagination = q.getColumn(i++).getInt() != 0;
  j.options.max_pages = q.getColumn(i++).getInt();
  j.options.depth = q.getColumn(i++).getInt();
  if (const SQLite::Column selectors = q.getColumn(i++); !selectors.isNull()) {
    const char* text = selectors.getText();
    const auto size = static_cast<size_t>(selectors.getBytes());
    if (!cache) {
      j.options.selectors = selectors_from_json(Json::parse(text, text + size));
    } else {
      if (cache->text.size() != size || cache->text.compare(0, size, text, size) != 0) {
        cache->value = selectors_from_json(Json::parse(text, text + size));
        cache->text.assign(text, size);
      }
      j.options.selectors = cache->value;
    }
  }
  j.created_at = q.getColumn(i++).getInt64();
  j.started_at = opt_int(q.getColumn(i++));
  j.completed_at = opt_int(q.getColumn(i++));
  if (auto reason = opt_text(q.getColumn(i++))) {
    j.completion_reason = core::parse_completion_reason(*reason);
  }
  j.error_message = opt_text(q.getColumn(i++));
  j.current_page = q.getColumn(i++).getInt64();
  j.pagination_complete = q.getColumn(i++).getInt() != 0;
  j.counters.listing_pages_scraped = q.getColumn(i++).getInt64();
  j.counters.listing_pages_failed = q.getColumn(i++).getInt64();
  j.counters.detail_pages_discovered = q.getColumn(i++).getInt64();
  j.counters.detail_pages_scraped = q.getColumn(i++).getInt64();
  j.counters.detail_pages_failed = q.getColumn(i++).getInt64();
  j.counters.items_found = q.getColumn(i++).getInt64();
  if (!q.getColumn(i).isNull()) {
    j.stopped_percentage = q.getColumn(i).getDouble();
  }
  ++i;
  j.attempts = q.getColumn(i++).getInt64();
  j.claim_token = opt_text(q.getColumn(i++));
  j.lease_expires_at = opt_int(q.getColumn(i++));
  return j;
}

}  // namespace scrapekeep::store
