#pragma once
// A clock that moves only when the test says so (Chromium's SimpleTestClock).
// Thread-safe: a server thread may read it while the test advances it.

#include <atomic>

#include "scrapekeep/core/clock.hpp"

namespace scrapekeep::testing {

class FakeClock : public core::Clock {
 public:
  explicit FakeClock(core::Micros start = 0) : m_now(start) {}

  core::Micros now() const override { return m_now.load(std::memory_order_acquire); }
  // Moves time forward (or back, for a negative delta) by `delta`.
  void advance(core::Micros delta) { m_now.fetch_add(delta, std::memory_order_acq_rel); }
  void set_now(core::Micros at) { m_now.store(at, std::memory_order_release); }

 private:
  std::atomic<core::Micros> m_now;
};

} // namespace scrapekeep::testing
