// A page's bytes as UTF-8, decoded the way browsers decode them (the WHATWG
// Encoding Standard and the HTML spec's encoding sniffing), before libxml2
// parses them as UTF-8.
//
// libxml2 2.9 left to itself stops reading at the first byte its decoder
// (iconv) rejects, without an error, and switches a page declared UTF-8 by
// <meta> to ISO-8859-1 at its first stray byte; it also passes charset labels
// to iconv as they are, where browsers read most of them as another encoding
// (ISO-8859-1 and US-ASCII as windows-1252, Shift_JIS as windows-31J, GB2312
// as GBK). Decoding here, a byte that is not of the encoding becomes U+FFFD
// and reading goes on.
#pragma once

#include <string>
#include <string_view>

namespace scrapekeep::scrape {

// The Encoding Standard's name of the encoding `label` stands for
// ("latin1" -> "windows-1252"), after trimming ASCII whitespace and ignoring
// case; empty when it names none we decode (unknown labels are ignored, as
// browsers ignore them).
std::string encoding_for_label(std::string_view label);

// The encoding a <meta> declares, found as the HTML spec's prescan finds it
// (comments and other tags' attributes skipped), up to the first <body>:
// its name as encoding_for_label() gives it, UTF-16 read as UTF-8 as the spec
// says; empty if none.
std::string meta_declared_encoding(std::string_view html);

// The encoding a page's XML declaration declares, found as the HTML spec's
// prescan finds it (`<?xml version="1.0" encoding="windows-1251"?>` at the
// very start, XHTML's; UTF-16 read as UTF-8), or UTF-16LE or UTF-16BE for a
// page that starts with '<?x' in UTF-16; empty if none.
std::string xml_declared_encoding(std::string_view html);

// The encoding a page is read in: a byte-order mark, else the Content-Type's
// `charset` (`http_charset`), else a <meta> (or '<?x' in UTF-16 before it),
// else an XML declaration, else UTF-8, unless more of its bytes break UTF-8
// than form it (then windows-1252, what browsers take for an undeclared
// Western page).
std::string sniff_encoding(std::string_view html, std::string_view http_charset);

// `html` decoded to UTF-8 in the encoding sniff_encoding() chooses, without
// its byte-order mark and NUL characters (browsers ignore those; libxml2 2.9
// would take one between two elements for the end of the page). Bytes that
// are not of the encoding become U+FFFD each.
std::string decode_page(std::string_view html, std::string_view http_charset);
// The same, without a copy when nothing changes (valid UTF-8 with no NUL, or
// ASCII with no NUL in any encoding but UTF-16 and ISO-2022-JP): a view of
// `html` then, else of `storage`, where the text is written.
std::string_view decode_page(std::string_view html, std::string_view http_charset,
                             std::string& storage);
// The same in `encoding`, as sniff_encoding() chose it for `html`.
std::string_view decode_page_as(std::string_view html, const std::string& encoding,
                                std::string& storage);

// Where `in` stops being valid UTF-8 without NUL characters; its size if it
// never does. (Also what the command line checks a name given to it with.)
std::size_t valid_utf8_prefix(std::string_view in);

}  // namespace scrapekeep::scrape
