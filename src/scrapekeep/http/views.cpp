#include "scrapekeep/http/views.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>

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

// Appends JSON as Json::dump(-1, ' ', false, replace) writes it.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : m_out(out) {}

  JsonWriter& key(std::string_view name) {
    m_out += m_first ? "{\"" : ",\"";
    m_first = false;
    m_out += name;
    m_out += "\":";
    return *this;
  }
  void end() { m_out += m_first ? "{}" : "}"; }

  void string(std::string_view text) {
    // Printable ASCII without quote or backslash needs no escaping; anything
    // else (control characters, UTF-8, invalid bytes) goes through the library.
    for (const unsigned char c : text) {
      if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
        m_out += Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
        return;
      }
    }
    m_out += '"';
    m_out += text;
    m_out += '"';
  }
  void integer(std::int64_t value) {
    char buf[24];
    m_out.append(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
  }
  void number(double value) {
    if (!std::isfinite(value)) {
      m_out += "null";
      return;
    }
    // The library's own shortest round-trip formatting (its serializer's).
    char buf[64];
    m_out.append(buf, nlohmann::detail::to_chars(buf, buf + sizeof buf, value));
  }
  void boolean(bool value) { m_out += value ? "true" : "false"; }
  void null() { m_out += "null"; }
  void time(core::Micros at) { string(core::format_timestamp(at)); }

  template <typename T, typename Write>
  void or_null(const std::optional<T>& value, Write write) {
    if (value) {
      write(*value);
    } else {
      null();
    }
  }

 private:
  std::string& m_out;
  bool m_first = true;
};

} // namespace

std::string progress_json(const core::Progress& p) {
  std::string out;
  out.reserve(512);
  JsonWriter w(out);
  w.key("job_id").string(p.job_id);
  w.key("status").string(core::to_string(p.status));
  w.key("url").string(p.url);
  w.key("current_page").integer(p.current_page);
  w.key("total_pages_scraped").integer(p.total_pages_scraped);
  w.key("total_properties_found").integer(p.total_properties_found);
  w.key("progress_percentage").number(p.progress_percentage);
  w.key("pagination_complete").boolean(p.pagination_complete);
  w.key("completion_reason").or_null(p.completion_reason, [&](core::CompletionReason r) {
    w.string(core::to_string(r));
  });
  w.key("created_at").time(p.created_at);
  w.key("completed_at").or_null(p.completed_at, [&](core::Micros at) { w.time(at); });
  w.key("processing_time").or_null(p.processing_time, [&](double s) { w.number(s); });
  w.key("running_time").or_null(p.running_time, [&](double s) { w.number(s); });
  w.key("error_message").or_null(p.error_message, [&](const std::string& m) { w.string(m); });
  w.key("estimated_completion").or_null(p.estimated_completion,
                                        [&](core::Micros at) { w.time(at); });
  w.end();
  return out;
}

Json job_view(const core::Job& job) {
  const core::JobCounters& c = job.counters;
  Json options = store::to_json(job.options);
  if (job.selectors_damaged) {
    options["selectors"] = nullptr;
  }
  return Json{{"job_id", job.job_id},
              {"status", core::to_string(job.status)},
              {"url", job.url},
              {"options", std::move(options)},
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

std::string json_text(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json progress_view(const core::Progress& p) { return Json::parse(progress_json(p)); }

Json result_item_view(const store::ResultItem& item) {
  return Json{{"index", item.index},
              {"page_url", item.page_url},
              {"page_number", item.page_number},
              {"fields", item.fields ? store::to_json(*item.fields) : Json(nullptr)},
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

std::string page_tail(std::int64_t total, std::int64_t limit, std::int64_t offset) {
  return R"(,"total":)" + std::to_string(total) + R"(,"limit":)" + std::to_string(limit) +
         R"(,"offset":)" + std::to_string(offset) + "}";
}

} // namespace scrapekeep::http
