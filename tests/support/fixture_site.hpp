#pragma once
// A small listing site served on 127.0.0.1 (port 0) by httplib::Server in a
// thread, for scraper tests. Started in the constructor (ready on return),
// stopped and joined in the destructor. Every request is counted per target
// (path and query, as sent).
//
// Routes (all HTML is text/html; charset=utf-8 unless said otherwise):
//   /listings?page=K  K = 1..pages: items_per_page items; rel=next links are
//                     relative on odd pages, absolute on even ones; 404 beyond;
//                     delayed by listing_delay
//   /detail/K-I       <p class="desc">Description of K-I</p>; 404 when listed
//                     in missing_details or out of range; delayed by detail_delay
//   /flaky?page=K     3 pages; page 2 answers 503 on its first request
//   /holey?page=K     3 pages; page 2 is always 404
//   /loop?page=K      3 pages; page 3's next link points back to page 1
//   /brackets?page[number]=K&f=a|b^c  3 pages, linked as written; 404 when
//                     the query comes otherwise (escaped)
//   /endless?page=K   every page has a next link
//   /slow?page=K      like /endless, each answer delayed by slow_delay
//   /moved?page=K     3 pages; page 2 is a 302 to /moved-to?page=2 (the page),
//                     page 3 (delayed by slow_delay) links on to /moved-to?page=2
//   /back?page=K      3 pages; page 3's next link, page 4, is a 302 back to page 2
//   /redirect         302 to /listings?page=1 (relative Location)
//   /redirect-chain?n=N  302 to ?n=N-1 ... ?n=0 which is /listings?page=1
//   /redirect-loop    302 to itself
//   /redirect-metadata  302 to http://169.254.169.254/latest/meta-data/
//   /redirect-ftp     302 to ftp://127.0.0.1/file
//   /broken           broken markup with 3 items
//   /unicode          UTF-8 text ("Café Zürich – 東京"), no <meta charset>
//   /latin1           ISO-8859-1 bytes, charset only in the HTTP header
//   /oversize         an HTML page above 10 MiB (with Content-Length)
//   /oversize-chunked the same, streamed without a length
//   /data.json        application/json;  /image.png  image/png
//   /ratelimited      429 with Retry-After: 1 on the first request, then page 1;
//                     ?after=N: Retry-After: N (each target answers 429 once)
//   /bad-gzip         200, Content-Encoding: gzip, a body that is not gzip
//   /truncated        200, Content-Length: 1000, then 100 bytes and a close
//   /unavailable      always 503;  /gone  always 404
//   /empty            200 with no items and no next link
//   /bloat            5000 items <i>ab</i>: "//body" on each is 50 MB
//   /empties          40,000 empty <i></i>: "string(/)" on each walks them all

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace scrapekeep::testing {

struct FixtureSiteConfig {
  int pages = 3;           // /listings pages
  int items_per_page = 4;  // on every listing-like page
  std::chrono::milliseconds slow_delay{200};  // every /slow answer
  std::chrono::milliseconds listing_delay{0};  // every /listings answer
  std::chrono::milliseconds detail_delay{0};   // every /detail answer
  std::set<std::string> missing_details;  // "K-I" ids whose /detail page is 404
};

class FixtureSite {
 public:
  explicit FixtureSite(FixtureSiteConfig config = {});
  ~FixtureSite();
  FixtureSite(const FixtureSite&) = delete;
  FixtureSite& operator=(const FixtureSite&) = delete;

  int port() const { return m_port; }
  // "http://127.0.0.1:PORT"
  std::string base_url() const;
  // base_url() + target, e.g. url("/listings?page=1").
  std::string url(const std::string& target) const;

  // Requests received for exactly `target` ("/listings?page=2").
  int hits(const std::string& target) const;
  // Requests whose target starts with `prefix`.
  int hits_with_prefix(const std::string& prefix) const;
  // The pages of `path` ("/listings") numbered 1..`last` that were not
  // requested exactly once ("/listings?page=K"); empty when each was.
  std::vector<std::int64_t> pages_not_fetched_once(const std::string& path,
                                                   std::int64_t last) const;
  int total_hits() const;
  // A request header of the last request for `target` ("" if none).
  std::string last_header(const std::string& target, const std::string& name) const;

  const FixtureSiteConfig& config() const { return m_config; }

  // The values the site's pages hold, for assertions.
  static std::string title(int page, int item);        // "Title K-I"
  static std::string price(int page, int item);        // "$ 1001" for K=1, I=1
  static std::string description(int page, int item);  // "Description of K-I"
  static std::string detail_path(int page, int item);  // "/detail/K-I"
  static const char* unicode_title();                  // "Café Zürich – 東京"

 private:
  void add_routes();
  void record(const httplib::Request& request);
  // Sleeps `duration` unless the site is shutting down.
  void delay(std::chrono::milliseconds duration);
  std::string listing_html(const std::string& path, int page, const std::string& next_href) const;
  bool first_hit_of(const std::string& target) const;

  FixtureSiteConfig m_config;
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;
  int m_port = 0;

  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stopping = false;
  std::map<std::string, int> m_hits;
  std::map<std::string, std::multimap<std::string, std::string>> m_last_headers;
  std::shared_ptr<const std::string> m_oversize;
};

} // namespace scrapekeep::testing
