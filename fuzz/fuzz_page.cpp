// libFuzzer target for what a fetched page goes through: charset sniffing
// and decoding (page_encoding.hpp), extraction with a fixed set of selectors
// (extract_listing, extract_detail) and link resolution (resolve_url). The
// input's first line, if short, is the Content-Type's charset; the rest is
// the page. The page's first two lines are also a base URL and a link
// resolved against it. Built and run by `tools/fuzz SECONDS page`; not part
// of the CMake build.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "scrapekeep/core/job.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/page_encoding.hpp"
#include "scrapekeep/scrape/single_byte_decoders.hpp"

namespace {

using namespace scrapekeep;

constexpr std::size_t k_max_label = 40;
const std::string k_page_url = "https://example.com/shop/list.html?page=2";

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

// Well-formed UTF-8 as RFC 3629 has it (no surrogates, nothing past
// U+10FFFF, shortest form), written apart from the decoder it checks.
bool valid_utf8(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// What a followed link must be: http(s), printable ASCII only, and every
// '%' the start of an escape.
void check_link(const std::optional<std::string>& url) {
  if (!url) {
    return;
  }
  const std::string& u = *url;
  check(u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const auto c = static_cast<unsigned char>(u[i]);
    check(c > 0x20 && c < 0x7F);
    if (c == '%') {
      const auto hex = [&](std::size_t k) {
        return k < u.size() && std::isxdigit(static_cast<unsigned char>(u[k])) != 0;
      };
      check(hex(i + 1) && hex(i + 2));
    }
  }
}

void check_values(const core::FieldValues& values) {
  for (const auto& [name, value] : values) {
    if (value) {
      check(valid_utf8(*value));
    }
  }
}

const core::Selectors& selectors() {
  static const core::Selectors s = [] {
    core::Selectors sel;
    sel.item = "//li | //div[@class='item'] | //tr[td]";
    sel.fields = {
        {"title", ".//a"},
        {"href", "string(.//a/@href)"},
        {"price", "normalize-space(.//*[contains(@class, 'price')])"},
        {"nodes", "count(.//*)"},
        {"text", "."},
        {"lang", "@lang"},
    };
    sel.next_page = "//a[@rel='next']/@href | //link[@rel='next']/@href";
    sel.detail_link = ".//a/@href";
    sel.detail_fields = {
        {"h1", "//h1"},
        {"body", "string(//body)"},
        {"meta", "//meta[@name='description']/@content"},
        {"image", "//img/@src"},
    };
    return sel;
  }();
  return s;
}

void fuzz_encoding(std::string_view page, const std::string& label) {
  const std::string encoding = scrape::sniff_encoding(page, label);
  check(!encoding.empty());
  check(scrape::encoding_for_label(encoding) == encoding);
  const std::string meta = scrape::meta_declared_encoding(page);
  check(meta.empty() || scrape::encoding_for_label(meta) == meta);
  check(meta != "UTF-16BE" && meta != "UTF-16LE" && meta != "x-user-defined");

  const std::string decoded = scrape::decode_page(page, label);
  check(valid_utf8(decoded));
  check(decoded.find('\0') == std::string::npos);
  std::string storage;
  const std::string_view view = scrape::decode_page(page, label, storage);
  check(view == decoded);
  // A single-byte encoding reads every byte but NUL as one character.
  if (scrape::decode_single_byte("", encoding)) {
    const auto characters = std::count_if(decoded.begin(), decoded.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    });
    check(static_cast<std::size_t>(characters) ==
          page.size() - std::count(page.begin(), page.end(), '\0'));
  }
  // Text that is already what decode_page gives, read as UTF-8, is given
  // back unchanged (a leading U+FEFF would be taken for a BOM).
  if (decoded.rfind("\xEF\xBB\xBF", 0) != 0) {
    check(scrape::decode_page(decoded, "utf-8") == decoded);
  }
}

void fuzz_extract(const std::string& page, const std::string& label) {
  try {
    const scrape::ListingExtraction listing =
        scrape::extract_listing(page, k_page_url, selectors(), true, label);
    check_link(listing.next_url);
    for (const auto& item : listing.items) {
      check(item.fields.size() == selectors().fields.size());
      check_values(item.fields);
      check_link(item.detail_url);
    }
  } catch (const std::runtime_error&) {
    // A page past a budget, or one the parser stopped reading: refused.
  }
  try {
    const core::FieldValues values =
        scrape::extract_detail(page, k_page_url, selectors().detail_fields, label);
    check(values.size() == selectors().detail_fields.size());
    check_values(values);
  } catch (const std::runtime_error&) {
  }
}

void fuzz_resolve(std::string_view page) {
  const std::size_t first = page.find('\n');
  const std::string base(page.substr(0, first));
  const std::string ref(first == std::string_view::npos
                            ? std::string_view()
                            : page.substr(first + 1, page.find('\n', first + 1) - first - 1));
  check_link(scrape::resolve_url(base, ref));
  check_link(scrape::resolve_url(k_page_url, ref));
  check_link(scrape::resolve_url(k_page_url, base));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scrape::init_libxml();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string label;
  std::string_view page = input;
  if (const std::size_t eol = input.find('\n');
      eol != std::string_view::npos && eol <= k_max_label) {
    label = std::string(input.substr(0, eol));
    page = input.substr(eol + 1);
  }
  fuzz_encoding(page, label);
  fuzz_extract(std::string(page), label);
  fuzz_resolve(page);
  return 0;
}
