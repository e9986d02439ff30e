#pragma once
// Fetching pages over HTTP and HTTPS: timeouts, redirects, retries, a body
// cap, HTML-only content, and per-host politeness shared across workers.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/byte_budget.hpp"
#include "scrapekeep/net/socket_guard.hpp"
#include "scrapekeep/net/socket_stream.hpp"

namespace httplib {
class ClientImpl;
}

namespace scrapekeep::scrape {

using SteadyTime = std::chrono::steady_clock::time_point;

// Every address a host name resolves to, in text form (as inet_ntop writes
// it), each once; empty when there is none. May block as long as the
// system's resolver does. Thread-safe.
using Resolver = std::function<std::vector<std::string>(const std::string& host)>;

// The system's resolver (getaddrinfo, any address family).
std::vector<std::string> system_resolve(const std::string& host);

// Host lookups that fetches stopped waiting for (deadline, cancel) and that
// still run, in the whole process. While this many are left running, a page
// that needs a lookup fails at once: a resolver that never answers would
// otherwise leave a thread behind for every page.
inline constexpr int k_max_abandoned_lookups = 64;
int abandoned_lookups();

// The memory of the response bodies a process holds, from their headers
// until they are parsed: 256 MiB. A body takes its Content-Length, or the
// most a page may be (max_body_bytes) when its length is unknown (chunked,
// compressed) until it has arrived, then what it took; a response that does
// not fit waits (its connection open) for bodies before it to be parsed.
// Nothing waits while it holds room, so the waits always end.
core::ByteBudget& process_body_budget();

struct FetchConfig {
  std::chrono::milliseconds connect_timeout{5000};
  // Longest wait for any single read from the server.
  std::chrono::milliseconds read_timeout{10000};
  // Redirects followed per fetch (301, 302, 303, 307, 308); each Location
  // resolves against the URL that answered it.
  int max_redirects = 5;
  // A larger (decompressed) body makes the page fail; it is never kept.
  std::size_t max_body_bytes = 10 * 1024 * 1024;
  // Tries per URL for connection errors, 429 and 5xx; other 4xx fail at once.
  int max_tries = 3;
  // Wait before the second try; doubled before each further one.
  std::chrono::milliseconds backoff{250};
  // A Retry-After (seconds) up to this is waited for, when the wait ends
  // before the fetch's deadline; a longer one, or one past the deadline,
  // fails the page at once, with a message that says so.
  std::chrono::milliseconds max_retry_after{60000};
  std::string user_agent = "scrapekeep/0.1";
  // Ask for gzip/deflate and decode it (when the library is built with zlib);
  // a body that cannot be decoded fails the page, and is not tried again.
  bool decompress = true;
  // HTTPS: verify the server certificate against the system's CA store.
  bool verify_tls = true;
  // Called with each IP address a host resolves to (text form), at every
  // request; the fetch connects to the ones it accepts, in the resolver's
  // order (the next when one refuses or times out), and fails when it
  // accepts none. Empty: no check, and a host is looked up only when a
  // connection to it is opened; its addresses are tried the same way.
  std::function<bool(const std::string& ip)> address_filter;
  // Looks host names up (an IP literal is its own address). Each lookup runs
  // on a thread of its own, waited for until the fetch's deadline or
  // cancel(); one given up on runs on to its end, unwaited (see
  // k_max_abandoned_lookups), so the resolver must own what it uses: it may
  // outlive the fetcher. Tests put a resolver that hangs here.
  Resolver resolver = system_resolve;
};

struct FetchResult {
  bool ok = false;
  // The status of the last response that arrived, at any try or redirect:
  // a redirect's when the URL it leads to gives none (a refused address).
  std::optional<int> http_status;
  std::string final_url;           // after redirects
  std::string body;                // HTML, when ok
  core::ByteBudget::Lease body_room;  // its memory's share of process_body_budget()
  std::string error;               // when !ok: "HTTP 404", "connection failed", ...
  std::string content_type;        // media type, lowercase, without parameters
  std::string charset;             // from Content-Type, as sent; empty if none
  // The fetch was cut short by its deadline or cancel(): the page was not
  // really tried and must not be counted as failed.
  bool interrupted = false;
  // How long the first request waited for its host's turn (HostLimiter)
  // before it went out: a page's fetch starts when its request is sent.
  std::chrono::microseconds host_wait{0};
};

// Per-host politeness shared by every fetcher of a process: at most
// `max_per_host` requests to one host (host:port) at once and, optionally, at
// least `delay` between the starts of two requests to it. Thread-safe.
struct HostLimiterConfig {
  int max_per_host = 8;  // >= 1
  std::chrono::milliseconds delay{0};
};

class HostLimiter {
 public:
  explicit HostLimiter(HostLimiterConfig config = {});
  HostLimiter(const HostLimiter&) = delete;
  HostLimiter& operator=(const HostLimiter&) = delete;

  // A slot for one request; released on destruction.
  class Permit {
   public:
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();

   private:
    friend class HostLimiter;
    Permit(HostLimiter* owner, std::string host);
    HostLimiter* m_owner = nullptr;
    std::string m_host;
  };

  // Waits for a slot for `host`. nullopt when `deadline` passes or
  // `*cancelled` turns true first.
  std::optional<Permit> acquire(const std::string& host, SteadyTime deadline,
                                const std::atomic<bool>* cancelled = nullptr);

  // Requests to `host` in flight now (for tests).
  int active(const std::string& host) const;
  // Hosts the limiter holds a state for (for tests). Idle ones (no request
  // in flight, no start to wait for) are dropped once the count doubles.
  std::size_t hosts_held() const;

 private:
  struct HostState {
    int active = 0;
    SteadyTime next_start{};
    // Says no more than a missing state: nothing in flight, no wait.
    bool idle(SteadyTime now) const { return active <= 0 && next_start <= now; }
  };
  void release(const std::string& host);
  // Drops the idle states: with a delay, a server scraping many hosts would
  // otherwise keep one per host for ever.
  void prune(SteadyTime now);

  HostLimiterConfig m_config;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::map<std::string, HostState> m_hosts;
  std::size_t m_prune_at = 0;  // m_hosts' size at which acquire() prunes next
};

// Fetches one page. An instance is used by one thread at a time; cancel() may
// be called from any thread.
class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // GETs `url` (http/https), following redirects and retrying as configured.
  // Never runs past `deadline`: it then returns with interrupted set.
  virtual FetchResult fetch(const std::string& url, SteadyTime deadline) = 0;
  // Aborts the fetch in progress, if any, and every later one (they return
  // interrupted at once). Thread-safe; idempotent.
  virtual void cancel() {}
  // `gate` is asked right before each request goes out (after any wait for
  // the host's turn); false cancels, as cancel() does. Set before fetching.
  virtual void set_gate(std::function<bool()> gate) { (void)gate; }
};

class BodyDecoder;

// The cpp-httplib implementation. Keeps one keep-alive connection per origin.
class HttpFetcher final : public Fetcher {
 public:
  // `limiter` may be null (no per-host limit).
  explicit HttpFetcher(FetchConfig config, std::shared_ptr<HostLimiter> limiter = nullptr);
  ~HttpFetcher() override;
  HttpFetcher(const HttpFetcher&) = delete;
  HttpFetcher& operator=(const HttpFetcher&) = delete;

  FetchResult fetch(const std::string& url, SteadyTime deadline) override;
  void set_gate(std::function<bool()> gate) override { m_gate = std::move(gate); }
  void cancel() override;

 private:
  struct Target;
  struct Attempt;
  struct Lookup;
  Attempt request_once(const Target& target, SteadyTime deadline);
  // The addresses of `host` (bare), looked up within `deadline` and cancel();
  // nullopt when the wait ended first or no lookup could start (then
  // `attempt` says why).
  std::optional<std::vector<std::string>> resolve(const std::string& host, SteadyTime deadline,
                                                  Attempt& attempt);
  httplib::ClientImpl& client_for(const Target& target);
  // A decoder of `coding` (normalized) ready for a new body, the last one's
  // when it can be; null for a coding this build cannot decode.
  BodyDecoder* decoder_of(const std::string& coding);
  bool wait_until(SteadyTime until);  // false when cancelled

  FetchConfig m_config;
  std::shared_ptr<HostLimiter> m_limiter;
  std::function<bool()> m_gate;
  std::map<std::string, std::unique_ptr<httplib::ClientImpl>> m_clients;  // by origin
  std::unique_ptr<BodyDecoder> m_decoder;  // the last body's, kept for the next
  std::string m_decoder_coding;           // of m_decoder
  // The limits a response is read within (the head's time limit is set per
  // request), and what the last response broke.
  struct ResponseLimits {
    net::HeadLimits head;
    std::optional<net::HeadResult> head_failure;
    bool line_too_long = false;
    bool bad_chunked = false;
    net::SocketStream* stream = nullptr;  // while a response is read
    bool timed_out = false;  // a read ran out of time
    std::size_t received = 0;  // bytes of the response received
    bool head_cut = false;     // the connection closed in the middle of an HTTP head
    // A new TLS connection: its connect and handshake must end by
    // `handshake_deadline` (the library bounds each wait in the handshake,
    // not all of them), and cancel() ends them at once.
    net::SocketGuard handshake;
    SteadyTime handshake_deadline{};
    bool verify_tls = true;   // FetchConfig::verify_tls
    bool check_host = false;  // a new TLS connection's certificate to check
    bool host_mismatch = false;  // its certificate does not name the host
    long verify_error = 0;  // X509_V_OK, or why the handshake refused its certificate
    // HttpFetcher::m_cancelled: a cancel that came before the guard was
    // armed (while the TCP connect waited) found nothing to shut down.
    const std::atomic<bool>* cancelled = nullptr;
  };
  ResponseLimits m_response;
  std::atomic<bool> m_cancelled{false};
  std::mutex m_mutex;  // guards m_active and m_lookup against cancel()
  std::condition_variable m_cancel_cv;
  httplib::ClientImpl* m_active = nullptr;
  std::shared_ptr<Lookup> m_lookup;  // while one is waited for
};

} // namespace scrapekeep::scrape
