#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace scrapekeep::testing {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds k_poll{10};

// The first complete line of `text` containing `needle`.
std::optional<std::string> find_line(const std::string& text, const std::string& needle) {
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      return std::nullopt;  // an incomplete last line may still grow
    }
    std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) {
      return line;
    }
    start = end + 1;
  }
  return std::nullopt;
}

} // namespace

ChildProcess::ChildProcess(const std::string& dir, const std::string& name,
                           std::vector<std::string> args)
    : m_out_path(dir + "/" + name + ".out"), m_err_path(dir + "/" + name + ".err") {
  args.insert(args.begin(), SCRAPEKEEP_BINARY);
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  // Everything the child does before exec is async-signal-safe: the test
  // process has other threads (fixture sites, servers).
  const pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("ChildProcess: fork failed");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    const int out = open(m_out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(m_err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) {
      _exit(127);
    }
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    close(out);
    close(err);
    const int null_in = open("/dev/null", O_RDONLY);
    if (null_in >= 0) {
      dup2(null_in, STDIN_FILENO);
      close(null_in);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  m_pid = pid;
}

ChildProcess::~ChildProcess() {
  if (m_pid > 0 && !m_status) {
    kill(m_pid, SIGKILL);
    reap(true);
  }
}

bool ChildProcess::reap(bool block) {
  if (m_status) {
    return true;
  }
  int status = 0;
  pid_t got = 0;
  do {
    got = waitpid(m_pid, &status, block ? 0 : WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got != m_pid) {
    return false;
  }
  m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool ChildProcess::running() { return !reap(false); }

void ChildProcess::send(int signal) {
  if (running()) {
    kill(m_pid, signal);
  }
}

std::optional<int> ChildProcess::wait(milliseconds limit) {
  const auto until = steady_clock::now() + limit;
  while (!reap(false)) {
    if (steady_clock::now() >= until) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(k_poll);
  }
  return m_status;
}

int ChildProcess::kill_now() {
  send(SIGKILL);
  reap(true);
  return *m_status;
}

std::optional<std::string> ChildProcess::wait_for_line(const std::string& needle,
                                                       milliseconds limit, Stream stream) {
  const std::string& path = stream == Stream::out ? m_out_path : m_err_path;
  const auto until = steady_clock::now() + limit;
  while (true) {
    const bool exited = !running();
    if (auto line = find_line(read_file(path), needle)) {
      return line;
    }
    if (exited || steady_clock::now() >= until) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(k_poll);
  }
}

std::string ChildProcess::out() const { return read_file(m_out_path); }
std::string ChildProcess::err() const { return read_file(m_err_path); }

RunResult run_program(const std::string& dir, std::vector<std::string> argv) {
  const std::string out_path = dir + "/stdout.txt";
  const std::string err_path = dir + "/stderr.txt";
  std::vector<char*> args;
  for (std::string& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw std::runtime_error("run_program: cannot start " + argv[0]);
  }
  int status = 0;
  pid_t got = 0;
  do {
    got = waitpid(pid, &status, 0);
  } while (got < 0 && errno == EINTR);
  if (got != pid) {
    throw std::runtime_error("run_program: waitpid failed for " + argv[0]);
  }
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

std::optional<ServeStart> wait_serving(ChildProcess& child, milliseconds limit) {
  const auto line = child.wait_for_line("serving on http://", limit);
  if (!line) {
    return std::nullopt;
  }
  ServeStart start;
  const size_t at = line->find("serving on http://");
  // The port's colon: after the brackets of an IPv6 host ("http://[::1]:PORT").
  const size_t host_end = line->compare(at + 18, 1, "[") == 0 ? line->find(']', at + 18) : at + 18;
  const size_t colon = host_end == std::string::npos ? host_end : line->find(':', host_end);
  if (colon == std::string::npos) {
    return std::nullopt;
  }
  try {
    start.port = std::stoi(line->substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  // The key comes on its own line before the serving line.
  std::istringstream lines(child.out());
  std::string l;
  while (std::getline(lines, l)) {
    if (l.rfind("ak_", 0) == 0) {
      start.key = l;
    }
  }
  return start;
}

std::string integrity_check(const std::string& db_path) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "PRAGMA integrity_check");
  std::string answer;
  while (q.executeStep()) {
    answer += (answer.empty() ? "" : "\n") + q.getColumn(0).getString();
  }
  return answer;
}

std::vector<std::string> counter_mismatches(const std::string& db_path, const std::string& job_id) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  // Each counter beside what the events (or items) say it must be.
  SQLite::Statement q(
      db,
      "SELECT j.listing_pages_scraped, "
      " (SELECT COUNT(*) FROM page_events e WHERE e.job_id = j.job_id AND e.kind = 'listing' "
      "  AND e.outcome = 'ok'), "
      " j.listing_pages_failed, "
      " (SELECT COUNT(*) FROM page_events e WHERE e.job_id = j.job_id AND e.kind = 'listing' "
      "  AND e.outcome = 'failed'), "
      " j.items_found, "
      " (SELECT COALESCE(SUM(items_found), 0) FROM page_events e WHERE e.job_id = j.job_id "
      "  AND e.kind = 'listing'), "
      " j.items_found, (SELECT COUNT(*) FROM result_items r WHERE r.job_id = j.job_id), "
      " j.detail_pages_discovered, "
      " (SELECT COALESCE(SUM(detail_links), 0) FROM page_events e WHERE e.job_id = j.job_id "
      "  AND e.kind = 'listing'), "
      " j.detail_pages_scraped, "
      " (SELECT COUNT(*) FROM page_events e WHERE e.job_id = j.job_id AND e.kind = 'detail' "
      "  AND e.outcome = 'ok'), "
      " j.detail_pages_failed, "
      " (SELECT COUNT(*) FROM page_events e WHERE e.job_id = j.job_id AND e.kind = 'detail' "
      "  AND e.outcome = 'failed') "
      "FROM jobs j WHERE j.job_id = ?");
  q.bind(1, job_id);
  if (!q.executeStep()) {
    return {"no such job " + job_id};
  }
  static const char* const k_names[] = {"listing_pages_scraped", "listing_pages_failed",
                                         "items_found (events)",  "items_found (items)",
                                         "detail_pages_discovered", "detail_pages_scraped",
                                         "detail_pages_failed"};
  std::vector<std::string> out;
  for (int i = 0; i < 7; ++i) {
    const std::int64_t stored = q.getColumn(2 * i).getInt64();
    const std::int64_t derived = q.getColumn(2 * i + 1).getInt64();
    if (stored != derived) {
      out.push_back(std::string(k_names[i]) + " " + std::to_string(stored) + ", rows say " +
                    std::to_string(derived));
    }
  }
  return out;
}

} // namespace scrapekeep::testing
