// scrapekeep keys create|list|revoke

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/random.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/scrape/page_encoding.hpp"
#include "scrapekeep/store/migrations.hpp"

namespace scrapekeep::cli {

namespace {

// An organization's name is a label in keys list's rows and log lines, not a
// document.
constexpr std::size_t k_max_org_bytes = 200;

struct KeysOptions {
  std::string db = "scrapekeep.db";
  std::string org;
  std::string key_id;
};

int create_key(const KeysOptions& o) {
  // A key made in a new database (a mistyped path) is no key the server
  // knows: said before the key, which stays the last line.
  // An empty file is no database either, as worker and inspect read it.
  std::error_code error;
  const std::string file = store::uri_file(o.db);
  const bool existed = (std::filesystem::exists(file, error) &&
                        !(std::filesystem::is_regular_file(file, error) &&
                          std::filesystem::file_size(file, error) == 0)) ||
                       error;
  auto store = open_store_or_report(store::StoreConfig{.path = o.db});
  if (!store) {
    return 1;
  }
  if (!existed) {
    std::cout << "Created a new database, " << core::printable(o.db)
              << " (there was none at that path)\n";
  }
  auto key = store->create_key(o.org, core::SystemClock().now());
  if (!key) {
    return fail("cannot create key: " + key.error().message);
  }
  return show_new_key(*store, *key, o.org);
}

int list_keys(const KeysOptions& o) {
  // Read as inspect reads: a file it cannot write (or in a folder it cannot) lists too.
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  auto keys = history->keys();
  if (!keys) {
    return fail(keys.error().message);
  }
  // Up to 40 characters wide: one long name pushes its own row out, not
  // every row (names may be 200 bytes).
  std::size_t org_width = 3;
  for (const auto& k : *keys) {
    org_width = std::max(org_width, core::utf8_length(core::printable(k.org_name)));
  }
  org_width = std::min<std::size_t>(org_width, 40);
  // A damaged file's names and ids are shown printable, as inspect shows them.
  const auto row = [&](const std::string& id, const std::string& org, const std::string& created,
                       const std::string& status) {
    std::cout << core::pad(core::printable(id), 20) << "  "
              << core::pad(core::printable(org), org_width) << "  " << core::pad(created, 32)
              << "  " << status << "\n";
  };
  row("KEY_ID", "ORG", "CREATED", "STATUS");
  for (const auto& k : *keys) {
    row(k.key_id, k.org_name, core::format_timestamp(k.created_at),
        k.revoked_at ? "revoked " + core::format_timestamp(*k.revoked_at) : "active");
  }
  return 0;
}

int revoke_key(const KeysOptions& o) {
  // Never created, so that a mistyped path leaves no new database behind
  // ("database file does not exist", as every command says).
  auto store = open_store_or_report(store::StoreConfig{.path = o.db, .create = false});
  if (!store) {
    return 1;
  }
  auto before = store->revoke_key(o.key_id, core::SystemClock().now());
  if (!before) {
    return fail(before.error().message);
  }
  if (*before) {
    std::cout << core::printable(o.key_id) << " was revoked already, at "
              << core::format_timestamp(**before) << "\n";
  } else {
    std::cout << "Revoked " << core::printable(o.key_id) << "\n";
  }
  return 0;
}

} // namespace

void add_keys_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<KeysOptions>();
  auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys");
  keys->require_subcommand(1);

  auto* create = keys->add_subcommand("create", "Create a key; prints it once, as the last line");
  add_path_option(*create, "--db", opts->db, "Database file")->required();
  create->add_option("--org", opts->org, "Organization the key belongs to")
      ->required()
      // Trimmed, so that ' acme ' is acme; a control character (a tab, a
      // newline) would break keys list's rows.
      ->transform(CLI::Validator(
          [](std::string& name) -> std::string {
            name = core::trim_ascii(name);
            if (name.empty()) {
              return "the organization name must not be empty";
            }
            // `keys create --org --db x.db` took the option for the name.
            if (name.rfind("--", 0) == 0) {
              return "the organization name must not begin with --, as options do";
            }
            if (name.size() > k_max_org_bytes) {
              return "the organization name must be at most " + std::to_string(k_max_org_bytes) +
                     " bytes";
            }
            if (scrape::valid_utf8_prefix(name) != name.size()) {
              return "the organization name must be UTF-8 text";
            }
            return core::has_control_char(name)
                       ? "the organization name must not contain control characters"
                       : "";
          },
          "NAME"));
  create->callback([&action, opts] { action = [opts] { return create_key(*opts); }; });

  auto* list = keys->add_subcommand("list", "List keys (never the keys themselves)");
  add_path_option(*list, "--db", opts->db, "Database file")->required();
  list->callback([&action, opts] { action = [opts] { return list_keys(*opts); }; });

  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by its id");
  add_path_option(*revoke, "--db", opts->db, "Database file")->required();
  revoke->add_option("KEY_ID", opts->key_id, "Id shown by keys list")
      ->required()
      // A key given in its place is not echoed back in the error.
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            if (core::trim_ascii(text).empty()) {
              return "must be a key id, not empty or blank";
            }
            return core::contains_api_key(text)
                       ? "that is an API key, not its id: give the KEY_ID that keys list shows"
                       : "";
          },
          "KEY_ID"));
  revoke->callback([&action, opts] { action = [opts] { return revoke_key(*opts); }; });
}

} // namespace scrapekeep::cli
