// core/byte_budget: leases that grow while their bytes fit, and callers that
// give up waiting.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "scrapekeep/core/byte_budget.hpp"
#include "support/child_process.hpp"

using scrapekeep::core::ByteBudget;

TEST_CASE("a lease grows while its bytes fit and nobody waits, and gives them all back",
          "[core][budget]") {
  ByteBudget budget(100);
  ByteBudget::Lease empty;
  CHECK_FALSE(empty.try_grow(1));  // no budget behind it
  std::optional<ByteBudget::Lease> lease(budget.acquire(30));
  CHECK(lease->try_grow(50));
  CHECK(lease->bytes() == 80);
  CHECK_FALSE(lease->try_grow(21));  // 101 > 100
  CHECK(lease->try_grow(20));
  CHECK(budget.held() == 100);
  // Moved, it still holds them; released, they are back.
  ByteBudget::Lease moved = std::move(*lease);
  lease.reset();
  CHECK(budget.held() == 100);
  moved.release();
  CHECK(budget.held() == 0);
  CHECK(moved.bytes() == 0);
  // Someone waiting comes first: a lease that fits does not grow past them.
  ByteBudget::Lease first = budget.acquire(60);
  std::atomic<bool> in{false};
  std::thread waiter([&] {
    const ByteBudget::Lease big = budget.acquire(50);
    in = true;
  });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.waiting() == 1; }));
  CHECK_FALSE(first.try_grow(10));  // 70 would fit, but the waiter asked first
  first = ByteBudget::Lease();  // assigning an empty lease releases the bytes
  waiter.join();
  CHECK(in.load());
  CHECK(budget.held() == 0);
}

TEST_CASE("acquire_within gives up after its patience and lets the next caller in",
          "[core][budget]") {
  ByteBudget budget(100);
  std::optional<ByteBudget::Lease> held(budget.acquire(90));
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(budget.acquire_within(20, std::chrono::milliseconds(50)).has_value());
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
  CHECK(budget.waiting() == 0);
  // A caller behind one that gives up is not left waiting for it.
  std::atomic<bool> small_in{false};
  std::thread patient([&] { CHECK_FALSE(budget.acquire_within(50, std::chrono::milliseconds(300))); });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.waiting() == 1; }));
  std::thread small([&] {
    const ByteBudget::Lease lease = budget.acquire(10);  // fits, but queued behind 50
    small_in = true;
  });
  patient.join();
  small.join();
  CHECK(small_in.load());
  auto fits = budget.acquire_within(10, std::chrono::milliseconds(0));
  REQUIRE(fits.has_value());
  CHECK(budget.held() == 100);
  fits.reset();
  held.reset();
  CHECK(budget.held() == 0);
}

TEST_CASE("acquire_unless gives up when woken with give_up true, and a lease shrinks",
          "[core][budget]") {
  ByteBudget budget(100);
  std::optional<ByteBudget::Lease> held(budget.acquire(90));
  std::atomic<bool> give_up{false};
  std::atomic<bool> returned{false};
  std::optional<ByteBudget::Lease> got;
  std::thread waiter([&] {
    got = budget.acquire_unless(20, std::chrono::steady_clock::now() + std::chrono::seconds(30),
                                [&] { return give_up.load(); });
    returned = true;
  });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.waiting() == 1; }));
  budget.wake();  // nothing to give up for yet: it goes on waiting
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(returned.load());
  give_up = true;
  budget.wake();
  waiter.join();
  CHECK_FALSE(got.has_value());
  CHECK(budget.waiting() == 0);
  // Its deadline ends a wait too.
  CHECK_FALSE(budget.acquire_unless(20, std::chrono::steady_clock::now(), {}).has_value());
  // A lease that shrinks gives back what it held beyond, and lets a waiter in.
  std::thread in([&] { const ByteBudget::Lease lease = budget.acquire(50); });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.waiting() == 1; }));
  held->shrink_to(40);
  in.join();
  CHECK(held->bytes() == 40);
  held->shrink_to(60);  // never grows
  CHECK(held->bytes() == 40);
  CHECK(budget.held() == 40);
  held.reset();
  CHECK(budget.held() == 0);
}
