#include "scrapekeep/http/views.hpp"

#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::http {

namespace {

Json time_or_null(const std::optional<core::Micros>& at) {
  return at ? Json(core::format_timestamp(*at)) : Json(nullptr);
}

template <typename T>
Json or_null(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json reason_or_null(const std::optional<core::CompletionReason>& reason) {
  return reason ? Json(core::to_string(*reason)) : Json(nullptr);
}

} // namespace

Json job_view(const core::Job& job) {
  const core::JobCounters& c = job.counters;
  return Json{{"job_id", job.job_id},
              {"status", core::to_string(job.status)},
              {"url", job.url},
              {"options", store::to_json(job.options)},
              {"created_at", core::format_timestamp(job.created_at)},
              {"started_at", time_or_null(job.started_at)},
              {"completed_at", time_or_null(job.completed_at)},
              {"completion_reason", reason_or_null(job.completion_reason)},
              {"error_message", or_null(job.error_message)},
              {"counters",
               Json{{"listing_pages_scraped", c.listing_pages_scraped},
                    {"listing_pages_failed", c.listing_pages_failed},
                    {"detail_pages_discovered", c.detail_pages_discovered},
                    {"detail_pages_scraped", c.detail_pages_scraped},
                    {"detail_pages_failed", c.detail_pages_failed},
                    {"items_found", c.items_found}}},
              {"attempts", job.attempts}};
}

Json progress_view(const core::Progress& p) {
  return Json{{"job_id", p.job_id},
              {"status", core::to_string(p.status)},
              {"url", p.url},
              {"current_page", p.current_page},
              {"total_pages_scraped", p.total_pages_scraped},
              {"total_properties_found", p.total_properties_found},
              {"progress_percentage", p.progress_percentage},
              {"pagination_complete", p.pagination_complete},
              {"completion_reason", reason_or_null(p.completion_reason)},
              {"created_at", core::format_timestamp(p.created_at)},
              {"completed_at", time_or_null(p.completed_at)},
              {"processing_time", or_null(p.processing_time)},
              {"running_time", or_null(p.running_time)},
              {"error_message", or_null(p.error_message)},
              {"estimated_completion", time_or_null(p.estimated_completion)}};
}

Json result_item_view(const store::ResultItem& item) {
  return Json{{"index", item.index},
              {"page_url", item.page_url},
              {"page_number", item.page_number},
              {"fields", store::to_json(item.fields)},
              {"detail", item.detail ? store::to_json(*item.detail) : Json(nullptr)}};
}

Json event_view(const store::PageEvent& e) {
  return Json{{"seq", e.seq},
              {"kind", store::to_string(e.kind)},
              {"page_number", e.page_number},
              {"url", e.url},
              {"http_status", or_null(e.http_status)},
              {"outcome", e.ok ? "ok" : "failed"},
              {"items_found", e.items_found},
              {"error", or_null(e.error)},
              {"started_at", core::format_timestamp(e.started_at)},
              {"finished_at", core::format_timestamp(e.finished_at)}};
}

} // namespace scrapekeep::http
