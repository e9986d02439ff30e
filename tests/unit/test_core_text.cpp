// core/text: digit grouping, as inspect prints counts.

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

#include "scrapekeep/core/text.hpp"

using scrapekeep::core::group_digits;

TEST_CASE("group_digits puts a comma between groups of three digits", "[core][text]") {
  CHECK(group_digits(0) == "0");
  CHECK(group_digits(7) == "7");
  CHECK(group_digits(999) == "999");
  CHECK(group_digits(1000) == "1,000");
  CHECK(group_digits(123456) == "123,456");
  CHECK(group_digits(1234567) == "1,234,567");
  CHECK(group_digits(-1) == "-1");
  CHECK(group_digits(-999) == "-999");
  CHECK(group_digits(-1000) == "-1,000");
  CHECK(group_digits(-1234567) == "-1,234,567");
}

TEST_CASE("group_digits writes both ends of int64", "[core][text]") {
  CHECK(group_digits(std::numeric_limits<std::int64_t>::max()) == "9,223,372,036,854,775,807");
  CHECK(group_digits(std::numeric_limits<std::int64_t>::min()) == "-9,223,372,036,854,775,808");
  CHECK(group_digits(std::numeric_limits<std::int64_t>::min() + 1) == "-9,223,372,036,854,775,807");
}
