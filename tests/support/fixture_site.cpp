#include "support/fixture_site.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <stdexcept>

namespace scrapekeep::testing {
namespace {

constexpr const char* k_html = "text/html; charset=utf-8";
constexpr std::size_t k_oversize_bytes = 11 * 1024 * 1024;
constexpr int k_short_chain_pages = 3;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

int page_param(const httplib::Request& request) {
  if (!request.has_param("page")) {
    return 1;
  }
  try {
    return std::stoi(request.get_param_value("page"));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string page_shell(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body>\n" + body +
         "</body></html>\n";
}

} // namespace

std::string FixtureSite::title(int page, int item) {
  return "Title " + std::to_string(page) + "-" + std::to_string(item);
}

std::string FixtureSite::price(int page, int item) {
  return "$ " + std::to_string(page * 1000 + item);
}

std::string FixtureSite::description(int page, int item) {
  return "Description of " + std::to_string(page) + "-" + std::to_string(item);
}

std::string FixtureSite::detail_path(int page, int item) {
  return "/detail/" + std::to_string(page) + "-" + std::to_string(item);
}

const char* FixtureSite::unicode_title() { return "Caf\xC3\xA9 Z\xC3\xBCrich \xE2\x80\x93 \xE6\x9D\xB1\xE4\xBA\xAC"; }

FixtureSite::FixtureSite(FixtureSiteConfig config)
    : m_config(std::move(config)), m_server(std::make_unique<httplib::Server>()) {
  // A client that hangs up mid-body (the oversize page) must not kill the
  // test process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  m_server->new_task_queue = [] { return new httplib::ThreadPool(32); };
  m_server->set_keep_alive_timeout(1);
  m_server->set_tcp_nodelay(true);
  add_routes();
  m_port = m_server->bind_to_any_port("127.0.0.1");
  if (m_port <= 0) {
    throw std::runtime_error("FixtureSite: cannot bind 127.0.0.1");
  }
  m_thread = std::thread([this] { m_server->listen_after_bind(); });
  for (int i = 0; i < 2000 && !m_server->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!m_server->is_running()) {
    m_server->stop();
    m_thread.join();
    throw std::runtime_error("FixtureSite: the server did not start");
  }
}

FixtureSite::~FixtureSite() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  m_server->stop();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

std::string FixtureSite::base_url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

std::string FixtureSite::url(const std::string& target) const { return base_url() + target; }

int FixtureSite::hits(const std::string& target) const {
  std::lock_guard lock(m_mutex);
  const auto it = m_hits.find(target);
  return it == m_hits.end() ? 0 : it->second;
}

int FixtureSite::hits_with_prefix(const std::string& prefix) const {
  std::lock_guard lock(m_mutex);
  int total = 0;
  for (const auto& [target, count] : m_hits) {
    if (target.compare(0, prefix.size(), prefix) == 0) {
      total += count;
    }
  }
  return total;
}

int FixtureSite::total_hits() const { return hits_with_prefix(""); }

std::vector<std::int64_t> FixtureSite::pages_not_fetched_once(const std::string& path,
                                                              std::int64_t last) const {
  std::vector<std::int64_t> pages;
  for (std::int64_t page = 1; page <= last; ++page) {
    if (hits(path + "?page=" + std::to_string(page)) != 1) {
      pages.push_back(page);
    }
  }
  return pages;
}

std::string FixtureSite::last_header(const std::string& target, const std::string& name) const {
  std::lock_guard lock(m_mutex);
  const auto it = m_last_headers.find(target);
  if (it == m_last_headers.end()) {
    return {};
  }
  const auto header = it->second.find(lower(name));
  return header == it->second.end() ? std::string() : header->second;
}

void FixtureSite::record(const httplib::Request& request) {
  std::lock_guard lock(m_mutex);
  ++m_hits[request.target];
  auto& headers = m_last_headers[request.target];
  headers.clear();
  for (const auto& [name, value] : request.headers) {
    headers.emplace(lower(name), value);
  }
}

bool FixtureSite::first_hit_of(const std::string& target) const { return hits(target) == 1; }

void FixtureSite::delay(std::chrono::milliseconds duration) {
  if (duration.count() <= 0) {
    return;
  }
  std::unique_lock lock(m_mutex);
  m_cv.wait_for(lock, duration, [this] { return m_stopping; });
}

std::string FixtureSite::listing_html(const std::string& path, int page,
                                      const std::string& next_href) const {
  std::string body = "<h1>Page " + std::to_string(page) + "</h1>\n";
  for (int i = 1; i <= m_config.items_per_page; ++i) {
    const std::string id = std::to_string(page) + "-" + std::to_string(i);
    body += "<article class=\"property\">\n  <h2>Title <b>" + id + "</b></h2>\n" +
            "  <span class=\"price\">\n    $ " + std::to_string(page * 1000 + i) +
            "\n  </span>\n  <a href=\"" + detail_path(page, i) + "\">Details</a>\n</article>\n";
  }
  if (!next_href.empty()) {
    body += "<a rel=\"next\" href=\"" + next_href + "\">Next</a>\n";
  }
  return page_shell(path + " page " + std::to_string(page), body);
}

void FixtureSite::add_routes() {
  httplib::Server& s = *m_server;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    record(req);
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.Get("/listings", [this](const httplib::Request& req, httplib::Response& res) {
    delay(m_config.listing_delay);
    const int page = page_param(req);
    if (page < 1 || page > m_config.pages) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    std::string next;
    if (page < m_config.pages) {
      const std::string query = "listings?page=" + std::to_string(page + 1);
      next = page % 2 == 1 ? query : url("/" + query);
    }
    res.set_content(listing_html("/listings", page, next), k_html);
  });

  s.Get(R"(/detail/(\d+)-(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    delay(m_config.detail_delay);
    const int page = std::stoi(req.matches[1]);
    const int item = std::stoi(req.matches[2]);
    const std::string id = std::to_string(page) + "-" + std::to_string(item);
    if (page < 1 || item < 1 || item > m_config.items_per_page ||
        m_config.missing_details.count(id) > 0) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such property</p>\n"), k_html);
      return;
    }
    res.set_content(page_shell(title(page, item), "<h1>" + title(page, item) +
                                                      "</h1>\n<p class=\"desc\">\n  " +
                                                      description(page, item) + "\n</p>\n"),
                    k_html);
  });

  auto short_chain = [this](const std::string& path, const httplib::Request& req,
                            httplib::Response& res, int next_of_last) {
    const int page = page_param(req);
    if (page < 1 || page > k_short_chain_pages) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    std::string next;
    if (page < k_short_chain_pages) {
      next = path + "?page=" + std::to_string(page + 1);
    } else if (next_of_last > 0) {
      next = path + "?page=" + std::to_string(next_of_last);
    }
    res.set_content(listing_html(path, page, next), k_html);
  };

  s.Get("/flaky", [this, short_chain](const httplib::Request& req, httplib::Response& res) {
    if (page_param(req) == 2 && first_hit_of(req.target)) {
      res.status = 503;
      res.set_content(page_shell("Busy", "<p>Try again</p>\n"), k_html);
      return;
    }
    short_chain("/flaky", req, res, 0);
  });
  s.Get("/holey", [short_chain](const httplib::Request& req, httplib::Response& res) {
    if (page_param(req) == 2) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>Gone</p>\n"), k_html);
      return;
    }
    short_chain("/holey", req, res, 0);
  });
  s.Get("/loop", [short_chain](const httplib::Request& req, httplib::Response& res) {
    short_chain("/loop", req, res, 1);
  });
  // A loop written differently: the last page links back to the first with
  // an upper-case scheme, the port spelled out and a fragment.
  s.Get("/caseloop", [this](const httplib::Request& req, httplib::Response& res) {
    const int page = std::max(1, page_param(req));
    const std::string next =
        page < k_short_chain_pages
            ? "/caseloop?page=" + std::to_string(page + 1)
            : "HTTP://127.0.0.1:" + std::to_string(m_port) + "/caseloop?page=1#top";
    res.set_content(listing_html("/caseloop", page, next), k_html);
  });

  // Brackets, '|' and '^' in the query, as JSON:API and many listing sites
  // write them ("?page[number]=2"): sent as written, as browsers send them.
  s.Get("/brackets", [this](const httplib::Request& req, httplib::Response& res) {
    int page = 0;
    try {
      page = std::stoi(req.get_param_value("page[number]"));
    } catch (const std::exception&) {
    }
    if (page < 1 || page > k_short_chain_pages || req.get_param_value("f") != "a|b^c") {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    const std::string next = page < k_short_chain_pages
                                 ? "/brackets?page[number]=" + std::to_string(page + 1) + "&f=a|b^c"
                                 : "";
    res.set_content(listing_html("/brackets", page, next), k_html);
  });

  s.Get("/endless", [this](const httplib::Request& req, httplib::Response& res) {
    const int page = std::max(1, page_param(req));
    res.set_content(listing_html("/endless", page, "/endless?page=" + std::to_string(page + 1)),
                    k_html);
  });
  s.Get("/slow", [this](const httplib::Request& req, httplib::Response& res) {
    delay(m_config.slow_delay);
    const int page = std::max(1, page_param(req));
    res.set_content(listing_html("/slow", page, "/slow?page=" + std::to_string(page + 1)), k_html);
  });

  // A loop through a redirect's target: page 3 links to where page 2 was
  // redirected, not to where it was asked for.
  s.Get("/moved", [this](const httplib::Request& req, httplib::Response& res) {
    const int page = page_param(req);
    if (page == 2) {
      res.status = 302;
      res.set_header("Location", "/moved-to?page=2");
      return;
    }
    if (page != 1 && page != 3) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    if (page == 3) {
      delay(m_config.slow_delay);
    }
    res.set_content(listing_html("/moved", page, page == 1 ? "/moved?page=2" : "/moved-to?page=2"),
                    k_html);
  });
  // A loop through a redirect: page 3's next link, page 4, is a 302 back to
  // page 2.
  s.Get("/back", [this](const httplib::Request& req, httplib::Response& res) {
    const int page = page_param(req);
    if (page == 4) {
      res.status = 302;
      res.set_header("Location", "/back?page=2");
      return;
    }
    if (page < 1 || page > 3) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    res.set_content(listing_html("/back", page, "/back?page=" + std::to_string(page + 1)), k_html);
  });
  s.Get("/moved-to", [this](const httplib::Request& req, httplib::Response& res) {
    if (page_param(req) != 2) {
      res.status = 404;
      res.set_content(page_shell("Not found", "<p>No such page</p>\n"), k_html);
      return;
    }
    res.set_content(listing_html("/moved-to", 2, "/moved?page=3"), k_html);
  });

  s.Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "listings?page=1");
  });
  s.Get("/redirect-chain", [](const httplib::Request& req, httplib::Response& res) {
    const int n = req.has_param("n") ? std::stoi(req.get_param_value("n")) : 0;
    res.status = 302;
    res.set_header("Location", n > 0 ? "/redirect-chain?n=" + std::to_string(n - 1)
                                     : std::string("/listings?page=1"));
  });
  s.Get("/redirect-loop", [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "/redirect-loop");
  });
  s.Get("/redirect-metadata", [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "http://169.254.169.254/latest/meta-data/");
  });
  s.Get("/redirect-ftp", [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "ftp://127.0.0.1/file");
  });

  s.Get("/broken", [](const httplib::Request&, httplib::Response& res) {
    // Unclosed tags, an unquoted attribute, a stray '<' and a missing </html>.
    res.set_content(
        "<html><head><title>Broken</title>\n<body>\n"
        "<div class=wrapper>\n"
        "<article class=\"property\"><h2>Broken <i>one</h2><span class=\"price\">$ 1</span>"
        "<a href=\"/detail/1-1\">x</a>\n"
        "<article class=\"property\"><h2>Broken two</h2><span class='price'>$ 2 < 3</span>\n"
        "</article></article>\n<p>unclosed <b>bold\n"
        "<article class=\"property\"><h2>Broken   three</h2>\n</table></div>",
        k_html);
  });
  s.Get("/unicode", [this](const httplib::Request&, httplib::Response& res) {
    const std::string t = unicode_title();
    res.set_content(page_shell("Unicode", "<article class=\"property\"><h2>" + t +
                                              "</h2><span class=\"price\">\xE2\x82\xAC 1.200"
                                              "</span></article>\n"),
                    "text/html");
  });
  // A page sent with the Content-Type given as ?type=.
  s.Get("/typed", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(page_shell("Typed", "<p>typed</p>\n"), req.get_param_value("type"));
  });
  s.Get("/latin1", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(page_shell("Latin-1", "<article class=\"property\"><h2>Caf\xE9 "
                                          "Z\xFCrich</h2></article>\n"),
                    "text/html; charset=ISO-8859-1");
  });

  s.Get("/oversize", [this](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const std::string> page;
    {
      std::lock_guard lock(m_mutex);
      if (!m_oversize) {
        std::string body = "<html><body>\n";
        const std::string row = "<article class=\"property\"><h2>Filler</h2></article>\n";
        while (body.size() < k_oversize_bytes) {
          body += row;
        }
        body += "</body></html>\n";
        m_oversize = std::make_shared<const std::string>(std::move(body));
      }
      page = m_oversize;
    }
    res.set_content(*page, k_html);
  });
  s.Get("/oversize-chunked", [](const httplib::Request&, httplib::Response& res) {
    auto sent = std::make_shared<std::size_t>(0);
    res.set_chunked_content_provider(k_html, [sent](std::size_t, httplib::DataSink& sink) {
      static const std::string chunk(64 * 1024, 'x');
      if (*sent >= k_oversize_bytes) {
        sink.done();
        return true;
      }
      *sent += chunk.size();
      return sink.write(chunk.data(), chunk.size());
    });
  });

  s.Get("/data.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"items\": []}", "application/json");
  });
  s.Get("/image.png", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string("\x89PNG\r\n\x1a\n", 8), "image/png");
  });
  s.Get("/ratelimited", [this](const httplib::Request& req, httplib::Response& res) {
    if (first_hit_of(req.target)) {
      res.status = 429;
      res.set_header("Retry-After",
                     req.has_param("after") ? req.get_param_value("after") : std::string("1"));
      res.set_content(page_shell("Slow down", "<p>Too many requests</p>\n"), k_html);
      return;
    }
    res.set_content(listing_html("/ratelimited", 1, ""), k_html);
  });
  // Sized content providers: the library compresses neither, and sends
  // their bytes as they are given.
  s.Get("/bad-gzip", [](const httplib::Request&, httplib::Response& res) {
    static const std::string garbage = "this is not a gzip stream, whatever its header says";
    res.set_header("Content-Encoding", "gzip");
    res.set_content_provider(garbage.size(), k_html,
                             [](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               return sink.write(garbage.data() + offset, length);
                             });
  });
  s.Get("/truncated", [](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(1000, k_html, [](std::size_t, std::size_t, httplib::DataSink& sink) {
      const std::string part = "<html><body><p>" + std::string(100 - 15, 'x');
      sink.write(part.data(), part.size());
      return false;  // the library closes the connection
    });
  });
  s.Get("/unavailable", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(page_shell("Down", "<p>Down for maintenance</p>\n"), k_html);
  });
  s.Get("/gone", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(page_shell("Not found", "<p>Gone</p>\n"), k_html);
  });
  s.Get("/empty", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(page_shell("Empty", "<p>Nothing here</p>\n"), k_html);
  });
  s.Get("/bloat", [](const httplib::Request&, httplib::Response& res) {
    std::string items;
    for (int i = 0; i < 5000; ++i) {
      items += "<i>ab</i>";
    }
    res.set_content(page_shell("Bloat", items), k_html);
  });
  // An item after 400,000 empty elements: libxml2 merges the two sides of
  // `//namespace::* | //namespace::*` (a namespace node for each element)
  // by comparing each node of one with each of the other, allocating
  // nothing, for minutes.
  s.Get("/elements", [](const httplib::Request&, httplib::Response& res) {
    std::string items;
    for (int i = 0; i < 400000; ++i) {
      items += "<i></i>";
    }
    items += "<article class='property'><h2>After</h2></article>";
    res.set_content(page_shell("Elements", items), k_html);
  });
  s.Get("/empties", [](const httplib::Request&, httplib::Response& res) {
    std::string items;
    for (int i = 0; i < 40000; ++i) {
      items += "<i></i>";
    }
    res.set_content(page_shell("Empties", items), k_html);
  });
}

} // namespace scrapekeep::testing
