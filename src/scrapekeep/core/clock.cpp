#include "scrapekeep/core/clock.hpp"

#include <time.h>

namespace scrapekeep::core {

Micros SystemClock::now() const {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<Micros>(ts.tv_sec) * k_micros_per_second + ts.tv_nsec / 1000;
}

bool interval_due(std::optional<Micros> last, Micros now, Micros every) {
  return every > 0 && (!last || now < *last || now - *last >= every);
}

} // namespace scrapekeep::core
