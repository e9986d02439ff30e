#pragma once
// A FetchConfig::resolver that does not answer, as a dead DNS server does:
// every lookup waits until release() (or 60 s), then answers `answer`.
// Thread-safe; lookups still waiting when it is destroyed are released (the
// fetchers' threads may outlive it: they share its state).

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "scrapekeep/scrape/fetcher.hpp"

namespace scrapekeep::testing {

class HangingResolver {
 public:
  explicit HangingResolver(std::vector<std::string> answer = {"127.0.0.1"})
      : m_state(std::make_shared<State>()) {
    m_state->answer = std::move(answer);
  }
  ~HangingResolver() { release(); }
  HangingResolver(const HangingResolver&) = delete;
  HangingResolver& operator=(const HangingResolver&) = delete;

  scrape::Resolver resolver() const {
    return [state = m_state](const std::string&) {
      std::unique_lock lock(state->mutex);
      ++state->calls;
      state->cv.wait_for(lock, std::chrono::seconds(60), [&] { return state->released; });
      return state->answer;
    };
  }

  // Lets every lookup, waiting or to come, answer at once.
  void release() {
    {
      std::lock_guard lock(m_state->mutex);
      m_state->released = true;
    }
    m_state->cv.notify_all();
  }

  // Lookups started so far.
  int calls() const {
    std::lock_guard lock(m_state->mutex);
    return m_state->calls;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    bool released = false;
    int calls = 0;
    std::vector<std::string> answer;
  };
  std::shared_ptr<State> m_state;
};

} // namespace scrapekeep::testing
