#pragma once
// Time source. All times are integer microseconds since the Unix epoch, UTC.

#include <cstdint>
#include <optional>

namespace scrapekeep::core {

using Micros = std::int64_t;
constexpr Micros k_micros_per_second = 1'000'000;

class Clock {
 public:
  virtual ~Clock() = default;
  // Current time in microseconds since the epoch. Thread-safe.
  virtual Micros now() const = 0;
};

// The real wall clock (CLOCK_REALTIME), read straight into microseconds:
// std::chrono::system_clock counts nanoseconds in 64 bits, which wrap after
// 2262 (a clock set to 2500 read as 1915).
class SystemClock final : public Clock {
 public:
  Micros now() const override;
};

// Whether a task done every `every` microseconds, last at `last` (never:
// nullopt), is due at `now`. A clock set back since `last` makes it due at
// once, rather than for as long as the clock was set back (an hour without
// lease recovery after a step of an hour).
bool interval_due(std::optional<Micros> last, Micros now, Micros every);

} // namespace scrapekeep::core
