#include "scrapekeep/scrape/single_byte_decoders.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "scrapekeep/scrape/decoder_common.hpp"
#include "scrapekeep/scrape/encoding_indexes.hpp"

namespace scrapekeep::scrape {
namespace {

// A byte's character as UTF-8 (3 bytes at most: the indexes are of the BMP),
// and how many of its bytes count: none for NUL, which decoded pages lose.
struct Utf8Char {
  std::array<char, 3> bytes{};
  std::uint8_t length = 0;
};

// What each byte of an encoding reads as.
using ByteTable = std::array<Utf8Char, 256>;

// The table of a decoder whose bytes 0x80-0xFF are `high` (0: no code point).
ByteTable table_of(const std::array<std::uint16_t, 128>& high) {
  ByteTable table;
  for (std::size_t b = 1; b < 256; ++b) {
    char32_t cp = static_cast<char32_t>(b);
    if (b >= 0x80) {
      cp = high[b - 0x80] != 0 ? high[b - 0x80] : 0xFFFD;
    }
    Utf8Char& c = table[b];
    std::array<char, 4> text{};
    c.length = static_cast<std::uint8_t>(put_utf8(text.data(), cp) - text.data());
    std::memcpy(c.bytes.data(), text.data(), c.bytes.size());
  }
  return table;
}

struct Tables {
  std::vector<ByteTable> single_byte;  // as indexes::k_single_byte
  ByteTable x_user_defined;
};

// Every decoder's table, made on the first page in any of them.
const Tables& tables() {
  static const Tables made = [] {
    Tables t;
    for (const indexes::SingleByteIndex& index : indexes::k_single_byte) {
      t.single_byte.push_back(table_of(index.code_points));
    }
    std::array<std::uint16_t, 128> user_defined{};
    for (std::size_t i = 0; i < user_defined.size(); ++i) {
      user_defined[i] = static_cast<std::uint16_t>(0xF780 + i);
    }
    t.x_user_defined = table_of(user_defined);
    return t;
  }();
  return made;
}

const ByteTable* table_for(std::string_view encoding) {
  if (encoding == "x-user-defined") {
    return &tables().x_user_defined;
  }
  const indexes::SingleByteIndex* index = indexes::single_byte_index(encoding);
  if (index == nullptr) {
    return nullptr;
  }
  return &tables().single_byte[static_cast<std::size_t>(index - indexes::k_single_byte.data())];
}

// `in` read a byte at a time through `table`, runs of ASCII copied whole.
std::string decode_by_table(std::string_view in, const ByteTable& table) {
  constexpr std::size_t k_chunk = 4096;  // input bytes read between checks for room
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  Utf8Writer out(n);
  for (std::size_t i = 0; i < n;) {
    const std::size_t end = std::min(n, i + k_chunk);
    char* dst = out.room(3 * (end - i));  // a byte writes 3 at most
    while (i < end) {
      if (b[i] != 0 && b[i] < 0x80) {
        const std::size_t run_end = ascii_run_end(b, i, end);
        std::memcpy(dst, b + i, run_end - i);
        dst += run_end - i;
        i = run_end;
        continue;
      }
      const Utf8Char& c = table[b[i++]];
      std::memcpy(dst, c.bytes.data(), c.bytes.size());
      dst += c.length;
    }
    out.written(dst);
  }
  return std::move(out).take();
}

}  // namespace

bool is_single_byte(std::string_view encoding) { return table_for(encoding) != nullptr; }

std::optional<unsigned char> encode_single_byte(std::string_view character,
                                                std::string_view encoding) {
  const ByteTable* table = table_for(encoding);
  if (table == nullptr || character.empty() || character.size() > 3 ||
      character == "\xEF\xBF\xBD") {  // U+FFFD: what bytes without a character read as
    return std::nullopt;
  }
  for (std::size_t b = 0x80; b < 256; ++b) {
    const Utf8Char& c = (*table)[b];
    if (c.length == character.size() &&
        std::memcmp(c.bytes.data(), character.data(), character.size()) == 0) {
      return static_cast<unsigned char>(b);
    }
  }
  return std::nullopt;
}

std::optional<std::string> decode_single_byte(std::string_view in, std::string_view encoding) {
  const ByteTable* table = table_for(encoding);
  if (table == nullptr) {
    return std::nullopt;
  }
  return decode_by_table(in, *table);
}

}  // namespace scrapekeep::scrape
