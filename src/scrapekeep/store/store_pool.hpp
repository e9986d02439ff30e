#pragma once
// A pool of JobStore connections for request threads: each borrower has a
// connection to itself until it gives it back. Thread-safe.

#include <memory>
#include <mutex>
#include <vector>

#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::store {

class StorePool {
 public:
  explicit StorePool(StoreConfig config);

  class Lease {
   public:
    Lease(StorePool* pool, std::unique_ptr<JobStore> store)
        : m_pool(pool), m_store(std::move(store)) {}
    Lease(Lease&&) = default;
    ~Lease();
    JobStore* operator->() { return m_store.get(); }
    JobStore& operator*() { return *m_store; }

   private:
    StorePool* m_pool;
    std::unique_ptr<JobStore> m_store;
  };

  // A connection (opened on demand, without migrating), or the open error.
  Result<Lease> acquire();

 private:
  void give_back(std::unique_ptr<JobStore> store);

  StoreConfig m_config;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<JobStore>> m_idle;
};

} // namespace scrapekeep::store
