// ceiling_server: the library's ceiling for the progress benchmark. A bare
// cpp-httplib server, configured like `scrapekeep serve` (thread pool, keep-alive
// limits), that answers every GET with a constant JSON body of a given size and
// the same headers the API sends. Stops by itself after --seconds.
//
//   ceiling_server --port P --body-bytes N [--threads 64] [--nodelay 1]
//                  [--keep-alive-max 100000] [--seconds 600] [--io library|scrapekeep]
//
// --io scrapekeep: the connections go through scrapekeep's own socket I/O
// (http::BoundedServer, as serve's do) instead of the library's, so that the
// cost of that I/O and the cost of the API can be told apart.
//
// Prints "listening on PORT" once bound (port 0: any free port).

#include <httplib.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <memory>
#include <thread>

#include "scrapekeep/http/connection.hpp"

namespace {

struct Options {
  int port = 0;
  int body_bytes = 512;
  int threads = 64;
  bool nodelay = true;
  int keep_alive_max = 100000;
  int seconds = 600;
  bool own_io = false;
};

Options parse(int argc, char** argv) {
  Options o;
  std::string io = "library";
  CLI::App app("A bare server answering every GET with the same JSON body", "ceiling_server");
  app.add_option("--port", o.port)->capture_default_str();
  app.add_option("--body-bytes", o.body_bytes)->capture_default_str();
  app.add_option("--threads", o.threads)->capture_default_str();
  app.add_option("--nodelay", o.nodelay, "0 or 1")->capture_default_str();
  app.add_option("--keep-alive-max", o.keep_alive_max)->capture_default_str();
  app.add_option("--seconds", o.seconds)->capture_default_str();
  app.add_option("--io", io)
      ->check(CLI::IsMember({"library", "scrapekeep"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  o.own_io = io == "scrapekeep";
  return o;
}

} // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  // A JSON object of exactly body_bytes bytes.
  std::string body = "{\"success\":true,\"data\":{\"pad\":\"";
  const std::string tail = "\"}}";
  if (static_cast<int>(body.size() + tail.size()) < o.body_bytes) {
    body.append(static_cast<size_t>(o.body_bytes) - body.size() - tail.size(), 'x');
  }
  body += tail;
  const std::string request_id = "req_000000000000000000000000";

  std::unique_ptr<httplib::Server> server =
      o.own_io ? std::make_unique<scrapekeep::http::BoundedServer>(
                     scrapekeep::net::HeadLimits{8192, 8192, 65536, std::chrono::seconds(30), true},
                     [](scrapekeep::net::HeadResult) {
                       return std::string("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                     })
               : std::make_unique<httplib::Server>();
  httplib::Server& svr = *server;
  const int threads = o.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_tcp_nodelay(o.nodelay);
  svr.set_keep_alive_max_count(static_cast<size_t>(o.keep_alive_max));
  svr.set_keep_alive_timeout(5);
  svr.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Request-Id", request_id);
    res.set_content(body, "application/json");
  });
  const int port = o.port == 0 ? svr.bind_to_any_port("127.0.0.1")
                               : (svr.bind_to_port("127.0.0.1", o.port) ? o.port : -1);
  if (port < 0) {
    std::cerr << "ceiling_server: cannot bind 127.0.0.1:" << o.port << "\n";
    return 1;
  }
  std::cout << "listening on " << port << std::endl;
  std::thread stopper([&svr, &o] {
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    svr.stop();
  });
  stopper.detach();
  svr.listen_after_bind();
  return 0;
}
