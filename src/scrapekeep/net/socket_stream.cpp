#include "scrapekeep/net/socket_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <fcntl.h>

#include "scrapekeep/core/text.hpp"

namespace scrapekeep::net {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t k_read_chunk = 4096;
// Larger writes go out as they come; smaller ones wait for flush().
constexpr std::size_t k_write_buffer = 16384;
// close_gracefully(): what the peer still sends is read and dropped, up to
// this much and this long in all.
constexpr std::size_t k_linger_bytes = 4 << 20;
constexpr int k_linger_ms = 1000;
// An idle wait for a head rechecks its keep_waiting() this often.
constexpr int k_idle_slice_ms = 250;
// Lines the library reads after a head (chunk sizes, trailers): one at most
// this long, and this many bytes of them one after another (trailers).
constexpr std::size_t k_max_line = 8192;
constexpr std::size_t k_max_lines_total = 1 << 20;

int ms_until(SteadyClock::time_point t) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - SteadyClock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, INT_MAX));
}

void address_of(int (*get)(int, sockaddr*, socklen_t*), socket_t sock, std::string& ip,
                int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ip.clear();
  port = 0;
  if (get(sock, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return;
  }
  char text[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  }
  ip = text;
}

// Whether `line` is the status line of an interim response (1xx but 101
// Switching Protocols: 100 Continue, 103 Early Hints...), which the final
// response follows. The library only expects a bare 100, so these heads are
// taken out before it reads.
bool is_interim_line(const char* line, std::size_t size) {
  return size >= 13 && std::memcmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' && line[9] == '1' &&
         std::isdigit(static_cast<unsigned char>(line[10])) != 0 &&
         std::isdigit(static_cast<unsigned char>(line[11])) != 0 &&
         std::memcmp(line + 9, "101", 3) != 0;
}

// RFC 9110 5.6.2's tchar: what a field name is made of.
bool is_tchar(unsigned char c) {
  return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// The fields a server reads for framing and for the caller's key: cpp-httplib
// 0.11 percent-decodes every header value, so "Content-Length: %32" was read
// as 2, "Transfer-Encoding: %63hunked" as chunked, and a key followed by
// "%00..." as the key alone. A '%' cannot be in any of their valid values.
bool is_decoded_field(std::string_view name) {
  for (const std::string_view field :
       {"content-length", "transfer-encoding", "authorization", "x-api-key", "connection",
        "expect"}) {
    if (core::equals_ascii_lower(name, field)) {
      return true;
    }
  }
  return false;
}

// Whether `name` is Content-Length or Transfer-Encoding: cpp-httplib 0.11
// drops such a field with an empty value, and the body it frames would be
// read as the next request.
bool is_framing_field(std::string_view name) {
  return core::equals_ascii_lower(name, "content-length") ||
         core::equals_ascii_lower(name, "transfer-encoding");
}

// Whether a header line (`size` bytes with its line end) is one that a
// strict server takes: "name: value" CRLF, the name all tchar and right
// before the colon, no CR or NUL but the last CR, not folded, no '%' in a
// field is_decoded_field() names, and no empty framing field.
bool is_strict_field_line(const char* line, std::size_t size) {
  if (size < 2 || line[size - 2] != '\r') {
    return false;
  }
  const char* colon = static_cast<const char*>(std::memchr(line, ':', size - 2));
  if (colon == nullptr || colon == line) {
    return false;
  }
  for (const char* c = line; c < colon; ++c) {
    if (*c == '\0' || !is_tchar(static_cast<unsigned char>(*c))) {
      return false;  // whitespace before the colon, a fold, a control byte
    }
  }
  bool empty = true;
  for (const char* c = colon; c < line + size - 2; ++c) {
    if (*c == '\r' || *c == '\0') {
      return false;
    }
    empty = empty && (c == colon || *c == ' ' || *c == '\t');
  }
  if (empty && is_framing_field(std::string_view(line, static_cast<std::size_t>(colon - line)))) {
    return false;
  }
  return std::memchr(colon, '%', static_cast<std::size_t>(line + size - colon)) == nullptr ||
         !is_decoded_field(std::string_view(line, static_cast<std::size_t>(colon - line)));
}

// Whether a header line (with its line end) is a Range field.
bool is_range_line(const char* line, std::size_t size) {
  constexpr std::string_view k_name = "range:";
  if (size < k_name.size()) {
    return false;
  }
  for (std::size_t i = 0; i < k_name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != k_name[i]) {
      return false;
    }
  }
  return true;
}

// An Expect line (with its line end) whose value is 100-continue in any case
// (RFC 9110 10.1.1: case-insensitive). The library answers only the exact
// lowercase one, so the value is written lowercase in place; the line is to
// be taken out of an HTTP/1.0 request (true), whose expectation a server must
// ignore and which the library would answer with a 100 all the same.
bool take_expect_line(char* line, std::size_t size, bool http_1_0) {
  const std::string_view text(line, size);
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || !core::equals_ascii_lower(text.substr(0, colon), "expect")) {
    return false;
  }
  const std::size_t from = text.find_first_not_of(" \t", colon + 1);
  const std::size_t to = text.find_last_not_of(" \t\r\n");
  if (from == std::string_view::npos || to < from ||
      !core::equals_ascii_lower(text.substr(from, to + 1 - from), "100-continue")) {
    return false;
  }
  if (http_1_0) {
    return true;
  }
  for (std::size_t i = from; i <= to; ++i) {
    line[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
  }
  return false;
}

// Whether a request line (with its line end) is HTTP/1.0's as the library
// reads it: it takes the last of the words split at spaces, each trimmed of
// spaces and tabs, so "HTTP/1.0 " and " \tHTTP/1.0" are HTTP/1.0 too.
bool says_http_1_0(std::string_view line) {
  constexpr std::string_view k_version = "HTTP/1.0";
  if (line.size() >= 2 && line.substr(line.size() - 2) == "\r\n") {
    line.remove_suffix(2);
  }
  const std::size_t last = line.find_last_not_of(" \t");
  if (last == std::string_view::npos || last < k_version.size()) {
    return false;
  }
  const std::size_t from = last + 1 - k_version.size();
  return line.substr(from, k_version.size()) == k_version &&
         (line[from - 1] == ' ' || line[from - 1] == '\t');
}

// A chunk-size line without its CRLF (RFC 9112 7.1): hex digits, then
// nothing or chunk extensions (";" after optional whitespace). The size, or
// nullopt when the line is not one.
std::optional<std::uint64_t> chunk_size(const std::string& line) {
  std::uint64_t size = 0;
  std::size_t i = 0;
  std::size_t digits = 0;  // from the first that is not a leading zero
  for (; i < line.size() && std::isxdigit(static_cast<unsigned char>(line[i])) != 0; ++i) {
    digits += (digits > 0 || line[i] != '0') ? 1 : 0;
    if (digits > 15) {
      return std::nullopt;  // 2^60 bytes or more: no body is
    }
    const char c = line[i];
    size = size * 16 + static_cast<std::uint64_t>(
                           c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  if (i == 0) {
    return std::nullopt;
  }
  if (i == line.size()) {
    return size;
  }
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
    ++i;
  }
  if (i == line.size() || line[i] != ';') {
    return std::nullopt;  // whitespace only before an extension
  }
  return size;
}

std::string to_hex(std::uint64_t n) {
  char text[24];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(n));
  return text;
}

} // namespace

SocketStream::SocketStream(socket_t sock, SSL* ssl, int read_timeout_ms, int write_timeout_ms)
    : m_sock(sock),
      m_ssl(ssl),
      m_read_timeout_ms(read_timeout_ms),
      m_write_timeout_ms(write_timeout_ms),
      m_buf(k_read_chunk) {
  if (m_ssl != nullptr) {
    // The library's TLS sockets block, and a blocking SSL_read waits for a
    // whole record, however slowly it trickles in. Here every wait is ours.
    m_blocking_flags = ::fcntl(m_sock, F_GETFL, 0);
    if (m_blocking_flags >= 0) {
      ::fcntl(m_sock, F_SETFL, m_blocking_flags | O_NONBLOCK);
    }
  }
}

void SocketStream::forget_socket() {
  m_blocking_flags = -1;
  m_ssl = nullptr;
}

SocketStream::~SocketStream() {
  if (m_blocking_flags >= 0) {
    ::fcntl(m_sock, F_SETFL, m_blocking_flags);
  }
}

int SocketStream::wait(short events, int timeout_ms) const {
  pollfd p{m_sock, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, std::max(0, timeout_ms));
    if (r >= 0 || errno != EINTR) {
      return r > 0 ? 1 : r;
    }
  }
}

bool SocketStream::is_readable() const { return readable_within(m_read_timeout_ms); }

bool SocketStream::is_writable() const { return wait(POLLOUT, m_write_timeout_ms) > 0; }

bool SocketStream::has_bytes() const { return readable_within(0); }

bool SocketStream::readable_within(int timeout_ms) const {
  return m_pos < m_end || m_framing_pos < m_framing.size() ||
         (m_ssl != nullptr && SSL_pending(m_ssl) > 0) || wait(POLLIN, timeout_ms) > 0;
}

ssize_t SocketStream::read(char* ptr, size_t size) {
  if (m_pending_head) {
    HeadLimits limits = *m_pending_head;
    m_pending_head.reset();
    if (!flush()) {
      return -1;
    }
    // A response's whole head, its first byte included, within head_timeout
    // of the request: a slow page's first byte may take longer than the
    // read timeout, which bounds the pauses once bytes come.
    const auto head_deadline = SteadyClock::now() + limits.head_timeout;
    limits.not_after = std::min(limits.not_after, head_deadline);
    const int first_byte_ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(limits.head_timeout)
                             .count());
    const HeadResult head = read_head(limits, std::max(m_read_timeout_ms, first_byte_ms), {});
    if (head == HeadResult::closed) {
      return m_timed_out ? -1 : 0;
    }
    if (head != HeadResult::ready) {
      m_head_failure = head;
      return -1;
    }
    const std::string_view held(m_buf.data() + m_pos, m_end - m_pos);
    const std::size_t crlf = held.find("\r\n\r\n");
    const std::size_t lf = held.find("\n\n");
    m_last_head.assign(held.substr(0, std::min(crlf == std::string_view::npos ? held.size() : crlf + 4,
                                               lf == std::string_view::npos ? held.size() : lf + 2)));
  }
  if (m_chunked != Chunked::off || m_framing_pos < m_framing.size()) {
    return read_chunked(ptr, size);
  }
  if (m_pos == m_end) {
    if (!flush()) {
      return -1;
    }
    m_pos = m_end = 0;
    const ssize_t n = receive(m_read_timeout_ms, false);
    if (n <= 0) {
      return n;
    }
  }
  const std::size_t n = std::min(size, m_end - m_pos);
  std::memcpy(ptr, m_buf.data() + m_pos, n);
  m_pos += n;
  if (size == 1) {
    // The library reads a line a byte at a time into memory without bound:
    // past a head, the chunk sizes and trailers of a chunked body that was
    // not announced with body_is_chunked() (every one is, by our callers).
    m_line_bytes = ptr[0] == '\n' ? 0 : m_line_bytes + 1;
    m_lines_total += 1;
    if (m_line_bytes > k_max_line || m_lines_total > k_max_lines_total) {
      m_line_too_long = true;
      return -1;
    }
  } else {
    // Content came between: only lines read one after another count.
    m_line_bytes = 0;
    m_lines_total = 0;
  }
  return static_cast<ssize_t>(n);
}

ssize_t SocketStream::write(const char* ptr, size_t size) {
  if (m_out.size() + size > k_write_buffer) {
    if (!flush()) {
      return -1;
    }
    if (size > k_write_buffer) {
      return send_some(ptr, size);
    }
  }
  m_out.append(ptr, size);
  return static_cast<ssize_t>(size);
}

void SocketStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  cached_address(m_remote, ::getpeername, ip, port);
}

void SocketStream::get_local_ip_and_port(std::string& ip, int& port) const {
  cached_address(m_local, ::getsockname, ip, port);
}

void SocketStream::cached_address(Address& cache, int (*get)(int, sockaddr*, socklen_t*),
                                  std::string& ip, int& port) const {
  if (!cache) {
    cache.emplace();
    address_of(get, m_sock, cache->first, cache->second);
  }
  ip = cache->first;
  port = cache->second;
}

bool SocketStream::flush() {
  std::size_t done = 0;
  while (done < m_out.size()) {
    const ssize_t n = send_some(m_out.data() + done, m_out.size() - done);
    if (n <= 0) {
      m_out.clear();
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  m_out.clear();
  return true;
}

HeadResult SocketStream::read_head(const HeadLimits& limits, int idle_ms,
                                   const std::function<bool()>& keep_waiting) {
  m_timed_out = false;
  m_head_cut = false;
  m_give_up = nullptr;
  m_line_bytes = 0;
  m_lines_total = 0;
  m_chunked = Chunked::off;
  m_chunked_too_slow = false;
  m_framing.clear();
  m_framing_pos = 0;
  m_trailer_bytes = 0;
  if (m_pos > 0) {
    std::memmove(m_buf.data(), m_buf.data() + m_pos, m_end - m_pos);
    m_end -= m_pos;
    m_pos = 0;
  }
  std::size_t scanned = 0;
  std::size_t line_start = 0;
  std::size_t head_start = 0;  // of the current head (interim heads may come first)
  std::size_t taken_out = 0;   // bytes of interim heads removed from the buffer
  bool start_line = true;
  bool http_1_0 = false;  // the request's start line says HTTP/1.0
  // Set by the first byte: the head must be whole by `deadline`, and never
  // pause longer than the read timeout.
  std::optional<SteadyClock::time_point> deadline;
  SteadyClock::time_point last_byte = SteadyClock::now();
  if (m_end > 0) {
    deadline = std::min(last_byte + limits.head_timeout, limits.not_after);
  }
  const auto idle_until =
      std::min(SteadyClock::now() + std::chrono::milliseconds(idle_ms), limits.not_after);
  bool tried = false;
  for (;;) {
    for (; scanned < m_end; ++scanned) {
      const std::size_t line = scanned - line_start + 1;  // bytes of this line so far
      if (taken_out + scanned + 1 > limits.max_head_bytes) {
        return HeadResult::too_large;
      }
      if (line > (start_line ? limits.max_start_line : limits.max_header_line)) {
        return start_line ? HeadResult::start_line_too_long : HeadResult::too_large;
      }
      if (m_buf[scanned] != '\n') {
        continue;
      }
      if (limits.bare_lf_lines && (line < 2 || m_buf[scanned - 1] != '\r')) {
        if (m_end == m_buf.size()) {
          m_buf.resize(m_buf.size() + k_read_chunk);
        }
        std::memmove(m_buf.data() + scanned + 1, m_buf.data() + scanned, m_end - scanned);
        m_buf[scanned] = '\r';
        ++m_end;
        --scanned;  // the loop's ++ brings it to the CR, then to the LF (wraps at 0 alike)
        continue;
      }
      const bool crlf = line >= 2 && m_buf[scanned - 1] == '\r';
      if (start_line && !crlf && limits.bare_lf_start_line_ends_head) {
        return HeadResult::ready;  // not HTTP/1.1: the library answers it (400)
      }
      // As the library: a head ends at the first line after the start line
      // that is exactly CRLF. An interim response's head is taken out.
      if (!start_line && line == 2 && crlf) {
        if (!is_interim_line(m_buf.data() + head_start, m_end - head_start)) {
          return HeadResult::ready;
        }
        const std::size_t head_end = scanned + 1;
        std::memmove(m_buf.data() + head_start, m_buf.data() + head_end, m_end - head_end);
        m_end -= head_end - head_start;
        taken_out += head_end - head_start;
        start_line = true;
        line_start = head_start;
        scanned = head_start - 1;  // the loop's ++ brings it to head_start
        continue;
      } else if (!start_line && limits.strict_field_lines &&
                 !is_strict_field_line(m_buf.data() + line_start, line)) {
        return HeadResult::malformed;
      } else if (!start_line && limits.drop_range &&
                 (is_range_line(m_buf.data() + line_start, line) ||
                  take_expect_line(m_buf.data() + line_start, line, http_1_0))) {
        const std::size_t line_end = scanned + 1;
        std::memmove(m_buf.data() + line_start, m_buf.data() + line_end, m_end - line_end);
        m_end -= line_end - line_start;
        taken_out += line_end - line_start;  // still counted against max_head_bytes
        scanned = line_start - 1;            // the loop's ++ brings it to line_start
        continue;
      } else {
        if (start_line) {
          http_1_0 = says_http_1_0(std::string_view(m_buf.data() + line_start, line));
        }
        start_line = false;
      }
      line_start = scanned + 1;
    }
    if (m_end == m_buf.size()) {
      m_buf.resize(std::min(m_buf.size() * 2, limits.max_head_bytes + k_read_chunk));
    }
    if (keep_waiting && !keep_waiting()) {
      return HeadResult::closed;
    }
    int wait_ms = 0;
    if (deadline) {
      const int stall_left = ms_until(last_byte + std::chrono::milliseconds(m_read_timeout_ms));
      if (ms_until(*deadline) == 0) {
        return HeadResult::timed_out;
      }
      if (stall_left == 0) {
        return HeadResult::stalled;
      }
      wait_ms = std::min(ms_until(*deadline), stall_left);
    } else {
      // Idle: waiting for the first byte.
      wait_ms = ms_until(idle_until);
      if (wait_ms == 0 && tried) {
        m_timed_out = true;
        return HeadResult::closed;
      }
    }
    if (keep_waiting) {
      wait_ms = std::min(wait_ms, k_idle_slice_ms);
    }
    tried = true;
    const ssize_t n = receive(wait_ms, true);
    if (n < 0 && m_timed_out) {
      m_timed_out = false;
      continue;  // the checks above decide
    }
    if (n <= 0) {
      m_head_cut = m_end >= 5 && std::memcmp(m_buf.data(), "HTTP/", 5) == 0;
      return HeadResult::closed;
    }
    last_byte = SteadyClock::now();
    if (!deadline) {
      deadline = std::min(last_byte + limits.head_timeout, limits.not_after);
    }
  }
}

ssize_t SocketStream::receive_more() {
  if (!flush()) {
    return -1;
  }
  if (m_pos > 0) {
    std::memmove(m_buf.data(), m_buf.data() + m_pos, m_end - m_pos);
    m_end -= m_pos;
    m_pos = 0;
  }
  if (m_end == m_buf.size()) {
    if (m_buf.size() >= k_max_line + 2) {
      m_line_too_long = true;  // only a line is kept whole in the buffer
      return -1;
    }
    m_buf.resize(std::min(m_buf.size() * 2, k_max_line + 2));
  }
  const int left_ms = ms_until(m_chunked_until);
  if (left_ms == 0) {
    m_chunked_too_slow = true;
    m_timed_out = true;
    return -1;
  }
  const ssize_t n = receive(std::min(m_read_timeout_ms, left_ms), false);
  // A wait for the time left ends up to 2 ms before it (each ms_until()
  // rounds down): one that ends that close to the deadline ended for it.
  if (n < 0 && m_timed_out &&
      SteadyClock::now() + std::chrono::milliseconds(2) >= m_chunked_until) {
    m_chunked_too_slow = true;
  }
  return n;
}

ssize_t SocketStream::chunk_line(std::string& line) {
  for (;;) {
    const char* start = m_buf.data() + m_pos;
    const auto* lf = static_cast<const char*>(std::memchr(start, '\n', m_end - m_pos));
    if (lf == nullptr) {
      if (m_end - m_pos > k_max_line) {
        m_line_too_long = true;
        return -1;
      }
      const ssize_t n = receive_more();
      if (n <= 0) {
        return n;
      }
      continue;
    }
    const std::size_t size = static_cast<std::size_t>(lf - start) + 1;
    if (size > k_max_line) {
      m_line_too_long = true;
      return -1;
    }
    if (size < 2 || lf[-1] != '\r' || std::memchr(start, '\r', size - 2) != nullptr) {
      return bad_chunk();  // a bare LF or a stray CR
    }
    line.assign(start, size - 2);
    m_pos += size;
    return 1;
  }
}

ssize_t SocketStream::read_chunked(char* ptr, size_t size) {
  for (;;) {
    if (m_framing_pos < m_framing.size()) {
      const std::size_t n = std::min(size, m_framing.size() - m_framing_pos);
      std::memcpy(ptr, m_framing.data() + m_framing_pos, n);
      m_framing_pos += n;
      return static_cast<ssize_t>(n);
    }
    m_framing.clear();
    m_framing_pos = 0;
    std::string line;
    switch (m_chunked) {
      case Chunked::off:
        return 0;  // unreachable: read() reads on
      case Chunked::size_line: {
        const ssize_t got = chunk_line(line);
        if (got <= 0) {
          return got;
        }
        const auto chunk = chunk_size(line);
        if (!chunk) {
          return bad_chunk();
        }
        m_chunk_left = *chunk;
        m_chunked = *chunk == 0 ? Chunked::trailers : Chunked::data;
        if (*chunk > 0) {
          m_framing = to_hex(*chunk) + "\r\n";
        }
        break;
      }
      case Chunked::data: {
        if (m_pos == m_end) {
          const ssize_t got = receive_more();
          if (got <= 0) {
            return got;
          }
        }
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>({size, m_chunk_left, m_end - m_pos}));
        std::memcpy(ptr, m_buf.data() + m_pos, n);
        m_pos += n;
        m_chunk_left -= n;
        if (m_chunk_left == 0) {
          m_chunked = Chunked::data_end;
        }
        return static_cast<ssize_t>(n);
      }
      case Chunked::data_end: {
        // CRLF and nothing else, judged byte by byte: data that goes on past
        // its size is refused as it comes, not a line later.
        while (m_end - m_pos < 2) {
          if (m_end > m_pos && m_buf[m_pos] != '\r') {
            return bad_chunk();
          }
          const ssize_t got = receive_more();
          if (got <= 0) {
            return got;
          }
        }
        if (m_buf[m_pos] != '\r' || m_buf[m_pos + 1] != '\n') {
          return bad_chunk();  // the data goes on past its size
        }
        m_pos += 2;
        m_framing = "\r\n";
        m_chunked = Chunked::size_line;
        break;
      }
      case Chunked::trailers: {
        const ssize_t got = chunk_line(line);
        if (got <= 0) {
          return got;
        }
        if (line.empty()) {
          m_framing = "0\r\n\r\n";  // the trailers are dropped
          m_chunked = Chunked::off;
          break;
        }
        m_trailer_bytes += line.size() + 2;
        if (m_trailer_bytes > k_max_lines_total) {
          m_line_too_long = true;
          return -1;
        }
        break;
      }
    }
  }
}

void SocketStream::send_and_linger(const std::string& bytes) {
  m_out = bytes;
  if (flush()) {
    close_gracefully({});
  }
}

void SocketStream::close_gracefully(const std::function<bool()>& keep_waiting) {
  if (m_eof || !flush() || ::shutdown(m_sock, SHUT_WR) != 0) {
    return;
  }
  const auto until = SteadyClock::now() + std::chrono::milliseconds(k_linger_ms);
  std::size_t dropped = 0;
  while (dropped < k_linger_bytes && ms_until(until) > 0 &&
         (!keep_waiting || keep_waiting()) &&
         wait(POLLIN, std::min(ms_until(until), k_idle_slice_ms)) > 0) {
    const ssize_t n = ::recv(m_sock, m_buf.data(), m_buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    dropped += static_cast<std::size_t>(n);
  }
}

ssize_t SocketStream::receive(int timeout_ms, bool wait_first) {
  char* const into = m_buf.data() + m_end;
  const std::size_t room = m_buf.size() - m_end;
  const auto until = SteadyClock::now() + std::chrono::milliseconds(std::max(0, timeout_ms));
  // Tried at once unless nothing is expected yet; TLS bytes OpenSSL already
  // holds are never waited for.
  short wait_for = (wait_first && !(m_ssl != nullptr && SSL_pending(m_ssl) > 0)) ? POLLIN : 0;
  for (;;) {
    if (wait_for != 0) {
      const int ready = wait(wait_for, ms_until(until));
      if (ready <= 0) {
        m_timed_out = ready == 0;
        return -1;
      }
    }
    ssize_t n = 0;
    if (m_ssl != nullptr) {
      n = SSL_read(m_ssl, into, static_cast<int>(std::min<std::size_t>(room, INT_MAX)));
      if (n <= 0) {
        const int error = SSL_get_error(m_ssl, static_cast<int>(n));
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
          wait_for = error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
          continue;  // part of a record, or a renegotiation: wait, within `until`
        }
      }
    } else {
      n = ::recv(m_sock, into, room, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait_for = POLLIN;
        continue;
      }
    }
    if (n <= 0) {
      m_eof = n == 0;
      return n < 0 ? -1 : 0;
    }
    m_end += static_cast<std::size_t>(n);
    m_received += static_cast<std::size_t>(n);
    return n;
  }
}

ssize_t SocketStream::send_some(const char* ptr, size_t size) {
  const auto until = SteadyClock::now() + std::chrono::milliseconds(m_write_timeout_ms);
  for (;;) {
    short wait_for = POLLOUT;
    if (m_ssl != nullptr) {
      const int sent =
          SSL_write(m_ssl, ptr, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
      if (sent > 0) {
        return sent;
      }
      const int error = SSL_get_error(m_ssl, sent);
      if (error != SSL_ERROR_WANT_WRITE && error != SSL_ERROR_WANT_READ) {
        return -1;
      }
      wait_for = error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    } else {
      const ssize_t n = ::send(m_sock, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        return n;
      }
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        return -1;
      }
    }
    if (!m_give_up) {
      if (wait(wait_for, ms_until(until)) <= 0) {
        return -1;
      }
      continue;
    }
    int ready = 0;
    while (ready == 0) {
      if (m_give_up() || ms_until(until) == 0) {
        return -1;
      }
      ready = wait(wait_for, std::min(ms_until(until), 200));
    }
    if (ready < 0) {
      return -1;
    }
  }
}

} // namespace scrapekeep::net
