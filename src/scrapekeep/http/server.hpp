#pragma once
// The HTTP API server: cpp-httplib configured on purpose, one dispatcher over
// the route table, auth, the envelope and error mapping.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/http/job_request.hpp"
#include "scrapekeep/http/router.hpp"
#include "scrapekeep/store/store_pool.hpp"

namespace scrapekeep::http {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see ApiServer::bind)
  // Threads serving connections. A connection holds a thread while it is open
  // (idle, slow or keep-alive), so `threads` are kept and more are started
  // while all are busy, up to `max_threads`; past that, connections wait in
  // queue. Threads above `threads` end after 10 s without work.
  int threads = 64;
  int max_threads = 512;
  std::size_t max_body_bytes = 1 << 20;   // larger -> 413
  int body_timeout_s = 30;                // a body still arriving after this -> 408
  std::size_t max_header_bytes = 65536;   // request line and headers; more -> 431
  int header_timeout_s = 30;              // request line and headers still arriving -> 408
  int keep_alive_max_requests = 100000;   // library default 5 reconnects constantly
  int keep_alive_timeout_s = 5;
  int read_timeout_s = 5;                 // slow clients lose their connection
  int write_timeout_s = 5;
  XPathCheck xpath_check;                 // validates selectors at creation
  // Called after a DELETE removed a job (its rows may be left to purge): serve
  // wakes its maintenance thread with it. May be empty.
  std::function<void()> after_delete;
};

class ApiServer {
 public:
  ApiServer(ServerConfig config, store::StorePool& pool, const core::Clock& clock);
  ~ApiServer();

  // Binds the listening socket; returns the port bound, or unavailable.
  core::Result<int> bind();
  // Serves until stop(). Blocking; call after bind().
  void serve();
  // Stops accepting; in-flight requests finish. Thread-safe.
  void stop();

  const Router& router() const { return m_router; }

 private:
  struct Impl;
  ServerConfig m_config;
  store::StorePool& m_pool;
  const core::Clock& m_clock;
  Router m_router;
  std::unique_ptr<Impl> m_impl;
};

// Registered by routes_*.cpp.
void add_job_routes(Router& router);
void add_job_data_routes(Router& router);
void add_health_routes(Router& router);

} // namespace scrapekeep::http
