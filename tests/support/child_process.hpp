#pragma once
// A child process running the built `scrapekeep` binary (SCRAPEKEEP_BINARY),
// for tests that kill, signal and restart real processes.
//
// stdout and stderr go to files (name.out, name.err in the given directory)
// that the test can wait on and read. The child dies with the test process
// (PR_SET_PDEATHSIG) and is killed with SIGKILL and reaped when the
// ChildProcess goes out of scope, so nothing outlives a failed test.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace scrapekeep::testing {

// Polls `predicate` every 10 ms until it holds or `limit` passes (the
// processes and threads under test move on their own); its last answer.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

class ChildProcess {
 public:
  enum class Stream { out, err };

  // Starts `SCRAPEKEEP_BINARY args...`; output files go to `dir` under `name`.
  ChildProcess(const std::string& dir, const std::string& name, std::vector<std::string> args);
  ~ChildProcess();  // SIGKILL and reap if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return m_pid; }

  // The first line of `stream` containing `needle`, waiting up to `limit`;
  // nullopt when the time is up or the child exited without printing it.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds limit,
                                           Stream stream = Stream::out);

  // Sends `signal` if the child still runs.
  void send(int signal);
  // Exit status (the code, or 128 + signal number when killed), waiting up
  // to `limit`; nullopt if it still runs then.
  std::optional<int> wait(std::chrono::milliseconds limit);
  // SIGKILL, then reap; returns the exit status.
  int kill_now();
  bool running();

  std::string out() const;
  std::string err() const;

 private:
  bool reap(bool block);

  std::string m_out_path;
  std::string m_err_path;
  pid_t m_pid = -1;
  std::optional<int> m_status;
};

// What a program that ran to its end printed, and its exit status (the code,
// or 128 + signal number when killed).
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] a path or a name looked up in PATH) to its end, with
// stdout and stderr in the files stdout.txt and stderr.txt of `dir`; throws
// when it cannot be started.
RunResult run_program(const std::string& dir, std::vector<std::string> argv);

// What `scrapekeep serve` printed at start.
struct ServeStart {
  int port = 0;
  std::string key;  // the API key printed on a fresh database; empty otherwise
};

// Waits for serve's "serving on http://HOST:PORT" (or http://[IPV6]:PORT) line (and the key line
// before it, if any); nullopt when it did not come within `limit`.
std::optional<ServeStart> wait_serving(ChildProcess& child, std::chrono::milliseconds limit);

// Checks of a database file that killed processes left behind, each on a
// read-only connection of its own.
// PRAGMA integrity_check's answer: "ok" when the file is sound.
std::string integrity_check(const std::string& db_path);
// Every way the job's counters differ from what its page events and stored
// items say (one line each, e.g. "items_found 12, events say 16"); empty
// when they agree.
std::vector<std::string> counter_mismatches(const std::string& db_path, const std::string& job_id);

} // namespace scrapekeep::testing
