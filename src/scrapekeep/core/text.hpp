#pragma once
// ASCII text helpers shared by the HTTP side, the scraper and the store.
// Bytes outside ASCII (UTF-8 included) pass through unchanged.

#include <string>

namespace scrapekeep::core {

// `text` with A-Z lowered.
std::string lower_ascii(std::string text);

// Space, tab, CR, LF or form feed (HTML's and HTTP's whitespace).
bool is_ascii_space(unsigned char c);

// `text` without leading and trailing is_ascii_space bytes.
std::string trim_ascii(const std::string& text);

} // namespace scrapekeep::core
