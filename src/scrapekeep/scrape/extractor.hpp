#pragma once
// HTML parsing and XPath 1.0 extraction with libxml2. Every function here is
// thread-safe: each call parses its own document, and libxml2's error output
// is silenced for the calling thread.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "scrapekeep/core/byte_budget.hpp"
#include "scrapekeep/core/job.hpp"

namespace scrapekeep::scrape {

// Initializes libxml2 once per process (idempotent, thread-safe). The other
// functions call it themselves; call it early from the main thread anyway.
void init_libxml();

// nullopt when `expr` is usable XPath 1.0: it compiles and evaluates (on an
// empty page: unknown functions, variables and prefixes fail there) and gives
// what a selector of `role` may (a node-set for an item, a node-set or a
// string for a link); otherwise a short message for people.
std::optional<std::string> xpath_error(const std::string& expr,
                                       core::SelectorRole role = core::SelectorRole::field);

// Pages being parsed and XPath evaluations running now, on every thread of
// the process, neither of which anything interrupts: what a stop that
// outlasts its grace may be waiting for (see Workforce::stop).
int libxml2_work_running();

// `ref` resolved against `base` per RFC 3986 (libxml2's xmlBuildURI), after
// trimming ASCII whitespace and percent-encoding characters a URI cannot hold.
// nullopt unless the result is an absolute http/https URL with a host, of
// at most k_max_link_bytes before its fragment. The fragment is kept; the
// scheme is written lower-case.
std::optional<std::string> resolve_url(const std::string& base, const std::string& ref);

// The longest link followed (next page, detail page, redirect, <base href>),
// its fragment left out: what common servers accept in a request line
// (nginx 8k, Apache 8190). A longer one would fail at most servers anyway,
// and would be stored in the page's events and, as a failed listing page's
// URL, in the job's error_message, of every list and progress answer. A
// listing page whose next link is longer fails (ParsedListing).
constexpr std::size_t k_max_link_bytes = 8192;

// Percent-encodes the bytes a URI may not hold (space, controls, non-ASCII,
// quotes, angle brackets, backslash and the like) as browsers do, and a "%"
// that starts no escape ("50%off" -> "50%25off"); escapes and reserved
// characters stay as they are.
std::string escape_uri_chars(const std::string& text);

// The characters after a URL's host that browsers send as written
// ("?page[number]=2", "/a|b") and libxml2's URI functions refuse (RFC 3986
// keeps '[' and ']' for an IPv6 host, and has no '^' or '|'): each goes
// through them as a marker that neither text given holds, and comes back.
class UriShield {
 public:
  explicit UriShield(const std::string& a, const std::string& b = {});
  // `url` with those characters after its host, or in its user info, as
  // markers; a ':' only in its path, query or fragment.
  std::string hide(const std::string& url) const;
  // `text` with the markers as the characters again.
  std::string show(std::string text) const;

 private:
  static constexpr std::string_view k_chars = "[]^|:";
  std::array<std::string, k_chars.size()> m_markers;
};

// `url` without its fragment ("#..."), for fetching.
std::string strip_fragment(const std::string& url);

// An absolute `url` (escaped, as escape_uri_chars() leaves it) with its host
// written as DNS and HTTP want it: an internationalized name ("bücher.test",
// or its percent-encoded UTF-8 "b%C3%BCcher.test") in its ASCII form
// ("xn--bcher-kva.test", UTS #46 without transitional mapping, as the URL
// Standard asks; libidn2). A host of plain ASCII letters, digits, dots and
// hyphens, and an IPv6 literal, are left as they are. nullopt when the host
// is no name (bytes that are not UTF-8, a character no domain may hold).
std::optional<std::string> with_ascii_host(const std::string& url);

// What tells two listing URLs apart for loop detection: `url` without its
// fragment, scheme and host lower-cased, the scheme's default port and an
// empty path ("/") written alike. `url` itself if it cannot be parsed.
std::string page_identity(const std::string& url);

struct ExtractedItem {
  core::FieldValues fields;               // in selector order
  std::optional<std::string> detail_url;  // resolved, fragment stripped
};

struct ListingExtraction {
  std::vector<ExtractedItem> items;     // in document order
  std::optional<std::string> next_url;  // resolved, fragment stripped
};

// XPath steps (nodes visited, operations run, and one per k_bytes_per_step
// bytes of text built: xml_memory.hpp) all the expressions of one page may
// take together: about a second of CPU. A page that needs more (a huge page
// meeting an expression that visits every node for every node) fails with an
// error instead of holding a worker for hours, deaf to its timeout and to a
// cancel. A page of 100,000 items needs 20 to 30 million (15 MB) or about 41
// million (25 MB) with ordinary selectors. Unions and comparisons of node-sets are
// scrapekeep's, counting a step per node (xpath_as_compiled); not counted: the nodes
// that building an element's text walks when that text is empty.
constexpr unsigned long k_xpath_step_budget = 100'000'000;

// libxml2 2.9 sorts a selector's nodes, and those given to a function, in
// document order, and compares two text or comment nodes by walking back
// through their siblings to an element: in time that grows with the length
// of a run of such nodes, which no step counts, and which nothing
// interrupts (a page of one <p> and 20,000 `x<!---->`: 1.3 s for
// `//text()`, growing with the square of the run; 3 ns per sibling walked).
// Each node sorted was visited, a step, so a page whose longest run is R
// nodes has the step budget divided by R / k_run_per_step_share (when that
// is more than 1): its sorts then walk at most about 4 times the budget's
// steps, a second or so. Ordinary pages have runs of a few nodes (a comment
// and the line break after it are two).
constexpr std::size_t k_run_per_step_share = 4;

// `expr` as extraction compiles it: as xpath_with_linear_operators() writes
// it (xpath_linear.hpp), unless libxml2 compiles it to a streaming pattern
// (no '[', '(', '@' or ':', as `//a | //b`): libxml2 walks the tree once for
// all a union's sides then, and gives what it gives for it.
std::string xpath_as_compiled(const std::string& expr);

// Bytes of HTML being parsed at once (parse_charge()). A parsed page takes about 25 times its
// size in memory (an 11 MiB page of 100,000 items: 310 MiB at its peak), so
// sixteen detail threads on pages near the 10 MiB cap would take gigabytes.
// A page waits until its bytes fit beside those being parsed; one larger than
// the whole budget waits until nothing else is parsed. Pages are let in in
// the order they asked, so a large page is not passed over for ever by a
// stream of smaller ones (which wait behind it). Thread-safe.
using ParseBudget = core::ByteBudget;

// The budget every extraction of the process parses under: 16 MiB. Once a
// page of k_trim_after_parse_bytes or more is freed, the memory malloc keeps
// free goes back to the system (trim_malloc_soon()).
ParseBudget& process_parse_budget();
constexpr std::size_t k_trim_after_parse_bytes = 1 << 20;

// Gives the memory malloc keeps free back to the system (malloc_trim(0)) on a
// thread of its own, and returns at once. A trim goes through every malloc
// arena, each under its lock: after rustdoc's pages of 1 to 3 MB it took 0.4 s
// on average at --detail-concurrency 8 and 1.1 s at 64 (up to 2.2 s), which
// the detail thread that freed the page spent before its next fetch. Calls
// made while a trim waits or runs ask for one trim after it, not one each.
void trim_malloc_soon();
// For tests: what trim_malloc_soon()'s thread runs instead of malloc_trim(0);
// an empty function puts malloc_trim(0) back.
void set_malloc_trim_for_tests(std::function<void()> trim);

// What a page takes of process_parse_budget(): its bytes, or, for a page of
// many short tags, k_parse_bytes_per_tag per '<' if more. A tree takes about
// 265 bytes per element, 25 times the bytes of an ordinary page's markup,
// where 10.4 MB of `<br>` (4 bytes each) made 690 MiB, 65 times.
constexpr std::size_t k_parse_bytes_per_tag = 11;
std::size_t parse_charge(std::string_view html);

// When a page gives up waiting for its turn in process_parse_budget(): the
// job's deadline. No deadline: it waits as long as it takes.
using ParseDeadline = std::chrono::steady_clock::time_point;
constexpr ParseDeadline k_no_parse_deadline = ParseDeadline::max();

// Thrown when a page's work ends because its job's did (its time ran out, a
// cancel, a stop): the page is abandoned with the job, not failed.
class PageAbandoned : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A page's deadline came while it waited to be parsed.
class ParseWaitExpired : public PageAbandoned {
 public:
  ParseWaitExpired() : PageAbandoned("the job's time ran out before the page's turn to be parsed") {}
};

// The thread's StopEvaluationsOn flag (xml_memory.hpp) was set while the
// page waited for its parse turn or its expressions were evaluated.
class EvaluationStopped : public PageAbandoned {
 public:
  EvaluationStopped() : PageAbandoned("the page's work was stopped with its job") {}
};

// The most bytes of field values (and their names) and detail links (as
// written or as resolved, whichever is longer: one that resolves to nothing
// counts too) one page's extraction may produce: a page whose values pass
// it (an absolute field such as "//body" on many items, nested items) fails
// instead of taking memory, storage and the time to copy and resolve them
// without bound.
constexpr std::size_t k_max_extracted_bytes = 16 * 1024 * 1024;

// Items of a listing page. A field's value is the whitespace-normalized
// string value of the first node its XPath selects (relative to the item), or
// the string form of a string/number/boolean result; nullopt when it selects
// nothing or fails to evaluate. Links resolve against `page_url` (or the
// page's <base href>). Detail links are only extracted when
// `want_detail_links`. `charset` is the HTTP header's charset, if any: a BOM
// wins over it, it wins over <meta charset>, and UTF-8 is the fallback.
// Parses under process_parse_budget(). Throws std::runtime_error when the page's expressions need more than
// `step_budget` XPath steps, or its values pass k_max_extracted_bytes.
ListingExtraction extract_listing(const std::string& html, const std::string& page_url,
                                  const core::Selectors& selectors, bool want_detail_links,
                                  const std::string& charset = {},
                                  unsigned long step_budget = k_xpath_step_budget);

// A listing page parsed, with its next link and its item nodes found, whose
// items' fields are evaluated later, perhaps on another thread: the next
// listing page can be on its way meanwhile. The parse budget's bytes are
// held while it lives; its expressions share one `step_budget`. Used by one
// thread at a time.
class ParsedListing {
 public:
  // Parses under process_parse_budget() and evaluates the item and next-page
  // expressions. Throws ParseWaitExpired when `deadline` comes while the page
  // waits for its turn, EvaluationStopped when the thread's
  // StopEvaluationsOn flag is set during that wait or an evaluation, and
  // std::runtime_error when they need more than `step_budget` XPath steps,
  // or the next link is longer than k_max_link_bytes. A page that cannot be
  // parsed has no items.
  // `selectors` must outlive it.
  ParsedListing(const std::string& html, const std::string& page_url,
                const core::Selectors& selectors, const std::string& charset = {},
                unsigned long step_budget = k_xpath_step_budget,
                ParseDeadline deadline = k_no_parse_deadline);
  ParsedListing(ParsedListing&& other) noexcept;
  ParsedListing& operator=(ParsedListing&& other) noexcept;
  ParsedListing(const ParsedListing&) = delete;
  ParsedListing& operator=(const ParsedListing&) = delete;
  ~ParsedListing();

  // Resolved, fragment stripped.
  const std::optional<std::string>& next_url() const;
  std::size_t item_count() const;
  // The fields (and detail links when `want_detail_links`) of the first
  // `max_items` items, evaluated once; throws as the constructor does, and
  // when the values pass k_max_extracted_bytes.
  ListingExtraction extract(bool want_detail_links,
                            std::size_t max_items = static_cast<std::size_t>(-1));

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

// Fields of a detail page, evaluated relative to the document, as above.
core::FieldValues extract_detail(const std::string& html, const std::string& page_url,
                                 const core::FieldList& fields, const std::string& charset = {},
                                 unsigned long step_budget = k_xpath_step_budget);

// extract_detail() for the many pages of one job: the fields are compiled
// once, and one XPath context serves every page (making one registers every
// XPath function in a table of its own, which cost more than evaluating the
// fields of a small page). Used by the one thread that made it: libxml2's
// memory is kept per thread (xml_memory.hpp).
class DetailExtractor {
 public:
  explicit DetailExtractor(const core::FieldList& fields);
  DetailExtractor(const DetailExtractor&) = delete;
  DetailExtractor& operator=(const DetailExtractor&) = delete;
  ~DetailExtractor();

  // As extract_detail() with the fields given above.
  core::FieldValues extract(const std::string& html, const std::string& page_url,
                            const std::string& charset = {},
                            unsigned long step_budget = k_xpath_step_budget,
                            ParseDeadline deadline = k_no_parse_deadline);

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

// XPath's normalize-space: ASCII whitespace runs become one space, trimmed.
// Other bytes (UTF-8 included) are kept exactly.
std::string normalize_space(const std::string& text);

} // namespace scrapekeep::scrape
