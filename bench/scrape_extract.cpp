// Extraction cost per page, taken apart: HTML parse (and libxml2's tokenizer
// alone, building no tree) and each XPath of the benchmark's chain job, on a
// page read from a file; and the details job's detail field on it.
//
//   scrape_extract PAGE.html [ROUNDS]
//
// Prints microseconds per page for each part and for extract_listing.

#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <cstring>
#include <sstream>
#include <string>

#include "scrapekeep/scrape/extractor.hpp"

namespace {

template <typename F>
double micros_per_round(int rounds, F f) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i) {
    f();
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
             .count() /
         rounds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scrape_extract PAGE.html [ROUNDS]\n");
    return 2;
  }
  scrapekeep::scrape::init_libxml();  // as the workers do: libxml2's allocations pooled
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string html = buffer.str();
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 2000;
  const std::string url = "http://127.0.0.1:1/chain?page=1";
  scrapekeep::scrape::init_libxml();

  scrapekeep::core::Selectors selectors;
  selectors.item = "//article[@class='property']";
  selectors.fields = {{"title", ".//h2"}, {"price", ".//span[@class='price']"}};
  constexpr int k_options =
      HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET;

  std::printf("parse: %.1f us\n", micros_per_round(rounds, [&] {
                xmlFreeDoc(htmlReadMemory(html.data(), static_cast<int>(html.size()), url.c_str(),
                                          "utf-8", k_options));
              }));
  // The least any libxml2 HTML parse costs: the tokenizer with a SAX handler
  // that has no callbacks, so that no node is made.
  std::printf("tokenize only (SAX, no tree): %.1f us\n", micros_per_round(rounds, [&] {
                htmlSAXHandler none;
                std::memset(&none, 0, sizeof none);
                htmlParserCtxt* parser =
                    htmlCreateMemoryParserCtxt(html.data(), static_cast<int>(html.size()));
                xmlSAXHandler* own = parser->sax;
                parser->sax = &none;
                htmlCtxtUseOptions(parser, k_options);
                htmlParseDocument(parser);
                parser->sax = own;
                htmlFreeParserCtxt(parser);
              }));
  xmlDoc* doc =
      htmlReadMemory(html.data(), static_cast<int>(html.size()), url.c_str(), "utf-8", k_options);
  xmlXPathContext* ctx = xmlXPathNewContext(doc);
  for (const char* expr : {"//base[@href][1]/@href", "//article[@class='property']",
                           "//a[@rel='next']/@href | //link[@rel='next']/@href",
                           "//a[@rel='next']/@href", "/descendant::article[@class='property']"}) {
    xmlXPathCompExpr* comp = xmlXPathCompile(reinterpret_cast<const xmlChar*>(expr));
    std::printf("%-55s %.1f us\n", expr, micros_per_round(rounds, [&] {
                  ctx->node = reinterpret_cast<xmlNode*>(doc);
                  xmlXPathFreeObject(xmlXPathCompiledEval(comp, ctx));
                }));
    xmlXPathFreeCompExpr(comp);
  }
  // Each extraction writes its expressions as it compiles them (xpath_linear.hpp).
  std::printf("xpath_as_compiled(default next_page): %.1f us\n", micros_per_round(rounds, [&] {
                scrapekeep::scrape::xpath_as_compiled(
                    "//a[@rel='next']/@href | //link[@rel='next']/@href");
              }));
  std::printf("extract_listing: %.1f us\n", micros_per_round(rounds, [&] {
                scrapekeep::scrape::extract_listing(html, url, selectors, false, "utf-8");
              }));
  std::printf("extract_listing+links: %.1f us\n", micros_per_round(rounds, [&] {
                scrapekeep::scrape::extract_listing(html, url, selectors, true, "utf-8");
              }));
  // The detail job's field, on a page of its own each time, as a detail
  // thread of one job run evaluates it (DetailExtractor), and alone.
  const scrapekeep::core::FieldList detail_fields = {{"description", "//p[@class='desc']"}};
  std::printf("extract_detail: %.1f us\n", micros_per_round(rounds, [&] {
                scrapekeep::scrape::extract_detail(html, url, detail_fields, "utf-8");
              }));
  scrapekeep::scrape::DetailExtractor detail_extractor(detail_fields);
  std::printf("DetailExtractor::extract: %.1f us\n", micros_per_round(rounds, [&] {
                detail_extractor.extract(html, url, "utf-8");
              }));
  std::printf("resolve_url: %.1f us\n",
              micros_per_round(rounds, [&] { scrapekeep::scrape::resolve_url(url, "?page=2"); }));
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return 0;
}
