#pragma once
// The command line: parses arguments and runs one subcommand.

namespace scrapekeep::cli {

// Exit status: 0 success, 1 failure, 2 bad usage.
int run(int argc, char** argv);

} // namespace scrapekeep::cli
