#pragma once
// Identifiers and secrets from the operating system's random source.

#include <string>

namespace scrapekeep::core {

// `bytes` random bytes from the OS (getrandom), as lowercase hex.
std::string random_hex(size_t bytes);

// "job_" + 24 hex (96 bits).
std::string new_job_id();
// "ak_" + 40 hex (160 bits).
std::string new_api_key();
// True when `text` has the shape of a job id / an API key.
bool looks_like_job_id(const std::string& text);
bool looks_like_api_key(const std::string& text);
// Whether `text` holds what may be (part of) an API key anywhere: "ak_" and 8
// or more hex digits; and `text` with each such run of digits replaced by
// "(not shown)", for messages that repeat what a user typed.
bool contains_api_key(const std::string& text);
std::string without_api_keys(std::string text);

} // namespace scrapekeep::core
