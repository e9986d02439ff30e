#pragma once
// How subcommands plug into the command line: each registers its CLI11
// subcommand and, when chosen, sets the action that main runs.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "scrapekeep/store/history.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::cli {

// What runs once arguments are parsed; returns the exit status.
using Action = std::function<int()>;

void add_serve_command(CLI::App& app, Action& action);
void add_worker_command(CLI::App& app, Action& action);
void add_keys_command(CLI::App& app, Action& action);
void add_inspect_command(CLI::App& app, Action& action);
void add_admin_commands(CLI::App& app, Action& action);  // migrate, backup, cancel

// Prints "scrapekeep: <line>" to stderr, made printable (core::printable):
// a path, a job id or an argument typed with a line break or an escape
// sequence in it stays one line, and plays nothing on the terminal.
void say(const std::string& line);

// say(message); returns 1.
int fail(const std::string& message);

// Raises this process's limit of open files to the most it may have (its
// hard limit): each connection, and each database connection (two files),
// takes one or more, and a common default of 1024 ran out at about 340
// clients, each then answered 503 as if the database were unavailable.
void raise_open_file_limit();

// Opens the store or prints why not (nullptr then).
std::unique_ptr<store::JobStore> open_store_or_report(const store::StoreConfig& config);

// Opens `path` read-only as inspect reads it (store::History::open); prints
// the error, or a note on how it was opened, to stderr.
std::unique_ptr<store::History> open_history_or_report(const std::string& path);

// Why a database whose latest transactions are in a -wal of `wal` bytes that
// cannot be read (a folder that cannot be written) is not vouched for:
// "the latest transactions, in DB-wal (N bytes), cannot be read in ...:
// copy ..., and <then>".
std::string unread_wal_error(const std::string& db, std::uintmax_t wal, const std::string& then);

// Prints a key just created for `org` on stdout, its key last ("shown once;
// store it now"). When it cannot be written (a full disk, a closed stdout)
// nobody has seen it: it is revoked, the error printed, and 1 returned;
// else 0.
int show_new_key(store::JobStore& store, const store::CreatedKey& key, const std::string& org);

// Validator for --synchronous.
store::Synchronous parse_synchronous(const std::string& text);

// Validators of a whole number in low..high ("--workers: must be a whole
// number from 0 to 64, not abc"; CLI11's Range says "Value abc not in range",
// and its PositiveNumber prints a range up to DBL_MAX), of one of at least 1,
// and of any number in low..high. The whole-number ones are given with
// Option::transform: they hand CLI11 the number in decimal ("010" is 10,
// not octal 8), which Option::check would not let them do.
CLI::Validator whole_number(long long low, long long high);
CLI::Validator at_least_one();
CLI::Validator number(double low, double high);

// Adds an option naming a file (--db, --to): an empty or blank value is bad
// usage ("--to: must name a file, not be empty or blank"), not a path SQLite
// would take for a temporary database or a file named " ", and so are
// ":memory:" and "file:" URIs SQLite opens in memory or as a temporary file.
CLI::Option* add_path_option(CLI::App& command, const std::string& name, std::string& path,
                             const std::string& description);

} // namespace scrapekeep::cli
