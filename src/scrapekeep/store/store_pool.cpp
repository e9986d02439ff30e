#include "scrapekeep/store/store_pool.hpp"

#include <SQLiteCpp/Statement.h>

#include "scrapekeep/store/hashing.hpp"
#include "scrapekeep/store/job_row.hpp"
#include "scrapekeep/store/sqlite_error.hpp"

namespace scrapekeep::store {

namespace {
constexpr int k_request_cache_kib = 512;
} // namespace

struct StorePool::Connection {
  explicit Connection(std::unique_ptr<JobStore> opened) : store(std::move(opened)) {}

  std::unique_ptr<JobStore> store;
  // Prepared on first use. Declared after `store`, so destroyed before it.
  std::unique_ptr<SQLite::Statement> job_for_key;
  // The last key hashed and its SHA-256: a client sends the same key with
  // every request. Only the hash is memoized; revocation is read each time.
  std::string key;
  std::string key_hash;
};

StorePool::StorePool(StoreConfig config, std::size_t keep_idle,
                     std::chrono::milliseconds idle_life)
    : m_config(std::move(config)), m_keep_idle(keep_idle), m_idle_life(idle_life) {
  m_config.migrate = false;
  if (m_config.cache_kib == 0) {
    m_config.cache_kib = k_request_cache_kib;
  }
}

StorePool::~StorePool() = default;

StorePool::Lease::Lease(StorePool* pool, std::unique_ptr<Connection> connection)
    : m_pool(pool), m_connection(std::move(connection)) {}

StorePool::Lease::Lease(Lease&&) noexcept = default;

StorePool::Lease::~Lease() {
  if (m_pool && m_connection) {
    m_pool->give_back(std::move(m_connection));
  }
}

JobStore* StorePool::Lease::operator->() { return m_connection->store.get(); }
JobStore& StorePool::Lease::operator*() { return *m_connection->store; }

const std::string& StorePool::job_for_key_sql() {
  static const std::string k_sql =
      "SELECT k.key_hash, " + job_columns("j.", JobColumns::progress) +
      " FROM api_keys k JOIN organizations o ON o.org_id = k.org_id"
      " JOIN jobs j ON j.org_id = k.org_id"
      " WHERE k.key_hash = ? AND k.revoked_at IS NULL AND j.job_id = ?";
  return k_sql;
}

Result<std::optional<core::Job>> StorePool::Lease::job_for_key(const std::string& key,
                                                               const std::string& job_id) {
  Connection& c = *m_connection;
  return guarded([&]() -> Result<std::optional<core::Job>> {
    if (!c.job_for_key) {
      c.job_for_key = std::make_unique<SQLite::Statement>(c.store->database(), job_for_key_sql());
    }
    if (c.key_hash.empty() || !constant_time_equal(c.key, key)) {
      c.key_hash = sha256_hex(key);
      c.key = key;
    }
    SQLite::Statement& q = *c.job_for_key;
    struct Reset {
      SQLite::Statement& q;
      ~Reset() { q.tryReset(); }
    } reset{q};
    q.bindNoCopy(1, c.key_hash);
    q.bindNoCopy(2, job_id);
    if (!q.executeStep() || !constant_time_equal(q.getColumn(0).getString(), c.key_hash)) {
      return std::optional<core::Job>();
    }
    int column = 1;
    return std::optional<core::Job>(read_job_row(q, column));
  });
}

Result<StorePool::Lease> StorePool::acquire() {
  std::unique_ptr<Connection> idle;
  std::vector<std::unique_ptr<Connection>> closed;
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      idle = std::move(m_idle.back().connection);
      m_idle.pop_back();
    }
    trim(std::chrono::steady_clock::now(), closed);
  }
  if (idle) {
    // A connection to a file removed or replaced underneath would read and
    // write a file nobody opens again: drop it and every other idle one.
    if (idle->store->check_file()) {
      return Lease(this, std::move(idle));
    }
    std::deque<Idle> stale;
    {
      std::lock_guard lock(m_mutex);
      stale.swap(m_idle);
    }
  }
  auto opened = JobStore::open(m_config);
  if (!opened) {
    return opened.error();
  }
  return Lease(this, std::make_unique<Connection>(std::move(opened.value())));
}

std::size_t StorePool::idle() {
  std::lock_guard lock(m_mutex);
  return m_idle.size();
}

void StorePool::trim(std::chrono::steady_clock::time_point now,
                     std::vector<std::unique_ptr<Connection>>& closed) {
  while (m_idle.size() > m_keep_idle && now - m_idle.front().since >= m_idle_life) {
    closed.push_back(std::move(m_idle.front().connection));
    m_idle.pop_front();
  }
}

void StorePool::give_back(std::unique_ptr<Connection> connection) {
  std::vector<std::unique_ptr<Connection>> closed;  // closed outside the lock
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(m_mutex);
  m_idle.push_back(Idle{now, std::move(connection)});
  trim(now, closed);
}

} // namespace scrapekeep::store
