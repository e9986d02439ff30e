#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/scrape/fetcher.hpp"
#include "support/child_process.hpp"
#include "support/fixture_site.hpp"
#include "support/hanging_resolver.hpp"

using namespace scrapekeep::scrape;
using scrapekeep::testing::eventually;
using scrapekeep::testing::FixtureSite;
using scrapekeep::testing::FixtureSiteConfig;
using scrapekeep::testing::HangingResolver;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

FetchConfig test_config() {
  FetchConfig config;
  config.backoff = milliseconds(10);
  return config;
}

SteadyTime in(std::chrono::milliseconds d) { return steady_clock::now() + d; }

// A site that answers every connection by reading the request, then running
// `answer` on the socket: for answers the fixture site's library cannot give.
// Stops by itself after 30 s.
class RawSite {
 public:
  explicit RawSite(std::function<void(int fd)> answer) : m_answer(std::move(answer)) {
    m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(m_listen, 8) == 0);
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    m_port = ntohs(a.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~RawSite() {
    m_stop = true;
    m_thread.join();
    ::close(m_listen);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }

 private:
  void serve() {
    const auto until = steady_clock::now() + seconds(30);
    while (!m_stop && steady_clock::now() < until) {
      pollfd p{m_listen, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      const int fd = ::accept(m_listen, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      char request[4096];
      if (::recv(fd, request, sizeof request, 0) > 0) {
        m_answer(fd);
      }
      ::close(fd);
    }
  }

  std::function<void(int)> m_answer;
  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

// A 200 with `page` as its HTML body, and the connection closed (or kept).
std::string html_answer(const std::string& page, bool close = true) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
         std::to_string(page.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + page;
}

bool send_all(int fd, const std::string& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

} // namespace

TEST_CASE("fetch: an HTML page, with our User-Agent and compression", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/listings?page=1"), in(seconds(10)));
  CHECK(r.ok);
  CHECK(r.http_status == std::optional<int>(200));
  CHECK(r.final_url == site.url("/listings?page=1"));
  CHECK(r.error.empty());
  CHECK_FALSE(r.interrupted);
  CHECK(r.content_type == "text/html");
  CHECK(r.charset == "utf-8");
  CHECK(r.body.find("<h2>Title <b>1-1</b></h2>") != std::string::npos);
  CHECK(r.body.find(site.url("/listings?page=3")) == std::string::npos);
  CHECK(site.hits("/listings?page=1") == 1);
  CHECK(site.last_header("/listings?page=1", "User-Agent") == "scrapekeep/0.1");
  CHECK(site.last_header("/listings?page=1", "Accept-Encoding").find("gzip") != std::string::npos);

  // The fragment is not sent; the connection is reused for the next page.
  const FetchResult second = fetcher.fetch(site.url("/listings?page=2#top"), in(seconds(10)));
  CHECK(second.ok);
  CHECK(second.final_url == site.url("/listings?page=2"));
  CHECK(site.hits("/listings?page=2") == 1);
}

TEST_CASE("fetch: 4xx fails at once, 5xx is retried three times", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());

  const FetchResult gone = fetcher.fetch(site.url("/gone"), in(seconds(10)));
  CHECK_FALSE(gone.ok);
  CHECK(gone.http_status == std::optional<int>(404));
  CHECK(gone.error == "HTTP 404");
  CHECK_FALSE(gone.interrupted);
  CHECK(gone.body.empty());
  CHECK(site.hits("/gone") == 1);

  const FetchResult down = fetcher.fetch(site.url("/unavailable"), in(seconds(10)));
  CHECK_FALSE(down.ok);
  CHECK(down.http_status == std::optional<int>(503));
  CHECK(down.error == "HTTP 503");
  CHECK(site.hits("/unavailable") == 3);

  const FetchResult missing = fetcher.fetch(site.url("/listings?page=99"), in(seconds(10)));
  CHECK(missing.error == "HTTP 404");
}

TEST_CASE("fetch: a page that fails once with 503 then succeeds", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/flaky?page=2"), in(seconds(10)));
  CHECK(r.ok);
  CHECK(r.http_status == std::optional<int>(200));
  CHECK(r.body.find("Title <b>2-1</b>") != std::string::npos);
  CHECK(site.hits("/flaky?page=2") == 2);
}

TEST_CASE("fetch: 429 honours a Retry-After up to max_retry_after and the deadline",
          "[scrape][fetcher]") {
  SECTION("short: waited for and retried") {
    FixtureSite site;
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/ratelimited"), in(seconds(10)));
    CHECK(r.ok);
    CHECK(site.hits("/ratelimited") == 2);
  }
  SECTION("longer than max_retry_after: the page fails") {
    FixtureSite site;
    FetchConfig config = test_config();
    config.max_retry_after = milliseconds(500);
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch(site.url("/ratelimited"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.http_status == std::optional<int>(429));
    CHECK(r.error ==
          "HTTP 429, and the site asked to wait 1 s, more than the 0.5 s a page may wait");
    CHECK(site.hits("/ratelimited") == 1);
  }
  SECTION("ending past the deadline: the page fails at once") {
    FixtureSite site;
    HttpFetcher fetcher(test_config());
    const auto started = steady_clock::now();
    const FetchResult r = fetcher.fetch(site.url("/ratelimited?after=10"), in(seconds(5)));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.http_status == std::optional<int>(429));
    CHECK(r.error == "HTTP 429, and the site asked to wait 10 s, past the job's deadline");
    CHECK(site.hits("/ratelimited?after=10") == 1);
    CHECK(steady_clock::now() - started < seconds(4));  // not at the deadline, 5 s
  }
  SECTION("one of many years (its milliseconds, or its seconds, past a long's range): "
          "the page fails at once") {
    FixtureSite site;
    HttpFetcher fetcher(test_config());
    // Quoted as what it is, not as the year it is read as.
    for (const std::string after : {"99999999999999999", "99999999999999999999", "31536000"}) {
      const std::string target = "/ratelimited?after=" + after;
      const FetchResult r = fetcher.fetch(site.url(target), in(seconds(10)));
      INFO(after);
      CHECK_FALSE(r.ok);
      CHECK(r.error == "HTTP 429, and the site asked to wait a year or more, more than the 60 s a "
                       "page may wait");
      CHECK(site.hits(target) == 1);
    }
    const FetchResult day = fetcher.fetch(site.url("/ratelimited?after=86400"), in(seconds(10)));
    CHECK(day.error ==
          "HTTP 429, and the site asked to wait 86400 s, more than the 60 s a page may wait");
  }
  SECTION("over 5 s by default, and a cancel ends the wait") {
    CHECK(FetchConfig().max_retry_after == seconds(60));
    FixtureSite site;
    HttpFetcher fetcher(test_config());
    FetchResult r;
    std::thread fetching(
        [&] { r = fetcher.fetch(site.url("/ratelimited?after=10"), in(seconds(60))); });
    REQUIRE(eventually([&] { return site.hits("/ratelimited?after=10") == 1; }));
    std::this_thread::sleep_for(milliseconds(200));
    const auto cancelled_at = steady_clock::now();
    fetcher.cancel();
    fetching.join();
    CHECK(steady_clock::now() - cancelled_at < seconds(5));  // not the 10 s asked for
    CHECK_FALSE(r.ok);
    CHECK(r.interrupted);
    CHECK(r.error == "cancelled");
    CHECK(site.hits("/ratelimited?after=10") == 1);
  }
}

TEST_CASE("fetch: a gzip body that cannot be decoded fails at once, not as a failed read",
          "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/bad-gzip"), in(seconds(10)));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.interrupted);
  CHECK(r.http_status == std::optional<int>(200));
  CHECK(r.error == "cannot decode the gzip body");
  CHECK(r.body.empty());
  CHECK(site.hits("/bad-gzip") == 1);
  // A good gzip page still decodes, on the same fetcher.
  const FetchResult good = fetcher.fetch(site.url("/listings?page=1"), in(seconds(10)));
  CHECK(good.ok);
  CHECK(good.body.find("<h2>Title <b>1-1</b></h2>") != std::string::npos);
}

namespace {

// `text` coded whole by one of the library's compressors.
template <typename Compressor>
std::string compressed(const std::string& text) {
  std::string out;
  Compressor compressor;
  REQUIRE(compressor.compress(text.data(), text.size(), true, [&](const char* d, std::size_t n) {
    out.append(d, n);
    return true;
  }));
  return out;
}

// `text` coded whole as `coding` says: br (in either case), or else gzip.
std::string coded(const std::string& coding, const std::string& text) {
  if (coding == "br" || coding == "BR") {
    return compressed<httplib::detail::brotli_compressor>(text);
  }
  return compressed<httplib::detail::gzip_compressor>(text);
}

// A site answering every request with `body`, sent with `coding`.
std::function<void(int)> coded_answer(const std::string& coding, const std::string& body,
                                      std::atomic<int>& requests) {
  return [=, &requests](int fd) {
    ++requests;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: " + coding +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body);
  };
}

} // namespace

TEST_CASE("fetch: Content-Encoding is read as a coding, and a gzip or br stream must end",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><h2>Title</h2></body></html>";
  std::atomic<int> requests{0};
  HttpFetcher fetcher(test_config());
  SECTION("GZIP, Gzip, x-gzip, a padded gzip and br (never asked for) decode to the page") {
    for (const std::string coding : {"GZIP", "Gzip", "x-gzip", " gzip ", "X-GZIP", "BR"}) {
      RawSite site(coded_answer(coding, coded(coding, page), requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      INFO(coding);
      CHECK(r.ok);
      CHECK(r.body == page);
    }
  }
  SECTION("deflate: zlib-wrapped, raw (RFC 1951, as older servers send it) or gzip") {
    const auto deflated = [&](int window_bits) {
      z_stream z{};
      REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
      std::string out(page.size() + 64, '\0');
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(page.data()));
      z.avail_in = static_cast<uInt>(page.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
      out.resize(z.total_out);
      deflateEnd(&z);
      return out;
    };
    for (const std::string& body : {deflated(15), deflated(-15), coded("gzip", page)}) {
      RawSite site(coded_answer("deflate", body, requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      INFO(r.error);
      CHECK(r.ok);
      CHECK(r.body == page);
    }
    // The body's first byte alone in its first chunk: the wrapper is still
    // told by the first two bytes of the body, not of the second chunk.
    for (const std::string& body : {deflated(15), deflated(-15), coded("gzip", page)}) {
      RawSite site([&, body](int fd) {
        ++requests;
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: deflate"
                     "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n" +
                         body.substr(0, 1) + "\r\n");
        std::this_thread::sleep_for(milliseconds(50));
        char size[24];
        std::snprintf(size, sizeof size, "%zx", body.size() - 1);
        send_all(fd, std::string(size) + "\r\n" + body.substr(1) + "\r\n0\r\n\r\n");
      });
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      INFO(r.error);
      CHECK(r.ok);
      CHECK(r.body == page);
    }
    // Raw deflate that is cut short still fails.
    const std::string raw = deflated(-15);
    RawSite cut(coded_answer("deflate", raw.substr(0, raw.size() - 2), requests));
    const FetchResult r = fetcher.fetch(cut.url("/"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK(r.error == "cannot decode the deflate body");
  }
  SECTION("identity is the body as sent, and an empty gzip body is empty") {
    for (const auto& [coding, body] : {std::pair<std::string, std::string>("Identity", page),
                                       std::pair<std::string, std::string>("gzip", "")}) {
      RawSite site(coded_answer(coding, body, requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      INFO(coding);
      CHECK(r.ok);
      CHECK(r.body == body);
    }
  }
  SECTION("half a gzip or br stream, one short of its last byte, or one with bytes after its "
          "end fails, not retried") {
    for (const std::string coding : {"gzip", "br"}) {
      const std::string whole = coded(coding, page);
      for (const std::string& body : {whole.substr(0, whole.size() / 2),
                                      whole.substr(0, whole.size() - 1), whole + "trailing"}) {
        requests = 0;
        RawSite site(coded_answer(coding, body, requests));  // Content-Length matches
        const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
        INFO(coding << ": " << body.size() << " of " << whole.size() << " bytes");
        CHECK_FALSE(r.ok);
        CHECK_FALSE(r.interrupted);
        CHECK(r.http_status == std::optional<int>(200));
        CHECK(r.error == "cannot decode the " + coding + " body");
        CHECK(r.body.empty());
        CHECK(requests == 1);
      }
    }
    // The decoder the fetcher keeps for the next body starts that body afresh.
    for (const std::string coding : {"gzip", "br", "gzip"}) {
      RawSite site(coded_answer(coding, coded(coding, page), requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      INFO(coding);
      CHECK(r.ok);
      CHECK(r.body == page);
    }
  }
  SECTION("an unknown coding, or a list of codings, fails at once") {
    for (const std::string coding : {"compress", "gzip, br", "zstd"}) {
      RawSite site(coded_answer(coding, page, requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
      CHECK_FALSE(r.ok);
      CHECK_FALSE(r.interrupted);
      CHECK(r.error == "unsupported Content-Encoding " + coding);
    }
    CHECK(requests == 3);
  }
  SECTION("a coding or a Content-Type with control characters or bytes that are not UTF-8 is "
          "quoted printable in the error") {
    RawSite site(coded_answer("zz\x1b[31mRED\xff", page, requests));
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK(r.error == "unsupported Content-Encoding zz\\x1B[31mRED\\xFF");
    RawSite typed([](int fd) {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/x\x1b[2J\x07\r\n"
                   "Content-Length: 2\r\nConnection: close\r\n\r\nhi");
    });
    const FetchResult t = fetcher.fetch(typed.url("/"), in(seconds(10)));
    CHECK_FALSE(t.ok);
    CHECK(t.error == "not an HTML page (Content-Type text/x\\x1B[2j\\x07)");  // media type lowered
  }
  SECTION("an 8 MiB page of few distinct bytes decodes whole, gzip or br") {
    std::string big = "<html><body>";
    big += std::string(8 * 1024 * 1024, 'a');
    big += "</body></html>";
    for (const std::string coding : {"gzip", "br"}) {
      RawSite site(coded_answer(coding, coded(coding, big), requests));
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
      INFO(coding);
      CHECK(r.ok);
      CHECK(r.body.size() == big.size());
      CHECK(r.body == big);
    }
  }
}

TEST_CASE("fetch: a body shorter than its Content-Length is retried, then says so",
          "[scrape][fetcher]") {
  SECTION("the site closes the connection") {
    FixtureSite site;
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/truncated"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.error == "the response ended before its Content-Length (100 of 1000 bytes)");
    CHECK(r.body.empty());
    CHECK(site.hits("/truncated") == 3);
  }
  SECTION("a slow page's first byte may take longer than the read timeout") {
    std::atomic<int> requests{0};
    RawSite site([&](int fd) {
      ++requests;
      std::this_thread::sleep_for(milliseconds(700));
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok");
    });
    FetchConfig config = test_config();
    config.read_timeout = milliseconds(200);
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
    INFO(r.error);
    CHECK(r.ok);
    CHECK(r.body == "ok");
    CHECK(requests == 1);
  }
  SECTION("the site stops sending") {
    std::atomic<int> requests{0};
    RawSite site([&](int fd) {
      ++requests;
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n" +
                       std::string(100, 'x'));
      std::this_thread::sleep_for(milliseconds(400));
    });
    FetchConfig config = test_config();
    config.read_timeout = milliseconds(200);
    config.max_tries = 1;  // the site answers one connection at a time
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.error == "the response stalled before its Content-Length (100 of 1000 bytes, then "
                     "nothing for the read timeout)");
    CHECK(requests == 1);
  }
}

TEST_CASE("fetch: redirects resolve against the current URL, at most 5", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());

  const FetchResult one = fetcher.fetch(site.url("/redirect"), in(seconds(10)));
  CHECK(one.ok);
  CHECK(one.final_url == site.url("/listings?page=1"));
  CHECK(one.http_status == std::optional<int>(200));
  CHECK(site.hits("/redirect") == 1);
  CHECK(site.hits("/listings?page=1") == 1);

  const FetchResult five = fetcher.fetch(site.url("/redirect-chain?n=4"), in(seconds(10)));
  CHECK(five.ok);
  CHECK(five.final_url == site.url("/listings?page=1"));

  const FetchResult six = fetcher.fetch(site.url("/redirect-chain?n=5"), in(seconds(10)));
  CHECK_FALSE(six.ok);
  CHECK(six.error == "too many redirects (more than 5)");
  CHECK(six.http_status == std::optional<int>(302));

  const FetchResult loop = fetcher.fetch(site.url("/redirect-loop"), in(seconds(10)));
  CHECK_FALSE(loop.ok);
  CHECK(loop.error == "too many redirects (more than 5)");
  CHECK(site.hits("/redirect-loop") == 6);
}

TEST_CASE("fetch: a body over 10 MiB fails the page", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());
  for (const std::string target : {"/oversize", "/oversize-chunked"}) {
    INFO(target);
    const FetchResult r = fetcher.fetch(site.url(target), in(seconds(20)));
    CHECK_FALSE(r.ok);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.error == "response body exceeds 10485760 bytes");
    CHECK(r.body.empty());
    CHECK(site.hits(target) == 1);
  }
  // The fetcher is still usable afterwards.
  CHECK(fetcher.fetch(site.url("/listings?page=1"), in(seconds(10))).ok);
}

TEST_CASE("fetch: non-HTML content fails with the content type", "[scrape][fetcher]") {
  FixtureSite site;
  HttpFetcher fetcher(test_config());
  const FetchResult json = fetcher.fetch(site.url("/data.json"), in(seconds(10)));
  CHECK_FALSE(json.ok);
  CHECK(json.http_status == std::optional<int>(200));
  CHECK(json.error == "not an HTML page (Content-Type application/json)");
  const FetchResult png = fetcher.fetch(site.url("/image.png"), in(seconds(10)));
  CHECK(png.error == "not an HTML page (Content-Type image/png)");
  CHECK(site.hits("/image.png") == 1);
}

TEST_CASE("fetch: several Content-Type values are read as browsers read them, the last valid "
          "one counting",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><p>hi</p></body></html>";
  struct Case {
    std::string headers;
    bool html;
    std::string charset;
  };
  for (const Case& c : std::vector<Case>{
           {"Content-Type: text/plain\r\nContent-Type: text/html; charset=windows-1252\r\n", true,
            "windows-1252"},
           {"Content-Type: text/html\r\nContent-Type: text/plain\r\n", false, ""},
           {"Content-Type: text/html, text/plain\r\n", false, ""},
           {"Content-Type: text/html; charset=gbk, text/html\r\n", true, "gbk"},
           {"Content-Type: text/html; charset=\"a,b\"\r\n", true, "a,b"},
           {"Content-Type: text/html, */*, nonsense\r\n", true, ""},
           {"Content-Type: text/plain; charset=gbk, text/html\r\n", true, ""},
           // A backslash in quotes escapes the quote after it: the comma is still quoted.
           {"Content-Type: text/html; a=\"\\\", text/plain\"\r\n", true, ""}}) {
    INFO(c.headers);
    RawSite site([&](int fd) {
      send_all(fd, "HTTP/1.1 200 OK\r\n" + c.headers + "Content-Length: " +
                       std::to_string(page.size()) + "\r\nConnection: close\r\n\r\n" + page);
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
    CHECK(r.ok == c.html);
    if (c.html) {
      CHECK(r.charset == c.charset);
      CHECK(r.body == page);
    } else {
      CHECK(r.error == "not an HTML page (Content-Type text/plain)");
    }
  }
}

TEST_CASE("fetch: charset from the header, unsupported URLs, refused connections", "[scrape][fetcher]") {
  int closed_port = 0;
  {
    FixtureSite gone;
    closed_port = gone.port();
  }
  FixtureSite site;
  HttpFetcher fetcher(test_config());

  const FetchResult latin = fetcher.fetch(site.url("/latin1"), in(seconds(10)));
  CHECK(latin.ok);
  CHECK(latin.charset == "ISO-8859-1");

  // The Content-Type's parameters as the Fetch standard reads them.
  const auto charset_of = [&](const std::string& type) {
    const FetchResult r = fetcher.fetch(site.url("/typed?type=" + httplib::detail::encode_query_param(type)),
                                        in(seconds(10)));
    CHECK(r.ok);
    return r.charset;
  };
  CHECK(charset_of("text/html; x-charset=windows-1252; charset=utf-8") == "utf-8");
  CHECK(charset_of("text/html;charset=\"Shift_JIS\"; foo=bar") == "Shift_JIS");
  CHECK(charset_of("text/html; foo=\"a;charset=koi8-r\"; charset=euc-jp") == "euc-jp");
  CHECK(charset_of("text/html; CHARSET=big5; charset=gbk") == "big5");
  CHECK(charset_of("text/html; charset='windows-1252'") == "'windows-1252'");
  CHECK(charset_of("text/html; charset") == "");
  CHECK(charset_of("text/html") == "");

  const FetchResult ftp = fetcher.fetch("ftp://127.0.0.1/file", in(seconds(10)));
  CHECK_FALSE(ftp.ok);
  CHECK(ftp.error == "not an http(s) URL");
  CHECK_FALSE(ftp.http_status);

  const FetchResult refused =
      fetcher.fetch("http://127.0.0.1:" + std::to_string(closed_port) + "/", in(seconds(10)));
  CHECK_FALSE(refused.ok);
  CHECK_FALSE(refused.interrupted);
  CHECK_FALSE(refused.http_status);
  CHECK(refused.error == "connection failed");
}

TEST_CASE("fetch: never runs past its deadline", "[scrape][fetcher]") {
  FixtureSiteConfig config;
  config.slow_delay = seconds(5);
  FixtureSite site(config);
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/slow?page=1"), in(milliseconds(200)));
  CHECK_FALSE(r.ok);
  CHECK(r.interrupted);
  CHECK(r.error == "deadline exceeded");

  const FetchResult past = fetcher.fetch(site.url("/listings?page=1"), in(milliseconds(-1)));
  CHECK(past.interrupted);
  // Nor is a request sent that has too little time left to be answered.
  const FetchResult late = fetcher.fetch(site.url("/listings?page=1"), in(milliseconds(5)));
  CHECK(late.interrupted);
  CHECK(late.error == "deadline exceeded");
  CHECK(site.hits("/listings?page=1") == 0);
}

TEST_CASE("fetch: a closed gate stops the request before it goes out, for good",
          "[scrape][fetcher]") {
  FixtureSite site;
  auto limiter = std::make_shared<HostLimiter>(HostLimiterConfig{1, milliseconds(0)});
  HttpFetcher fetcher(test_config(), limiter);
  std::atomic<int> asked{0};
  std::atomic<bool> open{true};
  fetcher.set_gate([&] {
    ++asked;
    return open.load();
  });
  CHECK(fetcher.fetch(site.url("/listings?page=1"), in(seconds(10))).ok);
  CHECK(asked == 1);

  // The gate is asked after the wait for the host's turn: closed meanwhile,
  // nothing is sent.
  const std::string origin = "http://127.0.0.1:" + std::to_string(site.port());
  auto held = limiter->acquire(origin, in(seconds(1)));
  REQUIRE(held);
  FetchResult r;
  std::thread t([&] { r = fetcher.fetch(site.url("/listings?page=2"), in(seconds(10))); });
  std::this_thread::sleep_for(milliseconds(50));
  open = false;
  held.reset();
  t.join();
  CHECK(r.interrupted);
  CHECK(r.error == "cancelled");
  CHECK(site.hits("/listings?page=2") == 0);
  // Like cancel(): the later fetches stop too, without asking.
  open = true;
  CHECK(fetcher.fetch(site.url("/listings?page=3"), in(seconds(10))).interrupted);
  CHECK(site.hits("/listings?page=3") == 0);
  CHECK(asked == 2);
}

TEST_CASE("fetch: a host name in another case waits for the same host's turn",
          "[scrape][fetcher]") {
  FixtureSite site;
  auto limiter = std::make_shared<HostLimiter>(HostLimiterConfig{1, milliseconds(0)});
  HttpFetcher fetcher(test_config(), limiter);
  const std::string port = std::to_string(site.port());
  auto held = limiter->acquire("http://localhost:" + port, in(seconds(5)));
  REQUIRE(held);
  const FetchResult r =
      fetcher.fetch("HTTP://LocalHost:" + port + "/listings?page=1", in(milliseconds(300)));
  CHECK(r.interrupted);
  CHECK(r.error == "deadline exceeded");
  CHECK(site.hits("/listings?page=1") == 0);
  held.reset();
  CHECK(fetcher.fetch("http://LOCALHOST:" + port + "/listings?page=1", in(seconds(10))).ok);
}

TEST_CASE("fetch: cancel() from another thread aborts the fetch in flight", "[scrape][fetcher]") {
  FixtureSiteConfig config;
  config.slow_delay = seconds(5);
  FixtureSite site(config);
  HttpFetcher fetcher(test_config());
  std::thread canceller([&] {
    eventually([&] { return site.hits("/slow?page=1") == 1; });
    fetcher.cancel();
  });
  const FetchResult r = fetcher.fetch(site.url("/slow?page=1"), in(seconds(60)));
  canceller.join();
  CHECK_FALSE(r.ok);
  CHECK(r.interrupted);
  CHECK(r.error == "cancelled");
  CHECK(site.hits("/slow?page=1") == 1);

  // Cancel is sticky: later fetches do not even start.
  const FetchResult later = fetcher.fetch(site.url("/listings?page=1"), in(seconds(10)));
  CHECK(later.interrupted);
  CHECK(site.hits("/listings?page=1") == 0);
}

TEST_CASE("fetch: the address filter sees the resolved IP", "[scrape][fetcher]") {
  FixtureSite site;
  std::string seen;
  FetchConfig refuse = test_config();
  refuse.address_filter = [&](const std::string& ip) {
    seen = ip;
    return false;
  };
  HttpFetcher refusing(refuse);
  const FetchResult r = refusing.fetch(site.url("/listings?page=1"), in(seconds(10)));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "address not allowed: 127.0.0.1");
  CHECK(seen == "127.0.0.1");
  CHECK(site.hits("/listings?page=1") == 0);

  FetchConfig allow = test_config();
  allow.address_filter = [](const std::string& ip) { return ip == "127.0.0.1"; };
  HttpFetcher allowing(allow);
  CHECK(allowing.fetch("http://localhost:" + std::to_string(site.port()) + "/listings?page=1",
                       in(seconds(10)))
            .ok);
  CHECK(site.hits("/listings?page=1") == 1);
}

TEST_CASE("fetch: a host name is looked up by the resolver, and the fetch connects to its address",
          "[scrape][fetcher]") {
  FixtureSite site;
  std::atomic<int> lookups{0};
  FetchConfig config = test_config();
  config.resolver = [&](const std::string& host) -> std::vector<std::string> {
    ++lookups;
    if (host == "site.test" || host == "xn--bcher-kva.test") {
      return {"127.0.0.1"};
    }
    return {};
  };
  const std::string origin = "http://site.test:" + std::to_string(site.port());
  SECTION("an internationalized name is looked up and sent in its ASCII form") {
    HttpFetcher fetcher(config);
    const std::string port = std::to_string(site.port());
    const FetchResult r =
        fetcher.fetch("http://B\xC3\x9C" "cher.test:" + port + "/listings?page=1", in(seconds(10)));
    CHECK(r.ok);
    CHECK(lookups == 1);
    CHECK(site.last_header("/listings?page=1", "Host") == "xn--bcher-kva.test:" + port);
    const FetchResult bad = fetcher.fetch("http://%FF.test:" + port + "/", in(seconds(10)));
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "not a valid host name (it has no ASCII form under IDNA)");
    CHECK(lookups == 1);
  }
  SECTION("without an address filter, once per connection opened") {
    HttpFetcher fetcher(config);
    CHECK(fetcher.fetch(origin + "/listings?page=1", in(seconds(10))).ok);
    CHECK(fetcher.fetch(origin + "/listings?page=2", in(seconds(10))).ok);
    CHECK(lookups == 1);  // the kept-alive connection took the second request
    CHECK(site.last_header("/listings?page=1", "Host") ==
          "site.test:" + std::to_string(site.port()));
  }
  SECTION("with an address filter, at every request") {
    config.address_filter = [](const std::string& ip) { return ip == "127.0.0.1"; };
    HttpFetcher fetcher(config);
    CHECK(fetcher.fetch(origin + "/listings?page=1", in(seconds(10))).ok);
    CHECK(fetcher.fetch(origin + "/listings?page=2", in(seconds(10))).ok);
    CHECK(lookups == 2);
  }
  SECTION("a name without an address fails the page after its tries") {
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch("http://nowhere.test/", in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.interrupted);
    CHECK(r.error == "cannot resolve host nowhere.test");
    CHECK(lookups == 3);
  }
  SECTION("an IP literal is not looked up") {
    HttpFetcher fetcher(config);
    CHECK(fetcher.fetch(site.url("/listings?page=1"), in(seconds(10))).ok);
    CHECK(lookups == 0);
  }
  SECTION("an address that refuses the connection is passed over for the next") {
    // The site listens on 127.0.0.1 only, as a host's ::1 often has nothing.
    config.resolver = [&](const std::string&) -> std::vector<std::string> {
      ++lookups;
      return {"::1", "127.0.0.1"};
    };
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch(origin + "/listings?page=1", in(seconds(10)));
    CHECK(r.ok);  // each try would begin with ::1 again: no later try would do
    CHECK(lookups == 1);
    config.address_filter = [](const std::string& ip) { return ip != "10.0.0.1"; };
    config.resolver = [&](const std::string&) -> std::vector<std::string> {
      return {"10.0.0.1", "::1", "127.0.0.1"};
    };
    HttpFetcher filtered(config);
    CHECK(filtered.fetch(origin + "/listings?page=2", in(seconds(10))).ok);
  }
  SECTION("an address where the connection times out is passed over for the next") {
    // A listener on 127.0.0.2 that never accepts, its backlog full: the
    // kernel drops further SYNs, as a host without a route to it would.
    const int hole = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(site.port()));
    inet_pton(AF_INET, "127.0.0.2", &addr.sin_addr);
    REQUIRE(::bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(hole, 0) == 0);
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
      fillers.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
      ::connect(fillers.back(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    std::this_thread::sleep_for(milliseconds(200));
    config.connect_timeout = seconds(4);
    config.max_tries = 1;
    config.resolver = [](const std::string&) -> std::vector<std::string> {
      return {"127.0.0.2", "127.0.0.1"};
    };
    HttpFetcher fetcher(config);
    const FetchResult r = fetcher.fetch(origin + "/listings?page=1", in(seconds(30)));
    CHECK(r.ok);
    CHECK(r.error.empty());
    for (const int fd : fillers) {
      ::close(fd);
    }
    ::close(hole);
  }
}

TEST_CASE("fetch: a host lookup that hangs ends at the deadline and at cancel(), left behind",
          "[scrape][fetcher]") {
  HangingResolver hanging;
  FetchConfig config = test_config();
  config.resolver = hanging.resolver();
  const int left_before = abandoned_lookups();  // by other tests of this process

  HttpFetcher fetcher(config);
  const auto started = steady_clock::now();
  const FetchResult late = fetcher.fetch("http://hangs.test/", in(milliseconds(300)));
  CHECK(steady_clock::now() - started < seconds(5));  // not the 60 s the lookup hangs
  CHECK_FALSE(late.ok);
  CHECK(late.interrupted);
  CHECK(late.error == "deadline exceeded");
  CHECK(hanging.calls() == 1);
  CHECK(abandoned_lookups() == left_before + 1);

  HttpFetcher other(config);
  FetchResult cancelled;
  std::thread fetching([&] { cancelled = other.fetch("http://hangs.test/", in(seconds(60))); });
  REQUIRE(eventually([&] { return hanging.calls() == 2; }));
  std::this_thread::sleep_for(milliseconds(50));
  const auto cancelled_at = steady_clock::now();
  other.cancel();
  fetching.join();
  CHECK(steady_clock::now() - cancelled_at < seconds(5));
  CHECK_FALSE(cancelled.ok);
  CHECK(cancelled.interrupted);
  CHECK(cancelled.error == "cancelled");
  CHECK(abandoned_lookups() == left_before + 2);

  // The lookups left behind end in their own time, and are no longer counted.
  hanging.release();
  CHECK(eventually([&] { return abandoned_lookups() == left_before; }, seconds(10)));
}

TEST_CASE("fetch: while 64 lookups left behind still run, a page that needs one fails at once",
          "[scrape][fetcher]") {
  REQUIRE(eventually([] { return abandoned_lookups() == 0; }, seconds(10)));
  FixtureSite site;
  HangingResolver hanging;
  FetchConfig config = test_config();
  config.resolver = hanging.resolver();
  std::vector<FetchResult> results(k_max_abandoned_lookups);
  std::vector<std::thread> threads;
  for (FetchResult& result : results) {
    threads.emplace_back([&] {
      HttpFetcher fetcher(config);
      result = fetcher.fetch("http://hangs.test/", in(milliseconds(300)));
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (const FetchResult& result : results) {
    CHECK(result.error == "deadline exceeded");
  }
  REQUIRE(abandoned_lookups() == k_max_abandoned_lookups);

  HttpFetcher fetcher(config);
  const std::string url = "http://other.test:" + std::to_string(site.port()) + "/listings?page=1";
  const auto started = steady_clock::now();
  const FetchResult refused = fetcher.fetch(url, in(seconds(60)));
  CHECK(steady_clock::now() - started < seconds(5));
  CHECK_FALSE(refused.ok);
  CHECK_FALSE(refused.interrupted);
  CHECK(refused.error ==
        "cannot resolve host other.test: the resolver has not answered 64 earlier lookups");
  CHECK(hanging.calls() == k_max_abandoned_lookups);  // no thread started for it
  // An IP literal needs no lookup.
  CHECK(fetcher.fetch(site.url("/listings?page=1"), in(seconds(10))).ok);

  // Once they end, host names are looked up again.
  hanging.release();
  REQUIRE(eventually([] { return abandoned_lookups() == 0; }, seconds(10)));
  CHECK(fetcher.fetch(url, in(seconds(10))).ok);
  CHECK(hanging.calls() == k_max_abandoned_lookups + 1);
}

TEST_CASE("HostLimiter bounds requests per host and spaces them", "[scrape][fetcher]") {
  HostLimiter limiter(HostLimiterConfig{2, milliseconds(0)});
  auto a1 = limiter.acquire("http://a:80", in(seconds(1)));
  auto a2 = limiter.acquire("http://a:80", in(seconds(1)));
  REQUIRE(a1);
  REQUIRE(a2);
  CHECK(limiter.active("http://a:80") == 2);
  CHECK_FALSE(limiter.acquire("http://a:80", in(milliseconds(30))));
  auto b1 = limiter.acquire("http://b:80", in(seconds(1)));
  CHECK(b1);

  std::atomic<bool> cancelled{true};
  CHECK_FALSE(limiter.acquire("http://a:80", in(seconds(10)), &cancelled));

  std::thread releaser([&] { a1.reset(); });
  auto a3 = limiter.acquire("http://a:80", in(seconds(10)));
  releaser.join();
  CHECK(a3);
  CHECK(limiter.active("http://a:80") == 2);
  a2.reset();
  a3.reset();
  CHECK(limiter.active("http://a:80") == 0);

  HostLimiter spaced(HostLimiterConfig{4, seconds(30)});
  auto first = spaced.acquire("http://c:80", in(seconds(1)));
  REQUIRE(first);
  first.reset();
  // The next request to the same host must wait for the delay.
  CHECK_FALSE(spaced.acquire("http://c:80", in(milliseconds(30))));
  CHECK(spaced.acquire("http://d:80", in(milliseconds(30))));
}

TEST_CASE("HostLimiter forgets the hosts it has nothing to wait for, and only those",
          "[scrape][fetcher]") {
  HostLimiter limiter(HostLimiterConfig{2, milliseconds(10)});
  auto held = limiter.acquire("http://held:80", in(seconds(1)));
  REQUIRE(held);
  // 20 rounds of 100 hosts, each asked once; between rounds every delay
  // passes. Kept for ever, that would be 2001 states.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 100; ++i) {
      const std::string host = "http://h" + std::to_string(round) + "-" + std::to_string(i) + ":80";
      REQUIRE(limiter.acquire(host, in(seconds(1))));  // released at once
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(limiter.hosts_held() <= 300);
  // A request in flight is still counted, and still bounds its host.
  CHECK(limiter.active("http://held:80") == 1);
  auto second = limiter.acquire("http://held:80", in(seconds(1)));
  REQUIRE(second);
  CHECK(limiter.active("http://held:80") == 2);
  CHECK_FALSE(limiter.acquire("http://held:80", in(milliseconds(30))));

  // A start still to wait for survives the pruning of other hosts.
  HostLimiter spaced(HostLimiterConfig{4, seconds(30)});
  REQUIRE(spaced.acquire("http://c:80", in(seconds(1))));
  std::this_thread::sleep_for(milliseconds(5));
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(spaced.acquire("http://e" + std::to_string(i) + ":80", in(seconds(1))));
  }
  CHECK_FALSE(spaced.acquire("http://c:80", in(milliseconds(30))));
}

TEST_CASE("fetch: the per-host limit is shared by fetchers", "[scrape][fetcher]") {
  FixtureSiteConfig config;
  config.slow_delay = milliseconds(600);
  FixtureSite site(config);
  auto limiter = std::make_shared<HostLimiter>(HostLimiterConfig{1, milliseconds(0)});
  const std::string origin = "http://127.0.0.1:" + std::to_string(site.port());
  HttpFetcher first(test_config(), limiter);
  HttpFetcher second(test_config(), limiter);

  FetchResult slow;
  std::thread t([&] { slow = first.fetch(site.url("/slow?page=1"), in(seconds(10))); });
  REQUIRE(eventually([&] { return site.hits("/slow?page=1") == 1; }));
  CHECK(limiter->active(origin) == 1);
  // The second fetcher's request can only start once the first one is done.
  const FetchResult other = second.fetch(site.url("/listings?page=1"), in(seconds(10)));
  t.join();
  CHECK(slow.ok);
  CHECK(other.ok);
  CHECK(limiter->active(origin) == 0);

  // With the limit reached until the deadline, the fetch is interrupted.
  FetchResult held;
  std::thread u([&] { held = first.fetch(site.url("/slow?page=2"), in(seconds(10))); });
  REQUIRE(eventually([&] { return site.hits("/slow?page=2") == 1; }));
  const FetchResult blocked = second.fetch(site.url("/listings?page=2"), in(milliseconds(50)));
  u.join();
  CHECK(held.ok);
  CHECK(blocked.interrupted);
  CHECK(site.hits("/listings?page=2") == 0);
}

namespace {

// Pages the fixture site does not serve: binary bytes labelled HTML, broken
// redirects. Served by a plain httplib server on 127.0.0.1.
class MalformedSite {
 public:
  MalformedSite() {
    m_server.Get("/binary", [](const httplib::Request&, httplib::Response& res) {
      std::string bytes;
      for (int i = 0; i < 4096; ++i) {
        bytes.push_back(static_cast<char>((i * 131) % 256));  // NULs included
      }
      res.set_content(bytes, "text/html");
    });
    m_server.Get("/no-location", [](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
    });
    m_server.Get("/to-ftp", [](const httplib::Request&, httplib::Response& res) {
      res.status = 301;
      res.set_header("Location", "ftp://127.0.0.1/file");
    });
    m_server.Get("/to-bad-port", [](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", "http://127.0.0.1:99999/x");
    });
    m_server.Get("/to-garbage", [](const httplib::Request&, httplib::Response& res) {
      res.status = 307;
      res.set_header("Location", "http://[::1");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~MalformedSite() {
    m_server.stop();
    m_thread.join();
  }
  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + target;
  }

 private:
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
};

} // namespace

TEST_CASE("fetch: binary bytes labelled HTML, broken redirects", "[scrape][fetcher]") {
  MalformedSite site;
  HttpFetcher fetcher(test_config());

  // Binary content that claims to be HTML is fetched as is; the extractor
  // copes with it (see the worker tests).
  const FetchResult binary = fetcher.fetch(site.url("/binary"), in(seconds(10)));
  CHECK(binary.ok);
  CHECK(binary.body.size() == 4096);

  const FetchResult no_location = fetcher.fetch(site.url("/no-location"), in(seconds(10)));
  CHECK_FALSE(no_location.ok);
  CHECK(no_location.error == "HTTP 302 without a Location");

  const FetchResult ftp = fetcher.fetch(site.url("/to-ftp"), in(seconds(10)));
  CHECK_FALSE(ftp.ok);
  CHECK(ftp.error == "redirect to an unsupported URL: ftp://127.0.0.1/file");
  // A port no URL may have: the redirect is what is wrong, not an URL asked for.
  const FetchResult port = fetcher.fetch(site.url("/to-bad-port"), in(seconds(10)));
  CHECK_FALSE(port.ok);
  CHECK(port.http_status == std::optional<int>(302));
  CHECK(port.error == "redirect to an unsupported URL: http://127.0.0.1:99999/x");

  const FetchResult garbage = fetcher.fetch(site.url("/to-garbage"), in(seconds(10)));
  CHECK_FALSE(garbage.ok);
  CHECK_FALSE(garbage.interrupted);
  CHECK_FALSE(garbage.error.empty());

  // Still usable afterwards.
  CHECK(fetcher.fetch(site.url("/binary"), in(seconds(10))).ok);
}

TEST_CASE("fetch: response headers that never end fail the page once past 256 KiB",
          "[scrape][fetcher]") {
  std::atomic<std::size_t> sent{0};
  RawSite site([&](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n");
    const std::string line = "X-Endless: " + std::string(1000, 'e') + "\r\n";
    // Up to 256 MiB: the fetcher must stop reading long before.
    while (sent < (256u << 20) && send_all(fd, line)) {
      sent += line.size();
    }
  });
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.interrupted);
  CHECK(r.error == "response headers exceed 262144 bytes (or a line 8192)");
  CHECK(r.body.empty());
  // What the site got out before the fetcher closed: the 256 KiB it read and
  // the socket buffers, nowhere near the 256 MiB offered.
  CHECK(sent < (64u << 20));
}

TEST_CASE("fetch: a response whose Content-Length headers differ fails, not read as the first",
          "[scrape][fetcher]") {
  const std::string body = "<html><body><p>framed twice</p></body></html>";
  std::atomic<int> requests{0};
  RawSite site([&](int fd) {
    ++requests;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.interrupted);
  CHECK(r.error == "the response has Content-Length headers that differ");
  CHECK(r.body.empty());
  CHECK(requests == 1);  // not retried: the site will frame it the same way again

  // The same length twice is one length.
  RawSite same([&](int fd) {
    const std::string length = std::to_string(body.size());
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + length +
                     "\r\nContent-Length: " + length + "\r\n\r\n" + body);
  });
  const FetchResult ok = fetcher.fetch(same.url("/"), in(seconds(20)));
  INFO(ok.error);
  CHECK(ok.ok);
  CHECK(ok.body == body);
}

TEST_CASE("fetch: a response head split byte by byte, and one after 100 Continue",
          "[scrape][fetcher]") {
  const std::string body = "<html><body><p>slowly</p></body></html>";
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  SECTION("byte by byte") {
    RawSite site([&](int fd) {
      for (const char c : head) {
        send_all(fd, std::string(1, c));
        std::this_thread::sleep_for(milliseconds(1));
      }
      send_all(fd, body);
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
    CHECK(r.ok);
    CHECK(r.body == body);
  }
  SECTION("after interim responses: 100 Continue with a header, 103 Early Hints") {
    RawSite site([&](int fd) {
      send_all(fd, "HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                   "Link: </a.css>; rel=preload\r\n\r\n" +
                       head + body);
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
    INFO(r.error);
    CHECK(r.ok);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.body == body);
  }
}

TEST_CASE("fetch: bodies and heads that never end are bounded, and so is the time",
          "[scrape][fetcher]") {
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> stop{false};
  // Sends `first`, then `endless` until the fetcher goes (or 256 MiB, 20 s).
  auto site_sending = [&](const std::string& first, const std::string& endless,
                          milliseconds pause) {
    return [&, first, endless, pause](int fd) {
      send_all(fd, first);
      const auto until = steady_clock::now() + seconds(20);
      while (!stop && sent < (256u << 20) && steady_clock::now() < until &&
             send_all(fd, endless)) {
        sent += endless.size();
        std::this_thread::sleep_for(pause);
      }
    };
  };
  // The page fails with `error`, having read a bounded part of what came.
  auto check_refused = [&](const RawSite& site, const std::string& error) {
    {
      HttpFetcher fetcher(test_config());
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
      CHECK_FALSE(r.ok);
      CHECK(r.error == error);
    }
    CHECK(sent < (64u << 20));
  };
  const std::string chunk_line = std::string(4096, 'f');
  SECTION("a status line ending in a bare LF, then bytes without end") {
    RawSite site(site_sending("HTTP/1.1 200 OK\n", "X-Endless: " + chunk_line + "\n",
                              milliseconds(0)));
    check_refused(site, "response headers exceed 262144 bytes (or a line 8192)");
  }
  SECTION("a chunk-size line without end") {
    RawSite site(site_sending(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunk_line, milliseconds(0)));
    check_refused(site, "response body has a chunk-size or trailer line over 8192 bytes, or "
                        "over 1 MiB of trailers");
  }
  SECTION("a head whose first byte comes after the fetch's deadline") {
    RawSite site([](int fd) {
      std::this_thread::sleep_for(seconds(2));
      send_all(fd, "HTTP/1.1 200 OK\r\n");
    });
    {
      HttpFetcher fetcher(test_config());
      const auto start = steady_clock::now();
      const FetchResult r = fetcher.fetch(site.url("/"), in(milliseconds(800)));
      CHECK(r.interrupted);
      CHECK(r.error == "deadline exceeded");
      // Not the 10 s read timeout.
      CHECK(steady_clock::now() - start < seconds(5));
    }
  }
  SECTION("a head trickled in past the fetch's deadline") {
    RawSite site(site_sending("HTTP/1.1 200 OK\r\n", "X", milliseconds(100)));
    {
      HttpFetcher fetcher(test_config());
      const FetchResult r = fetcher.fetch(site.url("/"), in(milliseconds(800)));
      CHECK_FALSE(r.ok);
      CHECK(r.interrupted);
      CHECK(r.error == "deadline exceeded");
    }
  }
  stop = true;
}

TEST_CASE("fetch: a chunked page is read to RFC 9112: trailers taken, bad framing refused",
          "[scrape][fetcher]") {
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string page = "<html><body><p>hi</p></body></html>";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", page.size());
  SECTION("trailer fields, extensions: the page (the library failed on any trailer)") {
    for (const std::string end : {"0\r\nX-T: 1\r\nServer-Timing: a;dur=1\r\n\r\n", "0;x=y\r\n\r\n"}) {
      INFO(end);
      RawSite site([&](int fd) {
        send_all(fd, head + size + ";ext\r\n" + page + "\r\n" + end);
      });
      HttpFetcher fetcher(test_config());
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
      INFO(r.error);
      CHECK(r.ok);
      CHECK(r.body == page);
    }
  }
  SECTION("data going on past its size fails the page as it comes, the site holding on") {
    std::atomic<int> requests{0};
    RawSite site([&](int fd) {
      ++requests;
      send_all(fd, head + "2\r\nabXY");
      std::this_thread::sleep_for(seconds(3));
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
    CHECK_FALSE(r.ok);
    CHECK(r.error == "response body's chunked framing is invalid (RFC 9112 7.1)");
    CHECK(requests == 1);
  }
  SECTION("framing against the RFC fails the page, once, saying so") {
    for (const std::string& body :
         {std::string(size) + "\r\n" + page + "XX0\r\n\r\n", "0x" + std::string(size) + "\r\n" +
          page + "\r\n0\r\n\r\n", std::string(size) + "\n" + page + "\r\n0\r\n\r\n"}) {
      INFO(body);
      std::atomic<int> requests{0};
      RawSite site([&](int fd) {
        ++requests;
        send_all(fd, head + body);
      });
      HttpFetcher fetcher(test_config());
      const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
      CHECK_FALSE(r.ok);
      CHECK(r.error == "response body's chunked framing is invalid (RFC 9112 7.1)");
      CHECK(requests == 1);
    }
  }
}

TEST_CASE("fetch: a redirect's Location is followed as sent, its escapes kept", "[scrape][fetcher]") {
  const std::string page = "<html><body><p>hi</p></body></html>";
  std::atomic<int> requests{0};
  RawSite site([&](int fd) {
    if (++requests == 1) {
      // cpp-httplib decodes header values: this was followed as
      // "/landing?next=/a?b=1&c&x=A", another query.
      send_all(fd, "HTTP/1.1 302 Found\r\nlocation:   /landing?next=%2Fa%3Fb%3D1%26c&x=%41 \r\n"
                   "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else {
      send_all(fd, html_answer(page));
    }
  });
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
  CHECK(r.ok);
  CHECK(r.final_url == site.url("/landing?next=%2Fa%3Fb%3D1%26c&x=%41"));
}

TEST_CASE("fetch: a transfer coding other than chunked alone fails the page at once but a "
          "redirect with one is followed",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><p>hi</p></body></html>";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", page.size());
  const std::string chunked = std::string(size) + "\r\n" + page + "\r\n0\r\n\r\n";
  for (const auto& [te, said] : std::vector<std::pair<std::string, std::string>>{
           {"Transfer-Encoding: gzip, chunked\r\n", "gzip, chunked"},
           {"Transfer-Encoding: gzip\r\n", "gzip"},
           {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "gzip, chunked"},
           {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "chunked, chunked"}}) {
    INFO(te);
    std::atomic<int> requests{0};
    RawSite site([&](int fd) {
      ++requests;
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + te + "\r\n" + chunked);
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
    CHECK_FALSE(r.ok);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.error == "unsupported Transfer-Encoding " + said + " (only chunked alone is read)");
    CHECK(r.body.empty());
    CHECK(requests == 1);
  }
  // A redirect is read by its status and Location.
  std::atomic<int> requests{0};
  RawSite site([&](int fd) {
    if (++requests == 1) {
      send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /there\r\nTransfer-Encoding: gzip, chunked\r\n"
                   "\r\n" + chunked);
    } else {
      send_all(fd, html_answer(page));
    }
  });
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
  CHECK(r.ok);
  CHECK(r.body == page);
  CHECK(r.final_url == site.url("/there"));
}

TEST_CASE("fetch: a chunked page of 200,000 small chunks is read whole", "[scrape][fetcher]") {
  std::string page = "<html><body>";
  std::string wire;
  for (int i = 0; i < 200000; ++i) {
    const std::string piece = "<i>" + std::to_string(i % 1000000) + "</i>";
    page += piece;
  }
  page += "</body></html>";
  for (std::size_t at = 0; at < page.size(); at += 16) {
    const std::string piece = page.substr(at, 16);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    wire += size + piece + "\r\n";
  }
  wire += "0\r\n\r\n";
  RawSite site([&](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     wire);
  });
  HttpFetcher fetcher(test_config());
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.body == page);
}

TEST_CASE("fetch: a %00 in an internationalized host name is no host, not a shorter name",
          "[scrape][fetcher]") {
  FixtureSite site;
  std::vector<std::string> looked_up;
  FetchConfig config = test_config();
  config.resolver = [&](const std::string& host) -> std::vector<std::string> {
    looked_up.push_back(host);
    return {"127.0.0.1"};
  };
  HttpFetcher fetcher(config);
  const std::string port = std::to_string(site.port());
  const FetchResult r = fetcher.fetch(
      "http://b\xC3\xBC" "cher.test%00.elsewhere.test:" + port + "/listings?page=1", in(seconds(10)));
  for (const auto& h : looked_up) {
    INFO("looked up " << h);
    CHECK(h != "xn--bcher-kva.test");  // a name the URL does not hold
  }
  CHECK_FALSE(r.ok);
  CHECK(r.error == "not a valid host name (it has no ASCII form under IDNA)");
  CHECK(looked_up.empty());
  CHECK(site.hits("/listings?page=1") == 0);
}

TEST_CASE("fetch: the gzip decoder kept for the next body decodes it whole after a body it failed on",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><h2>Title</h2></body></html>";
  std::atomic<int> requests{0};
  HttpFetcher fetcher(test_config());
  const std::string whole = coded("gzip", page);
  for (const std::string& bad : {whole.substr(0, whole.size() / 2), whole + "trailing",
                                 std::string("not gzip at all, not at all"),
                                 whole.substr(0, whole.size() - 1)}) {
    {
      RawSite site(coded_answer("gzip", bad, requests));
      CHECK_FALSE(fetcher.fetch(site.url("/"), in(seconds(10))).ok);
    }
    RawSite site(coded_answer("gzip", whole, requests));
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
    CHECK(r.ok);
    CHECK(r.body == page);
  }
}

TEST_CASE("fetch: a head with bare LF line ends is read, and broken responses say what broke",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><article><h2>one</h2></article></body></html>";
  HttpFetcher fetcher(test_config());
  SECTION("LF alone ends each line of the head (RFC 9112 2.2)") {
    RawSite site([&](int fd) {
      send_all(fd, "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: " +
                       std::to_string(page.size()) + "\nConnection: close\n\n" + page);
    });
    const FetchResult r = fetcher.fetch(site.url("/lf"), in(seconds(10)));
    INFO(r.error);
    CHECK(r.ok);
    CHECK(r.http_status == std::optional<int>(200));
    CHECK(r.body == page);
  }
  struct Case {
    std::string answer;  // sent, then the connection closed
    std::string error;
    std::optional<int> status;
  };
  const std::vector<Case> cases = {
      {"", "the connection closed before any response", std::nullopt},
      {"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
       "the response is not HTTP/1.x (its status line or headers cannot be read)", std::nullopt},
      {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n",
       "the connection closed before the response's head ended", std::nullopt},
      {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
       "10\r\n<html><body>abcd\r\n",
       "the connection closed before the response's body ended", 200},
      {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: -1\r\n\r\n" + page,
       "the response's Content-Length is not a length (-1)", std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.answer);
    RawSite site([&](int fd) { send_all(fd, c.answer); });
    const FetchResult r = fetcher.fetch(site.url("/broken"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK(r.error == c.error);
    CHECK(r.http_status == c.status);
  }
  SECTION("the same length twice in one header is that length") {
    RawSite site([&](int fd) {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                       std::to_string(page.size()) + ", " + std::to_string(page.size()) +
                       "\r\nConnection: close\r\n\r\n" + page);
    });
    const FetchResult r = fetcher.fetch(site.url("/twice"), in(seconds(10)));
    INFO(r.error);
    CHECK(r.ok);
    CHECK(r.body == page);
  }
}

TEST_CASE("fetch: a kept-alive connection the server closes as the next request reaches it "
          "costs no try",
          "[scrape][fetcher]") {
  // Each connection: the first request is answered and the connection kept,
  // the second is read and the connection closed without a word, as by a
  // server whose keep-alive timeout or request limit ran out at that moment
  // (seen against a server closing 5 ms after a connection's third answer).
  const std::string page = "<html><body><article><h2>one</h2></article></body></html>";
  std::atomic<int> requests{0};
  RawSite site([&](int fd) {
    ++requests;
    send_all(fd, html_answer(page, false));
    char next[4096];
    if (::recv(fd, next, sizeof next, 0) > 0) {
      ++requests;
    }
  });
  FetchConfig config = test_config();
  config.max_tries = 1;  // a try lost to the closed connection would fail the page
  HttpFetcher fetcher(config);
  for (const std::string path : {"/a", "/b", "/c"}) {
    const FetchResult r = fetcher.fetch(site.url(path), in(seconds(10)));
    INFO(path << ": " << r.error);
    CHECK(r.ok);
    CHECK(r.body == page);
  }
  // /b and /c each went to a connection that closed, then to a new one.
  CHECK(requests == 5);
}

TEST_CASE("fetch: a new connection the library opens in place of one closed during the lookup "
          "that closes unanswered costs a try",
          "[scrape][fetcher]") {
  // The kept-alive connection is still open when the fetch starts, and the
  // server closes it while the host is looked up (with an address filter, at
  // every request): the library sees the close and opens a new connection
  // itself. That one's close is no kept-alive connection's: the request is
  // not sent once more for free.
  struct State {
    std::atomic<int> lookups{0};
    std::atomic<bool> close_now{false};
    std::atomic<bool> closed{false};
  };
  auto state = std::make_shared<State>();
  const std::string page = "<html><body><article><h2>one</h2></article></body></html>";
  std::atomic<int> connections{0};
  std::atomic<int> unanswered{0};
  RawSite site([&](int fd) {
    if (++connections > 1) {
      ++unanswered;  // read, then closed without a word
      return;
    }
    send_all(fd, html_answer(page, false));
    const auto until = steady_clock::now() + seconds(10);
    while (!state->close_now && steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    ::shutdown(fd, SHUT_WR);
    state->closed = true;
  });
  FetchConfig config = test_config();
  config.max_tries = 1;
  config.address_filter = [](const std::string&) { return true; };
  config.resolver = [state](const std::string&) -> std::vector<std::string> {
    if (++state->lookups == 2) {
      state->close_now = true;
      const auto until = steady_clock::now() + seconds(10);
      while (!state->closed && steady_clock::now() < until) {
        std::this_thread::sleep_for(milliseconds(1));
      }
      std::this_thread::sleep_for(milliseconds(20));  // the FIN is there
    }
    return {"127.0.0.1"};
  };
  const std::string origin = "http://site.test:" + site.url("").substr(17);
  HttpFetcher fetcher(config);
  const FetchResult first = fetcher.fetch(origin + "/a", in(seconds(10)));
  REQUIRE(first.ok);
  const FetchResult second = fetcher.fetch(origin + "/b", in(seconds(10)));
  INFO(second.error);
  CHECK_FALSE(second.ok);
  CHECK(unanswered == 1);
}

TEST_CASE("fetch: a redirect or an error status whose Content-Length is not one is read by its "
          "status, as before the length was checked",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><h2>x</h2></body></html>";
  RawSite target([&](int fd) { send_all(fd, html_answer(page)); });
  const std::string to = target.url("/page");
  HttpFetcher fetcher(test_config());
  SECTION("a redirect is followed") {
    RawSite moved([&](int fd) {
      send_all(fd, "HTTP/1.1 302 Found\r\nLocation: " + to +
                       "\r\nContent-Length: -1\r\nConnection: close\r\n\r\n");
    });
    const FetchResult r = fetcher.fetch(moved.url("/old"), in(seconds(10)));
    INFO(r.error);
    CHECK(r.ok);
    CHECK(r.final_url == to);
    CHECK(r.body == page);
  }
  SECTION("a 404 keeps its status and is not retried") {
    std::atomic<int> asked{0};
    RawSite gone([&](int fd) {
      ++asked;
      send_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: abc"
                   "\r\nConnection: close\r\n\r\nnothing here");
    });
    const FetchResult r = fetcher.fetch(gone.url("/gone"), in(seconds(10)));
    CHECK_FALSE(r.ok);
    CHECK(r.error == "HTTP 404");
    CHECK(r.http_status == std::optional<int>(404));
    CHECK(asked == 1);
  }
}

TEST_CASE("fetch: 'chunked' in another case or with spaces around it is read",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><p>hi</p></body></html>";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", page.size());
  const std::string chunked = std::string(size) + "\r\n" + page + "\r\n0\r\n\r\n";
  for (const std::string te : {"Transfer-Encoding: Chunked\r\n", "Transfer-Encoding:  chunked \r\n",
                               "transfer-encoding: CHUNKED\r\n"}) {
    INFO(te);
    RawSite site([&](int fd) {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + te + "\r\n" + chunked);
    });
    HttpFetcher fetcher(test_config());
    const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(20)));
    CHECK(r.ok);
    CHECK(r.error.empty());
    CHECK(r.body == page);
  }
}

TEST_CASE("fetch: a start URL with '|' or '^' in its user info is fetched",
          "[scrape][fetcher]") {
  const std::string page = "<html><body><p>hi</p></body></html>";
  std::atomic<int> requests{0};
  RawSite site([&](int fd) {
    ++requests;
    send_all(fd, html_answer(page));
  });
  HttpFetcher fetcher(test_config());
  const std::string url = site.url("/a|b");
  const FetchResult r =
      fetcher.fetch("http://u|x^y@" + url.substr(std::string("http://").size()), in(seconds(20)));
  CHECK(r.ok);
  CHECK(r.error.empty());
  CHECK(requests == 1);
}

TEST_CASE("fetch: bodies hold room in the process's body budget until they are dropped",
          "[scrape][fetcher]") {
  const std::string page = "<html><body>" + std::string(60000, 'x') + "</body></html>";
  RawSite site([&](int fd) { send_all(fd, html_answer(page)); });
  struct SmallBudget {
    std::size_t before = process_body_budget().resize(100000);
    ~SmallBudget() { process_body_budget().resize(before); }
  } small;
  HttpFetcher first_fetcher(test_config());
  FetchResult first = first_fetcher.fetch(site.url("/a"), in(seconds(10)));
  REQUIRE(first.ok);
  CHECK(first.body == page);
  CHECK(first.body_room.bytes() == page.size());  // its Content-Length, reserved at once
  CHECK(process_body_budget().held() == page.size());

  // A second body does not fit beside it: its fetch waits, and a cancel ends the wait.
  HttpFetcher waiting(test_config());
  std::atomic<bool> done{false};
  FetchResult cut;
  std::thread t([&] {
    cut = waiting.fetch(site.url("/b"), in(seconds(20)));
    done = true;
  });
  REQUIRE(eventually([] { return process_body_budget().waiting() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  CHECK_FALSE(done.load());
  waiting.cancel();
  REQUIRE(eventually([&] { return done.load(); }, seconds(2)));
  t.join();
  CHECK_FALSE(cut.ok);
  CHECK(cut.interrupted);
  CHECK(cut.error == "cancelled");

  // Once the first is dropped, the next one goes on.
  HttpFetcher third_fetcher(test_config());
  FetchResult third;
  std::thread t3([&] { third = third_fetcher.fetch(site.url("/c"), in(seconds(20))); });
  REQUIRE(eventually([] { return process_body_budget().waiting() == 1; }));
  first.body_room.release();
  t3.join();
  CHECK(third.ok);
  CHECK(third.body == page);
  third = FetchResult();
  CHECK(process_body_budget().held() == 0);
}

TEST_CASE("fetch: a body of unknown length holds no more memory than its room in the body budget",
          "[scrape][fetcher]") {
  // 900 bytes in chunks of 100, with pages of up to 1000: grown to 800, the
  // next step is 1000, not the 1600 that doubling gives.
  std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (int i = 0; i < 9; ++i) {
    chunked += "64\r\n" + std::string(100, 'a' + i) + "\r\n";
  }
  chunked += "0\r\n\r\n";
  RawSite site([&](int fd) { send_all(fd, chunked); });
  FetchConfig config = test_config();
  config.max_body_bytes = 1000;
  HttpFetcher fetcher(config);
  const FetchResult r = fetcher.fetch(site.url("/"), in(seconds(10)));
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.body.size() == 900);
  CHECK(r.body_room.bytes() <= config.max_body_bytes);
  CHECK(r.body.capacity() <= r.body_room.bytes());
}

TEST_CASE("fetch: a body of unknown length takes the most a page may be until it has arrived, "
          "then what it took, and never waits once it has begun",
          "[scrape][fetcher]") {
  const std::string page = "<html><body>" + std::string(600000, 'x') + "</body></html>";
  std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (int i = 0; i < 30; ++i) {
    char size[16];
    std::snprintf(size, sizeof size, "%x\r\n", 10000);
    chunked += size + std::string(10000, 'a' + i % 26) + "\r\n";
  }
  chunked += "0\r\n\r\n";
  RawSite plain([&](int fd) { send_all(fd, html_answer(page)); });
  RawSite unknown([&](int fd) { send_all(fd, chunked); });
  struct SmallBudget {
    std::size_t before = process_body_budget().resize(1 << 20);
    ~SmallBudget() { process_body_budget().resize(before); }
  } small;
  HttpFetcher first_fetcher(test_config());
  FetchResult first = first_fetcher.fetch(plain.url("/a"), in(seconds(10)));
  REQUIRE(first.ok);
  // Pages of up to 500,000 bytes: that room does not fit beside the first
  // page's 600,000, so the response waits at its head, holding nothing.
  FetchConfig config = test_config();
  config.max_body_bytes = 500000;
  HttpFetcher fetcher(config);
  FetchResult got;
  std::thread t([&] { got = fetcher.fetch(unknown.url("/b"), in(seconds(20))); });
  REQUIRE(eventually([] { return process_body_budget().waiting() == 1; }));
  CHECK(process_body_budget().held() == page.size());
  first.body_room.release();
  t.join();
  INFO(got.error);
  REQUIRE(got.ok);
  CHECK(got.body.size() == 300000);
  // Then it holds what its body took, no more than the room it had.
  CHECK(got.body_room.bytes() == got.body.capacity());
  CHECK(got.body.capacity() >= 300000);
  CHECK(got.body.capacity() <= config.max_body_bytes);
  got = FetchResult();
  CHECK(process_body_budget().held() == 0);
}
