// The HTTP API through a real server on a loopback port over a real database
// file: every route, the progress object field for field, every error code
// and the envelope, auth and organization isolation, pagination, and
// concurrent clients. Jobs are driven through the store as a worker would.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/http/connection.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "support/api_server.hpp"
#include "support/child_process.hpp"
#include "support/fake_clock.hpp"

namespace {

using scrapekeep::core::CompletionReason;
using scrapekeep::core::format_timestamp;
using scrapekeep::core::Micros;
using scrapekeep::store::Claim;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::FakeClock;
using scrapekeep::testing::HttpReply;
using scrapekeep::testing::RawConnection;
using scrapekeep::testing::TestServer;
using Json = nlohmann::ordered_json;

constexpr Micros k_second = 1'000'000;
// 2026-01-12T07:00:00Z
constexpr Micros k_t0 = 1'768'201'200'000'000;
constexpr Micros k_lease = 60 * k_second;
const std::string k_site = "http://127.0.0.1:9000/listings?page=";
const std::string k_unknown_id = "job_0123456789abcdef01234567";

const std::vector<std::string> k_progress_fields = {"job_id",
                                                    "status",
                                                    "url",
                                                    "current_page",
                                                    "total_pages_scraped",
                                                    "total_properties_found",
                                                    "progress_percentage",
                                                    "pagination_complete",
                                                    "completion_reason",
                                                    "created_at",
                                                    "completed_at",
                                                    "processing_time",
                                                    "running_time",
                                                    "error_message",
                                                    "estimated_completion"};

const std::vector<std::string> k_job_fields = {
    "job_id",        "status",     "url",          "options",
    "created_at",    "started_at", "completed_at", "completion_reason",
    "error_message", "counters",   "attempts"};

const std::vector<std::string> k_counter_fields = {
    "listing_pages_scraped", "listing_pages_failed", "detail_pages_discovered",
    "detail_pages_scraped",  "detail_pages_failed",  "items_found"};

const std::vector<std::string> k_error_fields = {"code",    "message",  "type",     "status",
                                                 "details", "trace_id", "timestamp"};

// The envelope's "success" flag, or nullopt when there is none.
std::optional<bool> envelope_success(const HttpReply& r) {
  if (!r.json.is_object() || !r.json.contains("success") || !r.json.at("success").is_boolean()) {
    return std::nullopt;
  }
  return r.json.at("success").get<bool>();
}

std::vector<std::string> keys_of(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& item : object.items()) {
    keys.push_back(item.key());
  }
  return keys;
}

bool has_keys(const Json& object, const std::vector<std::string>& keys) {
  if (!object.is_object()) {
    return false;
  }
  return std::all_of(keys.begin(), keys.end(),
                     [&](const std::string& k) { return object.contains(k); });
}

bool is_timestamp(const Json& value) {
  static const std::regex k_format(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$)");
  return value.is_string() && std::regex_match(value.get<std::string>(), k_format);
}

std::string ts(Micros at) {
  return format_timestamp(at);
}

std::string page_url(int page) {
  return k_site + std::to_string(page);
}

// Percent-encodes everything but unreserved characters (for query values).
std::string encode(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Json job_request(const std::string& url, Json options = Json::object()) {
  if (!options.contains("selectors")) {
    options["selectors"] = Json{{"item", "//article"}};
  }
  return Json{{"url", url}, {"options", options}};
}

Json paged_options(int max_pages, int max_items = 100) {
  return Json{{"follow_pagination", true},
              {"max_pages", max_pages},
              {"max_items", max_items},
              {"selectors", Json{{"item", "//article"}, {"fields", Json{{"title", ".//h2"}}}}}};
}

// Creates a job over HTTP and returns its id.
std::string create_job(ApiClient& client, const Json& body) {
  const HttpReply r = client.post("/v1/scrape", body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  REQUIRE(r.data().contains("job_id"));
  return r.data()["job_id"].get<std::string>();
}

// The simulated worker claims the oldest pending job, which must be `job_id`.
Claim claim(TestServer& server, const std::string& job_id, Micros now) {
  auto claimed = server.store().claim_next(now, k_lease);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->has_value());
  REQUIRE((*claimed)->job_id == job_id);
  return **claimed;
}

ListingPageRecord listing(int page, int n_items, Micros at, bool next = true) {
  ListingPageRecord r;
  r.page_number = page;
  r.url = page_url(page);
  r.http_status = 200;
  r.started_at = at;
  r.finished_at = at + 100'000;
  for (int i = 0; i < n_items; ++i) {
    NewItem item;
    item.fields = {
        {"title", "Item " + std::to_string(page) + "-" + std::to_string(i)},
        {"price", i % 2 == 0 ? std::optional<std::string>("$" + std::to_string(i)) : std::nullopt}};
    r.items.push_back(std::move(item));
  }
  if (next) {
    r.next_url = page_url(page + 1);
  }
  r.pagination_complete = !next;
  return r;
}

ListingPageRecord failed_listing(int page, Micros at) {
  ListingPageRecord r;
  r.page_number = page;
  r.url = page_url(page);
  r.http_status = 503;
  r.ok = false;
  r.error = "HTTP 503";
  r.started_at = at;
  r.finished_at = at + 100'000;
  return r;
}

// The error envelope of API.md, with `trace_id` equal to X-Request-Id and the
// timestamp taken from the server's clock.
void check_error(const HttpReply& r, int status, const std::string& code, Micros now) {
  INFO("status " << r.status << " body " << r.body << " " << r.transport_error);
  REQUIRE(r.status == status);
  REQUIRE(r.json.is_object());
  CHECK(envelope_success(r) == std::optional<bool>(false));
  CHECK_FALSE(r.json.contains("data"));
  Json e = r.error();
  REQUIRE(e.is_object());
  CHECK(keys_of(e) == k_error_fields);
  CHECK(e["code"] == code);
  CHECK(e["message"].is_string());
  CHECK_FALSE(e["message"].get<std::string>().empty());
  CHECK(e["type"] == (status >= 500 ? "server_error" : "client_error"));
  CHECK(e["status"] == status);
  CHECK((e["details"].is_object() || e["details"].is_null()));
  REQUIRE(e["trace_id"].is_string());
  CHECK_FALSE(e["trace_id"].get<std::string>().empty());
  CHECK(r.header("X-Request-Id") == std::optional<std::string>(e["trace_id"].get<std::string>()));
  CHECK(is_timestamp(e["timestamp"]));
  CHECK(e["timestamp"] == ts(now));
  // No SQL, no paths.
  const std::string message = e["message"].get<std::string>();
  CHECK(message.find("SELECT") == std::string::npos);
  CHECK(message.find("/tmp") == std::string::npos);
}

// details.fields of a 422 names exactly these fields, each with a reason.
void check_bad_fields(const HttpReply& r, Micros now, const std::set<std::string>& names) {
  check_error(r, 422, "VALIDATION_ERROR", now);
  Json details = r.error()["details"];
  REQUIRE(details.is_object());
  REQUIRE(details.contains("fields"));
  Json fields = details["fields"];
  REQUIRE(fields.is_object());
  std::set<std::string> got;
  for (const auto& item : fields.items()) {
    got.insert(item.key());
    INFO(item.key());
    CHECK(item.value().is_string());
    CHECK_FALSE(item.value().get<std::string>().empty());
  }
  CHECK(got == names);
}

// The progress object: API.md's fields first, in order, each with its type.
void check_progress_shape(Json p) {
  REQUIRE(p.is_object());
  const auto keys = keys_of(p);
  REQUIRE(keys.size() >= k_progress_fields.size());
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + k_progress_fields.size()) ==
        k_progress_fields);
  CHECK(p["job_id"].is_string());
  CHECK(p["status"].is_string());
  CHECK(p["url"].is_string());
  CHECK(p["current_page"].is_number_integer());
  CHECK(p["total_pages_scraped"].is_number_integer());
  CHECK(p["total_properties_found"].is_number_integer());
  CHECK(p["progress_percentage"].is_number());
  CHECK(p["progress_percentage"].get<double>() >= 0.0);
  CHECK(p["progress_percentage"].get<double>() <= 100.0);
  CHECK(p["pagination_complete"].is_boolean());
  CHECK((p["completion_reason"].is_null() || p["completion_reason"].is_string()));
  CHECK(is_timestamp(p["created_at"]));
  CHECK((p["completed_at"].is_null() || is_timestamp(p["completed_at"])));
  CHECK((p["processing_time"].is_null() || p["processing_time"].is_number()));
  CHECK((p["running_time"].is_null() || p["running_time"].is_number()));
  CHECK((p["error_message"].is_null() || p["error_message"].is_string()));
  CHECK((p["estimated_completion"].is_null() || is_timestamp(p["estimated_completion"])));
}

void check_job_shape(Json j) {
  REQUIRE(j.is_object());
  CHECK(has_keys(j, k_job_fields));
  CHECK(j["job_id"].is_string());
  CHECK(j["status"].is_string());
  CHECK(j["url"].is_string());
  CHECK(j["options"].is_object());
  CHECK(is_timestamp(j["created_at"]));
  CHECK((j["started_at"].is_null() || is_timestamp(j["started_at"])));
  CHECK((j["completed_at"].is_null() || is_timestamp(j["completed_at"])));
  CHECK((j["completion_reason"].is_null() || j["completion_reason"].is_string()));
  CHECK((j["error_message"].is_null() || j["error_message"].is_string()));
  CHECK(has_keys(j["counters"], k_counter_fields));
  for (const auto& name : k_counter_fields) {
    CHECK(j["counters"][name].is_number_integer());
  }
  CHECK(j["attempts"].is_number_integer());
}

Json get_progress(ApiClient& client, const std::string& job_id) {
  const HttpReply r = client.get("/v1/scrape/jobs/" + job_id + "/progress");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(envelope_success(r) == std::optional<bool>(true));
  check_progress_shape(r.data());
  return r.data();
}

std::int64_t count_rows(JobStore& store, const char* table, const std::string& job_id) {
  SQLite::Statement q(store.database(),
                      std::string("SELECT COUNT(*) FROM ") + table + " WHERE job_id = ?");
  q.bind(1, job_id);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// Every job route, with `job_id` in place of {job_id}.
std::vector<std::pair<std::string, std::string>> job_routes(const std::string& job_id) {
  const std::string base = "/v1/scrape/jobs/" + job_id;
  return {{"GET", base},
          {"GET", base + "/progress"},
          {"GET", base + "/results"},
          {"GET", base + "/events"},
          {"POST", base + "/cancel"},
          {"DELETE", base}};
}

} // namespace

TEST_CASE("GET /healthz on a file whose scrapekeep index is gone is 503 not 422", "[http]") {
  // The open-time check of the file's schema (tables, triggers, and now its
  // indexes) refuses it as invalid_argument, which the health check passed
  // on as 422 VALIDATION_ERROR, a request error, to a GET without a body.
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient anonymous = server.client("");
  REQUIRE(anonymous.get("/healthz").status == 200);
  {
    SQLite::Database raw(server.db_path(), SQLite::OPEN_READWRITE);
    raw.exec("DROP INDEX page_events_listing_once");
  }
  const HttpReply r = anonymous.get("/healthz");
  check_error(r, 503, "STORAGE_UNAVAILABLE", clock.now());
  CHECK(r.error()["details"] == Json{{"database", "unavailable"}});
}

TEST_CASE("GET /healthz answers without a key", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient anonymous = server.client("");
  const HttpReply r = anonymous.get("/healthz");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(envelope_success(r) == std::optional<bool>(true));
  CHECK(r.data()["status"] == "ok");
  CHECK(r.data()["database"] == "ok");
  CHECK(r.data()["version"].is_string());
  CHECK(r.header("X-Request-Id").has_value());
  CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
  // A new id for every request.
  const HttpReply again = anonymous.get("/healthz");
  REQUIRE(again.header("X-Request-Id").has_value());
  CHECK(again.header("X-Request-Id") != r.header("X-Request-Id"));
  // Compressed for a client that accepts it, so a cache is told it varies.
  CHECK(r.header("Vary") == std::optional<std::string>("Accept-Encoding"));
  const HttpReply gzipped = anonymous.request("GET", "/healthz", {}, {{"Accept-Encoding", "gzip"}});
  REQUIRE(gzipped.status == 200);
  CHECK(gzipped.header("Content-Encoding") == std::optional<std::string>("gzip"));
  CHECK(gzipped.header("Vary") == std::optional<std::string>("Accept-Encoding"));
  // A coding refused with q=0 is not used (RFC 9110 12.5.3).
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {"gzip;q=0", std::nullopt},
      {"gzip, br;q=0", "gzip"},
      {"br;q=0, GZIP; Q=0.000, identity;q=1", std::nullopt},
      {"br;q=0.0,gzip;q=0.5", "gzip"}};
  for (const auto& [accept, coding] : cases) {
    INFO(accept);
    const HttpReply r2 = anonymous.request("GET", "/healthz", {}, {{"Accept-Encoding", accept}});
    REQUIRE(r2.status == 200);
    CHECK(r2.header("Content-Encoding") == coding);
  }
  // Nor in an answer given before the request is routed: 413 to a client
  // that waits for 100 Continue.
  RawConnection asks(server.port());
  REQUIRE(
      asks.send("POST /v1/scrape HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0\r\n"
                "Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n"));
  const HttpReply refused = asks.read_reply();
  REQUIRE(refused.status == 413);
  CHECK_FALSE(refused.header("Content-Encoding").has_value());
}

TEST_CASE("POST /v1/scrape creates a job with options normalized", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();

  SECTION("defaults filled in") {
    const HttpReply r = a.post("/v1/scrape", job_request(page_url(1)));
    INFO(r.body);
    REQUIRE(r.status == 201);
    CHECK(envelope_success(r) == std::optional<bool>(true));
    Json job = r.data();
    check_job_shape(job);
    const std::string id = job["job_id"].get<std::string>();
    CHECK(std::regex_match(id, std::regex("^job_[0-9a-f]{24}$")));
    CHECK(job["status"] == "pending");
    CHECK(job["url"] == page_url(1));
    CHECK(job["created_at"] == ts(k_t0));
    CHECK(job["started_at"].is_null());
    CHECK(job["completed_at"].is_null());
    CHECK(job["completion_reason"].is_null());
    CHECK(job["error_message"].is_null());
    CHECK(job["attempts"] == 0);
    for (const auto& name : k_counter_fields) {
      CHECK(job["counters"][name] == 0);
    }
    Json o = job["options"];
    CHECK(o["timeout"] == 300);
    CHECK(o["max_items"] == 100);
    CHECK(o["follow_pagination"] == false);
    CHECK(o["max_pages"] == 10);
    CHECK(o["depth"] == 0);
    CHECK(o["selectors"]["item"] == "//article");
    CHECK(o["selectors"]["next_page"] == "//a[@rel='next']/@href | //link[@rel='next']/@href");
    CHECK(o["selectors"]["detail_link"] == ".//a/@href");

    // GET answers the same object.
    const HttpReply again = a.get("/v1/scrape/jobs/" + id);
    REQUIRE(again.status == 200);
    CHECK(again.data() == job);
  }
  SECTION("API.md's example body is taken as written") {
    const Json body = Json::parse(R"({
      "url": "http://127.0.0.1:9000/listings?page=1",
      "options": {
        "timeout": 300, "max_items": 100, "follow_pagination": true, "max_pages": 10, "depth": 0,
        "selectors": {
          "item": "//article[@class='property']",
          "fields": {"title": ".//h2", "price": ".//span[@class='price']"},
          "next_page": "//a[@rel='next']/@href",
          "detail_link": ".//a/@href",
          "detail_fields": {"description": "//p[@class='desc']"}
        }
      }
    })");
    const HttpReply r = a.post("/v1/scrape", body);
    INFO(r.body);
    REQUIRE(r.status == 201);
    CHECK(r.data()["options"] == body["options"]);
    // Field order is the caller's.
    CHECK(keys_of(r.data()["options"]["selectors"]["fields"]) ==
          std::vector<std::string>{"title", "price"});
  }
  SECTION("range limits are accepted") {
    for (const Json& options :
         {Json{{"timeout", 1}, {"max_items", 1}, {"max_pages", 1}, {"depth", 0}},
          Json{{"timeout", 1800}, {"max_items", 1000000}, {"max_pages", 10000}, {"depth", 1}}}) {
      const HttpReply r = a.post("/v1/scrape", job_request(page_url(1), options));
      INFO(r.body);
      REQUIRE(r.status == 201);
      for (const auto& [key, value] : options.items()) {
        CHECK(r.data()["options"][key] == value);
      }
    }
    // https and a URL of exactly 2048 characters.
    const std::string https = "https://example.com/";
    CHECK(a.post("/v1/scrape", job_request(https)).status == 201);
    const std::string longest = https + std::string(2048 - https.size(), 'a');
    REQUIRE(longest.size() == 2048);
    CHECK(a.post("/v1/scrape", job_request(longest)).status == 201);
  }
}

TEST_CASE("progress: every field, in order, before a worker starts", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  // follow_pagination, max_pages 5, max_items 100; created at t0.
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));

  SECTION("pending") {
    clock.advance(5 * k_second);
    Json p = get_progress(a, id);
    CHECK(p["job_id"] == id);
    CHECK(p["status"] == "pending");
    CHECK(p["url"] == page_url(1));
    CHECK(p["current_page"] == 0);
    CHECK(p["total_pages_scraped"] == 0);
    CHECK(p["total_properties_found"] == 0);
    CHECK(p["progress_percentage"] == 0.0);
    CHECK(p["pagination_complete"] == false);
    CHECK(p["completion_reason"].is_null());
    CHECK(p["created_at"] == ts(k_t0));
    CHECK(p["completed_at"].is_null());
    CHECK(p["processing_time"].is_null());
    CHECK(p["running_time"].is_null());
    CHECK(p["error_message"].is_null());
    CHECK(p["estimated_completion"].is_null());
  }

  SECTION("cancelled while pending") {
    clock.advance(2 * k_second);
    const HttpReply r = a.post("/v1/scrape/jobs/" + id + "/cancel");
    INFO(r.body);
    REQUIRE(r.status == 200);
    check_job_shape(r.data());
    CHECK(r.data()["status"] == "cancelled");
    CHECK(r.data()["completion_reason"] == "cancelled");
    CHECK(r.data()["completed_at"] == ts(k_t0 + 2 * k_second));
    clock.advance(10 * k_second);
    Json p = get_progress(a, id);
    CHECK(p["status"] == "cancelled");
    CHECK(p["current_page"] == 0);
    CHECK(p["progress_percentage"] == 0.0);
    CHECK(p["completion_reason"] == "cancelled");
    CHECK(p["completed_at"] == ts(k_t0 + 2 * k_second));
    CHECK(p["processing_time"].is_null());
    CHECK(p["running_time"].is_null());
    CHECK(p["estimated_completion"].is_null());
  }
}

TEST_CASE("progress: every field, in order, once a worker has started", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));
  // The simulated worker: claims at t0 + 1 s, stores page 1 (4 items, a next link).
  clock.set_now(k_t0 + k_second);
  const Claim c = claim(server, id, clock.now());
  REQUIRE(server.store().record_listing_page(c, listing(1, 4, clock.now()), clock.now()).ok());
  clock.set_now(k_t0 + 11 * k_second);

  SECTION("processing") {
    Json p = get_progress(a, id);
    CHECK(p["status"] == "processing");
    CHECK(p["current_page"] == 2);
    CHECK(p["total_pages_scraped"] == 1);
    CHECK(p["total_properties_found"] == 4);
    // 1 of 5 planned listing pages: 20.0 (items 4 / 100 lose)
    CHECK(p["progress_percentage"] == 20.0);
    CHECK(p["pagination_complete"] == false);
    CHECK(p["completion_reason"].is_null());
    CHECK(p["created_at"] == ts(k_t0));
    CHECK(p["completed_at"].is_null());
    CHECK(p["processing_time"].is_null());
    CHECK(p["running_time"] == 10.0);
    CHECK(p["error_message"].is_null());
    // started_at + 10 s / 0.2
    CHECK(p["estimated_completion"] == ts(k_t0 + k_second + 50 * k_second));

    const HttpReply job = a.get("/v1/scrape/jobs/" + id);
    REQUIRE(job.status == 200);
    check_job_shape(job.data());
    CHECK(job.data()["status"] == "processing");
    CHECK(job.data()["started_at"] == ts(k_t0 + k_second));
    CHECK(job.data()["attempts"] == 1);
    CHECK(job.data()["counters"]["listing_pages_scraped"] == 1);
    CHECK(job.data()["counters"]["items_found"] == 4);

    // running_time follows the server's clock.
    clock.advance(2'345'678);
    CHECK(get_progress(a, id)["running_time"] == 12.35);
  }

  SECTION("completed, done") {
    REQUIRE(
        server.store().record_listing_page(c, listing(2, 2, clock.now(), false), clock.now()).ok());
    clock.set_now(k_t0 + 21 * k_second);
    REQUIRE(server.store().finish(c, CompletionReason::done, std::nullopt, clock.now()).ok());
    clock.set_now(k_t0 + 30 * k_second);
    Json p = get_progress(a, id);
    CHECK(p["status"] == "completed");
    CHECK(p["current_page"] == 2);
    CHECK(p["total_pages_scraped"] == 2);
    CHECK(p["total_properties_found"] == 6);
    CHECK(p["progress_percentage"] == 100.0);
    CHECK(p["pagination_complete"] == true);
    CHECK(p["completion_reason"] == "done");
    CHECK(p["completed_at"] == ts(k_t0 + 21 * k_second));
    CHECK(p["processing_time"] == 20.0);
    CHECK(p["running_time"].is_null());
    CHECK(p["error_message"].is_null());
    CHECK(p["estimated_completion"].is_null());
  }

  SECTION("completed, timeout") {
    clock.set_now(k_t0 + 301 * k_second);
    REQUIRE(server.store().finish(c, CompletionReason::timeout, std::nullopt, clock.now()).ok());
    Json p = get_progress(a, id);
    CHECK(p["status"] == "completed");
    CHECK(p["current_page"] == 1);  // the last listing page processed
    CHECK(p["total_pages_scraped"] == 1);
    CHECK(p["total_properties_found"] == 4);
    CHECK(p["progress_percentage"] == 100.0);
    CHECK(p["pagination_complete"] == false);
    CHECK(p["completion_reason"] == "timeout");
    CHECK(p["completed_at"] == ts(k_t0 + 301 * k_second));
    CHECK(p["processing_time"] == 300.0);
    CHECK(p["running_time"].is_null());
    CHECK(p["error_message"].is_null());
    CHECK(p["estimated_completion"].is_null());
    // The partial results stay.
    const HttpReply results = a.get("/v1/scrape/jobs/" + id + "/results");
    REQUIRE(results.status == 200);
    CHECK(results.data()["total"] == 4);
  }

  SECTION("failed, error") {
    clock.set_now(k_t0 + 15 * k_second);
    REQUIRE(
        server.store().record_listing_page(c, failed_listing(2, clock.now()), clock.now()).ok());
    const std::string why = page_url(2) + ": HTTP 503";  // as the worker words it
    REQUIRE(server.store().finish(c, CompletionReason::error, why, clock.now()).ok());
    clock.advance(3600 * k_second);
    Json p = get_progress(a, id);
    CHECK(p["status"] == "failed");
    CHECK(p["current_page"] == 2);
    CHECK(p["total_pages_scraped"] == 1);
    CHECK(p["total_properties_found"] == 4);
    // Frozen: 2 of 5 listing pages done.
    CHECK(p["progress_percentage"] == 40.0);
    CHECK(p["pagination_complete"] == false);
    CHECK(p["completion_reason"] == "error");
    CHECK(p["completed_at"] == ts(k_t0 + 15 * k_second));
    CHECK(p["processing_time"] == 14.0);
    CHECK(p["running_time"].is_null());
    CHECK(p["error_message"] == why);
    CHECK(p["estimated_completion"].is_null());

    const HttpReply job = a.get("/v1/scrape/jobs/" + id);
    CHECK(job.data()["status"] == "failed");
    CHECK(job.data()["error_message"] == why);
    CHECK(job.data()["counters"]["listing_pages_failed"] == 1);
  }

  SECTION("cancelled while processing; the worker is fenced off") {
    const HttpReply r = a.post("/v1/scrape/jobs/" + id + "/cancel");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.data()["status"] == "cancelled");
    CHECK(r.data()["completed_at"] == ts(k_t0 + 11 * k_second));
    CHECK_FALSE(
        server.store().record_listing_page(c, listing(2, 3, clock.now()), clock.now()).ok());
    CHECK_FALSE(server.store().finish(c, CompletionReason::done, std::nullopt, clock.now()).ok());
    clock.advance(60 * k_second);
    Json p = get_progress(a, id);
    CHECK(p["status"] == "cancelled");
    CHECK(p["current_page"] == 1);  // the last listing page processed
    CHECK(p["total_pages_scraped"] == 1);
    CHECK(p["total_properties_found"] == 4);
    CHECK(p["progress_percentage"] == 20.0);
    CHECK(p["completion_reason"] == "cancelled");
    CHECK(p["completed_at"] == ts(k_t0 + 11 * k_second));
    CHECK(p["processing_time"] == 10.0);
    CHECK(p["running_time"].is_null());
    CHECK(p["estimated_completion"].is_null());
  }
}

TEST_CASE("auth: missing, invalid and revoked keys on every /v1 route", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1)));

  auto created = server.store().create_key("org-c", clock.now());
  REQUIRE(created.ok());
  REQUIRE(server.store().revoke_key(created->info.key_id, clock.now()).ok());

  ApiClient anonymous = server.client("");
  ApiClient unknown = server.client("ak_" + std::string(40, '0'));
  ApiClient malformed = server.client("not-a-key");
  ApiClient revoked = server.client(created->key);
  ApiClient bad_bearer =
      server.client_with({{"Authorization", "Bearer ak_" + std::string(40, 'f')}});

  size_t checked = 0;
  for (const auto& route : server.router().routes()) {
    if (!route.needs_auth) {
      continue;
    }
    std::string path = route.path;
    if (const size_t at = path.find("{job_id}"); at != std::string::npos) {
      path.replace(at, 8, id);
    }
    INFO(route.method << " " << path);
    const std::string body = route.method == "POST" ? job_request(page_url(1)).dump() : "";
    check_error(anonymous.request(route.method, path, body), 401, "AUTHENTICATION_REQUIRED",
                clock.now());
    check_error(unknown.request(route.method, path, body), 401, "INVALID_API_KEY", clock.now());
    check_error(malformed.request(route.method, path, body), 401, "INVALID_API_KEY", clock.now());
    check_error(bad_bearer.request(route.method, path, body), 401, "INVALID_API_KEY", clock.now());
    check_error(revoked.request(route.method, path, body), 401, "API_KEY_DEACTIVATED", clock.now());
    ++checked;
  }
  CHECK(checked == 8);
  // Nothing was created or changed by refused requests.
  const HttpReply list = a.get("/v1/scrape/jobs");
  REQUIRE(list.status == 200);
  CHECK(list.data()["total"] == 1);
  CHECK(a.get("/v1/scrape/jobs/" + id).data()["status"] == "pending");
}

TEST_CASE("progress: a key revoked while in use is refused on its next request", "[http]") {
  // The progress route reads key and job in one statement on a pooled
  // connection that keeps its statement and the key's hash between requests:
  // the revocation must still show at once.
  FakeClock clock(k_t0);
  TestServer server(clock);
  auto created = server.store().create_key(server.org_a().org_name, clock.now());
  REQUIRE(created.ok());
  ApiClient a = server.client_a();
  ApiClient soon_revoked = server.client(created->key);
  const std::string id = create_job(a, job_request(page_url(1)));
  const std::string path = "/v1/scrape/jobs/" + id + "/progress";
  for (int i = 0; i < 3; ++i) {
    REQUIRE(soon_revoked.get(path).status == 200);
  }
  REQUIRE(server.store().revoke_key(created->info.key_id, clock.now()).ok());
  check_error(soon_revoked.get(path), 401, "API_KEY_DEACTIVATED", clock.now());
  CHECK(a.get(path).status == 200);
  check_error(server.client_b().get(path), 404, "JOB_NOT_FOUND", clock.now());
}

TEST_CASE("auth: Authorization: Bearer works like X-API-Key", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  ApiClient bearer = server.client_with({{"Authorization", "Bearer " + server.org_a().key}});
  const std::string by_header = create_job(a, job_request(page_url(1)));
  clock.advance(k_second);
  const std::string by_bearer = create_job(bearer, job_request(page_url(2)));

  const HttpReply list = bearer.get("/v1/scrape/jobs");
  REQUIRE(list.status == 200);
  CHECK(list.data()["total"] == 2);
  CHECK(list.data()["jobs"][0]["job_id"] == by_bearer);
  CHECK(list.data()["jobs"][1]["job_id"] == by_header);
  CHECK(bearer.get("/v1/scrape/jobs/" + by_header).status == 200);
  CHECK(a.get("/v1/scrape/jobs/" + by_bearer + "/progress").status == 200);

  // A job belongs to the organization, not to the key that created it.
  auto second_key = server.store().create_key("org-a", clock.now());
  REQUIRE(second_key.ok());
  ApiClient colleague = server.client(second_key->key);
  CHECK(colleague.get("/v1/scrape/jobs/" + by_header).status == 200);
  CHECK(colleague.get("/v1/scrape/jobs").data()["total"] == 2);

  // The scheme in any case (RFC 9110); an empty token is no key at all.
  for (const std::string scheme : {"bearer ", "BEARER ", "BeArEr  "}) {
    CHECK(server.client_with({{"Authorization", scheme + server.org_a().key}})
              .get("/v1/scrape/jobs")
              .status == 200);
  }
  for (const std::string empty : {"Bearer", "Bearer   ", ""}) {
    check_error(server.client_with({{"Authorization", empty}}).get("/v1/scrape/jobs"), 401,
                "AUTHENTICATION_REQUIRED", clock.now());
  }
  check_error(server.client_with({{"Authorization", "Basic " + server.org_a().key}})
                  .get("/v1/scrape/jobs"),
              401, "INVALID_API_KEY", clock.now());
}

TEST_CASE("another organization's job is JOB_NOT_FOUND on every job route", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  ApiClient b = server.client_b();
  const std::string pending = create_job(a, job_request(page_url(1)));
  clock.advance(k_second);
  const std::string done = create_job(a, job_request(page_url(2)));
  const Claim c = claim(server, pending, clock.now());
  REQUIRE(server.store().finish(c, CompletionReason::done, std::nullopt, clock.now()).ok());
  // `pending` is now completed (deletable), `done` is pending (cancellable):
  // org-b can do neither.
  for (const std::string& id : {pending, done}) {
    for (const auto& [method, path] : job_routes(id)) {
      INFO(method << " " << path);
      check_error(b.request(method, path), 404, "JOB_NOT_FOUND", clock.now());
    }
  }
  CHECK(a.get("/v1/scrape/jobs/" + pending).data()["status"] == "completed");
  CHECK(a.get("/v1/scrape/jobs/" + done).data()["status"] == "pending");
  const HttpReply list_b = b.get("/v1/scrape/jobs");
  REQUIRE(list_b.status == 200);
  CHECK(list_b.data()["total"] == 0);
  CHECK(list_b.data()["jobs"].empty());
}

TEST_CASE("unknown and malformed job ids are JOB_NOT_FOUND on every job route", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  for (const std::string& id :
       {k_unknown_id, std::string("nope"), std::string("job_XYZ"),
        std::string("job_0123456789ABCDEF01234567"), std::string("job_") + std::string(200, 'a'),
        std::string("%27%20OR%201%3D1")}) {
    for (const auto& [method, path] : job_routes(id)) {
      INFO(method << " " << path);
      check_error(a.request(method, path), 404, "JOB_NOT_FOUND", clock.now());
    }
  }
}

TEST_CASE("unknown routes are NOT_FOUND and wrong methods METHOD_NOT_ALLOWED", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1)));
  const Micros now = clock.now();

  for (const std::string& path :
       {std::string("/"), std::string("/v1"), std::string("/v1/nothing"),
        std::string("/v2/scrape/jobs"), "/v1/scrape/jobs/" + id + "/unknown",
        "/v1/scrape/jobs/" + id + "/progress/more", std::string("/healthz/x")}) {
    INFO(path);
    check_error(a.get(path), 404, "NOT_FOUND", now);
  }
  // Without a key too: the route does not exist whoever asks.
  check_error(server.client("").get("/v1/nothing"), 404, "NOT_FOUND", now);

  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"GET", "/v1/scrape"},
      {"DELETE", "/v1/scrape"},
      {"POST", "/v1/scrape/jobs"},
      {"DELETE", "/v1/scrape/jobs"},
      {"PUT", "/v1/scrape/jobs/" + id},
      {"PATCH", "/v1/scrape/jobs/" + id},
      {"POST", "/v1/scrape/jobs/" + id},
      {"POST", "/v1/scrape/jobs/" + id + "/progress"},
      {"DELETE", "/v1/scrape/jobs/" + id + "/results"},
      {"PUT", "/v1/scrape/jobs/" + id + "/events"},
      {"GET", "/v1/scrape/jobs/" + id + "/cancel"},
      {"POST", "/healthz"},
  };
  for (const auto& [method, path] : wrong) {
    INFO(method << " " << path);
    check_error(a.request(method, path), 405, "METHOD_NOT_ALLOWED", now);
  }
  // A 405 says which methods the path has, in the Allow header and details
  // (HEAD wherever GET is: it is answered as GET without the body).
  const HttpReply put = a.request("PUT", "/v1/scrape/jobs/" + id);
  CHECK(put.header("Allow") == std::optional<std::string>("GET, HEAD, DELETE"));
  CHECK(put.error()["details"]["allowed_methods"] == Json::array({"GET", "HEAD", "DELETE"}));
  const HttpReply head = a.request("HEAD", "/v1/scrape/jobs/" + id);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(a.request("GET", "/v1/scrape/jobs/" + id + "/cancel").header("Allow") ==
        std::optional<std::string>("POST"));
  // The job is untouched by all that.
  CHECK(a.get("/v1/scrape/jobs/" + id).data()["status"] == "pending");
}

TEST_CASE("methods no route uses are METHOD_NOT_ALLOWED, not a bad request", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1)));
  for (const std::string& path : {std::string("/v1/scrape/jobs"), "/v1/scrape/jobs/" + id}) {
    INFO("TRACE " << path);
    check_error(a.request("TRACE", path), 405, "METHOD_NOT_ALLOWED", clock.now());
  }
  // Methods the server library has never heard of, too.
  for (const std::string method : {"PROPFIND", "FOO"}) {
    INFO(method);
    const HttpReply on_route = a.request(method, "/v1/scrape/jobs/" + id + "?x=1");
    check_error(on_route, 405, "METHOD_NOT_ALLOWED", clock.now());
    CHECK(on_route.header("Allow") == std::optional<std::string>("GET, HEAD, DELETE"));
    // The connection closes after it (the library could not read the
    // request's framing), and the answer says only that.
    CHECK(on_route.header("Connection") == std::optional<std::string>("close"));
    CHECK_FALSE(on_route.header("Keep-Alive"));
    check_error(a.request(method, "/v1/no-such-route"), 404, "NOT_FOUND", clock.now());
  }
}

TEST_CASE("INVALID_JSON is 400 with the byte position", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const Micros now = clock.now();

  for (const std::string& body : {std::string("{\"url\": "), std::string("not json"),
                                  std::string("{\"url\": \"http://a.b/\",}"), std::string("")}) {
    INFO("body '" << body << "'");
    const HttpReply r = a.post("/v1/scrape", body);
    check_error(r, 400, "INVALID_JSON", now);
    Json details = r.error()["details"];
    REQUIRE(details.is_object());
    REQUIRE(details.contains("position"));
    CHECK(details["position"].is_number_integer());
    CHECK(details["position"].get<std::int64_t>() <= static_cast<std::int64_t>(body.size()) + 1);
  }
  // The position points at the error, late in the body here.
  const std::string late = R"({"url": "http://127.0.0.1:9000/listings", "options": oops})";
  const HttpReply r = a.post("/v1/scrape", late);
  check_error(r, 400, "INVALID_JSON", now);
  const auto position = r.error()["details"]["position"].get<std::int64_t>();
  CHECK(position >= static_cast<std::int64_t>(late.find("oops")));
  CHECK(position <= static_cast<std::int64_t>(late.find("oops")) + 2);
  // Nothing was created.
  CHECK(a.get("/v1/scrape/jobs").data()["total"] == 0);
}

TEST_CASE("VALIDATION_ERROR is 422 naming every bad field", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const Micros now = clock.now();

  SECTION("many bad fields at once") {
    const Json body = Json::parse(R"({
      "url": "ftp://127.0.0.1/listings",
      "extra": 1,
      "options": {
        "timeout": 0, "max_items": 1000001, "max_pages": 0, "depth": 2,
        "follow_pagination": "yes", "bogus": true,
        "selectors": {
          "item": "//div[",
          "next_page": "((",
          "detail_link": "",
          "fields": {"title": "]]", "ok": ".//h2"},
          "detail_fields": {"description": "//p[@"},
          "what": "x"
        }
      }
    })");
    check_bad_fields(a.post("/v1/scrape", body), now,
                     {"url", "extra", "options.timeout", "options.max_items", "options.max_pages",
                      "options.depth", "options.follow_pagination", "options.bogus",
                      "options.selectors.item", "options.selectors.next_page",
                      "options.selectors.detail_link", "options.selectors.fields.title",
                      "options.selectors.detail_fields.description", "options.selectors.what"});
  }
  SECTION("url") {
    const std::string https = "https://example.com/";
    const std::string too_long = https + std::string(2049 - https.size(), 'a');
    for (const Json& url :
         {Json("not a url"), Json("http://"), Json("javascript:alert(1)"), Json("/relative/path"),
          Json(42), Json(too_long), Json("http://exa mple.com/")}) {
      INFO(url.dump().substr(0, 80));
      check_bad_fields(
          a.post("/v1/scrape", Json{{"url", url}, {"options", {{"selectors", {{"item", "//a"}}}}}}),
          now, {"url"});
    }
    check_bad_fields(a.post("/v1/scrape", Json{{"options", {{"selectors", {{"item", "//a"}}}}}}),
                     now, {"url"});
    // What is wrong with a URL that looks almost right is said.
    const HttpReply port = a.post(
        "/v1/scrape",
        Json{{"url", "http://127.0.0.1:70000/x"}, {"options", {{"selectors", {{"item", "//a"}}}}}});
    check_bad_fields(port, now, {"url"});
    CHECK(port.error()["details"]["fields"]["url"] ==
          "must be an absolute http or https URL, with a host and, if any, a port from 1 to "
          "65535");
    for (const std::string spaced : {"http://shop.test/search?q=a b", "http://shop.test/\tx",
                                     "http://shop.test/x\n", "http://shop.test/a\xC2\x9B" "31mX",
                                     "http://shop.test/\xC2\x80"}) {
      const HttpReply r = a.post(
          "/v1/scrape", Json{{"url", spaced}, {"options", {{"selectors", {{"item", "//a"}}}}}});
      check_bad_fields(r, now, {"url"});
      CHECK(r.error()["details"]["fields"]["url"] ==
            "must not contain spaces or control characters (write a space as %20)");
    }
  }
  SECTION("ranges and types, one at a time") {
    const std::vector<std::pair<Json, std::string>> cases = {
        {Json{{"timeout", 1801}}, "options.timeout"},
        {Json{{"timeout", 1.5}}, "options.timeout"},
        {Json{{"timeout", "300"}}, "options.timeout"},
        {Json{{"timeout", true}}, "options.timeout"},
        {Json{{"max_items", 0}}, "options.max_items"},
        {Json{{"max_items", -5}}, "options.max_items"},
        {Json{{"max_pages", 10001}}, "options.max_pages"},
        {Json{{"depth", -1}}, "options.depth"},
        {Json{{"follow_pagination", 1}}, "options.follow_pagination"},
    };
    for (const auto& [options, field] : cases) {
      Json o = options;
      o["selectors"] = Json{{"item", "//article"}};
      INFO(o.dump());
      check_bad_fields(a.post("/v1/scrape", job_request(page_url(1), o)), now, {field});
    }
  }
  SECTION("selectors") {
    check_bad_fields(a.post("/v1/scrape", Json{{"url", page_url(1)}}), now,
                     {"options.selectors.item"});
    check_bad_fields(
        a.post("/v1/scrape", job_request(page_url(1), Json{{"selectors", Json::object()}})), now,
        {"options.selectors.item"});
    check_bad_fields(
        a.post("/v1/scrape",
               job_request(page_url(1), Json{{"selectors", Json{{"item", "count(("}}}})),
        now, {"options.selectors.item"});
    // An XPath 2.0 function inside a predicate, which an empty page never evaluates.
    check_bad_fields(
        a.post("/v1/scrape",
               job_request(page_url(1),
                           Json{{"selectors", Json{{"item", "//article[matches(@class, 'p')]"},
                                                   {"fields", Json{{"t", ".//h2[$x]"}}}}}})),
        now, {"options.selectors.item", "options.selectors.fields.t"});
    // What is not an object is named, not the item inside it that was never sent.
    check_bad_fields(a.post("/v1/scrape", Json{{"url", page_url(1)}, {"options", Json::array()}}),
                     now, {"options"});
    check_bad_fields(
        a.post("/v1/scrape", job_request(page_url(1), Json{{"selectors", "//article"}})), now,
        {"options.selectors"});
  }
  SECTION("a body that is not an object") {
    const HttpReply r = a.post("/v1/scrape", std::string("[1, 2]"));
    check_error(r, 422, "VALIDATION_ERROR", now);
    CHECK(r.error()["details"]["fields"].is_object());
    CHECK_FALSE(r.error()["details"]["fields"].empty());
  }
  // None of these created a job.
  CHECK(a.get("/v1/scrape/jobs").data()["total"] == 0);
}

TEST_CASE("cancel and delete answer 409 when the state does not allow it", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string first = create_job(a, job_request(page_url(1), paged_options(3)));
  clock.advance(k_second);
  const std::string second = create_job(a, job_request(page_url(2)));
  const Micros now = clock.now();

  // Pending and processing jobs cannot be deleted.
  check_error(a.del("/v1/scrape/jobs/" + second), 409, "JOB_NOT_DELETABLE", now);
  const Claim c = claim(server, first, now);
  REQUIRE(server.store().record_listing_page(c, listing(1, 3, now), now).ok());
  check_error(a.del("/v1/scrape/jobs/" + first), 409, "JOB_NOT_DELETABLE", now);

  // Terminal jobs cannot be cancelled.
  REQUIRE(server.store().finish(c, CompletionReason::done, std::nullopt, now).ok());
  check_error(a.post("/v1/scrape/jobs/" + first + "/cancel"), 409, "JOB_NOT_CANCELLABLE", now);
  REQUIRE(a.post("/v1/scrape/jobs/" + second + "/cancel").status == 200);
  check_error(a.post("/v1/scrape/jobs/" + second + "/cancel"), 409, "JOB_NOT_CANCELLABLE", now);
  CHECK(a.get("/v1/scrape/jobs/" + first).data()["status"] == "completed");

  // A terminal job is deleted with its events and results.
  REQUIRE(count_rows(server.store(), "page_events", first) == 1);
  REQUIRE(count_rows(server.store(), "result_items", first) == 3);
  const HttpReply deleted = a.del("/v1/scrape/jobs/" + first);
  INFO(deleted.body);
  REQUIRE(deleted.status == 200);
  CHECK(deleted.json["success"] == true);
  CHECK(count_rows(server.store(), "jobs", first) == 0);
  CHECK(count_rows(server.store(), "page_events", first) == 0);
  CHECK(count_rows(server.store(), "result_items", first) == 0);
  for (const auto& [method, path] : job_routes(first)) {
    INFO(method << " " << path);
    check_error(a.request(method, path), 404, "JOB_NOT_FOUND", now);
  }
  REQUIRE(a.del("/v1/scrape/jobs/" + second).status == 200);
  CHECK(a.get("/v1/scrape/jobs").data()["total"] == 0);
}

TEST_CASE("DELETE of a job with more rows than a delete batch is answered at once, and every "
          "read misses the job before its rows are purged",
          "[http][purge]") {
  FakeClock clock(k_t0);
  // serve wakes its maintenance thread with this, so the rows go at once.
  std::atomic<int> woken{0};
  scrapekeep::http::ServerConfig config;
  config.after_delete = [&woken] { ++woken; };
  TestServer server(clock, config);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(3, 10000)));
  const Micros now = clock.now();
  const Claim c = claim(server, id, now);
  const std::string kept = create_job(a, job_request(page_url(1)));
  // 3 events and 6,000 items: more than the 5,000 rows one transaction deletes.
  for (int page = 1; page <= 3; ++page) {
    REQUIRE(server.store().record_listing_page(c, listing(page, 2000, now, page < 3), now).ok());
  }
  REQUIRE(server.store().finish(c, CompletionReason::done, std::nullopt, now).ok());
  REQUIRE(a.get("/v1/scrape/jobs/" + id + "/results?limit=1").data()["total"] == 6000);

  const HttpReply deleted = a.del("/v1/scrape/jobs/" + id);
  INFO(deleted.body);
  REQUIRE(deleted.status == 200);
  CHECK(deleted.data() == Json{{"job_id", id}, {"deleted", true}});
  CHECK(woken == 1);
  for (const auto& [method, path] : job_routes(id)) {
    INFO(method << " " << path);
    check_error(a.request(method, path), 404, "JOB_NOT_FOUND", now);
  }
  CHECK(woken == 1);  // a DELETE that found no job wakes nothing
  const Json listed = a.get("/v1/scrape/jobs").data();
  CHECK(listed["total"] == 1);
  REQUIRE(listed["jobs"].size() == 1);
  CHECK(listed["jobs"][0]["job_id"] == kept);

  // The rows go a batch at a time, as the maintenance thread purges them.
  int calls = 0;
  for (bool more = true; more && calls < 10; ++calls) {
    auto step = server.store().purge_deleted();
    REQUIRE(step.ok());
    CHECK(step->rows <= 5000);
    more = step->more;
  }
  CHECK(calls == 2);
  CHECK(count_rows(server.store(), "page_events", id) == 0);
  CHECK(count_rows(server.store(), "result_items", id) == 0);
  CHECK(a.get("/v1/scrape/jobs/" + kept).status == 200);
}

// POSTs `body` to /v1/scrape on a raw connection, with a Content-Length or
// chunked, and reads the answer. The server answers an oversize body and
// closes without reading it all, so sending may fail half way (when, depends
// on scheduling); a client library gives up then without reading the answer
// already sent, this stops sending and reads it.
HttpReply post_raw(const TestServer& server, const std::string& body, bool chunked) {
  RawConnection c(server.port());
  bool sending = c.send("POST /v1/scrape HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " +
                        server.org_a().key + "\r\nContent-Type: application/json\r\n" +
                        (chunked ? std::string("Transfer-Encoding: chunked\r\n")
                                 : "Content-Length: " + std::to_string(body.size()) + "\r\n") +
                        "\r\n");
  constexpr std::size_t k_piece = 65536;
  for (std::size_t at = 0; sending && at < body.size(); at += k_piece) {
    const std::string part = body.substr(at, k_piece);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    sending = c.send(chunked ? size + part + "\r\n" : part);
  }
  if (sending && chunked) {
    c.send("0\r\n\r\n");
  }
  return c.read_reply(std::chrono::seconds(30));
}

TEST_CASE("bodies over 1 MiB are PAYLOAD_TOO_LARGE", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  constexpr size_t k_limit = 1 << 20;

  // A valid body padded with trailing spaces to exactly the limit is served.
  std::string exact = job_request(page_url(1)).dump();
  exact.append(k_limit - exact.size(), ' ');
  REQUIRE(exact.size() == k_limit);
  const HttpReply ok = a.post("/v1/scrape", exact);
  INFO(ok.body << ok.transport_error);
  CHECK(ok.status == 201);

  const std::string over = exact + " ";
  check_error(post_raw(server, over, false), 413, "PAYLOAD_TOO_LARGE", clock.now());
  CHECK(a.get("/v1/scrape/jobs").data()["total"] == 1);

  SECTION("also when the body comes chunked, without a Content-Length") {
    // A valid job padded to 2 MiB: it must be refused, not read and created.
    std::string big = job_request(page_url(2)).dump();
    big.append(2 * k_limit - big.size(), ' ');
    check_error(post_raw(server, big, true), 413, "PAYLOAD_TOO_LARGE", clock.now());
    CHECK(a.get("/v1/scrape/jobs").data()["total"] == 1);
  }
  SECTION("a small chunked body is served") {
    ApiClient chunked = server.client_a();
    const HttpReply small = chunked.post_chunked("/v1/scrape", job_request(page_url(3)).dump(), 7);
    INFO(small.body << small.transport_error);
    CHECK(small.status == 201);
  }
}

TEST_CASE("GET /v1/scrape/jobs filters and pages, newest first", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  ApiClient b = server.client_b();
  // Five jobs of org-a at t0 .. t0 + 4 s; one of org-b at t0 + 2 s.
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    if (i == 2) {
      create_job(b, job_request(page_url(99)));
    }
    ids.push_back(create_job(a, job_request(page_url(i + 1))));
    clock.advance(k_second);
  }
  const Micros now = clock.now();
  // ids[0] processing, ids[1] cancelled, the rest pending.
  claim(server, ids[0], now);
  REQUIRE(a.post("/v1/scrape/jobs/" + ids[1] + "/cancel").status == 200);

  auto list = [&](const std::string& query) {
    const HttpReply r = a.get("/v1/scrape/jobs" + query);
    INFO(query << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(envelope_success(r) == std::optional<bool>(true));
    CHECK(keys_of(r.data()) == std::vector<std::string>{"jobs", "total", "limit", "offset"});
    return r.data();
  };
  auto ids_of = [](Json data) {
    std::vector<std::string> out;
    for (auto j : data["jobs"]) {
      check_job_shape(j);
      out.push_back(j["job_id"].get<std::string>());
    }
    return out;
  };

  Json all = list("");
  CHECK(all["total"] == 5);
  CHECK(all["limit"] == 50);
  CHECK(all["offset"] == 0);
  CHECK(ids_of(all) == std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]});

  Json page = list("?limit=2&offset=1");
  CHECK(page["total"] == 5);
  CHECK(page["limit"] == 2);
  CHECK(page["offset"] == 1);
  CHECK(ids_of(page) == std::vector<std::string>{ids[3], ids[2]});
  CHECK(ids_of(list("?limit=1")) == std::vector<std::string>{ids[4]});
  CHECK(list("?limit=100")["limit"] == 100);
  Json past = list("?offset=10");
  CHECK(past["total"] == 5);
  CHECK(past["jobs"].empty());

  CHECK(ids_of(list("?status=pending")) == std::vector<std::string>{ids[4], ids[3], ids[2]});
  CHECK(list("?status=pending")["total"] == 3);
  CHECK(ids_of(list("?status=processing")) == std::vector<std::string>{ids[0]});
  CHECK(ids_of(list("?status=cancelled")) == std::vector<std::string>{ids[1]});
  CHECK(list("?status=completed")["total"] == 0);
  CHECK(list("?status=failed")["total"] == 0);

  // created_after is inclusive, created_before exclusive.
  const std::string after = encode(ts(k_t0 + k_second));
  const std::string before = encode(ts(k_t0 + 3 * k_second));
  CHECK(ids_of(list("?created_after=" + after)) ==
        std::vector<std::string>{ids[4], ids[3], ids[2], ids[1]});
  CHECK(ids_of(list("?created_before=" + before)) ==
        std::vector<std::string>{ids[2], ids[1], ids[0]});
  Json window = list("?created_after=" + after + "&created_before=" + before + "&status=pending");
  CHECK(window["total"] == 1);
  CHECK(ids_of(window) == std::vector<std::string>{ids[2]});
  CHECK(list("?created_after=2026-01-12T07:00:03Z")["total"] == 2);
  CHECK(list("?created_before=2026-01-12")["total"] == 0);
  // A bound between two microseconds: the job created at the one before is
  // before it (out of created_after, in created_before).
  const std::string between = "2026-01-12T07:00:01.0000001Z";
  REQUIRE(ts(k_t0 + k_second) == "2026-01-12T07:00:01.000000+00:00");
  CHECK(ids_of(list("?created_after=" + between)) ==
        std::vector<std::string>{ids[4], ids[3], ids[2]});
  CHECK(ids_of(list("?created_before=" + between)) == std::vector<std::string>{ids[1], ids[0]});

  // Bad filters name their field.
  check_bad_fields(a.get("/v1/scrape/jobs?status=running"), now, {"status"});
  check_bad_fields(a.get("/v1/scrape/jobs?limit=0"), now, {"limit"});
  check_bad_fields(a.get("/v1/scrape/jobs?limit=101"), now, {"limit"});
  check_bad_fields(a.get("/v1/scrape/jobs?limit=ten"), now, {"limit"});
  check_bad_fields(a.get("/v1/scrape/jobs?offset=-1"), now, {"offset"});
  check_bad_fields(a.get("/v1/scrape/jobs?created_after=yesterday"), now, {"created_after"});
  check_bad_fields(a.get("/v1/scrape/jobs?created_before=2026-13-01"), now, {"created_before"});
  check_bad_fields(a.get("/v1/scrape/jobs?limit=0&status=x"), now, {"limit", "status"});

  // org-b sees only its own job.
  const HttpReply list_b = b.get("/v1/scrape/jobs");
  REQUIRE(list_b.status == 200);
  CHECK(list_b.data()["total"] == 1);
  CHECK(list_b.data()["jobs"][0]["url"] == page_url(99));
}

TEST_CASE("results and events are paged", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));
  clock.advance(k_second);
  const Claim c = claim(server, id, clock.now());
  const Micros t1 = clock.now();
  REQUIRE(server.store().record_listing_page(c, listing(1, 3, t1), t1).ok());
  clock.advance(k_second);
  const Micros t2 = clock.now();
  REQUIRE(server.store().record_listing_page(c, failed_listing(2, t2), t2).ok());
  clock.advance(k_second);
  const Micros t3 = clock.now();
  REQUIRE(server.store().record_listing_page(c, listing(3, 2, t3, false), t3).ok());
  const Micros now = clock.now();

  SECTION("results") {
    const HttpReply r = a.get("/v1/scrape/jobs/" + id + "/results");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(keys_of(r.data()) == std::vector<std::string>{"items", "total", "limit", "offset"});
    CHECK(r.data()["total"] == 5);
    CHECK(r.data()["limit"] == 100);
    CHECK(r.data()["offset"] == 0);
    REQUIRE(r.data()["items"].size() == 5);
    Json first = r.data()["items"][0];
    CHECK(has_keys(first, {"index", "page_url", "page_number", "fields", "detail"}));
    CHECK(first["index"] == 0);
    CHECK(first["page_url"] == page_url(1));
    CHECK(first["page_number"] == 1);
    CHECK(first["fields"] == Json{{"title", "Item 1-0"}, {"price", "$0"}});
    CHECK(keys_of(first["fields"]) == std::vector<std::string>{"title", "price"});
    CHECK(first["detail"].is_null());
    CHECK(r.data()["items"][1]["fields"]["price"].is_null());
    CHECK(r.data()["items"][3]["page_number"] == 3);

    const HttpReply paged = a.get("/v1/scrape/jobs/" + id + "/results?limit=2&offset=2");
    REQUIRE(paged.status == 200);
    CHECK(paged.data()["total"] == 5);
    CHECK(paged.data()["limit"] == 2);
    CHECK(paged.data()["offset"] == 2);
    REQUIRE(paged.data()["items"].size() == 2);
    CHECK(paged.data()["items"][0]["index"] == 2);
    CHECK(paged.data()["items"][1]["index"] == 3);
    CHECK(paged.data()["items"][1]["fields"]["title"] == "Item 3-0");

    const HttpReply past = a.get("/v1/scrape/jobs/" + id + "/results?offset=5");
    REQUIRE(past.status == 200);
    CHECK(past.data()["items"].empty());
    CHECK(past.data()["total"] == 5);

    check_bad_fields(a.get("/v1/scrape/jobs/" + id + "/results?limit=0"), now, {"limit"});
    check_bad_fields(a.get("/v1/scrape/jobs/" + id + "/results?offset=-2"), now, {"offset"});
  }

  SECTION("events") {
    const HttpReply r = a.get("/v1/scrape/jobs/" + id + "/events");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(keys_of(r.data()) == std::vector<std::string>{"events", "next_after"});
    Json events = r.data()["events"];
    REQUIRE(events.size() == 3);
    const std::vector<std::string> k_event_fields = {
        "seq",     "kind",        "page_number", "url",        "http_status",
        "outcome", "items_found", "error",       "started_at", "finished_at"};
    for (auto e : events) {
      CHECK(has_keys(e, k_event_fields));
      CHECK(e["seq"].is_number_integer());
      CHECK(e["kind"] == "listing");
      CHECK(is_timestamp(e["started_at"]));
      CHECK(is_timestamp(e["finished_at"]));
    }
    CHECK(events[0]["page_number"] == 1);
    CHECK(events[0]["url"] == page_url(1));
    CHECK(events[0]["http_status"] == 200);
    CHECK(events[0]["outcome"] == "ok");
    CHECK(events[0]["items_found"] == 3);
    CHECK(events[0]["error"].is_null());
    CHECK(events[0]["started_at"] == ts(t1));
    CHECK(events[0]["finished_at"] == ts(t1 + 100'000));
    CHECK(events[1]["page_number"] == 2);
    CHECK(events[1]["outcome"] == "failed");
    CHECK(events[1]["http_status"] == 503);
    CHECK(events[1]["items_found"] == 0);
    CHECK(events[1]["error"] == "HTTP 503");
    CHECK(events[2]["page_number"] == 3);
    CHECK(events[2]["items_found"] == 2);
    // The job's own numbers, from 1, in the order stored.
    CHECK(events[0]["seq"] == 1);
    CHECK(events[1]["seq"] == 2);
    CHECK(events[2]["seq"] == 3);
    CHECK(r.data()["next_after"] == 3);

    // Page through them two at a time.
    std::vector<std::int64_t> pages;
    std::int64_t after = 0;
    int rounds = 0;
    while (rounds < 10) {
      ++rounds;
      const HttpReply batch =
          a.get("/v1/scrape/jobs/" + id + "/events?after=" + std::to_string(after) + "&limit=2");
      REQUIRE(batch.status == 200);
      Json got = batch.data()["events"];
      CHECK(got.size() <= 2);
      if (got.empty()) {
        CHECK(batch.data()["next_after"] == after);
        break;
      }
      for (auto e : got) {
        CHECK(e["seq"].get<std::int64_t>() > after);
        pages.push_back(e["page_number"].get<std::int64_t>());
      }
      CHECK(batch.data()["next_after"] == got.back()["seq"]);
      after = batch.data()["next_after"].get<std::int64_t>();
    }
    CHECK(pages == std::vector<std::int64_t>{1, 2, 3});
    CHECK(rounds == 3);

    check_bad_fields(a.get("/v1/scrape/jobs/" + id + "/events?limit=0"), now, {"limit"});
    check_bad_fields(a.get("/v1/scrape/jobs/" + id + "/events?after=-1"), now, {"after"});
  }
}

TEST_CASE("a damaged stored value shows as null, the job and the lists around it still answer",
          "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string damaged = create_job(a, job_request(page_url(1), paged_options(5)));
  clock.advance(k_second);
  const std::string sound = create_job(a, job_request(page_url(1), paged_options(5)));
  const Claim c = claim(server, damaged, clock.now());
  REQUIRE(server.store().record_listing_page(c, listing(1, 3, clock.now()), clock.now()).ok());
  {
    SQLite::Database raw(server.db_path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET selectors = '{\"item\": 3}' WHERE job_id = '" + damaged + "'");
    raw.exec("UPDATE result_items SET fields = 'x' WHERE item_index = 1");
  }

  const HttpReply list = a.get("/v1/scrape/jobs");
  INFO(list.body);
  REQUIRE(list.status == 200);
  CHECK(list.data()["total"] == 2);
  REQUIRE(list.data()["jobs"].size() == 2);
  CHECK(list.data()["jobs"][0]["job_id"] == sound);
  CHECK(list.data()["jobs"][0]["options"]["selectors"].is_object());
  CHECK(list.data()["jobs"][1]["job_id"] == damaged);
  CHECK(list.data()["jobs"][1]["options"]["selectors"].is_null());
  CHECK(list.data()["jobs"][1]["options"]["max_pages"] == 5);
  CHECK(list.data()["jobs"][1]["counters"]["items_found"] == 3);

  const HttpReply one = a.get("/v1/scrape/jobs/" + damaged);
  REQUIRE(one.status == 200);
  CHECK(one.data() == list.data()["jobs"][1]);
  const HttpReply progress = a.get("/v1/scrape/jobs/" + damaged + "/progress");
  REQUIRE(progress.status == 200);
  CHECK(progress.data()["total_properties_found"] == 3);

  const HttpReply results = a.get("/v1/scrape/jobs/" + damaged + "/results");
  INFO(results.body);
  REQUIRE(results.status == 200);
  REQUIRE(results.data()["items"].size() == 3);
  CHECK(results.data()["items"][0]["fields"]["title"] == "Item 1-0");
  CHECK(results.data()["items"][1]["fields"].is_null());
  CHECK(results.data()["items"][1]["index"] == 1);
  CHECK(results.data()["items"][2]["fields"]["title"] == "Item 1-2");
}

TEST_CASE("a page of results holds at most 16 MiB of stored text: the next page goes on",
          "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));
  const Claim c = claim(server, id, clock.now());
  REQUIRE(server.store().record_listing_page(c, listing(1, 4, clock.now()), clock.now()).ok());
  {
    // Items 1 and 2 hold 9 MiB each (items of two pages, each within its
    // page's 16 MiB extraction bound): 0, 1 and 2 pass 16 MiB together.
    SQLite::Database raw(server.db_path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE result_items SET fields = '{\"t\": \"' || hex(zeroblob(4718592)) || "
             "'\"}' WHERE item_index IN (1, 2)");
  }
  const HttpReply first = a.get("/v1/scrape/jobs/" + id + "/results?limit=10");
  REQUIRE(first.status == 200);
  CHECK(first.data()["total"] == 4);
  CHECK(first.data()["limit"] == 10);
  REQUIRE(first.data()["items"].size() == 2);
  CHECK(first.data()["items"][1]["fields"]["t"].get<std::string>().size() == 9u << 20);
  const HttpReply next = a.get("/v1/scrape/jobs/" + id + "/results?limit=10&offset=2");
  REQUIRE(next.status == 200);
  REQUIRE(next.data()["items"].size() == 2);
  CHECK(next.data()["items"][0]["index"] == 2);
  CHECK(next.data()["items"][1]["index"] == 3);
  CHECK(next.data()["items"][1]["fields"]["title"] == "Item 1-3");
}

namespace {

// `get()`'s answer, asked for while other answers hold all of the answers'
// budget (resized to 1 MiB): it waits (checked) until they are sent.
HttpReply waits_for_all_of_budget(const std::function<HttpReply()>& get) {
  auto& budget = scrapekeep::http::answer_budget();
  std::optional<scrapekeep::core::ByteBudget::Lease> others(budget.acquire(1 << 20));
  std::optional<HttpReply> waited;
  std::thread reader([&] { waited = get(); });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.waiting() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(waited.has_value());
  others.reset();
  reader.join();
  REQUIRE(waited.has_value());
  return *waited;
}

} // namespace

TEST_CASE("pages of jobs being built and sent share one byte budget: a page ends early or "
          "waits while others hold it, and gives it back once sent",
          "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  for (int i = 0; i < 3; ++i) {
    create_job(a, job_request(page_url(1) + "&q=" + std::string(1000, 'x')));
    clock.advance(1'000'000);
  }
  auto& budget = scrapekeep::http::answer_budget();
  REQUIRE(budget.held() == 0);
  CHECK(a.get("/v1/scrape/jobs").data()["jobs"].size() == 3);
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
  // Other answers hold all but room for one job's row.
  struct Resized {
    std::size_t before = scrapekeep::http::answer_budget().resize(1 << 20);
    ~Resized() { scrapekeep::http::answer_budget().resize(before); }
  } resized;
  {
    std::optional<scrapekeep::core::ByteBudget::Lease> others(budget.acquire((1 << 20) - 1500));
    const HttpReply page = a.get("/v1/scrape/jobs");
    REQUIRE(page.status == 200);
    CHECK(page.data()["jobs"].size() == 1);
    CHECK(page.data()["total"] == 3);
    CHECK(page.data()["limit"] == 50);
    others.reset();
    const HttpReply waited =
        waits_for_all_of_budget([&] { return server.client_a().get("/v1/scrape/jobs?offset=1"); });
    CHECK(waited.status == 200);
    CHECK(waited.data()["jobs"].size() == 2);
  }
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
}

TEST_CASE("pages of events hold their bytes in the answers' byte budget too", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));
  clock.advance(k_second);
  const Claim c = claim(server, id, clock.now());
  for (int page = 1; page <= 3; ++page) {
    REQUIRE(server.store().record_listing_page(c, listing(page, 1, clock.now()), clock.now()).ok());
  }
  auto& budget = scrapekeep::http::answer_budget();
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
  struct Resized {
    std::size_t before = scrapekeep::http::answer_budget().resize(1 << 20);
    ~Resized() { scrapekeep::http::answer_budget().resize(before); }
  } resized;
  const Json all = a.get("/v1/scrape/jobs/" + id + "/events").data()["events"];
  REQUIRE(all.size() == 3);
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
  const std::size_t one = all[0]["url"].get<std::string>().size();
  // Other answers hold all but room for one event's row: the page ends
  // after it, and next_after goes on from there.
  std::optional<scrapekeep::core::ByteBudget::Lease> others(
      budget.acquire((1 << 20) - (2 * one - 1)));
  const HttpReply page = a.get("/v1/scrape/jobs/" + id + "/events");
  REQUIRE(page.status == 200);
  REQUIRE(page.data()["events"].size() == 1);
  CHECK(page.data()["next_after"] == 1);
  others.reset();
  const HttpReply waited = waits_for_all_of_budget(
      [&] { return server.client_a().get("/v1/scrape/jobs/" + id + "/events?after=1"); });
  CHECK(waited.status == 200);
  CHECK(waited.data()["events"].size() == 2);
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
}

TEST_CASE("8 concurrent clients all get correct answers", "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  constexpr int k_threads = 8;
  constexpr int k_jobs_per_thread = 6;
  // Catch assertions are not thread-safe: threads collect failures as text.
  std::vector<std::vector<std::string>> failures(k_threads);
  std::vector<std::vector<std::string>> created(k_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      auto fail = [&](const std::string& what, const HttpReply& r) {
        failures[t].push_back(what + ": " + std::to_string(r.status) + " " + r.body +
                              r.transport_error);
      };
      ApiClient client = t % 2 == 0 ? server.client_a() : server.client_b();
      for (int i = 0; i < k_jobs_per_thread; ++i) {
        const std::string url =
            "http://127.0.0.1:9000/t" + std::to_string(t) + "?i=" + std::to_string(i);
        const HttpReply r = client.post("/v1/scrape", job_request(url));
        if (r.status != 201 || r.data()["url"] != url) {
          fail("create", r);
          continue;
        }
        const std::string id = r.data()["job_id"].get<std::string>();
        created[t].push_back(id);
        const HttpReply got = client.get("/v1/scrape/jobs/" + id);
        if (got.status != 200 || got.data()["job_id"] != id || got.data()["url"] != url) {
          fail("get", got);
        }
        const HttpReply p = client.get("/v1/scrape/jobs/" + id + "/progress");
        if (p.status != 200 || p.data()["job_id"] != id || p.data()["status"] != "pending" ||
            p.data()["progress_percentage"] != 0.0) {
          fail("progress", p);
        }
        const HttpReply list = client.get("/v1/scrape/jobs?limit=100");
        bool listed = false;
        if (list.status == 200) {
          const Json listed_jobs = list.data()["jobs"];
          for (const auto& j : listed_jobs) {
            listed = listed || j["job_id"] == id;
          }
        }
        if (!listed) {
          fail("list", list);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::set<std::string> all;
  for (int t = 0; t < k_threads; ++t) {
    INFO("thread " << t);
    CHECK(failures[t] == std::vector<std::string>{});
    CHECK(created[t].size() == static_cast<size_t>(k_jobs_per_thread));
    all.insert(created[t].begin(), created[t].end());
  }
  CHECK(all.size() == static_cast<size_t>(k_threads * k_jobs_per_thread));
  const int per_org = k_threads / 2 * k_jobs_per_thread;
  CHECK(server.client_a().get("/v1/scrape/jobs").data()["total"] == per_org);
  CHECK(server.client_b().get("/v1/scrape/jobs").data()["total"] == per_org);
}

TEST_CASE("a stop that comes before serve() runs, or right as it starts, ends it", "[http]") {
  scrapekeep::testing::TempDir dir;
  const scrapekeep::store::StoreConfig store_config{.path = dir.file("stop.db")};
  REQUIRE(scrapekeep::store::JobStore::open(store_config));  // created and migrated
  scrapekeep::store::StorePool pool(store_config);
  scrapekeep::testing::FakeClock clock;
  for (int round = 0; round < 40; ++round) {
    scrapekeep::http::ServerConfig config;
    config.host = "127.0.0.1";
    config.port = 0;
    scrapekeep::http::ApiServer server(config, pool, clock);
    REQUIRE(server.bind());
    if (round % 4 == 0) {
      server.stop();  // as a SIGTERM before the serving thread starts
      server.serve();  // returns at once
      continue;
    }
    std::thread serving([&server] { server.serve(); });
    if (round % 4 == 2) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    server.stop();
    serving.join();  // before, it could serve for ever (ctest's timeout then fails it)
  }
}

// A kept lease lives until its answer is sent, and the write timeout only
// bounds each send's wait: a client that kept reading a little held its
// page's bytes as long as it liked, and other clients' pages waited 10 s and
// answered 503 (this client gave up after 5 s with no answer at all).
TEST_CASE("a client that reads a large page slowly does not keep other organizations from "
          "listing their jobs",
          "[http]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  ApiClient b = server.client_b();
  const std::string id = create_job(a, job_request(page_url(1), paged_options(5)));
  const Claim c = claim(server, id, clock.now());
  REQUIRE(server.store().record_listing_page(c, listing(1, 4, clock.now()), clock.now()).ok());
  create_job(b, job_request(page_url(1)));
  {
    SQLite::Database raw(server.db_path(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE result_items SET fields = '{\"t\": \"' || hex(randomblob(6291456)) || "
             "'\"}' WHERE item_index = 1");
  }
  auto& budget = scrapekeep::http::answer_budget();
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() == 0; }));
  // 12 MiB of text: all the budget there is (64 MiB) would take six such
  // readers; one is enough when it is 8 MiB.
  struct Resized {
    std::size_t before = scrapekeep::http::answer_budget().resize(8 << 20);
    ~Resized() { scrapekeep::http::answer_budget().resize(before); }
  } resized;
  // A client that reads 32 KiB every 200 ms (160 KiB/s): always within the
  // write timeout, a 12 MiB answer takes it over a minute.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int small = 8192;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request = "GET /v1/scrape/jobs/" + id +
                              "/results?limit=1&offset=1 HTTP/1.1\r\nHost: t\r\nX-API-Key: " +
                              server.org_a().key + "\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::atomic<bool> stop{false};
  std::atomic<bool> drain{false};  // then reads what came as fast as it can
  std::atomic<bool> closed{false};
  std::atomic<std::size_t> got{0};
  std::thread slow([&] {
    std::vector<char> buf(32768);
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(drain ? 1 : 200));
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed = true;
        break;
      }
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      }
    }
  });
  REQUIRE(scrapekeep::testing::eventually([&] { return budget.held() >= (12u << 20); }));
  const auto start = std::chrono::steady_clock::now();
  const HttpReply other = b.get("/v1/scrape/jobs");
  const auto took = std::chrono::steady_clock::now() - start;
  // The slow reader's answer was given up: its connection closed before
  // the whole answer came.
  drain = true;
  CHECK(scrapekeep::testing::eventually([&] { return closed.load(); }));
  stop = true;
  slow.join();
  ::close(fd);
  INFO("slow client read " << got.load() << " bytes");
  CHECK(other.status == 200);
  // Within the 2 s grace and its own answer's time: well before the 10 s a
  // page waits for room (the client gives up after 5 s).
  CHECK(took < std::chrono::seconds(5));
  CHECK(got < (12u << 20));
}
