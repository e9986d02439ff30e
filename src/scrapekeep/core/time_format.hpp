#pragma once
// Timestamps and durations as API.md writes them.

#include <optional>
#include <string>
#include <string_view>

#include "scrapekeep/core/clock.hpp"

namespace scrapekeep::core {

// "2026-01-12T07:19:20.123456+00:00".
std::string format_timestamp(Micros at);

// Parses ISO 8601 / RFC 3339: a date ("2026-01-12"), or date and time with
// optional fraction and optional offset ("Z", "+02:00", "+0200", "+02"); no offset means UTC.
// Returns nullopt for anything else. A fraction finer than a microsecond is
// rounded up to the next one: times are stored in whole microseconds, so a
// time t compares with each (>= t, < t) as that microsecond does.
std::optional<Micros> parse_timestamp(std::string_view text);

// Seconds rounded to 2 decimals (60.03).
double seconds_2dp(Micros duration);

// Rounds to 1 decimal.
double round_1dp(double value);

// The times a stored row may hold as read: years 0000 to 9999, the ones
// ISO 8601 writes with four digits. A damaged row's time beyond them is read
// as the nearest end, so that no duration or deadline computed from stored
// times overflows.
constexpr Micros k_min_time = -62'167'219'200 * k_micros_per_second;
constexpr Micros k_max_time = 253'402'300'800 * k_micros_per_second - 1;
Micros clamp_time(Micros at);

// A stored counter as read: within +-2^53 (exact as a double), so that the
// sums of a job's counters cannot overflow.
constexpr std::int64_t k_max_count = std::int64_t{1} << 53;
std::int64_t clamp_count(std::int64_t n);

} // namespace scrapekeep::core
