// The README's walk-through, as a newcomer runs it: its little site made by
// its own shell lines, served as `python3 -m http.server` serves a folder,
// and API.md's example job posted to a real `scrapekeep serve` as written.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/api_server.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::ChildProcess;
using scrapekeep::testing::eventually;
using scrapekeep::testing::HttpReply;
using scrapekeep::testing::read_file;
using scrapekeep::testing::run_program;
using scrapekeep::testing::TempDir;
using std::chrono::seconds;

std::string readme_text() {
  return read_file((fs::path(SCRAPEKEEP_SOURCE_DIR) / "README.md").string());
}

// The README's lines that make the site, from `mkdir` up to the server, with
// its folder moved to `folder`.
std::string site_lines(const std::string& folder) {
  const std::string readme = readme_text();
  const std::size_t begin = readme.find("mkdir -p /tmp/site && cd /tmp/site");
  const std::size_t end = readme.find("python3 -m http.server", begin);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  std::string lines = readme.substr(begin, end - begin);
  for (std::size_t at = lines.find("/tmp/site"); at != std::string::npos;
       at = lines.find("/tmp/site", at + folder.size())) {
    lines.replace(at, 9, folder);
  }
  return lines;
}

// A folder served as Python's http.server serves it: a file as itself (HTML
// as text/html), a folder without its slash redirected to it (query kept),
// a folder by its index.html, anything else 404.
class FolderSite {
 public:
  explicit FolderSite(fs::path root) : m_root(std::move(root)) {
    m_server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      const fs::path path = m_root / req.path.substr(1);
      std::error_code ec;
      if (fs::is_directory(path, ec)) {
        if (req.path.back() != '/') {
          const std::size_t query = req.target.find('?');
          res.status = 301;
          res.set_header("Location", req.path + "/" +
                                         (query == std::string::npos ? "" : req.target.substr(query)));
          return;
        }
        serve_file(path / "index.html", res);
        return;
      }
      serve_file(path, res);
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~FolderSite() {
    m_server.stop();
    m_thread.join();
  }
  int port() const { return m_port; }

 private:
  static void serve_file(const fs::path& path, httplib::Response& res) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      res.status = 404;
      return;
    }
    res.set_content(read_file(path.string()),
                    path.extension() == ".html" ? "text/html" : "text/plain");
  }

  fs::path m_root;
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

// The JSON the walk-through's step 3 posts (its curl's -d '...'), with the
// site's port for 9000.
std::string walkthrough_job(int port) {
  const std::string readme = readme_text();
  const std::size_t curl = readme.find("curl -s -X POST http://127.0.0.1:8080/v1/scrape");
  REQUIRE(curl != std::string::npos);
  const std::size_t begin = readme.find("-d '", curl);
  REQUIRE(begin != std::string::npos);
  const std::size_t end = readme.find('\'', begin + 4);
  REQUIRE(end != std::string::npos);
  std::string body = readme.substr(begin + 4, end - begin - 4);
  const std::size_t at = body.find("127.0.0.1:9000");
  REQUIRE(at != std::string::npos);
  body.replace(at + 10, 4, std::to_string(port));
  return body;
}

// What the README says the finished walk-through job reports: each
// `"name": value` of its paragraph "The finished job reports ...".
std::vector<std::pair<std::string, std::string>> walkthrough_outcome() {
  const std::string readme = readme_text();
  const std::size_t begin = readme.find("The finished job reports");
  REQUIRE(begin != std::string::npos);
  const std::string paragraph = readme.substr(begin, readme.find("\n\n", begin) - begin);
  const std::regex field("`\"(\\w+)\": (\"\\w+\"|\\d+)`");
  std::vector<std::pair<std::string, std::string>> out;
  for (std::sregex_iterator it(paragraph.begin(), paragraph.end(), field), end; it != end; ++it) {
    out.emplace_back((*it)[1].str(), (*it)[2].str());
  }
  return out;
}

// The walk-through's site, made by the README's lines and served, and a
// real `scrapekeep serve` with one worker beside it.
class Walkthrough {
 public:
  Walkthrough() {
    const std::string folder = (m_dir.path() / "site").string();
    const auto made = run_program(m_dir.path().string(), {"/bin/bash", "-c", site_lines(folder)});
    INFO(made.err);
    REQUIRE(made.exit_code == 0);
    m_site = std::make_unique<FolderSite>(folder);
    m_serve = std::make_unique<ChildProcess>(
        m_dir.path().string(), "serve",
        std::vector<std::string>{"serve", "--db", (m_dir.path() / "scrapekeep.db").string(),
                                 "--listen", "127.0.0.1:0", "--workers", "1"});
    const auto started = wait_serving(*m_serve, seconds(20));
    INFO(m_serve->err());
    REQUIRE(started);
    m_api = std::make_unique<ApiClient>("127.0.0.1", started->port,
                                        scrapekeep::testing::HeaderList{{"X-API-Key", started->key}});
  }

  int site_port() const { return m_site->port(); }
  ApiClient& api() { return *m_api; }

  // Posts `body`, waits for the job's end; its id and its last progress.
  std::pair<std::string, HttpReply> run(const std::string& body) {
    const HttpReply created = m_api->post("/v1/scrape", body);
    INFO(created.body);
    REQUIRE(created.status == 201);
    const std::string id = created.data()["job_id"].get<std::string>();
    HttpReply progress;
    REQUIRE(eventually([&] {
      progress = m_api->get("/v1/scrape/jobs/" + id + "/progress");
      return progress.data()["status"] != "pending" && progress.data()["status"] != "processing";
    }));
    return {id, progress};
  }

 private:
  TempDir m_dir;
  std::unique_ptr<FolderSite> m_site;
  std::unique_ptr<ChildProcess> m_serve;
  std::unique_ptr<ApiClient> m_api;
};

} // namespace

TEST_CASE("README: the walk-through's job, as its curl posts it, ends as the README says",
          "[readme]") {
  Walkthrough w;
  const auto outcome = walkthrough_outcome();
  REQUIRE(outcome.size() == 5);
  const std::string body = walkthrough_job(w.site_port());
  INFO(body);
  const auto [id, progress] = w.run(body);
  INFO(progress.body);
  for (const auto& [name, value] : outcome) {
    INFO(name);
    CHECK(progress.data()[name].dump() == value);
  }
  const HttpReply results = w.api().get("/v1/scrape/jobs/" + id + "/results?limit=10");
  REQUIRE(results.status == 200);
  REQUIRE(results.data()["items"].size() == 6);
  CHECK(results.data()["items"][0]["fields"]["title"] == "House 1-a");
  CHECK(results.data()["items"][0]["detail"]["description"] == "About house 1-a");
}

TEST_CASE("README: API.md's example job runs as written on the walk-through's site", "[readme]") {
  Walkthrough w;

  // API.md's example, its port the site's.
  std::string body = R"({
  "url": "http://127.0.0.1:9000/listings?page=1",
  "options": {
    "timeout": 300,
    "max_items": 100,
    "follow_pagination": true,
    "max_pages": 10,
    "depth": 0,
    "selectors": {
      "item": "//article[@class='property']",
      "fields": {"title": ".//h2", "price": ".//span[@class='price']"},
      "next_page": "//a[@rel='next']/@href",
      "detail_link": ".//a/@href",
      "detail_fields": {"description": "//p[@class='desc']"}
    }
  }
})";
  body.replace(body.find("9000"), 4, std::to_string(w.site_port()));
  for (const int depth : {0, 1}) {
    INFO("depth " << depth);
    body.replace(body.find("\"depth\": ") + 9, 1, std::to_string(depth));
    const auto [id, progress] = w.run(body);
    INFO(progress.body);
    CHECK(progress.data()["status"] == "completed");
    CHECK(progress.data()["completion_reason"] == "done");
    CHECK(progress.data()["current_page"] == 3);
    CHECK(progress.data()["total_pages_scraped"] == (depth == 0 ? 3 : 9));
    CHECK(progress.data()["total_properties_found"] == 6);
    const HttpReply results = w.api().get("/v1/scrape/jobs/" + id + "/results?limit=1");
    REQUIRE(results.status == 200);
    CHECK(results.data()["items"][0]["fields"]["title"] == "House 1-a");
    CHECK(results.data()["items"][0]["fields"]["price"] == "100");
    if (depth == 1) {
      CHECK(results.data()["items"][0]["detail"]["description"] == "About house 1-a");
    }
  }
}
