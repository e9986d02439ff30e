// core/clock: the wall clock read in microseconds, and tasks due at intervals.

#include <catch2/catch.hpp>
#include <ctime>

#include "scrapekeep/core/clock.hpp"

using scrapekeep::core::interval_due;
using scrapekeep::core::k_micros_per_second;
using scrapekeep::core::Micros;
using scrapekeep::core::SystemClock;

TEST_CASE("SystemClock reads the wall clock in microseconds since the epoch", "[core][clock]") {
  const Micros before = static_cast<Micros>(std::time(nullptr)) * k_micros_per_second;
  const Micros now = SystemClock().now();
  const Micros after = static_cast<Micros>(std::time(nullptr) + 1) * k_micros_per_second;
  CHECK(now >= before);
  CHECK(now <= after);
}

TEST_CASE("an interval task is due first, then every interval, and at once after the clock is "
          "set back",
          "[core][clock]") {
  constexpr Micros every = 10 * k_micros_per_second;
  CHECK(interval_due(std::nullopt, 5, every));
  CHECK_FALSE(interval_due(100, 100 + every - 1, every));
  CHECK(interval_due(100, 100 + every, every));
  // Set back an hour since: due now, not an hour and ten seconds later.
  CHECK(interval_due(100, 100 - 3600 * k_micros_per_second, every));
  // An interval of 0 is never due.
  CHECK_FALSE(interval_due(std::nullopt, 5, 0));
}
