#pragma once
// SHA-256 for API keys (only hashes are stored).

#include <string>

namespace scrapekeep::store {

// Lowercase hex SHA-256 of `text`.
std::string sha256_hex(const std::string& text);

// Compares two strings in time that depends only on their lengths.
bool constant_time_equal(const std::string& a, const std::string& b);

} // namespace scrapekeep::store
