#pragma once
// Translation of SQLite failures into core errors. Internal to store/.

#include <SQLiteCpp/Exception.h>

#include <nlohmann/json.hpp>

#include <string>

#include "scrapekeep/core/error.hpp"

namespace scrapekeep::store {

// translate()'s message for SQLITE_FULL.
inline constexpr const char* k_disk_full = "database or disk is full";

// busy/locked/full/read-only/io/cantopen -> unavailable; constraint -> conflict;
// anything else -> internal. The message never carries SQL or paths.
core::Error translate(const SQLite::Exception& e);

// The error for a stored JSON value (selectors, fields, detail) that is not
// what this code writes: a damaged or hand-edited row. internal.
core::Error malformed_json();

// Runs `fn`, turning SQLite exceptions, and JSON ones from reading a damaged
// row, into errors.
template <typename Fn>
auto guarded(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    return translate(e);
  } catch (const nlohmann::json::exception&) {
    return malformed_json();
  }
}

} // namespace scrapekeep::store
