// libFuzzer target for what the API reads from a client before any storage:
// the JSON body (parse_json_body, parse_create_job with the real XPath
// check), query parameters (QueryParams over the library's own query parser)
// and route matching. Every input goes through all three. Built and run by
// tools/fuzz; not part of the CMake build.

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "scrapekeep/http/job_request.hpp"
#include "scrapekeep/http/query_params.hpp"
#include "scrapekeep/http/router.hpp"
#include "scrapekeep/scrape/extractor.hpp"

namespace {

using namespace scrapekeep;

// The route table's templates with handlers that are never called.
const http::Router& routes() {
  static const http::Router router = [] {
    http::Router r;
    auto none = [](http::RouteContext&) -> http::Outcome { return http::Reply{}; };
    r.add("GET", "/healthz", false, none);
    r.add("POST", "/v1/scrape", true, none);
    r.add("GET", "/v1/scrape/jobs", true, none);
    r.add("GET", "/v1/scrape/jobs/{job_id}", true, none);
    r.add("POST", "/v1/scrape/jobs/{job_id}/cancel", true, none);
    r.add("DELETE", "/v1/scrape/jobs/{job_id}", true, none);
    r.add("GET", "/v1/scrape/jobs/{job_id}/progress", true, none);
    r.add("GET", "/v1/scrape/jobs/{job_id}/results", true, none);
    r.add("GET", "/v1/scrape/jobs/{job_id}/events", true, none);
    return r;
  }();
  return router;
}

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

void fuzz_body(const std::string& input) {
  static const http::XPathCheck xpath = scrape::xpath_error;
  auto parsed = http::parse_create_job(input, xpath);
  if (auto* err = std::get_if<http::ApiError>(&parsed)) {
    check(err->status == 400 || err->status == 422);
    // The error must serialize: it goes to the client as JSON.
    (void)err->details.dump(-1, ' ', false, http::Json::error_handler_t::strict);
  } else {
    const auto& req = std::get<http::CreateJobRequest>(parsed);
    check(http::is_http_url(req.url));
    check(req.options.timeout >= 1 && req.options.timeout <= 1800);
    check(req.options.max_items >= 1 && req.options.max_items <= 1000000);
    check(req.options.max_pages >= 1 && req.options.max_pages <= 10000);
    check(req.options.depth == 0 || req.options.depth == 1);
    check(!req.options.selectors.item.empty());
  }
}

void fuzz_query(const std::string& input) {
  httplib::Request req;
  httplib::detail::parse_query_text(input, req.params);
  http::QueryParams q(req);
  const auto limit = q.integer("limit", 50, 1, 100);
  const auto offset = q.integer("offset", 0, 0, 1'000'000'000);
  const auto after = q.integer("after", 0, 0, INT64_MAX);
  (void)q.timestamp("created_after");
  (void)q.timestamp("created_before");
  (void)q.text("status");
  check(limit >= 1 && limit <= 100);
  check(offset >= 0 && offset <= 1'000'000'000);
  check(after >= 0);
  if (!q.ok()) {
    const http::ApiError err = q.error();
    check(err.status == 422);
    (void)err.details.dump(-1, ' ', false, http::Json::error_handler_t::strict);
  }
}

void fuzz_route(const std::string& input) {
  static const char* const methods[] = {"GET", "POST", "DELETE", "PUT", "HEAD", "TRACE"};
  const std::string method = methods[input.empty() ? 0 : input.size() % 6];
  auto matched = routes().match(method, input);
  if (auto* match = std::get_if<http::Router::Match>(&matched)) {
    check(match->route != nullptr);
    for (const auto& param : match->params) {
      check(!param.empty() && param.find('/') == std::string::npos);
    }
  } else {
    const int status = std::get<http::ApiError>(matched).status;
    check(status == 404 || status == 405);
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scrape::init_libxml();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  fuzz_body(input);
  fuzz_query(input);
  fuzz_route(input);
  return 0;
}
