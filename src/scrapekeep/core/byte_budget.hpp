#pragma once
// A process-wide budget of bytes that callers hold while some memory of that
// size lives: the HTML being parsed, the rows of an answer being built and
// sent. Callers are let in first come, first served.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

namespace scrapekeep::core {

class ByteBudget {
 public:
  // `given_back` (if any) is called with the bytes of each lease released,
  // after they are back, on the releasing thread.
  explicit ByteBudget(std::size_t bytes, std::function<void(std::size_t)> given_back = {})
      : m_bytes(bytes), m_given_back(std::move(given_back)) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Bytes held while it lives; an empty lease holds none.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }

    // Holds `bytes` more if they fit now and nobody waits; never waits. An
    // empty lease has no budget and grows by nothing.
    bool try_grow(std::size_t bytes);
    // Gives back what it holds beyond `bytes`.
    void shrink_to(std::size_t bytes);
    std::size_t bytes() const { return m_bytes; }
    void release();

   private:
    friend class ByteBudget;
    Lease(ByteBudget* owner, std::size_t bytes) : m_owner(owner), m_bytes(bytes) {}
    ByteBudget* m_owner = nullptr;
    std::size_t m_bytes = 0;
  };

  // Waits until every earlier caller is in and `bytes` fit (or nothing else
  // is held), then holds them.
  Lease acquire(std::size_t bytes);
  // As acquire(), giving up (nullopt) after `patience`.
  std::optional<Lease> acquire_within(std::size_t bytes, std::chrono::milliseconds patience);
  // As acquire(), giving up (nullopt) at `until` or once `give_up()` is true
  // when woken: whoever makes it true calls wake() after.
  std::optional<Lease> acquire_unless(std::size_t bytes,
                                      std::chrono::steady_clock::time_point until,
                                      const std::function<bool()>& give_up);
  // Has every waiter look at its give_up() again.
  void wake();
  std::size_t held() const;
  // Callers waiting in acquire() (for tests).
  std::size_t waiting() const;
  // Makes the budget `bytes` from now on and returns what it was (for tests:
  // a process's budgets are shared by all its threads).
  std::size_t resize(std::size_t bytes);

 private:
  bool admits(std::uint64_t ticket, std::size_t bytes) const;  // under m_mutex
  void give_back(std::size_t bytes);

  mutable std::mutex m_mutex;
  std::size_t m_bytes;  // under m_mutex, as all below but m_given_back
  const std::function<void(std::size_t)> m_given_back;
  std::condition_variable m_cv;
  std::size_t m_held = 0;
  std::uint64_t m_next_ticket = 0;     // handed to each caller of acquire()
  std::deque<std::uint64_t> m_queue;  // tickets waiting, in order
};

} // namespace scrapekeep::core
