#include "scrapekeep/http/server.hpp"

#include <httplib.h>

#include <iostream>

#include "scrapekeep/core/random.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

constexpr const char* k_json = "application/json";

std::string new_request_id() { return "req_" + core::random_hex(12); }

// Methods the server hands to the route table; the library answers others.
bool is_known_method(const std::string& method) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) {
      return true;
    }
  }
  return false;
}

void write_json(httplib::Response& res, int status, const Json& body,
                const std::string& request_id) {
  res.status = status;
  res.set_header("X-Request-Id", request_id);
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), k_json);
}

void write_error(httplib::Response& res, const ApiError& error, const std::string& request_id,
                 core::Micros now) {
  write_json(res, error.status, error_body(error, request_id, now), request_id);
}

// The caller's API key from X-API-Key or Authorization: Bearer; empty if none.
std::string presented_key(const httplib::Request& req) {
  if (req.has_header("X-API-Key")) {
    return req.get_header_value("X-API-Key");
  }
  const std::string auth = req.get_header_value("Authorization");
  if (auth.size() > 7 && (auth.rfind("Bearer ", 0) == 0 || auth.rfind("bearer ", 0) == 0)) {
    std::string key = auth.substr(7);
    key.erase(0, key.find_first_not_of(' '));
    return key;
  }
  return auth.empty() ? std::string() : std::string(" ");
}

} // namespace

struct ApiServer::Impl {
  httplib::Server server;
};

ApiServer::ApiServer(ServerConfig config, store::StorePool& pool, const core::Clock& clock)
    : m_config(std::move(config)), m_pool(pool), m_clock(clock), m_impl(std::make_unique<Impl>()) {
  add_health_routes(m_router);
  add_job_routes(m_router);
  add_job_data_routes(m_router);

  httplib::Server& svr = m_impl->server;
  const int threads = std::max(1, m_config.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Without TCP_NODELAY, Nagle's algorithm meets delayed ACKs on keep-alive
  // connections and each small response waits ~40 ms.
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(static_cast<size_t>(m_config.keep_alive_max_requests));
  svr.set_keep_alive_timeout(m_config.keep_alive_timeout_s);
  svr.set_read_timeout(m_config.read_timeout_s, 0);
  svr.set_write_timeout(m_config.write_timeout_s, 0);
  svr.set_payload_max_length(m_config.max_body_bytes);

  auto dispatch = [this](const httplib::Request& req, const std::string& body,
                         httplib::Response& res) {
    const std::string request_id = new_request_id();
    const core::Micros now = m_clock.now();
    auto matched = m_router.match(req.method, req.path);
    if (auto* err = std::get_if<ApiError>(&matched)) {
      write_error(res, *err, request_id, now);
      return;
    }
    auto& match = std::get<Router::Match>(matched);
    auto lease = m_pool.acquire();
    if (!lease) {
      write_error(res, from_store_error(lease.error()), request_id, now);
      return;
    }
    RouteContext ctx{req, body, std::move(match.params), **lease, now, 0, m_config};
    if (match.route->needs_auth) {
      const std::string key = presented_key(req);
      if (key.empty()) {
        write_error(res, authentication_required(), request_id, now);
        return;
      }
      if (!core::looks_like_api_key(key)) {
        write_error(res, invalid_api_key(), request_id, now);
        return;
      }
      auto info = (*lease)->find_key(key);
      if (!info) {
        write_error(res,
                    info.error().code == core::ErrorCode::not_found
                        ? invalid_api_key()
                        : from_store_error(info.error()),
                    request_id, now);
        return;
      }
      if (info->revoked_at) {
        write_error(res, api_key_deactivated(), request_id, now);
        return;
      }
      ctx.org_id = info->org_id;
    }
    Outcome out = match.route->handler(ctx);
    if (auto* err = std::get_if<ApiError>(&out)) {
      write_error(res, *err, request_id, now);
      return;
    }
    auto& reply = std::get<Reply>(out);
    Json envelope{{"success", true}, {"data", reply.data}};
    if (reply.mirror_at_top) {
      envelope.update(reply.data);
    }
    write_json(res, reply.status, envelope, request_id);
  };
  auto without_body = [dispatch](const httplib::Request& req, httplib::Response& res) {
    dispatch(req, req.body, res);
  };
  // Bodies are read here, not by the library: its own reader applies the
  // payload limit to Content-Length only, and a chunked body would grow
  // without bound.
  auto with_body = [this, dispatch](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    std::string body;
    bool too_large = false;
    const bool read = reader([&](const char* data, size_t length) {
      if (body.size() + length > m_config.max_body_bytes) {
        too_large = true;
        return false;
      }
      body.append(data, length);
      return true;
    });
    if (too_large || (!read && res.status == 413)) {
      res.set_header("Connection", "close");
      write_error(res, payload_too_large(m_config.max_body_bytes), new_request_id(),
                  m_clock.now());
      return;
    }
    if (!read) {
      res.set_header("Connection", "close");
      write_error(res, {400, "BAD_REQUEST", "the request body could not be read", nullptr},
                  new_request_id(), m_clock.now());
      return;
    }
    dispatch(req, body, res);
  };
  // A POST/PUT/PATCH/DELETE without Content-Length or chunked encoding has no
  // body (RFC 9112 6.3); the library would instead read until the client
  // closes or the read timeout passes. Answered here, before any body read.
  svr.set_pre_routing_handler([dispatch](const httplib::Request& req, httplib::Response& res) {
    const bool may_have_body = req.method == "POST" || req.method == "PUT" ||
                               req.method == "PATCH" || req.method == "DELETE";
    if (!may_have_body || req.has_header("Content-Length") ||
        req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    dispatch(req, std::string(), res);
    return httplib::Server::HandlerResponse::Handled;
  });
  const char* pattern = ".*";
  svr.Get(pattern, without_body);
  svr.Options(pattern, without_body);
  svr.Post(pattern, with_body);
  svr.Put(pattern, with_body);
  svr.Patch(pattern, with_body);
  svr.Delete(pattern, with_body);

  // Errors the library answers itself (413, 400 on a bad request line, ...).
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                     httplib::Response& res) {
    if (!res.body.empty()) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string request_id = new_request_id();
    ApiError error;
    switch (res.status) {
      case 413:
        error = payload_too_large(m_config.max_body_bytes);
        break;
      case 404:
        error = route_not_found();
        break;
      case 405:
        error = method_not_allowed();
        break;
      case 414:
        error = {414, "URI_TOO_LONG", "the request URI is too long", nullptr};
        break;
      case 431:
        error = {431, "HEADERS_TOO_LARGE", "the request headers are too large", nullptr};
        break;
      default:
        if (res.status >= 500) {
          error = internal_error();
        } else if (res.status == 400 && !req.method.empty() && !req.path.empty() &&
                   !is_known_method(req.method)) {
          // A well-formed request with a method the library does not route
          // (TRACE, CONNECT, PROPFIND...): the route table decides 404 or 405.
          auto matched = m_router.match(req.method, req.path);
          error = std::holds_alternative<ApiError>(matched) ? std::get<ApiError>(matched)
                                                            : method_not_allowed();
        } else {
          error = {res.status, "BAD_REQUEST", "the request could not be read", nullptr};
        }
    }
    write_error(res, error, request_id, m_clock.now());
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string cause = "unknown exception";
        try {
          if (ep) {
            std::rethrow_exception(ep);
          }
        } catch (const std::exception& e) {
          cause = e.what();
        } catch (...) {
        }
        const std::string request_id = new_request_id();
        std::cerr << "scrapekeep: internal error on " << req.method << " " << req.path << " ("
                  << request_id << "): " << cause << "\n";
        write_error(res, internal_error(), request_id, m_clock.now());
      });
}

ApiServer::~ApiServer() { stop(); }

core::Result<int> ApiServer::bind() {
  int port = m_config.port;
  if (port == 0) {
    port = m_impl->server.bind_to_any_port(m_config.host);
    if (port < 0) {
      return core::Error{core::ErrorCode::unavailable, "cannot bind " + m_config.host};
    }
  } else if (!m_impl->server.bind_to_port(m_config.host, port)) {
    return core::Error{core::ErrorCode::unavailable,
                       "cannot listen on " + m_config.host + ":" + std::to_string(port) +
                           " (address in use or not allowed)"};
  }
  return port;
}

void ApiServer::serve() { m_impl->server.listen_after_bind(); }

void ApiServer::stop() {
  if (m_impl) {
    m_impl->server.stop();
  }
}

} // namespace scrapekeep::http
