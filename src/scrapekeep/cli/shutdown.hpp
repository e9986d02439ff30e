#pragma once
// SIGINT/SIGTERM as an event: block() before starting any thread, then
// wait_for_signal() on one thread.

#include <csignal>

namespace scrapekeep::cli {

// Blocks SIGINT and SIGTERM in the calling thread (threads started later inherit it).
void block_shutdown_signals();
// Waits for SIGINT or SIGTERM; returns the signal number.
int wait_for_shutdown_signal();
// Whether SIGINT or SIGTERM came within `ms` milliseconds (taking it).
bool shutdown_signal_within(long ms);
// Sends SIGTERM to this process (wakes wait_for_shutdown_signal()).
void request_shutdown();

} // namespace scrapekeep::cli
