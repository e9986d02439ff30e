// libFuzzer target for net::SocketStream, which reads every message head
// (and chunked body) before cpp-httplib does, for serve's requests and the
// fetcher's responses alike, and rewrites it in its buffer: bare LF line
// ends made CRLF (a site's), interim heads, Range lines and HTTP/1.0's
// Expect lines taken out, Expect values lowercased (a client's). The first
// byte picks the side and whether a chunked body follows the head; the rest
// arrives over a socket pair, then the sending side closes. Built and run by
// `tools/fuzz SECONDS head`; not part of the CMake build.

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "scrapekeep/net/socket_stream.hpp"

namespace {

using namespace scrapekeep;

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

net::HeadLimits limits_of(bool server) {
  net::HeadLimits limits;
  limits.max_start_line = 512;
  limits.max_header_line = 1024;
  limits.max_head_bytes = 8192;
  limits.head_timeout = std::chrono::milliseconds(200);
  if (server) {
    limits.bare_lf_start_line_ends_head = true;
    limits.strict_field_lines = true;
    limits.drop_range = true;
  } else {
    limits.bare_lf_lines = true;
  }
  return limits;
}

// What a server hands the library: no Range line, an Expect: 100-continue
// only in lowercase, and none in an HTTP/1.0 request.
void check_server_head(std::string_view head) {
  const std::size_t first_end = head.find("\r\n");
  const std::string_view start = head.substr(0, first_end);
  const std::string trimmed(start.substr(0, start.find_last_not_of(" \t") + 1));
  const bool http_1_0 = trimmed.size() > 8 && trimmed.compare(trimmed.size() - 8, 8, "HTTP/1.0") == 0 &&
                        (trimmed[trimmed.size() - 9] == ' ' || trimmed[trimmed.size() - 9] == '\t');
  std::size_t at = first_end + 2;
  while (at < head.size()) {
    const std::size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos || end == at) {
      break;
    }
    const std::string line = lower(head.substr(at, end - at));
    check(line.rfind("range:", 0) != 0);
    const std::size_t from = line.find_first_not_of(" \t", 7);
    if (line.rfind("expect:", 0) == 0 && from != std::string::npos) {
      const std::string bare = line.substr(from, line.find_last_not_of(" \t") + 1 - from);
      if (bare == "100-continue") {
        check(!http_1_0);
        const std::string_view original = head.substr(at, end - at);
        check(original.find("100-continue") != std::string_view::npos);
      }
    }
    at = end + 2;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const bool server = (data[0] & 1) != 0;
  const bool chunked = (data[0] & 2) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  int fds[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);  // no descriptor left behind
  // The whole input fits the socket's buffer (at most 64 KiB here).
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fds[1], bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fds[1], SHUT_WR);
  {
    net::SocketStream stream(fds[0], nullptr, 50, 50);
    const net::HeadResult result = stream.read_head(limits_of(server), 50, {});
    if (result == net::HeadResult::ready) {
      // The head a byte at a time, as the library reads its lines; then the
      // body, framed anew when chunked.
      std::string head;
      char c = 0;
      while (head.size() < 16384 && stream.read(&c, 1) == 1) {
        head += c;
        if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) {
          break;
        }
      }
      if (server && head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0 &&
          head.find('\n') == head.find("\r\n") + 1) {
        check_server_head(std::string_view(head).substr(0, head.size() - 2));
      }
      if (chunked) {
        stream.body_is_chunked(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
      }
      char buffer[4096];
      std::size_t total = head.size();
      for (;;) {
        const ssize_t n = stream.read(buffer, sizeof buffer);
        if (n <= 0) {
          break;
        }
        total += static_cast<std::size_t>(n);
        check(total <= 2 * bytes.size() + 64 * 1024);  // bare LFs made CRLF, chunks framed anew
      }
    }
  }
  ::close(fds[0]);  // the stream's owner closes it, as the library does
  ::close(fds[1]);
  return 0;
}
