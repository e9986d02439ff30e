#include "scrapekeep/core/clock.hpp"

#include <chrono>

namespace scrapekeep::core {

Micros SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace scrapekeep::core
