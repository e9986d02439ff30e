#include "scrapekeep/http/router.hpp"

namespace scrapekeep::http {

namespace {

// Calls `segment(text)` for each '/'-separated segment of `path` after its
// leading '/', stopping early when it returns false; returns whether it never did.
template <typename Fn>
bool each_segment(std::string_view path, Fn&& segment) {
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (!segment(path.substr(start, end - start))) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

// Segments of `path` against the template's; params filled on success.
bool match_template(const std::vector<std::string>& want, std::string_view path,
                    std::vector<std::string>& params) {
  params.clear();
  size_t i = 0;
  const bool matched = each_segment(path, [&](std::string_view have) {
    if (i >= want.size()) {
      return false;
    }
    const std::string& w = want[i++];
    if (!w.empty() && w.front() == '{') {
      if (have.empty()) {
        return false;
      }
      params.emplace_back(have);
      return true;
    }
    return w == have;
  });
  return matched && i == want.size();
}

} // namespace

void Router::add(std::string method, std::string path, bool needs_auth, Handler handler,
                 FastHandler fast) {
  std::vector<std::string> segments;
  each_segment(path, [&](std::string_view segment) {
    segments.emplace_back(segment);
    return true;
  });
  m_routes.push_back(Route{std::move(method), std::move(path), needs_auth, std::move(handler),
                           std::move(fast), std::move(segments)});
}

std::variant<Router::Match, ApiError> Router::match(std::string_view method,
                                                    std::string_view path) const {
  if (path.empty() || path.front() != '/') {
    return route_not_found();
  }
  std::vector<std::string> allowed;
  std::vector<std::string> params;
  for (const Route& r : m_routes) {
    if (!match_template(r.segments, path, params)) {
      continue;
    }
    // HEAD is answered as GET by the server library.
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      return Match{&r, std::move(params)};
    }
    allowed.push_back(r.method);
    if (r.method == "GET") {
      allowed.emplace_back("HEAD");
    }
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
