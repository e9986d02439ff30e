#pragma once
// A deadline for a wait inside a library that takes none, and a way to end
// it from another thread without the library's locks. cpp-httplib 0.11's TLS
// handshake waits up to its connection timeout for each record, so a server
// that sends a byte every few seconds held a worker for ever; and it holds
// the client's socket lock all along, so ClientImpl::stop() (a cancel) waited
// for it. A guard shuts the socket down (both ways) when its deadline passes
// or on shut_now(): the wait then ends at once, with an error.

#include <chrono>

namespace scrapekeep::net {

class SocketGuard {
 public:
  SocketGuard() = default;
  ~SocketGuard();  // disarms
  SocketGuard(const SocketGuard&) = delete;
  SocketGuard& operator=(const SocketGuard&) = delete;

  // Guards the socket `fd` until disarm(). The guard keeps a duplicate of
  // the descriptor: shutdown() acts on the socket, and the duplicate's
  // number cannot be reused by another thread while the guard holds it.
  void arm(int fd, std::chrono::steady_clock::time_point deadline);
  // Stops guarding (also when the socket is closed already); fired() keeps
  // telling whether the deadline passed. arm() and disarm() are called by
  // one thread, the guard's owner; the others from any thread.
  void disarm();
  // Shuts an armed socket down now. Thread-safe, as the others are.
  void shut_now();
  // Whether the deadline shut the socket down since the last arm().
  bool fired() const;

 private:
  friend class SocketGuardWatch;
  int m_fd = -1;  // the duplicate, while armed
  std::chrono::steady_clock::time_point m_deadline{};
  bool m_fired = false;
};

} // namespace scrapekeep::net
