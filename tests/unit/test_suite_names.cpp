#include <catch2/catch.hpp>

#include <string>
#include <vector>

// ctest runs each test case by its name (catch_discover_tests): a ';' in a
// name splits it in two, and a '[' merges every later name into one, so the
// tests run under ctest are no longer the ones written (both happened).
TEST_CASE("no test case name holds a semicolon or an opening bracket, which ctest cannot carry",
          "[suite]") {
  std::vector<std::string> bad;
  for (const Catch::TestCase& test : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) {
    if (test.name.find_first_of(";[") != std::string::npos) {
      bad.push_back(test.name);
    }
  }
  CAPTURE(bad);
  CHECK(bad.empty());
}
