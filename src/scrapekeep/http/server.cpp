#include "scrapekeep/http/server.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "scrapekeep/core/random.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/http/connection.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

constexpr const char* k_json = "application/json";

std::string new_request_id() { return "req_" + core::random_hex(12); }

// Methods the server hands to the route table; the library answers others.
bool is_known_method(const std::string& method) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) {
      return true;
    }
  }
  return false;
}

// Why a request's body cannot be told apart from what follows it (RFC 9112
// 6.1-6.3), if it cannot: Content-Length given twice with different values or
// not a number, both Content-Length and Transfer-Encoding, a transfer coding
// other than chunked, or one in HTTP/1.0. A server that guessed could read a request
// smuggled in a body. And an HTTP/1.1 request without exactly one Host
// (RFC 9112 3.2: a 400).
std::optional<ApiError> framing_error(const httplib::Request& req) {
  if (net::has_conflicting_lengths(req)) {
    return ApiError{400, "BAD_REQUEST", "the request has Content-Length headers that differ",
                    nullptr};
  }
  if (req.has_header("Content-Length")) {
    const std::string text = req.get_header_value("Content-Length");
    std::uint64_t length = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
    if (text.empty() || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
        end != text.data() + text.size()) {
      return ApiError{400, "BAD_REQUEST", "the Content-Length header is not a number", nullptr};
    }
  }
  if (req.version == "HTTP/1.1" && req.get_header_value_count("Host") != 1) {
    return ApiError{400, "BAD_REQUEST", "an HTTP/1.1 request must have exactly one Host header",
                    nullptr};
  }
  const std::size_t lengths = req.get_header_value_count("Content-Length");
  const std::size_t codings = req.get_header_value_count("Transfer-Encoding");
  if (codings > 0 && req.version == "HTTP/1.0") {
    // RFC 9112 6.1: HTTP/1.0 has no transfer codings; such framing is faulty.
    return ApiError{400, "BAD_REQUEST", "an HTTP/1.0 request cannot have a Transfer-Encoding",
                    nullptr};
  }
  if (codings > 0 && lengths > 0) {
    return ApiError{400, "BAD_REQUEST",
                    "the request has both Content-Length and Transfer-Encoding", nullptr};
  }
  if (codings > 1 ||
      (codings == 1 &&
       core::lower_ascii(core::trim_ascii(req.get_header_value("Transfer-Encoding"))) != "chunked")) {
    return ApiError{501, "NOT_IMPLEMENTED",
                    "the only transfer coding a request body may have is chunked", nullptr};
  }
  return std::nullopt;
}

// The codings of an Accept-Encoding value that it does not refuse (RFC 9110
// 12.5.3: "gzip;q=0" refuses gzip), comma separated, without their weights.
std::string accepted_codings(const std::string& value) {
  std::string out;
  for (const std::string& item : core::split_trimmed(value, ',')) {
    // "coding;q=W;...": the coding, then its parameters.
    const std::vector<std::string> parts = core::split_trimmed(core::lower_ascii(item), ';');
    bool refused = false;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].rfind("q=", 0) == 0) {
        const std::string q = core::trim_ascii(parts[i].substr(2));
        refused = !q.empty() && q.find_first_not_of("0.") == std::string::npos;
      }
    }
    if (!parts[0].empty() && !refused) {
      out += (out.empty() ? "" : ", ") + parts[0];
    }
  }
  return out;
}

// The library compresses an answer for a client whose Accept-Encoding holds
// "br" or "gzip" anywhere, "gzip;q=0" (refused) included: it reads the
// codings it was refused no more. The request is the library's own (a local
// of its process_request(), not const): only the codings the client accepts
// are left in it. Done before routing, and in the error handler for answers
// given before routing (413 to "Expect: 100-continue"); again is harmless.
void drop_refused_codings(const httplib::Request& req) {
  if (req.has_header("Accept-Encoding")) {
    auto& headers = const_cast<httplib::Headers&>(req.headers);
    std::string accepted = accepted_codings(req.get_header_value("Accept-Encoding"));
    headers.erase("Accept-Encoding");
    headers.emplace("Accept-Encoding", std::move(accepted));
  }
}

// Whether the request's Connection header holds the option "close", in any
// case, alone or in a list (RFC 9110 7.6.1): the library reads only an
// exact "close", and kept "Close" or "keep-alive, close" open.
bool asks_to_close(const httplib::Request& req) {
  for (std::size_t i = 0; i < req.get_header_value_count("Connection"); ++i) {
    const std::string value = req.get_header_value("Connection", i);
    for (const std::string& option : core::split_trimmed(value, ',')) {
      if (core::equals_ascii_lower(option, "close")) {
        return true;
      }
    }
  }
  return false;
}

// The request target in origin form: an absolute-form target
// ("http://host:port/path", which RFC 9112 3.2.2 says servers must accept)
// without its scheme and authority.
std::string origin_form(const std::string& path) {
  const std::size_t rest = core::http_scheme_length(path);
  if (rest == 0) {
    return path;
  }
  const std::size_t slash = path.find('/', rest);
  return slash == std::string::npos ? "/" : path.substr(slash);
}

// Whether a request target's path holds an encoded "/" (%2F): the library
// decodes the path before we route it, so /jobs/ID%2Fresults would be the
// results route. No route's part holds a "/", so such a path names none.
bool has_encoded_slash(const std::string& target) {
  const std::string path = target.substr(0, target.find_first_of("?#"));
  for (std::size_t at = path.find('%'); at != std::string::npos; at = path.find('%', at + 1)) {
    if (at + 2 < path.size() && path[at + 1] == '2' && (path[at + 2] | 0x20) == 'f') {
      return true;
    }
  }
  return false;
}

// Whether the request's Content-Length is a number over `max` (or over any
// number a uint64 holds).
bool declares_more_than(const httplib::Request& req, std::uint64_t max) {
  if (!req.has_header("Content-Length")) {
    return false;
  }
  const std::string text = req.get_header_value("Content-Length");
  std::uint64_t length = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
  return ec == std::errc::result_out_of_range ||
         (ec == std::errc() && end == text.data() + text.size() && length > max);
}

// The response says so, and the connection closes once it is sent.
void close_connection(httplib::Response& res) {
  res.set_header("Connection", "close");
  close_after_response();
}

void write_body(httplib::Response& res, int status, std::string body,
                const std::string& request_id) {
  res.status = status;
  res.set_header("X-Request-Id", request_id);
  // As Response::set_content, without copying the body.
  res.headers.erase("Content-Type");
  res.set_header("Content-Type", k_json);
  // The library compresses it for a client that accepts gzip or br: a cache
  // must not hand that answer to one that does not.
  res.set_header("Vary", "Accept-Encoding");
  res.body = std::move(body);
}

void write_json(httplib::Response& res, int status, const Json& body,
                const std::string& request_id) {
  write_body(res, status, json_text(body), request_id);
}

void write_error(httplib::Response& res, const ApiError& error, const std::string& request_id,
                 core::Micros now) {
  if (error.status == 405 && error.details.is_object() &&
      error.details.contains("allowed_methods")) {
    std::string allow;
    for (const auto& method : error.details["allowed_methods"]) {
      allow += (allow.empty() ? "" : ", ") + method.get<std::string>();
    }
    res.set_header("Allow", allow);
  }
  write_json(res, error.status, error_body(error, request_id, now), request_id);
}

void write_outcome(httplib::Response& res, const Outcome& out, const std::string& request_id,
                   core::Micros now) {
  if (const auto* err = std::get_if<ApiError>(&out)) {
    write_error(res, *err, request_id, now);
    return;
  }
  const auto& reply = std::get<Reply>(out);
  if (!reply.data_json.empty()) {
    const std::string_view head = R"({"success":true,"data":)";
    std::string body;
    body.reserve(head.size() + reply.data_json.size() + 1);
    body.append(head).append(reply.data_json) += '}';
    write_body(res, reply.status, std::move(body), request_id);
    return;
  }
  Json envelope{{"success", true}, {"data", reply.data}};
  if (reply.mirror_at_top) {
    envelope.update(reply.data);
  }
  write_json(res, reply.status, envelope, request_id);
}

ApiError request_timeout(const std::string& why) {
  return {408, "REQUEST_TIMEOUT", why, nullptr};
}

// What a request's head may be: the library's line limits (8192 bytes), ours
// for the whole head and its time.
net::HeadLimits head_limits(const ServerConfig& config) {
  net::HeadLimits limits;
  limits.max_head_bytes = config.max_header_bytes;
  limits.head_timeout = std::chrono::seconds(config.header_timeout_s);
  limits.bare_lf_start_line_ends_head = true;  // the library answers it: 400
  limits.strict_field_lines = true;
  limits.drop_range = true;
  return limits;
}

// The whole answer to a request whose head was refused, for BoundedServer.
// The library refuses a request line over 8192 bytes with CRLF as 414 too.
std::string refusal_response(net::HeadResult why, const ServerConfig& config, core::Micros now) {
  ApiError error;
  const char* reason = "";
  switch (why) {
    case net::HeadResult::start_line_too_long:
      error = {414, "URI_TOO_LONG", "the request line is longer than 8192 bytes", nullptr};
      reason = "URI Too Long";
      break;
    case net::HeadResult::too_large:
      error = {431, "HEADERS_TOO_LARGE",
               "the request headers are larger than " + std::to_string(config.max_header_bytes) +
                   " bytes, or one of them than 8192",
               nullptr};
      reason = "Request Header Fields Too Large";
      break;
    case net::HeadResult::timed_out:
      error = request_timeout("the request headers did not arrive within " +
                              std::to_string(config.header_timeout_s) + " seconds");
      reason = "Request Timeout";
      break;
    case net::HeadResult::stalled:
      error = request_timeout("the request headers stopped arriving for " +
                              std::to_string(config.read_timeout_s) + " seconds");
      reason = "Request Timeout";
      break;
    case net::HeadResult::malformed:
      error = {400, "BAD_REQUEST",
               "a request header line is malformed: folded, without a colon, with whitespace "
               "before its colon, with a stray CR, an empty Content-Length or "
               "Transfer-Encoding, or with a '%' in Content-Length, Transfer-Encoding, "
               "Authorization, X-API-Key, Connection or Expect",
               nullptr};
      reason = "Bad Request";
      break;
    case net::HeadResult::ready:
    case net::HeadResult::closed:
      break;  // never refused
  }
  httplib::Response res;
  close_connection(res);
  write_error(res, error, new_request_id(), now);
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason + "\r\n";
  for (const auto& [name, value] : res.headers) {
    out += name + ": " + value + "\r\n";
  }
  out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n\r\n" + res.body;
  return out;
}

// The caller's API key from X-API-Key or Authorization: Bearer (the scheme
// in any case, RFC 9110); empty if none or an empty one, " " for another
// scheme (a credential that is not a key).
std::string presented_key(const httplib::Request& req) {
  // A header given twice: which key is meant cannot be told (the library
  // would hand us the first). Not a key, so INVALID_API_KEY.
  const char* header = req.has_header("X-API-Key") ? "X-API-Key" : "Authorization";
  if (req.get_header_value_count(header) > 1) {
    return std::string(" ");
  }
  if (req.has_header("X-API-Key")) {
    return req.get_header_value("X-API-Key");
  }
  const std::string auth = core::trim_ascii(req.get_header_value("Authorization"));
  if (auth.empty()) {
    return std::string();
  }
  const std::size_t scheme_end = std::min(auth.find_first_of(" \t"), auth.size());
  if (core::lower_ascii(auth.substr(0, scheme_end)) != "bearer") {
    return std::string(" ");
  }
  return core::trim_ascii(auth.substr(scheme_end));
}

// The server's task queue: one task per connection. Unlike httplib's fixed
// ThreadPool it starts a thread when none is free (up to `max`), so idle or
// slow connections cannot starve the others; extra threads end when idle.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  ConnectionThreads(std::size_t keep, std::size_t max)
      : m_keep(std::max<std::size_t>(1, keep)), m_max(std::max(m_keep, max)) {
    std::lock_guard lock(m_mutex);
    while (m_threads.size() < m_keep) {
      start_thread();
    }
  }
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(m_mutex);
    reap();
    m_jobs.push_back(std::move(fn));
    if (m_idle + m_starting < m_jobs.size() && m_threads.size() < m_max) {
      start_thread();
    }
    update_waiting();
    m_cv.notify_one();
  }

  // Connections accepted that no thread has taken up yet, with none idle:
  // all `max` threads are busy with keep-alive connections.
  std::size_t waiting() const { return m_waiting.load(std::memory_order_relaxed); }

  void shutdown() override {
    std::list<std::thread> threads;
    {
      std::lock_guard lock(m_mutex);
      m_shutdown = true;
      threads = std::move(m_threads);
      m_threads.clear();
    }
    m_cv.notify_all();
    for (auto& t : threads) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

 private:
  static constexpr std::chrono::seconds k_linger{10};

  // Connections no thread, idle or starting, will take up. Holds m_mutex.
  void update_waiting() {
    const std::size_t ready = m_idle + m_starting;
    m_waiting = m_jobs.size() > ready ? m_jobs.size() - ready : 0;
  }

  // Holds m_mutex.
  void start_thread() {
    ++m_starting;  // as good as idle: it takes a job as soon as it runs
    m_threads.emplace_back();
    auto it = std::prev(m_threads.end());
    *it = std::thread([this, it] {
      core::name_this_thread("sk-http");
      work(it);
    });
  }

  // Joins threads that have ended. Holds m_mutex.
  void reap() {
    for (auto it : m_ended) {
      it->join();
      m_threads.erase(it);
    }
    m_ended.clear();
  }

  void work(std::list<std::thread>::iterator self) {
    std::unique_lock lock(m_mutex);
    --m_starting;
    for (;;) {
      ++m_idle;
      const bool woken = m_cv.wait_for(lock, k_linger, [this] {
        return !m_jobs.empty() || m_shutdown;
      });
      --m_idle;
      if (m_jobs.empty()) {
        if (m_shutdown) {
          return;
        }
        if (!woken && m_threads.size() - m_ended.size() > m_keep) {
          m_ended.push_back(self);  // joined by the next enqueue()
          return;
        }
        continue;
      }
      std::function<void()> fn = std::move(m_jobs.front());
      m_jobs.pop_front();
      update_waiting();
      lock.unlock();
      fn();
      fn = nullptr;
      lock.lock();
    }
  }

  const std::size_t m_keep;
  const std::size_t m_max;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::list<std::thread> m_threads;
  std::vector<std::list<std::thread>::iterator> m_ended;
  std::list<std::function<void()>> m_jobs;
  std::size_t m_idle = 0;
  std::size_t m_starting = 0;  // started, not yet waiting for a job
  std::atomic<std::size_t> m_waiting{0};
  bool m_shutdown = false;
};

} // namespace

struct ApiServer::Impl {
  Impl(net::HeadLimits limits, std::function<std::string(net::HeadResult)> refuse)
      : server(limits, std::move(refuse)) {}
  BoundedServer server;
  int listen_fd = -1;  // seen by the socket-options hook, for the backlog
  // The library's stop() does nothing until its listen loop runs: a stop
  // that comes first (SIGTERM right after start) would leave serve() running
  // for ever. serve() and stop() agree on it here.
  std::mutex run_mutex;
  std::atomic<ConnectionThreads*> threads{nullptr};  // the server's, once it runs
  bool stopped = false;  // stop() was called
  // Connections wait for a thread: all --max-threads are busy.
  bool under_pressure() const {
    const ConnectionThreads* t = threads.load();
    return t != nullptr && t->waiting() > 0;
  }
  enum class Run { not_yet, serving, returned };
  std::atomic<Run> run{Run::not_yet};
};

ApiServer::ApiServer(ServerConfig config, store::StorePool& pool, const core::Clock& clock)
    : m_config(std::move(config)), m_pool(pool), m_clock(clock), m_impl(std::make_unique<Impl>(
          head_limits(m_config),
          [this](net::HeadResult why) { return refusal_response(why, m_config, m_clock.now()); })) {
  add_health_routes(m_router);
  add_job_routes(m_router);
  add_job_data_routes(m_router);

  httplib::Server& svr = m_impl->server;
  const auto keep = static_cast<std::size_t>(std::max(1, m_config.threads));
  const auto max = static_cast<std::size_t>(std::max(m_config.threads, m_config.max_threads));
  svr.new_task_queue = [keep, max, impl = m_impl.get()] {
    auto* threads = new ConnectionThreads(keep, max);
    impl->threads = threads;
    return threads;
  };
  m_impl->server.set_under_pressure([impl = m_impl.get()] { return impl->under_pressure(); });
  // Without TCP_NODELAY, Nagle's algorithm meets delayed ACKs on keep-alive
  // connections and each small response waits ~40 ms.
  svr.set_tcp_nodelay(true);
  // The library listens with a backlog of 5: a burst of connections beyond it
  // waits for SYN retries (1 s, 3 s, ...). bind() raises it once listening.
  // SO_REUSEADDR, not the library's SO_REUSEPORT: a second server on the
  // same port fails to bind instead of silently sharing its connections, and
  // the TIME_WAIT connections a stopped server leaves (for a minute) do not
  // keep the next start from binding.
  svr.set_socket_options([impl = m_impl.get()](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    impl->listen_fd = sock;
  });
  svr.set_keep_alive_max_count(static_cast<size_t>(m_config.keep_alive_max_requests));
  svr.set_keep_alive_timeout(m_config.keep_alive_timeout_s);
  svr.set_read_timeout(m_config.read_timeout_s, 0);
  svr.set_write_timeout(m_config.write_timeout_s, 0);
  svr.set_payload_max_length(m_config.max_body_bytes);

  auto dispatch = [this](const httplib::Request& req, const std::string& body,
                         httplib::Response& res) {
    const std::string request_id = new_request_id();
    const core::Micros now = m_clock.now();
    if (req.method == "HEAD") {
      // The library would offer byte ranges, which are not served (drop_range).
      res.set_header("Accept-Ranges", "none");
    }
    auto matched = has_encoded_slash(req.target)
                       ? std::variant<Router::Match, ApiError>(route_not_found())
                       : m_router.match(req.method, origin_form(req.path));
    if (auto* err = std::get_if<ApiError>(&matched)) {
      write_error(res, *err, request_id, now);
      return;
    }
    auto& match = std::get<Router::Match>(matched);
    auto lease = m_pool.acquire();
    if (!lease) {
      // Whatever the open met (busy, missing, or a file put in the
      // database's place that is not one), the server has no database:
      // not the client's error.
      write_error(res, storage_unavailable(), request_id, now);
      return;
    }
    RouteContext ctx{req, body, std::move(match.params), **lease, *lease, now, 0, m_config};
    if (match.route->needs_auth) {
      const std::string key = presented_key(req);
      if (key.empty()) {
        write_error(res, authentication_required(), request_id, now);
        return;
      }
      if (!core::looks_like_api_key(key)) {
        write_error(res, invalid_api_key(), request_id, now);
        return;
      }
      if (match.route->fast) {
        if (auto out = match.route->fast(ctx, key)) {
          write_outcome(res, *out, request_id, now);
          return;
        }
      }
      auto info = (*lease)->find_key(key);
      if (!info) {
        write_error(res,
                    info.error().code == core::ErrorCode::not_found
                        ? invalid_api_key()
                        : from_store_error(info.error()),
                    request_id, now);
        return;
      }
      if (info->revoked_at) {
        write_error(res, api_key_deactivated(), request_id, now);
        return;
      }
      ctx.org_id = info->org_id;
    }
    write_outcome(res, match.route->handler(ctx), request_id, now);
  };
  // GET, HEAD and OPTIONS that came with a body: the library does not read
  // it, so the connection closes after the answer rather than read that body
  // as the next request.
  auto without_body = [dispatch](const httplib::Request& req, httplib::Response& res) {
    dispatch(req, req.body, res);
    if (req.has_header("Transfer-Encoding") ||
        (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0")) {
      close_connection(res);
    }
  };
  // Bodies are read here, not by the library: its own reader applies the
  // payload limit to Content-Length only, and a chunked body would grow
  // without bound.
  auto with_body = [this, dispatch](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    // Refused before reading: the library would otherwise read and drop a
    // declared oversize body to its end, holding the thread all along.
    if (declares_more_than(req, m_config.max_body_bytes)) {
      close_connection(res);
      write_error(res, payload_too_large(m_config.max_body_bytes), new_request_id(),
                  m_clock.now());
      return;
    }
    // The library hands a multipart body to multipart callbacks, not to
    // the receiver below (whose limits would not apply), and we have none.
    if (req.is_multipart_form_data()) {
      close_connection(res);
      write_error(res, invalid_json("a multipart/form-data body is not read; send JSON", 0),
                  new_request_id(), m_clock.now());
      return;
    }
    std::string body;
    bool too_large = false;
    bool too_slow = false;
    bool too_slow_for_others = false;
    // Each read has its own timeout; this bounds a body trickled in slowly,
    // and more tightly while connections wait for a thread.
    const auto began = std::chrono::steady_clock::now();
    const auto deadline = began + std::chrono::seconds(m_config.body_timeout_s);
    const bool read = reader([&](const char* data, size_t length) {
      if (body.size() + length > m_config.max_body_bytes) {
        too_large = true;
        return false;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) {
        too_slow = true;
        return false;
      }
      if (now - began > k_body_grace && m_impl->under_pressure()) {
        too_slow_for_others = true;
        return false;
      }
      body.append(data, length);
      return true;
    });
    if (too_large || (!read && res.status == 413)) {
      close_connection(res);
      write_error(res, payload_too_large(m_config.max_body_bytes), new_request_id(),
                  m_clock.now());
      return;
    }
    const net::SocketStream* strm = current_stream();
    if (too_slow_for_others) {
      close_connection(res);
      write_error(res,
                  request_timeout("the request body did not arrive within " +
                                  std::to_string(k_body_grace.count()) +
                                  " seconds, while other connections waited for the server"),
                  new_request_id(), m_clock.now());
      return;
    }
    if (too_slow || (!read && strm != nullptr && strm->chunked_body_too_slow())) {
      close_connection(res);
      write_error(res,
                  request_timeout("the request body did not arrive within " +
                                  std::to_string(m_config.body_timeout_s) + " seconds"),
                  new_request_id(), m_clock.now());
      return;
    }
    if (!read && current_read_timed_out()) {
      close_connection(res);
      write_error(res,
                  request_timeout("the request body stopped arriving for " +
                                  std::to_string(m_config.read_timeout_s) + " seconds"),
                  new_request_id(), m_clock.now());
      return;
    }
    if (!read) {
      close_connection(res);
      write_error(res,
                  {400, "BAD_REQUEST",
                   strm != nullptr && strm->bad_chunked_body()
                       ? "the request body's chunked framing is invalid"
                   : strm != nullptr && strm->line_too_long()
                       ? "the request body has a chunk-size or trailer line over 8192 bytes, or "
                         "over 1 MiB of trailers"
                       : "the request body could not be read",
                   nullptr},
                  new_request_id(), m_clock.now());
      return;
    }
    dispatch(req, body, res);
  };
  // A request without Content-Length or chunked encoding has no body (RFC
  // 9112 6.3), and is answered here, before the library's routing: for a
  // POST/PUT/PATCH/DELETE the library would read until the client closes or
  // the read timeout passes; for the others it would only match each route's
  // regex, which costs more than some of our answers. Requests with a body
  // (any method) take the library's way, which reads it.
  svr.set_pre_routing_handler([this, dispatch](const httplib::Request& req,
                                                httplib::Response& res) {
    drop_refused_codings(req);
    if (auto error = framing_error(req)) {
      close_connection(res);
      write_error(res, *error, new_request_id(), m_clock.now());
      return httplib::Server::HandlerResponse::Handled;
    }
    // As the library decides that a body is chunked (its first
    // Transfer-Encoding); the stream then reads the framing for it.
    if (net::is_chunked(req)) {
      if (net::SocketStream* strm = current_stream()) {
        strm->body_is_chunked(std::chrono::steady_clock::now() +
                              std::chrono::seconds(m_config.body_timeout_s));
      }
    }
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding") ||
        !is_known_method(req.method)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    dispatch(req, std::string(), res);
    return httplib::Server::HandlerResponse::Handled;
  });
  const char* pattern = ".*";
  svr.Get(pattern, without_body);
  svr.Options(pattern, without_body);
  svr.Post(pattern, with_body);
  svr.Put(pattern, with_body);
  svr.Patch(pattern, with_body);
  svr.Delete(pattern, with_body);

  // Errors the library answers itself (413, 400 on a bad request line, ...);
  // BoundedServer answers 414, 431 and 408 for a request's head.
  // A client that asks before sending its body (Expect: 100-continue, as
  // curl does for big bodies) hears 413 at once instead of "go on" for a body
  // declared too large, and sends none of it (the error handler answers).
  svr.set_expect_100_continue_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (declares_more_than(req, m_config.max_body_bytes)) {
          res.status = 413;
          return 413;
        }
        return 100;
      });
  // An answer after which the connection closes says only that: the library
  // adds Keep-Alive unless it closes the connection itself.
  svr.set_post_routing_handler([impl = m_impl.get()](const httplib::Request& req,
                                                     httplib::Response& res) {
    // HTTP/1.0 connections are closed after their answer (the library closes
    // them, even with "Connection: keep-alive"): the answer says so.
    if (req.version == "HTTP/1.0" || asks_to_close(req)) {
      close_connection(res);
    }
    // Connections waiting for a thread while every one is busy with a
    // keep-alive connection: this one closes after its answer, so that each
    // waits at most one request of another, not until one goes idle.
    if (impl->under_pressure()) {
      close_connection(res);
    }
    if (res.get_header_value("Connection") == "close") {
      res.headers.erase("Keep-Alive");
      // Once: the library adds its own for an exact "Connection: close".
      res.headers.erase("Connection");
      res.headers.emplace("Connection", "close");
    }
  });
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                     httplib::Response& res) {
    drop_refused_codings(req);
    if (!res.body.empty()) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string request_id = new_request_id();
    // What the library refused may have left bytes unread (a body, the rest
    // of a bad request): they must not be read as the next request.
    close_connection(res);
    ApiError error;
    switch (res.status) {
      case 413:
        error = payload_too_large(m_config.max_body_bytes);
        break;
      case 404:
        error = route_not_found();
        break;
      case 405:
        error = method_not_allowed();
        break;
      default:
        if (res.status >= 500) {
          error = internal_error();
        } else if (res.status == 400 && !req.method.empty() && !req.target.empty() &&
                   !is_known_method(req.method)) {
          // A well-formed request with a method the library does not route
          // (TRACE, CONNECT, PROPFIND...): the route table decides 404 or 405.
          // The library leaves the path empty for a method it does not know.
          const std::string path =
              !req.path.empty() ? req.path : req.target.substr(0, req.target.find_first_of("?#"));
          auto matched = m_router.match(req.method, origin_form(path));
          error = std::holds_alternative<ApiError>(matched) ? std::get<ApiError>(matched)
                                                            : method_not_allowed();
        } else {
          error = {res.status, "BAD_REQUEST", "the request could not be read", nullptr};
        }
    }
    write_error(res, error, request_id, m_clock.now());
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string cause = "unknown exception";
        try {
          if (ep) {
            std::rethrow_exception(ep);
          }
        } catch (const std::exception& e) {
          cause = e.what();
        } catch (...) {
        }
        const std::string request_id = new_request_id();
        std::cerr << "scrapekeep: internal error on " << req.method << " " << req.path << " ("
                  << request_id << "): " << cause << "\n";
        // What the request sent may not all be read.
        close_connection(res);
        write_error(res, internal_error(), request_id, m_clock.now());
      });
}

ApiServer::~ApiServer() { stop(); }

core::Result<int> ApiServer::bind() {
  int port = m_config.port;
  const bool bound = port == 0 ? (port = m_impl->server.bind_to_any_port(m_config.host)) >= 0
                               : m_impl->server.bind_to_port(m_config.host, port);
  if (!bound) {
    // Why, as far as can be told after the fact: a host that names no
    // address (a typo, "999.1.1.1"), or an address that cannot be taken.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const bool resolves = ::getaddrinfo(m_config.host.c_str(), nullptr, &hints, &found) == 0;
    if (found != nullptr) {
      ::freeaddrinfo(found);
    }
    const std::string host =
        m_config.host.find(':') == std::string::npos ? m_config.host : "[" + m_config.host + "]";
    return core::Error{core::ErrorCode::unavailable,
                       "cannot listen on " + host + ":" + std::to_string(m_config.port) +
                           (resolves ? " (address in use or not allowed)"
                                     : " (" + m_config.host +
                                           " is neither an IP address nor a host name that "
                                           "resolves)")};
  }
  if (m_impl->listen_fd >= 0) {
    ::listen(m_impl->listen_fd, SOMAXCONN);
  }
  return port;
}

void ApiServer::serve() {
  {
    std::lock_guard lock(m_impl->run_mutex);
    if (m_impl->stopped) {
      return;
    }
    m_impl->run = Impl::Run::serving;
  }
  m_impl->server.listen_after_bind();
  m_impl->run = Impl::Run::returned;
}

void ApiServer::stop() {
  if (!m_impl) {
    return;
  }
  {
    std::lock_guard lock(m_impl->run_mutex);
    if (m_impl->stopped) {
      return;  // once: the library's stop() must not run twice
    }
    m_impl->stopped = true;
    if (m_impl->run == Impl::Run::not_yet) {
      return;  // serve() will not start
    }
  }
  // serve() was entered: once the library's loop runs, its stop() ends it.
  while (!m_impl->server.is_running() && m_impl->run == Impl::Run::serving) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (m_impl->server.is_running()) {
    m_impl->server.stop();
  }
}

} // namespace scrapekeep::http
