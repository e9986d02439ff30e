#include "scrapekeep/http/connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include "scrapekeep/net/socket_stream.hpp"

namespace scrapekeep::http {

namespace {

thread_local net::SocketStream* t_current = nullptr;
thread_local bool t_close_after = false;
thread_local core::ByteBudget::Lease t_kept;
thread_local std::chrono::steady_clock::time_point t_kept_since;

} // namespace

bool current_read_timed_out() { return t_current != nullptr && t_current->timed_out(); }

net::SocketStream* current_stream() { return t_current; }

void close_after_response() { t_close_after = true; }

core::ByteBudget& answer_budget() {
  static core::ByteBudget budget(64 << 20);
  return budget;
}

void keep_until_sent(core::ByteBudget::Lease lease) {
  if (t_current == nullptr || lease.bytes() == 0) {
    return;
  }
  t_kept = std::move(lease);
  t_kept_since = std::chrono::steady_clock::now();
}

BoundedServer::BoundedServer(net::HeadLimits limits,
                             std::function<std::string(net::HeadResult)> refuse)
    : m_limits(limits), m_refuse(std::move(refuse)) {}

bool BoundedServer::process_and_close_socket(socket_t sock) {
  net::SocketStream strm(sock, nullptr, net::timeout_ms(read_timeout_sec_, read_timeout_usec_),
                         net::timeout_ms(write_timeout_sec_, write_timeout_usec_));
  const int idle_ms = static_cast<int>(keep_alive_timeout_sec_ * 1000);
  const auto listening = [this] { return svr_sock_ != INVALID_SOCKET; };
  bool ret = false;
  for (std::size_t left = keep_alive_max_count_; left > 0 && listening(); --left) {
    const auto asked = std::chrono::steady_clock::now();
    const auto keep_waiting = [&] {
      if (!listening()) {
        return false;
      }
      if (!under_pressure()) {
        return true;
      }
      const auto waited = std::chrono::steady_clock::now() - asked;
      if (!strm.has_bytes()) {
        return waited < k_idle_grace;
      }
      return waited < k_head_grace;
    };
    const net::HeadResult head = strm.read_head(m_limits, idle_ms, keep_waiting);
    if (head == net::HeadResult::closed) {
      break;
    }
    if (head != net::HeadResult::ready) {
      strm.send_and_linger(m_refuse(head));
      ret = false;
      break;
    }
    bool connection_closed = false;
    t_current = &strm;
    t_close_after = false;
    // A client that reads slowly would hold its share of the answers'
    // budget for as long as it keeps reading, and other pages would wait for
    // it and fail: while any waits, an answer that holds some and is still
    // being sent 2 s after it was built is given up, and its connection
    // closed; and while connections wait for a thread, any answer still
    // being sent k_send_grace after its request came.
    strm.give_up_sending_when([this, came = std::chrono::steady_clock::now()] {
      const auto now = std::chrono::steady_clock::now();
      return (t_kept.bytes() > 0 && answer_budget().waiting() > 0 &&
              now - t_kept_since > k_slow_answer_grace) ||
             (now - came > k_send_grace && under_pressure());
    });
    ret = process_request(strm, left == 1, connection_closed, nullptr);
    t_current = nullptr;
    const bool sent = strm.flush();
    t_kept.release();
    if (!sent || !ret || connection_closed || t_close_after) {
      break;
    }
  }
  strm.close_gracefully(listening);
  ::close(sock);
  return ret;
}

} // namespace scrapekeep::http
