#include "scrapekeep/scrape/cjk_decoders.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "scrapekeep/scrape/decoder_common.hpp"
#include "scrapekeep/scrape/encoding_indexes.hpp"

// Each decoder is the Standard's state machine read over a whole page: where
// the Standard keeps a lead byte and waits for the next, the reader here
// looks ahead at it, and where the Standard "prepends" bytes to the stream
// to read them again, the reader here takes fewer bytes. The end of the page
// inside a character is the Standard's end of queue: one error.

namespace scrapekeep::scrape {
namespace {

constexpr char32_t k_replacement = 0xFFFD;

bool in_range(unsigned char byte, unsigned char low, unsigned char high) {
  return byte >= low && byte <= high;
}

// index's code point for `pointer`, 0 if it has none.
char32_t code_point(std::span<const std::uint16_t> index, std::size_t pointer) {
  return pointer < index.size() ? index[pointer] : 0;
}

char32_t big5_code_point(std::size_t pointer) {
  if (pointer >= indexes::k_big5.size()) {
    return 0;
  }
  const bool plane2 = (indexes::k_big5_plane2[pointer / 64] >> (pointer % 64)) & 1;
  return indexes::k_big5[pointer] + (plane2 ? 0x20000 : 0);
}

// "index gb18030 ranges code point".
char32_t gb18030_ranges_code_point(std::uint32_t pointer) {
  if ((pointer > 39419 && pointer < 189000) || pointer > 1237575) {
    return 0;
  }
  if (pointer == 7457) {
    return 0xE7C7;
  }
  const auto ranges = indexes::k_gb18030_ranges;
  const auto after = std::upper_bound(
      ranges.begin(), ranges.end(), pointer,
      [](std::uint32_t p, const indexes::Gb18030Range& range) { return p < range.pointer; });
  const indexes::Gb18030Range& range = *(after - 1);  // the first range's pointer is 0
  return range.code_point + (pointer - range.pointer);
}

// What a decoder reads at a byte of 0x80 or more: one code point (two for
// Big5's four pairs, `second` then not 0), or U+FFFD for an error, and how
// many bytes it takes.
struct Read {
  char32_t code_point = k_replacement;
  std::size_t length = 1;
  char32_t second = 0;
};

Read error(std::size_t length) {
  return {k_replacement, length};
}

// A sequence of `length` bytes that a byte after it (`next`) shows to be of
// no character: one error, for `next` too unless it is ASCII (then read again).
Read unmapped(std::size_t length, unsigned char next) {
  return error(next < 0x80 ? length : length + 1);
}

// Each reader has the lead at `p[0]` and `left` bytes from it, at least 1.

Read read_shift_jis(const unsigned char* p, std::size_t left) {
  const unsigned char lead = p[0];
  if (lead == 0x80) {
    return {0x80, 1};
  }
  if (in_range(lead, 0xA1, 0xDF)) {
    return {0xFF61 - 0xA1 + char32_t{lead}, 1};
  }
  if (!in_range(lead, 0x81, 0x9F) && !in_range(lead, 0xE0, 0xFC)) {
    return error(1);
  }
  if (left < 2) {
    return error(1);
  }
  const unsigned char byte = p[1];
  if (in_range(byte, 0x40, 0x7E) || in_range(byte, 0x80, 0xFC)) {
    const std::size_t offset = byte < 0x7F ? 0x40 : 0x41;
    const std::size_t lead_offset = lead < 0xA0 ? 0x81 : 0xC1;
    const std::size_t pointer = (lead - lead_offset) * 188 + byte - offset;
    if (pointer >= 8836 && pointer <= 10715) {  // the user-defined rows: Private Use
      return {static_cast<char32_t>(0xE000 - 8836 + pointer), 2};
    }
    if (const char32_t cp = code_point(indexes::k_jis0208, pointer)) {
      return {cp, 2};
    }
  }
  return unmapped(1, byte);
}

Read read_euc_jp(const unsigned char* p, std::size_t left) {
  const unsigned char lead = p[0];
  if (lead != 0x8E && lead != 0x8F && !in_range(lead, 0xA1, 0xFE)) {
    return error(1);
  }
  if (left < 2) {
    return error(1);
  }
  const unsigned char byte = p[1];
  if (lead == 0x8E && in_range(byte, 0xA1, 0xDF)) {  // half-width katakana
    return {0xFF61 - 0xA1 + char32_t{byte}, 2};
  }
  if (lead == 0x8F && in_range(byte, 0xA1, 0xFE)) {  // JIS X 0212: three bytes
    if (left < 3) {
      return error(2);
    }
    const unsigned char third = p[2];
    if (in_range(third, 0xA1, 0xFE)) {
      if (const char32_t cp = code_point(indexes::k_jis0212, (byte - 0xA1) * 94 + third - 0xA1)) {
        return {cp, 3};
      }
    }
    return unmapped(2, third);
  }
  if (in_range(lead, 0xA1, 0xFE) && in_range(byte, 0xA1, 0xFE)) {
    if (const char32_t cp = code_point(indexes::k_jis0208, (lead - 0xA1) * 94 + byte - 0xA1)) {
      return {cp, 2};
    }
  }
  return unmapped(1, byte);
}

// gb18030's, and GBK's (the Standard's GBK decoder is gb18030's).
Read read_gb18030(const unsigned char* p, std::size_t left) {
  const unsigned char lead = p[0];
  if (lead == 0x80) {
    return {0x20AC, 1};
  }
  if (lead == 0xFF) {
    return error(1);
  }
  if (left < 2) {
    return error(1);
  }
  const unsigned char byte = p[1];
  if (in_range(byte, 0x30, 0x39)) {  // four bytes: lead, digit, lead, digit
    if (left < 3) {
      return error(2);
    }
    if (!in_range(p[2], 0x81, 0xFE)) {
      return error(1);  // the digit and the byte after it read again
    }
    if (left < 4) {
      return error(3);
    }
    if (!in_range(p[3], 0x30, 0x39)) {
      return error(1);
    }
    const std::uint32_t pointer =
        (((lead - 0x81) * 10 + byte - 0x30) * 126 + p[2] - 0x81) * 10 + p[3] - 0x30;
    const char32_t cp = gb18030_ranges_code_point(pointer);
    return cp != 0 ? Read{cp, 4} : error(4);
  }
  if (in_range(byte, 0x40, 0x7E) || in_range(byte, 0x80, 0xFE)) {
    const std::size_t offset = byte < 0x7F ? 0x40 : 0x41;
    if (const char32_t cp = code_point(indexes::k_gb18030, (lead - 0x81) * 190 + byte - offset)) {
      return {cp, 2};
    }
  }
  return unmapped(1, byte);
}

Read read_big5(const unsigned char* p, std::size_t left) {
  const unsigned char lead = p[0];
  if (!in_range(lead, 0x81, 0xFE) || left < 2) {
    return error(1);
  }
  const unsigned char byte = p[1];
  if (in_range(byte, 0x40, 0x7E) || in_range(byte, 0xA1, 0xFE)) {
    const std::size_t offset = byte < 0x7F ? 0x40 : 0x62;
    const std::size_t pointer = (lead - 0x81) * 157 + byte - offset;
    switch (pointer) {  // a letter and a combining mark, which the index cannot hold
      case 1133:
        return {0x00CA, 2, 0x0304};
      case 1135:
        return {0x00CA, 2, 0x030C};
      case 1164:
        return {0x00EA, 2, 0x0304};
      case 1166:
        return {0x00EA, 2, 0x030C};
      default:
        break;
    }
    if (const char32_t cp = big5_code_point(pointer)) {
      return {cp, 2};
    }
  }
  return unmapped(1, byte);
}

Read read_euc_kr(const unsigned char* p, std::size_t left) {
  const unsigned char lead = p[0];
  if (!in_range(lead, 0x81, 0xFE) || left < 2) {
    return error(1);
  }
  const unsigned char byte = p[1];
  if (in_range(byte, 0x41, 0xFE)) {
    if (const char32_t cp = code_point(indexes::k_euc_kr, (lead - 0x81) * 190 + byte - 0x41)) {
      return {cp, 2};
    }
  }
  return unmapped(1, byte);
}

// The decoders whose ASCII bytes are always themselves: runs of them are
// copied whole, NUL characters dropped; `read` reads the rest.
template <Read (*read)(const unsigned char*, std::size_t)>
std::string decode_ascii_compatible(std::string_view in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  Utf8Writer out(n);
  std::size_t i = 0;
  while (i < n) {
    if (b[i] == 0) {
      ++i;
    } else if (b[i] < 0x80) {
      const std::size_t end = ascii_run_end(b, i, n);
      out.append_ascii(b + i, end - i);
      i = end;
    } else {
      const Read r = read(b + i, n - i);
      out.append(r.code_point);
      if (r.second != 0) {
        out.append(r.second);
      }
      i += r.length;
    }
  }
  return std::move(out).take();
}

enum class Iso2022JpState { ascii, roman, katakana, lead_byte };

// The state the escape sequence at `p[0]` (ESC) switches to, if it is one
// the Standard's ISO-2022-JP decoder takes.
std::optional<Iso2022JpState> iso_2022_jp_escape(const unsigned char* p, std::size_t left) {
  if (left < 3) {
    return std::nullopt;
  }
  if (p[1] == 0x28 && p[2] == 0x42) {
    return Iso2022JpState::ascii;
  }
  if (p[1] == 0x28 && p[2] == 0x4A) {
    return Iso2022JpState::roman;
  }
  if (p[1] == 0x28 && p[2] == 0x49) {
    return Iso2022JpState::katakana;
  }
  if (p[1] == 0x24 && (p[2] == 0x40 || p[2] == 0x42)) {
    return Iso2022JpState::lead_byte;
  }
  return std::nullopt;
}

bool iso_2022_jp_ascii_text(unsigned char byte) {
  return in_range(byte, 0x01, 0x7F) && byte != 0x0E && byte != 0x0F && byte != 0x1B;
}

// The Standard's ISO-2022-JP decoder. `state` is both its decoder state and
// its output state between characters (they differ only inside an escape
// sequence or a two-byte character, which are read whole here).
std::string decode_iso_2022_jp(std::string_view in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  Utf8Writer out(n);
  auto state = Iso2022JpState::ascii;
  bool escaped = false;  // the output flag: an escape sequence and nothing after it yet
  std::size_t i = 0;
  while (i < n) {
    const unsigned char byte = b[i];
    if (byte == 0x1B) {
      if (const auto next = iso_2022_jp_escape(b + i, n - i)) {
        if (escaped) {
          out.append(k_replacement);  // two escape sequences in a row
        }
        escaped = true;
        state = *next;
        i += 3;
      } else {
        out.append(k_replacement);  // the bytes after ESC are read again
        escaped = false;
        ++i;
      }
      continue;
    }
    escaped = false;
    switch (state) {
      case Iso2022JpState::ascii: {
        const std::size_t start = i;
        while (i < n && iso_2022_jp_ascii_text(b[i])) {
          ++i;
        }
        out.append_ascii(b + start, i - start);
        if (i == start) {
          if (byte != 0) {  // NUL is a character, dropped
            out.append(k_replacement);
          }
          ++i;
        }
        break;
      }
      case Iso2022JpState::roman:
        if (byte == 0x5C) {
          out.append(0x00A5);
        } else if (byte == 0x7E) {
          out.append(0x203E);
        } else if (byte >= 0x80 || byte == 0x0E || byte == 0x0F) {
          out.append(k_replacement);
        } else if (byte != 0) {
          out.append(byte);
        }
        ++i;
        break;
      case Iso2022JpState::katakana:
        out.append(in_range(byte, 0x21, 0x5F) ? 0xFF61 - 0x21 + char32_t{byte} : k_replacement);
        ++i;
        break;
      case Iso2022JpState::lead_byte:
        if (!in_range(byte, 0x21, 0x7E) || i + 1 == n || b[i + 1] == 0x1B) {
          // not a lead, or a lead the page or an escape sequence cuts short
          out.append(k_replacement);
          ++i;
        } else {
          const unsigned char trail = b[i + 1];
          const char32_t cp =
              in_range(trail, 0x21, 0x7E)
                  ? code_point(indexes::k_jis0208, (byte - 0x21) * 94 + trail - 0x21)
                  : 0;
          out.append(cp != 0 ? cp : k_replacement);
          i += 2;
        }
        break;
    }
  }
  return std::move(out).take();
}

}  // namespace

std::optional<std::string> decode_cjk(std::string_view in, std::string_view encoding) {
  if (encoding == "Shift_JIS") {
    return decode_ascii_compatible<read_shift_jis>(in);
  }
  if (encoding == "EUC-JP") {
    return decode_ascii_compatible<read_euc_jp>(in);
  }
  if (encoding == "GBK" || encoding == "gb18030") {
    return decode_ascii_compatible<read_gb18030>(in);
  }
  if (encoding == "Big5") {
    return decode_ascii_compatible<read_big5>(in);
  }
  if (encoding == "EUC-KR") {
    return decode_ascii_compatible<read_euc_kr>(in);
  }
  if (encoding == "ISO-2022-JP") {
    return decode_iso_2022_jp(in);
  }
  return std::nullopt;
}

}  // namespace scrapekeep::scrape
