// The WHATWG Encoding Standard's decoders of the CJK encodings (its sections
// 10 to 13: gb18030, which GBK shares, Big5, EUC-JP, ISO-2022-JP, Shift_JIS
// and EUC-KR), over the Standard's own indexes (encoding_indexes.hpp), as
// browsers decode pages in them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace scrapekeep::scrape {

// `in`, a whole page, decoded to UTF-8 by the Encoding Standard's decoder of
// `encoding` (its name as encoding_for_label() gives it: "GBK", "gb18030",
// "Big5", "EUC-JP", "ISO-2022-JP", "Shift_JIS" or "EUC-KR"); nullopt for any
// other encoding. Each error of the decoder is one U+FFFD (a character cut
// short by the end of `in` too); NUL characters are dropped.
std::optional<std::string> decode_cjk(std::string_view in, std::string_view encoding);

}  // namespace scrapekeep::scrape
