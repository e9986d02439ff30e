// The site's own limit: a plain keep-alive client that does nothing but GET
// the pages a scraping job fetches (no parsing, no storing).
//
//   site_client --base http://127.0.0.1:PORT --job chain|details [--clients N] [--passes P]
//               [--parse]
//
// chain:   /chain?page=1..300, one after the other on one connection.
// details: /listing?page=1..50 and /detail/K-I (1000 pages), shared by N
//          clients (each its own connection), listing pages first.
// Sends the headers scrapekeep's fetcher sends (so the site compresses the
// same way) and drops the body. The page set is fetched P times (default 5,
// each pass starting on fresh connections) so that a run is long enough to
// measure on a noisy machine. With --parse, each body is also decompressed and
// parsed with libxml2's HTML parser (the options and memory pool scrapekeep's
// extractor uses) and the tree freed: the floor of any scraper that must
// parse a page to find the next one, with no XPath and no store. Prints one line (pages of all passes; cpu_us is
// this client's own CPU time, user + system):
//   pages=1050 failed=0 seconds=0.412 pages_per_s=2548.5 cpu_us=81234

#include <httplib.h>
#include <libxml/HTMLparser.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/xml_memory.hpp"

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      return argv[i + 1];
    }
  }
  return fallback;
}

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == name) {
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string base = arg(argc, argv, "--base", "");
  const std::string job = arg(argc, argv, "--job", "chain");
  const int clients = std::max(1, std::atoi(arg(argc, argv, "--clients", "1").c_str()));
  const int passes = std::max(1, std::atoi(arg(argc, argv, "--passes", "5").c_str()));
  const bool parse = flag(argc, argv, "--parse");
  if (parse) {
    scrapekeep::scrape::use_pooled_xml_memory();
    scrapekeep::scrape::init_libxml();
  }
  if (base.empty() || (job != "chain" && job != "details")) {
    std::fprintf(stderr, "usage: site_client --base URL --job chain|details [--clients N]\n");
    return 2;
  }

  std::vector<std::string> targets;
  int threads = 1;
  if (job == "chain") {
    for (int k = 1; k <= 300; ++k) {
      targets.push_back("/chain?page=" + std::to_string(k));
    }
  } else {
    threads = clients;
    for (int k = 1; k <= 50; ++k) {
      targets.push_back("/listing?page=" + std::to_string(k));
    }
    for (int k = 1; k <= 50; ++k) {
      for (int i = 1; i <= 20; ++i) {
        targets.push_back("/detail/" + std::to_string(k) + "-" + std::to_string(i));
      }
    }
  }

  const httplib::Headers headers{{"User-Agent", "site_client/0.1"},
                                 {"Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"},
                                 {"Accept-Encoding", "gzip, deflate"}};
  std::atomic<long> failed{0};
  const auto start = std::chrono::steady_clock::now();
  for (int pass = 0; pass < passes; ++pass) {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> group;
    for (int t = 0; t < threads; ++t) {
      group.emplace_back([&] {
        httplib::Client client(base);
        client.set_keep_alive(true);
        client.set_tcp_nodelay(true);
        client.set_decompress(parse);
        while (true) {
          const std::size_t i = next++;
          if (i >= targets.size()) {
            break;
          }
          const auto res = client.Get(targets[i], headers);
          if (!res || res->status != 200) {
            ++failed;
          } else if (parse) {
            const std::string url = base + targets[i];
            xmlDocPtr doc = htmlReadMemory(
                res->body.data(), static_cast<int>(res->body.size()), url.c_str(), "UTF-8",
                HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
            if (doc == nullptr) {
              ++failed;
            }
            xmlFreeDoc(doc);
          }
        }
      });
    }
    for (auto& t : group) {
      t.join();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t pages = targets.size() * static_cast<std::size_t>(passes);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const long cpu_us = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L +
                      usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
  std::printf("pages=%zu failed=%ld seconds=%.3f pages_per_s=%.1f cpu_us=%ld\n", pages,
              failed.load(), seconds, static_cast<double>(pages) / seconds, cpu_us);
  return failed.load() == 0 ? 0 : 1;
}
