#include "support/api_server.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <stdexcept>

#include "scrapekeep/scrape/extractor.hpp"

namespace scrapekeep::testing {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

OrgKey make_key(store::JobStore& store, const std::string& org, core::Micros now) {
  auto created = store.create_key(org, now);
  if (!created) {
    throw std::runtime_error("TestServer: cannot create a key: " + created.error().message);
  }
  return OrgKey{org, created->info.org_id, created->info.key_id, created->key};
}

} // namespace

std::optional<std::string> HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) {
      return v;
    }
  }
  return std::nullopt;
}

nlohmann::ordered_json HttpReply::data() const {
  if (json.is_object() && json.contains("data")) {
    return json.at("data");
  }
  return nullptr;
}

nlohmann::ordered_json HttpReply::error() const {
  if (json.is_object() && json.contains("error")) {
    return json.at("error");
  }
  return nullptr;
}

namespace {

HttpReply to_reply(const httplib::Result& result) {
  HttpReply reply;
  if (!result) {
    reply.transport_error = httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  for (const auto& [k, v] : result->headers) {
    reply.headers.emplace_back(k, v);
  }
  reply.json = nlohmann::ordered_json::parse(reply.body, nullptr, false);
  if (reply.json.is_discarded()) {
    reply.json = nullptr;
  }
  return reply;
}

} // namespace

struct ApiClient::Impl {
  Impl(const std::string& host, int port) : client(host, port) {}
  httplib::Client client;
};

ApiClient::ApiClient(const std::string& host, int port, HeaderList default_headers)
    : m_impl(std::make_unique<Impl>(host, port)), m_default_headers(std::move(default_headers)) {
  m_impl->client.set_keep_alive(true);
  // Without it, a POST's body waits for the delayed ACK of its headers (~40 ms).
  m_impl->client.set_tcp_nodelay(true);
  m_impl->client.set_connection_timeout(5, 0);
  m_impl->client.set_read_timeout(5, 0);
  m_impl->client.set_write_timeout(5, 0);
}

ApiClient::~ApiClient() = default;
ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;

HttpReply ApiClient::request(const std::string& method, const std::string& path,
                             const std::string& body, const HeaderList& extra_headers) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  for (const auto& [k, v] : m_default_headers) {
    req.headers.emplace(k, v);
  }
  for (const auto& [k, v] : extra_headers) {
    req.headers.emplace(k, v);
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.body = body;
    if (!req.has_header("Content-Type")) {
      req.headers.emplace("Content-Type", "application/json");
    }
  }
  return to_reply(m_impl->client.send(req));
}

HttpReply ApiClient::post_chunked(const std::string& path, const std::string& body, size_t chunk) {
  httplib::Headers headers;
  for (const auto& [k, v] : m_default_headers) {
    headers.emplace(k, v);
  }
  auto provider = [&body, chunk](size_t offset, httplib::DataSink& sink) {
    if (offset >= body.size()) {
      sink.done();
      return true;
    }
    const size_t n = std::min(chunk, body.size() - offset);
    return sink.write(body.data() + offset, n);
  };
  return to_reply(m_impl->client.Post(path, headers, provider, "application/json"));
}

RawConnection::RawConnection(int port) {
  m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (m_fd < 0) {
    throw std::runtime_error("RawConnection: socket() failed");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(m_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(m_fd);
    m_fd = -1;
    throw std::runtime_error("RawConnection: cannot connect to port " + std::to_string(port));
  }
}

RawConnection::~RawConnection() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_buffer(std::move(other.m_buffer)) {}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConnection::receive(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    return false;
  }
  pollfd pfd{m_fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
  if (ready <= 0) {
    return false;
  }
  char buffer[16384];
  const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
  if (n <= 0) {
    return false;
  }
  m_buffer.append(buffer, static_cast<size_t>(n));
  return true;
}

HttpReply RawConnection::read_reply(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  HttpReply reply;
  size_t head_end = std::string::npos;
  while ((head_end = m_buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!receive(deadline)) {
      reply.transport_error = m_buffer.empty() ? "no response" : "incomplete response head";
      return reply;
    }
  }
  const std::string head = m_buffer.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    reply.transport_error = "bad status line: " + status_line;
    return reply;
  }
  reply.status = std::atoi(status_line.c_str() + 9);
  size_t length = 0;
  while (line_end != std::string::npos && line_end < head.size()) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end == std::string::npos
                                                    ? std::string::npos
                                                    : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    reply.headers.emplace_back(line.substr(0, colon), value);
    if (iequals(line.substr(0, colon), "Content-Length")) {
      length = static_cast<size_t>(std::stoull(value));
    }
  }
  const size_t body_start = head_end + 4;
  while (m_buffer.size() < body_start + length) {
    if (!receive(deadline)) {
      reply.status = 0;
      reply.transport_error = "incomplete response body";
      return reply;
    }
  }
  reply.body = m_buffer.substr(body_start, length);
  m_buffer.erase(0, body_start + length);
  reply.json = nlohmann::ordered_json::parse(reply.body, nullptr, false);
  if (reply.json.is_discarded()) {
    reply.json = nullptr;
  }
  return reply;
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd pfd{m_fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char buffer[4096];
    const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      return true;
    }
  }
}

TestServer::TestServer(const core::Clock& clock, http::ServerConfig config) {
  m_db_path = m_dir.file("scrapekeep.db");
  store::StoreConfig store_config;
  store_config.path = m_db_path;
  auto opened = store::JobStore::open(store_config);
  if (!opened) {
    throw std::runtime_error("TestServer: cannot open the store: " + opened.error().message);
  }
  m_store = std::move(opened.value());
  m_org_a = make_key(*m_store, "org-a", clock.now());
  m_org_b = make_key(*m_store, "org-b", clock.now());

  scrape::init_libxml();
  config.host = "127.0.0.1";
  config.port = 0;
  if (!config.xpath_check) {
    config.xpath_check = scrape::xpath_error;
  }
  m_pool = std::make_unique<store::StorePool>(store_config);
  m_server = std::make_unique<http::ApiServer>(std::move(config), *m_pool, clock);
  auto port = m_server->bind();
  if (!port) {
    throw std::runtime_error("TestServer: cannot bind: " + port.error().message);
  }
  m_port = *port;
  m_thread = std::thread([this] { m_server->serve(); });

  // Polls /healthz until the server answers; the sleep paces the polling only.
  ApiClient probe("127.0.0.1", m_port);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (probe.get("/healthz").status != 200) {
    if (std::chrono::steady_clock::now() > deadline) {
      m_server->stop();
      m_thread.join();
      throw std::runtime_error("TestServer: /healthz never answered");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TestServer::~TestServer() {
  m_server->stop();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

ApiClient TestServer::client(const std::string& key) const {
  HeaderList headers;
  if (!key.empty()) {
    headers.emplace_back("X-API-Key", key);
  }
  return ApiClient("127.0.0.1", m_port, std::move(headers));
}

ApiClient TestServer::client_with(HeaderList headers) const {
  return ApiClient("127.0.0.1", m_port, std::move(headers));
}

} // namespace scrapekeep::testing
