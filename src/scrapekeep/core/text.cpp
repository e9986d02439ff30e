#include "scrapekeep/core/text.hpp"

#include <algorithm>
#include <optional>

namespace scrapekeep::core {

std::string lower_ascii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return text;
}

bool equals_ascii_lower(std::string_view text, std::string_view lower) {
  return text.size() == lower.size() &&
         std::equal(text.begin(), text.end(), lower.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
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

std::vector<std::string> split_trimmed(const std::string& text, char separator) {
  std::vector<std::string> items;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(separator, start), text.size());
    items.push_back(trim_ascii(text.substr(start, end - start)));
    start = end + 1;
  }
  return items;
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

Utf8Sequence utf8_sequence(const unsigned char* b, std::size_t i, std::size_t n) {
  const unsigned char c = b[i];
  std::size_t need = 0;
  unsigned char lower = 0x80;
  unsigned char upper = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    lower = c == 0xE0 ? 0xA0 : lower;
    upper = c == 0xED ? 0x9F : upper;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    lower = c == 0xF0 ? 0x90 : lower;
    upper = c == 0xF4 ? 0x8F : upper;
  } else {
    return {1, false};
  }
  std::size_t j = i + 1;
  for (std::size_t seen = 0; seen < need; ++seen, ++j) {
    if (j >= n || b[j] < lower || b[j] > upper) {
      return {j - i, false};
    }
    lower = 0x80;
    upper = 0xBF;
  }
  return {j - i, true};
}

namespace {

// Whether the code point of a valid sequence is a C1 control (U+0080..U+009F)
// or a bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A..U+202E, U+2066..U+2069); its number if so.
std::optional<unsigned> unprintable_code_point(const unsigned char* b, std::size_t length) {
  if (length == 2 && b[0] == 0xC2 && b[1] <= 0x9F) {
    return b[1];
  }
  if (length == 2 && b[0] == 0xD8 && b[1] == 0x9C) {
    return 0x061C;  // ARABIC LETTER MARK
  }
  if (length == 3 && b[0] == 0xE2 && (b[1] == 0x80 || b[1] == 0x81)) {
    const unsigned cp = 0x2000u + ((b[1] & 0x3Fu) << 6) + (b[2] & 0x3Fu);
    if (cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
        (cp >= 0x2066 && cp <= 0x2069)) {
      return cp;
    }
  }
  return std::nullopt;
}

void append_hex(std::string& out, unsigned value, int digits) {
  static const char* const k_digits = "0123456789ABCDEF";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
    out += k_digits[(value >> shift) & 15];
  }
}

} // namespace

std::string printable(std::string_view text) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n;) {
    if (b[i] >= 0x20 && b[i] < 0x7F) {
      out += static_cast<char>(b[i++]);
      continue;
    }
    const Utf8Sequence seq = b[i] < 0x80 ? Utf8Sequence{1, false} : utf8_sequence(b, i, n);
    if (!seq.valid) {
      out += "\\x";
      append_hex(out, b[i], 2);
      ++i;  // the byte that broke a sequence is read again
      continue;
    }
    if (const auto cp = unprintable_code_point(b + i, seq.length)) {
      out += "\\u";
      append_hex(out, *cp, 4);
    } else {
      out.append(text.substr(i, seq.length));
    }
    i += seq.length;
  }
  return out;
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

std::string without_url_passwords(std::string text) {
  for (std::size_t at = text.find("://"); at != std::string::npos; at = text.find("://", at + 3)) {
    const std::size_t start = at + 3;
    // Its authority ends at the path, query or fragment (or the line's next
    // space); not at ')', which a password may hold as written.
    const std::size_t end = std::min(text.find_first_of("/?# \t\r\n", start), text.size());
    const std::size_t sign = text.rfind('@', end == 0 ? 0 : end - 1);
    if (sign == std::string::npos || sign < start || sign >= end) {
      continue;
    }
    const std::size_t colon = text.find(':', start);
    if (colon != std::string::npos && colon < sign) {
      text.replace(colon + 1, sign - colon - 1, "***");
    }
  }
  return text;
}

std::optional<char> percent_escape_at(std::string_view text, std::size_t at) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    c = static_cast<char>(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (at + 2 >= text.size() || text[at] != '%' || hex(text[at + 1]) < 0 || hex(text[at + 2]) < 0) {
    return std::nullopt;
  }
  return static_cast<char>(hex(text[at + 1]) * 16 + hex(text[at + 2]));
}

} // namespace scrapekeep::core
