#pragma once
// Parsing and validation of the create-job body (POST /v1/scrape).

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "scrapekeep/core/job.hpp"
#include "scrapekeep/http/api_error.hpp"

namespace scrapekeep::http {

// Returns why an XPath expression does not compile (or gives what a selector
// of that role may not), or nullopt when it is usable.
using XPathCheck =
    std::function<std::optional<std::string>(const std::string&, core::SelectorRole role)>;

struct CreateJobRequest {
  std::string url;
  core::JobOptions options;  // normalized, defaults filled in
};

// JSON with more objects and arrays nested in each other than this is
// refused as INVALID_JSON.
constexpr int k_max_json_depth = 32;
// JSON with an object or array of more members than this is refused as
// INVALID_JSON: the parser's cost grows with the square of a container's
// members (a 1 MiB array of 350,000 empty objects took 25 s of CPU). A valid
// body has at most 100 in any (a field map).
constexpr std::size_t k_max_json_members = 1000;

// Parses JSON with a depth limit and a members limit; INVALID_JSON (with the byte position) on
// failure. A key given twice in one object is put in `repeated_keys` (by its path, as
// validation errors name fields) when that is given, else answered with a VALIDATION_ERROR
// naming each such key.
std::variant<Json, ApiError> parse_json_body(const std::string& body,
                                             std::vector<std::string>* repeated_keys = nullptr);

// INVALID_JSON for a body that is not JSON; VALIDATION_ERROR naming every bad
// field (unknown fields included) otherwise.
std::variant<CreateJobRequest, ApiError> parse_create_job(const std::string& body,
                                                          const XPathCheck& xpath_check);

// True for an absolute http(s) URL with a host (an IPv6 one in brackets), a
// port of 1..65535 if any (not an empty one), no spaces or control bytes.
bool is_http_url(const std::string& url);

} // namespace scrapekeep::http
