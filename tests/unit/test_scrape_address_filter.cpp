// The SSRF guard: policy names, every refused range (IPv4, IPv6, IPv4-mapped)
// and the guard applied by the fetcher after DNS resolution and on every
// redirect hop.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "scrapekeep/scrape/address_filter.hpp"
#include "scrapekeep/scrape/fetcher.hpp"

using namespace scrapekeep::scrape;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

bool allows(TargetPolicy policy, const std::string& ip) {
  const auto filter = address_filter_for(policy);
  REQUIRE(filter);
  return filter(ip);
}

// Refused by refuse_link_local and refuse_private.
const char* const k_link_local[] = {
    "169.254.0.0",       "169.254.169.254",   "169.254.170.2",      "169.254.255.255",
    "100.100.100.200",   "192.0.0.192",       "168.63.129.16",      "fe80::",
    "fe80::1",           "febf:ffff::1",      "fe80::1%eth0",       "fd00:ec2::254",
    "fd20:ce::254",      "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "[fe80::1]",
    "::169.254.169.254",
    // IPv6 forms that embed it: NAT64, IPv4-translated, 6to4, Teredo's server.
    "64:ff9b::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "2002:a9fe:a9fe::1", "2001:0:a9fe:a9fe::1",
    // Local NAT64 (64:ff9b:1::/48) with its IPv4 address where RFC 6052 puts
    // it for a /96, /64, /56 and /48 prefix.
    "64:ff9b:1::a9fe:a9fe", "64:ff9b:1:0:a9:fea9:fe00:0", "64:ff9b:1:a9:fe:a9fe::",
    "64:ff9b:1:a9fe:a9:fe00::",
};

// Refused by refuse_private only.
const char* const k_private_only[] = {
    "127.0.0.1",       "127.255.255.254", "10.0.0.1",         "10.255.255.255",
    "172.16.0.1",      "172.31.255.255",  "192.168.0.1",      "192.168.255.255",
    "100.64.0.1",      "100.127.255.255", "0.0.0.0",          "0.1.2.3",
    "::1",             "::",              "fc00::1",          "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:172.20.0.1", "::ffff:192.168.1.1",
    "::ffff:100.64.0.1", "::ffff:0.0.0.0", "::ffff:7f00:1",    "[::1]",
    "64:ff9b::7f00:1", "64:ff9b::10.0.0.5", "2002:7f00:1::1",  "::ffff:0:7f00:1",
    "64:ff9b:1::5",    "fec0::1",          "ff02::1",          "224.0.0.1",
    "239.255.255.250", "240.0.0.1",        "255.255.255.255",  "198.18.0.1",
    "192.0.0.8",
};

// Allowed by every policy: public addresses next to the refused ranges.
const char* const k_public[] = {
    "8.8.8.8",        "1.1.1.1",          "169.253.255.255", "169.255.0.0",
    "172.15.255.255", "172.32.0.0",       "192.167.255.255", "192.169.0.0",
    "100.63.255.255", "100.128.0.0",      "11.0.0.1",        "126.255.255.255",
    "128.0.0.1",      "1.0.0.0",          "169.254.169.253.", "2001:4860:4860::8888",
    "2606:4700::1111", "fbff::1",         "fe00::1",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "198.20.0.1",
    "223.255.255.255", "192.0.1.1",       "2001:0:808:808::fefd:fcfb",
};

} // namespace

TEST_CASE("parse_target_policy: the three names and nothing else", "[scrape][address_filter]") {
  CHECK(parse_target_policy("allow-all") == TargetPolicy::allow_all);
  CHECK(parse_target_policy("refuse-link-local") == TargetPolicy::refuse_link_local);
  CHECK(parse_target_policy("refuse-private") == TargetPolicy::refuse_private);
  for (const char* bad : {"", "allow_all", "refuse_private", "Refuse-Private", " refuse-private",
                          "refuse-private ", "refuse", "all", "none"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_target_policy(bad));
  }
}

TEST_CASE("address_filter_for: allow_all has no filter", "[scrape][address_filter]") {
  CHECK_FALSE(address_filter_for(TargetPolicy::allow_all));
  CHECK(address_filter_for(TargetPolicy::refuse_link_local));
  CHECK(address_filter_for(TargetPolicy::refuse_private));
}

TEST_CASE("address_filter_for: every range, IPv4, IPv6 and IPv4-mapped",
          "[scrape][address_filter]") {
  for (const char* ip : k_link_local) {
    INFO(ip);
    CHECK_FALSE(allows(TargetPolicy::refuse_link_local, ip));
    CHECK_FALSE(allows(TargetPolicy::refuse_private, ip));
  }
  for (const char* ip : k_private_only) {
    INFO(ip);
    CHECK(allows(TargetPolicy::refuse_link_local, ip));
    CHECK_FALSE(allows(TargetPolicy::refuse_private, ip));
  }
  for (const char* ip : k_public) {
    INFO(ip);
    const bool is_address = std::string(ip).back() != '.';
    CHECK(allows(TargetPolicy::refuse_link_local, ip) == is_address);
    CHECK(allows(TargetPolicy::refuse_private, ip) == is_address);
  }
  // What is not an address is refused: the filter cannot vouch for it.
  for (const char* junk : {"", "localhost", "example.com", "169.254.169.254.", "1.2.3",
                           "256.1.1.1", "::ffff:999.1.1.1", "[", "[]", "%eth0", "0x7f.1",
                           "2852039166"}) {
    INFO("'" << junk << "'");
    CHECK_FALSE(allows(TargetPolicy::refuse_link_local, junk));
    CHECK_FALSE(allows(TargetPolicy::refuse_private, junk));
  }
}

namespace {

// A site on 127.0.0.1 whose pages redirect wherever the test says.
class RedirectSite {
 public:
  RedirectSite() {
    m_server.Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html><body><p>ok</p></body></html>", "text/html");
    });
    m_server.Get("/to", [this](const httplib::Request& req, httplib::Response& res) {
      ++m_hits;
      res.status = 302;
      res.set_header("Location", req.get_param_value("u"));
    });
    // /chain?n=N: N relative hops on this site, then the metadata address.
    m_server.Get("/chain", [](const httplib::Request& req, httplib::Response& res) {
      const int n = std::stoi(req.get_param_value("n"));
      res.status = 302;
      res.set_header("Location", n > 0 ? "/chain?n=" + std::to_string(n - 1)
                                       : std::string("http://169.254.169.254/"));
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~RedirectSite() {
    m_server.stop();
    m_thread.join();
  }
  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + target;
  }
  // A URL on this site that redirects to `location` (sent as written).
  std::string redirect_to(const std::string& location) const {
    return url("/to?u=" + httplib::detail::encode_query_param(location));
  }
  int hits() const { return m_hits; }
  int port() const { return m_port; }

 private:
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::atomic<int> m_hits{0};
};

FetchConfig guarded(TargetPolicy policy) {
  FetchConfig config;
  config.backoff = std::chrono::milliseconds(10);
  config.connect_timeout = std::chrono::milliseconds(2000);
  config.address_filter = address_filter_for(policy);
  return config;
}

SteadyTime soon() { return steady_clock::now() + seconds(10); }

} // namespace

TEST_CASE("fetch: a redirect to a refused address fails the page and names the address",
          "[scrape][address_filter]") {
  RedirectSite site;
  HttpFetcher fetcher(guarded(TargetPolicy::refuse_link_local));

  // The first hop (127.0.0.1) is allowed by refuse_link_local.
  const FetchResult ok = fetcher.fetch(site.redirect_to(site.url("/ok")), soon());
  INFO(ok.error);
  CHECK(ok.ok);
  CHECK(ok.final_url == site.url("/ok"));

  // Every spelling of the metadata address is resolved, then refused; none
  // is connected to (a connection would time out or fail otherwise).
  for (const std::string& location :
       {std::string("http://169.254.169.254/latest/meta-data/"),
        std::string("http://169.254.169.254:80/latest/meta-data/"),
        std::string("http://2852039166/latest/meta-data/"),        // decimal
        std::string("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/"),  // hex
        std::string("http://0251.0376.0251.0376/latest/meta-data/"),  // octal
        std::string("http://[::ffff:169.254.169.254]/latest/meta-data/")}) {
    INFO(location);
    const auto started = steady_clock::now();
    const FetchResult r = fetcher.fetch(site.redirect_to(location), soon());
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.error.find("address not allowed") != std::string::npos);
    CHECK(r.error.find("169.254.169.254") != std::string::npos);
    CHECK(r.http_status == std::optional<int>(302));  // the redirect's, the last to arrive
    // Refused before any connection attempt: far below the connect timeout.
    CHECK(steady_clock::now() - started < std::chrono::milliseconds(1500));
  }

  // A refused hop deep in a chain is refused too.
  const FetchResult deep = fetcher.fetch(site.url("/chain?n=3"), soon());
  CHECK_FALSE(deep.ok);
  // Named with the URL that gave it, not only the one asked for.
  CHECK(deep.error == "address not allowed: 169.254.169.254 (redirected to "
                      "http://169.254.169.254/)");
  CHECK(deep.http_status == std::optional<int>(302));
}

TEST_CASE("fetch: refuse_private refuses loopback at the first hop, allow_all lets it through",
          "[scrape][address_filter]") {
  RedirectSite site;
  const int before = site.hits();
  HttpFetcher strict(guarded(TargetPolicy::refuse_private));
  for (const std::string& url :
       {site.url("/ok"), "http://localhost:" + std::to_string(site.port()) + "/ok",
        "http://2130706433:" + std::to_string(site.port()) + "/ok"}) {
    INFO(url);
    const FetchResult r = strict.fetch(url, soon());
    CHECK_FALSE(r.ok);
    // Debian's /etc/hosts names ::1 localhost too, and getaddrinfo may give it first.
    CHECK((r.error.find("address not allowed: 127.0.0.1") != std::string::npos ||
           (url.find("localhost") != std::string::npos &&
            r.error.find("address not allowed: ::1") != std::string::npos)));
  }
  CHECK(site.hits() == before);

  FetchConfig open;
  open.address_filter = address_filter_for(TargetPolicy::allow_all);
  HttpFetcher lax(open);
  CHECK(lax.fetch(site.url("/ok"), soon()).ok);
}
