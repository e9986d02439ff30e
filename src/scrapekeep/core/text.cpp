#include "scrapekeep/core/text.hpp"

#include <algorithm>

namespace scrapekeep::core {

std::string lower_ascii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return text;
}

bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

std::string trim_ascii(const std::string& text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_ascii_space(static_cast<unsigned char>(text[begin]))) {
    ++begin;
  }
  while (end > begin && is_ascii_space(static_cast<unsigned char>(text[end - 1]))) {
    --end;
  }
  return text.substr(begin, end - begin);
}

std::size_t utf8_length(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string pad(const std::string& text, std::size_t width, bool right) {
  const std::size_t length = utf8_length(text);
  if (length >= width) {
    return text;
  }
  const std::string fill(width - length, ' ');
  return right ? fill + text : text + fill;
}

void append_percent_encoded(std::string& out, unsigned char byte) {
  static const char* const k_hex = "0123456789ABCDEF";
  out += '%';
  out += k_hex[byte >> 4];
  out += k_hex[byte & 0x0F];
}

std::size_t http_scheme_length(const std::string& url) {
  const std::string scheme = lower_ascii(url.substr(0, 8));
  if (scheme.rfind("http://", 0) == 0) {
    return 7;
  }
  return scheme.rfind("https://", 0) == 0 ? 8 : 0;
}

bool has_control_char(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    // U+0080..U+009F are C2 80..C2 9F in UTF-8.
    if (u < 0x20 || u == 0x7f ||
        (u == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9f)) {
      return true;
    }
  }
  return false;
}

std::string group_digits(std::int64_t n) {
  // The magnitude in unsigned arithmetic: -n overflows for INT64_MIN.
  const std::uint64_t magnitude =
      n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
  const std::string digits = std::to_string(magnitude);
  std::string out = n < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return out;
}

} // namespace scrapekeep::core
