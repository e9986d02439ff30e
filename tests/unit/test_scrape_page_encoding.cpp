#include <catch2/catch.hpp>

#include <string>

#include "scrapekeep/core/job.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/page_encoding.hpp"

using scrapekeep::core::Selectors;
using scrapekeep::scrape::decode_page;
using scrapekeep::scrape::encoding_for_label;
using scrapekeep::scrape::extract_listing;
using scrapekeep::scrape::meta_declared_encoding;
using scrapekeep::scrape::sniff_encoding;

namespace {

const std::string k_url = "http://h.test/list";
const std::string k_fffd = "\xEF\xBF\xBD";

// Every <p>'s string value, as a listing job with item //p and field "." reads it.
std::vector<std::string> paragraphs(const std::string& html, const std::string& charset = "") {
  Selectors s;
  s.item = "//p";
  s.fields = {{"p", "."}};
  s.next_page = "//a[@rel='next']/@href";
  const auto page = extract_listing(html, k_url, s, false, charset);
  std::vector<std::string> values;
  for (const auto& item : page.items) {
    values.push_back(item.fields.at(0).second.value_or("(null)"));
  }
  if (page.next_url) {
    values.push_back("next " + *page.next_url);
  }
  return values;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("charset labels map to the Encoding Standard's encodings", "[scrape][encoding]") {
  CHECK(encoding_for_label("utf-8") == "UTF-8");
  CHECK(encoding_for_label("  UTF8 ") == "UTF-8");
  CHECK(encoding_for_label("ISO-8859-1") == "windows-1252");
  CHECK(encoding_for_label("latin1") == "windows-1252");
  CHECK(encoding_for_label("US-ASCII") == "windows-1252");
  CHECK(encoding_for_label("iso-8859-9") == "windows-1254");
  CHECK(encoding_for_label("Shift_JIS") == "Shift_JIS");
  CHECK(encoding_for_label("x-sjis") == "Shift_JIS");
  CHECK(encoding_for_label("gb2312") == "GBK");
  CHECK(encoding_for_label("utf-16") == "UTF-16LE");
  CHECK(encoding_for_label("x-no-such-charset").empty());
  CHECK(encoding_for_label("iso-2022-kr").empty());  // the replacement encoding: ignored
  CHECK(encoding_for_label("").empty());
}

TEST_CASE("the meta prescan finds what browsers find", "[scrape][encoding]") {
  CHECK(meta_declared_encoding("<meta charset=\"windows-1252\">") == "windows-1252");
  CHECK(meta_declared_encoding("<META CHARSET=Shift_JIS>") == "Shift_JIS");
  CHECK(meta_declared_encoding("<meta http-equiv=\"Content-Type\" "
                               "content=\"text/html; charset=koi8-r\">") == "KOI8-R");
  // content's charset counts only with the http-equiv pragma
  CHECK(meta_declared_encoding("<meta content=\"text/html; charset=koi8-r\">").empty());
  // the word alone is not a declaration
  CHECK(meta_declared_encoding("<meta name=\"description\" content=\"charset\">").empty());
  CHECK(meta_declared_encoding("<!-- <meta charset=\"koi8-r\"> --><p>").empty());
  CHECK(meta_declared_encoding("<div title='<meta charset=koi8-r>'><meta charset=utf-8>") ==
        "UTF-8");
  CHECK(meta_declared_encoding("<meta charset=\"utf-16\">") == "UTF-8");
  CHECK(meta_declared_encoding("<body><meta charset=\"koi8-r\">").empty());
  // after a long inline script in the head (past the 1024 bytes of the
  // spec's first look), as browsers re-read such a page
  CHECK(meta_declared_encoding("<head><script>" + std::string(8000, 'x') +
                               "</script><meta charset=\"euc-jp\"></head>") == "EUC-JP");
  // A <meta> of 500,000 attributes, each named once, is read in linear time
  // (the names seen were a list, searched for each: half an hour at 10 MB).
  std::string many = "<meta ";
  for (int n = 0; many.size() < 4'000'000; ++n) {
    many += "a" + std::to_string(n) + "=1 ";
  }
  CHECK(meta_declared_encoding(many + "a7=x charset=koi8-r>") == "KOI8-R");
}

TEST_CASE("sniffing: byte-order mark, then the header, then a meta, then the bytes",
          "[scrape][encoding]") {
  CHECK(sniff_encoding("\xEF\xBB\xBF<meta charset=koi8-r>", "iso-8859-1") == "UTF-8");
  CHECK(sniff_encoding("\xFF\xFE<\0p\0", "") == "UTF-16LE");
  CHECK(sniff_encoding("<meta charset=koi8-r>", "iso-8859-1") == "windows-1252");
  CHECK(sniff_encoding("<meta charset=koi8-r>", "x-unknown") == "KOI8-R");
  CHECK(sniff_encoding("<p>caf\xC3\xA9</p>", "") == "UTF-8");
  CHECK(sniff_encoding("<p>caf\xE9</p>", "") == "windows-1252");
}

TEST_CASE("a byte the encoding does not have becomes U+FFFD and the page is read on",
          "[scrape][encoding]") {
  const std::string rest = "<p>second</p><a rel=\"next\" href=\"/2\">next</a>";
  SECTION("declared US-ASCII is read as windows-1252, as browsers read it") {
    CHECK(paragraphs("<p>caf\xE9</p>" + rest, "us-ascii") ==
          Strings{"caf\xC3\xA9", "second", "next http://h.test/2"});
  }
  SECTION("windows-1252's undefined bytes are their C1 controls, nothing is cut") {
    CHECK(paragraphs("<p>a\x81" "b\x9D" "c</p>" + rest, "windows-1252") ==
          Strings{"a\xC2\x81" "b\xC2\x9D" "c", "second", "next http://h.test/2"});
  }
  SECTION("Shift_JIS with NEC and IBM characters (windows-31J)") {
    // (1) U+2460 is 0x87 0x40, U+9AD9 is 0xFB 0xFC; a backslash stays one.
    CHECK(paragraphs("<p>\x87\x40 \xFB\xFC C:\\x</p>" + rest, "Shift_JIS") ==
          Strings{"\xE2\x91\xA0 \xE9\xAB\x99 C:\\x", "second", "next http://h.test/2"});
  }
  SECTION("GB2312 pages with GBK characters") {
    // U+4E02 is 0x81 0x40 in GBK, not in GB2312.
    CHECK(paragraphs("<p>\x81\x40</p>" + rest, "gb2312") ==
          Strings{"\xE4\xB8\x82", "second", "next http://h.test/2"});
  }
  SECTION("a byte sequence of no character in EUC-JP") {
    CHECK(paragraphs("<p>a\xFF" "b</p>" + rest, "euc-jp") ==
          Strings{"a" + k_fffd + "b", "second", "next http://h.test/2"});
  }
  SECTION("a multi-byte character cut short by the end of the page") {
    CHECK(decode_page("<p>a\x87", "shift_jis") == "<p>a" + k_fffd);
  }
}

TEST_CASE("a page declared UTF-8 by meta keeps UTF-8 past a stray byte", "[scrape][encoding]") {
  CHECK(paragraphs("<meta charset=\"utf-8\"><p>\xE9</p><p>Stra\xC3\x9F" "e</p>") ==
        Strings{k_fffd, "Stra\xC3\x9F" "e"});
  // UTF-8's decoder: one U+FFFD for each maximal part that cannot be completed
  CHECK(decode_page("a\xE2\x82" "b\xF0\x9F\x98" "c\xC0\xAF" "d", "utf-8") ==
        "a" + k_fffd + "b" + k_fffd + "c" + k_fffd + k_fffd + "d");
}

TEST_CASE("a meta after non-ASCII text still declares the page's encoding",
          "[scrape][encoding]") {
  CHECK(paragraphs("<title>caf\xE9</title><meta charset=\"windows-1252\"><p>\x93q\x94</p>") ==
        Strings{"\xE2\x80\x9Cq\xE2\x80\x9D"});
  // a <meta> with the word charset in its content declares nothing: the
  // bytes decide (not UTF-8: windows-1252)
  CHECK(paragraphs("<meta name=\"description\" content=\"charset\"><p>\x93q\x94</p>") ==
        Strings{"\xE2\x80\x9Cq\xE2\x80\x9D"});
}

TEST_CASE("an XML declaration declares a page's encoding when no meta does",
          "[scrape][encoding]") {
  // XHTML as nginx and Apache serve a .xhtml file (application/xhtml+xml, no
  // charset), its encoding named only in its XML declaration: read as
  // windows-1252 ("\xC3\x8F\xC3\xB0\xC3\xA8" for "\xD0\x9F\xD1\x80\xD0\xB8"),
  // where browsers (the HTML spec's "get an XML encoding") and Scrapy read
  // windows-1251.
  const std::string xhtml =
      "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>\xCF\xF0\xE8</p></body></html>";
  CHECK(sniff_encoding(xhtml, "") == "windows-1251");
  CHECK(paragraphs(xhtml) == Strings{"\xD0\x9F\xD1\x80\xD0\xB8"});
  // The header's charset and a <meta> come first.
  CHECK(sniff_encoding(xhtml, "koi8-r") == "KOI8-R");
  CHECK(sniff_encoding("<?xml version='1.0' encoding='koi8-r'?><meta charset=\"gbk\">", "") ==
        "GBK");
  // Single quotes, spaces and controls around '='; a label browsers know.
  CHECK(sniff_encoding("<?xml version='1.0' encoding \t= 'Shift_JIS' ?><p>", "") ==
        "Shift_JIS");
  CHECK(sniff_encoding("<?xml encoding=\"latin1\"?><p>\xE9</p>", "") == "windows-1252");
  // Read as UTF-16 it would not say <?xml in ASCII: UTF-8.
  CHECK(sniff_encoding("<?xml version=\"1.0\" encoding=\"UTF-16\"?><p>\xCF</p>", "") ==
        "UTF-8");
  // Only at the very start, with a known label and no space inside it; else
  // the bytes decide.
  CHECK(sniff_encoding(" <?xml version=\"1.0\" encoding=\"koi8-r\"?><p>\xCF\xF0</p>", "") ==
        "windows-1252");
  CHECK(sniff_encoding("<?xml encoding=\"x-unknown\"?><p>\xCF\xF0</p>", "") == "windows-1252");
  CHECK(sniff_encoding("<?xml encoding=\"koi8-r \"?><p>\xCF\xF0</p>", "") == "windows-1252");
  CHECK(sniff_encoding("<?xml encoding=koi8-r?><p>\xCF\xF0</p>", "") == "windows-1252");
  // '<?x' in UTF-16 without a byte-order mark, the prescan's first step.
  CHECK(sniff_encoding(std::string("<\0?\0x\0m\0l\0", 10), "") == "UTF-16LE");
  CHECK(sniff_encoding(std::string("\0<\0?\0x\0m\0l", 10), "") == "UTF-16BE");
}

TEST_CASE("UTF-16 pages: NUL characters dropped, code units kept aligned", "[scrape][encoding]") {
  // "<p>a\0b</p>" in UTF-16LE with a byte-order mark, then a lone surrogate
  std::string page = std::string("\xFF\xFE", 2);
  for (const char c : std::string("<p>a")) {
    page += c;
    page += '\0';
  }
  page += std::string("\0\0", 2);  // U+0000
  page += std::string("b\0", 2);
  page += std::string("\x00\xD8", 2);  // a high surrogate with no low one
  for (const char c : std::string("c</p>")) {
    page += c;
    page += '\0';
  }
  CHECK(paragraphs(page) == Strings{"ab" + k_fffd + "c"});
}

TEST_CASE("bytes an encoding lacks read as the Encoding Standard's decoders read them",
          "[scrape][encoding]") {
  // A lead byte and a non-ASCII second byte the index lacks are one U+FFFD;
  // the letter after them is not swallowed into another character.
  CHECK(decode_page("\x86\x91" "abc", "shift_jis") == k_fffd + "abc");
  CHECK(decode_page("\x91\x8e" "Zebra", "big5") == k_fffd + "Zebra");
  CHECK(decode_page("\xC9\x89" "Zebra", "euc-kr") == k_fffd + "Zebra");
  // A byte that leads nothing is one U+FFFD, and the pair after it is read.
  CHECK(decode_page("\xFF\x82\xA0", "shift_jis") == k_fffd + "\xE3\x81\x82");  // U+3042
  // 0x80: the euro sign in GBK, U+0080 in Shift_JIS
  CHECK(decode_page("5\x80", "gbk") == "5\xE2\x82\xAC");
  CHECK(decode_page("5\x80", "shift_jis") == "5\xC2\x80");
  // single-byte code pages: the bytes Windows leaves undefined are C1 controls
  // in the Standard's indexes of windows-1250 and windows-1251
  CHECK(decode_page("a\x81" "b", "windows-1250") == "a\xC2\x81" "b");
  CHECK(decode_page("a\x98" "b", "windows-1251") == "a\xC2\x98" "b");
  // ISO-2022-JP: JIS X 0208 and the half-width katakana of ESC ( I
  CHECK(decode_page("\x1b$B$\"\x1b(B \x1b(I123\x1b(B ok", "iso-2022-jp") ==
        "\xE3\x81\x82 \xEF\xBD\xB1\xEF\xBD\xB2\xEF\xBD\xB3 ok");
  // a sequence cut short at the end: one U+FFFD, and the bytes after it read
  CHECK(decode_page("ab\xA0\x35Z", "gb18030") == "ab" + k_fffd + "5Z");
  // a character the page ends in the middle of: one U+FFFD for its bytes
  CHECK(decode_page("ab\x81\x30\x81", "gb18030") == "ab" + k_fffd);
  CHECK(decode_page("ab\x81\x30", "gbk") == "ab" + k_fffd);
  CHECK(decode_page("ab\x8F\xA1", "euc-jp") == "ab" + k_fffd);
}

TEST_CASE("CJK pages decode as the Encoding Standard's decoders read them, not glibc's",
          "[scrape][encoding][cjk]") {
  const std::string rest = "<p>second</p><a rel=\"next\" href=\"/2\">next</a>";
  const Strings tail = {"second", "next http://h.test/2"};
  const auto with_tail = [&](std::string first) {
    Strings values = {std::move(first)};
    values.insert(values.end(), tail.begin(), tail.end());
    return values;
  };
  // a Big5 pair glibc's BIG5-HKSCS refused, and one of four pairs of two code points
  CHECK(paragraphs("<p>\x8E\x69\x88\x62</p>" + rest, "big5") ==
        with_tail("\xE7\xAE\xB8\xC3\x8A\xCC\x84"));
  // EUC-JP row F9 (an IBM kanji, not Private Use), GBK 0xA3 0xA0 (U+3000)
  CHECK(paragraphs("<p>\xF9\xA1</p>" + rest, "euc-jp") == with_tail("\xE7\xBA\x8A"));
  CHECK(paragraphs("<p>\xA3\xA0</p>" + rest, "gb2312") == with_tail("\xE3\x80\x80"));
  // ISO-2022-JP: NEC row 13, then an escape sequence of ISO-2022-JP-2 refused
  CHECK(paragraphs("<p>\x1B$B-!\x1B(B \x1B$A0!</p>" + rest, "iso-2022-jp") ==
        with_tail("\xE2\x91\xA0 " + k_fffd + "$A0!"));
  // EUC-KR: an unmapped pair takes both its bytes, the letter after it stays
  CHECK(paragraphs("<p>\xA2\xE8\x41</p>" + rest, "euc-kr") == with_tail(k_fffd + "A"));
}

TEST_CASE("single-byte pages read as browsers read them where glibc's iconv read them otherwise",
          "[scrape][encoding]") {
  SECTION("windows-1258 keeps a letter and the accent after it apart") {
    // glibc's CP1258 composed them into U+00C1
    CHECK(decode_page("A\xEC", "windows-1258") == "A\xCC\x81");  // U+0301
    CHECK(decode_page("o\xD2" "x", "windows-1258") == "o\xCC\x89" "x");  // U+0309
  }
  SECTION("windows-1255 reads a letter before the byte after it") {
    // glibc's CP1255 held the letter back and wrote the byte it refused first
    CHECK(decode_page("\xE0\x81", "windows-1255") == "\xD7\x90\xC2\x81");  // U+05D0 U+0081
    CHECK(decode_page("\xE0\xFF" "b", "windows-1255") == "\xD7\x90" + k_fffd + "b");
  }
  SECTION("KOI8-U has the Belarusian short u at 0xAE and 0xBE") {
    // glibc's KOI8-U (RFC 2319) has box drawing there
    CHECK(decode_page("\xAE\xBE", "koi8-u") == "\xD1\x9E\xD0\x8E");  // U+045E U+040E
  }
  SECTION("x-mac-cyrillic has the euro sign at 0xFF") {
    CHECK(decode_page("5\xFF", "x-mac-cyrillic") == "5\xE2\x82\xAC");  // glibc: U+00A4
  }
  SECTION("macintosh has the increment sign at 0xC6 and the Apple logo at 0xF0") {
    // glibc: U+0394 and U+E01E; windows-1255's 0xCA (U+05BA) it refused
    CHECK(decode_page("\xC6\xF0", "macintosh") == "\xE2\x88\x86\xEF\xA3\xBF");
    CHECK(decode_page("\xCA", "windows-1255") == "\xD6\xBA");
  }
  SECTION("a byte of no character is U+FFFD, and the page is read on") {
    CHECK(paragraphs("<p>\xE1\xAA\xE2</p><p>b</p>", "windows-1253") ==
          Strings{"\xCE\xB1" + k_fffd + "\xCE\xB2", "b"});
    CHECK(decode_page("\xDB\xA1", "windows-874") == k_fffd + "\xE0\xB8\x81");  // U+0E01
    CHECK(decode_page("\xA5", "iso-8859-3") == k_fffd);
  }
}

TEST_CASE("UTF-16 pages read by the Encoding Standard's UTF-16 decoder", "[scrape][encoding]") {
  const auto le = [](std::u16string units) {
    std::string bytes;
    for (const char16_t u : units) {
      bytes += static_cast<char>(u & 0xFF);
      bytes += static_cast<char>(u >> 8);
    }
    return bytes;
  };
  const auto be = [](std::u16string units) {
    std::string bytes;
    for (const char16_t u : units) {
      bytes += static_cast<char>(u >> 8);
      bytes += static_cast<char>(u & 0xFF);
    }
    return bytes;
  };
  const std::string grin = "\xF0\x9F\x98\x80";  // U+1F600, a surrogate pair in UTF-16
  SECTION("surrogate pairs in either byte order") {
    CHECK(decode_page(le(u"a\U0001F600b"), "utf-16le") == "a" + grin + "b");
    CHECK(decode_page(be(u"a\U0001F600b"), "utf-16be") == "a" + grin + "b");
    CHECK(decode_page(le(u"\u00E9\u4E2D"), "utf-16") == "\xC3\xA9\xE4\xB8\xAD");
  }
  SECTION("a lone surrogate is U+FFFD and the code unit after it is read") {
    CHECK(decode_page(le(u"a\xDC00" "b"), "utf-16le") == "a" + k_fffd + "b");
    CHECK(decode_page(le(u"a\xD83D" "b"), "utf-16le") == "a" + k_fffd + "b");
    // a lead surrogate, then a whole pair
    CHECK(decode_page(le(u"\xD83D\xD83D\xDE00"), "utf-16le") == k_fffd + grin);
  }
  SECTION("the page's end in a character is one U+FFFD") {
    CHECK(decode_page(le(u"a") + "b", "utf-16le") == "a" + k_fffd);  // half a code unit
    CHECK(decode_page(le(u"a\xD83D"), "utf-16le") == "a" + k_fffd);
    // a lead surrogate and half a code unit: one U+FFFD (glibc's iconv gave two)
    CHECK(decode_page(le(u"a\xD83D") + "A", "utf-16le") == "a" + k_fffd);
    CHECK(decode_page(be(u"a\xD83D") + "A", "utf-16be") == "a" + k_fffd);
  }
  SECTION("a byte-order mark wins over the header and is not text") {
    CHECK(decode_page("\xFE\xFF" + be(u"<p>\u00E9"), "utf-16le") == "<p>\xC3\xA9");
    CHECK(decode_page("\xFF\xFE" + le(u"<p>\u00E9"), "utf-16be") == "<p>\xC3\xA9");
    CHECK(decode_page("\xFF\xFE" + le(u"\uFEFFx"), "") == "\xEF\xBB\xBFx");  // only the first
  }
}

TEST_CASE("an ASCII page in a legacy encoding is handed back without a copy",
          "[scrape][encoding]") {
  const std::string html = "<html><p>plain ASCII text, long enough for whole words</p></html>";
  for (const char* charset : {"koi8-r", "windows-1252", "x-user-defined", "shift_jis", "gbk"}) {
    INFO(charset);
    std::string storage;
    const std::string_view view = decode_page(html, charset, storage);
    CHECK(view == html);
    CHECK(view.data() == html.data());
  }
  // one byte past ASCII, or a NUL, and the page is decoded
  std::string storage;
  CHECK(decode_page(html + "\xE9", "windows-1252", storage) == html + "\xC3\xA9");
  CHECK(decode_page(html + '\0', "koi8-r", storage) == html);
  CHECK(storage == html);
  // ISO-2022-JP's ESC is not text, and UTF-16 reads two bytes a character
  CHECK(decode_page("a\x1B(Jb\\", "iso-2022-jp") == "ab\xC2\xA5");
  CHECK(decode_page("ab", "utf-16le") == "\xE6\x89\xA1");  // U+6261
}
