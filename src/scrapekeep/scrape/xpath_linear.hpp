#pragma once
// XPath expressions as extraction compiles them: what libxml2 2.9 evaluates
// in time quadratic in the nodes, uncounted by the step budget and deaf to a
// stop (xml_memory.hpp), written as calls of scrapekeep's own functions,
// which take time linear in the nodes and count a step per node.
//
// - A union (`//a | //b`): libxml2 merges its sides by comparing every node
//   of one with every node of the other. Two sides of 240,000 links each
//   (the default next_page on a hostile page) took 117 s.
// - A comparison of two node-sets (`//a[. = //b]`, `//i != //i`, `//a < //b`):
//   libxml2 compares every node of one with every node of the other,
//   allocating nothing meanwhile. 60,000 <i> took 6.5 s; a 10 MB page of them
//   about an hour.
//
// And, for half the work, a step after `//` whose predicates do not test the
// position (`//p[@class='x']`): libxml2 collects every node of the tree for
// `//` before it looks at their children, unless the step has no predicate.
//
// The expression is read with XPath 1.0's grammar (its section 3), so a
// union or a comparison is found at any level: in brackets, in a function's
// arguments, under `and` and `or`. What it cannot read is left as written,
// for libxml2 to read or refuse.

#include <libxml/xpath.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace scrapekeep::scrape {

// `expr` with each union whose sides are all node-sets, and each comparison
// of two node-sets, written as a call of count() whose last argument names
// scrapekeep's operation (libxml2 sorts what any other function is given):
// `count(//a | //b)` is `count(count(//a, //b, 'scrapekeep-union'))`,
// `(//a)[. = //b]` is `(//a)[count(., //b, 'scrapekeep-equal')]`, `//a > //b`
// is `count(//b, //a, 'scrapekeep-less')`. A union whose sides may hold
// namespace nodes (the namespace axis) stays libxml2's: those are copies
// made anew by each evaluation, which libxml2 orders by where they happen to
// be in memory. And each step of the child axis after `//` whose predicates
// are booleans, node-sets or strings, none calling position() or last(), is
// written with the descendant axis, which selects the same nodes:
// `.//p[@x][b]` is `./descendant::p[@x][b]`; `//p[1]`, `//p[count(b)]`
// (numbers: positions) and `//p` (libxml2 does it itself) stay as written,
// and so does a step whose nodes may be in each other before the `//`
// (`//div//p[@x]`, `(//i)//b[@x]`): the descendant axis would test a node
// once for each of them, more steps than `//`.
std::string xpath_with_linear_operators(std::string_view expr);

// Registers the count() that xpath_with_linear_operators() calls in `ctx`,
// in place of libxml2's, which it is with one argument; false if libxml2
// could not.
bool register_linear_operators(xmlXPathContext* ctx);

// A node's place in its page's document order (1 for the first node after
// the document node, which is 0), kept in its psvi field, which nothing else
// uses in an HTML page: set by extraction for every element, attribute,
// text, comment and processing instruction of a page it parsed
// (extractor.cpp: number_elements); other nodes are left alone.
void set_document_place(xmlNode* node, std::uintptr_t place);

// Sorts `set` in document order by those places: libxml2 2.9's own sort
// misplaces a text or comment node among the descendants of the element
// before it when elements are numbered (number_elements). By libxml2's sort
// if a node has no place (a namespace node, a page not so numbered). Each
// result of extraction is sorted so; inside an expression libxml2 sorts
// again what a bracket or a function is given.
void sort_in_document_order(xmlNodeSet* set);

// XPath 1.0's name characters (NCName, ASCII and any byte of a UTF-8 sequence).
bool starts_xpath_name(unsigned char c);
bool continues_xpath_name(unsigned char c);

}  // namespace scrapekeep::scrape
