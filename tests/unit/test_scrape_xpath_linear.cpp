#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/xpath_linear.hpp"

using scrapekeep::core::FieldList;
using scrapekeep::core::FieldValues;
using namespace scrapekeep::scrape;

namespace {

// What libxml2 itself gives for `expr` on `html` (unwritten), as XPath's string().
std::string libxml2_value(const std::string& html, const std::string& expr) {
  init_libxml();
  htmlDocPtr doc = htmlReadMemory(
      html.data(), static_cast<int>(html.size()), nullptr, "UTF-8",
      HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
  REQUIRE(doc != nullptr);
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  ctx->node = reinterpret_cast<xmlNodePtr>(doc);  // as extraction evaluates a field
  xmlXPathObjectPtr obj =
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr.c_str()), ctx);
  std::string value = "(error)";
  if (obj != nullptr) {
    xmlChar* text = xmlXPathCastToString(obj);
    value = reinterpret_cast<const char*>(text);
    xmlFree(text);
  }
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return value;
}

// What extraction gives for `expr` (written by xpath_as_compiled()).
std::string extracted_value(const std::string& html, const std::string& expr) {
  const FieldValues values = extract_detail(html, "http://h.test/", FieldList{{"v", expr}});
  return values[0].second.value_or("(none)");
}

}  // namespace

TEST_CASE(
    "comparisons of two node-sets are written as scrapekeep's functions at every level, "
    "others are left to libxml2",
    "[scrape][xpath_linear]") {
  CHECK(xpath_with_linear_operators("//a[. = //b]") ==
        "/descendant::a[count(., //b, 'scrapekeep-equal')]");
  CHECK(xpath_with_linear_operators("//i != //i") == "count(//i, //i, 'scrapekeep-unequal')");
  CHECK(xpath_with_linear_operators("//a < //b/@x") == "count(//a, //b/@x, 'scrapekeep-less')");
  CHECK(xpath_with_linear_operators("//a <= id('k')") ==
        "count(//a, id('k'), 'scrapekeep-less-or-equal')");
  // `a > b` is `b < a`.
  CHECK(xpath_with_linear_operators("//a > //b") == "count(//b, //a, 'scrapekeep-less')");
  CHECK(xpath_with_linear_operators(" //a>=(//b)[1] ") ==
        " count((//b)[1], //a, 'scrapekeep-less-or-equal') ");
  CHECK(xpath_with_linear_operators("not(//a = //b) and count(//c[@x != ../@y]) > 1") ==
        "not(count(//a, //b, 'scrapekeep-equal')) and count(/descendant::c[count(@x, ../@y, "
        "'scrapekeep-unequal')]) > 1");
  // Left to right: the second compares a boolean with a node-set.
  CHECK(xpath_with_linear_operators("//a = //b = //c") ==
        "count(//a, //b, 'scrapekeep-equal') = //c");
  CHECK(xpath_with_linear_operators("//a = (//b = //c)") ==
        "//a = (count(//b, //c, 'scrapekeep-equal'))");
  CHECK(xpath_with_linear_operators("//and = //or/div") ==
        "count(//and, //or/div, 'scrapekeep-equal')");
  CHECK(xpath_with_linear_operators("//a[. = //b and * = //c or 1]") ==
        "/descendant::a[count(., //b, 'scrapekeep-equal') and count(*, //c, "
        "'scrapekeep-equal') or 1]");
  for (const char* kept : {"//a = 'x'", "//a = 1", "count(//a) = count(//b)", "//a = $v",
                           "-//a = //b", "//a * 2 < //b", "string(//a) != //b", "(//a)[. = 'x|y']",
                           "//a[", "//a = ", "//a = //b)", "'open", "//a = //b foo"}) {
    CHECK(xpath_with_linear_operators(kept) == kept);
  }
}

TEST_CASE("an expression nested deeper than the reader reads is left as written",
          "[scrape][xpath_linear]") {
  std::string nested = "//a = //b";
  for (int i = 0; i < 3000; ++i) {
    nested = "(" + nested + ")";
  }
  CHECK(xpath_with_linear_operators(nested) == nested);
  std::string shallow = "//a = //b";
  for (int i = 0; i < 100; ++i) {
    shallow = "not(" + shallow + ")";
  }
  CHECK(xpath_with_linear_operators(shallow).find("count(//a, //b, 'scrapekeep-equal')") !=
        std::string::npos);
}

TEST_CASE("a long chain of minus signs or of operators is read without overflowing the stack",
          "[scrape][xpath_linear]") {
  // One call of the reader per minus sign overflowed the stack (SIGSEGV).
  std::string minus(200000, '-');
  CHECK(xpath_with_linear_operators(minus + "1") == minus + "1");
  CHECK(xpath_with_linear_operators(minus + "(//a = //b)") ==
        minus + "(count(//a, //b, 'scrapekeep-equal'))");
  std::string chain = "//a = //b";
  for (int i = 0; i < 100000; ++i) {
    chain += " and 1";
  }
  CHECK(xpath_with_linear_operators(chain) ==
        "count(//a, //b, 'scrapekeep-equal')" + chain.substr(9));
}

TEST_CASE("comparisons of two node-sets give what libxml2 gives for them",
          "[scrape][xpath_linear]") {
  const std::string html =
      "<!DOCTYPE html><html><head><title>t</title></head><body id='k'>"
      "<p class='n'>5</p><p class='n'> 7 </p><p class='n'>x</p><p class='n'>-2.5</p>"
      "<i>ab1</i><i>ab2</i><i>5</i><i></i><b>ab2</b><b>ab3</b><b>7</b>"
      "<u>3</u><u>3</u><s></s><s></s><em>1e3</em><em>Infinity</em>"
      "<a href='5' title=''>x</a><a href='ab1'>ab1</a><!-- 5 --><!--ab2-->"
      "<q><q>n</q>n</q></body></html>";
  const std::vector<std::string> sets = {
      "//p",      "//i",         "//b",    "//u",      "//s", "//em",    "//none",  "//a/@href",
      "//@title", "//comment()", "//body", "//text()", "//q", "/node()", "id('k')", "//node()"};
  int compared = 0;
  for (const std::string& left : sets) {
    for (const std::string& right : sets) {
      for (const char* op : {" = ", " != ", " < ", " <= ", " > ", " >= "}) {
        const std::string expr = "boolean(" + left + op + right + ")";
        INFO(expr << " written as " << xpath_as_compiled(expr));
        CHECK(xpath_as_compiled(expr) != expr);
        CHECK(extracted_value(html, expr) == libxml2_value(html, expr));
        ++compared;
      }
    }
  }
  CHECK(compared == 16 * 16 * 6);
  // Except for the document node: libxml2 2.9 tells values apart by a hash
  // first, which it takes as 0 for an HTML document, so that it finds `/`
  // equal to no other node. XPath 1.0's answer, which scrapekeep gives:
  CHECK(libxml2_value(html, "boolean(/ = //html)") == "false");
  CHECK(extracted_value(html, "boolean(/ = //html)") == "true");
  CHECK(extracted_value(html, "boolean(/ != //html)") == "false");
  CHECK(extracted_value(html, "boolean(/ = //body)") == "false");
  CHECK(extracted_value(html, "boolean(/ != //body)") == "true");
  CHECK(extracted_value(html, "boolean(/ = /)") == "true");
  CHECK(extracted_value(html, "boolean(/ < /)") == "false");
}

TEST_CASE(
    "comparisons of two node-sets of 150000 nodes each, which no pair of nodes satisfies, end",
    "[scrape][xpath_linear]") {
  // libxml2 2.9 compares every node of one set with every node of the
  // other, none of it a step of the budget, nothing stopping it: 2.25 x 10^10
  // pairs for each of these, about 40 s each. The values share their first
  // two characters, so libxml2's hash of them does not tell them apart.
  std::string html = "<html><body>";
  for (int i = 0; i < 150000; ++i) {
    html += "<i>105</i>";
  }
  for (int i = 0; i < 150000; ++i) {
    html += "<b>106</b>";
  }
  html += "</body></html>";
  const FieldList fields{{"eq", "boolean(//i = //b)"},  {"ne", "boolean(//i != //i)"},
                         {"lt", "boolean(//b < //i)"},  {"le", "boolean(//b <= //i)"},
                         {"gt", "boolean(//i > //b)"},  {"ge", "boolean(//i >= //b)"},
                         {"yes", "boolean(//i != //b)"}};
  const FieldValues values = extract_detail(html, "http://h.test/", fields);
  REQUIRE(values.size() == 7);
  for (int k = 0; k < 6; ++k) {
    INFO(values[k].first);
    CHECK(values[k].second == "false");
  }
  CHECK(values[6].second == "true");
}

TEST_CASE(
    "operands written as count()'s are not sorted by libxml2: a comparison of the text "
    "nodes of a run of 400000 text and comment nodes ends",
    "[scrape][xpath_linear]") {
  // libxml2 2.9 sorts what a function is given (count() excepted) in
  // document order, comparing two text nodes by walking their siblings back
  // to an element: 20,000 took 1.6 s as arguments of the functions, and the
  // time grows with the square of their number (200,000 here: minutes).
  std::string html = "<html><body><p>a";
  for (int i = 0; i < 200000; ++i) {
    html += "x<!---->";
  }
  html += "</p></body></html>";
  const FieldList fields{{"eq", "boolean(//p/text() = //p/comment()[1])"},
                         {"ne", "boolean(//p/text() != //p/comment()[1])"},
                         {"n", "count(//p/text())"}};
  // A budget that leaves steps enough for such a page (extractor.hpp:
  // k_run_per_step_share), so that only the sorts would take the time.
  const FieldValues values =
      extract_detail(html, "http://h.test/", fields, {}, k_xpath_step_budget * 100000);
  REQUIRE(values.size() == 3);
  // The comments are empty, no text is.
  CHECK(values[0].second.value_or("(none)") == "false");
  CHECK(values[1].second.value_or("(none)") == "true");
  CHECK(values[2].second.value_or("(none)") == "200000");
}

TEST_CASE("count() with one argument is XPath's, and a selector cannot call it with more",
          "[scrape][xpath_linear]") {
  const std::string html = "<html><body><p>1</p><p>2</p></body></html>";
  CHECK(extract_detail(html, "http://h.test/", {{"n", "count(//p)"}})[0].second == "2");
  CHECK(extract_detail(html, "http://h.test/", {{"n", "count(//p | //body)"}})[0].second == "3");
  CHECK(xpath_error("count(//p, //body, 'scrapekeep-union')"));
  CHECK(xpath_error("count(//p, 'scrapekeep-equal')"));
}

TEST_CASE(
    "a step after // whose predicates do not test the position is written with the descendant "
    "axis, others are left as written",
    "[scrape][xpath_linear]") {
  CHECK(xpath_with_linear_operators("//p[@class='x']") == "/descendant::p[@class='x']");
  CHECK(xpath_with_linear_operators(".//span[@c]/@href") == "./descendant::span[@c]/@href");
  CHECK(xpath_with_linear_operators("/html/body//p[not(@x)][@y]") ==
        "/html/body/descendant::p[not(@x)][@y]");
  CHECK(xpath_with_linear_operators("div/../p//p[@y]") == "div/../p/descendant::p[@y]");
  CHECK(xpath_with_linear_operators("//a[(@x)]|//a[id('k')]/b[@x]") ==
        "count(/descendant::a[(@x)], /descendant::a[id('k')]/b[@x], 'scrapekeep-union')");
  CHECK(xpath_with_linear_operators("//div[p]/p[.//b[@x]]") ==
        "/descendant::div[p]/p[./descendant::b[@x]]");
  CHECK(xpath_with_linear_operators("//text()[normalize-space()]") ==
        "/descendant::text()[normalize-space()]");
  CHECK(xpath_with_linear_operators(".//b[contains(., 'x') or 'y']") ==
        "./descendant::b[contains(., 'x') or 'y']");
  CHECK(xpath_with_linear_operators("//*[@id = 'k' and string-length(.) > 2]") ==
        "/descendant::*[@id = 'k' and string-length(.) > 2]");
  CHECK(xpath_with_linear_operators("//a[@rel='next']/@href | //link[@rel='next']/@href") ==
        "count(/descendant::a[@rel='next']/@href, /descendant::link[@rel='next']/@href, "
        "'scrapekeep-union')");
  // Without a predicate libxml2 does it itself; the others may test the
  // position (a number, a variable, an unknown function, position() or
  // last() anywhere), or are not of the child axis.
  for (const char* kept :
       {"//a", ".//a/b", "//a[1]", "//a[@x][1]", "//a[position() < 3]", "//a[last()]",
        "//a[count(b)]", "//a[$v]", "//a[f(b)]", "//a[-@x]", "//a[@x + 1]", "//a[(1)]",
        "//a[.//b[position() = 1]]", "//@href[. = 'x']", "//child::a[@x]", "//a[string-length(.)]",
        "/a[@x]", "a[@x]//b"}) {
    CHECK(xpath_with_linear_operators(kept) == kept);
  }
  // Nor from nodes that may be in each other, which the descendant axis
  // would test a node once for each of (`//` does once): after `//`, a
  // filter, an axis other than child.
  CHECK(xpath_with_linear_operators("//div[p]//p[.//b[@x]]") ==
        "/descendant::div[p]//p[./descendant::b[@x]]");
  for (const char* kept : {"//div//p[@y]", "(//i)//b[@x]", "id('k')//b[@x]", "//div/p//b[@x]",
                           "//.//b[@x]", "ancestor::div//b[@x]", "@x//b[@y]", "$v//b[@x]"}) {
    CHECK(xpath_with_linear_operators(kept) == kept);
  }
}

TEST_CASE("a step written with the descendant axis takes no more steps than as written",
          "[scrape][xpath_linear]") {
  // 300 <div> in each other around a <p>, and 1,000 <b> after them: as
  // written the predicate is evaluated once, for the <p>; from each <div>
  // with the descendant axis it would be 300 times (300,000 steps).
  std::string html = "<html><body>";
  for (int i = 0; i < 300; ++i) {
    html += "<div>";
  }
  html += "<p>x</p>";
  for (int i = 0; i < 300; ++i) {
    html += "</div>";
  }
  for (int i = 0; i < 1000; ++i) {
    html += "<b></b>";
  }
  html += "</body></html>";
  const FieldValues values =
      extract_detail(html, "http://h.test/d", {{"v", "//div//p[count(//b) > 0]"}}, "", 100'000);
  REQUIRE(values.size() == 1);
  CHECK(values[0].second == "x");
}

TEST_CASE("steps written with the descendant axis select what libxml2 selects as written",
          "[scrape][xpath_linear]") {
  const std::string html =
      "<html><head><title>t</title></head><body id='k'>"
      "<div class='a'><p class='x'>1<b y='1'>b1</b></p><p>2</p>"
      "<div class='b'><p class='x' y=''>3</p><span><p>4<i>i</i></p></span> <!-- c --> t1 "
      "<p class='x'><b>5</b></p></div></div>"
      "<div><p y='2'> </p>t2<b>6<b>7</b></b></div><p>last</p></body></html>";
  const std::vector<std::string> paths = {
      "//", ".//", "//div//", "//div/", "(//div)//", "//div[@class]//", "/html/body//"};
  const std::vector<std::string> tests = {"p", "b", "*", "node()", "text()", "p/b", "div"};
  const std::vector<std::string> predicates = {"[@class='x']",
                                               "[@y]",
                                               "[not(@y)]",
                                               "[b]",
                                               "[.//b]",
                                               "[. = '3']",
                                               "[@y][@class]",
                                               "[contains(., '1') or b]",
                                               "[name()]",
                                               "[normalize-space()]",
                                               "[string(@y)]",
                                               "[@y = ../p/@y]",
                                               "[1]",
                                               "[last()]",
                                               "[position() > 1]",
                                               "[count(*) = 1]"};
  int compared = 0;
  for (const std::string& path : paths) {
    for (const std::string& test : tests) {
      for (const std::string& predicate : predicates) {
        const std::string nodes = path + test + predicate;
        for (const std::string& expr :
             {"count(" + nodes + ")", "normalize-space((" + nodes + ")[1])",
              "normalize-space((" + nodes + ")[last()])",
              "count((" + nodes + ")[2]/preceding::node())"}) {
          INFO(expr << " written as " << xpath_as_compiled(expr));
          CHECK(extracted_value(html, expr) == libxml2_value(html, expr));
          ++compared;
        }
      }
    }
  }
  CHECK(compared == 7 * 7 * 16 * 4);
  // The expressions were written anew (not all left as they were).
  CHECK(xpath_as_compiled("count(//div[@class]/p[b])") == "count(/descendant::div[@class]/p[b])");
}

TEST_CASE(
    "text, comment and processing instruction nodes are sorted in document order with the "
    "elements in the element before them",
    "[scrape][xpath_linear]") {
  // Extraction numbers elements for libxml2 2.9's sort (extractor.cpp:
  // number_elements), which then put ` tail` before `<b>` here, and each
  // node after an element before that element's descendants. libxml2_value()
  // numbers none: its sort walks the tree, slowly and rightly.
  const std::string html =
      "<html><body><div><p><b>x</b><i>w</i></p> tail<!--c--><?pi x?></div>"
      "<div><span><i>y</i></span>z<em>e</em><!--d--></div>u</body></html>";
  const std::vector<std::string> sets = {"//div/text()",
                                         "//div/comment()",
                                         "//div/processing-instruction()",
                                         "//b",
                                         "//i",
                                         "//p",
                                         "//div/node()",
                                         "//text()",
                                         "//b/ancestor::*",
                                         "//em/preceding::node()"};
  int compared = 0;
  for (const std::string& left : sets) {
    for (const std::string& right : sets) {
      for (const char* position : {"1", "2", "3", "last()"}) {
        for (const char* value : {"name", "normalize-space"}) {
          const std::string expr =
              std::string(value) + "((" + left + " | " + right + ")[" + position + "])";
          INFO(expr);
          CHECK(extracted_value(html, expr) == libxml2_value(html, expr));
          ++compared;
        }
      }
    }
  }
  CHECK(compared == 10 * 10 * 4 * 2);
  CHECK(extracted_value(html, "string((//div/text() | //b)[1])") == "x");
  CHECK(extracted_value(html, "name((//div//node()[not(@x)])[2])") == "b");
  CHECK(extracted_value(html, "count((//div/node() | //i)[2]/preceding::node())") == "2");
}

namespace {

// Random selectors for the differential test below: paths after `//`, `.//`
// and other starts, with predicates of every type (positional or not),
// unions and comparisons nested in them.
class SelectorMaker {
 public:
  explicit SelectorMaker(unsigned seed) : m_rng(seed) {}

  std::string expression(int depth) {
    switch (pick(6)) {
      case 0:
        return "count(" + path(depth) + ")";
      case 1:
        return "(" + path(depth) + ")[1]";
      case 2:
        return path(depth) + " | " + path(depth);
      default:
        return path(depth);
    }
  }

  std::string path(int depth) {
    static const char* const starts[] = {"//",
                                         "/html/body//",
                                         ".//",
                                         "//div//",
                                         "(//div)//",
                                         "//div/",
                                         "//div[@class]//",
                                         "/descendant::div//",
                                         ""};
    static const char* const tests[] = {"p", "b",      "div",    "i",        "span",
                                        "*", "text()", "node()", "comment()"};
    std::string s = std::string(starts[pick(9)]) + tests[pick(9)];
    for (int k = pick(3); k > 0; --k) {
      s += predicate(depth);
    }
    if (pick(3) == 0) {
      s += std::string(pick(2) != 0 ? "//" : "/") + tests[pick(9)];
      if (pick(2) != 0) {
        s += predicate(depth);
      }
    }
    return s;
  }

 private:
  std::string predicate(int depth) {
    static const char* const simple[] = {"[@class]",     "[@class='x']",
                                         "[1]",          "[2]",
                                         "[last()]",     "[position()>1]",
                                         "[b]",          "[not(@y)]",
                                         "[.='3']",      "[normalize-space()]",
                                         "[string(@y)]", "[count(*)]",
                                         "[count(*)=1]", "[(b|i)[1]]",
                                         "[@y|@class]",  "['']",
                                         "[0]",          "[true()]",
                                         "[number(.)]",  "[.//b]",
                                         "[../p]",       "[preceding-sibling::*]",
                                         "[position()]", "[last()-1]"};
    if (depth > 2 || pick(3) != 0) {
      return simple[pick(24)];
    }
    static const char* const ops[] = {" and ", " or ", " = ", " != ", " < ", " + ", " | "};
    return "[" + expression(depth + 1) + ops[pick(7)] + expression(depth + 1) + "]";
  }

  int pick(int n) { return static_cast<int>(m_rng() % static_cast<unsigned>(n)); }

  std::mt19937 m_rng;
};

}  // namespace

TEST_CASE("random selectors give what libxml2 gives for them, in its order",
          "[scrape][xpath_linear]") {
  // libxml2_value() evaluates them as written on a page whose elements are
  // not numbered (its sort walks the tree, rightly); extraction writes them
  // anew (unions, comparisons, steps after //) on a numbered page.
  const std::vector<std::string> pages = {
      "<html><head><title>t</title></head><body id='k'><div class='a'><p class='x'>1<b "
      "y='1'>b1</b></p><p>2</p><div class='b'><p class='x' y=''>3</p><span><p>4<i>i</i></p>"
      "</span> <!-- c --> t1 <p class='x'><b>5</b></p></div></div><div><p y='2'> </p>t2<b>6"
      "<b>7</b></b></div><p>last</p></body></html>",
      "<div><div><div class=x><p>1</p><p>2<p>3</div><b>x<i>y</i></b></div><span "
      "class=x>s<!--q-->t</span></div><p class=x y=3>9</p>"};
  SelectorMaker maker(22);
  int written_anew = 0;
  for (int k = 0; k < 3000; ++k) {
    const std::string nodes = maker.expression(0);
    written_anew += xpath_as_compiled(nodes) != nodes ? 1 : 0;
    for (const std::string& page : pages) {
      for (const std::string& expr :
           {"count(" + nodes + ")", "name((" + nodes + ")[2])", "name((" + nodes + ")[3])",
            "normalize-space((" + nodes + ")[last()])"}) {
        INFO(expr << " written as " << xpath_as_compiled(expr));
        const std::string expected = libxml2_value(page, expr);
        // A field whose expression fails has no value.
        CHECK(extracted_value(page, expr) == (expected == "(error)" ? "(none)" : expected));
      }
    }
  }
  CHECK(written_anew > 500);
}

TEST_CASE(
    "results are in document order also among many siblings, where elements keep their "
    "numbers",
    "[scrape][xpath_linear]") {
  // Among 8 siblings or more an element before a text node keeps its number
  // (number_elements), and libxml2 2.9's sort may put that text before the
  // element's descendants. Every result is sorted by each node's place in
  // the page: a field's first node, a selector's items. (A position taken
  // inside the expression, `(//div/text() | //b)[1]`, is taken from
  // libxml2's order.)
  std::string html = "<html><body><div>";
  for (int i = 0; i < 12; ++i) {
    html += "<p><b>x" + std::to_string(i) + "</b></p> t" + std::to_string(i) + "<!--c-->";
  }
  html += "</div></body></html>";
  CHECK(extracted_value(html, "//div/text() | //b") == "x0");
  CHECK(extracted_value(html, "//b/text() | //div/comment() | //div/text()") == "x0");
  CHECK(extracted_value(html, "//p/following-sibling::node()[1] | //b/text()") == "x0");
  CHECK(extracted_value(html, "count(//div/text() | //b)") == "24");
  // A selector's items, in order.
  scrapekeep::core::Selectors selectors;
  selectors.item = "//div/text() | //b";
  selectors.fields = {{"v", "normalize-space(.)"}};
  ParsedListing listing(html, "http://h.test/", selectors);
  REQUIRE(listing.item_count() == 24);
  const ListingExtraction extracted = listing.extract(false, 4);
  REQUIRE(extracted.items.size() == 4);
  const std::vector<std::string> expected = {"x0", "t0", "x1", "t1"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(i);
    CHECK(extracted.items[i].fields.at(0).second == expected[i]);
  }
}
