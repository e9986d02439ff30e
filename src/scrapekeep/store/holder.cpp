#include "scrapekeep/store/holder.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <limits>
#include <sstream>

namespace scrapekeep::store {

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "pid:[4026531836]" -> "4026531836": the namespace's inode, the same for
// every process in it.
std::string pid_namespace_of_self() {
  char link[64] = {0};
  const ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
  if (n <= 0) {
    return {};
  }
  const std::string text(link, static_cast<std::size_t>(n));
  const std::size_t open = text.find('[');
  const std::size_t close = text.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close <= open + 1) {
    return {};
  }
  return text.substr(open + 1, close - open - 1);
}

// The extension's fields hold no ':' (an older reader splits at the last
// one) nor '/' (its own separator).
bool plain(const std::string& field) {
  return field.find_first_of(":/") == std::string::npos;
}

bool parse_whole_number(const std::string& text, long long& out) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = std::stoll(text);
  return true;
}

bool proc_is_of_this_namespace(long pid) {
  char link[32] = {0};
  const ssize_t n = readlink("/proc/self", link, sizeof link - 1);
  return n > 0 && std::string(link, static_cast<std::size_t>(n)) == std::to_string(pid);
}

bool pid_is_free(long pid) {
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

} // namespace

std::optional<Holder> parse_holder(const std::string& text) {
  // host:pid:nonce[/boot/pidns/start], the host being what comes before the
  // last two colons (it may hold ':' or '/'; the fields after it hold neither).
  const std::size_t last = text.rfind(':');
  if (last == std::string::npos || last == 0) {
    return std::nullopt;
  }
  const std::size_t middle = text.rfind(':', last - 1);
  if (middle == std::string::npos) {
    return std::nullopt;
  }
  const std::string tail = text.substr(last + 1);
  const std::size_t slash = tail.find('/');
  Holder h;
  h.host = text.substr(0, middle);
  h.nonce = tail.substr(0, slash);
  long long pid = 0;
  // A pid_t is 32 bits: a larger number would name another process.
  if (!parse_whole_number(text.substr(middle + 1, last - middle - 1), pid) || pid <= 0 ||
      pid > std::numeric_limits<pid_t>::max()) {
    return std::nullopt;
  }
  h.pid = static_cast<long>(pid);
  if (slash == std::string::npos) {
    return h;
  }
  // "/boot/pidns/start"
  std::istringstream rest(tail.substr(slash + 1));
  std::string start;
  if (!std::getline(rest, h.boot_id, '/') || !std::getline(rest, h.pid_namespace, '/') ||
      !std::getline(rest, start, '/') || !rest.eof()) {
    return std::nullopt;
  }
  long long ticks = 0;
  if (h.boot_id.empty() || h.pid_namespace.empty() || !parse_whole_number(start, ticks)) {
    return std::nullopt;
  }
  h.start_ticks = ticks;
  return h;
}

std::string format_holder(const Holder& h) {
  std::string out = h.host + ":" + std::to_string(h.pid) + ":" + h.nonce;
  if (!h.boot_id.empty() && !h.pid_namespace.empty() && plain(h.boot_id) &&
      plain(h.pid_namespace) && h.start_ticks > 0) {
    out += "/" + h.boot_id + "/" + h.pid_namespace + "/" + std::to_string(h.start_ticks);
  }
  return out;
}

Holder this_process(const std::string& nonce) {
  Holder h;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  h.host = host;
  h.pid = static_cast<long>(getpid());
  h.nonce = nonce;
  h.boot_id = first_line("/proc/sys/kernel/random/boot_id");
  h.pid_namespace = pid_namespace_of_self();
  h.start_ticks = process_start_ticks(h.pid).value_or(0);
  // /proc may be another pid namespace's (unshare -p without --mount-proc,
  // a host's /proc mounted in a container): its start times would be of
  // other processes, so the older form is written, judged by pid alone.
  if (!proc_is_of_this_namespace(h.pid) || h.boot_id.empty() || h.pid_namespace.empty() || h.start_ticks <= 0 || !plain(h.boot_id)) {
    h.boot_id.clear();
    h.pid_namespace.clear();
    h.start_ticks = 0;
  }
  return h;
}

namespace {

struct ProcessStat {
  char state = '?';  // R, S, D, Z (zombie: exited, not yet reaped), X (dead)...
  std::int64_t start_ticks = 0;
};

std::optional<ProcessStat> process_stat(long pid) {
  const std::string stat = first_line("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted after the last ')'; state is field 3, starttime 22.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  ProcessStat result;
  for (int number = 3; number <= 22; ++number) {
    if (!(fields >> field)) {
      return std::nullopt;
    }
    if (number == 3) {
      result.state = field.front();
    }
  }
  long long ticks = 0;
  if (!parse_whole_number(field, ticks)) {
    return std::nullopt;
  }
  result.start_ticks = ticks;
  return result;
}

} // namespace

std::optional<std::int64_t> process_start_ticks(long pid) {
  const auto stat = process_stat(pid);
  return stat ? std::optional<std::int64_t>(stat->start_ticks) : std::nullopt;
}

bool holder_is_gone(const Holder& theirs, const Holder& mine) {
  if (theirs.host != mine.host) {
    return false;
  }
  if (theirs.boot_id.empty()) {
    // The older form: this pid under another nonce is an earlier process
    // that had it, another pid is gone when it is free.
    return theirs.pid == mine.pid ? theirs.nonce != mine.nonce : pid_is_free(theirs.pid);
  }
  if (mine.boot_id.empty()) {
    return false;  // nothing to compare with
  }
  if (theirs.boot_id != mine.boot_id) {
    // Processes sharing a database in WAL mode share a kernel: a holder of
    // another boot of this host ran before the machine restarted.
    return true;
  }
  if (theirs.pid_namespace != mine.pid_namespace) {
    return false;
  }
  if (theirs.pid == mine.pid) {
    return theirs.nonce != mine.nonce || theirs.start_ticks != mine.start_ticks;
  }
  if (pid_is_free(theirs.pid)) {
    return true;
  }
  // A zombie has exited: only its parent has not reaped it yet (a killed
  // worker under a supervisor, or a pid 1, that reaps late or never).
  const auto stat = process_stat(theirs.pid);
  return stat && (stat->start_ticks != theirs.start_ticks || stat->state == 'Z' ||
                  stat->state == 'X');
}

} // namespace scrapekeep::store
