#pragma once
// Translation of SQLite failures into core errors. Internal to store/.

#include <SQLiteCpp/Exception.h>

#include <string>

#include "scrapekeep/core/error.hpp"

namespace scrapekeep::store {

// busy/locked/full/read-only/io/cantopen -> unavailable; constraint -> conflict;
// anything else -> internal. The message never carries SQL or paths.
core::Error translate(const SQLite::Exception& e);

// Runs `fn`, turning SQLite exceptions into errors.
template <typename Fn>
auto guarded(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    return translate(e);
  }
}

} // namespace scrapekeep::store
