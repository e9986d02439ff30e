#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "scrapekeep/scrape/encoding_indexes.hpp"
#include "scrapekeep/scrape/single_byte_decoders.hpp"

// Expected code points are the code-page charts', each checked by hand
// against the Encoding Standard's index of its encoding (the copy in the npm
// package @kayahr/text-encoding 2.2.0, data/*.cp.js, that the generated
// tables come from).

using scrapekeep::scrape::decode_single_byte;
namespace indexes = scrapekeep::scrape::indexes;

namespace {

const std::string k_fffd = "\xEF\xBF\xBD";

// `cp` (of the BMP) as UTF-8, written here apart from the decoder's writer.
std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string decode(const std::string& bytes, const std::string& encoding) {
  return decode_single_byte(bytes, encoding).value_or("(not a single-byte encoding)");
}

// An encoding's chart: how many of its bytes 0x80-0xFF have no character,
// and some bytes with the code point the chart gives them (0: none).
struct Chart {
  const char* encoding;
  std::size_t undefined;
  std::vector<std::pair<unsigned char, char32_t>> bytes;
};

// The 28 single-byte encodings, in the Standard's order.
const std::vector<Chart> k_charts = {
    {"IBM866", 0, {{0x80, 0x0410}, {0xAF, 0x043F}, {0xF0, 0x0401}, {0xFF, 0x00A0}}},
    {"ISO-8859-2", 0, {{0xA1, 0x0104}, {0xB1, 0x0105}, {0xC8, 0x010C}, {0xFF, 0x02D9}}},
    {"ISO-8859-3", 7, {{0xA1, 0x0126}, {0xC5, 0x010A}, {0xFE, 0x015D}, {0xA5, 0}}},
    {"ISO-8859-4", 0, {{0xA1, 0x0104}, {0xA2, 0x0138}, {0xC0, 0x0100}, {0xFF, 0x02D9}}},
    {"ISO-8859-5", 0, {{0xA1, 0x0401}, {0xB0, 0x0410}, {0xF0, 0x2116}, {0xFF, 0x045F}}},
    {"ISO-8859-6", 45, {{0xAC, 0x060C}, {0xC1, 0x0621}, {0xE0, 0x0640}, {0xC0, 0}}},
    {"ISO-8859-7", 3, {{0xA1, 0x2018}, {0xA4, 0x20AC}, {0xC1, 0x0391}, {0xE1, 0x03B1}, {0xAE, 0}}},
    {"ISO-8859-8", 36, {{0xAA, 0x00D7}, {0xE0, 0x05D0}, {0xFA, 0x05EA}, {0xFD, 0x200E}, {0xBF, 0}}},
    {"ISO-8859-8-I", 36, {{0xAA, 0x00D7}, {0xE0, 0x05D0}, {0xFA, 0x05EA}, {0xFD, 0x200E}}},
    {"ISO-8859-10", 0, {{0xA1, 0x0104}, {0xBD, 0x2015}, {0xFF, 0x0138}}},
    {"ISO-8859-13", 0, {{0xA1, 0x201D}, {0xC0, 0x0104}, {0xFF, 0x2019}}},
    {"ISO-8859-14", 0, {{0xA1, 0x1E02}, {0xD0, 0x0174}, {0xFE, 0x0177}}},
    {"ISO-8859-15", 0, {{0xA4, 0x20AC}, {0xA6, 0x0160}, {0xBC, 0x0152}, {0xBE, 0x0178}}},
    {"ISO-8859-16", 0, {{0xA1, 0x0104}, {0xA4, 0x20AC}, {0xAA, 0x0218}, {0xDE, 0x021A}}},
    {"KOI8-R", 0, {{0x80, 0x2500}, {0xAE, 0x255D}, {0xC1, 0x0430}, {0xE1, 0x0410}, {0xFF, 0x042A}}},
    {"KOI8-U", 0, {{0xA4, 0x0454}, {0xA6, 0x0456}, {0xAD, 0x0491}, {0xAE, 0x045E}, {0xBE, 0x040E}}},
    {"macintosh", 0, {{0x80, 0x00C4}, {0xA5, 0x2022}, {0xDB, 0x20AC}, {0xF0, 0xF8FF}}},
    {"windows-874", 8, {{0x80, 0x20AC}, {0xA1, 0x0E01}, {0xDF, 0x0E3F}, {0xDB, 0}}},
    {"windows-1250", 0, {{0x81, 0x0081}, {0x8A, 0x0160}, {0xA5, 0x0104}, {0xE8, 0x010D}}},
    {"windows-1251",
     0,
     {{0x80, 0x0402}, {0x98, 0x0098}, {0xA8, 0x0401}, {0xC0, 0x0410}, {0xFF, 0x044F}}},
    {"windows-1252", 0, {{0x80, 0x20AC}, {0x81, 0x0081}, {0x9F, 0x0178}, {0xE9, 0x00E9}}},
    {"windows-1253", 3, {{0xA2, 0x0386}, {0xC1, 0x0391}, {0xF9, 0x03C9}, {0xAA, 0}}},
    {"windows-1254", 0, {{0x8A, 0x0160}, {0xD0, 0x011E}, {0xDD, 0x0130}, {0xFE, 0x015F}}},
    {"windows-1255",
     10,
     {{0xA4, 0x20AA}, {0xCA, 0x05BA}, {0xE0, 0x05D0}, {0xFA, 0x05EA}, {0xD9, 0}}},
    {"windows-1256", 0, {{0x81, 0x067E}, {0x90, 0x06AF}, {0xC7, 0x0627}, {0xFF, 0x06D2}}},
    {"windows-1257", 2, {{0xA8, 0x00D8}, {0xC0, 0x0104}, {0xFF, 0x02D9}, {0xA1, 0}}},
    {"windows-1258",
     0,
     {{0xC3, 0x0102}, {0xCC, 0x0300}, {0xEC, 0x0301}, {0xF5, 0x01A1}, {0xFE, 0x20AB}}},
    {"x-mac-cyrillic", 0, {{0x80, 0x0410}, {0xA2, 0x0490}, {0xDF, 0x044F}, {0xFF, 0x20AC}}},
};

}  // namespace

TEST_CASE("decode_single_byte reads the 28 single-byte encodings and x-user-defined",
          "[scrape][encoding]") {
  CHECK_FALSE(decode_single_byte("abc", "UTF-8").has_value());
  CHECK_FALSE(decode_single_byte("abc", "Shift_JIS").has_value());
  CHECK_FALSE(decode_single_byte("abc", "UTF-16LE").has_value());
  CHECK_FALSE(decode_single_byte("abc", "cp1251").has_value());  // names, not labels
  std::string ascii;
  for (int b = 1; b < 0x80; ++b) {
    ascii += static_cast<char>(b);
  }
  std::vector<std::string> encodings = {"x-user-defined"};
  for (const Chart& chart : k_charts) {
    encodings.emplace_back(chart.encoding);
  }
  for (const std::string& encoding : encodings) {
    INFO(encoding);
    CHECK(decode(ascii, encoding) == ascii);
    CHECK(decode(std::string("a\0b", 3) + " <p>", encoding) == "ab <p>");  // NUL dropped
    CHECK(decode("", encoding).empty());
  }
}

TEST_CASE("each single-byte encoding reads its 128 high bytes as its chart and index have them",
          "[scrape][encoding]") {
  // 28 encodings, 27 indexes: ISO-8859-8-I reads ISO-8859-8's
  REQUIRE(k_charts.size() == 28);
  REQUIRE(indexes::k_single_byte.size() == 27);
  for (const Chart& chart : k_charts) {
    INFO(chart.encoding);
    const indexes::SingleByteIndex* found = indexes::single_byte_index(chart.encoding);
    REQUIRE(found != nullptr);
    const indexes::SingleByteIndex& index = *found;
    REQUIRE(index.encoding ==
            (chart.encoding == std::string("ISO-8859-8-I") ? "ISO-8859-8" : chart.encoding));
    // the generated index, against the chart's bytes and its count of gaps
    std::size_t undefined = 0;
    for (const std::uint16_t cp : index.code_points) {
      undefined += cp == 0 ? 1 : 0;
      CHECK((cp == 0 || cp >= 0x80));
    }
    CHECK(undefined == chart.undefined);
    for (const auto& [byte, cp] : chart.bytes) {
      INFO("byte " << int{byte});
      CHECK(index.code_points[byte - 0x80] == cp);
      CHECK(decode(std::string(1, static_cast<char>(byte)), chart.encoding) ==
            (cp != 0 ? utf8(cp) : k_fffd));
    }
    // the decoder, against the index: all 128 high bytes in one page, and
    // each between two letters
    std::string page;
    std::string expected;
    for (int b = 0x80; b < 0x100; ++b) {
      const char32_t cp = index.code_points[b - 0x80];
      page += static_cast<char>(b);
      page += 'x';
      expected += (cp != 0 ? utf8(cp) : k_fffd) + "x";
    }
    CHECK(decode(page, chart.encoding) == expected);
  }
}

TEST_CASE("one Russian text reads the same from five Cyrillic code pages",
          "[scrape][encoding]") {
  const std::string text = "<p>\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, "
                           "\xD0\x81\xD0\xB6</p>";  // "Привет, Ёж"
  CHECK(decode("<p>\xCF\xF0\xE8\xE2\xE5\xF2, \xA8\xE6</p>", "windows-1251") == text);
  CHECK(decode("<p>\xF0\xD2\xC9\xD7\xC5\xD4, \xB3\xD6</p>", "KOI8-R") == text);
  CHECK(decode("<p>\x8F\xE0\xA8\xA2\xA5\xE2, \xF0\xA6</p>", "IBM866") == text);
  CHECK(decode("<p>\xBF\xE0\xD8\xD2\xD5\xE2, \xA1\xD6</p>", "ISO-8859-5") == text);
  CHECK(decode("<p>\x8F\xF0\xE8\xE2\xE5\xF2, \xDD\xE6</p>", "x-mac-cyrillic") == text);
}

TEST_CASE("x-user-defined reads 0x80-0xFF as U+F780-U+F7FF", "[scrape][encoding]") {
  CHECK(decode("a\x80\xC1\xFF", "x-user-defined") ==
        "a\xEF\x9E\x80\xEF\x9F\x81\xEF\x9F\xBF");  // U+F780, U+F7C1, U+F7FF
}
