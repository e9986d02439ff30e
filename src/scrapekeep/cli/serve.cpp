// scrapekeep serve: the API with built-in scraper workers.

#include <algorithm>
#include <iostream>
#include <memory>
#include <thread>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/cli/shutdown.hpp"
#include "scrapekeep/cli/workforce.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/http/server.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/store/store_pool.hpp"

namespace scrapekeep::cli {

namespace {

struct ServeOptions {
  WorkOptions work;
  std::string listen = "127.0.0.1:8080";
  int workers = 2;
  int threads = 64;
  int max_threads = 512;
};

bool split_listen(const std::string& listen, std::string& host, int& port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return false;
  }
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // Decimal digits only, as every other number on the command line (std::stoi
  // took "+80", " 80" and "-0").
  const std::string digits = listen.substr(colon + 1);
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  long value = 0;
  for (const char c : digits) {
    value = value * 10 + (c - '0');
    if (value > 65535) {
      return false;
    }
  }
  port = static_cast<int>(value);
  return true;
}

int run_serve(const ServeOptions& o) {
  raise_open_file_limit();
  http::ServerConfig server_config;
  if (!split_listen(o.listen, server_config.host, server_config.port)) {
    say("--listen must be HOST:PORT, got " + o.listen + " (see scrapekeep serve --help)");
    return 2;
  }
  server_config.threads = o.threads;
  server_config.max_threads = o.max_threads;
  scrape::init_libxml();
  server_config.xpath_check = scrape::xpath_error;
  // Declared before the workforce, whose threads read it: it outlives them.
  core::SystemClock clock;
  // Set before the server serves its first request (the thread below starts
  // after), and kept until it has stopped.
  std::unique_ptr<Workforce> workforce;
  server_config.after_delete = [&workforce] { workforce->wake_maintenance(); };

  block_shutdown_signals();
  const store::StoreConfig store_config = store_config_for(o.work);
  // Bound before the database is opened (the pool opens none until a
  // request comes): a port in use leaves no new database behind.
  store::StorePool pool(store_config, static_cast<std::size_t>(o.threads));
  http::ApiServer server(server_config, pool, clock);
  auto port = server.bind();
  if (!port) {
    return fail(port.error().message);
  }
  auto store = open_store_or_report(store_config);
  if (!store) {
    return 1;
  }
  auto key_count = store->count_keys();
  if (!key_count) {
    return fail(key_count.error().message);
  }
  if (*key_count == 0) {
    auto key = store->create_key("default", clock.now());
    if (!key) {
      return fail("cannot create the first API key: " + key.error().message);
    }
    if (show_new_key(*store, *key, "default") != 0) {
      return 1;
    }
  }

  workforce = Workforce::start(o.work, o.workers, clock);
  if (!workforce) {
    return 1;
  }
  // An IPv6 address is bracketed in a URL (RFC 3986), so its colons are not the port's.
  const std::string url_host = server_config.host.find(':') == std::string::npos
                                   ? server_config.host
                                   : "[" + server_config.host + "]";
  std::cout << "scrapekeep " << SCRAPEKEEP_VERSION << " serving on http://" << url_host << ":"
            << *port << " (database " << core::printable(o.work.db) << ", " << o.workers
            << (o.workers == 1 ? " worker)\n" : " workers)\n")
            << "Try: curl -s http://" << url_host << ":" << *port << "/healthz" << std::endl;

  std::thread serving([&server] { server.serve(); });
  await_shutdown_signal();
  // Both at once: the server may wait out idle keep-alive connections (up to
  // their 5 s timeout) while the workers give their jobs back.
  std::thread stopping_workers([&workforce] { workforce->stop(); });
  server.stop();
  serving.join();
  stopping_workers.join();
  store->checkpoint();
  return 0;
}

} // namespace

void add_serve_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the API and run built-in scraper workers");
  add_work_options(*cmd, opts->work);
  cmd->add_option("--listen", opts->listen, "Address to listen on, HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--workers", opts->workers, "Built-in scraper workers (0: API only)")
      ->transform(whole_number(0, 64))
      ->capture_default_str();
  cmd->add_option("--threads", opts->threads, "HTTP threads kept ready")
      ->transform(whole_number(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-threads", opts->max_threads,
                  "HTTP threads at most (one per open connection); more connections wait")
      ->transform(whole_number(1, 4096))
      ->capture_default_str();
  cmd->callback([cmd, &action, opts] {
    // Threads kept ready are at most the threads there may be: said when both
    // are given; --max-threads alone lowers the default --threads with it, and
    // --threads alone raises the default --max-threads (--threads 1000).
    if (opts->max_threads < opts->threads) {
      const bool threads_given = cmd->count("--threads") > 0;
      const bool max_given = cmd->count("--max-threads") > 0;
      if (threads_given && max_given) {
        throw CLI::ValidationError("--max-threads", "must be at least --threads (" +
                                                        std::to_string(opts->threads) + "), not " +
                                                        std::to_string(opts->max_threads));
      }
      if (threads_given) {
        opts->max_threads = opts->threads;
      } else {
        opts->threads = opts->max_threads;
      }
    }
    action = [opts] { return run_serve(*opts); };
  });
}


} // namespace scrapekeep::cli
