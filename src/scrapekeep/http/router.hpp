#pragma once
// The route table: method + path template ("/v1/scrape/jobs/{job_id}") ->
// handler. Matching is by path segments; `{name}` matches one segment.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "scrapekeep/http/api_error.hpp"
#include "scrapekeep/store/store_pool.hpp"

namespace httplib {
struct Request;
}

namespace scrapekeep::http {

struct ServerConfig;

// What a handler sees.
struct RouteContext {
  const httplib::Request& request;
  const std::string& body;          // the request body, read within the size limit
  std::vector<std::string> params;  // `{...}` segments, in order
  store::JobStore& store;
  store::StorePool::Lease& lease;   // the connection `store` is on
  core::Micros now;                 // read once per request
  std::int64_t org_id = 0;          // the caller's organization (auth routes)
  const ServerConfig& config;
};

// A success: status and the `data` of the envelope.
struct Reply {
  int status = 200;
  Json data;
  // Also copies data's fields to the top level (for /healthz probes that read
  // `status` without unwrapping the envelope).
  bool mirror_at_top = false;
  // When not empty: `data` already written as JSON text, and `data` unused.
  std::string data_json = {};
};

using Outcome = std::variant<Reply, ApiError>;
using Handler = std::function<Outcome(RouteContext&)>;
// Answers an authenticated route from one store read that also checks the
// caller's `key` (well-formed, not yet looked up); nullopt when that read
// found nothing, and the request then goes the usual way: the key is looked
// up (401s), then `Handler` runs (404s).
using FastHandler = std::function<std::optional<Outcome>(RouteContext&, const std::string& key)>;

struct Route {
  std::string method;
  std::string path;  // template, as in openapi.yaml
  bool needs_auth = true;
  Handler handler;
  FastHandler fast;  // optional, auth routes only
  std::vector<std::string> segments;  // of `path`, split once at add()
};

class Router {
 public:
  void add(std::string method, std::string path, bool needs_auth, Handler handler,
           FastHandler fast = nullptr);

  struct Match {
    const Route* route = nullptr;
    std::vector<std::string> params;
  };
  // The route for (method, path); a 404 or 405 ApiError when there is none.
  std::variant<Match, ApiError> match(std::string_view method, std::string_view path) const;

  const std::vector<Route>& routes() const { return m_routes; }

 private:
  std::vector<Route> m_routes;
};

} // namespace scrapekeep::http
