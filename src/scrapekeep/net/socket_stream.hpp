#pragma once
// An httplib::Stream over a connected socket, plain or TLS, for the API
// server's connections and the fetcher's. cpp-httplib 0.11.4's own streams
// read a message head (start line and headers) of any size into memory: one
// client sending endless headers took serve to 630 MB, one site sending them
// took a worker past 1.8 GB. Here the head of each message is read whole,
// within limits, before the library parses it; reads are buffered (the
// library reads a head a byte at a time), writes are held until flush() (a
// response goes out in one send), and every wait is a poll() with a timeout.

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scrapekeep/core/text.hpp"

namespace scrapekeep::net {

struct HeadLimits {
  std::size_t max_start_line = 8192;   // with its CRLF
  std::size_t max_header_line = 8192;  // one header line with its CRLF
  std::size_t max_head_bytes = 65536;  // start line and headers together
  // The whole head must arrive within this from its first byte.
  std::chrono::milliseconds head_timeout{30000};
  // A start line ending in a bare LF is handed to the library at once: for
  // a server, whose library answers it with 400. A client's library would
  // take such a status line, so its head goes on within the limits.
  bool bare_lf_start_line_ends_head = false;
  // A server's: a header line that is folded (starts with a space or tab),
  // has no colon, whitespace before its colon, or a CR that does not end it
  // makes the head `malformed` (RFC 9112 5.1, 5.2). The library would take
  // "Content-Length : 5" as another header and read the body as the next
  // request. A client takes what sites send, as the library does.
  bool strict_field_lines = false;
  // A server's: its header lines named Range are taken out of the head
  // before the library reads it. Its answers are always whole (RFC 9110 14.2
  // lets a server ignore Range); the library would cut a JSON body to the
  // bytes asked for under a 200, or answer 416 without a body. Its Expect:
  // 100-continue lines are read as RFC 9110 asks (take_expect_line).
  bool drop_range = false;
  // A client's: a line of the head ended by a LF alone is taken as ended by
  // CRLF (RFC 9112 2.2 allows it; browsers and curl read such sites), which
  // the library requires.
  bool bare_lf_lines = false;
  // And all of it by then (a client: the fetch's deadline).
  std::chrono::steady_clock::time_point not_after = std::chrono::steady_clock::time_point::max();
};

enum class HeadResult {
  ready,                // the whole head is buffered
  closed,               // no message: the peer closed, or nothing came while idle
  start_line_too_long,  // over max_start_line
  too_large,            // a header line over max_header_line, or over max_head_bytes
  timed_out,            // not all there within head_timeout
  stalled,              // nothing more for the read timeout, half way
  malformed,            // a header line strict_field_lines refuses
};

// A timeout as the library keeps it (seconds and microseconds), in ms.
inline int timeout_ms(time_t sec, time_t usec) {
  return static_cast<int>(sec * 1000 + usec / 1000);
}

// `ssl` null: plain TCP. A TLS socket is non-blocking while the stream
// lives (every wait is a poll with a time limit), as it was after.
//
// A chunked body (once its head is read, the stream's owner calls
// body_is_chunked() when the library will read one) is read here to RFC
// 9112 7.1 and handed to the library framed anew: cpp-httplib 0.11.4 fails
// on any trailer field, and takes
// chunk sizes such as "0x2", "2 " or "-2" and chunk data not followed by
// CRLF. A chunk-size line and a trailer line may be 8 KiB, the trailers
// (which are dropped) 1 MiB in all; more fails the read (line_too_long()),
// and so does framing that breaks the RFC (bad_chunked_body()).
// Not thread-safe; one message exchange at a time.
class SocketStream final : public httplib::Stream {
 public:
  SocketStream(socket_t sock, SSL* ssl, int read_timeout_ms, int write_timeout_ms);
  ~SocketStream() override;
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;

  bool is_readable() const override;
  bool is_writable() const override;
  // -1 on an error, a timeout (then timed_out()) or a refused head.
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  // Looked up once per connection (the library asks on every request).
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return m_sock; }

  // Sends what write() holds; false if the peer is gone or stopped reading.
  bool flush();
  // Until the next read_head(): a send that has to wait for the peer gives
  // up (fails) as soon as `give_up` says so, asked at least every 200 ms.
  void give_up_sending_when(std::function<bool()> give_up) { m_give_up = std::move(give_up); }

  // Reads until the buffer holds the whole head of the next message. Waits
  // up to `idle_ms` for its first byte. `keep_waiting` (may be empty) is
  // asked every quarter second: false ends the wait as `closed`.
  HeadResult read_head(const HeadLimits& limits, int idle_ms,
                       const std::function<bool()>& keep_waiting);
  // The next read() first reads the head with read_head(limits, read
  // timeout): for a client, which writes its request and then reads.
  void read_head_on_next_read(const HeadLimits& limits) { m_pending_head = limits; }
  // What that read_head() found, when it was not `ready`.
  std::optional<HeadResult> head_failure() const { return m_head_failure; }
  // The head that read_head() read there, as it came (cpp-httplib 0.11
  // percent-decodes every header value it parses).
  const std::string& last_head() const { return m_last_head; }

  // Whether a read ran out of time (the peer stopped sending).
  bool timed_out() const { return m_timed_out; }
  // Whether bytes have come that are not read yet: received here, held by
  // OpenSSL, or waiting in the socket (not waited for).
  bool has_bytes() const;
  // Bytes received from the peer since the stream was made.
  std::size_t bytes_received() const { return m_received; }
  // Whether the last read_head() ended with the peer closing the connection
  // in the middle of a head that began as an HTTP response's ("HTTP/").
  bool http_head_cut_short() const { return m_head_cut; }
  // The library closed the socket (and freed its TLS state) while the
  // stream still had it: the destructor must not touch that fd number, which
  // another thread may have been given already.
  void forget_socket();

  // Whether a read failed on a line past the head over its limits.
  bool line_too_long() const { return m_line_too_long; }
  // The body after the head just read is chunked, and the library reads it
  // next (its first Transfer-Encoding is "chunked", as the library decides).
  // All of it must have come by `not_after`: its size lines and trailers
  // carry no data, so a reader that times the data alone would not see them
  // trickle in.
  void body_is_chunked(std::chrono::steady_clock::time_point not_after) {
    m_chunked = Chunked::size_line;
    m_chunked_until = not_after;
  }
  // Whether a read of a chunked body failed at that time.
  bool chunked_body_too_slow() const { return m_chunked_too_slow; }
  // Whether a read failed on a chunked body's framing.
  bool bad_chunked_body() const { return m_bad_chunk; }

  // Sends `bytes`, then close_gracefully().
  void send_and_linger(const std::string& bytes);
  // Before the socket is closed: sends what is held, ends the sending side,
  // and reads and drops what the peer still sends (up to 4 MiB and 1 s, or
  // until `keep_waiting` says no), so that the peer reads all that was sent
  // instead of a reset. Nothing to do once the peer has closed.
  void close_gracefully(const std::function<bool()>& keep_waiting);

 private:
  using Address = std::optional<std::pair<std::string, int>>;

  void cached_address(Address& cache, int (*get)(int, sockaddr*, socklen_t*), std::string& ip,
                      int& port) const;
  int wait(short events, int timeout_ms) const;
  // Whether bytes are held here, by OpenSSL, or come within `timeout_ms`.
  bool readable_within(int timeout_ms) const;
  ssize_t receive(int timeout_ms, bool wait_first);
  ssize_t send_some(const char* ptr, size_t size);
  ssize_t read_chunked(char* ptr, size_t size);
  // Makes room and receives more of a chunked body; the read's result.
  ssize_t receive_more();
  // The next line of a chunked body without its CRLF into `line`; 1 when
  // read, else the read's result (-1 with the reason set, 0 at the end).
  ssize_t chunk_line(std::string& line);
  ssize_t bad_chunk() {
    m_bad_chunk = true;
    return -1;
  }

  // Where a chunked body is.
  enum class Chunked { off, size_line, data, data_end, trailers };

  const socket_t m_sock;
  SSL* m_ssl;
  const int m_read_timeout_ms;
  const int m_write_timeout_ms;
  std::vector<char> m_buf;  // received bytes; m_pos..m_end not yet read
  std::size_t m_pos = 0;
  std::size_t m_end = 0;
  std::string m_out;  // written, not yet sent
  bool m_timed_out = false;
  std::size_t m_received = 0;
  bool m_head_cut = false;
  bool m_eof = false;  // the peer closed its side
  bool m_line_too_long = false;
  std::size_t m_line_bytes = 0;   // of the line being read a byte at a time
  std::size_t m_lines_total = 0;  // bytes read a byte at a time since the head
  int m_blocking_flags = -1;      // a TLS socket's flags before the stream
  bool m_bad_chunk = false;
  bool m_chunked_too_slow = false;
  std::chrono::steady_clock::time_point m_chunked_until;
  Chunked m_chunked = Chunked::off;
  std::uint64_t m_chunk_left = 0;    // of the chunk's data
  std::size_t m_trailer_bytes = 0;   // of the trailers so far
  std::string m_framing;             // framing for the library, not yet read
  std::size_t m_framing_pos = 0;
  std::function<bool()> m_give_up;  // give_up_sending_when()
  std::optional<HeadLimits> m_pending_head;
  std::optional<HeadResult> m_head_failure;
  std::string m_last_head;  // last_head()
  mutable Address m_remote;
  mutable Address m_local;
};

// Whether a request's or response's Content-Length headers differ: its
// framing is invalid (RFC 9112 6.3), and what follows its body could be read
// as another message. The library reads the first of them.
template <typename Message>
bool has_conflicting_lengths(const Message& message) {
  const std::size_t count = message.get_header_value_count("Content-Length");
  for (std::size_t i = 1; i < count; ++i) {
    if (core::trim_ascii(message.get_header_value("Content-Length", i)) !=
        core::trim_ascii(message.get_header_value("Content-Length", 0))) {
      return true;
    }
  }
  return false;
}

// Whether the library reads a request's or response's body as chunked: its
// first Transfer-Encoding is "chunked", in any case. The stream's owner
// announces such a body with SocketStream::body_is_chunked().
template <typename Message>
bool is_chunked(const Message& message) {
  return core::lower_ascii(message.get_header_value("Transfer-Encoding")) == "chunked";
}

} // namespace scrapekeep::net
