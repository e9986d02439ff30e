#pragma once
// Query-string parameters, validated; failures collect into a fields object.

#include <cstdint>
#include <optional>
#include <string>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/http/api_error.hpp"

namespace httplib {
struct Request;
}

namespace scrapekeep::http {

class QueryParams {
 public:
  explicit QueryParams(const httplib::Request& request) : m_request(request) {}

  // Every getter fails a parameter given more than once.
  // Integer in [lo, hi]; `fallback` when absent.
  std::int64_t integer(const char* name, std::int64_t fallback, std::int64_t lo, std::int64_t hi);
  // ISO 8601 timestamp; nullopt when absent.
  std::optional<core::Micros> timestamp(const char* name);
  // The raw value; nullopt when absent or empty.
  std::optional<std::string> text(const char* name);
  void fail(const std::string& name, const std::string& why);

  bool ok() const { return m_fields.empty(); }
  ApiError error() const { return validation_error(m_fields); }

 private:
  const httplib::Request& m_request;
  Json m_fields = Json::object();
};

} // namespace scrapekeep::http
