#include "scrapekeep/http/router.hpp"

namespace scrapekeep::http {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Segments of `path` against the template; params filled on success.
bool match_template(std::string_view tmpl, std::string_view path,
                    std::vector<std::string>& params) {
  const auto want = split_path(tmpl);
  const auto have = split_path(path);
  if (want.size() != have.size()) {
    return false;
  }
  params.clear();
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].empty() && want[i].front() == '{') {
      if (have[i].empty()) {
        return false;
      }
      params.emplace_back(have[i]);
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  return true;
}

} // namespace

void Router::add(std::string method, std::string path, bool needs_auth, Handler handler) {
  m_routes.push_back(Route{std::move(method), std::move(path), needs_auth, std::move(handler)});
}

std::variant<Router::Match, ApiError> Router::match(std::string_view method,
                                                    std::string_view path) const {
  if (path.empty() || path.front() != '/') {
    return route_not_found();
  }
  std::vector<std::string> allowed;
  std::vector<std::string> params;
  for (const Route& r : m_routes) {
    if (!match_template(r.path, path, params)) {
      continue;
    }
    // HEAD is answered as GET by the server library.
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      return Match{&r, std::move(params)};
    }
    allowed.push_back(r.method);
  }
  if (!allowed.empty()) {
    // The server turns details.allowed_methods into the Allow header.
    ApiError error = method_not_allowed();
    error.details = Json{{"allowed_methods", allowed}};
    return error;
  }
  return route_not_found();
}

} // namespace scrapekeep::http
