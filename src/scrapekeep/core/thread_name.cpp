#include "scrapekeep/core/thread_name.hpp"

#include <pthread.h>

namespace scrapekeep::core {

void name_this_thread(const std::string& name) {
  // Linux allows 16 bytes with the terminating zero, and refuses longer ones.
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

} // namespace scrapekeep::core
