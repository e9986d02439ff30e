#include "scrapekeep/http/query_params.hpp"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <string_view>
#include <vector>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::http {

namespace {

// The values the query string gives `name`, decoded, in order. Read here,
// not from Request::params: httplib keeps a pair given twice alike
// ("limit=1&limit=1") only once, and of "limit=500=5" keeps the last piece,
// 5, where the value is "500=5" (a pair is split at its first "=").
std::vector<std::string> values_of(const httplib::Request& request, std::string_view name) {
  std::vector<std::string> values;
  const std::size_t question = request.target.find('?');
  if (question == std::string::npos) {
    return values;
  }
  const std::string_view query = std::string_view(request.target).substr(question + 1);
  std::size_t start = 0;
  while (start <= query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    const std::size_t eq = std::min(pair.find('='), pair.size());
    if (httplib::detail::decode_url(core::trim_ascii(std::string(pair.substr(0, eq))), true) ==
        name) {
      const std::string_view value = eq < pair.size() ? pair.substr(eq + 1) : std::string_view();
      values.push_back(httplib::detail::decode_url(core::trim_ascii(std::string(value)), true));
    }
    start = end + 1;
  }
  return values;
}

} // namespace

std::optional<std::string> QueryParams::text(const char* name) {
  std::vector<std::string> values = values_of(m_request, name);
  if (values.empty()) {
    return std::nullopt;
  }
  // "?limit=5&limit=500": which one the caller meant is a guess; refuse it.
  if (values.size() > 1) {
    fail(name, "must be given at most once");
    return std::nullopt;
  }
  if (values.front().empty()) {
    return std::nullopt;
  }
  return std::move(values.front());
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
  auto at = core::parse_timestamp(*raw);
  // An unencoded "+00:00" offset arrives as " 00:00" ('+' means space in a
  // query string): take a last space after the time's start ("2026-01-12 "
  // may be the date's separator) as the '+' it was.
  const std::size_t space = raw->rfind(' ');
  if (!at && space != std::string::npos && space > 10) {
    std::string text = *raw;
    text[space] = '+';
    at = core::parse_timestamp(text);
  }
  if (!at) {
    fail(name, "must be an ISO 8601 timestamp, e.g. 2026-01-12T07:19:20Z");
  }
  return at;
}

} // namespace scrapekeep::http
