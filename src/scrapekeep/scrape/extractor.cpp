#include "scrapekeep/scrape/extractor.hpp"

#include <libxml/HTMLparser.h>
#include <libxml/encoding.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/pattern.h>
#include <libxml/uri.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <idn2.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/scrape/page_encoding.hpp"
#include "scrapekeep/scrape/single_byte_decoders.hpp"
#include "scrapekeep/scrape/xml_handles.hpp"
#include "scrapekeep/scrape/xml_memory.hpp"
#include "scrapekeep/scrape/xpath_linear.hpp"

namespace scrapekeep::scrape {
namespace {

using core::is_ascii_space;
using core::lower_ascii;
using core::trim_ascii;

constexpr int k_html_options =
    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET;
// How deep elements may nest in a page. libxml2 stops reading a page at its
// default, 256, without a word (what follows, items and next link included,
// is lost); real pages stay well under this, a page past it fails.
constexpr unsigned int k_max_depth = 4096;
// The attributes of a page's tags may cost libxml2's parser what one tag of
// this many does (attributes_cost_more_than): about 0.7 s. Real tags have a
// few dozen at most.
constexpr std::size_t k_max_attributes = 20000;

void ignore_generic_error(void* /*ctx*/, const char* /*msg*/, ...) {}
void ignore_structured_error(void* /*ctx*/, xmlErrorPtr /*error*/) {}

// libxml2's error handlers are per thread: install silent ones on first use
// in each thread so nothing is printed to stderr.
void silence_errors_in_this_thread() {
  thread_local bool silenced = false;
  if (!silenced) {
    xmlSetGenericErrorFunc(nullptr, ignore_generic_error);
    xmlSetStructuredErrorFunc(nullptr, ignore_structured_error);
    silenced = true;
  }
}

void prepare_thread() {
  init_libxml();
  silence_errors_in_this_thread();
}

const xmlChar* as_xml(const std::string& s) { return reinterpret_cast<const xmlChar*>(s.c_str()); }

std::string from_xml(const xmlChar* s) {
  return s == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(s));
}

// Parses and XPath evaluations running now, on every thread: libxml2 work
// that nothing interrupts (libxml2_work_running).
std::atomic<int> g_libxml2_work_running{0};

// Counts the work of its lifetime in g_libxml2_work_running.
class Libxml2Work {
 public:
  Libxml2Work() { ++g_libxml2_work_running; }
  Libxml2Work(const Libxml2Work&) = delete;
  Libxml2Work& operator=(const Libxml2Work&) = delete;
  ~Libxml2Work() { --g_libxml2_work_running; }
};

// Whether the attributes of `text`'s tags would cost libxml2's HTML parser
// more than one tag of `most` does: it looks each attribute of a tag up
// among those before it, so a tag of n costs n * n. Attributes are counted
// by a rough scan: the words after `<` and a letter, up to the `>` outside
// quotes. In one pass: each tag's scan starts where the last ended.
bool attributes_cost_more_than(std::string_view text, std::size_t most) {
  // Each takes a space and a character at least: a smaller page has fewer
  // in all (and is not scanned: 8 us of a 7.8 KB page's 190).
  if (text.size() <= 2 * most) {
    return false;
  }
  const std::size_t budget = most * most;
  std::size_t cost = 0;
  std::size_t i = 0;
  while ((i = text.find('<', i)) != std::string_view::npos) {
    ++i;
    if (i >= text.size() || std::isalpha(static_cast<unsigned char>(text[i])) == 0) {
      continue;
    }
    std::size_t words = 0;
    bool after_space = false;
    char quote = 0;
    for (; i < text.size(); ++i) {
      const char c = text[i];
      if (quote != 0) {
        quote = c == quote ? 0 : quote;
      } else if (c == '"' || c == '\'') {
        quote = c;
        after_space = false;
      } else if (c == '>' || c == '<') {
        break;
      } else if (is_ascii_space(static_cast<unsigned char>(c))) {
        after_space = true;
      } else if (after_space) {
        after_space = false;
        ++words;
      }
    }
    cost += words * words;
    if (cost > budget) {
      return true;
    }
  }
  return false;
}

// Elements numbered in document order, for libxml2 2.9's sort (as
// xmlXPathOrderDocElems numbers them: -1, -2, ... in `content`). Without
// numbers it compares two nodes among one parent's children by walking from
// one through the siblings after it, to the other or to the last: a sort of
// nodes out of order (a union of `//a` and `//b`, a reverse axis) among
// 100,000 siblings took it 4 s, none of it a step, nor interruptible.
// Numbered, elements compare at once, and a text or comment node walks back
// only to the element before it (start_budget).
//
// But then libxml2 places a text, comment or processing instruction node
// where the element before it among its siblings is, and so before that
// element's descendants (`<div><p><b>x</b></p> tail</div>`: ` tail` before
// `<b>`, in `//div/text() | //b`). An element that is the nearest before such a node
// and has elements in it is left without a number: libxml2 then compares
// that node by walking, as it did every node before, and gets it right.
// But it walks so through the siblings of that element, and through its
// children (for a text before its first element): from one node to the
// other or to the last, a step none counts. So only when each of them is
// fewer than 2 * k_run_per_step_share nodes, a walk as short as through a
// run of text nodes that the budget leaves whole (start_budget); in more, the
// element is numbered, and libxml2 may misplace such a node as above (left
// unnumbered, `//p[last()]/preceding-sibling::p` on 50,000 `<p><b></b></p>x`
// took 10 s, a union of the two halves of 40,000 items a line apart 2 s).
//
// Every node is also given its place in document order (set_document_place),
// by which scrapekeep sorts a union's nodes and each result
// (sort_in_document_order), rightly whatever libxml2's sort did.
//
// Returns the most nodes that are not elements (text, comments) in a row
// among the children of one node (start_budget).
std::size_t number_elements(xmlDoc* doc) {
  const auto fewer_than_walk_limit = [](const xmlNode* first) {
    std::size_t nodes = 0;
    for (; first != nullptr; first = first->next) {
      if (++nodes >= 2 * k_run_per_step_share) {
        return false;
      }
    }
    return true;
  };
  std::ptrdiff_t count = 0;
  std::uintptr_t place = 0;
  std::size_t run = 0;
  std::size_t longest_run = 0;
  xmlNode* node = doc->children;
  while (node != nullptr) {
    set_document_place(node, ++place);
    run = node->type == XML_ELEMENT_NODE ? 0 : run + 1;
    longest_run = std::max(longest_run, run);
    if (node->type == XML_ELEMENT_NODE) {
      for (xmlAttr* attribute = node->properties; attribute != nullptr;
           attribute = attribute->next) {
        set_document_place(reinterpret_cast<xmlNode*>(attribute), ++place);
      }
      ++count;
      const bool misc_after = node->next != nullptr && node->next->type != XML_ELEMENT_NODE;
      bool elements_in = false;
      for (const xmlNode* child = node->children; child != nullptr && !elements_in;
           child = child->next) {
        elements_in = child->type == XML_ELEMENT_NODE;
      }
      // The parent of a root element is the document, whose children are where a node's are.
      const bool unnumbered = misc_after && elements_in &&
                              fewer_than_walk_limit(node->parent->children) &&
                              fewer_than_walk_limit(node->children);
      node->content = unnumbered ? nullptr : reinterpret_cast<xmlChar*>(-count);
      if (node->children != nullptr) {
        node = node->children;
        run = 0;
        continue;
      }
    }
    // Up to the next sibling of the nearest node that has one; the run
    // among a parent's children goes on after an element child's subtree.
    while (node != nullptr && node->next == nullptr) {
      node = node->parent == reinterpret_cast<xmlNode*>(doc) ? nullptr : node->parent;
      run = 0;  // an element ends the run it is in
    }
    if (node != nullptr) {
      node = node->next;
    }
  }
  return longest_run;
}

// `html` in `encoding`, as sniff_encoding() chose it from the page and its
// charset; `longest_run`: the most nodes that are not elements in a row
// among one node's children (start_budget).
DocPtr parse_html(const std::string& html, const std::string& page_url,
                  const std::string& encoding, std::size_t& longest_run) {
  // Decoded here, as browsers decode (page_encoding.hpp), and given to
  // libxml2 as UTF-8 that no <meta> may switch: left to itself it stops at
  // the first byte its decoder refuses, without a word.
  std::string decoded;
  const std::string_view text = decode_page_as(html, encoding, decoded);
  if (text.size() > static_cast<std::size_t>(INT_MAX)) {
    return nullptr;
  }
  longest_run = 0;
  // libxml2's HTML parser looks each attribute of a tag up among those
  // before it: one tag of 80,000 took it 11 s, which nothing interrupts.
  if (attributes_cost_more_than(text, k_max_attributes)) {
    throw std::runtime_error(
        "its tags have more attributes than the HTML parser reads in about a second (a tag's "
        "cost grows with the square of their number: one tag of " +
        std::to_string(k_max_attributes) + " is the most)");
  }
  xmlResetLastError();
  DocPtr doc;
  {
    // Nothing interrupts it either: one element of 80,000 attributes takes
    // libxml2 11 s (it looks each one up among those before it).
    const Libxml2Work work;
    doc.reset(htmlReadMemory(text.data(), static_cast<int>(text.size()),
                             page_url.empty() ? nullptr : page_url.c_str(), "UTF-8",
                             k_html_options | HTML_PARSE_IGNORE_ENC));
  }
  // libxml2 halts on a fatal error (elements nested past the depth limit, a
  // text node over 10 MB) and records nothing after it, keeping what it
  // read: the (per-thread) last error says whether it did. A page read in
  // part would lose its later items and its next link without a word.
  const xmlError* error = xmlGetLastError();
  if (error != nullptr && (error->level == XML_ERR_FATAL || error->code == XML_ERR_NO_MEMORY)) {
    const std::string message = error->message != nullptr ? trim_ascii(error->message) : "";
    if (message.rfind("Excessive depth", 0) == 0) {
      throw std::runtime_error("elements nest more than " + std::to_string(k_max_depth) +
                               " deep, where the HTML parser stops reading");
    }
    throw std::runtime_error("the HTML parser stopped reading it: " + message);
  }
  if (doc) {
    longest_run = number_elements(doc.get());
  }
  return doc;
}

// `text` cut at each `sep` outside string literals and brackets, up to the
// first bracket it does not open (or its end).
std::vector<std::string_view> split_top_level(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t from = 0;
  int depth = 0;
  std::size_t i = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      const std::size_t close = text.find(c, i + 1);
      i = close == std::string_view::npos ? text.size() - 1 : close;
    } else if (c == '(' || c == '[') {
      ++depth;
    } else if (c == ')' || c == ']') {
      if (depth == 0) {
        break;
      }
      --depth;
    } else if (c == sep && depth == 0) {
      parts.push_back(text.substr(from, i - from));
      from = i + 1;
    }
  }
  parts.push_back(text.substr(from, i - from));
  return parts;
}

// Whether libxml2 2.9 compiles `expr` to a streaming pattern rather than to
// XPath steps (xmlXPathTryStreamCompile, without a context as
// xmlXPathCompile has none): an expression without '[', '(', '@' or ':'
// that its pattern module can stream (`//a | //b`, `.//. | //c`). Such an
// expression is evaluated in one walk of the tree, a union's sides
// together, with no merge to make linear; and its result is not always
// XPath's (`//zz | /.//.` is the document node alone, `.//. | //b` leaves
// the context node out), which a rewritten expression, no longer streamed,
// would give otherwise.
bool streamed_by_libxml2(const std::string& expr) {
  if (expr.find_first_of("[(@:") != std::string::npos) {
    return false;
  }
  xmlPatternPtr pattern = xmlPatterncompile(as_xml(expr), nullptr, XML_PATTERN_XPATH, nullptr);
  const bool streamable = pattern != nullptr && xmlPatternStreamable(pattern) == 1;
  xmlFreePattern(pattern);
  return streamable;
}

// Compiled once per extraction as xpath_as_compiled() writes it (as written
// should libxml2 refuse that); nullptr for an empty or invalid expression.
XPathCompPtr compile(const std::string& expr) {
  if (expr.empty()) {
    return nullptr;
  }
  XPathCompPtr comp(xmlXPathCompile(as_xml(xpath_as_compiled(expr))));
  return comp ? std::move(comp) : XPathCompPtr(xmlXPathCompile(as_xml(expr)));
}

XPathObjectPtr evaluate(xmlXPathCompExpr* comp, xmlXPathContext* ctx, xmlNode* node) {
  if (comp == nullptr) {
    return nullptr;
  }
  ctx->node = node;
  XPathObjectPtr result;
  {
    const AllocationCharge charge(&ctx->opCount, ctx->opLimit);
    const Libxml2Work work;
    result.reset(xmlXPathCompiledEval(comp, ctx));
  }
  if (result && result->type == XPATH_NODESET) {
    // libxml2's sort may have misplaced a text node (number_elements).
    sort_in_document_order(result->nodesetval);
  }
  // libxml2 stops an evaluation that would pass opLimit and leaves opCount
  // at it; so does a stop (StopEvaluationsOn).
  if (ctx->opLimit != 0 && ctx->opCount >= ctx->opLimit) {
    if (evaluations_stopped()) {
      throw EvaluationStopped();
    }
    const auto run = reinterpret_cast<std::uintptr_t>(ctx->userData);  // start_budget()
    throw std::runtime_error(
        "the XPath expressions take more than " + std::to_string(ctx->opLimit) +
        " steps on this page (a node visited, or " + std::to_string(k_bytes_per_step) +
        " bytes of text built)" +
        (run == 0 ? std::string()
                  : "; fewer than usual: the page has a run of " + std::to_string(run) +
                        " text and comment nodes between two elements, which XPath sorts in "
                        "time that grows with the run's length"));
  }
  return result;
}

// A context for a page's expressions, with the functions of xpath_linear.hpp.
XPathContextPtr xpath_context(xmlDoc* doc) {
  XPathContextPtr ctx(xmlXPathNewContext(doc));
  if (ctx && !register_linear_operators(ctx.get())) {
    ctx.reset();
  }
  return ctx;
}

// The expressions evaluated in `ctx` on a page from now on share
// `step_budget` steps, fewer on a page whose longest run of text and comment
// nodes is `run` (k_run_per_step_share; parse_html measures it): the run's
// length is noted in the context for evaluate()'s message.
void start_budget(xmlXPathContext* ctx, std::size_t run, unsigned long step_budget) {
  const std::size_t shares = run / k_run_per_step_share;
  // At least 1: 0 is no limit to libxml2.
  ctx->opLimit = shares > 1 ? std::max(1UL, step_budget / shares) : step_budget;
  ctx->opCount = 0;
  // Unused otherwise: libxml2 hands it to an error handler set in the
  // context, and scrapekeep sets none (silence_errors_in_this_thread).
  ctx->userData = reinterpret_cast<void*>(static_cast<std::uintptr_t>(shares > 1 ? run : 0));
}

// A context for the expressions of one page, sharing `step_budget` steps.
XPathContextPtr page_context(xmlDoc* doc, std::size_t longest_run, unsigned long step_budget) {
  XPathContextPtr ctx(doc == nullptr ? nullptr : xpath_context(doc));
  if (ctx) {
    start_budget(ctx.get(), longest_run, step_budget);
  }
  return ctx;
}

// A number as XPath 1.0's string() writes it (4.2), never with an exponent
// (libxml2 writes 2147483648 as "2.147483648e+09"): NaN, Infinity,
// -Infinity, an integer in all its digits without a decimal point, else in
// decimal to 15 significant digits, as libxml2 rounds them (so that 0.1 + 0.2
// is "0.3"), trailing zeros dropped.
std::string xpath_number(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "Infinity" : "-Infinity";
  }
  if (value == 0) {
    return "0";  // -0 too
  }
  char buf[400];  // the longest fixed form of a double is about 330 characters
  std::to_chars_result written{};
  if (value == std::trunc(value)) {
    written = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, 0);
  } else {
    const int integer_digits = static_cast<int>(std::floor(std::log10(std::fabs(value)))) + 1;
    written = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed,
                            std::clamp(15 - integer_digits, 0, 340));
  }
  if (written.ec != std::errc()) {
    return {};
  }
  std::string text(buf, written.ptr);
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') {
      text.pop_back();
    }
  }
  return text;
}

// The string value of `obj`: its first node's, or the scalar result's.
std::optional<std::string> raw_value_of(const xmlXPathObject* obj) {
  if (obj == nullptr) {
    return std::nullopt;
  }
  switch (obj->type) {
    case XPATH_NODESET:
    case XPATH_XSLT_TREE: {
      const xmlNodeSet* set = obj->nodesetval;
      if (set == nullptr || set->nodeNr == 0 || set->nodeTab[0] == nullptr) {
        return std::nullopt;
      }
      XmlString text(xmlXPathCastNodeToString(set->nodeTab[0]));
      return from_xml(text.get());
    }
    case XPATH_NUMBER:
      return xpath_number(obj->floatval);
    case XPATH_STRING:
    case XPATH_BOOLEAN: {
      XmlString text(xmlXPathCastToString(const_cast<xmlXPathObject*>(obj)));
      return from_xml(text.get());
    }
    default:
      return std::nullopt;
  }
}

// The value API.md defines for a field: first node's string value, or the
// scalar result as a string, whitespace normalized.
std::optional<std::string> value_of(const xmlXPathObject* obj) {
  std::optional<std::string> raw = raw_value_of(obj);
  return raw ? std::optional<std::string>(normalize_space(*raw)) : std::nullopt;
}

// A link's value as the URL Standard's parser takes it: every tab, line feed
// and carriage return removed (an href a template wrapped over lines), and
// C0 controls and spaces trimmed from both ends; spaces inside are kept (and
// escaped later, one %20 each).
// Elements (`//a[@rel='next']`, as a browser's "Copy XPath" gives them) are
// the first one's href that has one, not their text ("Next »" taken for a
// URL); none with an href is no link.
std::optional<std::string> link_of(const xmlXPathObject* obj) {
  std::optional<std::string> raw;
  if (obj != nullptr && obj->type == XPATH_NODESET && obj->nodesetval != nullptr &&
      obj->nodesetval->nodeNr > 0 && obj->nodesetval->nodeTab[0] != nullptr &&
      obj->nodesetval->nodeTab[0]->type == XML_ELEMENT_NODE) {
    for (int i = 0; i < obj->nodesetval->nodeNr && !raw; ++i) {
      xmlNode* node = obj->nodesetval->nodeTab[i];
      XmlString href(node->type == XML_ELEMENT_NODE ? xmlGetNoNsProp(node, BAD_CAST "href")
                                                    : nullptr);
      if (href) {
        raw = from_xml(href.get());
      }
    }
    if (!raw) {
      return std::nullopt;  // no link: a disabled "Next »", a <button>
    }
  }
  if (!raw) {
    raw = raw_value_of(obj);
  }
  if (!raw) {
    return raw;
  }
  std::string link;
  link.reserve(raw->size());
  for (const char c : *raw) {
    if (c != '\t' && c != '\n' && c != '\r') {
      link += c;
    }
  }
  const auto c0_or_space = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
  const auto first = std::find_if_not(link.begin(), link.end(), c0_or_space);
  const auto last = std::find_if_not(link.rbegin(), link.rend(), c0_or_space).base();
  return first < last ? std::string(first, last) : std::string();
}

// Takes `bytes` of a page's extraction budget (k_max_extracted_bytes).
void spend(std::size_t& bytes_left, std::size_t bytes) {
  if (bytes > bytes_left) {
    throw std::runtime_error("the values its selectors extract pass " +
                             std::to_string(k_max_extracted_bytes / (1024 * 1024)) + " MiB");
  }
  bytes_left -= bytes;
}

struct CompiledFields {
  std::vector<std::pair<std::string, XPathCompPtr>> list;

  explicit CompiledFields(const core::FieldList& fields) {
    list.reserve(fields.size());
    for (const auto& [name, expr] : fields) {
      list.emplace_back(name, compile(expr));
    }
  }

  // `bytes_left`: what the page's values may still take (k_max_extracted_bytes).
  core::FieldValues evaluate_at(xmlXPathContext* ctx, xmlNode* node, std::size_t& bytes_left) const {
    core::FieldValues values;
    values.reserve(list.size());
    for (const auto& [name, comp] : list) {
      XPathObjectPtr obj = evaluate(comp.get(), ctx, node);
      std::optional<std::string> value = value_of(obj.get());
      spend(bytes_left, name.size() + (value ? value->size() : 0));
      values.emplace_back(name, std::move(value));
    }
    return values;
  }
};

// The URL relative links resolve against: the page's <base href> if valid.
std::string base_url_of(xmlDoc* doc, xmlXPathContext* ctx, const std::string& page_url) {
  XPathCompPtr comp = compile("//base[@href][1]/@href");
  XPathObjectPtr obj = evaluate(comp.get(), ctx, reinterpret_cast<xmlNode*>(doc));
  std::optional<std::string> href = link_of(obj.get());
  if (href && !href->empty()) {
    // Its fragment, as a link's (resolve_link), starts at its first '#'.
    if (auto resolved = resolve_url(page_url, href->substr(0, href->find('#')))) {
      return *resolved;
    }
  }
  return page_url;
}

// `ref`, a link of a page in `encoding`, with the characters of its query
// that are not ASCII percent-encoded as browsers write them there (the URL
// Standard's query state, "encoding-parse a URL"): in a single-byte legacy
// encoding (windows-1252, KOI8-R...) as its byte ("café" is caf%E9), or as
// "&#N;" for a character it lacks. Otherwise (UTF-8, UTF-16, and the CJK
// encodings, whose encoders scrapekeep does not have) as it is: escaped as
// UTF-8 later.
std::optional<std::string> with_query_in(const std::optional<std::string>& ref,
                                         std::string_view encoding) {
  if (!ref || !is_single_byte(encoding)) {
    return ref;
  }
  const std::size_t query = ref->find('?');
  const std::size_t fragment = ref->find('#');
  if (query == std::string::npos || fragment < query) {
    return ref;
  }
  const std::size_t end = std::min(fragment, ref->size());
  std::string out = ref->substr(0, query);
  for (std::size_t i = query; i < end;) {
    const auto c = static_cast<unsigned char>((*ref)[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // The page was decoded to valid UTF-8: a lead byte and its continuation bytes.
    const std::size_t length = std::min(end - i, std::size_t{c >= 0xF0 ? 4u : c >= 0xE0 ? 3u : 2u});
    const std::string_view character(ref->data() + i, length);
    if (const auto byte = encode_single_byte(character, encoding)) {
      core::append_percent_encoded(out, *byte);
    } else {
      char32_t cp = c & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07);
      for (std::size_t k = 1; k < length; ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(character[k]) & 0x3F);
      }
      out += "%26%23" + std::to_string(static_cast<std::uint32_t>(cp)) + "%3B";
    }
    i += length;
  }
  out += ref->substr(end);
  return out;
}

std::optional<std::string> resolve_link(const std::string& base, const std::optional<std::string>& ref) {
  if (!ref || ref->empty()) {
    return std::nullopt;
  }
  // The fragment is never fetched: cut at the first '#', as the URL
  // Standard reads it ("/h#a#b" is /h; RFC 3986 would refuse the second '#').
  // "#top" alone is the page itself.
  if (auto resolved = resolve_url(base, ref->substr(0, ref->find('#')))) {
    return strip_fragment(*resolved);
  }
  return std::nullopt;
}

// Parentheses and brackets outside string literals pair up.
bool balanced(const std::string& expr) {
  std::vector<char> open;
  char quote = 0;
  for (const char c : expr) {
    if (quote != 0) {
      quote = c == quote ? 0 : quote;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(' || c == '[') {
      open.push_back(c);
    } else if (c == ')' || c == ']') {
      if (open.empty() || open.back() != (c == ')' ? '(' : '[')) {
        return false;
      }
      open.pop_back();
    }
  }
  return open.empty() && quote == 0;
}

// The arguments of the call whose '(' is at `open` in `expr`: commas at its
// own level, outside string literals and inner brackets.
int argument_count(const std::string& expr, std::size_t open) {
  const std::vector<std::string_view> args =
      split_top_level(std::string_view(expr).substr(open + 1), ',');
  const bool blank = std::all_of(args[0].begin(), args[0].end(), [](char c) {
    return is_ascii_space(static_cast<unsigned char>(c));
  });
  return args.size() == 1 && blank ? 0 : static_cast<int>(args.size());
}

// What libxml2 would only report once an evaluation reaches it: a call of a
// function XPath 1.0 does not have, or with a number of arguments it does
// not take (`contains(@class)`), a variable, a namespace prefix (none is
// bound; `xml` is). Evaluating on an empty page finds those outside
// predicates only, so the expression's names are read here, outside string
// literals. nullopt when there is none.
std::optional<std::string> unsupported_name(const std::string& expr) {
  // XPath 1.0's functions and node tests, with the arguments each takes.
  static const std::unordered_map<std::string, std::pair<int, int>> k_functions = {
      {"last", {0, 0}},           {"position", {0, 0}},         {"count", {1, 1}},
      {"id", {1, 1}},             {"local-name", {0, 1}},       {"namespace-uri", {0, 1}},
      {"name", {0, 1}},           {"string", {0, 1}},           {"concat", {2, 1 << 20}},
      {"starts-with", {2, 2}},    {"contains", {2, 2}},         {"substring-before", {2, 2}},
      {"substring-after", {2, 2}}, {"substring", {2, 3}},       {"string-length", {0, 1}},
      {"normalize-space", {0, 1}}, {"translate", {3, 3}},       {"boolean", {1, 1}},
      {"not", {1, 1}},            {"true", {0, 0}},             {"false", {0, 0}},
      {"lang", {1, 1}},           {"number", {0, 1}},           {"sum", {1, 1}},
      {"floor", {1, 1}},          {"ceiling", {1, 1}},          {"round", {1, 1}},
      {"node", {0, 0}},           {"text", {0, 0}},             {"comment", {0, 0}},
      {"processing-instruction", {0, 1}}};
  static const std::unordered_set<std::string> k_operators = {"and", "or", "div", "mod"};
  const std::size_t n = expr.size();
  const auto at = [&](std::size_t i) { return i < n ? static_cast<unsigned char>(expr[i]) : 0; };
  // The last character before the current token but spaces: after an
  // operand, `and`, `or`, `div` and `mod` are operators (XPath 1.0, 3.7).
  unsigned char before = 0;
  for (std::size_t i = 0; i < n; before = is_ascii_space(at(i - 1)) ? before : at(i - 1)) {
    const unsigned char c = at(i);
    if (c == '\'' || c == '"') {
      const std::size_t close = expr.find(static_cast<char>(c), i + 1);
      i = close == std::string::npos ? n : close + 1;
    } else if (c == '$') {
      return std::string("Undefined variable");
    } else if (std::isdigit(c) != 0) {
      while (std::isdigit(at(i)) != 0 || at(i) == '.') {
        ++i;
      }
    } else if (starts_xpath_name(c)) {
      std::size_t end = i;
      while (continues_xpath_name(at(end))) {
        ++end;
      }
      std::string name = expr.substr(i, end - i);
      if (at(end) == ':' && at(end + 1) != ':') {
        if (name != "xml") {
          return "Undefined namespace prefix " + name + ":";
        }
        ++end;
        while (continues_xpath_name(at(end))) {
          ++end;
        }
        name = expr.substr(i, end - i);
      }
      std::size_t next = end;
      while (is_ascii_space(at(next))) {
        ++next;
      }
      const bool after_operand = before == ')' || before == ']' || before == '\'' ||
                                 before == '"' || before == '.' || before == '*' ||
                                 continues_xpath_name(before);
      const bool is_operator = k_operators.count(name) != 0 && after_operand;
      if (at(next) == '(' && !is_operator) {
        const auto known = k_functions.find(name);
        if (known == k_functions.end()) {
          return "Unregistered function " + name + "() (not an XPath 1.0 function)";
        }
        const auto [least, most] = known->second;
        const int given = argument_count(expr, next);
        if (given < least || given > most) {
          const std::string takes = least == most     ? std::to_string(least)
                                    : most > 3        ? std::to_string(least) + " or more"
                                                      : std::to_string(least) + " or " +
                                                            std::to_string(most);
          return "Invalid number of arguments: " + name + "() takes " + takes + ", not " +
                 std::to_string(given);
        }
      }
      i = end;
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

// xmlBuildURI leaves dot segments in an absolute-path reference ("/./g");
// libxml2's xmlNormalizeURIPath removes them (RFC 3986 5.2.4).
std::string remove_dot_segments(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return url;
  }
  const std::size_t path_begin = url.find_first_of("/?#", scheme_end + 3);
  if (path_begin == std::string::npos || url[path_begin] != '/') {
    return url;  // no path: a '/' in its query is not one
  }
  const std::size_t path_end = std::min(url.find('?', path_begin), url.find('#', path_begin));
  std::string path = url.substr(path_begin, path_end == std::string::npos ? std::string::npos
                                                                          : path_end - path_begin);
  if (path.find("/.") == std::string::npos) {
    return url;
  }
  std::vector<char> buffer(path.begin(), path.end());
  buffer.push_back('\0');
  xmlNormalizeURIPath(buffer.data());
  std::string normalized = buffer.data();
  if (normalized.empty()) {
    normalized = "/";
  }
  return url.substr(0, path_begin) + normalized +
         (path_end == std::string::npos ? std::string() : url.substr(path_end));
}

} // namespace

int libxml2_work_running() { return g_libxml2_work_running.load(); }

std::string xpath_as_compiled(const std::string& expr) {
  return streamed_by_libxml2(expr) ? expr : xpath_with_linear_operators(expr);
}

std::size_t parse_charge(std::string_view html) {
  const auto tags = static_cast<std::size_t>(std::count(html.begin(), html.end(), '<'));
  return std::max(html.size(), tags * k_parse_bytes_per_tag);
}

// The page's turn in process_parse_budget(): ParseWaitExpired at `deadline`,
// EvaluationStopped once the thread's StopEvaluationsOn flag is set (its
// setter wakes the budget's waiters).
ParseBudget::Lease parse_turn(std::size_t bytes, ParseDeadline deadline) {
  auto lease =
      process_parse_budget().acquire_unless(bytes, deadline, [] { return evaluations_stopped(); });
  if (!lease) {
    if (evaluations_stopped()) {
      throw EvaluationStopped();
    }
    throw ParseWaitExpired();
  }
  return std::move(*lease);
}

ParseBudget& process_parse_budget() {
  // A large page's tree (25 times its size) is freed into the malloc arena
  // of the thread that parsed it, which glibc keeps: each detail thread that
  // parsed a 9.5 MB page held on to about 280 MB, 1.1 GB in all for one job
  // of such pages, though they were parsed one at a time. Given back to the
  // system once such a page is freed, off the freeing thread (a trim can take
  // seconds on a busy process: trim_malloc_soon()).
  static ParseBudget budget(16 * 1024 * 1024, [](std::size_t bytes) {
    if (bytes >= k_trim_after_parse_bytes) {
      trim_malloc_soon();
    }
  });
  return budget;
}

namespace {

// trim_malloc_soon()'s thread. Made once and never destroyed: its thread
// waits on it until the process ends. Started by the first request: one made
// where no thread can be had (std::system_error, which the lease that asked
// would pass on from its destructor: std::terminate) trims on the caller's.
class MallocTrimmer {
 public:
  static MallocTrimmer& instance() {
    static auto* trimmer = new MallocTrimmer();
    return *trimmer;
  }

  void request() {
    std::function<void()> trim_here;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_pending = true;
      if (!m_started) {
        try {
          std::thread([this] { run(); }).detach();
          m_started = true;
        } catch (const std::system_error&) {
          // No thread to be had: trimmed here, as before (asked again next time).
          m_pending = false;
          trim_here = m_trim ? m_trim : [] { malloc_trim(0); };
        }
      }
    }
    if (trim_here) {
      trim_here();
      return;
    }
    m_wake.notify_one();
  }

  void set_trim(std::function<void()> trim) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_trim = std::move(trim);
  }

 private:
  MallocTrimmer() = default;

  void run() {
    core::name_this_thread("sk-trim");
    for (;;) {
      std::function<void()> trim;
      {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_wake.wait(lock, [this] { return m_pending; });
        m_pending = false;
        trim = m_trim;
      }
      if (trim) {
        trim();
      } else {
        malloc_trim(0);
      }
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_pending = false;
  bool m_started = false;  // run() is waiting or trimming
  std::function<void()> m_trim;
};

} // namespace

void trim_malloc_soon() {
  MallocTrimmer::instance().request();
}

void set_malloc_trim_for_tests(std::function<void()> trim) {
  MallocTrimmer::instance().set_trim(std::move(trim));
}

void init_libxml() {
  static std::once_flag once;
  std::call_once(once, [] {
    use_pooled_xml_memory();
    xmlInitParser();
    xmlParserMaxDepth = k_max_depth;
  });
}

std::string normalize_space(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (const char ch : text) {
    if (is_ascii_space(static_cast<unsigned char>(ch))) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    out += ch;
  }
  return out;
}

std::optional<std::string> xpath_error(const std::string& expr, core::SelectorRole role) {
  prepare_thread();
  if (expr.empty()) {
    return std::string("empty XPath expression");
  }
  // libxml2 2.9 compiles "count(" without complaint.
  if (!balanced(expr)) {
    return std::string("invalid XPath expression: unbalanced parentheses or brackets");
  }
  if (auto name = unsupported_name(expr)) {
    return "invalid XPath expression: " + *name;
  }
  xmlResetLastError();
  XPathCompPtr comp(xmlXPathCompile(as_xml(expr)));
  if (comp) {
    // Unknown functions, variables and namespace prefixes only fail when
    // evaluated: try it on an empty page.
    DocPtr doc(htmlReadMemory("<html></html>", 13, nullptr, "UTF-8", k_html_options));
    XPathContextPtr ctx(doc ? xmlXPathNewContext(doc.get()) : nullptr);
    if (!ctx) {
      return std::nullopt;
    }
    xmlResetLastError();
    // Bounded too: nested predicates on the page's two nodes, "(//.)[(//.)[...]]", double
    // the work at each level, and this runs on a request's thread.
    constexpr unsigned long k_check_steps = 1'000'000;
    start_budget(ctx.get(), 0, k_check_steps);
    XPathObjectPtr obj;
    try {
      obj = evaluate(comp.get(), ctx.get(), reinterpret_cast<xmlNode*>(doc.get()));
    } catch (const std::runtime_error&) {
      xmlResetLastError();
      return "it takes more than " + std::to_string(k_check_steps) + " steps on an empty page";
    }
    // XPath 1.0's types are known before any page is read: what gives a
    // number here gives a number on every page.
    const bool item = role == core::SelectorRole::item;
    const bool link = role == core::SelectorRole::link;
    if (obj && (item || link) && obj->type != XPATH_NODESET &&
        !(link && obj->type == XPATH_STRING)) {
      return std::string(item ? "must select nodes"
                              : "must select nodes or give a string (a URL)") +
             "; this expression gives " +
             (obj->type == XPATH_NUMBER    ? "a number"
              : obj->type == XPATH_STRING  ? "a string"
              : obj->type == XPATH_BOOLEAN ? "a boolean"
                                           : "no node-set");
    }
    if (obj) {
      return std::nullopt;
    }
  }
  std::string message = "invalid XPath expression";
  const xmlError* error = xmlGetLastError();
  if (error != nullptr && error->message != nullptr) {
    const std::string detail = trim_ascii(error->message);
    if (!detail.empty()) {
      message += ": " + detail;
    }
  }
  xmlResetLastError();
  return message;
}

namespace {

// What a URL sends in a request line: its bytes before any fragment.
std::size_t request_bytes(const std::string& url) {
  return std::min(url.find('#'), url.size());
}

// Whether `text` is a URI scheme (RFC 3986 3.1): a letter, then letters,
// digits, '+', '-' and '.'.
bool is_scheme(std::string_view text) {
  return !text.empty() && std::isalpha(static_cast<unsigned char>(text[0])) != 0 &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' ||
                  c == '.';
         });
}

// A link of http(s) or of no scheme with each backslash before its query
// read as '/', as browsers read it (..\img\a.html is ../img/a.html,
// /\host/x is //host/x). What comes before a colon is a scheme only if it
// can be one: "\items\sku:1" and "1:2" have none, and are relative paths
// ("./1:2", as RFC 3986 4.2 writes one whose first segment has a colon).
std::string backslashes_as_slashes(std::string ref) {
  const std::size_t end = std::min(ref.find_first_of("?#"), ref.size());
  const std::size_t colon = ref.find(':');
  if (colon < end && is_scheme(std::string_view(ref).substr(0, colon))) {
    const std::string scheme = lower_ascii(ref.substr(0, colon));
    if (scheme != "http" && scheme != "https") {
      return ref;
    }
  }
  std::replace(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(end), '\\', '/');
  if (colon < end && colon < ref.find('/') && !is_scheme(std::string_view(ref).substr(0, colon))) {
    ref.insert(0, "./");
  }
  return ref;
}

// RFC 3986 5.2.2's non-strict reading, which browsers follow: a reference
// with its base's scheme and no authority ("http:page2.html" on an http
// page) is relative, its scheme dropped. (Strictly it is an absolute URI
// without a host, which leads nowhere.)
// A reference of the other of http and https with no "//" ("https:host/x"
// on an http page) names its host after the colon, as browsers read it
// (WHATWG URL, "special authority ignore slashes"): "https://host/x".
std::string without_base_scheme(const std::string& ref, const std::string& base) {
  const std::size_t colon = ref.find(':');
  if (colon == std::string::npos || ref.compare(colon + 1, 2, "//") == 0 ||
      !is_scheme(std::string_view(ref).substr(0, colon))) {
    return ref;
  }
  const std::string scheme = lower_ascii(ref.substr(0, colon));
  if (base.size() > colon && base[colon] == ':' &&
      scheme == lower_ascii(base.substr(0, colon))) {
    return ref.substr(colon + 1);
  }
  if (scheme != "http" && scheme != "https") {
    return ref;
  }
  const std::size_t host = std::min(ref.find_first_not_of('/', colon + 1), ref.size());
  return scheme + "://" + ref.substr(host);
}

// `text` with each `from` replaced by `to`, in one pass.
std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (std::size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos);
  return out;
}

// The longest run of ASCII digits in `text`.
std::size_t longest_digit_run(const std::string& text) {
  std::size_t longest = 0;
  std::size_t run = 0;
  for (const char c : text) {
    run = c >= '0' && c <= '9' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

// "!p0!", "!p00!"...: one that neither string holds, nor can make up with
// a marker put in its text (its digits are more than any run of theirs);
// markers of other letters are as absent, and distinct.
std::string absent_marker(const std::string& a, const std::string& b) {
  const std::size_t digits = std::max(longest_digit_run(a), longest_digit_run(b)) + 1;
  return "!p" + std::string(digits, '0') + "!";
}

// Where a URL's authority, its host and port, and what follows start: all 0
// in a reference without "//" ("a/b", "/a", "http:a"). The user info, if
// any, runs from `authority` to the '@' before `host`.
struct HostSpan {
  std::size_t authority = 0;
  std::size_t host = 0;
  std::size_t end = 0;
};

HostSpan host_span(const std::string& url) {
  std::size_t start = std::string::npos;
  if (url.compare(0, 2, "//") == 0) {
    start = 2;
  } else if (const std::size_t colon = url.find(':');
             colon != std::string::npos && colon < url.find_first_of("/?#") &&
             url.compare(colon + 1, 2, "//") == 0) {
    start = colon + 3;
  }
  if (start == std::string::npos) {
    return {};
  }
  const std::size_t end = std::min(url.find_first_of("/?#", start), url.size());
  const std::size_t at = end > start ? url.rfind('@', end - 1) : std::string::npos;
  return {start, at != std::string::npos && at >= start ? at + 1 : start, end};
}

} // namespace

UriShield::UriShield(const std::string& a, const std::string& b) {
  // As absent_marker() writes them, both texts read once.
  const std::string zeros(std::max(longest_digit_run(a), longest_digit_run(b)) + 1, '0');
  for (std::size_t i = 0; i < k_chars.size(); ++i) {
    m_markers[i] = std::string("!") + static_cast<char>('b' + i) + zeros + "!";
  }
}

std::string UriShield::hide(const std::string& url) const {
  // The user info too: escaped before '^' and '|' were sent as written, a
  // link's "u|1@h" resolved, and libxml2 refuses them there as well.
  // A ':' in the path too, which xmlBuildURI escapes ("Cat:A" was sent as
  // "Cat%3AA"), but not a scheme's, a port's or the user info's.
  const HostSpan span = host_span(url);
  const std::size_t path = std::min(url.find_first_of("/?#", span.end), url.size());
  std::string out;
  for (std::size_t i = 0; i < url.size(); ++i) {
    const bool user_info = i >= span.authority && i + 1 < span.host;
    const bool hidden = url[i] == ':' ? i >= path : i >= span.end || user_info;
    const std::size_t which = hidden ? k_chars.find(url[i]) : std::string_view::npos;
    if (which == std::string_view::npos) {
      out += url[i];
    } else {
      out += m_markers[which];
    }
  }
  return out;
}

std::string UriShield::show(std::string text) const {
  for (std::size_t i = 0; i < k_chars.size(); ++i) {
    text = replace_all(text, m_markers[i], std::string(1, k_chars[i]));
  }
  return text;
}

namespace {

// resolve_any_length() before its host is written in ASCII (with_ascii_host).
std::optional<std::string> resolve_as_written(const std::string& base, const std::string& ref) {
  prepare_thread();
  // An escaped dot in the path is a dot (RFC 3986 6.2.2.2; browsers take
  // "%2e%2e" for a ".." segment too); one in the query stays as written.
  std::string escaped_ref =
      escape_uri_chars(without_base_scheme(backslashes_as_slashes(trim_ascii(ref)), base));
  const std::size_t path_end = std::min(escaped_ref.find_first_of("?#"), escaped_ref.size());
  escaped_ref = replace_all(replace_all(escaped_ref.substr(0, path_end), "%2e", "."), "%2E", ".") +
                escaped_ref.substr(path_end);
  std::string escaped_base = escape_uri_chars(trim_ascii(base));
  // xmlBuildURI decodes the escapes of a relative reference's path, and of
  // its base's, where the result is still a valid path: "a%2Fb" became
  // "a/b", another resource. Each '%' goes in as a marker that neither
  // holds ('!' is a character it keeps) and is put back.
  const std::string marker = absent_marker(escaped_ref, escaped_base);
  const UriShield shield(escaped_ref, escaped_base);
  escaped_ref = shield.hide(replace_all(escaped_ref, "%", marker));
  escaped_base = shield.hide(replace_all(escaped_base, "%", marker));
  XmlString built(xmlBuildURI(as_xml(escaped_ref), as_xml(escaped_base)));
  if (!built) {
    return std::nullopt;
  }
  std::string result = replace_all(from_xml(built.get()), marker, "%");
  result = remove_dot_segments(result);
  UriPtr uri(xmlParseURIRaw(result.c_str(), 1));
  if (!uri || uri->scheme == nullptr || uri->server == nullptr || uri->server[0] == '\0') {
    return std::nullopt;
  }
  const std::string scheme = lower_ascii(uri->scheme);
  if (scheme != "http" && scheme != "https") {
    return std::nullopt;
  }
  result = shield.show(std::move(result));
  // Written lower-case, as browsers write it ("HTTP://h/" is "http://h/").
  result.replace(0, scheme.size(), scheme);
  return result;
}

// resolve_url without the length cap.
std::optional<std::string> resolve_any_length(const std::string& base, const std::string& ref) {
  const std::optional<std::string> resolved = resolve_as_written(base, ref);
  return resolved ? with_ascii_host(*resolved) : std::nullopt;
}

} // namespace

std::optional<std::string> resolve_url(const std::string& base, const std::string& ref) {
  std::optional<std::string> resolved = resolve_any_length(base, ref);
  if (resolved && request_bytes(*resolved) > k_max_link_bytes) {
    return std::nullopt;
  }
  return resolved;
}

std::string escape_uri_chars(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    const auto c = static_cast<unsigned char>(ch);
    const auto hex_at = [&](std::size_t k) {
      return k < text.size() && std::isxdigit(static_cast<unsigned char>(text[k])) != 0;
    };
    // A '%' that starts no escape ("50%off") is sent as browsers send it,
    // which a server reads as the same "%" written "%25"; libxml2 refuses it.
    const bool lone_percent = c == '%' && !(hex_at(i + 1) && hex_at(i + 2));
    const bool bad = c <= 0x20 || c >= 0x7F || c == '"' || c == '<' || c == '>' || c == '\\' ||
                     c == '`' || c == '{' || c == '}' || lone_percent;
    if (bad) {
      core::append_percent_encoded(out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

std::optional<std::string> with_ascii_host(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return url;
  }
  const std::size_t authority = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  std::size_t host = authority;
  if (const std::size_t at = url.rfind('@', authority_end - 1);
      at != std::string::npos && at >= authority && authority_end > authority) {
    host = at + 1;
  }
  if (host < url.size() && url[host] == '[') {
    return url;  // an IPv6 literal
  }
  const std::size_t host_end = std::min(url.find(':', host), authority_end);
  const std::string_view name(url.data() + host, host_end - host);
  if (std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
               c == '_';
      })) {
    return url;  // nearly every host
  }
  // Its escapes decoded: the name as UTF-8.
  std::string utf8;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto digit = [&](std::size_t k) {
      const char c = k < name.size() ? static_cast<char>(name[k] | 0x20) : 'z';
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    if (name[i] == '%' && digit(i + 1) >= 0 && digit(i + 2) >= 0) {
      utf8 += static_cast<char>(digit(i + 1) * 16 + digit(i + 2));
      i += 2;
    } else {
      utf8 += name[i];
    }
  }
  // The URL Standard's forbidden domain code points, decoded ("%00", "%2F"):
  // a NUL would also end the name libidn2 reads ("a%00.b" became "a").
  if (std::any_of(utf8.begin(), utf8.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x21 || c == 0x7f || std::strchr("#%/:<>?@[\\]^|", c) != nullptr;
      })) {
    return std::nullopt;
  }
  char* ascii = nullptr;
  if (idn2_to_ascii_8z(utf8.c_str(), &ascii, IDN2_NONTRANSITIONAL) != IDN2_OK || ascii == nullptr) {
    return std::nullopt;
  }
  const std::string converted(ascii);
  idn2_free(ascii);
  // The URL Standard's forbidden domain code points, and none left over.
  if (converted.empty() || converted.find_first_of(" #%/:<>?@[\\]^|") != std::string::npos ||
      std::any_of(converted.begin(), converted.end(),
                  [](unsigned char c) { return c < 0x21 || c >= 0x7f; })) {
    return std::nullopt;
  }
  return url.substr(0, host) + converted + url.substr(host_end);
}

std::string strip_fragment(const std::string& url) {
  const std::size_t hash = url.find('#');
  return hash == std::string::npos ? url : url.substr(0, hash);
}

std::string page_identity(const std::string& url) {
  // A start URL may name its host in Unicode, the links to it in ASCII.
  // Its dot segments removed, as they are from links ("/a/../p" is "/p").
  const std::string bare = remove_dot_segments(
      with_ascii_host(strip_fragment(url)).value_or(strip_fragment(url)));
  const UriShield shield(bare);
  UriPtr uri(xmlParseURIRaw(shield.hide(bare).c_str(), 1));
  if (!uri || uri->scheme == nullptr || uri->server == nullptr) {
    return bare;
  }
  const std::string scheme = core::lower_ascii(uri->scheme);
  const int default_port = scheme == "https" ? 443 : scheme == "http" ? 80 : -1;
  std::string id = scheme + "://";
  if (uri->user != nullptr) {
    id += uri->user;
    id += '@';
  }
  id += core::lower_ascii(uri->server);
  if (uri->port > 0 && uri->port != default_port) {
    id += ':' + std::to_string(uri->port);
  }
  id += uri->path != nullptr && uri->path[0] != '\0' ? uri->path : "/";
  if (uri->query_raw != nullptr && uri->query_raw[0] != '\0') {  // "p?" is "p"
    id += '?';
    id += uri->query_raw;
  }
  // '[', ']', '^', '|' and a path's ':' are sent as written, and were sent
  // escaped before: a page linked both ways (or by a job resumed across that
  // change) is one.
  id = shield.show(std::move(id));
  for (const auto& [escaped, as_written] :
       {std::pair{"%5B", "["}, {"%5b", "["}, {"%5D", "]"}, {"%5d", "]"}, {"%5E", "^"},
        {"%5e", "^"}, {"%7C", "|"}, {"%7c", "|"}, {"%3A", ":"}, {"%3a", ":"}}) {
    id = replace_all(id, escaped, as_written);
  }
  return id;
}

struct ParsedListing::State {
  // Held until the page is freed: declared before it.
  ParseBudget::Lease lease;
  const core::Selectors& selectors;
  DocPtr doc;
  XPathContextPtr ctx;
  std::string base;
  std::vector<xmlNode*> items;
  std::optional<std::string> next_url;
  std::string encoding;  // the page's, as decoded: its links' queries are written in it
};

ParsedListing::ParsedListing(const std::string& html, const std::string& page_url,
                             const core::Selectors& selectors, const std::string& charset,
                             unsigned long step_budget, ParseDeadline deadline)
    : m_state(new State{parse_turn(parse_charge(html), deadline), selectors, nullptr, nullptr,
                        page_url, {}, std::nullopt, {}}) {
  prepare_thread();
  State& s = *m_state;
  s.encoding = sniff_encoding(html, charset);
  std::size_t longest_run = 0;
  s.doc = parse_html(html, page_url, s.encoding, longest_run);
  s.ctx = page_context(s.doc.get(), longest_run, step_budget);
  if (!s.ctx) {
    return;
  }
  xmlNode* root = reinterpret_cast<xmlNode*>(s.doc.get());
  s.base = base_url_of(s.doc.get(), s.ctx.get(), page_url);
  XPathCompPtr next_comp = compile(selectors.next_page);
  XPathObjectPtr next = evaluate(next_comp.get(), s.ctx.get(), root);
  const std::optional<std::string> next_ref = with_query_in(link_of(next.get()), s.encoding);
  s.next_url = resolve_link(s.base, next_ref);
  if (!s.next_url && next_ref) {
    // Not followed, as resolve_url says, but not taken for the end of the
    // pagination either: the job would end done without the pages after.
    const std::optional<std::string> written = resolve_as_written(s.base, *next_ref);
    const std::optional<std::string> long_link = written ? with_ascii_host(*written) : std::nullopt;
    if (written && !long_link) {
      throw std::runtime_error(
          "its next link names a host that has no ASCII form under IDNA2008 (libidn2 refuses "
          "it), so it cannot be looked up");
    }
    if (long_link && request_bytes(*long_link) > k_max_link_bytes) {
      throw std::runtime_error("its next link is " + std::to_string(request_bytes(*long_link)) +
                               " bytes long, more than the " + std::to_string(k_max_link_bytes) +
                               " a link may have");
    }
  }
  XPathCompPtr item_comp = compile(selectors.item);
  XPathObjectPtr items = evaluate(item_comp.get(), s.ctx.get(), root);
  if (items && items->type == XPATH_NODESET && items->nodesetval != nullptr) {
    // Copied: evaluating fields reuses the context.
    const xmlNodeSet* set = items->nodesetval;
    s.items.assign(set->nodeTab, set->nodeTab + set->nodeNr);
  }
}

ParsedListing::ParsedListing(ParsedListing&& other) noexcept = default;
ParsedListing& ParsedListing::operator=(ParsedListing&& other) noexcept = default;
ParsedListing::~ParsedListing() = default;

const std::optional<std::string>& ParsedListing::next_url() const { return m_state->next_url; }

std::size_t ParsedListing::item_count() const { return m_state->items.size(); }

ListingExtraction ParsedListing::extract(bool want_detail_links, std::size_t max_items) {
  prepare_thread();
  State& s = *m_state;
  ListingExtraction result;
  result.next_url = s.next_url;
  const CompiledFields fields(s.selectors.fields);
  XPathCompPtr detail_comp = want_detail_links ? compile(s.selectors.detail_link) : nullptr;
  const std::size_t count = std::min(max_items, s.items.size());
  result.items.reserve(count);
  std::size_t bytes_left = k_max_extracted_bytes;
  for (std::size_t i = 0; i < count; ++i) {
    xmlNode* node = s.items[i];
    ExtractedItem item;
    item.fields = fields.evaluate_at(s.ctx.get(), node, bytes_left);
    if (want_detail_links) {
      XPathObjectPtr link = evaluate(detail_comp.get(), s.ctx.get(), node);
      const std::optional<std::string> ref = with_query_in(link_of(link.get()), s.encoding);
      // Taken as extracted before it is resolved, which costs in proportion
      // (escaped, it may triple), also when it resolves to nothing (a link
      // over k_max_link_bytes); then what it resolved to, where longer.
      const std::size_t ref_bytes = ref ? ref->size() : 0;
      spend(bytes_left, ref_bytes);
      item.detail_url = resolve_link(s.base, ref);
      if (item.detail_url && item.detail_url->size() > ref_bytes) {
        spend(bytes_left, item.detail_url->size() - ref_bytes);
      }
    }
    result.items.push_back(std::move(item));
  }
  s.items.clear();
  return result;
}

ListingExtraction extract_listing(const std::string& html, const std::string& page_url,
                                  const core::Selectors& selectors, bool want_detail_links,
                                  const std::string& charset, unsigned long step_budget) {
  return ParsedListing(html, page_url, selectors, charset, step_budget).extract(want_detail_links);
}

core::FieldValues extract_detail(const std::string& html, const std::string& page_url,
                                 const core::FieldList& fields, const std::string& charset,
                                 unsigned long step_budget) {
  return DetailExtractor(fields).extract(html, page_url, charset, step_budget);
}

struct DetailExtractor::State {
  const core::FieldList fields;
  const CompiledFields compiled;
  XPathContextPtr ctx;  // its document is the page's while it is extracted
};

DetailExtractor::DetailExtractor(const core::FieldList& fields) {
  prepare_thread();
  m_state.reset(new State{fields, CompiledFields(fields),
                          xpath_context(nullptr)});
}

DetailExtractor::~DetailExtractor() = default;

core::FieldValues DetailExtractor::extract(const std::string& html, const std::string& page_url,
                                           const std::string& charset, unsigned long step_budget,
                                           ParseDeadline deadline) {
  State& s = *m_state;
  const ParseBudget::Lease lease = parse_turn(parse_charge(html), deadline);
  std::size_t longest_run = 0;
  DocPtr doc = parse_html(html, page_url, sniff_encoding(html, charset), longest_run);
  if (!doc || !s.ctx) {
    core::FieldValues empty;
    for (const auto& [name, expr] : s.fields) {
      empty.emplace_back(name, std::nullopt);
    }
    return empty;
  }
  // As page_context() makes it for a page of its own; the document is let
  // go before it is freed, however the evaluation ends.
  xmlXPathContext* ctx = s.ctx.get();
  struct Detach {
    xmlXPathContext* ctx;
    ~Detach() {
      ctx->doc = nullptr;
      ctx->node = nullptr;
    }
  } detach{ctx};
  ctx->doc = doc.get();
  ctx->contextSize = -1;
  ctx->proximityPosition = -1;
  ctx->depth = 0;
  start_budget(ctx, longest_run, step_budget);
  std::size_t bytes_left = k_max_extracted_bytes;
  return s.compiled.evaluate_at(ctx, reinterpret_cast<xmlNode*>(doc.get()), bytes_left);
}

} // namespace scrapekeep::scrape
