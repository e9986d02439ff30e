#include "scrapekeep/http/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace scrapekeep::http {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t k_read_chunk = 4096;
// Responses are sent once whole (the library writes the status line and
// headers, then the body: two TCP segments with Nagle off); larger ones go
// out as they come.
constexpr std::size_t k_write_buffer = 16384;
// A refused request: what the client still sends is read and dropped, up to
// this, so that it reads the answer instead of a reset connection.
constexpr std::size_t k_linger_bytes = 256 * 1024;
constexpr int k_linger_ms = 500;
// An idle keep-alive connection looks at the listening socket this often, so
// that stopping the server does not wait for its keep-alive timeout.
constexpr int k_idle_slice_ms = 250;

int to_ms(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// 1 when `sock` is ready for `events` within `timeout_ms`, 0 on timeout, -1 on error.
int wait_for(socket_t sock, short events, int timeout_ms) {
  pollfd p{sock, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, std::max(0, timeout_ms));
    if (r >= 0 || errno != EINTR) {
      return r > 0 ? 1 : r;
    }
  }
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

// One connection's socket, for every request on it: reads are buffered
// (the library reads the head a byte at a time), writes are held until the
// response is whole, and the head of each request is read and checked here
// before the library parses it.
class ConnectionStream final : public httplib::Stream {
 public:
  enum class Head { ready, closed, refused };

  ConnectionStream(socket_t sock, const ConnectionLimits& limits, int read_timeout_ms,
                   int write_timeout_ms)
      : m_sock(sock),
        m_limits(limits),
        m_read_timeout_ms(read_timeout_ms),
        m_write_timeout_ms(write_timeout_ms),
        m_buf(k_read_chunk) {}

  bool is_readable() const override {
    return m_pos < m_end || wait_for(m_sock, POLLIN, m_read_timeout_ms) > 0;
  }
  bool is_writable() const override { return wait_for(m_sock, POLLOUT, m_write_timeout_ms) > 0; }

  ssize_t read(char* ptr, size_t size) override {
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
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
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

  // Asked for every request (the library sets REMOTE_ADDR and LOCAL_ADDR);
  // looked up once per connection.
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    cached_address(m_remote, ::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    cached_address(m_local, ::getsockname, ip, port);
  }
  socket_t socket() const override { return m_sock; }

  // Sends what write() holds; false if the client is gone or stopped reading.
  bool flush() {
    std::size_t done = 0;
    while (done < m_out.size()) {
      const ssize_t n = send_some(m_out.data() + done, m_out.size() - done);
      if (n < 0) {
        m_out.clear();
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    m_out.clear();
    return true;
  }

  // Waits for the next request (up to `idle_ms` for its first byte, as long
  // as `listening` is open) and reads until its whole head is buffered.
  // refused: the head broke a limit or came too slowly (see refusal()).
  Head read_head(const std::atomic<socket_t>& listening, int idle_ms) {
    m_timed_out = false;
    if (m_pos > 0) {
      std::memmove(m_buf.data(), m_buf.data() + m_pos, m_end - m_pos);
      m_end -= m_pos;
      m_pos = 0;
    }
    std::size_t scanned = 0;
    std::size_t line = 0;  // bytes of the current line so far
    bool first_line = true;
    std::optional<SteadyClock::time_point> deadline;
    if (m_end > 0) {
      deadline = SteadyClock::now() + m_limits.header_timeout;
    }
    const auto idle_until = SteadyClock::now() + std::chrono::milliseconds(idle_ms);
    for (;;) {
      for (; scanned < m_end; ++scanned) {
        ++line;
        if (scanned + 1 > m_limits.max_header_bytes) {
          return refuse(HeadRefusal::headers_too_large);
        }
        if (first_line && line > m_limits.max_request_line) {
          return refuse(HeadRefusal::uri_too_long);
        }
        if (!first_line && line > m_limits.max_header_line) {
          return refuse(HeadRefusal::headers_too_large);
        }
        if (m_buf[scanned] != '\n') {
          continue;
        }
        // As the library: the head ends at the first line (after the
        // request line) that is exactly CRLF.
        if (!first_line && line == 2 && m_buf[scanned - 1] == '\r') {
          return Head::ready;
        }
        first_line = false;
        line = 0;
      }
      if (m_end == m_buf.size()) {
        m_buf.resize(std::min(m_buf.size() * 2, m_limits.max_header_bytes + k_read_chunk));
      }
      ssize_t n = 0;
      if (deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            *deadline - SteadyClock::now());
        if (left.count() <= 0) {
          return refuse(HeadRefusal::timed_out);
        }
        const bool stall = m_read_timeout_ms <= left.count();
        n = receive(stall ? m_read_timeout_ms : static_cast<int>(left.count()), true);
        if (n < 0 && m_timed_out) {
          return refuse(stall ? HeadRefusal::stalled : HeadRefusal::timed_out);
        }
      } else {
        // Idle between requests.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            idle_until - SteadyClock::now());
        if (left.count() <= 0 || listening == INVALID_SOCKET) {
          return Head::closed;
        }
        n = receive(std::min<int>(k_idle_slice_ms, static_cast<int>(left.count())), true);
        if (n < 0 && m_timed_out) {
          m_timed_out = false;
          continue;
        }
        deadline = SteadyClock::now() + m_limits.header_timeout;
      }
      if (n <= 0) {
        return Head::closed;
      }
    }
  }

  HeadRefusal refusal() const { return m_refusal; }
  bool timed_out() const { return m_timed_out; }

  // After a refusal: sends `response`, then reads and drops what the client
  // still sends (bounded), so that it sees the answer before the close.
  void refuse_and_linger(const std::string& response) {
    m_out.clear();
    if (send_all(response) && ::shutdown(m_sock, SHUT_WR) == 0) {
      std::size_t dropped = 0;
      while (dropped < k_linger_bytes && wait_for(m_sock, POLLIN, k_linger_ms) > 0) {
        const ssize_t n = ::recv(m_sock, m_buf.data(), m_buf.size(), MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
          break;
        }
        dropped += n > 0 ? static_cast<std::size_t>(n) : 0;
      }
    }
  }

 private:
  using Address = std::optional<std::pair<std::string, int>>;

  void cached_address(Address& cache, int (*get)(int, sockaddr*, socklen_t*), std::string& ip,
                      int& port) const {
    if (!cache) {
      cache.emplace();
      address_of(get, m_sock, cache->first, cache->second);
    }
    ip = cache->first;
    port = cache->second;
  }

  Head refuse(HeadRefusal why) {
    m_refusal = why;
    return Head::refused;
  }

  bool send_all(const std::string& data) {
    m_out = data;
    return flush();
  }

  // Receives into the buffer after m_end. Bytes received, 0 at the end of
  // the stream, -1 on an error or after `timeout_ms` without data (then
  // m_timed_out). `poll_first`: wait before trying (data is not expected yet).
  ssize_t receive(int timeout_ms, bool poll_first) {
    bool waited = false;
    if (poll_first) {
      const int ready = wait_for(m_sock, POLLIN, timeout_ms);
      if (ready <= 0) {
        m_timed_out = ready == 0;
        return -1;
      }
      waited = true;
    }
    for (;;) {
      const ssize_t n = ::recv(m_sock, m_buf.data() + m_end, m_buf.size() - m_end, MSG_DONTWAIT);
      if (n >= 0) {
        m_end += static_cast<std::size_t>(n);
        return n;
      }
      if (errno == EINTR) {
        continue;
      }
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || waited) {
        return -1;
      }
      const int ready = wait_for(m_sock, POLLIN, timeout_ms);
      if (ready <= 0) {
        m_timed_out = ready == 0;
        return -1;
      }
      waited = true;
    }
  }

  // One send of up to `size` bytes, waiting up to the write timeout for room.
  ssize_t send_some(const char* ptr, size_t size) {
    for (;;) {
      const ssize_t n = ::send(m_sock, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        return n;
      }
      if (errno == EINTR) {
        continue;
      }
      if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
          wait_for(m_sock, POLLOUT, m_write_timeout_ms) <= 0) {
        return -1;
      }
    }
  }

  const socket_t m_sock;
  const ConnectionLimits& m_limits;
  const int m_read_timeout_ms;
  const int m_write_timeout_ms;
  std::vector<char> m_buf;  // received bytes; m_pos..m_end not yet read
  std::size_t m_pos = 0;
  std::size_t m_end = 0;
  std::string m_out;  // written, not yet sent
  bool m_timed_out = false;
  HeadRefusal m_refusal = HeadRefusal::headers_too_large;
  mutable Address m_remote;
  mutable Address m_local;
};

thread_local const ConnectionStream* t_current = nullptr;

} // namespace

bool current_read_timed_out() { return t_current != nullptr && t_current->timed_out(); }

BoundedServer::BoundedServer(ConnectionLimits limits,
                             std::function<std::string(HeadRefusal)> refuse)
    : m_limits(limits), m_refuse(std::move(refuse)) {}

bool BoundedServer::process_and_close_socket(socket_t sock) {
  ConnectionStream strm(sock, m_limits, to_ms(read_timeout_sec_, read_timeout_usec_),
                        to_ms(write_timeout_sec_, write_timeout_usec_));
  bool ret = false;
  const int idle_ms = static_cast<int>(keep_alive_timeout_sec_ * 1000);
  for (std::size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET;
       --left) {
    const auto head = strm.read_head(svr_sock_, idle_ms);
    if (head == ConnectionStream::Head::refused) {
      strm.refuse_and_linger(m_refuse(strm.refusal()));
      ret = false;
      break;
    }
    if (head == ConnectionStream::Head::closed) {
      break;
    }
    bool connection_closed = false;
    t_current = &strm;
    ret = process_request(strm, left == 1, connection_closed, nullptr);
    t_current = nullptr;
    if (!strm.flush() || !ret || connection_closed) {
      break;
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

} // namespace scrapekeep::http
