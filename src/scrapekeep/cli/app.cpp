#include "scrapekeep/cli/app.hpp"

#include <sys/resource.h>

#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string_view>
#include <iostream>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/random.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/store/migrations.hpp"

namespace scrapekeep::cli {

void say(const std::string& line) { std::cerr << "scrapekeep: " << core::printable(line) << "\n"; }

int fail(const std::string& message) {
  say(message);
  return 1;
}

void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

std::unique_ptr<store::JobStore> open_store_or_report(const store::StoreConfig& config) {
  auto opened = store::JobStore::open(config);
  if (!opened) {
    fail(opened.error().message);
    return nullptr;
  }
  return std::move(opened.value());
}

std::string unread_wal_error(const std::string& db, std::uintmax_t wal, const std::string& then) {
  return "the latest transactions, in " + db + "-wal (" + std::to_string(wal) +
         " bytes), cannot be read in a folder that cannot be written: copy the database and its "
         "-wal into a folder that can be, and " + then;
}

int show_new_key(store::JobStore& store, const store::CreatedKey& key, const std::string& org) {
  std::cout << "Created API key " << key.info.key_id << " for organization " << core::printable(org)
            << " (shown once; store it now):\n"
            << key.key << "\n";
  if (std::cout << std::flush) {
    return 0;
  }
  const auto revoked = store.revoke_key(key.info.key_id, core::SystemClock().now());
  return fail("cannot write to standard output: the new API key " +
              (revoked ? "was revoked (" + key.info.key_id + "), since nobody saw it"
                       : "is " + key.info.key_id + ", revoke it: nobody saw it") +
              "; make another with scrapekeep keys create");
}

std::unique_ptr<store::History> open_history_or_report(const std::string& path) {
  auto opened = store::History::open(path);
  if (!opened) {
    fail(opened.error().message);
    return nullptr;
  }
  if (const auto& note = (*opened)->open_note()) {
    say("note: " + *note);
  }
  return std::move(opened.value());
}

store::Synchronous parse_synchronous(const std::string& text) {
  return text == "full" ? store::Synchronous::full : store::Synchronous::normal;
}

CLI::Validator whole_number(long long low, long long high) {
  const std::string range = high == std::numeric_limits<long long>::max()
                                ? "of at least " + std::to_string(low)
                                : "from " + std::to_string(low) + " to " + std::to_string(high);
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        long long n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size() || n < low || n > high) {
          return "must be a whole number " + range + ", not " + text;
        }
        // As read here, in decimal: CLI11 would read "030" as octal 24.
        text = std::to_string(n);
        return std::string();
      },
      high == std::numeric_limits<long long>::max()
          ? "INT>=" + std::to_string(low)
          : "INT in [" + std::to_string(low) + " - " + std::to_string(high) + "]");
}

CLI::Validator at_least_one() { return whole_number(1, std::numeric_limits<long long>::max()); }

CLI::Validator number(double low, double high) {
  std::ostringstream from, in;  // 1 and 3600, not 1.000000
  from << "from " << low << " to " << high;
  in << "NUMBER in [" << low << " - " << high << "]";
  const std::string range = from.str();
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        // Plain decimal only: strtod would also take " 5", "0x10" and "inf".
        double n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
            !(n >= low && n <= high)) {
          return "must be a number " + range + ", not " + text;
        }
        return std::string();
      },
      in.str());
}

// Whether SQLite would open `path` as a database in memory or a temporary
// one, deleted when closed: ":memory:", or a "file:" URI naming no file or
// ":memory:", or whose last mode is memory or last vfs memdb.
static bool names_no_file(const std::string& path) {
  if (path == ":memory:") {
    return true;
  }
  if (path.rfind("file:", 0) != 0) {
    return false;
  }
  const std::string file = store::uri_file(path);
  if (file.empty() || file == ":memory:") {
    return true;
  }
  const std::size_t question = path.find('?');
  if (question == std::string::npos) {
    return false;
  }
  // Parameters as SQLite reads them (sqlite3ParseUri): percent escapes
  // decoded, an escaped `&` or `=` no separator, the rest of a name or value
  // after an escaped NUL ignored, the last of a name given twice taken.
  const std::string query = path.substr(question + 1, path.find('#', question) - question - 1);
  std::string mode;
  std::string vfs;
  std::string name;
  std::string value;
  bool in_value = false;
  bool cut = false;
  const auto take = [&] {
    if (name == "mode") {
      mode = value;
    } else if (name == "vfs") {
      vfs = value;
    }
    name.clear();
    value.clear();
    in_value = false;
    cut = false;
  };
  for (std::size_t i = 0; i < query.size(); ++i) {
    char c = query[i];
    if (const std::optional<char> escaped = core::percent_escape_at(query, i)) {
      c = *escaped;
      i += 2;
      cut = cut || c == '\0';
    } else if (c == '&') {
      take();
      continue;
    } else if (c == '=' && !in_value) {
      in_value = true;
      cut = false;
      continue;
    }
    if (!cut) {
      (in_value ? value : name) += c;
    }
  }
  take();
  return mode == "memory" || vfs == "memdb";
}

CLI::Option* add_path_option(CLI::App& command, const std::string& name, std::string& path,
                             const std::string& description) {
  return command.add_option(name, path, description)
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            if (core::trim_ascii(text).empty()) {
              return "must name a file, not be empty or blank";
            }
            // `migrate --db --help` took the option for a file's name.
            if (text[0] == '-') {
              return "must name a file, not an option (write ./" + text + " for a file so named)";
            }
            // A key made there, or jobs taken there, would be gone at exit.
            return names_no_file(text)
                       ? "must name a file, not SQLite's in-memory or temporary database"
                       : "";
          },
          "PATH"));
}

// CLI11's wording of a few usage errors, said plainly: "--db: At Most 1
// required but received 2", "--at: 1 required TEXT:TIME missing", "A
// subcommand is required".
static std::string plain_words(const std::string& message, const std::string& path) {
  const std::size_t colon = message.find(": ");
  const std::string option = colon == std::string::npos ? "" : message.substr(0, colon);
  const std::string rest = colon == std::string::npos ? message : message.substr(colon + 2);
  if (rest.rfind("At Most 1 required but received ", 0) == 0) {
    return option + " is given more than once";
  }
  if (rest.rfind("1 required ", 0) == 0 && rest.size() > 8 &&
      rest.compare(rest.size() - 8, 8, " missing") == 0) {
    return option + " needs a value";
  }
  if (message == "A subcommand is required") {
    return path == "scrapekeep" ? "no command given" : "no command given to " + path;
  }
  return message;
}

// CLI11 2.1 lists the arguments it did not expect last first ("serve a b
// c": "not expected: c b a"; "migrate --db x --bogus 1": "1 --bogus"): its
// ExtrasError joins them with rjoin. The same list, in the order given.
static std::string in_order(const CLI::ParseError& e, const CLI::App& deepest) {
  const std::string message = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) == nullptr) {
    return message;
  }
  for (const CLI::App* a = &deepest; a != nullptr; a = a->get_parent()) {
    const std::vector<std::string> left = a->remaining(false);
    if (left.empty()) {
      continue;
    }
    const std::string reversed = CLI::detail::rjoin(left, " ");
    if (message.size() >= reversed.size() &&
        message.compare(message.size() - reversed.size(), reversed.size(), reversed) == 0) {
      return message.substr(0, message.size() - reversed.size()) + CLI::detail::join(left, " ");
    }
  }
  return message;
}

int run(int argc, char** argv) {
  CLI::App app{"scrapekeep: a persistent job store for web-scraping jobs", "scrapekeep"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SCRAPEKEEP_VERSION);
  Action action;
  add_serve_command(app, action);
  add_worker_command(app, action);
  add_keys_command(app, action);
  add_inspect_command(app, action);
  add_admin_commands(app, action);
  // A reader that went away (a closed pipe) is a write that fails (EPIPE),
  // reported as a full disk is, not a death by SIGPIPE: that would end
  // `keys create` before it revokes the key nobody saw, and say nothing.
  std::signal(SIGPIPE, SIG_IGN);
  // "--db=" with nothing after it: CLI11 would take the next argument for
  // its value ("migrate --db= --help" made a database called --help).
  // Its help is that of the command named before it, as for other usage errors.
  CLI::App* named = &app;
  std::string path = "scrapekeep";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      break;
    }
    if (arg.size() > 3 && arg.substr(0, 2) == "--" && arg.back() == '=' &&
        arg.find('=') == arg.size() - 1) {
      say(std::string(arg) + " gives no value (see " + path + " --help)");
      return 2;
    }
    const auto subs = named->get_subcommands([&](CLI::App* c) { return c->get_name() == arg; });
    if (!subs.empty()) {
      named = subs.front();
      path += " " + named->get_name();
    }
  }
  // Help and the version are output too: one that cannot be written fails.
  const auto shown = [&app](const CLI::ParseError& e) {
    const int code = app.exit(e);
    return std::cout << std::flush ? code : fail("cannot write to standard output");
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return shown(e);
  } catch (const CLI::CallForAllHelp& e) {
    return shown(e);
  } catch (const CLI::CallForVersion& e) {
    // Read first, before anything else given beside it: said, not ignored.
    if (argc != 2) {
      say("--version takes nothing else (see scrapekeep --help)");
      return 2;
    }
    return shown(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 says "A subcommand is required" for a command it does not know:
    // name it instead.
    const CLI::App* deepest = &app;
    std::string path = "scrapekeep";
    while (!deepest->get_subcommands().empty()) {
      deepest = deepest->get_subcommands().front();
      path += " " + deepest->get_name();
    }
    // An option before the name of the command it belongs to ("keys --db
    // k.db list"): CLI11 says --db is required, or not expected.
    std::vector<const CLI::App*> chain;
    for (const CLI::App* c = &app; !c->get_subcommands().empty();) {
      c = c->get_subcommands().front();
      chain.push_back(c);
    }
    const CLI::App* at = &app;  // the command whose name came last
    std::size_t named = 0;
    for (int i = 1; i < argc && named < chain.size(); ++i) {
      const std::string arg = argv[i];
      const std::string option = arg.substr(0, arg.find('='));
      if (arg == chain[named]->get_name()) {
        at = chain[named++];
      } else if (option.size() > 1 && option.front() == '-' && option != "--" &&
                 at->get_option_no_throw(option) == nullptr &&
                 deepest->get_option_no_throw(option) != nullptr) {
        say(option + " goes after the command's name: " + path + " " + option + " ... (see " +
            path + " --help)");
        return 2;
      }
    }
    const std::vector<std::string> left = deepest->remaining();
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !left.empty() &&
        !left.front().empty() && left.front().front() != '-' &&
        deepest->get_require_subcommand_min() > 0) {
      say("unknown command '" + left.front() + "' for " + path + " (see " + path + " --help)");
      return 2;
    }
    say(plain_words(core::without_api_keys(in_order(e, *deepest)), path) + " (see " + path +
        " --help)");
    return 2;
  }
  if (!action) {
    say("no command given (see scrapekeep --help)");
    return 2;
  }
  int status = 0;
  try {
    status = action();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // What a command printed must have reached its reader: a report written to
  // a full disk or a closed pipe is not a success. serve and worker print
  // only where they run; their status says how they stopped (0 on a signal).
  const bool runs = app.got_subcommand("serve") || app.got_subcommand("worker");
  if (status == 0 && !runs && !(std::cout << std::flush)) {
    return fail("cannot write to standard output");
  }
  return status;
}

} // namespace scrapekeep::cli
