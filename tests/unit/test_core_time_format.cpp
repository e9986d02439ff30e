// core/time_format: API.md timestamps ("2026-01-12T07:19:20.123456+00:00"),
// the parser behind created_after/created_before, and duration rounding.

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/time_format.hpp"

namespace {

using scrapekeep::core::format_timestamp;
using scrapekeep::core::Micros;
using scrapekeep::core::parse_timestamp;
using scrapekeep::core::round_1dp;
using scrapekeep::core::seconds_2dp;

// Microseconds since the epoch, computed independently (Python's datetime).
constexpr Micros k_2026_01_12_07_19_20_123456 = 1'768'202'360'123'456;
constexpr Micros k_2026_01_12_midnight = 1'768'176'000'000'000;
constexpr Micros k_2024_02_29_noon_and_half = 1'709'208'000'500'000;
constexpr Micros k_9999_end = 253'402'300'799'999'999;
constexpr Micros k_2000_01_01 = 946'684'800'000'000;
constexpr Micros k_1900_03_01 = -2'203'891'200'000'000;
constexpr Micros k_hour = 3'600'000'000;
constexpr Micros k_minute = 60'000'000;

} // namespace

TEST_CASE("format_timestamp writes UTC with microseconds and +00:00", "[core]") {
  CHECK(format_timestamp(0) == "1970-01-01T00:00:00.000000+00:00");
  CHECK(format_timestamp(k_2026_01_12_07_19_20_123456) == "2026-01-12T07:19:20.123456+00:00");
  CHECK(format_timestamp(k_2026_01_12_midnight) == "2026-01-12T00:00:00.000000+00:00");
  CHECK(format_timestamp(k_2024_02_29_noon_and_half) == "2024-02-29T12:00:00.500000+00:00");
  CHECK(format_timestamp(k_9999_end) == "9999-12-31T23:59:59.999999+00:00");
  CHECK(format_timestamp(k_2000_01_01 + 1) == "2000-01-01T00:00:00.000001+00:00");
}

TEST_CASE("format_timestamp handles times before the epoch", "[core]") {
  CHECK(format_timestamp(-1) == "1969-12-31T23:59:59.999999+00:00");
  CHECK(format_timestamp(-1'000'000) == "1969-12-31T23:59:59.000000+00:00");
  CHECK(format_timestamp(k_1900_03_01) == "1900-03-01T00:00:00.000000+00:00");
}

TEST_CASE("parse_timestamp reads what format_timestamp writes", "[core]") {
  const std::vector<Micros> samples = {0,
                                       1,
                                       -1,
                                       999'999,
                                       k_2026_01_12_07_19_20_123456,
                                       k_2026_01_12_midnight,
                                       k_2024_02_29_noon_and_half,
                                       k_9999_end,
                                       k_2000_01_01,
                                       k_1900_03_01,
                                       k_1900_03_01 + 123'457};
  for (Micros at : samples) {
    const std::string text = format_timestamp(at);
    INFO(text);
    const auto back = parse_timestamp(text);
    REQUIRE(back.has_value());
    CHECK(*back == at);
    CHECK(format_timestamp(*back) == text);
  }
}

TEST_CASE("parse_timestamp applies offsets and defaults to UTC", "[core]") {
  const Micros base = k_2026_01_12_07_19_20_123456;
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456Z") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456z") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12t07:19:20.123456Z") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12 07:19:20.123456") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456") == std::optional<Micros>(base));
  // 09:19:20 at +02:00 is 07:19:20 UTC; 01:49:20 at -05:30 is 07:19:20 UTC.
  CHECK(parse_timestamp("2026-01-12T09:19:20.123456+02:00") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T01:49:20.123456-05:30") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456-00:00") == std::optional<Micros>(base));
  // The basic format's offsets, as strftime's %z writes them ("+0000").
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456+0000") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T09:19:20.123456+0200") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T01:49:20.123456-0530") == std::optional<Micros>(base));
  CHECK(parse_timestamp("2026-01-12T09:19:20.123456+02") == std::optional<Micros>(base));
  // An offset can cross a day boundary.
  CHECK(parse_timestamp("2026-01-12T00:30:00+01:00") ==
        std::optional<Micros>(k_2026_01_12_midnight - 30 * k_minute));
  CHECK(parse_timestamp("2026-01-11T23:00:00-01:00") ==
        std::optional<Micros>(k_2026_01_12_midnight));
  CHECK(parse_timestamp("2026-01-12T00:00:00+23:59") ==
        std::optional<Micros>(k_2026_01_12_midnight - 23 * k_hour - 59 * k_minute));
}

TEST_CASE("parse_timestamp accepts dates, minutes and short or long fractions", "[core]") {
  CHECK(parse_timestamp("2026-01-12") == std::optional<Micros>(k_2026_01_12_midnight));
  CHECK(parse_timestamp("2026-01-12T07:19") ==
        std::optional<Micros>(k_2026_01_12_midnight + 7 * k_hour + 19 * k_minute));
  CHECK(parse_timestamp("2026-01-12T07:19Z") ==
        std::optional<Micros>(k_2026_01_12_midnight + 7 * k_hour + 19 * k_minute));
  const Micros whole = k_2026_01_12_07_19_20_123456 - 123'456;
  CHECK(parse_timestamp("2026-01-12T07:19:20Z") == std::optional<Micros>(whole));
  CHECK(parse_timestamp("2026-01-12T07:19:20.1Z") == std::optional<Micros>(whole + 100'000));
  CHECK(parse_timestamp("2026-01-12T07:19:20.12Z") == std::optional<Micros>(whole + 120'000));
  CHECK(parse_timestamp("2026-01-12T07:19:20.000001Z") == std::optional<Micros>(whole + 1));
  // A time between two microseconds is the next one: times are stored in
  // whole microseconds, so ">= t" and "< t" (the list's created_after and
  // created_before) compare as they would with t itself.
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456789Z") ==
        std::optional<Micros>(k_2026_01_12_07_19_20_123456 + 1));
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456001Z") ==
        std::optional<Micros>(k_2026_01_12_07_19_20_123456 + 1));
  CHECK(parse_timestamp("2026-01-12T07:19:20.1234569Z") ==
        std::optional<Micros>(k_2026_01_12_07_19_20_123456 + 1));
  CHECK(parse_timestamp("2026-01-12T07:19:20.123456000Z") ==
        std::optional<Micros>(k_2026_01_12_07_19_20_123456));
  CHECK(parse_timestamp("1969-12-31T23:59:59.9999999Z") == std::optional<Micros>(0));
  CHECK(parse_timestamp("2024-02-29T12:00:00.5+00:00") ==
        std::optional<Micros>(k_2024_02_29_noon_and_half));
  CHECK(parse_timestamp("1969-12-31T23:59:59.999999Z") == std::optional<Micros>(-1));
}

TEST_CASE("parse_timestamp refuses malformed text", "[core]") {
  const std::vector<std::string> bad = {
      "",
      "garbage",
      "2026",
      "2026-01",
      "2026-1-12",
      "26-01-12",
      "2026/01/12",
      "2026-13-01",
      "2026-00-10",
      "2026-01-00",
      "2026-01-32",
      "2026-02-30",
      "2025-02-29",
      " 2026-01-12",
      "2026-01-12 ",
      "2026-01-12T",
      "2026-01-12T07",
      "2026-01-12T7:19",
      "2026-01-12T24:00:00Z",
      "2026-01-12T07:60:00Z",
      "2026-01-12T07:19:61Z",
      "2026-01-12T07:19:20.Z",
      "2026-01-12T07:19:20.",
      "2026-01-12T07:19:20+2:00",
      "2026-01-12T07:19:20+02:",
      "2026-01-12T07:19:20+020",
      "2026-01-12T07:19:20+02:0",
      "2026-01-12T07:19:20+0260",
      "2026-01-12T07:19:20+02:00:00",
      "2026-01-12T07:19:20+24:00",
      "2026-01-12T07:19:20+02:60",
      "2026-01-12T07:19:20ZZ",
      "2026-01-12T07:19:20Z junk",
      "2026-01-12X07:19:20Z",
      "2026-01-12T07:19:20.12a",
  };
  for (const auto& text : bad) {
    INFO("'" << text << "'");
    CHECK_FALSE(parse_timestamp(text).has_value());
  }
}

TEST_CASE("seconds_2dp rounds durations to 2 decimals", "[core]") {
  CHECK(seconds_2dp(0) == 0.0);
  CHECK(seconds_2dp(60'030'000) == 60.03);
  CHECK(seconds_2dp(60'034'999) == 60.03);
  CHECK(seconds_2dp(60'035'000) == 60.04);
  CHECK(seconds_2dp(4'999) == 0.0);
  CHECK(seconds_2dp(5'000) == 0.01);
  CHECK(seconds_2dp(1'800'000'000) == 1800.0);
  CHECK(seconds_2dp(12'345'678) == 12.35);
}

TEST_CASE("round_1dp rounds percentages to 1 decimal", "[core]") {
  CHECK(round_1dp(0.0) == 0.0);
  CHECK(round_1dp(100.0 / 3.0) == 33.3);
  CHECK(round_1dp(200.0 / 3.0) == 66.7);
  CHECK(round_1dp(37.46) == 37.5);
  CHECK(round_1dp(37.44) == 37.4);
  CHECK(round_1dp(99.9) == 99.9);
  CHECK(round_1dp(100.0) == 100.0);
  // Halves computed as percentages of counts, which doubles hold a hair
  // below the half: rounded away from zero all the same.
  CHECK(round_1dp(100.0 * (23.0 / 80.0)) == 28.8);
  CHECK(round_1dp(100.0 * (41.0 / 80.0)) == 51.3);
  CHECK(round_1dp(100.0 * (51.0 / 80.0)) == 63.8);
  CHECK(round_1dp(100.0 * (13.0 / 16.0)) == 81.3);
  for (int b = 1; b <= 2000; ++b) {
    for (int a = 0; a <= b; ++a) {
      // Exactly, in integers: 1000a/b rounded half up, in tenths.
      const long long tenths = (2000LL * a + b) / (2LL * b);
      if (round_1dp(100.0 * (static_cast<double>(a) / b)) != static_cast<double>(tenths) / 10.0) {
        FAIL_CHECK(a << "/" << b);
      }
    }
  }
}
