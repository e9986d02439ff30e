#include "scrapekeep/scrape/page_encoding.hpp"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <utility>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/scrape/cjk_decoders.hpp"

namespace scrapekeep::scrape {
namespace {

// The Encoding Standard's labels (encoding.spec.whatwg.org, "Names and
// labels"), each with its encoding's name. The "replacement" encoding (whose
// decoder gives one U+FFFD for a whole page) is left out: its labels are
// ignored like unknown ones.
struct Label {
  std::string_view label;
  std::string_view encoding;
};
constexpr Label k_labels[] = {
    {"unicode-1-1-utf-8", "UTF-8"}, {"unicode11utf8", "UTF-8"}, {"unicode20utf8", "UTF-8"},
    {"utf-8", "UTF-8"}, {"utf8", "UTF-8"}, {"x-unicode20utf8", "UTF-8"},
    {"866", "IBM866"}, {"cp866", "IBM866"}, {"csibm866", "IBM866"}, {"ibm866", "IBM866"},
    {"csisolatin2", "ISO-8859-2"}, {"iso-8859-2", "ISO-8859-2"}, {"iso-ir-101", "ISO-8859-2"},
    {"iso8859-2", "ISO-8859-2"}, {"iso88592", "ISO-8859-2"}, {"iso_8859-2", "ISO-8859-2"},
    {"iso_8859-2:1987", "ISO-8859-2"}, {"l2", "ISO-8859-2"}, {"latin2", "ISO-8859-2"},
    {"csisolatin3", "ISO-8859-3"}, {"iso-8859-3", "ISO-8859-3"}, {"iso-ir-109", "ISO-8859-3"},
    {"iso8859-3", "ISO-8859-3"}, {"iso88593", "ISO-8859-3"}, {"iso_8859-3", "ISO-8859-3"},
    {"iso_8859-3:1988", "ISO-8859-3"}, {"l3", "ISO-8859-3"}, {"latin3", "ISO-8859-3"},
    {"csisolatin4", "ISO-8859-4"}, {"iso-8859-4", "ISO-8859-4"}, {"iso-ir-110", "ISO-8859-4"},
    {"iso8859-4", "ISO-8859-4"}, {"iso88594", "ISO-8859-4"}, {"iso_8859-4", "ISO-8859-4"},
    {"iso_8859-4:1988", "ISO-8859-4"}, {"l4", "ISO-8859-4"}, {"latin4", "ISO-8859-4"},
    {"csisolatincyrillic", "ISO-8859-5"}, {"cyrillic", "ISO-8859-5"},
    {"iso-8859-5", "ISO-8859-5"}, {"iso-ir-144", "ISO-8859-5"}, {"iso8859-5", "ISO-8859-5"},
    {"iso88595", "ISO-8859-5"}, {"iso_8859-5", "ISO-8859-5"}, {"iso_8859-5:1988", "ISO-8859-5"},
    {"arabic", "ISO-8859-6"}, {"asmo-708", "ISO-8859-6"}, {"csiso88596e", "ISO-8859-6"},
    {"csiso88596i", "ISO-8859-6"}, {"csisolatinarabic", "ISO-8859-6"},
    {"ecma-114", "ISO-8859-6"}, {"iso-8859-6", "ISO-8859-6"}, {"iso-8859-6-e", "ISO-8859-6"},
    {"iso-8859-6-i", "ISO-8859-6"}, {"iso-ir-127", "ISO-8859-6"}, {"iso8859-6", "ISO-8859-6"},
    {"iso88596", "ISO-8859-6"}, {"iso_8859-6", "ISO-8859-6"}, {"iso_8859-6:1987", "ISO-8859-6"},
    {"csisolatingreek", "ISO-8859-7"}, {"ecma-118", "ISO-8859-7"}, {"elot_928", "ISO-8859-7"},
    {"greek", "ISO-8859-7"}, {"greek8", "ISO-8859-7"}, {"iso-8859-7", "ISO-8859-7"},
    {"iso-ir-126", "ISO-8859-7"}, {"iso8859-7", "ISO-8859-7"}, {"iso88597", "ISO-8859-7"},
    {"iso_8859-7", "ISO-8859-7"}, {"iso_8859-7:1987", "ISO-8859-7"},
    {"sun_eu_greek", "ISO-8859-7"},
    {"csiso88598e", "ISO-8859-8"}, {"csisolatinhebrew", "ISO-8859-8"}, {"hebrew", "ISO-8859-8"},
    {"iso-8859-8", "ISO-8859-8"}, {"iso-8859-8-e", "ISO-8859-8"}, {"iso-ir-138", "ISO-8859-8"},
    {"iso8859-8", "ISO-8859-8"}, {"iso88598", "ISO-8859-8"}, {"iso_8859-8", "ISO-8859-8"},
    {"iso_8859-8:1988", "ISO-8859-8"}, {"visual", "ISO-8859-8"},
    {"csiso88598i", "ISO-8859-8-I"}, {"iso-8859-8-i", "ISO-8859-8-I"},
    {"logical", "ISO-8859-8-I"},
    {"csisolatin6", "ISO-8859-10"}, {"iso-8859-10", "ISO-8859-10"},
    {"iso-ir-157", "ISO-8859-10"}, {"iso8859-10", "ISO-8859-10"}, {"iso885910", "ISO-8859-10"},
    {"l6", "ISO-8859-10"}, {"latin6", "ISO-8859-10"},
    {"iso-8859-13", "ISO-8859-13"}, {"iso8859-13", "ISO-8859-13"},
    {"iso885913", "ISO-8859-13"},
    {"iso-8859-14", "ISO-8859-14"}, {"iso8859-14", "ISO-8859-14"},
    {"iso885914", "ISO-8859-14"},
    {"csisolatin9", "ISO-8859-15"}, {"iso-8859-15", "ISO-8859-15"},
    {"iso8859-15", "ISO-8859-15"}, {"iso885915", "ISO-8859-15"}, {"iso_8859-15", "ISO-8859-15"},
    {"l9", "ISO-8859-15"},
    {"iso-8859-16", "ISO-8859-16"},
    {"cskoi8r", "KOI8-R"}, {"koi", "KOI8-R"}, {"koi8", "KOI8-R"}, {"koi8-r", "KOI8-R"},
    {"koi8_r", "KOI8-R"},
    {"koi8-ru", "KOI8-U"}, {"koi8-u", "KOI8-U"},
    {"csmacintosh", "macintosh"}, {"mac", "macintosh"}, {"macintosh", "macintosh"},
    {"x-mac-roman", "macintosh"},
    {"dos-874", "windows-874"}, {"iso-8859-11", "windows-874"}, {"iso8859-11", "windows-874"},
    {"iso885911", "windows-874"}, {"tis-620", "windows-874"}, {"windows-874", "windows-874"},
    {"cp1250", "windows-1250"}, {"windows-1250", "windows-1250"},
    {"x-cp1250", "windows-1250"},
    {"cp1251", "windows-1251"}, {"windows-1251", "windows-1251"},
    {"x-cp1251", "windows-1251"},
    {"ansi_x3.4-1968", "windows-1252"}, {"ascii", "windows-1252"}, {"cp1252", "windows-1252"},
    {"cp819", "windows-1252"}, {"csisolatin1", "windows-1252"}, {"ibm819", "windows-1252"},
    {"iso-8859-1", "windows-1252"}, {"iso-ir-100", "windows-1252"},
    {"iso8859-1", "windows-1252"}, {"iso88591", "windows-1252"}, {"iso_8859-1", "windows-1252"},
    {"iso_8859-1:1987", "windows-1252"}, {"l1", "windows-1252"}, {"latin1", "windows-1252"},
    {"us-ascii", "windows-1252"}, {"windows-1252", "windows-1252"},
    {"x-cp1252", "windows-1252"},
    {"cp1253", "windows-1253"}, {"windows-1253", "windows-1253"},
    {"x-cp1253", "windows-1253"},
    {"cp1254", "windows-1254"}, {"csisolatin5", "windows-1254"}, {"iso-8859-9", "windows-1254"},
    {"iso-ir-148", "windows-1254"}, {"iso8859-9", "windows-1254"}, {"iso88599", "windows-1254"},
    {"iso_8859-9", "windows-1254"}, {"iso_8859-9:1989", "windows-1254"},
    {"l5", "windows-1254"}, {"latin5", "windows-1254"}, {"windows-1254", "windows-1254"},
    {"x-cp1254", "windows-1254"},
    {"cp1255", "windows-1255"}, {"windows-1255", "windows-1255"},
    {"x-cp1255", "windows-1255"},
    {"cp1256", "windows-1256"}, {"windows-1256", "windows-1256"},
    {"x-cp1256", "windows-1256"},
    {"cp1257", "windows-1257"}, {"windows-1257", "windows-1257"},
    {"x-cp1257", "windows-1257"},
    {"cp1258", "windows-1258"}, {"windows-1258", "windows-1258"},
    {"x-cp1258", "windows-1258"},
    {"x-mac-cyrillic", "x-mac-cyrillic"}, {"x-mac-ukrainian", "x-mac-cyrillic"},
    {"chinese", "GBK"}, {"csgb2312", "GBK"}, {"csiso58gb231280", "GBK"}, {"gb2312", "GBK"},
    {"gb_2312", "GBK"}, {"gb_2312-80", "GBK"}, {"gbk", "GBK"}, {"iso-ir-58", "GBK"},
    {"x-gbk", "GBK"},
    {"gb18030", "gb18030"},
    {"big5", "Big5"}, {"big5-hkscs", "Big5"}, {"cn-big5", "Big5"}, {"csbig5", "Big5"},
    {"x-x-big5", "Big5"},
    {"cseucpkdfmtjapanese", "EUC-JP"}, {"euc-jp", "EUC-JP"}, {"x-euc-jp", "EUC-JP"},
    {"csiso2022jp", "ISO-2022-JP"}, {"iso-2022-jp", "ISO-2022-JP"},
    {"csshiftjis", "Shift_JIS"}, {"ms932", "Shift_JIS"}, {"ms_kanji", "Shift_JIS"},
    {"shift-jis", "Shift_JIS"}, {"shift_jis", "Shift_JIS"}, {"sjis", "Shift_JIS"},
    {"windows-31j", "Shift_JIS"}, {"x-sjis", "Shift_JIS"},
    {"cseuckr", "EUC-KR"}, {"csksc56011987", "EUC-KR"}, {"euc-kr", "EUC-KR"},
    {"iso-ir-149", "EUC-KR"}, {"korean", "EUC-KR"}, {"ks_c_5601-1987", "EUC-KR"},
    {"ks_c_5601-1989", "EUC-KR"}, {"ksc5601", "EUC-KR"}, {"ksc_5601", "EUC-KR"},
    {"windows-949", "EUC-KR"},
    {"unicodefffe", "UTF-16BE"}, {"utf-16be", "UTF-16BE"},
    {"csunicode", "UTF-16LE"}, {"iso-10646-ucs-2", "UTF-16LE"}, {"ucs-2", "UTF-16LE"},
    {"unicode", "UTF-16LE"}, {"unicodefeff", "UTF-16LE"}, {"utf-16", "UTF-16LE"},
    {"utf-16le", "UTF-16LE"},
    {"x-user-defined", "x-user-defined"},
};

// glibc's iconv name for each encoding decoded through iconv: the one that
// decodes as the Encoding Standard does. (The CJK encodings have the
// Standard's own decoders, in cjk_decoders.cpp.)
constexpr Label k_iconv_names[] = {
    {"IBM866", "IBM866"},
    {"ISO-8859-8-I", "ISO-8859-8"},
    {"KOI8-R", "KOI8-R"},
    {"KOI8-U", "KOI8-U"},
    {"macintosh", "MACINTOSH"},
    {"windows-874", "WINDOWS-874"},
    {"windows-1250", "CP1250"},
    {"windows-1251", "CP1251"},
    {"windows-1253", "CP1253"},
    {"windows-1254", "CP1254"},
    {"windows-1255", "CP1255"},
    {"windows-1256", "CP1256"},
    {"windows-1257", "CP1257"},
    {"windows-1258", "CP1258"},
    {"x-mac-cyrillic", "MAC-CYRILLIC"},
    {"UTF-16BE", "UTF-16BE"},
    {"UTF-16LE", "UTF-16LE"},
};

// windows-1252's bytes 0x80-0x9F; the rest is Latin-1. The five bytes
// Windows leaves undefined are the C1 controls of the same number, as in the
// Encoding Standard's index.
constexpr std::array<char16_t, 32> k_windows_1252_high = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_ascii_space(char c) { return core::is_ascii_space(static_cast<unsigned char>(c)); }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

void append_code_point(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Whether the 8 bytes at `p` are ASCII and none is NUL.
bool plain_ascii_word(const unsigned char* p) {
  std::uint64_t w = 0;
  std::memcpy(&w, p, sizeof w);
  constexpr std::uint64_t k_high = 0x8080808080808080ULL;
  constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
  return (w & k_high) == 0 && ((w - k_ones) & ~w & k_high) == 0;
}

// The UTF-8 sequence at `b[i]` (a byte of 0x80 or more), as the Encoding
// Standard's decoder reads it: its length if it is well formed, else the
// length of the part that cannot be completed (the byte that breaks it is
// read again), at least 1.
struct Utf8Sequence {
  std::size_t length = 0;
  bool valid = false;
};
Utf8Sequence utf8_sequence(const unsigned char* b, std::size_t i, std::size_t n) {
  const unsigned char c = b[i];
  std::size_t need = 0;
  unsigned char lower = 0x80;
  unsigned char upper = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    lower = c == 0xE0 ? 0xA0 : lower;
    upper = c == 0xED ? 0x9F : upper;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    lower = c == 0xF0 ? 0x90 : lower;
    upper = c == 0xF4 ? 0x8F : upper;
  } else {
    return {1, false};
  }
  std::size_t j = i + 1;
  for (std::size_t seen = 0; seen < need; ++seen, ++j) {
    if (j >= n || b[j] < lower || b[j] > upper) {
      return {j - i, false};
    }
    lower = 0x80;
    upper = 0xBF;
  }
  return {j - i, true};
}

// The Encoding Standard's UTF-8 decoder, NUL characters dropped: each maximal
// part of a sequence that cannot be completed becomes one U+FFFD. Valid
// stretches are copied whole; from `start` on, `in` is not known valid.
std::string decode_utf8(std::string_view in, std::size_t start) {
  std::string out;
  out.reserve(in.size() + 16);
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t run = 0;  // start of the valid stretch not yet copied
  std::size_t i = start;
  while (i < n) {
    if (b[i] >= 0x01 && b[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Sequence seq = b[i] == 0 ? Utf8Sequence{1, false} : utf8_sequence(b, i, n);
    if (!seq.valid) {
      out.append(in.data() + run, i - run);
      if (b[i] != 0) {
        out += k_replacement;
      }
      run = i + seq.length;
    }
    i += seq.length;
  }
  out.append(in.data() + run, n - run);
  return out;
}

// Where `in` stops being valid UTF-8 without NUL characters; its size if it
// never does.
std::size_t valid_utf8_prefix(std::string_view in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n && plain_ascii_word(b + i)) {
      i += 8;
    } else if (b[i] >= 0x01 && b[i] < 0x80) {
      ++i;
    } else if (const Utf8Sequence seq = utf8_sequence(b, i, n); b[i] != 0 && seq.valid) {
      i += seq.length;
    } else {
      return i;
    }
  }
  return n;
}

// windows-1252, ISO-8859-1 and US-ASCII as browsers read them; and
// x-user-defined, whose bytes 0x80-0xFF are U+F780-U+F7FF.
std::string decode_single_byte(std::string_view in, bool user_defined) {
  std::string out;
  out.reserve(in.size() + in.size() / 4);
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) {
      continue;
    }
    if (c < 0x80) {
      out += ch;
    } else if (user_defined) {
      append_code_point(out, 0xF780 + (c - 0x80));
    } else if (c < 0xA0) {
      append_code_point(out, k_windows_1252_high[c - 0x80]);
    } else {
      append_code_point(out, c);
    }
  }
  return out;
}

// What a byte that iconv refuses at `p` (`left` bytes on) reads as, and how
// many bytes it takes, as the Encoding Standard's decoders read it.
struct Refused {
  std::uint32_t code_point = 0xFFFD;
  std::size_t length = 1;
};
Refused refused_bytes(const std::string& encoding, const unsigned char* p, std::size_t left) {
  const unsigned char b = p[0];
  if (encoding == "UTF-16BE" || encoding == "UTF-16LE") {
    return {0xFFFD, std::min<std::size_t>(2, left)};  // code units stay aligned
  }
  // single-byte: the bytes Windows leaves undefined are their C1 controls,
  // as in windows-1252
  const bool c1 = b >= 0x80 && b <= 0x9F;
  return {c1 ? b : 0xFFFDu, 1};
}

// Through glibc's iconv (`iconv_name`) for `encoding`: a byte sequence it
// refuses, or one cut short by the end of the page, becomes U+FFFD (or what
// refused_bytes() says) and reading goes on after it.
std::optional<std::string> decode_with_iconv(std::string_view in, const char* iconv_name,
                                             const std::string& encoding) {
  iconv_t cd = iconv_open("UTF-8", iconv_name);
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return std::nullopt;
  }
  std::string out(in.size() * 2 + 64, '\0');
  std::size_t used = 0;
  char* src = const_cast<char*>(in.data());
  std::size_t src_left = in.size();
  const auto room = [&] {
    if (out.size() - used < 16) {
      out.resize(out.size() * 2);
    }
  };
  // Converts what is left of the input (or, with none, flushes a stateful
  // encoding's state); the error it ended on, 0 if none.
  const auto convert = [&](bool flush) {
    room();
    char* dst = out.data() + used;
    std::size_t dst_left = out.size() - used;
    const std::size_t r = flush ? iconv(cd, nullptr, nullptr, &dst, &dst_left)
                                : iconv(cd, &src, &src_left, &dst, &dst_left);
    const int error = r == static_cast<std::size_t>(-1) ? errno : 0;
    used = out.size() - dst_left;
    return error;
  };
  while (src_left > 0) {
    const int error = convert(false);
    if (error == EILSEQ || error == EINVAL) {  // EINVAL: cut short by the end
      const auto* at = reinterpret_cast<const unsigned char*>(src);
      const Refused refused = refused_bytes(encoding, at, src_left);
      std::string text;
      append_code_point(text, refused.code_point);
      room();
      out.replace(used, text.size(), text);
      used += text.size();
      src += refused.length;
      src_left -= refused.length;
    } else if (error == E2BIG) {  // whatever room was left, it wants more
      out.resize(out.size() * 2);
    } else if (error != 0) {
      break;
    }
  }
  while (convert(true) == E2BIG) {
    out.resize(out.size() * 2);
  }
  iconv_close(cd);
  out.resize(used);
  out.erase(std::remove(out.begin(), out.end(), '\0'), out.end());
  return out;
}

// Whether `html` reads better as UTF-8 than as windows-1252: fewer bytes that
// break UTF-8 than well-formed multi-byte sequences (so a UTF-8 page with a
// stray byte stays UTF-8, and a Latin-1 page with accents does not).
bool mostly_utf8(std::string_view html) {
  std::size_t sequences = 0;
  std::size_t broken = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(html.data());
  const std::size_t n = html.size();
  for (std::size_t i = 0; i < n;) {
    if (b[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Sequence seq = utf8_sequence(b, i, n);
    ++(seq.valid ? sequences : broken);
    i += seq.length;
  }
  return broken <= sequences;
}

// The encoding of a byte-order mark at the start of `html`, and its length.
std::pair<std::string_view, std::size_t> bom_encoding(std::string_view html) {
  if (html.size() >= 3 && html.compare(0, 3, "\xEF\xBB\xBF") == 0) {
    return {"UTF-8", 3};
  }
  if (html.size() >= 2 && html.compare(0, 2, "\xFE\xFF") == 0) {
    return {"UTF-16BE", 2};
  }
  if (html.size() >= 2 && html.compare(0, 2, "\xFF\xFE") == 0) {
    return {"UTF-16LE", 2};
  }
  return {{}, 0};
}

// The HTML spec's prescan, "get an attribute": from `pos`, the next
// attribute of a tag, its name and value lowercased; nullopt at the tag's
// end (or the input's).
struct Attribute {
  std::string name;
  std::string value;
};
std::optional<Attribute> next_attribute(std::string_view s, std::size_t& pos) {
  const std::size_t n = s.size();
  while (pos < n && (is_ascii_space(s[pos]) || s[pos] == '/')) {
    ++pos;
  }
  if (pos >= n || s[pos] == '>') {
    return std::nullopt;
  }
  Attribute attr;
  // The name: up to '=' (not its first character), a space, '/' or '>'.
  for (;; ++pos) {
    if (pos >= n) {
      return std::nullopt;
    }
    const char c = s[pos];
    if (c == '=' && !attr.name.empty()) {
      ++pos;
      break;
    }
    if (is_ascii_space(c)) {
      while (pos < n && is_ascii_space(s[pos])) {
        ++pos;
      }
      if (pos >= n || s[pos] != '=') {
        return attr;
      }
      ++pos;
      break;
    }
    if (c == '/' || c == '>') {
      return attr;
    }
    attr.name += ascii_lower(c);
  }
  while (pos < n && is_ascii_space(s[pos])) {
    ++pos;
  }
  if (pos >= n) {
    return std::nullopt;
  }
  if (s[pos] == '"' || s[pos] == '\'') {
    const char quote = s[pos++];
    const std::size_t end = s.find(quote, pos);
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    for (; pos < end; ++pos) {
      attr.value += ascii_lower(s[pos]);
    }
    ++pos;
    return attr;
  }
  if (s[pos] == '>') {
    return attr;
  }
  for (; pos < n && !is_ascii_space(s[pos]) && s[pos] != '>'; ++pos) {
    attr.value += ascii_lower(s[pos]);
  }
  return attr;
}

// "Extracting a character encoding from a meta element": the label after
// "charset=" in a content attribute (lowercased already).
std::string label_in_content(std::string_view content) {
  std::size_t pos = 0;
  while ((pos = content.find("charset", pos)) != std::string_view::npos) {
    pos += 7;
    while (pos < content.size() && is_ascii_space(content[pos])) {
      ++pos;
    }
    if (pos >= content.size() || content[pos] != '=') {
      continue;
    }
    ++pos;
    while (pos < content.size() && is_ascii_space(content[pos])) {
      ++pos;
    }
    if (pos >= content.size()) {
      return {};
    }
    if (content[pos] == '"' || content[pos] == '\'') {
      const std::size_t end = content.find(content[pos], pos + 1);
      return end == std::string_view::npos ? std::string()
                                           : std::string(content.substr(pos + 1, end - pos - 1));
    }
    std::size_t end = pos;
    while (end < content.size() && !is_ascii_space(content[end]) && content[end] != ';') {
      ++end;
    }
    return std::string(content.substr(pos, end - pos));
  }
  return {};
}

// A <meta>'s declared encoding, its attributes read from `pos` (after the
// tag name): empty if it declares none the spec takes.
std::string meta_encoding(std::string_view s, std::size_t& pos) {
  std::unordered_set<std::string> seen;  // a page's head may be megabytes of one <meta>
  bool got_pragma = false;
  std::optional<bool> need_pragma;
  std::string charset;
  while (auto attr = next_attribute(s, pos)) {
    if (!seen.insert(attr->name).second) {
      continue;
    }
    if (attr->name == "http-equiv") {
      got_pragma = got_pragma || attr->value == "content-type";
    } else if (attr->name == "content" && charset.empty()) {
      charset = encoding_for_label(label_in_content(attr->value));
      if (!charset.empty()) {
        need_pragma = true;
      }
    } else if (attr->name == "charset") {
      charset = encoding_for_label(attr->value);
      need_pragma = false;
    }
  }
  if (!need_pragma || (*need_pragma && !got_pragma) || charset.empty()) {
    return {};
  }
  if (charset == "UTF-16BE" || charset == "UTF-16LE") {
    return "UTF-8";
  }
  return charset == "x-user-defined" ? "windows-1252" : charset;
}

bool starts_with_ci(std::string_view s, std::size_t pos, std::string_view word) {
  if (s.size() - pos < word.size()) {
    return false;
  }
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (ascii_lower(s[pos + k]) != word[k]) {
      return false;
    }
  }
  return true;
}

std::string decode_other(std::string_view html, const std::string& encoding) {
  if (encoding == "windows-1252" || encoding == "x-user-defined") {
    return decode_single_byte(html, encoding == "x-user-defined");
  }
  if (auto text = decode_cjk(html, encoding)) {
    return std::move(*text);
  }
  for (const Label& entry : k_iconv_names) {
    if (entry.label == encoding) {
      if (auto text = decode_with_iconv(html, std::string(entry.encoding).c_str(), encoding)) {
        return std::move(*text);
      }
      break;
    }
  }
  // ISO-8859-N, or an iconv without the module: iconv under the name itself,
  // else windows-1252 (every byte read as something, nothing lost).
  if (auto text = decode_with_iconv(html, encoding.c_str(), encoding)) {
    return std::move(*text);
  }
  return decode_single_byte(html, false);
}

}  // namespace

std::string encoding_for_label(std::string_view label) {
  const std::string key = core::lower_ascii(core::trim_ascii(std::string(label)));
  for (const Label& entry : k_labels) {
    if (entry.label == key) {
      return std::string(entry.encoding);
    }
  }
  return {};
}

std::string meta_declared_encoding(std::string_view s) {
  const std::size_t n = s.size();
  std::size_t pos = 0;
  while (pos < n) {
    pos = s.find('<', pos);
    if (pos == std::string_view::npos) {
      return {};
    }
    if (s.compare(pos, 4, "<!--") == 0) {
      const std::size_t end = s.find("-->", pos + 2);
      if (end == std::string_view::npos) {
        return {};
      }
      pos = end + 3;
    } else if (starts_with_ci(s, pos, "<meta") && pos + 5 < n &&
               (is_ascii_space(s[pos + 5]) || s[pos + 5] == '/')) {
      pos += 6;
      std::string found = meta_encoding(s, pos);
      if (!found.empty()) {
        return found;
      }
    } else if (pos + 1 < n && (is_ascii_alpha(s[pos + 1]) ||
                               (s[pos + 1] == '/' && pos + 2 < n && is_ascii_alpha(s[pos + 2])))) {
      // Another tag: its name, then its attributes, so that a '>' or a
      // "<meta" in an attribute's value is not taken for markup.
      const bool body = starts_with_ci(s, pos, "<body") &&
                        (pos + 5 >= n || is_ascii_space(s[pos + 5]) || s[pos + 5] == '>' ||
                         s[pos + 5] == '/');
      if (body) {
        return {};  // a <meta> after this is too late to take, as in most pages
      }
      while (pos < n && !is_ascii_space(s[pos]) && s[pos] != '>') {
        ++pos;
      }
      while (next_attribute(s, pos)) {
      }
      if (pos < n && s[pos] == '>') {
        ++pos;
      }
    } else if (s.compare(pos, 2, "<!") == 0 || s.compare(pos, 2, "</") == 0 ||
               s.compare(pos, 2, "<?") == 0) {
      const std::size_t end = s.find('>', pos);
      if (end == std::string_view::npos) {
        return {};
      }
      pos = end + 1;
    } else {
      ++pos;
    }
  }
  return {};
}

std::string sniff_encoding(std::string_view html, std::string_view http_charset) {
  if (const auto bom = bom_encoding(html); bom.second != 0) {
    return std::string(bom.first);
  }
  if (std::string declared = encoding_for_label(http_charset); !declared.empty()) {
    return declared;
  }
  if (std::string declared = meta_declared_encoding(html); !declared.empty()) {
    return declared;
  }
  // Valid UTF-8 is told at the fast scan's speed (8 ASCII bytes a step).
  return valid_utf8_prefix(html) == html.size() || mostly_utf8(html) ? "UTF-8" : "windows-1252";
}

std::string_view decode_page(std::string_view html, std::string_view http_charset,
                             std::string& storage) {
  const std::string encoding = sniff_encoding(html, http_charset);
  html.remove_prefix(bom_encoding(html).second);
  if (encoding == "UTF-8") {
    const std::size_t valid = valid_utf8_prefix(html);
    if (valid == html.size()) {
      return html;  // nothing to change: not copied
    }
    storage = decode_utf8(html, valid);
    return storage;
  }
  storage = decode_other(html, encoding);
  return storage;
}

std::string decode_page(std::string_view html, std::string_view http_charset) {
  std::string storage;
  return std::string(decode_page(html, http_charset, storage));
}

}  // namespace scrapekeep::scrape
