// GET /healthz: liveness and database reachability, no auth.

#include "scrapekeep/http/server.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

// 503 STORAGE_UNAVAILABLE with details {"database": "unavailable"} when the
// database cannot be read, or its file was removed underneath the server.
Outcome healthz(RouteContext& ctx) {
  core::Status file = ctx.store.check_file();
  auto version = file ? ctx.store.schema_version() : core::Result<std::int64_t>(file.error());
  if (!version) {
    // A file no longer one scrapekeep can read (a table, trigger or index
    // changed under the server) is a database that cannot be read, not a
    // bad request: invalid_argument would be 422 VALIDATION_ERROR.
    if (version.error().code == core::ErrorCode::invalid_argument) {
      return storage_unavailable();
    }
    return from_store_error(version.error());
  }
  return Reply{200, Json{{"status", "ok"}, {"database", "ok"}, {"version", SCRAPEKEEP_VERSION}},
               true};
}

} // namespace

void add_health_routes(Router& router) { router.add("GET", "/healthz", false, healthz); }

} // namespace scrapekeep::http
