// http/views: progress_json (written by hand for speed) must be byte for byte
// what the library dumps for the progress object of API.md built as a Json,
// for every field state, any string bytes and any number; progress_view must
// be that object.

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/http/views.hpp"

namespace {

using scrapekeep::core::CompletionReason;
using scrapekeep::core::JobStatus;
using scrapekeep::core::Progress;
using scrapekeep::http::Json;
using scrapekeep::http::progress_json;
using scrapekeep::http::progress_view;

template <typename T, typename F>
Json or_null(const std::optional<T>& value, F f) {
  return value ? Json(f(*value)) : Json(nullptr);
}

// API.md's progress object, field by field, built as a Json.
Json expected_view(const Progress& p) {
  using scrapekeep::core::format_timestamp;
  using scrapekeep::core::Micros;
  auto same = [](auto v) { return v; };
  return Json{
      {"job_id", p.job_id},
      {"status", scrapekeep::core::to_string(p.status)},
      {"url", p.url},
      {"current_page", p.current_page},
      {"total_pages_scraped", p.total_pages_scraped},
      {"total_properties_found", p.total_properties_found},
      {"progress_percentage", p.progress_percentage},
      {"pagination_complete", p.pagination_complete},
      {"completion_reason",
       or_null(p.completion_reason, [](CompletionReason r) { return scrapekeep::core::to_string(r); })},
      {"created_at", format_timestamp(p.created_at)},
      {"completed_at", or_null(p.completed_at, [](Micros at) { return format_timestamp(at); })},
      {"processing_time", or_null(p.processing_time, same)},
      {"running_time", or_null(p.running_time, same)},
      {"error_message", or_null(p.error_message, same)},
      {"estimated_completion",
       or_null(p.estimated_completion, [](Micros at) { return format_timestamp(at); })}};
}

std::string dumped(const Progress& p) {
  return expected_view(p).dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace

TEST_CASE("progress_json equals the dumped progress_view for every field state", "[http][views]") {
  Progress p;
  p.job_id = "job_0123456789abcdef01234567";
  p.url = "http://127.0.0.1:9000/listings?page=1&q=a/b";
  CHECK(progress_json(p) == dumped(p));  // pending, every optional null
  CHECK(progress_view(p) == expected_view(p));

  p.status = JobStatus::processing;
  p.current_page = 7;
  p.total_pages_scraped = 12;
  p.total_properties_found = 1'000'000;
  p.progress_percentage = 99.9;
  p.running_time = 60.03;
  p.estimated_completion = 1'768'201'260'030'000;
  CHECK(progress_json(p) == dumped(p));

  p.status = JobStatus::failed;
  p.pagination_complete = true;
  p.completion_reason = CompletionReason::error;
  p.completed_at = -1;  // before the epoch
  p.processing_time = 0.0;
  p.running_time.reset();
  p.estimated_completion.reset();
  p.error_message = "HTTP 503 \"Service Unavailable\" \\ at\tline\n2";
  CHECK(progress_json(p) == dumped(p));
  CHECK(progress_view(p) == expected_view(p));
}

TEST_CASE("progress_json escapes strings and writes numbers as the library does",
          "[http][views]") {
  const std::vector<std::string> strings = {
      "",
      "plain",
      "quote \" backslash \\ slash /",
      std::string("nul \0 inside", 12),
      "control \x01\x1f\x7f",
      "utf-8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
      "invalid \xff\xfe and cut \xe2\x82",
  };
  const std::vector<double> numbers = {0.0,    -0.0,   0.1,    1.0,   12.5,        33.3,
                                       99.9,   100.0,  1e-7,   1e-4,  123456.78,   1e15,
                                       1e16,   1e300,  60.03,  0.07,  1.0 / 3.0,  -2.5};
  Progress p;
  for (const auto& s : strings) {
    p.url = s;
    p.error_message = s;
    p.job_id = s;
    CHECK(progress_json(p) == dumped(p));
  }
  for (const double d : numbers) {
    p.progress_percentage = d;
    p.processing_time = d;
    CHECK(progress_json(p) == dumped(p));
  }
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::int64_t> cents(0, 100'000'000'000);
  for (int i = 0; i < 10'000; ++i) {
    p.progress_percentage = static_cast<double>(cents(random) % 1001) / 10.0;
    p.running_time = static_cast<double>(cents(random)) / 100.0;
    p.current_page = cents(random) - 50'000'000'000;
    p.created_at = cents(random) * 17;
    REQUIRE(progress_json(p) == dumped(p));
  }
}
