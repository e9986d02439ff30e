#include "scrapekeep/store/wal_sync.hpp"

#include <algorithm>

namespace scrapekeep::store {

bool WalSync::after_commit(const Sync& sync) {
  std::unique_lock lock(m_mutex);
  const std::uint64_t mine = ++m_asked;
  // A sync running now may have begun before this commit was written.
  m_done.wait(lock, [&] { return m_covered >= mine || !m_running; });
  if (m_covered >= mine) {
    return true;
  }
  m_running = true;
  ++m_syncs;
  const std::uint64_t covers = m_asked;  // every caller so far committed before this sync
  lock.unlock();
  bool synced = false;
  try {
    synced = sync();
  } catch (...) {
    // Failed, and never left running: the others would wait for ever.
  }
  lock.lock();
  m_running = false;
  if (synced) {
    m_covered = std::max(m_covered, covers);
  }
  lock.unlock();
  m_done.notify_all();
  return synced;
}

std::uint64_t WalSync::asked() const {
  std::lock_guard lock(m_mutex);
  return m_asked;
}

std::uint64_t WalSync::syncs_run() const {
  std::lock_guard lock(m_mutex);
  return m_syncs;
}

}  // namespace scrapekeep::store
