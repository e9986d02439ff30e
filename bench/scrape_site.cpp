// The listing site the scraping benchmark crawls, served on 127.0.0.1 by
// httplib::Server until it is killed or --max-seconds pass.
//
//   scrape_site [--port N] [--max-seconds S] [--threads T] [--delay-ms D]
//               [--log FILE]
//
// Prints the port it listens on as the first line of stdout. Pages (text/html,
// a realistic small shop layout of about 4-9 KB, prebuilt at start so that the
// site's own cost per page is what a fast real site spends, not less):
//   /chain?page=K      K = 1..300, 20 items each, rel=next to K+1 (relative)
//   /listing?page=K    K = 1..50, 20 items each linking /detail/K-I, rel=next
//   /detail/K-I        one property: <p class="desc">Description of K-I</p>
//   /hits              text: requests served so far (for the run's checks)
//   /j/TAG/...         the same three pages, with the detail links under
//                      /j/TAG too: TAG (letters, digits, _) tells a job's
//                      requests apart in the log
// Keep-alive as a web server does it (nginx: 1000 requests per connection,
// Nagle off); responses are compressed when the client asks (the library's
// on-the-fly gzip/brotli). --delay-ms holds every page's answer D ms (default
// 0), so that tools/soak's jobs last long enough to be killed half way;
// --log appends a line per page request, "MICROS TARGET" (microseconds since
// the epoch when the request is read, before the delay), flushed at once.

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace {

constexpr int k_chain_pages = 300;
constexpr int k_listing_pages = 50;
constexpr int k_items_per_page = 20;

const char* const k_streets[] = {"Bahnhofstrasse", "Seefeldstrasse", "Limmatquai", "Rue du Rhône",
                                 "Marktgasse",     "Hauptstrasse",   "Kirchweg",   "Via Nassa"};
const char* const k_cities[] = {"Zürich", "Genève", "Bern",      "Basel",
                                "Lugano", "Luzern", "St. Gallen"};

std::string head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + title +
         " | Homefinder</title>\n<meta name=\"viewport\" content=\"width=device-width, "
         "initial-scale=1\">\n"
         "<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n"
         "<header class=\"top\"><a class=\"logo\" href=\"/\">Homefinder</a>\n<nav><ul>"
         "<li><a href=\"/listing?page=1\">Buy</a></li><li><a href=\"/chain?page=1\">Rent</a></li>"
         "<li><a href=\"/about\">About</a></li><li><a "
         "href=\"/contact\">Contact</a></li></ul></nav></header>\n"
         "<main>\n";
}

const char* const k_foot =
    "</main>\n<footer><p>&copy; 2026 Homefinder AG &middot; <a href=\"/privacy\">Privacy</a> "
    "&middot; "
    "<a href=\"/terms\">Terms</a></p></footer>\n<script src=\"/static/site.js\" defer></script>\n"
    "</body>\n</html>\n";

std::string price(int page, int item) {
  return "CHF " + std::to_string(1000 + page * 37 + item * 11);
}

// A listing page: `prefix` is "/chain" or "/listing"; items link to `item_path(K, I)`.
std::string listing_page(const std::string& prefix, int page, int pages, bool detail_links) {
  std::string html = head("Properties, page " + std::to_string(page));
  html += "<h1>Properties for rent</h1>\n<p class=\"count\">" +
          std::to_string(pages * k_items_per_page) + " results</p>\n<section class=\"results\">\n";
  for (int i = 1; i <= k_items_per_page; ++i) {
    const std::string id = std::to_string(page) + "-" + std::to_string(i);
    const std::string href = detail_links ? "/detail/" + id : prefix + "/item/" + id;
    html += "<article class=\"property\" data-id=\"" + id + "\">\n  <a href=\"" + href +
            "\"><img src=\"/img/" + id +
            ".jpg\" alt=\"\" width=\"320\" height=\"200\"></a>\n  <h2><a href=\"" + href +
            "\">Title " + id + "</a></h2>\n  <span class=\"price\">" + price(page, i) +
            "</span>\n  <p class=\"address\">" + k_streets[(page + i) % 8] + " " +
            std::to_string(i) + ", " + k_cities[(page * 3 + i) % 7] +
            "</p>\n  <ul class=\"facts\"><li>" + std::to_string(1 + i % 5) + ".5 rooms</li><li>" +
            std::to_string(40 + (page + i) % 90) + " m&sup2;</li></ul>\n</article>\n";
  }
  html += "</section>\n<nav class=\"pagination\">";
  if (page > 1) {
    html += "<a rel=\"prev\" href=\"?page=" + std::to_string(page - 1) + "\">Previous</a> ";
  }
  html += "<span>Page " + std::to_string(page) + " of " + std::to_string(pages) + "</span>";
  if (page < pages) {
    html += " <a rel=\"next\" href=\"?page=" + std::to_string(page + 1) + "\">Next</a>";
  }
  html += "</nav>\n";
  return html + k_foot;
}

std::string detail_page(int page, int item) {
  const std::string id = std::to_string(page) + "-" + std::to_string(item);
  std::string html = head("Title " + id);
  html +=
      "<article class=\"detail\">\n<h1>Title " + id + "</h1>\n<span class=\"price\">" +
      price(page, item) + "</span>\n<p class=\"desc\">Description of " + id +
      "</p>\n<p>Bright apartment close to public transport, shops and schools. Parquet floors, "
      "modern kitchen with dishwasher, bathroom with window, balcony facing the courtyard.</p>\n"
      "<table class=\"facts\"><tr><th>Rooms</th><td>" +
      std::to_string(1 + item % 5) + ".5</td></tr><tr><th>Floor</th><td>" +
      std::to_string(item % 6) + "</td></tr><tr><th>Available</th><td>2026-0" +
      std::to_string(1 + page % 9) +
      "-01</td></tr></table>\n<p class=\"agent\">Contact: Homefinder AG, +41 44 000 00 " +
      std::to_string(10 + item) + "</p>\n</article>\n";
  return html + k_foot;
}

// The library listens with a backlog of 5: eight clients connecting at once on
// a busy machine overflow it, and a dropped SYN costs a 1 s retransmit. A web
// server listens with hundreds (nginx: 511); re-listening on the bound socket
// sets that.
void widen_backlog(int port) {
  for (int fd = 3; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) == 0 &&
        addr.ss_family == AF_INET &&
        ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port) == port) {
      ::listen(fd, 511);
    }
  }
}

int int_arg(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      return std::atoi(argv[i + 1]);
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int port = int_arg(argc, argv, "--port", 0);
  const int max_seconds = int_arg(argc, argv, "--max-seconds", 900);
  const int threads = int_arg(argc, argv, "--threads", 64);
  const int delay_ms = int_arg(argc, argv, "--delay-ms", 0);
  std::FILE* log = nullptr;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--log") {
      log = std::fopen(argv[i + 1], "a");
      if (log == nullptr) {
        std::fprintf(stderr, "scrape_site: cannot open %s\n", argv[i + 1]);
        return 1;
      }
    }
  }
  std::mutex log_mutex;

  std::unordered_map<std::string, std::string> pages;
  for (int k = 1; k <= k_chain_pages; ++k) {
    pages["/chain?page=" + std::to_string(k)] = listing_page("/chain", k, k_chain_pages, false);
  }
  for (int k = 1; k <= k_listing_pages; ++k) {
    pages["/listing?page=" + std::to_string(k)] =
        listing_page("/listing", k, k_listing_pages, true);
    for (int i = 1; i <= k_items_per_page; ++i) {
      pages["/detail/" + std::to_string(k) + "-" + std::to_string(i)] = detail_page(k, i);
    }
  }

  httplib::Server server;
  // Every keep-alive connection holds a pool thread; enough for the
  // benchmark's clients plus the idle connections of the previous one.
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  server.set_tcp_nodelay(true);
  std::atomic<long> hits{0};

  // `prefix` is "" or "/j/TAG", `path` the page's path without it.
  auto answer = [&](const httplib::Request& req, httplib::Response& res, const std::string& prefix,
                    const std::string& path) {
    ++hits;
    std::string target = path;
    if (req.has_param("page")) {
      target += "?page=" + req.get_param_value("page");
    }
    if (log != nullptr) {
      const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      std::lock_guard lock(log_mutex);
      std::fprintf(log, "%lld %s%s\n", static_cast<long long>(now), prefix.c_str(),
                   target.c_str());
      std::fflush(log);
    }
    if (delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    }
    const auto it = pages.find(target);
    if (it == pages.end()) {
      res.status = 404;
      res.set_content(head("Not found") + "<h1>Not found</h1>\n" + k_foot,
                      "text/html; charset=utf-8");
      return;
    }
    if (prefix.empty()) {
      res.set_content(it->second, "text/html; charset=utf-8");
      return;
    }
    std::string html = it->second;
    const std::string from = "href=\"/detail/";
    const std::string to = "href=\"" + prefix + "/detail/";
    for (auto at = html.find(from); at != std::string::npos; at = html.find(from, at + to.size())) {
      html.replace(at, from.size(), to);
    }
    res.set_content(html, "text/html; charset=utf-8");
  };
  auto serve = [&](const httplib::Request& req, httplib::Response& res) {
    answer(req, res, "", req.path);
  };
  server.Get("/chain", serve);
  server.Get("/listing", serve);
  server.Get(R"(/detail/\d+-\d+)", serve);
  server.Get(R"((/j/\w+)(/chain|/listing|/detail/\d+-\d+))",
             [&](const httplib::Request& req, httplib::Response& res) {
               answer(req, res, req.matches[1].str(), req.matches[2].str());
             });
  server.Get("/hits", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::to_string(hits.load()) + "\n", "text/plain");
  });

  const int bound = port == 0 ? server.bind_to_any_port("127.0.0.1")
                              : (server.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound <= 0) {
    std::fprintf(stderr, "scrape_site: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  widen_backlog(bound);
  std::printf("%d\n", bound);
  std::fflush(stdout);

  // Stops by itself: the benchmark's trap is not the only guard.
  std::thread watchdog([&server, max_seconds] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
    while (std::chrono::steady_clock::now() < until && !server.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    while (std::chrono::steady_clock::now() < until && server.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    server.stop();
  });
  server.listen_after_bind();
  watchdog.join();
  return 0;
}
