#include "scrapekeep/core/byte_budget.hpp"

#include <algorithm>
#include <utility>

namespace scrapekeep::core {

ByteBudget::Lease::Lease(Lease&& other) noexcept
    : m_owner(std::exchange(other.m_owner, nullptr)), m_bytes(std::exchange(other.m_bytes, 0)) {}

ByteBudget::Lease& ByteBudget::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    m_owner = std::exchange(other.m_owner, nullptr);
    m_bytes = std::exchange(other.m_bytes, 0);
  }
  return *this;
}

bool ByteBudget::Lease::try_grow(std::size_t bytes) {
  if (m_owner == nullptr) {
    return false;
  }
  std::lock_guard lock(m_owner->m_mutex);
  if (!m_owner->m_queue.empty() || m_owner->m_held > m_owner->m_bytes ||
      bytes > m_owner->m_bytes - m_owner->m_held) {
    return false;
  }
  m_owner->m_held += bytes;
  m_bytes += bytes;
  return true;
}

void ByteBudget::Lease::shrink_to(std::size_t bytes) {
  if (m_owner != nullptr && bytes < m_bytes) {
    m_owner->give_back(m_bytes - bytes);
    m_bytes = bytes;
  }
}

void ByteBudget::Lease::release() {
  if (m_owner != nullptr) {
    std::exchange(m_owner, nullptr)->give_back(std::exchange(m_bytes, 0));
  }
}

void ByteBudget::give_back(std::size_t bytes) {
  {
    std::lock_guard lock(m_mutex);
    m_held -= bytes;
  }
  m_cv.notify_all();
  if (m_given_back) {
    m_given_back(bytes);
  }
}

bool ByteBudget::admits(std::uint64_t ticket, std::size_t bytes) const {
  return m_queue.front() == ticket &&
         (m_held == 0 || bytes <= m_bytes - std::min(m_bytes, m_held));
}

ByteBudget::Lease ByteBudget::acquire(std::size_t bytes) {
  return *acquire_unless(bytes, std::chrono::steady_clock::time_point::max(), {});
}

std::optional<ByteBudget::Lease> ByteBudget::acquire_within(std::size_t bytes,
                                                             std::chrono::milliseconds patience) {
  const auto now = std::chrono::steady_clock::now();
  const auto until = patience >= std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::time_point::max() - now)
                         ? std::chrono::steady_clock::time_point::max()
                         : now + patience;
  return acquire_unless(bytes, until, {});
}

std::optional<ByteBudget::Lease> ByteBudget::acquire_unless(
    std::size_t bytes, std::chrono::steady_clock::time_point until,
    const std::function<bool()>& give_up) {
  std::unique_lock lock(m_mutex);
  const std::uint64_t ticket = m_next_ticket++;
  m_queue.push_back(ticket);
  const auto fits = [&] { return admits(ticket, bytes); };
  const auto done = [&] { return fits() || (give_up && give_up()); };
  if (until == std::chrono::steady_clock::time_point::max()) {
    m_cv.wait(lock, done);
  } else {
    m_cv.wait_until(lock, until, done);
  }
  if (!fits()) {
    m_queue.erase(std::find(m_queue.begin(), m_queue.end(), ticket));
    lock.unlock();
    m_cv.notify_all();  // the next in line may be first now
    return std::nullopt;
  }
  m_queue.pop_front();
  m_held += bytes;
  lock.unlock();
  m_cv.notify_all();  // the next in line may fit too
  return Lease(this, bytes);
}

void ByteBudget::wake() {
  { std::lock_guard lock(m_mutex); }  // a waiter between its check and its wait is waiting now
  m_cv.notify_all();
}

std::size_t ByteBudget::held() const {
  std::lock_guard lock(m_mutex);
  return m_held;
}

std::size_t ByteBudget::waiting() const {
  std::lock_guard lock(m_mutex);
  return m_queue.size();
}

std::size_t ByteBudget::resize(std::size_t bytes) {
  std::size_t before = 0;
  {
    std::lock_guard lock(m_mutex);
    before = std::exchange(m_bytes, bytes);
  }
  m_cv.notify_all();
  return before;
}

} // namespace scrapekeep::core
