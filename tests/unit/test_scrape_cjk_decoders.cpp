#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "scrapekeep/scrape/cjk_decoders.hpp"

// Expected values follow the Encoding Standard's decoders and indexes
// (encoding.spec.whatwg.org), pointer by pointer where a case says so.

using scrapekeep::scrape::decode_cjk;

namespace {

const std::string k_fffd = "\xEF\xBF\xBD";

std::string decode(const std::string& bytes, const std::string& encoding) {
  return decode_cjk(bytes, encoding).value_or("(not a CJK encoding)");
}

}  // namespace

TEST_CASE("decode_cjk reads only the CJK encodings", "[scrape][encoding][cjk]") {
  CHECK_FALSE(decode_cjk("abc", "windows-1252").has_value());
  CHECK_FALSE(decode_cjk("abc", "UTF-8").has_value());
  CHECK_FALSE(decode_cjk("abc", "shift_jis").has_value());  // names, not labels
  for (const char* encoding :
       {"Shift_JIS", "EUC-JP", "ISO-2022-JP", "GBK", "gb18030", "Big5", "EUC-KR"}) {
    CHECK(decode(std::string("a\0b", 3) + " <p>", encoding) == "ab <p>");  // NUL dropped
    CHECK(decode("", encoding).empty());
  }
}

TEST_CASE("Japanese, Chinese and Korean text decodes in each encoding", "[scrape][encoding][cjk]") {
  SECTION("Shift_JIS") {
    CHECK(decode("\x93\xFA\x96{\x8C\xEA\x82\xCC\x83y\x81[\x83W\x81\x41\x83J\x83^\x83J\x83i\x82"
                 "\xC6\xB6\xC0\xB6\xC5\x81\x42 C:\\~",
                 "Shift_JIS") == "日本語のページ、カタカナとｶﾀｶﾅ。 C:\\~");
  }
  SECTION("EUC-JP") {
    CHECK(decode("\xC6\xFC\xCB\xDC\xB8\xEC\xA4\xCE\xA5\xDA\xA1\xBC\xA5\xB8\xA1\xA2\xA5\xAB\xA5"
                 "\xBF\xA5\xAB\xA5\xCA\xA4\xC8\x8E\xB6\x8E\xC0\x8E\xB6\x8E\xC5\xA1\xA3",
                 "EUC-JP") == "日本語のページ、カタカナとｶﾀｶﾅ。");
    // JIS X 0212 in three bytes: 0x8F 0xB0 0xA1 is pointer 1410, U+4E02
    CHECK(decode("\x8F\xB0\xA1", "EUC-JP") == "丂");
  }
  SECTION("ISO-2022-JP") {
    CHECK(decode("<p>\x1B$BF|K\x5C\x38l$N%Z!<%8$G$9!#\x1B(B</p>", "ISO-2022-JP") ==
          "<p>日本語のページです。</p>");
    // Roman: a yen sign and an overline; katakana
    CHECK(decode("\x1B(J\\~\x1B(I123\x1B(B\\~", "ISO-2022-JP") == "¥‾ｱｲｳ\\~");
  }
  SECTION("GBK and gb18030") {
    const std::string text =
        "\xD6\xD0\xCE\xC4\xCD\xF8\xD2\xB3\xB5\xC4\xB1\xE0\xC2\xEB\xB2\xE2\xCA\xD4\xA1\xA3";
    CHECK(decode(text, "GBK") == "中文网页的编码测试。");
    CHECK(decode(text, "gb18030") == "中文网页的编码测试。");
    // four bytes: U+1F600 through the last range; 0x80 is the euro sign
    CHECK(decode("\x94\x39\xFC\x36 \x80", "gb18030") == "😀 €");
    CHECK(decode("\x94\x39\xFC\x36", "GBK") == "😀");
  }
  SECTION("Big5") {
    CHECK(decode("\xC1\x63\xC5\xE9\xA4\xA4\xA4\xE5\xBA\xF4\xAD\xB6\xB4\xFA\xB8\xD5\xA1\x43",
                 "Big5") == "繁體中文網頁測試。");
    // HKSCS: 0x87 0x45 is pointer 942, U+27267 (plane 2)
    CHECK(decode("\x87\x45", "Big5") == "𧉧");
  }
  SECTION("EUC-KR") {
    CHECK(decode("\xC7\xD1\xB1\xB9\xBE\xEE \xC0\xA5 \xC6\xE4\xC0\xCC\xC1\xF6, \x8C\x63\xC1\x64.",
                 "EUC-KR") == "한국어 웹 페이지, 똠햏.");
  }
}

TEST_CASE("Big5 reads the Standard's index, HKSCS and its four pairs included",
          "[scrape][encoding][cjk]") {
  // Pointers 1133, 1135, 1164 and 1166 are a letter and a combining mark.
  CHECK(decode("\x88\x62", "Big5") == "\xC3\x8A\xCC\x84");  // U+00CA U+0304
  CHECK(decode("\x88\x64", "Big5") == "\xC3\x8A\xCC\x8C");  // U+00CA U+030C
  CHECK(decode("\x88\xA3", "Big5") == "\xC3\xAA\xCC\x84");  // U+00EA U+0304
  CHECK(decode("\x88\xA5", "Big5") == "\xC3\xAA\xCC\x8C");  // U+00EA U+030C
  CHECK(decode("\x88\x40", "Big5") == "㇀");                // pointer 1099, one code point
  // among the 131 pairs glibc's BIG5-HKSCS refused: 0x8E 0x69 is U+7BB8
  CHECK(decode("\x8E\x69i", "Big5") == "箸i");
  // and pairs glibc maps to another character
  CHECK(decode("\xA1\x45", "Big5") == "‧");  // U+2027, not U+2022
  CHECK(decode("\xA1\xC2", "Big5") == "¯");  // U+00AF, not U+203E
  CHECK(decode("\xA1\xF2\xA2\x41", "Big5") == "⊕∕");
  // a byte that leads nothing, and a lead with a trail out of range
  CHECK(decode("\x80\x61\xFF\x62", "Big5") == k_fffd + "a" + k_fffd + "b");
  CHECK(decode("\x91\x8EZebra", "Big5") == k_fffd + "Zebra");
  CHECK(decode("\xA1\x80Z", "Big5") == k_fffd + "Z");  // 0x80 is no trail, taken with the lead
  CHECK(decode("\xA1\x31", "Big5") == k_fffd + "1");   // an ASCII byte is read again
}

TEST_CASE("EUC-JP rows F9 to FC are the IBM extensions of index jis0208",
          "[scrape][encoding][cjk]") {
  CHECK(decode("\xF9\xA1", "EUC-JP") == "纊");  // U+7E8A, where glibc gave U+E178
  CHECK(decode("\xFC\xEE", "EUC-JP") == "黑");  // U+9ED1
  CHECK(decode("\xFC\xFE", "EUC-JP") == "＂");  // U+FF02
  // C1 bytes lead nothing: one U+FFFD each (glibc passed them through)
  CHECK(decode("a\x80\x9F\x62", "EUC-JP") == "a" + k_fffd + k_fffd + "b");
  // a trail that is not ASCII is taken with its lead (only ASCII is read again)
  CHECK(decode("\x8E\x80z\xA4\x80z", "EUC-JP") == k_fffd + "z" + k_fffd + "z");
  // 0x8E with no katakana after it; 0x8F with two bytes of no character
  CHECK(decode("\x8E\xE0\x61", "EUC-JP") == k_fffd + "a");
  CHECK(decode("\x8F\xA1\xA1\x61", "EUC-JP") == k_fffd + "a");
  CHECK(decode("\x8F\xA1\x61", "EUC-JP") == k_fffd + "a");
  // the end of the page inside a character: one U+FFFD for its bytes
  CHECK(decode("ab\x8F\xA1", "EUC-JP") == "ab" + k_fffd);
  CHECK(decode("ab\xA4", "EUC-JP") == "ab" + k_fffd);
}

TEST_CASE("GBK and gb18030 follow index gb18030 and its ranges", "[scrape][encoding][cjk]") {
  CHECK(decode("\xA3\xA0", "GBK") == "\xE3\x80\x80");  // U+3000, where glibc gave U+E5E5
  CHECK(decode("\xA3\xA0", "gb18030") == "\xE3\x80\x80");
  // GB18030-2022: rows A6 and FE left the Private Use Area (GBK too)
  CHECK(decode("\xA6\xD9", "GBK") == "\xEF\xB8\x90");      // U+FE10
  CHECK(decode("\xFE\x59", "gb18030") == "\xE9\xBE\xB4");  // U+9FB4
  // 0xA8 0xBC is U+1E3F; pointer 7457 (0x81 0x35 0xF4 0x37) is U+E7C7
  CHECK(decode("\xA8\xBC", "gb18030") == "\xE1\xB8\xBF");
  CHECK(decode("\x81\x35\xF4\x37", "gb18030") == "\xEE\x9F\x87");
  // the ends of the ranges: U+0080, U+FFFF, U+10000 and U+10FFFF; none past
  CHECK(decode("\x81\x30\x81\x30", "gb18030") == "\xC2\x80");
  CHECK(decode("\x84\x31\xA4\x39", "gb18030") == "\xEF\xBF\xBF");
  CHECK(decode("\x84\x31\xA5\x30", "gb18030") == k_fffd);
  CHECK(decode("\x90\x30\x81\x30", "gb18030") == "\xF0\x90\x80\x80");
  CHECK(decode("\xE3\x32\x9A\x35", "gb18030") == "\xF4\x8F\xBF\xBF");
  CHECK(decode("\xE3\x32\x9A\x36", "gb18030") == k_fffd);
  CHECK(decode("\xFF\x61", "gb18030") == k_fffd + "a");
  SECTION("a four-byte sequence broken or cut short") {
    // a third byte that is no lead: the lead is the error, digit and byte are read again
    CHECK(decode("ab\xA0\x35Z", "gb18030") == "ab" + k_fffd + "5Z");
    // a fourth byte that is no digit: likewise, from the digit on
    CHECK(decode("\x81\x30\x81 ", "gb18030") == k_fffd + "0" + k_fffd + " ");
    // the page ending inside it: one U+FFFD
    CHECK(decode("ab\x81\x30\x81", "gb18030") == "ab" + k_fffd);
    CHECK(decode("ab\x81\x30", "GBK") == "ab" + k_fffd);
    CHECK(decode("ab\x81", "GBK") == "ab" + k_fffd);
  }
}

TEST_CASE("ISO-2022-JP reads only the escape sequences the Standard takes",
          "[scrape][encoding][cjk]") {
  // NEC row 13 of index jis0208: 0x2D 0x21 is U+2460
  CHECK(decode("\x1B$B-!-|\x1B(B", "ISO-2022-JP") == "①∪");
  CHECK(decode("\x1B$@0!\x1B(B", "ISO-2022-JP") == "亜");  // ESC $ @ is JIS X 0208 too
  SECTION("sequences of ISO-2022-JP-2 are refused") {
    // ESC $ A (GB2312): U+FFFD, then "$A" read again as ASCII
    CHECK(decode("a\x1B$A0!b", "ISO-2022-JP") == "a" + k_fffd + "$A0!b");
    // ESC $ ( D (JIS X 0212), ESC $ ( C (KS C 5601)
    CHECK(decode("a\x1B$(D0!b", "ISO-2022-JP") == "a" + k_fffd + "$(D0!b");
    CHECK(decode("a\x1B$(C0!b", "ISO-2022-JP") == "a" + k_fffd + "$(C0!b");
    // ESC . A (a 96-character set) and ESC N (single shift 2)
    CHECK(decode("a\x1B.A\x1BNAb", "ISO-2022-JP") == "a" + k_fffd + ".A" + k_fffd + "NAb");
    // in two-byte mode, the refused escape's bytes are read as lead and trail
    // (0x24 0x41 is U+3061)
    CHECK(decode("\x1B$B\x1B$A0!", "ISO-2022-JP") == k_fffd + "ち亜");
  }
  SECTION("shift-out, shift-in and bytes past 0x7F are errors") {
    CHECK(decode("a\x0E\x62\x0F\x63", "ISO-2022-JP") == "a" + k_fffd + "b" + k_fffd + "c");
    CHECK(decode("a\xA4\xA2\x62", "ISO-2022-JP") == "a" + k_fffd + k_fffd + "b");
  }
  SECTION("two-byte mode keeps its pairs aligned after an error") {
    // 0x22 0x2F has no code point: one U+FFFD for the pair, then 0x30 0x21
    CHECK(decode("\x1B$B\"/0!\x1B(B", "ISO-2022-JP") == k_fffd + "亜");
    // a newline is no lead: U+FFFD, and the next pair is read
    CHECK(decode("\x1B$B0!\n0!\x1B(B", "ISO-2022-JP") == "亜" + k_fffd + "亜");
    // a trail out of range is taken with its lead
    CHECK(decode("\x1B$B0\x80\x30!\x1B(B", "ISO-2022-JP") == k_fffd + "亜");
  }
  SECTION("two escape sequences in a row give U+FFFD") {
    CHECK(decode("a\x1B$B\x1B(Bb", "ISO-2022-JP") == "a" + k_fffd + "b");
    CHECK(decode("\x1B(B\x1B(Ba", "ISO-2022-JP") == k_fffd + "a");
    CHECK(decode("\x1B(Ba", "ISO-2022-JP") == "a");  // the first, nothing before it: none
  }
  SECTION("an escape sequence or a character cut short") {
    CHECK(decode("a\x1B", "ISO-2022-JP") == "a" + k_fffd);
    CHECK(decode("a\x1B$", "ISO-2022-JP") == "a" + k_fffd + "$");
    CHECK(decode("\x1B$B0", "ISO-2022-JP") == k_fffd);
    // an escape sequence after a lead: the lead is the error, the sequence is read
    CHECK(decode("\x1B$B0\x1B(Ba", "ISO-2022-JP") == k_fffd + "a");
    CHECK(decode("\x1B$B0!", "ISO-2022-JP") == "亜");  // no ESC ( B at the end: no error
  }
}

TEST_CASE("Shift_JIS reads the user-defined rows, IBM rows and single bytes as the Standard does",
          "[scrape][encoding][cjk]") {
  CHECK(decode("\xF0\x40\xF9\xFC", "Shift_JIS") == "\xEE\x80\x80\xEE\x9D\x97");  // U+E000, U+E757
  CHECK(decode("\xFA\x40", "Shift_JIS") == "ⅰ");  // pointer 10716, U+2170
  CHECK(decode("\x87\x40", "Shift_JIS") == "①");  // NEC row 13
  CHECK(decode("\xA1\xDF", "Shift_JIS") == "｡ﾟ");
  CHECK(decode("\x80\xA0\xFD\xFE\xFF", "Shift_JIS") ==
        "\xC2\x80" + k_fffd + k_fffd + k_fffd + k_fffd);
  CHECK(decode("\x86\x91xyz", "Shift_JIS") == k_fffd + "xyz");
  CHECK(decode("\x81\x31", "Shift_JIS") == k_fffd + "1");
  CHECK(decode("a\x87", "Shift_JIS") == "a" + k_fffd);
}

TEST_CASE("EUC-KR takes both bytes of an unmapped pair and keeps the letter after it",
          "[scrape][encoding][cjk]") {
  // 0xA2 0xE8 is pointer 6437, of no code point: glibc dropped the 'A'
  CHECK(decode("\xA2\xE8\x41", "EUC-KR") == k_fffd + "A");
  CHECK(decode("\xA2\xE6", "EUC-KR") == "€");  // pointer 6435
  CHECK(decode("\xC9\x89Zebra", "EUC-KR") == k_fffd + "Zebra");
  CHECK(decode("\xC9\x40Zebra", "EUC-KR") == k_fffd + "@Zebra");  // 0x40 is no trail
  CHECK(decode("\x80\xFF\x61\xB0", "EUC-KR") == k_fffd + k_fffd + "a" + k_fffd);
}
