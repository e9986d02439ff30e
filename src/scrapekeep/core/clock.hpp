#pragma once
// Time source. All times are integer microseconds since the Unix epoch, UTC.

#include <cstdint>

namespace scrapekeep::core {

using Micros = std::int64_t;
constexpr Micros k_micros_per_second = 1'000'000;

class Clock {
 public:
  virtual ~Clock() = default;
  // Current time in microseconds since the epoch. Thread-safe.
  virtual Micros now() const = 0;
};

// The real wall clock.
class SystemClock final : public Clock {
 public:
  Micros now() const override;
};

} // namespace scrapekeep::core
