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
// optional fraction and optional offset ("Z", "+02:00"); no offset means UTC.
// Returns nullopt for anything else.
std::optional<Micros> parse_timestamp(std::string_view text);

// Seconds rounded to 2 decimals (60.03).
double seconds_2dp(Micros duration);

// Rounds to 1 decimal.
double round_1dp(double value);

} // namespace scrapekeep::core
