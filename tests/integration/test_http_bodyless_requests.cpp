// Requests that carry no body and say nothing about one (no Content-Length,
// no Transfer-Encoding), as `curl -X POST URL` sends them: the server must
// take the body as empty, not wait for the client to close the connection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "support/api_server.hpp"
#include "support/fake_clock.hpp"

namespace {

using scrapekeep::testing::FakeClock;
using scrapekeep::testing::TestServer;

// Sends `request` verbatim and returns everything read until the server has
// sent one whole response (by Content-Length) or 8 s passed.
std::string raw_exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{8, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string reply;
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      break;
    }
    reply.append(buffer, static_cast<size_t>(n));
    const size_t head_end = reply.find("\r\n\r\n");
    const size_t length_at = reply.find("Content-Length: ");
    if (head_end != std::string::npos && length_at != std::string::npos && length_at < head_end) {
      const size_t length = std::stoul(reply.substr(length_at + 16));
      if (reply.size() >= head_end + 4 + length) {
        break;
      }
    }
  }
  close(fd);
  return reply;
}

std::string status_line(const std::string& reply) { return reply.substr(0, reply.find("\r\n")); }

} // namespace

TEST_CASE("a POST without Content-Length is a bodyless request, answered at once", "[http]") {
  FakeClock clock(1'768'201'200'000'000);
  TestServer server(clock);
  auto job = server.store().create_job(server.org_a().org_id, "http://127.0.0.1:9/listings",
                                       scrapekeep::core::JobOptions{}, clock.now());
  REQUIRE(job.ok());
  const std::string cancel = "POST /v1/scrape/jobs/" + job->job_id +
                             "/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " +
                             server.org_a().key + "\r\nConnection: close\r\n\r\n";
  const std::string reply = raw_exchange(server.port(), cancel);
  INFO(reply);
  CHECK(status_line(reply) == "HTTP/1.1 200 OK");
  CHECK(reply.find("\"status\":\"cancelled\"") != std::string::npos);

  SECTION("and a create without a body is invalid JSON, not a read failure") {
    const std::string create = "POST /v1/scrape HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " +
                               server.org_a().key + "\r\nConnection: close\r\n\r\n";
    const std::string created = raw_exchange(server.port(), create);
    INFO(created);
    CHECK(status_line(created) == "HTTP/1.1 400 Bad Request");
    CHECK(created.find("\"code\":\"INVALID_JSON\"") != std::string::npos);
  }
}
