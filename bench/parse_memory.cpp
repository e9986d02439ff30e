// Peak memory of pages of nothing but short tags parsed at once: THREADS
// threads each extract a listing page of 2 million <br> (8 MB) under the
// process's parse budget, as detail threads would.
//
//   parse_memory [THREADS]
//
// Prints the items of each page, then the threads, the page's size, the
// process's peak RSS (VmHWM) and the seconds it took.

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/scrape/extractor.hpp"

namespace {

long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  std::string page = "<html><body>";
  for (int i = 0; i < 2000000; ++i) {
    page += "<br>";
  }
  page += "</body></html>";
  scrapekeep::core::Selectors selectors;
  selectors.item = "//br";
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      const auto result =
          scrapekeep::scrape::extract_listing(page, "http://h.test/", selectors, false);
      std::cout << result.items.size() << " items\n";
    });
  }
  for (std::thread& t : workers) {
    t.join();
  }
  std::cout << "threads " << threads << " page " << page.size() << " bytes VmHWM "
            << peak_rss_kib() / 1024 << " MiB in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
}
