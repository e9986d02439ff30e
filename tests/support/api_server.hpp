#pragma once
// A real ApiServer on a loopback port over a real database file in a TempDir,
// for integration tests, and a small HTTP client to talk to it.
//
// TestServer opens (and migrates) the store, creates one API key for each of
// two organizations ("org-a", "org-b"), binds 127.0.0.1 on a free port, serves
// from a thread, and returns once /healthz answers. It stops the server and
// joins the thread when it goes out of scope.

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/http/server.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/store_pool.hpp"
#include "support/temp_dir.hpp"

namespace scrapekeep::testing {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One HTTP answer. `status` is 0 when the request failed below HTTP (then
// `transport_error` says why).
struct HttpReply {
  int status = 0;
  nlohmann::ordered_json json;  // the parsed body; null unless it is JSON
  std::string body;
  HeaderList headers;
  std::string transport_error;

  // The first header called `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // Copies of json["data"] / json["error"] (null when absent). Copies, so that
  // operator[] on them never meets a missing key of a const object.
  nlohmann::ordered_json data() const;
  nlohmann::ordered_json error() const;
};

// A keep-alive HTTP client sending `default_headers` with every request.
// Not thread-safe: give each thread its own.
class ApiClient {
 public:
  ApiClient(const std::string& host, int port, HeaderList default_headers = {});
  ~ApiClient();
  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;

  // Any method; `body` goes out as application/json when not empty (or when
  // the method is POST/PUT/PATCH).
  HttpReply request(const std::string& method, const std::string& path,
                    const std::string& body = {}, const HeaderList& extra_headers = {});
  HttpReply get(const std::string& path) { return request("GET", path); }
  HttpReply post(const std::string& path, const std::string& body = {}) {
    return request("POST", path, body);
  }
  HttpReply post(const std::string& path, const nlohmann::ordered_json& body) {
    return request("POST", path, body.dump());
  }
  HttpReply del(const std::string& path) { return request("DELETE", path); }
  // POST with Transfer-Encoding: chunked (no Content-Length), `chunk` bytes
  // at a time.
  HttpReply post_chunked(const std::string& path, const std::string& body, size_t chunk = 65536);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  HeaderList m_default_headers;
};

// A plain TCP connection to 127.0.0.1, for bytes no HTTP client sends:
// malformed request lines, huge headers, partial requests, idle sockets.
class RawConnection {
 public:
  // Connects; throws std::runtime_error when it cannot.
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends all of `bytes`; false when the server has closed or reset it.
  bool send(std::string_view bytes);
  // Reads one response: status line, headers and a Content-Length body. A
  // status of 0 (with transport_error) when the connection ended or
  // `timeout` passed first.
  HttpReply read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until the server closes the connection (reading and dropping what
  // it sends); false when `timeout` passes first.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  // Appends what arrives within `timeout` to m_buffer; false on EOF, error or timeout.
  bool receive(std::chrono::steady_clock::time_point deadline);
  int m_fd = -1;
  std::string m_buffer;
};

struct OrgKey {
  std::string org_name;
  std::int64_t org_id = 0;
  std::string key_id;
  std::string key;  // plaintext
};

class TestServer {
 public:
  // `clock` must outlive the server; tests pass a FakeClock.
  explicit TestServer(const core::Clock& clock, http::ServerConfig config = {});
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return m_port; }
  const std::string& db_path() const { return m_db_path; }
  const OrgKey& org_a() const { return m_org_a; }
  const OrgKey& org_b() const { return m_org_b; }
  const http::Router& router() const { return m_server->router(); }

  // A connection of the test's own thread: the simulated worker writes
  // through it. Not for use from other threads.
  store::JobStore& store() { return *m_store; }

  // A client sending the key as X-API-Key (none when `key` is empty).
  ApiClient client(const std::string& key) const;
  // A client for org-a's key.
  ApiClient client_a() const { return client(m_org_a.key); }
  ApiClient client_b() const { return client(m_org_b.key); }
  // A client with exactly these headers (e.g. Authorization: Bearer).
  ApiClient client_with(HeaderList headers) const;

 private:
  TempDir m_dir;
  std::string m_db_path;
  std::unique_ptr<store::JobStore> m_store;
  std::unique_ptr<store::StorePool> m_pool;
  std::unique_ptr<http::ApiServer> m_server;
  std::thread m_thread;
  int m_port = 0;
  OrgKey m_org_a;
  OrgKey m_org_b;
};

} // namespace scrapekeep::testing
