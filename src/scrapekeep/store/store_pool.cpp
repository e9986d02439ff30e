#include "scrapekeep/store/store_pool.hpp"

namespace scrapekeep::store {

namespace {
constexpr int k_request_cache_kib = 512;
} // namespace

StorePool::StorePool(StoreConfig config) : m_config(std::move(config)) {
  m_config.migrate = false;
  if (m_config.cache_kib == 0) {
    m_config.cache_kib = k_request_cache_kib;
  }
}

StorePool::Lease::~Lease() {
  if (m_pool && m_store) {
    m_pool->give_back(std::move(m_store));
  }
}

Result<StorePool::Lease> StorePool::acquire() {
  std::unique_ptr<JobStore> idle;
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      idle = std::move(m_idle.back());
      m_idle.pop_back();
    }
  }
  if (idle) {
    // A connection to a file removed or replaced underneath would read and
    // write a file nobody opens again: drop it and every other idle one.
    if (idle->check_file()) {
      return Lease(this, std::move(idle));
    }
    std::vector<std::unique_ptr<JobStore>> stale;
    {
      std::lock_guard lock(m_mutex);
      stale.swap(m_idle);
    }
  }
  auto opened = JobStore::open(m_config);
  if (!opened) {
    return opened.error();
  }
  return Lease(this, std::move(opened.value()));
}

void StorePool::give_back(std::unique_ptr<JobStore> store) {
  std::lock_guard lock(m_mutex);
  m_idle.push_back(std::move(store));
}

} // namespace scrapekeep::store
