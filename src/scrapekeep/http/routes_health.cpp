// GET /healthz: liveness and database reachability, no auth.

#include "scrapekeep/http/server.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

Outcome healthz(RouteContext& ctx) {
  auto version = ctx.store.schema_version();
  if (!version) {
    return from_store_error(version.error());
  }
  return Reply{200, Json{{"status", "ok"}, {"database", "ok"}, {"version", SCRAPEKEEP_VERSION}},
               true};
}

} // namespace

void add_health_routes(Router& router) { router.add("GET", "/healthz", false, healthz); }

} // namespace scrapekeep::http
