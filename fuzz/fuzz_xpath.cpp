// libFuzzer target for how extraction reads and writes a selector
// (xpath_linear.hpp): the input is an XPath expression. What libxml2
// compiles as written it must compile as xpath_as_compiled() writes it
// (libxml2's streaming patterns take names its XPath parser refuses, so
// xpath_with_linear_operators() alone would not do); and evaluating it on a page with every kind of node, under a
// small step budget, may fail but must not crash. Built and run by
// `tools/fuzz SECONDS xpath`; not part of the CMake build.

#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/xpath_linear.hpp"

namespace {

using namespace scrapekeep;

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

void ignore_error(void* /*ctx*/, const char* /*msg*/, ...) {}

// Elements, attributes, text, comments, a processing instruction, numbers
// and words, nested and side by side.
const std::string k_page =
    "<!DOCTYPE html><html lang='en'><head><title>t</title></head><body id='k'>"
    "<p class='n'>5</p><p class='n'> 7 </p><p>x</p><i>ab1</i><i>ab2</i><b>ab2</b>"
    "<a href='5' rel='next'>5</a><a href='/b?x=1'>b</a><!-- 5 --><?pi x?>"
    "<div><div><span>1e3</span>t<!--c-->u</div></div><u></u><u></u></body></html>";

bool compiles(const std::string& expr) {
  xmlXPathCompExpr* comp = xmlXPathCompile(reinterpret_cast<const xmlChar*>(expr.c_str()));
  xmlXPathFreeCompExpr(comp);
  return comp != nullptr;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The API takes selectors of up to 2000 characters.
  if (size > 2000) {
    return 0;
  }
  const std::string expr(reinterpret_cast<const char*>(data), size);
  if (expr.find('\0') != std::string::npos) {
    return 0;
  }
  scrape::init_libxml();
  xmlSetGenericErrorFunc(nullptr, ignore_error);
  xmlSetStructuredErrorFunc(nullptr, nullptr);
  const std::string written = scrape::xpath_as_compiled(expr);
  if (compiles(expr)) {
    check(compiles(written));
  }
  try {
    scrape::extract_detail(k_page, "http://h.test/p/1", {{"v", expr}}, {}, 200000);
  } catch (const std::exception&) {
    // A failed page: fine.
  }
  return 0;
}
