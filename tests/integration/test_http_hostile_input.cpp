// Hostile input to the HTTP API: broken request lines and headers, size
// limits, JSON that is deep, invalid UTF-8 or numerically absurd, absurd
// query parameters, job ids of every shape, and slow or idle clients. Every
// case must answer API.md's error envelope with the right code (never a 500,
// never a crash), and the server must keep serving everyone else.

#include <SQLiteCpp/Database.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "support/api_server.hpp"
#include "support/fake_clock.hpp"

namespace {

using scrapekeep::core::Micros;
using scrapekeep::testing::ApiClient;
using scrapekeep::testing::FakeClock;
using scrapekeep::testing::HttpReply;
using scrapekeep::testing::RawConnection;
using scrapekeep::testing::TestServer;
using Json = nlohmann::ordered_json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// 2026-01-12T07:00:00Z
constexpr Micros k_t0 = 1'768'201'200'000'000;
const std::string k_listing = "http://127.0.0.1:9000/listings?page=1";
const std::vector<std::string> k_error_fields = {"code",    "message",  "type",     "status",
                                                 "details", "trace_id", "timestamp"};

// API.md's error envelope with this status and code.
void check_error(const HttpReply& r, int status, const std::string& code) {
  INFO("status " << r.status << " body " << r.body.substr(0, 300) << " " << r.transport_error);
  REQUIRE(r.status == status);
  REQUIRE(r.json.is_object());
  CHECK(r.json["success"] == false);
  CHECK_FALSE(r.json.contains("data"));
  REQUIRE(r.json.contains("error"));
  Json e = r.json["error"];
  std::vector<std::string> keys;
  for (const auto& item : e.items()) {
    keys.push_back(item.key());
  }
  CHECK(keys == k_error_fields);
  CHECK(e["code"] == code);
  CHECK(e["status"] == status);
  CHECK(e["type"] == (status >= 500 ? "server_error" : "client_error"));
  CHECK(e["message"].is_string());
  CHECK((e["details"].is_null() || e["details"].is_object()));
  REQUIRE(e["trace_id"].is_string());
  CHECK(r.header("X-Request-Id") == std::optional<std::string>(e["trace_id"].get<std::string>()));
}

// A 422 naming exactly `field` (among possibly others when `only` is false).
void check_bad_field(const HttpReply& r, const std::string& field) {
  check_error(r, 422, "VALIDATION_ERROR");
  Json fields = r.json["error"]["details"]["fields"];
  REQUIRE(fields.is_object());
  INFO(fields.dump());
  CHECK(fields.contains(field));
}

// One request on a fresh raw connection.
HttpReply raw(int port, const std::string& bytes) {
  RawConnection c(port);
  c.send(bytes);
  return c.read_reply();
}

std::string request_head(const std::string& method, const std::string& target,
                         const std::string& key, const std::string& extra = {}) {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + key + "\r\n" +
         extra + "\r\n";
}

Json job_body(const std::string& url = k_listing) {
  return Json{{"url", url}, {"options", {{"selectors", {{"item", "//article"}}}}}};
}

// Creates a pending job; returns its id.
std::string create_job(ApiClient& client) {
  const HttpReply created = client.post("/v1/scrape", job_body());
  INFO(created.body);
  REQUIRE(created.status == 201);
  return created.json["data"]["job_id"].get<std::string>();
}

void check_alive(TestServer& server) {
  ApiClient probe = server.client_a();
  const HttpReply health = probe.get("/healthz");
  INFO(health.body << health.transport_error);
  CHECK(health.status == 200);
}

std::int64_t job_count(TestServer& server) {
  ApiClient a = server.client_a();
  const HttpReply r = a.get("/v1/scrape/jobs");
  REQUIRE(r.status == 200);
  return r.json["data"]["total"].get<std::int64_t>();
}

// The first character of `name` percent-encoded, then the rest: the same name,
// written otherwise.
std::string hex(const std::string& name) {
  static const char* const k_digits = "0123456789ABCDEF";
  const auto c = static_cast<unsigned char>(name.at(0));
  return std::string{k_digits[c >> 4], k_digits[c & 15]} + name.substr(1);
}

} // namespace

TEST_CASE("hostile: request lines, URIs and headers past the limits", "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  const std::string key = server.org_a().key;
  const int port = server.port();

  SECTION("a URI over 8 KiB is 414, one under it is served") {
    check_error(raw(port, request_head("GET", "/v1/scrape/jobs/" + std::string(9000, 'a'), key)),
                414, "URI_TOO_LONG");
    check_error(raw(port, request_head("GET", "/v1/scrape/jobs/" + std::string(7000, 'a'), key)),
                404, "JOB_NOT_FOUND");
    check_error(raw(port, request_head("GET", "/v1/scrape/jobs?x=" + std::string(9000, 'b'), key)),
                414, "URI_TOO_LONG");
  }
  SECTION("malformed request lines are 400") {
    for (const std::string& line :
         {std::string("HELLO\r\n\r\n"), std::string("GET\r\n\r\n"),
          std::string("GET /healthz\r\n\r\n"), std::string("GET /healthz HTTP/9.9\r\n\r\n"),
          std::string("\r\n\r\n"),
          std::string("GET /healthz HTTP/1.1 extra\r\n\r\n")}) {
      INFO(line);
      const HttpReply r = raw(port, line);
      check_error(r, 400, "BAD_REQUEST");
    }
  }
  SECTION("a header line over 8 KiB or headers over 64 KiB are 431; many headers are served") {
    check_error(raw(port, request_head("GET", "/healthz", key,
                                       "X-Big: " + std::string(10000, 'x') + "\r\n")),
                431, "HEADERS_TOO_LARGE");
    std::string many;
    for (int i = 0; i < 500; ++i) {
      many += "X-H" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
    }
    const HttpReply r = raw(port, request_head("GET", "/v1/scrape/jobs", key, many));
    REQUIRE(r.status == 200);
    CHECK(r.json["data"]["total"] == 0);
    // 1,000 headers of 80 bytes: each line is fine, together they are too many.
    std::string too_many;
    for (int i = 0; i < 1000; ++i) {
      too_many += "X-H" + std::to_string(i) + ": " + std::string(70, 'v') + "\r\n";
    }
    check_error(raw(port, request_head("GET", "/v1/scrape/jobs", key, too_many)), 431,
                "HEADERS_TOO_LARGE");
  }
  SECTION("headers that never end are refused once past the limit, not read to their end") {
    RawConnection c(port);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const std::string lines = "X-A: " + std::string(1000, 'a') + "\r\n";
    std::size_t sent = 0;
    // Up to 128 MiB; the server answers and stops reading after 64 KiB (and
    // then drops at most 4 MiB more), so sending fails once the socket
    // buffers are full (a few MiB on loopback).
    while (sent < (128u << 20) && c.send(lines)) {
      sent += lines.size();
    }
    INFO("sent " << sent);
    CHECK(sent < (32u << 20));
  }
  SECTION("requests sent together on one connection are each answered, in order") {
    RawConnection c(port);
    const std::string body = job_body().dump();
    c.send(request_head("GET", "/v1/scrape/jobs", key) +
           request_head("POST", "/v1/scrape", key,
                        "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n") +
           body + request_head("GET", "/v1/scrape/jobs", key) + request_head("GET", "/nope", key));
    const HttpReply first = c.read_reply();
    REQUIRE(first.status == 200);
    CHECK(first.json["data"]["total"] == 0);
    const HttpReply created = c.read_reply();
    REQUIRE(created.status == 201);
    const HttpReply second = c.read_reply();
    REQUIRE(second.status == 200);
    CHECK(second.json["data"]["total"] == 1);
    CHECK(second.json["data"]["jobs"][0]["job_id"] == created.json["data"]["job_id"]);
    check_error(c.read_reply(), 404, "NOT_FOUND");
  }
  SECTION("a body left unread is never read as the next request") {
    const std::string smuggled = request_head("GET", "/v1/scrape/jobs", key);
    // Too large (refused before reading), a bad Content-Length, a GET with a
    // body: each is answered, then the connection closes, and the request
    // hidden in the body is never answered.
    for (const auto& [head, status] : std::vector<std::pair<std::string, int>>{
             {request_head("POST", "/v1/scrape", key, "Content-Length: 2000000\r\n"), 413},
             {request_head("POST", "/v1/scrape", key, "Content-Length: abc\r\n"), 400},
             {request_head("GET", "/v1/scrape/jobs", key,
                           "Content-Length: " + std::to_string(smuggled.size()) + "\r\n"),
              200}}) {
      INFO(head);
      RawConnection c(port);
      c.send(head + smuggled);
      const HttpReply first = c.read_reply();
      CHECK(first.status == status);
      CHECK(first.header("Connection") == std::optional<std::string>("close"));
      const HttpReply second = c.read_reply(seconds(3));
      CHECK(second.status == 0);
      CHECK(c.wait_closed(seconds(10)));
    }
  }
  SECTION("an answer is read whole even when the client sent more than was read") {
    RawConnection c(port);
    c.send(request_head("GET", "/v1/scrape/jobs", key, "Connection: close\r\n") +
           std::string(200000, 'x'));
    const HttpReply r = c.read_reply();
    INFO(r.transport_error);
    REQUIRE(r.status == 200);
    CHECK(r.json["data"]["total"] == 0);
  }
  SECTION("binary garbage, a TLS handshake, NUL bytes") {
    const std::string tls("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    for (const std::string& bytes : {tls + std::string(200, '\x00') + "\r\n\r\n",
                                     std::string("\xff\xfe\xfd\r\n\r\n"),
                                     std::string("GET /heal\0thz HTTP/1.1\r\n\r\n", 26)}) {
      RawConnection c(port);
      c.send(bytes);
      const HttpReply r = c.read_reply();
      // Either a 4xx envelope or a closed connection; never a 5xx.
      if (r.status != 0) {
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(r.json.is_object());
      }
    }
  }
  SECTION("keys with control bytes, odd Authorization headers") {
    for (const std::string& header :
         {std::string("X-API-Key: ak_\x01\x02\r\n"), std::string("X-API-Key: \xff\xfe\r\n"),
          std::string("Authorization: Bearer\r\n"), std::string("Authorization: Basic Zm9vOmJhcg==\r\n"),
          std::string("Authorization: Bearer ") + std::string(5000, 'k') + "\r\n"}) {
      INFO(header);
      const HttpReply r =
          raw(port, "GET /v1/scrape/jobs HTTP/1.1\r\nHost: x\r\n" + header + "\r\n");
      CHECK(r.status == 401);
      CHECK(r.json["error"]["status"] == 401);
    }
  }
  SECTION("two keys in one header's place: which one is meant cannot be told, in either order") {
    const std::string bad = "ak_" + std::string(40, 'f');
    for (const std::string& name : {std::string("X-API-Key: "), std::string("Authorization: Bearer ")}) {
      for (const auto& [first, second] : {std::pair{key, bad}, std::pair{bad, key}, std::pair{key, key}}) {
        INFO(name << first << " then " << second);
        check_error(raw(port, "GET /v1/scrape/jobs HTTP/1.1\r\nHost: x\r\n" + name + first +
                                  "\r\n" + name + second + "\r\n\r\n"),
                    401, "INVALID_API_KEY");
      }
    }
  }
  SECTION("absurd Content-Length values") {
    const std::string body = job_body().dump();
    // Larger than the limit, also when it does not fit 64 bits or is negative.
    for (const std::string& length : {std::string("99999999999999999999999"),
                                      std::string("18446744073709551615"), std::string("2000000")}) {
      INFO(length);
      check_error(raw(port, request_head("POST", "/v1/scrape", key,
                                         "Content-Type: application/json\r\nContent-Length: " +
                                             length + "\r\n") +
                                body),
                  413, "PAYLOAD_TOO_LARGE");
    }
    // Refused at once, and the connection closed: its body is never read.
    RawConnection endless(port);
    endless.send(request_head("POST", "/v1/scrape", key,
                              "Content-Length: 18446744073709551615\r\n") +
                 std::string(100000, ' '));
    check_error(endless.read_reply(), 413, "PAYLOAD_TOO_LARGE");
    CHECK(endless.wait_closed(seconds(30)));
    // A client that waits for 100 Continue hears 413 instead, before it sends
    // any of the body; one within the limit is told to go on.
    RawConnection asks(port);
    asks.send(request_head("POST", "/v1/scrape", key,
                           "Content-Length: 2000000\r\nExpect: 100-continue\r\n"));
    check_error(asks.read_reply(seconds(5)), 413, "PAYLOAD_TOO_LARGE");
    CHECK(asks.wait_closed(seconds(30)));
    RawConnection small(port);
    small.send(request_head("POST", "/v1/scrape", key,
                            "Content-Length: " + std::to_string(body.size()) +
                                "\r\nExpect: 100-continue\r\n"));
    CHECK(small.read_reply(seconds(5)).status == 100);
    // The expectation in any case (RFC 9110 10.1.1), as the library heard only
    // "100-continue"; and none from an HTTP/1.0 client, which must be ignored:
    // its body comes after a pause, and the first answer is the final one.
    RawConnection shouts(port);
    shouts.send(request_head("POST", "/v1/scrape", key,
                             "Content-Length: 2000000\r\nExpect:  100-Continue \r\n"));
    check_error(shouts.read_reply(seconds(5)), 413, "PAYLOAD_TOO_LARGE");
    RawConnection shouts_small(port);
    shouts_small.send(request_head("POST", "/v1/scrape", key,
                                   "Content-Length: " + std::to_string(body.size()) +
                                       "\r\nEXPECT: 100-CONTINUE\r\n"));
    CHECK(shouts_small.read_reply(seconds(5)).status == 100);
    // The version as the library reads it: spaces and tabs around it are trimmed.
    for (const std::string& version :
         {std::string(" HTTP/1.0"), std::string(" HTTP/1.0 "), std::string(" \tHTTP/1.0\t")}) {
      INFO("version '" << version << "'");
      RawConnection old(port);
      old.send("POST /v1/scrape" + version + "\r\nHost: 127.0.0.1\r\nX-API-Key: " + key +
               "\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n");
      std::this_thread::sleep_for(milliseconds(200));
      old.send(body);
      const HttpReply created = old.read_reply(seconds(5));
      CHECK(created.status == 201);
    }
    CHECK(job_count(server) == 3);
    // Not a number, negative, or two values.
    for (const std::string& length :
         {std::string("abc"), std::string("-5"), std::string("5, 5"), std::string("0x10")}) {
      INFO(length);
      check_error(raw(port, request_head("POST", "/v1/scrape", key,
                                         "Content-Length: " + length + "\r\n")),
                  400, "BAD_REQUEST");
    }
    CHECK(job_count(server) == 3);  // the HTTP/1.0 clients'
  }
  check_alive(server);
}

TEST_CASE("hostile: JSON bodies that are deep, invalid UTF-8 or numerically absurd",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();

  SECTION("nesting past the depth limit is INVALID_JSON, however deep") {
    for (const size_t depth : {33, 1000, 100000}) {
      INFO("depth " << depth);
      check_error(a.post("/v1/scrape", std::string(depth, '[') + std::string(depth, ']')), 400,
                  "INVALID_JSON");
      std::string objects;
      for (size_t i = 0; i < depth; ++i) {
        objects += "{\"a\":";
      }
      objects += "1" + std::string(depth, '}');
      check_error(a.post("/v1/scrape", objects), 400, "INVALID_JSON");
      // Unterminated: the limit hits before the end is missed.
      check_error(a.post("/v1/scrape", std::string(depth, '[')), 400, "INVALID_JSON");
    }
    // Deep inside a valid job.
    std::string deep = R"({"url": "http://127.0.0.1:9000/", "options": {"selectors": {"item": )";
    deep += std::string(40, '[') + "1" + std::string(40, ']') + "}}}";
    check_error(a.post("/v1/scrape", deep), 400, "INVALID_JSON");
  }
  SECTION("an object or array of more than 1000 members is INVALID_JSON, at once") {
    // The parser's cost grows with the square of a container's members: a
    // 1 MiB array of empty objects took 25 s, 40,000 keys in one object 5 s.
    const auto array_of = [](const std::string& member, size_t n) {
      std::string out = "[";
      for (size_t i = 0; i < n; ++i) {
        out += (i == 0 ? "" : ",") + member;
      }
      return out + "]";
    };
    const auto object_of = [](size_t n) {
      std::string out = "{";
      for (size_t i = 0; i < n; ++i) {
        out += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":{}";
      }
      return out + "}";
    };
    check_bad_field(a.post("/v1/scrape", array_of("{}", 1000)), "body");
    check_bad_field(a.post("/v1/scrape", object_of(1000)), "k0");
    const auto began = std::chrono::steady_clock::now();
    for (const std::string& body : {array_of("{}", 1001), array_of("1", 1001), array_of("[]", 1001),
                                    object_of(1001), array_of("{}", 349'000), object_of(40'000)}) {
      INFO(body.substr(0, 40) << " of " << body.size() << " bytes");
      const HttpReply r = a.post("/v1/scrape", body);
      check_error(r, 400, "INVALID_JSON");
      CHECK(r.json["error"]["message"].get<std::string>().find("more than 1000 members") !=
            std::string::npos);
    }
    CHECK(std::chrono::steady_clock::now() - began < seconds(5));
  }
  SECTION("invalid UTF-8 and bad escapes are INVALID_JSON with a position") {
    for (const std::string& body :
         {std::string("{\"url\": \"http://a.b/\xff\"}"), std::string("{\"\xc3\x28\": 1}"),
          std::string("{\"url\": \"\xe0\x80\xaf\"}"),    // overlong '/'
          std::string("{\"url\": \"\xed\xa0\x80\"}"),    // UTF-8 encoded surrogate
          std::string("{\"url\": \"\\ud800\"}"),         // lone surrogate escape
          std::string("{\"url\": \"\\u12\"}"), std::string("{\"url\": \"\\x41\"}"),
          std::string("{\"url\": \"a\0b\"}", 15), std::string("\0", 1),
          std::string("{\"url\": \"tab\tinside\"}"),
          std::string("{\"url\": 1e400}"), std::string("{\"url\": -1e400}"),
          std::string("[") + std::string(100, '9') + "e99999]"}) {
      INFO(body);
      const HttpReply r = a.post("/v1/scrape", body);
      check_error(r, 400, "INVALID_JSON");
      CHECK(r.json["error"]["details"]["position"].is_number_integer());
    }
  }
  SECTION("absurd numbers in options are VALIDATION_ERROR, never a crash or a wrap") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"timeout", "1e20"},
        {"timeout", "18446744073709551615"},
        {"timeout", "18446744073709551917"},
        {"timeout", "9223372036854775808"},
        {"timeout", "-9223372036854775809"},
        {"timeout", "4294967597"},  // 2^32 + 301: an int would wrap to 301
        {"max_items", "1e300"},
        {"max_items", "-1e300"},
        {"max_pages", "1e-400"},
        {"max_pages", "10000.5"},
        {"depth", "1.0000000001"},
        {"depth", "18446744073709551616"},
    };
    for (const auto& [field, number] : cases) {
      const std::string body = R"({"url": ")" + k_listing + R"(", "options": {")" + field +
                               "\": " + number + R"(, "selectors": {"item": "//a"}}})";
      INFO(body);
      check_bad_field(a.post("/v1/scrape", body), "options." + field);
    }
    CHECK(job_count(server) == 0);
  }
  SECTION("strings: control characters, huge, unicode") {
    check_bad_field(a.post("/v1/scrape", job_body(std::string("http://a.b/\0x", 13))), "url");
    check_bad_field(a.post("/v1/scrape", job_body("http://a.b/\nx")), "url");
    check_bad_field(a.post("/v1/scrape", job_body("http://" + std::string(3000, 'a'))), "url");
    Json many = job_body();
    for (int i = 0; i < 101; ++i) {
      many["options"]["selectors"]["fields"]["f" + std::to_string(i)] = ".//a";
    }
    check_bad_field(a.post("/v1/scrape", many), "options.selectors.fields");
    Json long_name = job_body();
    long_name["options"]["selectors"]["fields"][std::string(101, 'n')] = ".//a";
    check_bad_field(a.post("/v1/scrape", long_name), "options.selectors.fields");
    Json long_xpath = job_body();
    long_xpath["options"]["selectors"]["item"] = "//a" + std::string(3000, ' ');
    check_bad_field(a.post("/v1/scrape", long_xpath), "options.selectors.item");
    // Deeply nested XPath: refused or accepted, never a crash.
    Json nested_xpath = job_body();
    nested_xpath["options"]["selectors"]["item"] = std::string(999, '(') + "1" + std::string(999, ')');
    const HttpReply nested = a.post("/v1/scrape", nested_xpath);
    CHECK((nested.status == 201 || nested.status == 422));
    // An unknown field whose name is not printable is named back as JSON.
    Json odd = job_body();
    odd["\u00e9\u6771\U0001F600"] = 1;
    check_bad_field(a.post("/v1/scrape", odd), "\u00e9\u6771\U0001F600");

    // Unicode that is valid is kept exactly.
    Json unicode = job_body("http://127.0.0.1:9000/caf\u00e9?q=\u6771\u4eac");
    unicode["options"]["selectors"]["fields"]["t\u00edtulo \U0001F600"] = ".//h2";
    const HttpReply created = a.post("/v1/scrape", unicode);
    INFO(created.body);
    REQUIRE(created.status == 201);
    const std::string id = created.json["data"]["job_id"].get<std::string>();
    const HttpReply got = a.get("/v1/scrape/jobs/" + id);
    REQUIRE(got.status == 200);
    CHECK(got.json["data"]["url"] == unicode["url"]);
    CHECK(got.json["data"]["options"]["selectors"]["fields"].contains("t\u00edtulo \U0001F600"));
  }
  SECTION("a body of the wrong type or content type") {
    for (const std::string& body : {std::string("null"), std::string("42"), std::string("\"x\""),
                                    std::string("true"), std::string("[]")}) {
      INFO(body);
      check_bad_field(a.post("/v1/scrape", body), "body");
    }
    const HttpReply form = a.request("POST", "/v1/scrape", "url=http://a.b/",
                                     {{"Content-Type", "application/x-www-form-urlencoded"}});
    check_error(form, 400, "INVALID_JSON");
  }
  check_alive(server);
}

TEST_CASE("hostile: chunked bodies are read to RFC 9112, trailers and all, header lines are checked",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  const std::string key = server.org_a().key;
  const int port = server.port();
  const std::string chunked = "Transfer-Encoding: chunked\r\n";
  // Sent on a connection of its own: 400 at once, and the connection closed.
  auto refused = [&](const std::string& headers, const std::string& body) {
    RawConnection c(port);
    c.send(request_head("POST", "/v1/scrape", key, headers) + body);
    const HttpReply r = c.read_reply(std::chrono::seconds(2));
    check_error(r, 400, "BAD_REQUEST");
    CHECK(c.wait_closed(std::chrono::seconds(2)));
    return r;
  };

  SECTION("trailer fields and chunk extensions are taken (the library refused trailers)") {
    for (const std::string body :
         {"2\r\n{}\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n", "2;a=b\r\n{}\r\n0 ; c\r\n\r\n",
          "1\r\n{\r\n1\r\n}\r\n0\r\n\r\n", "02\r\n{}\r\n0\r\n\r\n",
          "00000000000000000002\r\n{}\r\n0\r\n\r\n"}) {
      INFO(body);
      check_bad_field(raw(port, request_head("POST", "/v1/scrape", key, chunked) + body), "url");
    }
    // Two requests on one connection: the first one's trailers are not the second's head.
    RawConnection c(port);
    c.send(request_head("POST", "/v1/scrape", key, chunked) + "2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n" +
           request_head("GET", "/healthz", key));
    check_bad_field(c.read_reply(std::chrono::seconds(2)), "url");
    const HttpReply health = c.read_reply(std::chrono::seconds(2));
    CHECK(health.status == 200);
  }
  SECTION("framing against the RFC is refused at once, and the connection closed") {
    for (const std::string body :
         {"2\r\n{}XX0\r\n\r\n", "0x2\r\n{}\r\n0\r\n\r\n", "2 \r\n{}\r\n0\r\n\r\n",
          "-2\r\n{}\r\n0\r\n\r\n", "2\n{}\r\n0\r\n\r\n", "\r\n", "2\r\n{}\r\n0\r\nX\rY\r\n\r\n",
          "10000000000000000\r\n"}) {
      INFO(body);
      CHECK(refused(chunked, body).json["error"]["message"] ==
            "the request body's chunked framing is invalid");
    }
    CHECK(job_count(server) == 0);
  }
  SECTION("a header line folded, without a colon, with space before it, or a stray CR: 400") {
    for (const std::string headers :
         {"Content-Length : 2\r\n", "Transfer-Encoding : chunked\r\n", "X-No-Colon\r\n",
          "X-A: b\r\n  folded\r\n", "X-A: b\rc\r\n", "X-A: b\n", ": empty name\r\n",
          "X\tA: b\r\n"}) {
      INFO(headers);
      refused(headers, "{}");
    }
    CHECK(job_count(server) == 0);
  }
  SECTION("an empty Content-Length or Transfer-Encoding: 400, not a body read as the next "
          "request (the library drops such a field)") {
    const std::string smuggled = request_head("GET", "/v1/scrape/jobs?limit=1", key);
    for (const std::string headers :
         {"Content-Length: \r\n", "Content-Length:\r\n", "transfer-encoding: \t \r\n"}) {
      INFO(headers);
      CHECK(refused(headers, smuggled).json["error"]["message"].get<std::string>().find(
                "an empty Content-Length or Transfer-Encoding") != std::string::npos);
    }
    // Other fields may be empty.
    RawConnection ok(port);
    ok.send(request_head("GET", "/v1/scrape/jobs", key, "Referer:\r\nX-Empty: \r\n"));
    CHECK(ok.read_reply(std::chrono::seconds(2)).status == 200);
  }
  SECTION("a '%' in a field the server reads: 400 (the library decoded it: %32 was 2)") {
    for (const std::string headers :
         {"Content-Length: %32\r\n", "content-length: 2%00999\r\n",
          "Transfer-Encoding: %63hunked\r\n", "Connection: %6beep-alive\r\n"}) {
      INFO(headers);
      refused(headers, "{}");
    }
    CHECK(job_count(server) == 0);
    // A key with anything after it, escaped, is no key: refused before it is looked up.
    for (const std::string& header : {"X-API-Key: " + key + "%00garbage\r\n",
                                     "Authorization: Bearer " + key + "%00zzz\r\n",
                                     "X-API-Key: ak_%3" + key.substr(4) + "\r\n"}) {
      INFO(header);
      RawConnection c(port);
      c.send("GET /v1/scrape/jobs HTTP/1.1\r\nHost: t\r\n" + header + "\r\n");
      check_error(c.read_reply(std::chrono::seconds(2)), 400, "BAD_REQUEST");
    }
    // Elsewhere a '%' is only text.
    RawConnection ok(port);
    ok.send(request_head("GET", "/v1/scrape/jobs", key, "Referer: http://x/%41\r\n"));
    CHECK(ok.read_reply(std::chrono::seconds(2)).status == 200);
  }
  check_alive(server);
}

TEST_CASE("hostile: a Range header is ignored: every answer is whole JSON with its own status",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  const std::string key = server.org_a().key;
  const int port = server.port();
  ApiClient a = server.client_a();
  const std::string id = create_job(a);
  const HttpReply whole = a.get("/v1/scrape/jobs/" + id);
  REQUIRE(whole.status == 200);
  for (const std::string range :
       {"Range: bytes=0-10\r\n", "range: bytes=0-10,20-30\r\n", "RANGE: bytes=5000-6000\r\n",
        "Range: bytes=abc\r\n", "Range: bytes=0-1\r\nRange: bytes=3-4\r\n",
        "X-A: 1\r\nRange: bytes=-5\r\nX-B: 2\r\n"}) {
    INFO(range);
    // Two requests on one connection: the second is read whole after the first.
    RawConnection c(port);
    c.send(request_head("GET", "/v1/scrape/jobs/" + id, key, range) +
           request_head("GET", "/v1/scrape/jobs/job_000000000000000000000000", key, range));
    const HttpReply job = c.read_reply(std::chrono::seconds(2));
    CHECK(job.status == 200);
    CHECK(job.body == whole.body);
    CHECK(job.header("Content-Type") == std::optional<std::string>("application/json"));
    CHECK_FALSE(job.header("Content-Range"));
    check_error(c.read_reply(std::chrono::seconds(2)), 404, "JOB_NOT_FOUND");
  }
  // A HEAD does not offer ranges either.
  const HttpReply head = a.request("HEAD", "/v1/scrape/jobs/" + id);
  CHECK(head.status == 200);
  CHECK(head.header("Accept-Ranges") != std::optional<std::string>("bytes"));
  check_alive(server);
}

TEST_CASE("hostile: a multipart body is refused unread, and none of it is read as a request",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  const std::string first = "--xx\r\n\r\n";
  const std::string tail = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  RawConnection c(server.port());
  c.send("POST /v1/scrape HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         "Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: " +
         std::to_string(first.size() + tail.size()) + "\r\n\r\n" + first);
  // The rest in a segment of its own: the library read the first as a body
  // and the rest as the next request.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  c.send(tail);
  const HttpReply r = c.read_reply(std::chrono::seconds(2));
  check_error(r, 400, "INVALID_JSON");
  CHECK(r.json["error"]["message"] ==
        "the request body is not valid JSON: a multipart/form-data body is not read; send JSON");
  CHECK(c.wait_closed(std::chrono::seconds(2)));
  CHECK(job_count(server) == 0);
  check_alive(server);
}

TEST_CASE("hostile: a body whose framing is ambiguous is refused at once, absolute targets served",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  const std::string key = server.org_a().key;
  const int port = server.port();

  SECTION("refused, and the connection closed, before any body is read") {
    const std::vector<std::tuple<std::string, std::string, int, std::string>> cases = {
        {"Content-Length: 2\r\nContent-Length: 3\r\n", "{}x", 400, "BAD_REQUEST"},
        {"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n", 400,
         "BAD_REQUEST"},
        {"Transfer-Encoding: gzip\r\n", "", 501, "NOT_IMPLEMENTED"},
        {"Transfer-Encoding: chunked, gzip\r\n", "", 501, "NOT_IMPLEMENTED"},
        {"Transfer-Encoding: xyz\r\n", "", 501, "NOT_IMPLEMENTED"},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "", 501,
         "NOT_IMPLEMENTED"},
    };
    for (const auto& [headers, body, status, code] : cases) {
      INFO(headers);
      RawConnection c(port);
      c.send(request_head("POST", "/v1/scrape", key, headers) + body);
      // Well before the body read timeout: nothing is waited for.
      const HttpReply r = c.read_reply(std::chrono::seconds(2));
      check_error(r, status, code);
      CHECK(c.wait_closed(std::chrono::seconds(2)));
    }
    CHECK(job_count(server) == 0);
  }
  SECTION("a Content-Length that is not a number is refused on any method") {
    for (const std::string method : {"GET", "POST", "DELETE"}) {
      for (const std::string length : {"abc", "-1", "1.5", "0x10", "5 5"}) {
        INFO(method << " Content-Length: " << length);
        RawConnection c(port);
        c.send(request_head(method, method == "POST" ? "/v1/scrape" : "/v1/scrape/jobs", key,
                            "Content-Length: " + length + "\r\n"));
        const HttpReply r = c.read_reply(std::chrono::seconds(2));
        check_error(r, 400, "BAD_REQUEST");
        CHECK(r.json["error"]["message"] == "the Content-Length header is not a number");
        CHECK(c.wait_closed(std::chrono::seconds(2)));
      }
    }
    // A number too large for any integer is a number: the body is too large.
    RawConnection c(port);
    c.send(request_head("POST", "/v1/scrape", key,
                        "Content-Length: 99999999999999999999999\r\n"));
    check_error(c.read_reply(std::chrono::seconds(2)), 413, "PAYLOAD_TOO_LARGE");
    CHECK(c.wait_closed(std::chrono::seconds(2)));
    CHECK(job_count(server) == 0);
  }
  SECTION("an HTTP/1.1 request needs exactly one Host, HTTP/1.0 none") {
    const std::string auth = "X-API-Key: " + key + "\r\n";
    for (const std::string& hosts : {std::string(), std::string("Host: a\r\nHost: b\r\n")}) {
      INFO(hosts);
      const HttpReply r = raw(port, "GET /v1/scrape/jobs HTTP/1.1\r\n" + hosts + auth + "\r\n");
      check_error(r, 400, "BAD_REQUEST");
      CHECK(r.json["error"]["message"] == "an HTTP/1.1 request must have exactly one Host header");
    }
    const HttpReply old = raw(port, "GET /v1/scrape/jobs HTTP/1.0\r\n" + auth + "\r\n");
    INFO(old.body);
    CHECK(old.status == 200);
  }
  SECTION("the same Content-Length twice, and chunked in any case, are read as usual") {
    check_bad_field(raw(port, request_head("POST", "/v1/scrape", key,
                                           "Content-Length: 2\r\nContent-Length: 2\r\n") +
                                  "{}"),
                    "url");
    check_bad_field(raw(port, request_head("POST", "/v1/scrape", key,
                                           "Transfer-Encoding: Chunked\r\n") +
                                  "2\r\n{}\r\n0\r\n\r\n"),
                    "url");
  }
  SECTION("an encoded slash is not a path separator: no route has one") {
    ApiClient a = server.client_a();
    const std::string id = create_job(a);
    for (const std::string& target :
         {"/v1/scrape/jobs/" + id + "%2Fresults", "/v1/scrape/jobs/" + id + "%2fevents",
          std::string("/v1%2Fscrape/jobs")}) {
      INFO(target);
      check_error(raw(port, request_head("GET", target, key)), 404, "NOT_FOUND");
    }
    // Other escapes are decoded as before.
    const HttpReply escaped =
        raw(port, request_head("GET", "/v1/scrape/jobs/" + id + "/%72esults", key));
    CHECK(escaped.status == 200);
  }
  SECTION("an absolute-form target is the path it names") {
    const std::string authority = "127.0.0.1:" + std::to_string(port);
    const HttpReply health = raw(port, request_head("GET", "http://" + authority + "/healthz", key));
    INFO(health.body);
    CHECK(health.status == 200);
    CHECK(health.json["status"] == "ok");
    const HttpReply jobs =
        raw(port, request_head("GET", "HTTP://" + authority + "/v1/scrape/jobs?limit=1", key));
    INFO(jobs.body);
    CHECK(jobs.status == 200);
    CHECK(jobs.data()["limit"] == 1);
    check_error(raw(port, request_head("GET", "http://" + authority + "/nowhere", key)), 404,
                "NOT_FOUND");
    // A method the library does not route meets the route table all the same.
    check_error(raw(port, request_head("TRACE", "http://" + authority + "/healthz", key)), 405,
                "METHOD_NOT_ALLOWED");
  }
  check_alive(server);
}

TEST_CASE("hostile: create-job bodies at the edges of the contract's rules", "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const auto why = [](const HttpReply& r, const std::string& field) {
    return r.json["error"]["details"]["fields"].value(field, std::string());
  };

  SECTION("32 nested objects and arrays are allowed, whatever the innermost holds; 33 are not") {
    for (const std::string& inner : {std::string("1"), std::string("[]"), std::string("")}) {
      INFO("innermost: " << inner);
      // 32 in all: the innermost pair holds `inner` (or is itself the 32nd).
      const size_t pairs = inner == "[]" ? 31 : 32;
      const std::string ok = std::string(pairs, '[') + inner + std::string(pairs, ']');
      check_bad_field(a.post("/v1/scrape", ok), "body");  // parsed: just not an object
      const std::string deep = "[" + ok + "]";
      check_error(a.post("/v1/scrape", deep), 400, "INVALID_JSON");
    }
  }
  SECTION("a NUL in a selector is refused: libxml2 would compile the part before it") {
    for (const std::string selector : {"item", "next_page", "detail_link"}) {
      Json body = job_body();
      body["options"]["selectors"][selector] = std::string("//a\0 garbage !!!", 16);
      const HttpReply r = a.post("/v1/scrape", body.dump());
      check_bad_field(r, "options.selectors." + selector);
      CHECK(why(r, "options.selectors." + selector) == "must not contain a NUL character (\\u0000)");
    }
    Json body = job_body();
    body["options"]["selectors"]["fields"] = {{"t", std::string(".//h2\0 ~~", 9)}};
    check_bad_field(a.post("/v1/scrape", body.dump()), "options.selectors.fields.t");
  }
  SECTION("a key given twice in one object is named, at any depth") {
    const std::string url = "\"url\": \"" + k_listing + "\"";
    const std::string sel = R"("selectors": {"item": "//a"})";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"{" + url + ", " + url + R"(, "options": {)" + sel + "}}", "url"},
        {"{" + url + R"(, "options": {"timeout": 5, "timeout": 7, )" + sel + "}}",
         "options.timeout"},
        {"{" + url +
             R"(, "options": {"selectors": {"item": "//a", "fields": {"t": ".//h2", "t": ".//p"}}}})",
         "options.selectors.fields.t"},
    };
    for (const auto& [body, field] : cases) {
      INFO(body);
      const HttpReply r = a.post("/v1/scrape", body);
      check_bad_field(r, field);
      CHECK(why(r, field) == "is given more than once");
    }
    // A body that is not JSON is INVALID_JSON, whatever it repeats first.
    for (const std::string& bad : {"{" + url + ", " + url + ", ", "{" + url + ", " + url + "} x",
                                   "{" + url + ", " + url + R"(, "options": {"timeout": 1e400}})"}) {
      INFO(bad);
      check_error(a.post("/v1/scrape", bad), 400, "INVALID_JSON");
    }
    // The same key in two different objects is fine.
    const HttpReply r = a.post(
        "/v1/scrape", "{" + url + R"(, "options": {"selectors": {"item": "//a", "fields": )" +
                          R"({"item": ".//h2"}, "detail_fields": {"item": ".//p"}}}})");
    INFO(r.body);
    CHECK(r.status == 201);
    CHECK(job_count(server) == 1);
  }
  SECTION("keys given twice are all named and every other bad field beside them") {
    const std::string url = "\"url\": \"" + k_listing + "\"";
    const HttpReply r =
        a.post("/v1/scrape",
               "{" + url + ", " + url +
                   R"(, "options": {"timeout": 0, "depth": 1, "depth": 0, "bogus": 1, )" +
                   R"("selectors": {"item": "//a[", "fields": {"t": ".//h2", "t": ".//p"}}}})");
    check_bad_field(r, "url");
    CHECK(why(r, "url") == "is given more than once");
    CHECK(why(r, "options.depth") == "is given more than once");
    CHECK(why(r, "options.selectors.fields.t") == "is given more than once");
    CHECK(why(r, "options.timeout") == "must be an integer from 1 to 1800");
    CHECK(why(r, "options.bogus") == "unknown field");
    CHECK(why(r, "options.selectors.item").find("is not a valid XPath 1.0 expression") == 0);
    CHECK(r.json["error"]["details"]["fields"].size() == 6);
    CHECK(job_count(server) == 0);
  }
  SECTION("lengths count characters, not bytes") {
    const std::string e_acute = "\u00e9";  // 2 bytes in UTF-8
    std::string long_path;
    for (int i = 0; i < 1100; ++i) {
      long_path += e_acute;
    }
    // 1122 characters, 2222 bytes.
    Json url_ok = job_body("http://127.0.0.1:9000/" + long_path);
    const HttpReply u = a.post("/v1/scrape", url_ok);
    INFO(u.body);
    CHECK(u.status == 201);
    check_bad_field(a.post("/v1/scrape", job_body("http://127.0.0.1:9000/" + long_path + long_path)),
                    "url");

    Json names = job_body();
    std::string cjk;
    for (int i = 0; i < 20; ++i) {
      cjk += "\u4ef7\u683c";  // 40 characters, 120 bytes
    }
    std::string hundred;
    for (int i = 0; i < 100; ++i) {
      hundred += e_acute;
    }
    names["options"]["selectors"]["fields"][cjk] = ".//h2";
    names["options"]["selectors"]["fields"][hundred] = ".//p";
    names["options"]["selectors"]["item"] = "//article[@class='" + long_path + "']";
    const HttpReply n = a.post("/v1/scrape", names);
    INFO(n.body);
    CHECK(n.status == 201);

    Json too_long = job_body();
    too_long["options"]["selectors"]["fields"][hundred + e_acute] = ".//h2";
    check_bad_field(a.post("/v1/scrape", too_long), "options.selectors.fields");
  }
  SECTION("field names with control characters are refused as such") {
    for (const std::string& name :
         {std::string("t\0x", 3), std::string("a\tb"), std::string("line\n"), std::string("\x7f")}) {
      Json body = job_body();
      body["options"]["selectors"]["fields"][name] = ".//h2";
      const HttpReply r = a.post("/v1/scrape", body);
      check_bad_field(r, "options.selectors.fields");
      CHECK(why(r, "options.selectors.fields") ==
            "field names must not contain control characters");
    }
    CHECK(job_count(server) == 0);
  }
  SECTION("an item selector must select nodes, a link one nodes or a string; fields anything") {
    // A link that gives a number or a boolean would be fetched as "/2" or "/true".
    const std::string item = "must select nodes";
    const std::string link = "must select nodes or give a string (a URL)";
    struct Case {
      const char* selector;
      const char* expr;
      std::string must;
      const char* gives;
    };
    for (const Case& c : std::vector<Case>{{"item", "1+1", item, "a number"},
                                           {"item", "count(//article)", item, "a number"},
                                           {"item", "true()", item, "a boolean"},
                                           {"item", "string(//h2)", item, "a string"},
                                           {"next_page", "1+1", link, "a number"},
                                           {"next_page", "count(//article)", link, "a number"},
                                           {"next_page", "true()", link, "a boolean"},
                                           {"detail_link", "1+1", link, "a number"},
                                           {"detail_link", "not(//a)", link, "a boolean"}}) {
      Json body = job_body();
      body["options"]["selectors"][c.selector] = c.expr;
      const HttpReply r = a.post("/v1/scrape", body);
      const std::string field = std::string("options.selectors.") + c.selector;
      INFO(field << ": " << c.expr);
      check_bad_field(r, field);
      CHECK(why(r, field) == "is not a valid XPath 1.0 expression: " + c.must +
                                 "; this expression gives " + c.gives);
    }
    CHECK(job_count(server) == 0);
    Json strings = job_body();
    strings["options"]["selectors"]["item"] = "(//article)[1] | //section";
    strings["options"]["selectors"]["fields"]["t"] = "normalize-space(.//h2)";
    strings["options"]["selectors"]["fields"]["n"] = "count(.//img)";
    strings["options"]["selectors"]["next_page"] = "concat('?page=', 2)";
    strings["options"]["selectors"]["detail_link"] = "string(.//a/@href)";
    const HttpReply r = a.post("/v1/scrape", strings);
    INFO(r.body);
    CHECK(r.status == 201);
  }
  SECTION("a URL's host and port must be usable") {
    for (const char* url :
         {"http://[::1/", "http://[]/", "http://127.0.0.1:99999/a", "http://127.0.0.1:0/",
          "http://h:8x/", "http://h:-1/", "https://h:1234567/", "http://:80/", "http://h:/"}) {
      INFO(url);
      check_bad_field(a.post("/v1/scrape", job_body(url)), "url");
    }
    CHECK(job_count(server) == 0);
    for (const char* url : {"http://[::1]:8080/x", "http://[::1]/", "http://u:p@h:65535/",
                            "HTTPS://H.example:1/"}) {
      INFO(url);
      CHECK(a.post("/v1/scrape", job_body(url)).status == 201);
    }
  }
  check_alive(server);
}

TEST_CASE("hostile: absurd query parameters are VALIDATION_ERROR naming the parameter",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a);
  const std::string base = "/v1/scrape/jobs/" + id;

  const std::vector<std::string> bad_numbers = {
      "-1", "0x10", "abc", "1e3", "1.5", "+5", " 5", "5 ", "%00", "5%00", "99999999999999999999999",
      "-99999999999999999999999", "%E2%88%9E", "NaN", "1,000", "--1",
      // A raw "=" or ";" is part of the value (httplib kept the last piece: 5, 3).
      "500=5", "abc=5", "7;offset=3", "-1=0"};
  struct Param {
    std::string path;
    std::string name;
  };
  const std::vector<Param> params = {{"/v1/scrape/jobs", "limit"},
                                     {"/v1/scrape/jobs", "offset"},
                                     {base + "/results", "limit"},
                                     {base + "/results", "offset"},
                                     {base + "/events", "limit"},
                                     {base + "/events", "after"}};
  for (const auto& p : params) {
    for (const std::string& value : bad_numbers) {
      INFO(p.path << "?" << p.name << "=" << value);
      check_bad_field(a.get(p.path + "?" + p.name + "=" + value), p.name);
    }
    INFO(p.path << " " << p.name << " repeated");
    check_bad_field(a.get(p.path + "?" + p.name + "=5&" + p.name + "=7"), p.name);
    // The same value twice too, however it is written.
    for (const std::string& again : {"=5&" + p.name + "=5", "=5&x=1&" + p.name + "=5",
                                     "=5&" + p.name + "=%35", "=5&%" + hex(p.name) + "=5",
                                     "=5&" + p.name + "=", "=&" + p.name + "="}) {
      INFO(p.name + again);
      check_bad_field(a.get(p.path + "?" + p.name + again), p.name);
    }
  }
  // Out of range, each limit.
  check_bad_field(a.get("/v1/scrape/jobs?limit=0"), "limit");
  check_bad_field(a.get("/v1/scrape/jobs?limit=101"), "limit");
  check_bad_field(a.get("/v1/scrape/jobs?offset=1000000001"), "offset");
  check_bad_field(a.get(base + "/results?limit=1001"), "limit");
  check_bad_field(a.get(base + "/events?limit=0"), "limit");

  // Timestamps and statuses.
  for (const std::string& value :
       {std::string("99999-01-01T00:00:00Z"), std::string("2026-13-01"), std::string("2026-02-30"),
        std::string("9999999999999999999999"), std::string("2026-01-12T25:00:00Z"),
        std::string("2026-01-12T07:19:20.1234567890Z"), std::string("-2026-01-12"),
        std::string("2026-01-12T07:19:20+99:00"), std::string(5000, '9'), std::string("%FF%FE")}) {
    INFO(value);
    check_bad_field(a.get("/v1/scrape/jobs?created_after=" + value), "created_after");
    check_bad_field(a.get("/v1/scrape/jobs?created_before=" + value), "created_before");
  }
  for (const std::string& status : {std::string("PENDING"), std::string("pending%00"),
                                    std::string("pending,failed"), std::string("%27%20OR%201=1"),
                                    std::string("bogus=completed")}) {
    INFO(status);
    check_bad_field(a.get("/v1/scrape/jobs?status=" + status), "status");
  }
  check_bad_field(a.get("/v1/scrape/jobs?status=pending&status=failed"), "status");
  // Several bad at once are all named.
  const HttpReply several = a.get("/v1/scrape/jobs?limit=x&offset=-1&status=no&created_after=no");
  check_error(several, 422, "VALIDATION_ERROR");
  CHECK(several.json["error"]["details"]["fields"].size() == 4);

  // The extremes that are valid are served.
  const HttpReply last_seq = a.get(base + "/events?after=9223372036854775807&limit=1000");
  INFO(last_seq.body);
  REQUIRE(last_seq.status == 200);
  CHECK(last_seq.json["data"]["events"].empty());
  const HttpReply far = a.get("/v1/scrape/jobs?offset=1000000000&limit=100");
  REQUIRE(far.status == 200);
  CHECK(far.json["data"]["jobs"].empty());
  CHECK(far.json["data"]["total"] == 1);
  // An unencoded '+' (sent raw: the client library would write %2B) arrives
  // as a space and is still understood: before an offset, and between a date
  // and a time. strftime's "+0000" is read as well. The job was created at
  // 07:00:00 UTC.
  for (const char* query :
       {"created_after=2026-01-12T06:00:00+00:00", "created_after=2026-01-12T06:00:00+0000",
        "created_after=2026-01-12T08:00:00%2B0100", "created_after=2026-01-12+07:00",
        "created_before=2026-01-12T07:00:00.000001+00:00"}) {
    INFO(query);
    const HttpReply also = raw(server.port(), request_head("GET", std::string("/v1/scrape/jobs?") +
                                                                      query,
                                                           server.org_a().key));
    INFO(also.body);
    REQUIRE(also.status == 200);
    CHECK(also.json["data"]["total"] == 1);
  }
  const HttpReply before = a.get("/v1/scrape/jobs?created_before=2026-01-12%2007:00");
  REQUIRE(before.status == 200);
  CHECK(before.json["data"]["total"] == 0);
  // An empty value is the default; unknown parameters are ignored.
  const HttpReply empty = a.get("/v1/scrape/jobs?limit=&offset=&status=&foo=bar&&&=&x");
  REQUIRE(empty.status == 200);
  CHECK(empty.json["data"]["limit"] == 50);
  // Thousands of parameters.
  std::string lots = "/v1/scrape/jobs?";
  for (int i = 0; i < 600; ++i) {
    lots += "p" + std::to_string(i) + "=" + std::to_string(i) + "&";
  }
  CHECK(a.get(lots).status == 200);
  check_alive(server);
}

TEST_CASE("hostile: job ids of every shape are 404, never a match or a crash",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  ApiClient a = server.client_a();
  const std::string id = create_job(a);
  const std::string key = server.org_a().key;
  const int port = server.port();

  const std::vector<std::string> ids = {
      "job_0123456789abcdef01234567",   // well formed, unknown
      id.substr(0, id.size() - 1),      // one short
      id + "0",                         // one long
      id + "%00",                       // NUL appended
      "job_" + std::string(24, 'g'),    // not hex
      std::string(7000, 'a'),           // very long
      "..",
      "%2e%2e",
      "%2E%2E%2F%2E%2E%2Fhealthz",
      ".%2f..%2fhealthz",
      "%",
      "%zz",
      "%ff%fe",
      "j%C3%B6b_0123456789abcdef01234567",  // unicode
      "\xe6\x9d\xb1\xe4\xba\xac",            // raw UTF-8 bytes
      "\xff\xfe",                            // raw invalid UTF-8
      "%27%20OR%20%271%27=%271",
      "job_0123456789abcdef01234567%20",
      "*",
  };
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", ""}, {"GET", "/progress"}, {"GET", "/results"},
      {"GET", "/events"}, {"POST", "/cancel"}, {"DELETE", ""}};
  for (const std::string& bad : ids) {
    for (const auto& [method, suffix] : routes) {
      const std::string target = "/v1/scrape/jobs/" + bad + suffix;
      INFO(method << " " << target.substr(0, 120));
      const HttpReply r = raw(port, request_head(method, target, key, "Content-Length: 0\r\n"));
      REQUIRE(r.status == 404);
      CHECK(r.json["success"] == false);
      const std::string code = r.json["error"]["code"].get<std::string>();
      CHECK((code == "JOB_NOT_FOUND" || code == "NOT_FOUND"));
    }
  }
  // Empty ids and empty segments: no such route.
  for (const std::string& target :
       {std::string("/v1/scrape/jobs/"), std::string("/v1/scrape/jobs//progress"),
        std::string("/v1/scrape/jobs//"), std::string("/v1/scrape/jobs/" + id + "/"),
        std::string("//v1/scrape/jobs/" + id), std::string("/v1/scrape/jobs/" + id + "/progress/")}) {
    INFO(target);
    check_error(raw(port, request_head("GET", target, key)), 404, "NOT_FOUND");
  }
  // A traversal to another route is not followed.
  check_error(raw(port, request_head("GET", "/v1/scrape/jobs/../../../healthz", key)), 404,
              "NOT_FOUND");
  // A percent-encoded form of the real id is the same resource.
  std::string encoded;
  for (const char c : id) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
    encoded += buf;
  }
  const HttpReply same = raw(port, request_head("GET", "/v1/scrape/jobs/" + encoded, key));
  REQUIRE(same.status == 200);
  CHECK(same.json["data"]["job_id"] == id);
  // Another organization still gets 404 through every spelling.
  check_error(raw(port, request_head("GET", "/v1/scrape/jobs/" + encoded, server.org_b().key)), 404,
              "JOB_NOT_FOUND");
  // The job is untouched.
  CHECK(a.get("/v1/scrape/jobs/" + id).json["data"]["status"] == "pending");
  check_alive(server);
}

TEST_CASE("hostile: 100 idle sockets do not starve a normal client", "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.threads = 8;  // far fewer threads than idle sockets
  TestServer server(clock, config);
  std::vector<RawConnection> idle;
  for (int i = 0; i < 100; ++i) {
    idle.emplace_back(server.port());
  }
  // Half of them have started a request and stalled.
  for (size_t i = 0; i < idle.size(); i += 2) {
    idle[i].send("GET /v1/scrape/jobs HTTP/1.1\r\nHost: x\r\nX-API");
  }
  ApiClient a = server.client_a();
  for (int round = 0; round < 3; ++round) {
    const HttpReply created = a.post("/v1/scrape", job_body());
    INFO(created.body << created.transport_error);
    REQUIRE(created.status == 201);
    const std::string id = created.json["data"]["job_id"].get<std::string>();
    const HttpReply got = a.get("/v1/scrape/jobs/" + id + "/progress");
    REQUIRE(got.status == 200);
    CHECK(got.json["data"]["job_id"] == id);
    CHECK(got.json["data"]["status"] == "pending");
  }
  // Fresh connections too, while the idle ones are still open.
  for (int i = 0; i < 5; ++i) {
    ApiClient fresh = server.client_a();
    const HttpReply list = fresh.get("/v1/scrape/jobs");
    REQUIRE(list.status == 200);
    CHECK(list.json["data"]["total"] == 3);
  }
}

TEST_CASE("hostile: with every thread held by an idle keep-alive connection, a waiting one is "
          "served at once: the idle ones are closed",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.threads = 2;
  config.max_threads = 2;
  config.keep_alive_timeout_s = 30;  // they would hold the threads for 30 s
  TestServer server(clock, config);
  const std::string health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<RawConnection> idle;
  for (int i = 0; i < 2; ++i) {
    idle.emplace_back(server.port());
    REQUIRE(idle.back().send(health));
    const HttpReply first = idle.back().read_reply();
    REQUIRE(first.status == 200);
    CHECK_FALSE(first.header("Connection").has_value());
  }
  RawConnection waiting(server.port());
  REQUIRE(waiting.send(health));
  // Within 10 s: well before the idle ones' 30 s.
  const HttpReply served = waiting.read_reply(seconds(10));
  INFO(served.transport_error);
  CHECK(served.status == 200);
  for (RawConnection& c : idle) {
    CHECK(c.wait_closed(seconds(5)));
  }
}

TEST_CASE("hostile: with every thread held by a client that sends its head or body slowly, or "
          "nothing, a waiting one is served within seconds",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.threads = 2;
  config.max_threads = 2;
  TestServer server(clock, config);
  const std::string health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string body_head = request_head("POST", "/v1/scrape", server.org_a().key,
                                             "Content-Length: 100\r\n");
  for (const std::string& sent : {std::string("GET /healthz HTTP/1.1\r\nHo"), std::string(),
                                  body_head}) {
    INFO("the others sent: " << sent);
    std::vector<RawConnection> slow;
    for (int i = 0; i < 2; ++i) {
      slow.emplace_back(server.port());
      REQUIRE(slow.back().send(sent));
    }
    std::this_thread::sleep_for(milliseconds(300));  // each has a thread
    RawConnection waiting(server.port());
    REQUIRE(waiting.send(health));
    // A byte a second from each slow one meanwhile: within every timeout
    // (30 s for a head, 5 s between its bytes) but the grace of 2 s.
    HttpReply served;
    for (int i = 0; i < 10 && served.status == 0; ++i) {
      for (RawConnection& c : slow) {
        c.send(sent.empty() ? "" : "s");
      }
      served = waiting.read_reply(seconds(1));
    }
    INFO(served.transport_error);
    CHECK(served.status == 200);  // within 10 s, well before the heads' (bodies') 30 s
    if (sent == body_head) {
      const HttpReply cut = slow.front().read_reply(seconds(10));
      check_error(cut, 408, "REQUEST_TIMEOUT");
      CHECK(cut.json["error"]["message"] ==
            "the request body did not arrive within 5 seconds, while other connections waited "
            "for the server");
    }
  }
}

TEST_CASE(
    "hostile: while connections wait for a thread, a keep-alive client's next request, "
    "sent before the server looks for it, is answered, not closed as idle",
    "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.threads = 1;
  config.max_threads = 1;
  TestServer server(clock, config);
  auto job = server.store().create_job(server.org_a().org_id, "http://127.0.0.1:9/t", {}, k_t0);
  REQUIRE(job.ok());
  {
    // An answer of 8 MB, still being sent while its client reads nothing.
    SQLite::Database db(server.db_path(), SQLite::OPEN_READWRITE);
    db.exec("UPDATE jobs SET url = 'http://127.0.0.1:9/' || hex(zeroblob(4000000))");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int small = 65536;  // a window that the answer does not fit in
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  std::string received;
  const auto receive = [&] {
    pollfd p{fd, POLLIN, 0};
    char buffer[65536];
    const ssize_t n = ::poll(&p, 1, 10000) == 1 ? ::recv(fd, buffer, sizeof buffer, 0) : -1;
    received.append(buffer, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return n > 0;
  };
  const std::string head =
      request_head("GET", "/v1/scrape/jobs/" + job->job_id, server.org_a().key);
  REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  while (received.find("\r\n\r\n") == std::string::npos && receive()) {
  }
  REQUIRE(received.rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(received.find("Connection: close") == std::string::npos);  // kept alive
  // Then a connection waits for the one thread, and the next request is
  // sent while the answer is still on its way.
  RawConnection waiting(server.port());
  REQUIRE(waiting.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(300));  // accepted, queued for a thread
  const std::string health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, health.data(), health.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(health.size()));
  while (receive()) {
  }
  ::close(fd);
  // Both answered; the second closes the connection for the one waiting.
  std::size_t answers = 0;
  for (std::size_t at = received.find("HTTP/1.1 200 "); at != std::string::npos;
       at = received.find("HTTP/1.1 200 ", at + 1)) {
    ++answers;
  }
  CHECK(answers == 2);
  CHECK(received.find("Connection: close") != std::string::npos);
  CHECK(waiting.read_reply(seconds(10)).status == 200);
}

TEST_CASE("hostile: an HTTP/1.0 answer says the connection closes, and it does", "[http][hostile]") {
  FakeClock clock(k_t0);
  TestServer server(clock);
  for (const std::string extra : {"", "Connection: keep-alive\r\n"}) {
    INFO(extra);
    RawConnection c(server.port());
    REQUIRE(c.send("GET /healthz HTTP/1.0\r\n" + extra + "\r\n"));
    const HttpReply r = c.read_reply();
    REQUIRE(r.status == 200);
    CHECK(r.header("Connection") == std::optional<std::string>("close"));
    CHECK_FALSE(r.header("Keep-Alive").has_value());
    CHECK(c.wait_closed(seconds(10)));
  }
  // HTTP/1.0 has no transfer codings (RFC 9112 6.1): a chunked body is 400.
  RawConnection c(server.port());
  REQUIRE(c.send("POST /v1/scrape HTTP/1.0\r\nX-API-Key: " + server.org_a().key +
                 "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
  const HttpReply r = c.read_reply(seconds(2));
  check_error(r, 400, "BAD_REQUEST");
  CHECK(r.json["error"]["message"] == "an HTTP/1.0 request cannot have a Transfer-Encoding");
  CHECK(c.wait_closed(seconds(10)));
}

TEST_CASE("hostile: Connection: close is read in any case and in a list", "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.keep_alive_timeout_s = 60;  // a connection kept alive would outlast every wait below
  TestServer server(clock, config);
  for (const std::string value : {"close", "Close", "CLOSE", "keep-alive, close", "TE,close "}) {
    INFO(value);
    RawConnection c(server.port());
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: " + value + "\r\n\r\n"));
    const HttpReply r = c.read_reply();
    REQUIRE(r.status == 200);
    CHECK(r.header("Connection") == std::optional<std::string>("close"));
    CHECK_FALSE(r.header("Keep-Alive").has_value());
    CHECK(c.wait_closed(seconds(10)));  // closed after its answer, not kept for 60 s
  }
  // Said once, also when the library says it too (an exact "close", a 404).
  for (const std::string target : {"/healthz", "/v1/nothing"}) {
    INFO(target);
    RawConnection c(server.port());
    REQUIRE(c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const HttpReply r = c.read_reply();
    CHECK(std::count_if(r.headers.begin(), r.headers.end(), [](const auto& header) {
            return scrapekeep::core::equals_ascii_lower(header.first, "connection");
          }) == 1);
  }
  RawConnection kept(server.port());
  REQUIRE(kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n"));
  CHECK(kept.read_reply().header("Keep-Alive").has_value());
}

TEST_CASE("hostile: slow clients lose their connection, and nothing is half-created",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  scrapekeep::http::ServerConfig config;
  config.read_timeout_s = 1;
  config.keep_alive_timeout_s = 1;
  config.body_timeout_s = 1;
  TestServer server(clock, config);
  const std::string key = server.org_a().key;
  const int port = server.port();
  const std::string body = job_body().dump();

  SECTION("a connection that never sends is closed") {
    RawConnection c(port);
    CHECK(c.wait_closed(seconds(30)));
  }
  SECTION("a request line that stops half way is closed") {
    RawConnection c(port);
    c.send("GET /v1/scrape/jo");
    CHECK(c.wait_closed(seconds(30)));
  }
  SECTION("a body shorter than its Content-Length") {
    RawConnection c(port);
    c.send(request_head("POST", "/v1/scrape", key,
                        "Content-Length: " + std::to_string(body.size() + 10) + "\r\n") +
           body);
    check_error(c.read_reply(seconds(30)), 408, "REQUEST_TIMEOUT");
    CHECK(c.wait_closed(seconds(30)));
  }
  SECTION("headers that stop half way are 408") {
    RawConnection c(port);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b");
    check_error(c.read_reply(seconds(30)), 408, "REQUEST_TIMEOUT");
    CHECK(c.wait_closed(seconds(30)));
  }
  SECTION("a body trickled in past the body timeout is 408") {
    RawConnection c(port);
    c.send(request_head("POST", "/v1/scrape", key,
                        "Content-Length: " + std::to_string(body.size()) + "\r\n"));
    // One byte every 200 ms: each read is well within the read timeout.
    HttpReply r;
    for (size_t i = 0; i < body.size(); ++i) {
      if (!c.send(body.substr(i, 1))) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(200));
      if (i > 15) {
        r = c.read_reply(milliseconds(50));
        if (r.status != 0) {
          break;
        }
      }
    }
    if (r.status == 0) {
      r = c.read_reply(seconds(30));
    }
    check_error(r, 408, "REQUEST_TIMEOUT");
    CHECK(c.wait_closed(seconds(30)));
  }
  SECTION("chunk-size lines and trailers trickled in past the body timeout are 408") {
    for (const std::string& first : {std::string("2\r\n{}\r\n0\r\n"), std::string("")}) {
      INFO(first);
      RawConnection c(port);
      c.send(request_head("POST", "/v1/scrape", key, "Transfer-Encoding: chunked\r\n") + first);
      // A trailer (or a chunk-size line) one byte every 200 ms: no data, and
      // each read well within the read timeout. They were let in for good.
      const std::string trickled = first.empty() ? "0000000000000000000000000000000"
                                                 : "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa";
      HttpReply r;
      for (size_t i = 0; i < trickled.size() && r.status == 0; ++i) {
        if (!c.send(trickled.substr(i, 1))) {
          break;
        }
        std::this_thread::sleep_for(milliseconds(200));
        r = c.read_reply(milliseconds(50));
      }
      if (r.status == 0) {
        r = c.read_reply(seconds(30));
      }
      check_error(r, 408, "REQUEST_TIMEOUT");
      // Said as it is: the body's time ran out, the bytes never stopped.
      CHECK(r.json["error"]["message"] == "the request body did not arrive within 1 seconds");
      CHECK(c.wait_closed(seconds(30)));
    }
  }
  // None of that created a job, and the server serves on.
  CHECK(job_count(server) == 0);
  check_alive(server);
}

TEST_CASE("hostile: stopping the server does not wait for clients that send slowly",
          "[http][hostile]") {
  FakeClock clock(k_t0);
  std::atomic<bool> done{false};
  std::thread trickler;
  const auto start = std::chrono::steady_clock::now();
  {
    TestServer server(clock);
    const int port = server.port();
    std::atomic<bool> sending{false};
    // A request head, a byte every 200 ms: it would take 30 s to be refused.
    trickler = std::thread([&done, &sending, port] {
      RawConnection c(port);
      const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " +
                               std::string(1000, 's');
      for (std::size_t i = 0; i < head.size() && !done; ++i) {
        if (!c.send(head.substr(i, 1))) {
          break;
        }
        sending = true;
        std::this_thread::sleep_for(milliseconds(200));
      }
    });
    while (!sending) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    std::this_thread::sleep_for(milliseconds(500));
  }  // the server stops here
  const auto took = std::chrono::steady_clock::now() - start;
  done = true;
  trickler.join();
  // The head timeout is 30 s; stopping waits at most a quarter second per
  // connection thread, plus the rest of the shutdown.
  CHECK(took < seconds(10));
}
