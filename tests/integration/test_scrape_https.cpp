// HTTPS fetching against a local TLS server with a self-signed certificate
// made for the test (the `openssl` command comes with ca-certificates).

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/fetcher.hpp"
#include "support/ipv6_loopback.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::scrape::FetchConfig;
using scrapekeep::scrape::HttpFetcher;
using scrapekeep::testing::TempDir;
using scrapekeep::testing::has_ipv6_loopback;

class TlsSite {
 public:
  // A self-signed certificate with this subject CN and subjectAltName.
  explicit TlsSite(const TempDir& dir, const std::string& cn = "127.0.0.1",
                   const std::string& san = "IP:127.0.0.1",
                   const std::string& address = "127.0.0.1")
      : m_cert(dir.file(cn + "cert.pem")), m_key(dir.file(cn + "key.pem")) {
    const std::string make_cert =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj '/CN=" + cn + "' -addext 'subjectAltName=" + san + "' -keyout '" +
        m_key + "' -out '" + m_cert + "' >/dev/null 2>&1";
    REQUIRE(std::system(make_cert.c_str()) == 0);
    m_server = std::make_unique<httplib::SSLServer>(m_cert.c_str(), m_key.c_str());
    REQUIRE(m_server->is_valid());
    SSL_CTX_set_tlsext_servername_arg(m_server->ssl_context(), this);
    SSL_CTX_set_tlsext_servername_callback(
        m_server->ssl_context(), +[](SSL* ssl, int*, void* arg) {
          const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
          auto* site = static_cast<TlsSite*>(arg);
          std::lock_guard lock(site->m_mutex);
          site->m_server_name = name != nullptr ? name : "";
          return SSL_TLSEXT_ERR_OK;
        });
    m_server->Get("/listings", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html><body><article><h2>Château</h2></article></body></html>",
                      "text/html; charset=utf-8");
    });
    // A head of 6 KB and no body: one TLS record, more than one read of it.
    m_server->Get("/big-head", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Padding", std::string(6000, 'p'));
      res.set_content("", "text/html");
    });
    m_server->Get("/moved", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/listings");
    });
    m_port = m_server->bind_to_any_port(address);
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server->listen_after_bind(); });
    while (!m_server->is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~TlsSite() {
    m_server->stop();
    m_thread.join();
  }
  const std::string& cert_path() const { return m_cert; }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(m_port) + path;
  }
  int port() const { return m_port; }
  // A connection idle this long is closed, with a close_notify alert first.
  void set_keep_alive_timeout(time_t seconds) { m_server->set_keep_alive_timeout(seconds); }
  // The server name (SNI) of the last TLS handshake; empty if it sent none.
  std::string server_name() const {
    std::lock_guard lock(m_mutex);
    return m_server_name;
  }

 private:
  mutable std::mutex m_mutex;
  std::string m_server_name;
  std::string m_cert;
  std::string m_key;
  std::unique_ptr<httplib::SSLServer> m_server;
  int m_port = 0;
  std::thread m_thread;
};

auto soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(20); }

// Forwards one connection to `to_port`: what the client sends at once, what
// the server sends one byte per `per_byte` (never, when zero): a TLS server
// whose handshake trickles, or stalls.
class SlowRelay {
 public:
  SlowRelay(int to_port, std::chrono::milliseconds per_byte)
      : m_to_port(to_port), m_per_byte(per_byte) {
    m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 4) == 0);
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { relay(); });
  }
  ~SlowRelay() {
    m_stop = true;
    ::shutdown(m_listen, SHUT_RDWR);
    m_thread.join();
    ::close(m_listen);
  }
  int port() const { return m_port; }

 private:
  void relay() {
    pollfd accept_poll{m_listen, POLLIN, 0};
    while (!m_stop && ::poll(&accept_poll, 1, 50) == 0) {
    }
    const int client = m_stop ? -1 : ::accept(m_listen, nullptr, nullptr);
    if (client < 0) {
      return;
    }
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(m_to_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    std::string pending;  // from the server, not yet passed on
    auto next_byte = std::chrono::steady_clock::now();
    while (!m_stop) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 20) < 0) {
        break;
      }
      char buffer[4096];
      if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
        const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
        if (n <= 0) {
          break;  // the client gave up
        }
        ::send(server, buffer, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
      if ((fds[1].revents & POLLIN) != 0) {
        const ssize_t n = ::recv(server, buffer, sizeof buffer, 0);
        if (n > 0) {
          pending.append(buffer, static_cast<size_t>(n));
        }
      }
      if (m_per_byte.count() > 0 && !pending.empty() &&
          std::chrono::steady_clock::now() >= next_byte) {
        ::send(client, pending.data(), 1, MSG_NOSIGNAL);
        pending.erase(0, 1);
        next_byte = std::chrono::steady_clock::now() + m_per_byte;
      }
    }
    ::close(server);
    ::close(client);
  }

  int m_to_port;
  std::chrono::milliseconds m_per_byte;
  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

} // namespace

TEST_CASE("HTTPS pages are fetched over TLS, redirects included", "[scrape]") {
  TempDir dir;
  TlsSite site(dir);

  SECTION("with verification off, the page and its UTF-8 text arrive") {
    FetchConfig config;
    config.verify_tls = false;
    HttpFetcher fetcher(config);
    const auto page = fetcher.fetch(site.url("/moved"), soon());
    INFO(page.error);
    REQUIRE(page.ok);
    CHECK(page.http_status == 200);
    CHECK(page.final_url == site.url("/listings"));
    CHECK(page.body.find("Château") != std::string::npos);
  }

  SECTION("with verification on, a certificate SSL_CERT_FILE names is trusted") {
    // As a user trusts a private CA: OpenSSL's default verify paths, which
    // the fetcher uses, read the variable.
    ::setenv("SSL_CERT_FILE", site.cert_path().c_str(), 1);
    FetchConfig config;
    config.max_tries = 1;
    HttpFetcher fetcher(config);
    const auto page = fetcher.fetch(site.url("/listings"), soon());
    ::unsetenv("SSL_CERT_FILE");
    INFO(page.error);
    CHECK(page.ok);
    CHECK(page.http_status == 200);
  }
  SECTION("with verification on, a self-signed certificate fails the page, not the process") {
    FetchConfig config;
    config.max_tries = 1;
    HttpFetcher fetcher(config);
    const auto page = fetcher.fetch(site.url("/listings"), soon());
    CHECK_FALSE(page.ok);
    CHECK_FALSE(page.interrupted);
    CHECK_FALSE(page.http_status.has_value());
    // Why, as OpenSSL says it ("self-signed certificate"; "self signed" in
    // OpenSSL 1.1).
    INFO(page.error);
    CHECK(page.error.rfind("TLS certificate verification failed: self", 0) == 0);
  }
}

TEST_CASE("HTTPS: a certificate must name the host as RFC 6125 says", "[scrape][https]") {
  TempDir dir;
  struct Case {
    std::string cn, san, host;
    bool named;
  };
  const std::vector<Case> cases = {
      {"shop.test", "DNS:shop.test", "shop.test", true},
      {"x", "DNS:*.shop.test", "www.shop.test", true},
      {"x", "DNS:*.shop.test", "a.b.shop.test", false},
      // The library took these: a wildcard not leftmost, a wildcard alone,
      // the CN beside names that do not match, and a CN for an address.
      {"x", "DNS:www.*.test", "www.shop.test", false},
      {"x", "DNS:*", "localhost", false},
      {"shop.test", "DNS:other.test", "shop.test", false},
      {"127.0.0.1", "DNS:nothing.example", "127.0.0.1", false},
      // Nor beside an address's name (RFC 6125 6.4.4; curl refuses it too).
      {"shop.test", "IP:127.0.0.1", "shop.test", false},
      {"x", "IP:127.0.0.1", "127.0.0.1", true},
      // Names compare without case (the library's own check compared with it).
      {"x", "DNS:SHOP.TEST", "shop.test", true},
      // A fully qualified name (its root's dot) names the same host.
      {"x", "DNS:shop.test", "shop.test.", true},
      {"x", "DNS:*.shop.test", "www.shop.test.", true},
  };
  for (const Case& c : cases) {
    INFO(c.san << " for " << c.host);
    TlsSite site(dir, c.cn, c.san);
    ::setenv("SSL_CERT_FILE", site.cert_path().c_str(), 1);
    FetchConfig config;
    config.max_tries = 1;
    config.resolver = [](const std::string&) { return std::vector<std::string>{"127.0.0.1"}; };
    HttpFetcher fetcher(config);
    const auto page =
        fetcher.fetch("https://" + c.host + ":" + std::to_string(site.port()) + "/listings", soon());
    ::unsetenv("SSL_CERT_FILE");
    INFO(page.error);
    CHECK(page.ok == c.named);
    if (!c.named) {
      CHECK(page.error ==
            "TLS certificate verification failed: the certificate does not name " + c.host);
      CHECK_FALSE(page.interrupted);
    }
  }
}

TEST_CASE("HTTPS: a handshake that trickles ends at the connect timeout, and a cancel ends one "
          "at once",
          "[scrape][https]") {
  TempDir dir;
  TlsSite site(dir);
  FetchConfig config;
  config.verify_tls = false;  // self-signed
  config.max_tries = 1;
  config.connect_timeout = std::chrono::milliseconds(1000);

  SECTION("a byte every 200 ms: each wait of the handshake is short, all of them not") {
    SlowRelay relay(site.port(), std::chrono::milliseconds(200));
    HttpFetcher fetcher(config);
    const auto start = std::chrono::steady_clock::now();
    const auto page = fetcher.fetch(
        "https://127.0.0.1:" + std::to_string(relay.port()) + "/listings", soon());
    const auto took = std::chrono::steady_clock::now() - start;
    INFO(page.error);
    CHECK_FALSE(page.ok);
    CHECK_FALSE(page.interrupted);
    CHECK(page.error == "TLS handshake did not finish within 1 s");
    CHECK(took < std::chrono::seconds(4));  // not the minutes the trickle takes
  }
  SECTION("a server that sends nothing: a cancel ends the handshake, and returns, at once") {
    config.connect_timeout = std::chrono::milliseconds(8000);
    SlowRelay relay(site.port(), std::chrono::milliseconds(0));
    HttpFetcher fetcher(config);
    std::chrono::steady_clock::duration cancel_took{};
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const auto at = std::chrono::steady_clock::now();
      fetcher.cancel();
      cancel_took = std::chrono::steady_clock::now() - at;
    });
    const auto start = std::chrono::steady_clock::now();
    const auto page = fetcher.fetch(
        "https://127.0.0.1:" + std::to_string(relay.port()) + "/listings", soon());
    const auto took = std::chrono::steady_clock::now() - start;
    canceller.join();
    INFO(page.error);
    CHECK(page.interrupted);
    CHECK(page.error == "cancelled");
    CHECK(took < std::chrono::seconds(3));  // not the 8 s connect timeout
    CHECK(cancel_took < std::chrono::seconds(2));
  }
}

TEST_CASE("HTTPS: a handshake that fails says why, as OpenSSL says it", "[scrape][https]") {
  // A plain HTTP server asked for TLS: its answer is no TLS record.
  httplib::Server plain;
  plain.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html></html>", "text/html");
  });
  const int port = plain.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { plain.listen_after_bind(); });
  FetchConfig config;
  config.max_tries = 1;
  HttpFetcher fetcher(config);
  const auto page = fetcher.fetch("https://127.0.0.1:" + std::to_string(port) + "/", soon());
  plain.stop();
  serving.join();
  INFO(page.error);
  CHECK_FALSE(page.ok);
  CHECK(page.error == "TLS handshake failed: wrong version number");  // OpenSSL 3.0's words
}

TEST_CASE("HTTPS: a response head larger than one read, with nothing after it", "[scrape]") {
  TempDir dir;
  TlsSite site(dir);
  FetchConfig config;
  config.verify_tls = false;  // self-signed
  HttpFetcher fetcher(config);
  const auto r = fetcher.fetch(site.url("/big-head"), soon());
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.http_status == std::optional<int>(200));
  CHECK(r.body.empty());
}

TEST_CASE("HTTPS: a kept-alive connection the server closed while idle is not reused",
          "[scrape][https]") {
  // nginx closes a TLS connection idle past its keepalive_timeout with a
  // close_notify alert, then a FIN. The library's check before reusing a
  // connection peeked at that alert's first byte and took the connection
  // for alive: the next request was written to it and failed as a try ("the
  // connection closed before any response"), found against nginx with
  // keepalive_timeout 1s and --host-delay-ms 1300 (each page took two tries).
  TempDir dir;
  TlsSite site(dir);
  site.set_keep_alive_timeout(1);
  FetchConfig config;
  config.verify_tls = false;  // self-signed
  config.max_tries = 1;       // a try lost on the closed connection fails the page
  HttpFetcher fetcher(config);
  const auto first = fetcher.fetch(site.url("/listings"), soon());
  INFO(first.error);
  REQUIRE(first.ok);
  // Past the server's keep-alive timeout: it has closed the connection.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const auto second = fetcher.fetch(site.url("/listings"), soon());
  INFO(second.error);
  CHECK(second.ok);
  CHECK(second.http_status == std::optional<int>(200));
}

TEST_CASE("HTTPS: a host name the fetcher looked up is still the TLS server name", "[scrape]") {
  TempDir dir;
  TlsSite site(dir);
  FetchConfig config;
  config.verify_tls = false;  // self-signed
  config.resolver = [](const std::string& host) {
    return host == "tls-site.test" ? std::vector<std::string>{"127.0.0.1"}
                                   : std::vector<std::string>{};
  };
  HttpFetcher fetcher(config);
  const auto r =
      fetcher.fetch("https://tls-site.test:" + std::to_string(site.port()) + "/listings", soon());
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.body.find("Château") != std::string::npos);
  CHECK(site.server_name() == "tls-site.test");  // not the address connected to
  // Written in another case, the name is sent (and its certificate checked)
  // in lower case, as browsers send it.
  const auto upper =
      fetcher.fetch("https://TLS-Site.TEST:" + std::to_string(site.port()) + "/listings", soon());
  INFO(upper.error);
  CHECK(upper.ok);
  CHECK(site.server_name() == "tls-site.test");

  // An address is no server name (RFC 6066 3): none is sent for one.
  HttpFetcher by_address(config);
  const auto literal = by_address.fetch(site.url("/listings"), soon());
  INFO(literal.error);
  CHECK(literal.ok);
  CHECK(site.server_name().empty());
}

TEST_CASE("HTTPS: a cancel that comes while the TCP connect still waits ends the handshake "
          "that follows it at once",
          "[scrape][https]") {
  // A listener whose accept queue (backlog 0) is full: the fetcher's SYN is
  // dropped and sent again a second later, when there is room. The cancel
  // comes while the connect waits (cancel() then waits for the library's
  // socket lock); the server never answers the ClientHello.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int filler = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  FetchConfig config;
  config.verify_tls = false;
  config.max_tries = 1;
  config.connect_timeout = std::chrono::milliseconds(8000);
  HttpFetcher fetcher(config);
  std::chrono::steady_clock::duration cancel_took{};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto at = std::chrono::steady_clock::now();
    fetcher.cancel();
    cancel_took = std::chrono::steady_clock::now() - at;
  });
  std::thread room([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const int first = ::accept(listener, nullptr, nullptr);  // the filler
    if (first >= 0) {
      ::close(first);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  const auto page = fetcher.fetch(
      "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/listings", soon());
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  room.join();
  ::close(filler);
  ::close(listener);
  INFO(page.error);
  CHECK(page.interrupted);
  CHECK(took < std::chrono::seconds(4));  // the SYN sent again after 1 s, not the 8 s
  CHECK(cancel_took < std::chrono::seconds(4));
}

TEST_CASE("HTTPS: an IPv6 address is checked against the certificate's IP names",
          "[scrape][https]") {
  if (!has_ipv6_loopback()) {
    WARN("no IPv6 loopback here: IPv6 certificate names are not tested");
    return;
  }
  TempDir dir;
  for (const auto& [san, named] : std::vector<std::pair<std::string, bool>>{
           {"IP:::1", true}, {"IP:0:0:0:0:0:0:0:1", true}, {"IP:127.0.0.1", false},
           {"DNS:localhost", false}}) {
    INFO(san);
    TlsSite site(dir, "x" + std::to_string(named) + san.substr(3, 1), san, "::1");
    ::setenv("SSL_CERT_FILE", site.cert_path().c_str(), 1);
    FetchConfig config;
    config.max_tries = 1;
    HttpFetcher fetcher(config);
    const auto page =
        fetcher.fetch("https://[::1]:" + std::to_string(site.port()) + "/listings", soon());
    ::unsetenv("SSL_CERT_FILE");
    INFO(page.error);
    CHECK(page.ok == named);
    if (!named) {
      CHECK(page.error == "TLS certificate verification failed: the certificate does not name ::1");
    }
  }
}
