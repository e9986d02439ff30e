// CPU to decode a page to UTF-8 (scrape/page_encoding.cpp) of 10 MiB: text
// in single-byte, CJK and UTF-16 encodings, pages of bytes the encoding does
// not have (each a U+FFFD), and an ASCII page declared in a legacy encoding.
//
//   page_decode [FILTER] [MIB]
//
// Runs the cases whose name contains FILTER (all by default) on MIB MiB
// (default 10) and prints, per case, the milliseconds of CPU the decode took
// (the best of 3 runs) and the size of its output.

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "scrapekeep/scrape/page_encoding.hpp"

namespace {

struct Case {
  std::string name;
  std::string charset;
  std::string unit;  // repeated to the page's size
};

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// `text` four times with `refused` after it: text with a stray byte every so often.
std::string scattered(const std::string& text, const std::string& refused) {
  std::string unit;
  for (int i = 0; i < 4; ++i) {
    unit += text;
  }
  return unit + refused;
}

// `code_units` as UTF-16LE bytes.
std::string utf16le(const std::u16string& code_units) {
  std::string bytes;
  for (const char16_t u : code_units) {
    bytes += static_cast<char>(u & 0xFF);
    bytes += static_cast<char>(u >> 8);
  }
  return bytes;
}

std::vector<Case> cases() {
  const std::string cyrillic = "<p>\xCF\xF0\xE8\xE2\xE5\xF2, \xEC\xE8\xF0</p>\n";  // windows-1251
  const std::string hebrew = "<p>\xF9\xEC\xE5\xED \xF2\xE5\xEC\xED</p>\n";  // windows-1255
  const std::string sjis = "<p>\x82\xA0\x82\xA2 abc \x93\xFA\x96\x7B</p>\n";
  const std::string eucjp = "<p>\xA4\xA2\xA4\xA4 abc \xC6\xFC\xCB\xDC</p>\n";
  const std::string gbk = "<p>\xC4\xE3\xBA\xC3 abc \xD6\xD0\xCE\xC4</p>\n";
  const std::string big5 = "<p>\xA4\xA4\xA4\xE5 abc \xA7\x41\xA6\x6E</p>\n";
  const std::string euckr = "<p>\xC7\xD1\xB1\xDB abc \xBE\xC8\xB3\xE7</p>\n";
  const std::string jis = "<p>\x1b$B$\"$$\x1b(B abc</p>\n";
  const std::string ascii = "<li><a href=\"/item/1\">An item</a> <span>9.99</span></li>\n";
  // "<p>abc def</p>", and "<p>Привет, мир</p>" with U+1F600 (a surrogate pair)
  const std::string utf16_ascii = utf16le(u"<p>abc def</p>\n");
  const std::string utf16_text =
      utf16le(u"<p>\u041F\u0440\u0438\u0432\u0435\u0442, \u043C\u0438\u0440 \U0001F600</p>\n");
  const std::string lone_surrogate("\x00\xDC", 2);
  return {
      {"windows-1251 text", "windows-1251", cyrillic},
      {"windows-1251 ASCII page", "windows-1251", ascii},
      {"windows-1252 text", "windows-1252", "<p>caf\xE9 cr\xE8me br\xFBl\xE9" "e \x93q\x94</p>\n"},
      {"windows-1253 undefined 0xAA", "windows-1253", "\xAA"},
      {"windows-1255 text", "windows-1255", hebrew},
      {"windows-1255 undefined 0xFF", "windows-1255", "\xFF"},
      {"ISO-8859-7 undefined 0xAE", "iso-8859-7", "\xAE"},
      {"Shift_JIS text", "shift_jis", sjis},
      {"Shift_JIS ASCII page", "shift_jis", ascii},
      {"Shift_JIS refused 0xFF", "shift_jis", "\xFF"},
      {"Shift_JIS refused pairs", "shift_jis", "\x86\x91"},
      {"Shift_JIS scattered", "shift_jis", scattered(sjis, "\xFF")},
      {"EUC-JP refused 0xFF", "euc-jp", "\xFF"},
      {"EUC-JP scattered", "euc-jp", scattered(eucjp, "\xFF")},
      {"GBK refused 0xFF", "gbk", "\xFF"},
      {"GBK scattered", "gbk", scattered(gbk, "\xFF")},
      {"gb18030 refused 0xFF", "gb18030", "\xFF"},
      {"Big5 refused 0xFF", "big5", "\xFF"},
      {"Big5 scattered", "big5", scattered(big5, "\xFF")},
      {"EUC-KR refused 0xFF", "euc-kr", "\xFF"},
      {"EUC-KR scattered", "euc-kr", scattered(euckr, "\xFF")},
      {"ISO-2022-JP refused 0xAA", "iso-2022-jp", "\xAA"},
      {"ISO-2022-JP scattered", "iso-2022-jp", scattered(jis, "\xAA")},
      {"UTF-16LE ASCII text", "utf-16le", utf16_ascii},
      {"UTF-16LE text", "utf-16le", utf16_text},
      {"UTF-16LE lone surrogates", "utf-16le", lone_surrogate},
      {"UTF-16LE scattered", "utf-16le", scattered(utf16_ascii, lone_surrogate)},
  };
}

}  // namespace

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  const std::size_t size = (argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10) << 20;
  for (const Case& c : cases()) {
    if (c.name.find(filter) == std::string::npos) {
      continue;
    }
    std::string page;
    page.reserve(size + c.unit.size());
    while (page.size() < size) {
      page += c.unit;
    }
    page.resize(size - size % (c.charset == "utf-16le" ? 2 : 1));
    double best = 0;
    std::size_t out = 0;
    for (int run = 0; run < 3; ++run) {
      std::string storage;
      const double start = cpu_ms();
      out = scrapekeep::scrape::decode_page(page, c.charset, storage).size();
      const double took = cpu_ms() - start;
      best = run == 0 ? took : std::min(best, took);
    }
    std::printf("%-30s %9.1f ms CPU  %10zu bytes out\n", c.name.c_str(), best, out);
  }
  return 0;
}
