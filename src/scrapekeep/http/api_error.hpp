#pragma once
// API errors and the one place that maps them to HTTP statuses and bodies.

#include <string>

#include "scrapekeep/core/error.hpp"
#include "scrapekeep/store/json_codec.hpp"

namespace scrapekeep::http {

using Json = store::Json;

struct ApiError {
  int status = 500;
  std::string code = "INTERNAL_ERROR";
  std::string message = "internal error";
  Json details = nullptr;  // object or null
};

ApiError authentication_required();
ApiError invalid_api_key();
ApiError api_key_deactivated();
ApiError invalid_json(const std::string& message, std::size_t byte_position);
// `fields`: {"name": "why", ...}.
ApiError validation_error(const Json& fields);
ApiError job_not_found();
ApiError route_not_found();
ApiError method_not_allowed();
ApiError payload_too_large(std::size_t limit);
ApiError internal_error();
// 503 STORAGE_UNAVAILABLE, naming no file.
ApiError storage_unavailable();

// A store error as the API reports it. not_found -> JOB_NOT_FOUND;
// conflict -> `conflict_code` (409); unavailable -> STORAGE_UNAVAILABLE (503);
// invalid_argument -> VALIDATION_ERROR; anything else -> INTERNAL_ERROR.
ApiError from_store_error(const core::Error& error, const char* conflict_code = "CONFLICT");

// The error envelope of API.md.
Json error_body(const ApiError& error, const std::string& trace_id, core::Micros now);

} // namespace scrapekeep::http
