#include "scrapekeep/net/socket_guard.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "scrapekeep/core/thread_name.hpp"

namespace scrapekeep::net {

// One thread for the process shuts down the guarded sockets whose deadline
// passed. Never destroyed: the thread may run while the process exits.
class SocketGuardWatch {
 public:
  static SocketGuardWatch& get() {
    static auto* watch = new SocketGuardWatch();
    return *watch;
  }

  std::mutex mutex;  // guards every SocketGuard's fields and `armed`

  void add(SocketGuard* guard) {
    armed.insert(guard);
    if (!started) {
      started = true;
      std::thread([this] { run(); }).detach();
    }
    cv.notify_one();
  }

  void remove(SocketGuard* guard) { armed.erase(guard); }

  static void shut(SocketGuard& guard) { ::shutdown(guard.m_fd, SHUT_RDWR); }

 private:
  void run() {
    core::name_this_thread("sk-sockguard");
    std::unique_lock lock(mutex);
    while (true) {
      auto next = std::chrono::steady_clock::time_point::max();
      const auto now = std::chrono::steady_clock::now();
      for (SocketGuard* guard : armed) {
        if (guard->m_deadline <= now) {
          if (!guard->m_fired) {
            guard->m_fired = true;
            shut(*guard);
          }
        } else {
          next = std::min(next, guard->m_deadline);
        }
      }
      if (next == std::chrono::steady_clock::time_point::max()) {
        cv.wait(lock);
      } else {
        cv.wait_until(lock, next);
      }
    }
  }

  std::condition_variable cv;
  std::set<SocketGuard*> armed;
  bool started = false;
};

SocketGuard::~SocketGuard() { disarm(); }

void SocketGuard::arm(int fd, std::chrono::steady_clock::time_point deadline) {
  disarm();
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  auto& watch = SocketGuardWatch::get();
  std::lock_guard lock(watch.mutex);
  m_fired = false;
  if (copy < 0) {
    return;  // out of descriptors: the library's own timeouts stay
  }
  m_fd = copy;
  m_deadline = deadline;
  watch.add(this);
}

void SocketGuard::disarm() {
  // Only the thread that arms a guard changes m_fd: it reads it unlocked, so
  // the fetches that arm nothing (plain HTTP, a kept connection) take no lock.
  if (m_fd < 0) {
    return;
  }
  auto& watch = SocketGuardWatch::get();
  int copy = -1;
  {
    std::lock_guard lock(watch.mutex);
    if (m_fd < 0) {
      return;
    }
    watch.remove(this);
    copy = m_fd;
    m_fd = -1;
  }
  ::close(copy);
}

void SocketGuard::shut_now() {
  auto& watch = SocketGuardWatch::get();
  std::lock_guard lock(watch.mutex);
  if (m_fd >= 0) {
    SocketGuardWatch::shut(*this);
  }
}

bool SocketGuard::fired() const {
  std::lock_guard lock(SocketGuardWatch::get().mutex);
  return m_fired;
}

} // namespace scrapekeep::net
