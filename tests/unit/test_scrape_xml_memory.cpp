#include <catch2/catch.hpp>

#include <libxml/xmlmemory.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/scrape/extractor.hpp"

// libxml2's allocator as init_libxml() sets it (scrape/xml_memory.cpp).

namespace {

void fill(void* p, std::size_t n, unsigned char seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    bytes[i] = static_cast<unsigned char>(seed + i);
  }
}

bool holds(const void* p, std::size_t n, unsigned char seed) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != static_cast<unsigned char>(seed + i)) {
      return false;
    }
  }
  return true;
}

} // namespace

TEST_CASE("xml memory: realloc keeps the bytes across block sizes", "[scrape][xml_memory]") {
  scrapekeep::scrape::init_libxml();
  void* p = xmlMalloc(24);
  REQUIRE(p != nullptr);
  fill(p, 24, 7);
  p = xmlRealloc(p, 32);  // same block class
  CHECK(holds(p, 24, 7));
  fill(p, 32, 9);
  p = xmlRealloc(p, 400);  // a larger class
  CHECK(holds(p, 32, 9));
  fill(p, 400, 11);
  p = xmlRealloc(p, 5000);  // beyond the kept sizes
  CHECK(holds(p, 400, 11));
  fill(p, 5000, 13);
  p = xmlRealloc(p, 70000);
  CHECK(holds(p, 5000, 13));
  xmlFree(p);

  char* copy = xmlMemStrdup("Zürich \xe2\x80\x94 3.5 rooms");
  CHECK(std::string(copy) == "Zürich \xe2\x80\x94 3.5 rooms");
  xmlFree(copy);
  xmlFree(nullptr);
}

TEST_CASE("xml memory: reused blocks never overlap live ones", "[scrape][xml_memory]") {
  scrapekeep::scrape::init_libxml();
  std::vector<std::pair<void*, std::size_t>> live;
  unsigned seed = 1;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 5000; ++i) {
      seed = seed * 1103515245u + 12345u;
      const std::size_t n = 1 + (seed >> 16) % 700;
      void* p = xmlMalloc(n);
      REQUIRE(p != nullptr);
      fill(p, n, static_cast<unsigned char>(live.size()));
      live.emplace_back(p, n);
    }
    // Free every other block, then check the rest still hold their bytes.
    std::vector<std::pair<void*, std::size_t>> kept;
    for (std::size_t i = 0; i < live.size(); ++i) {
      if (i % 2 == 0) {
        xmlFree(live[i].first);
      } else {
        kept.push_back(live[i]);
      }
    }
    for (std::size_t i = 0; i < kept.size(); ++i) {
      // Refilled below with their new index as seed.
      fill(kept[i].first, kept[i].second, static_cast<unsigned char>(i));
    }
    live = kept;
  }
  for (std::size_t i = 0; i < live.size(); ++i) {
    CHECK(holds(live[i].first, live[i].second, static_cast<unsigned char>(i)));
    xmlFree(live[i].first);
  }
}

TEST_CASE("xml memory: blocks cross threads, and malloc'd blocks are freed as such",
          "[scrape][xml_memory]") {
  scrapekeep::scrape::init_libxml();
  std::vector<void*> made(1000);
  std::thread maker([&] {
    for (std::size_t i = 0; i < made.size(); ++i) {
      made[i] = xmlMalloc(48);
      fill(made[i], 48, static_cast<unsigned char>(i));
    }
  });
  maker.join();  // the thread, and what it kept, are gone
  bool intact = true;
  for (std::size_t i = 0; i < made.size(); ++i) {
    intact = intact && holds(made[i], 48, static_cast<unsigned char>(i));
    xmlFree(made[i]);
  }
  CHECK(intact);

  // A block from plain malloc (as libxml2 may hold from before the switch).
  void* plain = std::malloc(64);
  REQUIRE(plain != nullptr);
  std::memset(plain, 0, 64);
  plain = xmlRealloc(plain, 128);
  REQUIRE(plain != nullptr);
  xmlFree(plain);
  SUCCEED("freed without a crash");
}
