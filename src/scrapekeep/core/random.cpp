#include "scrapekeep/core/random.hpp"

#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <utility>
#include <vector>

namespace scrapekeep::core {

namespace {

bool is_hex_tail(const std::string& text, size_t prefix, size_t hex_chars) {
  if (text.size() != prefix + hex_chars) {
    return false;
  }
  for (size_t i = prefix; i < text.size(); ++i) {
    const char c = text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  size_t filled = 0;
  while (filled < bytes) {
    const ssize_t n = getrandom(buf.data() + filled, bytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::runtime_error("getrandom failed");
    }
    filled += static_cast<size_t>(n);
  }
  static const char* k_hex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char b : buf) {
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 15]);
  }
  return out;
}

std::string new_job_id() { return "job_" + random_hex(12); }
std::string new_api_key() { return "ak_" + random_hex(20); }

bool looks_like_job_id(const std::string& text) {
  return text.rfind("job_", 0) == 0 && is_hex_tail(text, 4, 24);
}
bool looks_like_api_key(const std::string& text) {
  return text.rfind("ak_", 0) == 0 && is_hex_tail(text, 3, 40);
}

namespace {

constexpr std::size_t k_min_key_digits = 8;

// The digits of each "ak_" + 8 or more hex digits in `text`: [first, last).
template <typename F>
void each_key_run(const std::string& text, F f) {
  for (std::size_t at = text.find("ak_"); at != std::string::npos; at = text.find("ak_", at + 3)) {
    std::size_t end = at + 3;
    while (end < text.size() && std::isxdigit(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end - (at + 3) >= k_min_key_digits) {
      f(at + 3, end);
    }
  }
}

}  // namespace

bool contains_api_key(const std::string& text) {
  bool found = false;
  each_key_run(text, [&](std::size_t, std::size_t) { found = true; });
  return found;
}

std::string without_api_keys(std::string text) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  each_key_run(text, [&](std::size_t first, std::size_t last) { runs.emplace_back(first, last); });
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    text.replace(it->first, it->second - it->first, "(not shown)");
  }
  return text;
}

} // namespace scrapekeep::core
