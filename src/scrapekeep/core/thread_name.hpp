#pragma once
// Names the calling thread (at most 15 bytes; longer names are cut), so that
// `top -H`, `ps -L`, gdb and perf tell a process's threads apart.

#include <string>

namespace scrapekeep::core {

void name_this_thread(const std::string& name);

} // namespace scrapekeep::core
