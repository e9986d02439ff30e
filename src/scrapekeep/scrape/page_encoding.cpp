#include "scrapekeep/scrape/page_encoding.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <unordered_set>
#include <utility>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/scrape/cjk_decoders.hpp"
#include "scrapekeep/scrape/decoder_common.hpp"
#include "scrapekeep/scrape/single_byte_decoders.hpp"

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

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_ascii_space(char c) { return core::is_ascii_space(static_cast<unsigned char>(c)); }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

using core::Utf8Sequence;
using core::utf8_sequence;

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

// The Encoding Standard's shared UTF-16 decoder, NUL characters dropped: a
// surrogate that is not of a pair is U+FFFD (a code unit after a lead
// surrogate that is not a trail one is read again), as is a lone byte at the
// end (one U+FFFD with a lead surrogate before it: the end of the queue).
std::string decode_utf16(std::string_view in, bool big_endian) {
  constexpr std::size_t k_chunk = 4096;  // input bytes read between checks for room
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  const auto unit = [&](std::size_t i) -> char32_t {
    return big_endian ? (b[i] << 8) | b[i + 1] : b[i] | (b[i + 1] << 8);
  };
  Utf8Writer out(n);
  std::size_t i = 0;
  while (n - i >= 2) {
    const std::size_t end = std::min(n - 1, i + k_chunk);
    char* dst = out.room(3 * (end - i) / 2 + 4);  // 3 bytes a code unit, 4 a pair
    while (i < end) {
      const char32_t cu = unit(i);
      i += 2;
      if (cu < 0xD800 || cu > 0xDFFF) {
        if (cu != 0) {
          dst = put_utf8(dst, cu);
        }
      } else if (cu >= 0xDC00) {
        dst = put_utf8(dst, 0xFFFD);
      } else if (n - i < 2) {
        i = n;  // the page ends after a lead surrogate (and maybe a byte): one error
        dst = put_utf8(dst, 0xFFFD);
      } else if (const char32_t trail = unit(i); trail >= 0xDC00 && trail <= 0xDFFF) {
        dst = put_utf8(dst, 0x10000 + ((cu - 0xD800) << 10) + (trail - 0xDC00));
        i += 2;
      } else {
        dst = put_utf8(dst, 0xFFFD);
      }
    }
    out.written(dst);
  }
  if (i < n) {
    out.append(0xFFFD);  // half a code unit
  }
  return std::move(out).take();
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

// Whether a page of ASCII bytes other than NUL reads as itself in `encoding`
// (in all but UTF-16, and ISO-2022-JP, whose ESC, SO and SI are not text).
bool keeps_ascii(std::string_view encoding) {
  return encoding != "UTF-16BE" && encoding != "UTF-16LE" && encoding != "ISO-2022-JP";
}

// `html` decoded from `encoding`, any but UTF-8.
std::string decode_other(std::string_view html, const std::string& encoding) {
  if (encoding == "UTF-16BE" || encoding == "UTF-16LE") {
    return decode_utf16(html, encoding == "UTF-16BE");
  }
  if (auto text = decode_single_byte(html, encoding)) {
    return std::move(*text);
  }
  if (auto text = decode_cjk(html, encoding)) {
    return std::move(*text);
  }
  // Every label's encoding is one of the above; were another to come,
  // windows-1252 reads every byte as something.
  return decode_single_byte(html, "windows-1252").value_or(std::string());
}

}  // namespace

// Where `in` stops being valid UTF-8 without NUL characters; its size if it
// never does.
std::size_t valid_utf8_prefix(std::string_view in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = ascii_run_end(b, 0, n);
  while (i < n) {
    if (const Utf8Sequence seq = utf8_sequence(b, i, n); b[i] != 0 && seq.valid) {
      i = ascii_run_end(b, i + seq.length, n);
    } else {
      return i;
    }
  }
  return n;
}

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

std::string xml_declared_encoding(std::string_view s) {
  // The HTML spec's prescan begins with a UTF-16 XML declaration's first
  // bytes ('<?x' in UTF-16), and when it finds no <meta> it reads the page's
  // XML declaration ("get an XML encoding"), within the same first bytes.
  if (s.substr(0, 6) == std::string_view("<\0?\0x\0", 6)) {
    return "UTF-16LE";
  }
  if (s.substr(0, 6) == std::string_view("\0<\0?\0x", 6)) {
    return "UTF-16BE";
  }
  if (s.substr(0, 5) != "<?xml") {
    return {};
  }
  constexpr std::size_t k_prescan_bytes = 1024;  // what browsers prescan
  const std::string_view decl = s.substr(0, std::min(s.find('>'), k_prescan_bytes));
  if (decl.size() == s.size() || decl.size() == k_prescan_bytes) {
    return {};  // no '>' within them
  }
  std::size_t pos = decl.find("encoding");
  if (pos == std::string_view::npos) {
    return {};
  }
  pos += 8;
  const auto skip_space_and_controls = [&] {
    while (pos < decl.size() && static_cast<unsigned char>(decl[pos]) <= 0x20) {
      ++pos;
    }
  };
  skip_space_and_controls();
  if (pos >= decl.size() || decl[pos] != '=') {
    return {};
  }
  ++pos;
  skip_space_and_controls();
  if (pos >= decl.size() || (decl[pos] != '"' && decl[pos] != '\'')) {
    return {};
  }
  const char quote = decl[pos++];
  const std::size_t close = decl.find(quote, pos);
  if (close == std::string_view::npos) {
    return {};
  }
  const std::string_view label = decl.substr(pos, close - pos);
  for (const char c : label) {
    if (static_cast<unsigned char>(c) <= 0x20) {
      return {};
    }
  }
  const std::string encoding = encoding_for_label(label);
  // As for a <meta>: a page that reads '<?xml' in ASCII is not UTF-16.
  return encoding == "UTF-16LE" || encoding == "UTF-16BE" ? "UTF-8" : encoding;
}

std::string sniff_encoding(std::string_view html, std::string_view http_charset) {
  if (const auto bom = bom_encoding(html); bom.second != 0) {
    return std::string(bom.first);
  }
  if (std::string declared = encoding_for_label(http_charset); !declared.empty()) {
    return declared;
  }
  std::string declared = xml_declared_encoding(html);
  if (declared.rfind("UTF-16", 0) == 0) {
    return declared;  // the prescan's first step
  }
  if (std::string meta = meta_declared_encoding(html); !meta.empty()) {
    return meta;
  }
  if (!declared.empty()) {
    return declared;
  }
  // Valid UTF-8 is told at the fast scan's speed (8 ASCII bytes a step).
  return valid_utf8_prefix(html) == html.size() || mostly_utf8(html) ? "UTF-8" : "windows-1252";
}

std::string_view decode_page(std::string_view html, std::string_view http_charset,
                             std::string& storage) {
  return decode_page_as(html, sniff_encoding(html, http_charset), storage);
}

std::string_view decode_page_as(std::string_view html, const std::string& encoding,
                                std::string& storage) {
  html.remove_prefix(bom_encoding(html).second);
  if (encoding == "UTF-8") {
    const std::size_t valid = valid_utf8_prefix(html);
    if (valid == html.size()) {
      return html;  // nothing to change: not copied
    }
    storage = decode_utf8(html, valid);
    return storage;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(html.data());
  if (keeps_ascii(encoding) && ascii_run_end(bytes, 0, html.size()) == html.size()) {
    return html;  // ASCII alone: not copied
  }
  storage = decode_other(html, encoding);
  return storage;
}

std::string decode_page(std::string_view html, std::string_view http_charset) {
  std::string storage;
  return std::string(decode_page(html, http_charset, storage));
}

}  // namespace scrapekeep::scrape
