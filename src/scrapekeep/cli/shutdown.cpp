#include "scrapekeep/cli/shutdown.hpp"

#include <pthread.h>
#include <unistd.h>

namespace scrapekeep::cli {

namespace {

sigset_t shutdown_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

} // namespace

void block_shutdown_signals() {
  sigset_t set = shutdown_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client closing its socket mid-answer must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
}

int wait_for_shutdown_signal() {
  sigset_t set = shutdown_set();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

bool shutdown_signal_within(long ms) {
  sigset_t set = shutdown_set();
  const timespec wait{ms / 1000, (ms % 1000) * 1000000};
  return sigtimedwait(&set, nullptr, &wait) > 0;
}

void request_shutdown() { kill(getpid(), SIGTERM); }

} // namespace scrapekeep::cli
