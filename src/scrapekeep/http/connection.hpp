#pragma once
// The server's connections: cpp-httplib parses and routes each request, over
// socket I/O of our own. The library's (0.11.4) reads a request line and
// headers of any length into memory (300 MB of headers on one connection
// took serve to 630 MB), and makes about ten system calls a request; here the
// request line and headers are read and bounded before the library sees
// them, and a request costs a receive and one send.

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace scrapekeep::http {

struct ConnectionLimits {
  std::size_t max_request_line = 8192;   // with its CRLF, as the library; more -> 414
  std::size_t max_header_line = 8192;    // one header line with its CRLF; more -> 431
  std::size_t max_header_bytes = 65536;  // request line and headers together; more -> 431
  // The request line and headers must all arrive within this, from their
  // first byte; later, or a pause longer than the read timeout -> 408.
  std::chrono::seconds header_timeout{30};
};

// Why the head of a request (request line and headers) was refused: over a
// limit, not all there within header_timeout, or nothing more for the read
// timeout.
enum class HeadRefusal { uri_too_long, headers_too_large, timed_out, stalled };

// Whether a read of the request being answered on this thread ran out of time
// (the client stopped sending for the read timeout). For the handler that
// reads a body: a stalled body is a 408, not a bad request.
bool current_read_timed_out();

class BoundedServer final : public httplib::Server {
 public:
  // `refuse` returns the whole HTTP response (status line, headers, body)
  // sent before the connection is closed.
  BoundedServer(ConnectionLimits limits, std::function<std::string(HeadRefusal)> refuse);

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionLimits m_limits;
  std::function<std::string(HeadRefusal)> m_refuse;
};

} // namespace scrapekeep::http
