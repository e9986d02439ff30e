// schema/openapi.yaml describes exactly the routes the server registers, and
// the progress object's fields in API.md's order.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "scrapekeep/http/server.hpp"
#include "scrapekeep/store/store_pool.hpp"
#include "support/fake_clock.hpp"
#include "support/temp_dir.hpp"

namespace {

using Operation = std::pair<std::string, std::string>;  // (METHOD, path template)

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> openapi_lines() {
  return read_lines(std::string(SCRAPEKEEP_SOURCE_DIR) + "/schema/openapi.yaml");
}

size_t indent_of(const std::string& line) {
  const size_t first = line.find_first_not_of(' ');
  return first == std::string::npos ? line.size() : first;
}

bool is_blank_or_comment(const std::string& line) {
  const size_t first = line.find_first_not_of(' ');
  return first == std::string::npos || line[first] == '#';
}

// "  key:" (or "  'key':" / "  \"key\":") at exactly `indent` -> key; empty otherwise.
std::string key_at(const std::string& line, size_t indent) {
  if (is_blank_or_comment(line) || indent_of(line) != indent) {
    return {};
  }
  std::string rest = line.substr(indent);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 != rest.size()) {
    return {};
  }
  std::string key = rest.substr(0, colon);
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front()) {
    key = key.substr(1, key.size() - 2);
  }
  return key;
}

// Every (METHOD, path) under the top-level `paths:` mapping.
std::set<Operation> documented_operations(const std::vector<std::string>& lines) {
  static const std::set<std::string> k_methods = {"get",   "put",     "post", "delete",
                                                  "patch", "options", "head", "trace"};
  std::set<Operation> ops;
  auto it = std::find(lines.begin(), lines.end(), "paths:");
  if (it == lines.end()) {
    return ops;
  }
  std::string path;
  for (++it; it != lines.end(); ++it) {
    if (is_blank_or_comment(*it)) {
      continue;
    }
    if (indent_of(*it) == 0) {
      break;  // the next top-level key
    }
    if (auto key = key_at(*it, 2); !key.empty()) {
      path = key;
    } else if (auto method = key_at(*it, 4); !method.empty() && k_methods.count(method)) {
      std::transform(method.begin(), method.end(), method.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      ops.emplace(method, path);
    }
  }
  return ops;
}

// Property names of components/schemas/<name>, in file order.
std::vector<std::string> schema_properties(const std::vector<std::string>& lines,
                                           const std::string& name) {
  std::vector<std::string> names;
  auto it = std::find(lines.begin(), lines.end(), "    " + name + ":");
  if (it == lines.end()) {
    return names;
  }
  for (++it; it != lines.end(); ++it) {
    if (is_blank_or_comment(*it)) {
      continue;
    }
    if (indent_of(*it) <= 4) {
      return names;  // the next schema
    }
    if (key_at(*it, 6) == "properties") {
      break;
    }
  }
  if (it == lines.end()) {
    return names;
  }
  for (++it; it != lines.end(); ++it) {
    if (is_blank_or_comment(*it)) {
      continue;
    }
    if (indent_of(*it) < 8) {
      break;
    }
    if (auto key = key_at(*it, 8); !key.empty()) {
      names.push_back(key);
    }
  }
  return names;
}

std::set<Operation> registered_operations() {
  scrapekeep::testing::TempDir dir;
  scrapekeep::store::StoreConfig config;
  config.path = dir.file("unused.db");  // the pool opens nothing until a request
  scrapekeep::store::StorePool pool(config);
  scrapekeep::testing::FakeClock clock;
  scrapekeep::http::ApiServer server({}, pool, clock);
  std::set<Operation> ops;
  for (const auto& route : server.router().routes()) {
    ops.emplace(route.method, route.path);
  }
  return ops;
}

} // namespace

TEST_CASE("the YAML reader sees paths and methods", "[http]") {
  const std::vector<std::string> yaml = {
      "openapi: 3.0.3",   "paths:",      "  /a:",          "    get:",
      "      summary: x", "    post:",   "  \"/b/{id}\":", "    parameters:",
      "    delete:",      "components:", "  /not-a-path:", "    get:"};
  CHECK(documented_operations(yaml) ==
        std::set<Operation>{{"GET", "/a"}, {"POST", "/a"}, {"DELETE", "/b/{id}"}});
}

TEST_CASE("every registered route is in openapi.yaml, and nothing else", "[http]") {
  const auto lines = openapi_lines();
  REQUIRE_FALSE(lines.empty());
  const auto documented = documented_operations(lines);
  const auto registered = registered_operations();
  REQUIRE(registered.size() == 9);
  for (const auto& op : registered) {
    INFO(op.first << " " << op.second << " is registered but not in schema/openapi.yaml");
    CHECK(documented.count(op) == 1);
  }
  for (const auto& op : documented) {
    INFO(op.first << " " << op.second << " is in schema/openapi.yaml but not registered");
    CHECK(registered.count(op) == 1);
  }
}

TEST_CASE("openapi.yaml lists the progress fields in API.md's order", "[http]") {
  const auto lines = openapi_lines();
  CHECK(schema_properties(lines, "Progress") ==
        std::vector<std::string>{"job_id", "status", "url", "current_page", "total_pages_scraped",
                                 "total_properties_found", "progress_percentage",
                                 "pagination_complete", "completion_reason", "created_at",
                                 "completed_at", "processing_time", "running_time", "error_message",
                                 "estimated_completion"});
  CHECK(schema_properties(lines, "Error") == std::vector<std::string>{"code", "message", "type",
                                                                      "status", "details",
                                                                      "trace_id", "timestamp"});
}

TEST_CASE("openapi.yaml names every error code of API.md", "[http]") {
  const auto lines = openapi_lines();
  std::set<std::string> codes;
  for (const auto& line : lines) {
    const size_t dash = line.find("- ");
    if (dash != std::string::npos && indent_of(line) == dash) {
      codes.insert(line.substr(dash + 2));
    }
  }
  for (const char* code : {"AUTHENTICATION_REQUIRED", "INVALID_API_KEY", "API_KEY_DEACTIVATED",
                           "INVALID_JSON", "VALIDATION_ERROR", "JOB_NOT_FOUND", "NOT_FOUND",
                           "METHOD_NOT_ALLOWED", "JOB_NOT_CANCELLABLE", "JOB_NOT_DELETABLE",
                           "PAYLOAD_TOO_LARGE", "STORAGE_UNAVAILABLE", "INTERNAL_ERROR"}) {
    INFO(code);
    CHECK(codes.count(code) == 1);
  }
}
