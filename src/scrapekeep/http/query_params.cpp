#include "scrapekeep/http/query_params.hpp"

#include <httplib.h>

#include <algorithm>
#include <charconv>

#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::http {

namespace {

// How many times the query string names `name`. Request::params cannot tell:
// httplib keeps a pair given twice alike ("limit=1&limit=1") only once.
std::size_t times_given(const httplib::Request& request, const char* name) {
  const std::size_t question = request.target.find('?');
  if (question == std::string::npos) {
    return 0;
  }
  const std::string query = request.target.substr(question + 1);
  std::size_t count = 0;
  std::size_t start = 0;
  while (start <= query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    // Each pair read as httplib reads it (trimmed, its name decoded).
    httplib::Params one;
    httplib::detail::parse_query_text(query.substr(start, end - start), one);
    count += one.count(name);
    start = end + 1;
  }
  return count;
}

} // namespace

std::optional<std::string> QueryParams::text(const char* name) {
  if (!m_request.has_param(name)) {
    return std::nullopt;
  }
  // "?limit=5&limit=500": which one the caller meant is a guess; refuse it.
  if (times_given(m_request, name) > 1) {
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
