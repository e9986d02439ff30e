#pragma once
// Whether this host can listen on ::1 (a container may have IPv6 off), for
// tests that need it to ask the host rather than the code under test.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace scrapekeep::testing {

inline bool has_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return bound;
}

} // namespace scrapekeep::testing
