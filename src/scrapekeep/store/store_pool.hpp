#pragma once
// A pool of JobStore connections for request threads: each borrower has a
// connection to itself until it gives it back. Thread-safe.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::store {

class StorePool {
 public:
  static constexpr std::size_t k_max_idle = 64;  // the HTTP threads kept ready

  // Keeps at most `max_idle` connections given back; more are closed (each
  // holds two files and up to 512 KiB of cache: a burst of 500 clients
  // left 483 open for good).
  explicit StorePool(StoreConfig config, std::size_t max_idle = k_max_idle);
  ~StorePool();

  // One pooled connection with what the request fast path keeps on it.
  struct Connection;

  class Lease {
   public:
    Lease(StorePool* pool, std::unique_ptr<Connection> connection);
    Lease(Lease&&) noexcept;
    ~Lease();
    JobStore* operator->();
    JobStore& operator*();

    // The job `job_id` when `key` is an unrevoked API key of the job's
    // organization, in one statement; nullopt otherwise (unknown or revoked
    // key, missing job or another organization's), and find_key() and
    // get_job() tell which. Reads the key's revocation each call: nothing
    // about a key is cached but the hash of the last one seen. Only what
    // progress reads is read, all of it from the index jobs_progress: the
    // selectors, timeout, attempts, claim token and lease come back empty.
    Result<std::optional<core::Job>> job_for_key(const std::string& key,
                                                 const std::string& job_id);

   private:
    StorePool* m_pool;
    std::unique_ptr<Connection> m_connection;
  };

  // The statement Lease::job_for_key runs (two parameters: the key's
  // SHA-256 in hex, the job id); tests check its query plan.
  static const std::string& job_for_key_sql();

  // A connection (opened on demand, without migrating), or the open error.
  Result<Lease> acquire();
  // Connections given back and kept for the next acquire().
  std::size_t idle();

 private:
  void give_back(std::unique_ptr<Connection> connection);

  StoreConfig m_config;
  const std::size_t m_max_idle;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<Connection>> m_idle;
};

} // namespace scrapekeep::store
