#include "scrapekeep/http/api_error.hpp"

#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::http {

ApiError authentication_required() {
  return {401, "AUTHENTICATION_REQUIRED",
          "an API key is required: send X-API-Key or Authorization: Bearer", nullptr};
}
ApiError invalid_api_key() { return {401, "INVALID_API_KEY", "the API key is not valid", nullptr}; }
ApiError api_key_deactivated() {
  return {401, "API_KEY_DEACTIVATED", "the API key has been revoked", nullptr};
}
ApiError invalid_json(const std::string& message, std::size_t byte_position) {
  return {400, "INVALID_JSON", "the request body is not valid JSON: " + message,
          Json{{"position", byte_position}}};
}
ApiError validation_error(const Json& fields) {
  return {422, "VALIDATION_ERROR", "the request has invalid fields", Json{{"fields", fields}}};
}
ApiError job_not_found() { return {404, "JOB_NOT_FOUND", "job not found", nullptr}; }
ApiError route_not_found() { return {404, "NOT_FOUND", "no such route", nullptr}; }
ApiError method_not_allowed() {
  return {405, "METHOD_NOT_ALLOWED", "method not allowed on this route", nullptr};
}
ApiError payload_too_large(std::size_t limit) {
  return {413, "PAYLOAD_TOO_LARGE",
          "the request body is larger than " + std::to_string(limit) + " bytes",
          Json{{"limit_bytes", limit}}};
}
ApiError internal_error() { return {500, "INTERNAL_ERROR", "internal error", nullptr}; }

ApiError storage_unavailable() {
  // Not the store's message: an open failure names the database file.
  return {503, "STORAGE_UNAVAILABLE",
          "storage is unavailable (busy, full, read-only or missing); retry later",
          Json{{"database", "unavailable"}}};
}

ApiError from_store_error(const core::Error& error, const char* conflict_code) {
  switch (error.code) {
    case core::ErrorCode::not_found:
      return job_not_found();
    case core::ErrorCode::conflict:
      return {409, conflict_code, error.message, nullptr};
    case core::ErrorCode::unavailable:
      return storage_unavailable();
    case core::ErrorCode::invalid_argument:
      return {422, "VALIDATION_ERROR", error.message, nullptr};
    case core::ErrorCode::internal:
      break;
  }
  return internal_error();
}

Json error_body(const ApiError& e, const std::string& trace_id, core::Micros now) {
  return Json{{"success", false},
              {"error",
               Json{{"code", e.code},
                    {"message", e.message},
                    {"type", e.status >= 500 ? "server_error" : "client_error"},
                    {"status", e.status},
                    {"details", e.details},
                    {"trace_id", trace_id},
                    {"timestamp", core::format_timestamp(now)}}}};
}

} // namespace scrapekeep::http
