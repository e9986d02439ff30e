#include "scrapekeep/http/query_params.hpp"

#include <httplib.h>

#include <charconv>

#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::http {

std::optional<std::string> QueryParams::text(const char* name) {
  if (!m_request.has_param(name)) {
    return std::nullopt;
  }
  // "?limit=5&limit=500": which one the caller meant is a guess; refuse it.
  if (m_request.get_param_value_count(name) > 1) {
    fail(name, "must be given at most once");
    return std::nullopt;
  }
  std::string value = m_request.get_param_value(name);
  if (value.empty()) {
    return std::nullopt;
  }
  return value;
}

void QueryParams::fail(const std::string& name, const std::string& why) {
  if (!m_fields.contains(name)) {
    m_fields[name] = why;
  }
}

std::int64_t QueryParams::integer(const char* name, std::int64_t fallback, std::int64_t lo,
                                  std::int64_t hi) {
  auto raw = text(name);
  if (!raw) {
    return fallback;
  }
  std::int64_t value = 0;
  const char* end = raw->data() + raw->size();
  auto [ptr, ec] = std::from_chars(raw->data(), end, value);
  if (ec != std::errc() || ptr != end || value < lo || value > hi) {
    fail(name, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return fallback;
  }
  return value;
}

std::optional<core::Micros> QueryParams::timestamp(const char* name) {
  auto raw = text(name);
  if (!raw) {
    return std::nullopt;
  }
  // An unencoded "+00:00" offset arrives as " 00:00" ('+' means space in a
  // query string): take it as the '+' it was.
  std::string text = *raw;
  if (text.size() > 6 && text[text.size() - 6] == ' ' && text[text.size() - 3] == ':') {
    text[text.size() - 6] = '+';
  }
  auto at = core::parse_timestamp(text);
  if (!at) {
    fail(name, "must be an ISO 8601 timestamp, e.g. 2026-01-12T07:19:20Z");
  }
  return at;
}

} // namespace scrapekeep::http
