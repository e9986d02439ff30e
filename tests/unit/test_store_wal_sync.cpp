// store/wal_sync: callers whose commits are done share one sync of the WAL,
// one that began after their commits; a sync that began before does not
// count, and a failed one covers nobody.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "scrapekeep/store/wal_sync.hpp"
#include "support/child_process.hpp"

namespace {

using scrapekeep::store::WalSync;
using scrapekeep::testing::eventually;

// A sync that blocks until released, counting the syncs that ran.
class HeldSync {
 public:
  bool operator()() {
    std::unique_lock lock(m_mutex);
    ++m_started;
    m_released.wait(lock, [&] { return m_open; });
    return m_result;
  }
  void release(bool result) {
    {
      std::lock_guard lock(m_mutex);
      m_open = true;
      m_result = result;
    }
    m_released.notify_all();
  }
  int started() {
    std::lock_guard lock(m_mutex);
    return m_started;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_released;
  bool m_open = false;
  bool m_result = true;
  int m_started = 0;
};

}  // namespace

TEST_CASE("callers waiting behind a running sync share the next one", "[store]") {
  WalSync gate;
  HeldSync first;
  std::atomic<int> later_syncs{0};
  std::atomic<bool> first_ok{false};
  std::thread a([&] { first_ok = gate.after_commit([&] { return first(); }); });
  REQUIRE(eventually([&] { return first.started() == 1; }));
  // Two commits done while the first sync runs: it may have begun before
  // them, so it does not count for them; one more sync serves both.
  std::vector<bool> ok(2, false);
  std::vector<std::thread> waiting;
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&, i] {
      ok[i] = gate.after_commit([&] {
        ++later_syncs;
        return true;
      });
    });
  }
  REQUIRE(eventually([&] { return gate.asked() == 3; }));
  CHECK(later_syncs == 0);
  first.release(true);
  a.join();
  for (auto& t : waiting) {
    t.join();
  }
  CHECK(first_ok);
  CHECK(ok[0]);
  CHECK(ok[1]);
  CHECK(later_syncs == 1);
  CHECK(gate.syncs_run() == 2);
}

TEST_CASE("a failed sync covers nobody and each waiter runs its own", "[store]") {
  WalSync gate;
  HeldSync failing;
  std::atomic<bool> first_ok{true};
  std::thread a([&] { first_ok = gate.after_commit([&] { return failing(); }); });
  REQUIRE(eventually([&] { return failing.started() == 1; }));
  std::atomic<bool> second_ok{false};
  std::thread b([&] { second_ok = gate.after_commit([] { return true; }); });
  REQUIRE(eventually([&] { return gate.asked() == 2; }));
  failing.release(false);
  a.join();
  b.join();
  CHECK_FALSE(first_ok);
  CHECK(second_ok);
  CHECK(gate.syncs_run() == 2);
  // Alone, a caller syncs at once; a sync that throws is a failure, not a hang.
  CHECK(gate.after_commit([] { return true; }));
  CHECK_FALSE(gate.after_commit([]() -> bool { throw std::runtime_error("EIO"); }));
  CHECK(gate.after_commit([] { return true; }));
  CHECK(gate.syncs_run() == 5);
}
