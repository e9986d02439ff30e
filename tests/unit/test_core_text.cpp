// core/text: digit grouping, as inspect prints counts; printable text.

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "scrapekeep/core/text.hpp"

using scrapekeep::core::group_digits;
using scrapekeep::core::printable;
using scrapekeep::core::split_trimmed;

TEST_CASE("group_digits puts a comma between groups of three digits", "[core][text]") {
  CHECK(group_digits(0) == "0");
  CHECK(group_digits(7) == "7");
  CHECK(group_digits(999) == "999");
  CHECK(group_digits(1000) == "1,000");
  CHECK(group_digits(123456) == "123,456");
  CHECK(group_digits(1234567) == "1,234,567");
  CHECK(group_digits(-1) == "-1");
  CHECK(group_digits(-999) == "-999");
  CHECK(group_digits(-1000) == "-1,000");
  CHECK(group_digits(-1234567) == "-1,234,567");
}

TEST_CASE("group_digits writes both ends of int64", "[core][text]") {
  CHECK(group_digits(std::numeric_limits<std::int64_t>::max()) == "9,223,372,036,854,775,807");
  CHECK(group_digits(std::numeric_limits<std::int64_t>::min()) == "-9,223,372,036,854,775,808");
  CHECK(group_digits(std::numeric_limits<std::int64_t>::min() + 1) == "-9,223,372,036,854,775,807");
}

TEST_CASE("printable escapes controls, bidi overrides and bytes that are not UTF-8", "[core][text]") {
  // Printable ASCII, backslashes and UTF-8 of every length stay as they are.
  CHECK(printable("http://a.test/x?q=1\\2") == "http://a.test/x?q=1\\2");
  CHECK(printable("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8f\xa0") ==
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8f\xa0");
  CHECK(printable("") == "");
  // C0 controls (NUL, tab, line feed, ESC) and DEL.
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("\t\n\x1b[2J\x7f") == "\\x09\\x0A\\x1B[2J\\x7F");
  // C1 controls (U+0085, U+009B: CSI) and the bidirectional formatting ones.
  CHECK(printable("a\xc2\x85" "b\xc2\x9b") == "a\\u0085b\\u009B");
  CHECK(printable("\xe2\x80\xae" "evil\xe2\x81\xa6x\xe2\x80\x8f") ==
        "\\u202Eevil\\u2066x\\u200F");
  CHECK(printable("a\xd8\x9c" "b") == "a\\u061Cb");
  // Neighbours of those stay (U+00A0, U+2010 hyphen, U+202F).
  CHECK(printable("\xc2\xa0\xe2\x80\x90\xe2\x80\xaf") == "\xc2\xa0\xe2\x80\x90\xe2\x80\xaf");
  // Bytes that are not UTF-8: each on its own (a lone continuation byte, a
  // cut sequence, an overlong form, a surrogate, beyond U+10FFFF).
  CHECK(printable("x\xffy\x80") == "x\\xFFy\\x80");
  CHECK(printable("\xe2\x82") == "\\xE2\\x82");
  CHECK(printable("\xe2\x82z") == "\\xE2\\x82z");
  CHECK(printable("\xc0\xaf") == "\\xC0\\xAF");
  CHECK(printable("\xed\xa0\x80") == "\\xED\\xA0\\x80");
  CHECK(printable("\xf4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");
}

TEST_CASE("without_url_passwords writes each URL's password as ***", "[core][text]") {
  using scrapekeep::core::without_url_passwords;
  CHECK(without_url_passwords("job x finished: error (http://user:s3cret@h.test/a: HTTP 404)") ==
        "job x finished: error (http://user:***@h.test/a: HTTP 404)");
  CHECK(without_url_passwords("https://u:p@a/ and http://v:q@b:81?x") ==
        "https://u:***@a/ and http://v:***@b:81?x");
  // A ')' or '(' is a sub-delim a password may hold as written (RFC 3986 3.2.1).
  CHECK(without_url_passwords("job x finished: error (http://u:pa)ss@h.test/: HTTP 404)") ==
        "job x finished: error (http://u:***@h.test/: HTTP 404)");
  CHECK(without_url_passwords("(http://u:p@h)") == "(http://u:***@h)");
  // No password, no user, an '@' past the host: as it was.
  for (const char* same : {"http://user@h/", "http://h/a@b", "http://h:80/x?u=a:b@c", "no url",
                           "http://h/x (mail a:b@c)"}) {
    INFO(same);
    CHECK(without_url_passwords(same) == same);
  }
}

TEST_CASE("split_trimmed splits a field's list and trims each item", "[core][text]") {
  using Items = std::vector<std::string>;
  CHECK(split_trimmed("gzip, br;q=0 ,\tidentity", ',') == Items{"gzip", "br;q=0", "identity"});
  CHECK(split_trimmed("a,,b", ',') == Items{"a", "", "b"});
  CHECK(split_trimmed("", ',') == Items{""});
  CHECK(split_trimmed("close", ',') == Items{"close"});
}

TEST_CASE("percent_escape_at reads one %XX escape, in either case, or none", "[core][text]") {
  using scrapekeep::core::percent_escape_at;
  CHECK(percent_escape_at("a%41b", 1) == std::optional<char>('A'));
  CHECK(percent_escape_at("%6d", 0) == std::optional<char>('m'));
  CHECK(percent_escape_at("%6D", 0) == std::optional<char>('m'));
  CHECK(percent_escape_at("%00", 0) == std::optional<char>('\0'));
  CHECK(percent_escape_at("%ff", 0) == std::optional<char>('\xff'));
  CHECK_FALSE(percent_escape_at("%4", 0));
  CHECK_FALSE(percent_escape_at("%4g", 0));
  CHECK_FALSE(percent_escape_at("a%41", 0));
  CHECK_FALSE(percent_escape_at("%41", 1));
  CHECK_FALSE(percent_escape_at("", 0));
}
