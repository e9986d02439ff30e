#pragma once
// Owners of what libxml2 allocates, each freed by libxml2's own function.

#include <libxml/tree.h>
#include <libxml/uri.h>
#include <libxml/xpath.h>

#include <memory>

namespace scrapekeep::scrape {

struct XmlFree {
  void operator()(xmlChar* p) const { xmlFree(p); }
};
using XmlString = std::unique_ptr<xmlChar, XmlFree>;

struct DocFree {
  void operator()(xmlDoc* p) const { xmlFreeDoc(p); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

struct XPathContextFree {
  void operator()(xmlXPathContext* p) const { xmlXPathFreeContext(p); }
};
using XPathContextPtr = std::unique_ptr<xmlXPathContext, XPathContextFree>;

struct XPathCompFree {
  void operator()(xmlXPathCompExpr* p) const { xmlXPathFreeCompExpr(p); }
};
using XPathCompPtr = std::unique_ptr<xmlXPathCompExpr, XPathCompFree>;

struct XPathObjectFree {
  void operator()(xmlXPathObject* p) const { xmlXPathFreeObject(p); }
};
using XPathObjectPtr = std::unique_ptr<xmlXPathObject, XPathObjectFree>;

struct UriFree {
  void operator()(xmlURI* p) const { xmlFreeURI(p); }
};
using UriPtr = std::unique_ptr<xmlURI, UriFree>;

}  // namespace scrapekeep::scrape
