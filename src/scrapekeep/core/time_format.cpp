#include "scrapekeep/core/time_format.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace scrapekeep::core {

namespace {

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool read_digits(std::string_view s, size_t& pos, size_t count, int& out) {
  if (pos + count > s.size()) {
    return false;
  }
  int v = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  pos += count;
  out = v;
  return true;
}

bool expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

} // namespace

std::string format_timestamp(Micros at) {
  std::int64_t secs = at / k_micros_per_second;
  std::int64_t micros = at % k_micros_per_second;
  if (micros < 0) {
    micros += k_micros_per_second;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  const int year = static_cast<int>(ymd.year());
  if (year >= 0 && year <= 9999) {
    // Digit by digit: snprintf was a tenth of a progress request's CPU.
    char out[32];
    char* p = out;
    const auto put = [&p](std::int64_t value, int width, char after) {
      for (int i = width - 1; i >= 0; --i) {
        p[i] = static_cast<char>('0' + value % 10);
        value /= 10;
      }
      p += width;
      if (after != '\0') {
        *p++ = after;
      }
    };
    put(year, 4, '-');
    put(static_cast<unsigned>(ymd.month()), 2, '-');
    put(static_cast<unsigned>(ymd.day()), 2, 'T');
    put(rem / 3600, 2, ':');
    put((rem % 3600) / 60, 2, ':');
    put(rem % 60, 2, '.');
    put(micros, 6, '\0');
    std::string text(out, static_cast<std::size_t>(p - out));
    text += "+00:00";
    return text;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lld+00:00",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(rem / 3600),
                static_cast<int>((rem % 3600) / 60), static_cast<int>(rem % 60),
                static_cast<long long>(micros));
  return buf;
}

std::optional<Micros> parse_timestamp(std::string_view s) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
      !expect(s, pos, '-') || !read_digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  std::int64_t micros = 0;
  std::int64_t offset_seconds = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') {
      return std::nullopt;
    }
    ++pos;
    if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute)) {
      return std::nullopt;
    }
    if (expect(s, pos, ':') && !read_digits(s, pos, 2, second)) {
      return std::nullopt;
    }
    if (hour > 23 || minute > 59 || second > 60) {
      return std::nullopt;
    }
    if (expect(s, pos, '.')) {
      size_t digits = 0;
      std::int64_t finer = 0;  // 1 once a digit past the microseconds is not 0
      std::int64_t scale = 100000;
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        if (digits < 6) {
          micros += (s[pos] - '0') * scale;
          scale /= 10;
        } else if (s[pos] != '0') {
          finer = 1;
        }
        ++digits;
        ++pos;
      }
      if (digits == 0 || digits > 9) {
        return std::nullopt;
      }
      micros += finer;
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        const int sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        // "+02:00", or "+0200" (strftime's %z) and "+02" as ISO 8601's
        // basic format writes them.
        int oh = 0, om = 0;
        if (!read_digits(s, pos, 2, oh)) {
          return std::nullopt;
        }
        if (pos < s.size()) {
          expect(s, pos, ':');
          if (!read_digits(s, pos, 2, om)) {
            return std::nullopt;
          }
        }
        if (oh > 23 || om > 59) {
          return std::nullopt;
        }
        offset_seconds = sign * (oh * 3600 + om * 60);
      } else {
        return std::nullopt;
      }
    }
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month),
                                            static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return secs * k_micros_per_second + micros;
}

double seconds_2dp(Micros duration) {
  return std::round(static_cast<double>(duration) / 10000.0) / 100.0;
}

double round_1dp(double value) {
  // 100 * (23 / 80) is 28.749999999999996 as a double: an exact half
  // computed that way is taken as the half it is, and rounded away from zero.
  return std::round(value * 10.0 + (value < 0 ? -1e-9 : 1e-9)) / 10.0;
}

Micros clamp_time(Micros at) { return std::clamp(at, k_min_time, k_max_time); }

std::int64_t clamp_count(std::int64_t n) { return std::clamp(n, -k_max_count, k_max_count); }

} // namespace scrapekeep::core
