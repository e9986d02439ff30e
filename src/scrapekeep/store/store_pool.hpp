#pragma once
// A pool of JobStore connections for request threads: each borrower has a
// connection to itself until it gives it back. Thread-safe.

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::store {

class StorePool {
 public:
  static constexpr std::size_t k_keep_idle = 64;  // the HTTP threads kept ready
  static constexpr std::chrono::seconds k_idle_life{10};

  // Keeps the connections given back for the next acquire(), the last
  // given back first; beyond `keep_idle` of them, those idle for
  // `idle_life` are closed as others are given back or taken (each holds
  // two files and up to 512 KiB of cache: a burst of 500 clients left 483
  // open for good, and closing all but 64 at once made 600 clients open
  // one for nearly every request).
  explicit StorePool(StoreConfig config, std::size_t keep_idle = k_keep_idle,
                     std::chrono::milliseconds idle_life = k_idle_life);
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

  // Takes the connections beyond m_keep_idle that have been idle for
  // m_idle_life out of m_idle, into `closed` (closed by the caller, outside
  // the lock). Holds m_mutex.
  void trim(std::chrono::steady_clock::time_point now,
            std::vector<std::unique_ptr<Connection>>& closed);

  StoreConfig m_config;
  const std::size_t m_keep_idle;
  const std::chrono::milliseconds m_idle_life;
  std::mutex m_mutex;
  struct Idle {
    std::chrono::steady_clock::time_point since;
    std::unique_ptr<Connection> connection;
  };
  std::deque<Idle> m_idle;  // the oldest first
};

} // namespace scrapekeep::store
