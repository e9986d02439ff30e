// What the page decoders (page_encoding.cpp, cjk_decoders.cpp,
// single_byte_decoders.cpp) share: the scan of ASCII runs and a writer of
// UTF-8. Internal to scrape/.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace scrapekeep::scrape {

// Where the run of ASCII bytes other than NUL that starts at `b[i]` ends
// (`n` if it lasts to there): 8 bytes a step while it lasts that long.
inline std::size_t ascii_run_end(const unsigned char* b, std::size_t i, std::size_t n) {
  constexpr std::uint64_t k_high = 0x8080808080808080ULL;
  constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, b + i, sizeof word);
    if ((word & k_high) != 0 || ((word - k_ones) & ~word & k_high) != 0) {
      break;
    }
  }
  while (i < n && b[i] != 0 && b[i] < 0x80) {
    ++i;
  }
  return i;
}

// Writes `cp` (a scalar value) as UTF-8 at `out`, which has room for 4
// bytes; where it ends.
inline char* put_utf8(char* out, char32_t cp) {
  if (cp < 0x80) {
    *out++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out++ = static_cast<char>(0xC0 | (cp >> 6));
    *out++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out++ = static_cast<char>(0xE0 | (cp >> 12));
    *out++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out++ = static_cast<char>(0xF0 | (cp >> 18));
    *out++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// UTF-8 written into a string sized ahead, grown when short.
class Utf8Writer {
 public:
  explicit Utf8Writer(std::size_t input_size) : m_text(input_size + input_size / 2 + 64, '\0') {}

  void append_ascii(const unsigned char* bytes, std::size_t count) {
    std::memcpy(room(count), bytes, count);
    m_used += count;
  }

  void append(char32_t cp) { written(put_utf8(room(4), cp)); }

  // Where the next `count` bytes go, written directly; written() then says
  // where they end.
  char* room(std::size_t count) {
    if (m_text.size() - m_used < count) {
      m_text.resize(std::max(2 * m_text.size(), m_used + count));
    }
    return m_text.data() + m_used;
  }
  void written(const char* end) { m_used = static_cast<std::size_t>(end - m_text.data()); }

  std::string take() && {
    m_text.resize(m_used);
    return std::move(m_text);
  }

 private:
  std::string m_text;
  std::size_t m_used = 0;
};

}  // namespace scrapekeep::scrape
