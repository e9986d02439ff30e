#pragma once
// ASCII text helpers shared by the HTTP side, the scraper and the store.
// Bytes outside ASCII (UTF-8 included) pass through unchanged.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scrapekeep::core {

// `text` with A-Z lowered.
std::string lower_ascii(std::string text);

// Whether `text`, its A-Z lowered, is `lower`.
bool equals_ascii_lower(std::string_view text, std::string_view lower);

// Space, tab, CR, LF or form feed (HTML's and HTTP's whitespace).
bool is_ascii_space(unsigned char c);

// `text` without leading and trailing is_ascii_space bytes.
std::string trim_ascii(const std::string& text);

// The items of a list such as an HTTP field's ("gzip, br;q=0" split at ','),
// each trim_ascii'd; empty items kept ("a,,b" has three). One item at least.
std::vector<std::string> split_trimmed(const std::string& text, char separator);

// The byte a "%XX" escape (two hex digits) at `text[at]` stands for, or
// nullopt when none starts there.
std::optional<char> percent_escape_at(std::string_view text, std::size_t at);

// Characters (code points) in valid UTF-8 `text`: its bytes that do not
// continue a character. What the contract's "at most N characters" counts.
std::size_t utf8_length(const std::string& text);

// The UTF-8 sequence at `b[i]` (a byte of 0x80 or more), as the Encoding
// Standard's decoder reads it: its length if it is well formed, else the
// length of the part that cannot be completed (the byte that breaks it is
// read again), at least 1.
struct Utf8Sequence {
  std::size_t length = 0;
  bool valid = false;
};
Utf8Sequence utf8_sequence(const unsigned char* b, std::size_t i, std::size_t n);

// `text` safe to print on a terminal, whoever wrote it (a scraped site's
// header, a damaged database): C0 controls and DEL become "\x1B", bytes
// that are not UTF-8 "\xFF", C1 controls and the bidirectional formatting
// characters (which reorder what follows them on screen) "\u0085". All
// else, backslashes included, is kept.
std::string printable(std::string_view text);

// `text` with the password of each URL in it ("http://user:pw@host/")
// written "***": for a log line that quotes a job's URL.
std::string without_url_passwords(std::string text);

// `text` padded with spaces to `width` characters (utf8_length, so that a
// column of UTF-8 names lines up), on the left when `right`; as it is when
// already that wide.
std::string pad(const std::string& text, std::size_t width, bool right = false);

// Appends `byte` percent-encoded ("%E9", upper-case hex, as RFC 3986 2.1 advises).
void append_percent_encoded(std::string& out, unsigned char byte);

// The length of `url`'s "http://" or "https://" (in any case), or 0.
std::size_t http_scheme_length(const std::string& url);

// Whether `text` holds a C0 control character, DEL or (in UTF-8) a C1
// control character (U+0080..U+009F, among them NEL, a line break).
bool has_control_char(const std::string& text);

// `n` in decimal with a comma between groups of three digits: 1234567 ->
// "1,234,567", -1234 -> "-1,234"; every int64 value, INT64_MIN included.
std::string group_digits(std::int64_t n);

} // namespace scrapekeep::core
