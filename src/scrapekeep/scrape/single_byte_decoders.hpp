// The WHATWG Encoding Standard's single-byte decoder (its section 9), over
// the Standard's own indexes (encoding_indexes.hpp), and x-user-defined's
// (its section 14.3), as browsers decode pages in them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace scrapekeep::scrape {

// `in`, a whole page, decoded to UTF-8 by the Encoding Standard's decoder of
// `encoding` (its name as encoding_for_label() gives it: one of the 28
// single-byte encodings, windows-1252 among them, or "x-user-defined");
// nullopt for any other encoding. A byte below 0x80 is itself; a byte its
// index has no code point for is U+FFFD; x-user-defined's 0x80-0xFF are
// U+F780-U+F7FF. NUL characters are dropped.
std::optional<std::string> decode_single_byte(std::string_view in, std::string_view encoding);

// Whether `encoding` is one decode_single_byte() decodes.
bool is_single_byte(std::string_view encoding);

// The byte of `encoding` (as above) that reads as `character`, one non-ASCII
// character in UTF-8, as the Standard's encoder writes it; nullopt when the
// encoding has none (or is not single-byte).
std::optional<unsigned char> encode_single_byte(std::string_view character,
                                                std::string_view encoding);

}  // namespace scrapekeep::scrape
