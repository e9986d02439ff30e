#pragma once
// The server's connections: cpp-httplib parses and routes each request, over
// net::SocketStream instead of the library's own socket I/O. The library's
// reads a request head of any size into memory and makes eleven system calls
// a request; here each request's head is read and bounded before the library
// sees it, and a request costs a poll, a receive and one send.

#include <httplib.h>

#include <chrono>
#include <functional>
#include <string>

#include "scrapekeep/core/byte_budget.hpp"
#include "scrapekeep/net/socket_stream.hpp"

namespace scrapekeep::http {

// Whether a read of the request being answered on this thread ran out of time
// (the client stopped sending for the read timeout). For the handler that
// reads a body: a stalled body is a 408, not a bad request.
bool current_read_timed_out();

// The stream of the request being answered on this thread; null elsewhere.
net::SocketStream* current_stream();

// Closes the connection once the response to the request being answered on
// this thread is sent: for a request whose body is left unread (refused, too
// large, too slow, or sent with a GET), whose bytes must not be read as the
// next request. Sets nothing in the response; say `Connection: close` too.
void close_after_response();

// The bytes of stored rows that answers being built and sent hold at once,
// across the process: 64 MiB. A page of jobs or results may hold 16 MiB of
// them and takes two to three times that in memory while it is built, so
// without it sixty clients asking at once for such pages took gigabytes.
core::ByteBudget& answer_budget();

// Keeps `lease` until the response to the request being answered on this
// thread is sent (released at once off a connection's thread). While other
// pages wait for the budget, a response that holds some of it and is still
// being sent k_slow_answer_grace after it was built is given up, and its
// connection closed: a client that reads slowly cannot hold its share for
// as long as it keeps reading.
void keep_until_sent(core::ByteBudget::Lease lease);
constexpr std::chrono::seconds k_slow_answer_grace{2};

// While connections wait for a thread (under_pressure()), a connection's
// thread is given back sooner: the connection is closed when no request has
// begun on it k_idle_grace after its thread took it up or answered the last
// one (not at once: the client's next request may be on its way), when a
// request's head is still arriving k_head_grace after it began, or when an answer is still
// being sent k_send_grace after the request came; a body still arriving
// k_body_grace after its head is 408. Slow or silent clients
// beyond --max-threads held every thread for up to 30 s of head (or as long
// as they kept reading an answer) while the others waited.
constexpr std::chrono::milliseconds k_idle_grace{500};
constexpr std::chrono::seconds k_head_grace{2};
constexpr std::chrono::seconds k_body_grace{5};
constexpr std::chrono::seconds k_send_grace{10};

class BoundedServer final : public httplib::Server {
 public:
  // `refuse` returns the whole HTTP response (status line, headers, body)
  // sent for a head that read_head() refused, before the connection closes.
  BoundedServer(net::HeadLimits limits, std::function<std::string(net::HeadResult)> refuse);

  // Whether connections wait for a thread; set before the server runs.
  void set_under_pressure(std::function<bool()> under_pressure) {
    m_under_pressure = std::move(under_pressure);
  }

 private:
  bool process_and_close_socket(socket_t sock) override;
  bool under_pressure() const { return m_under_pressure && m_under_pressure(); }

  net::HeadLimits m_limits;
  std::function<std::string(net::HeadResult)> m_refuse;
  std::function<bool()> m_under_pressure;
};

} // namespace scrapekeep::http
