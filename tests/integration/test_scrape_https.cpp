// HTTPS fetching against a local TLS server with a self-signed certificate
// made for the test (the `openssl` command comes with ca-certificates).

#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/fetcher.hpp"
#include "support/temp_dir.hpp"

namespace {

using scrapekeep::scrape::FetchConfig;
using scrapekeep::scrape::HttpFetcher;
using scrapekeep::testing::TempDir;

class TlsSite {
 public:
  explicit TlsSite(const TempDir& dir)
      : m_cert(dir.file("cert.pem")), m_key(dir.file("key.pem")) {
    const std::string make_cert =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout '" +
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
    m_port = m_server->bind_to_any_port("127.0.0.1");
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
    CHECK_FALSE(page.error.empty());
  }
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
}
