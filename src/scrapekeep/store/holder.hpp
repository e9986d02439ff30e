#pragma once
// Who holds a claim, as a claim writes it into jobs.claimed_by, and whether
// that process is gone, so that its jobs are taken back at once rather than
// when their lease runs out (recover_at_start).
//
// Written "host:pid:nonce/boot/pidns/start": the host name, the pid, a random
// nonce of the process, the kernel's boot id, the process's pid namespace
// and its start time (clock ticks after boot). Versions before the last
// three fields wrote "host:pid:nonce"; such holders are still read.

#include <cstdint>
#include <optional>
#include <string>

namespace scrapekeep::store {

struct Holder {
  std::string host;
  long pid = 0;
  std::string nonce;
  // Empty (start 0) in a holder of the older form, or where /proc cannot be read.
  std::string boot_id;
  std::string pid_namespace;
  std::int64_t start_ticks = 0;
};

// nullopt when `text` is not a holder of either form.
std::optional<Holder> parse_holder(const std::string& text);
std::string format_holder(const Holder& holder);

// This process, with `nonce`.
Holder this_process(const std::string& nonce);

// When process `pid` (as this process sees pids) started, in clock ticks
// after boot; nullopt when there is no such process or /proc cannot be read.
std::optional<std::int64_t> process_start_ticks(long pid);

// Whether `theirs` is surely gone, judged by `mine` (this process). Only a
// process this one can see is judged: one of this host, this boot and this
// pid namespace, whose pid is free or now another process's (another start
// time), or this very pid under another nonce. A holder of an earlier boot
// of this host is gone too. Another host or another pid namespace (a
// container with its own pids, the same numbers meaning other processes) is
// never judged gone: its lease tells. A holder of the older form is judged
// by host and pid alone, as before.
bool holder_is_gone(const Holder& theirs, const Holder& mine);

} // namespace scrapekeep::store
