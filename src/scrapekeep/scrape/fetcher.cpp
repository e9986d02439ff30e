#include "scrapekeep/scrape/fetcher.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <brotli/decode.h>
#include <httplib.h>
#include <libxml/uri.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/scrape/extractor.hpp"

namespace scrapekeep::scrape {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A non-2xx body up to this size is read and dropped so that the keep-alive
// connection survives; a larger one is cut off.
constexpr std::size_t k_max_discarded_body = 64 * 1024;
// More origins than this and the cached connections are dropped.
constexpr std::size_t k_max_cached_clients = 16;
// How often a wait for a host slot looks at the cancel flag.
constexpr milliseconds k_cancel_poll{20};
// The HostLimiter's states are not pruned while they are fewer than this.
constexpr std::size_t k_min_hosts_pruned = 64;
// A request is not sent with less time than this left before its deadline.
constexpr std::chrono::microseconds k_least_request_time{10000};
// A response's status line and headers. The library refuses a header line
// over 8 KiB itself; together they may take 256 KiB (long cookies, CSP and
// Link headers are real), not more: past that the page fails. They must
// arrive within 30 s, and within the fetch's deadline.
constexpr std::size_t k_response_head_bytes = 256 * 1024;
constexpr std::chrono::milliseconds k_response_head_time{30000};

// "text/html; charset=UTF-8" -> ("text/html", "UTF-8").
std::pair<std::string, std::string> parse_content_type(const std::string& header) {
  const auto semi = header.find(';');
  std::string media = core::lower_ascii(core::trim_ascii(header.substr(0, semi)));
  std::string charset;
  // Its parameters as the Fetch standard reads a MIME type's: name=value
  // pairs split at ';', a value in double quotes may hold ';' and
  // backslash escapes; the first charset counts ("x-charset=" is another
  // parameter, and a single quote is part of the value).
  const std::size_t n = header.size();
  std::size_t pos = semi == std::string::npos ? n : semi + 1;
  while (pos < n) {
    while (pos < n && (header[pos] == ' ' || header[pos] == '\t')) {
      ++pos;
    }
    const std::size_t name_end = std::min(header.find_first_of(";=", pos), n);
    const std::string name = core::lower_ascii(header.substr(pos, name_end - pos));
    pos = name_end;
    if (pos >= n || header[pos] == ';') {
      ++pos;
      continue;
    }
    ++pos;  // '='
    std::string value;
    if (pos < n && header[pos] == '"') {
      for (++pos; pos < n && header[pos] != '"'; ++pos) {
        if (header[pos] == '\\' && pos + 1 < n) {
          ++pos;
        }
        value += header[pos];
      }
      pos = std::min(header.find(';', pos), n);
    } else {
      const std::size_t end = std::min(header.find(';', pos), n);
      value = core::trim_ascii(header.substr(pos, end - pos));
      pos = end;
    }
    ++pos;
    if (name == "charset" && charset.empty()) {
      charset = value;
    }
  }
  return {media, charset};
}

// The Content-Type as the Fetch standard extracts a MIME type from all of a
// response's Content-Type headers, as browsers do: their values joined,
// split at commas outside quotes, and the last that is a type/subtype (not
// */*) counts, with the charset of the one before it of the same type when
// it has none. With none such, the first as sent (its error names it).
std::pair<std::string, std::string> content_type_of(const httplib::Response& response) {
  const std::size_t count = response.get_header_value_count("Content-Type");
  std::vector<std::string> values(1);
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) {
      values.emplace_back();
    }
    bool quoted = false;
    bool escaped = false;  // by a backslash in quotes: the next character is as it is
    for (const char c : std::string(response.get_header_value("Content-Type", i))) {
      quoted = c == '"' && !escaped ? !quoted : quoted;
      escaped = quoted && c == '\\' && !escaped;
      if (c == ',' && !quoted) {
        values.emplace_back();
      } else {
        values.back() += c;
      }
    }
  }
  std::pair<std::string, std::string> found;
  for (const std::string& value : values) {
    auto [media, charset] = parse_content_type(value);
    const std::size_t slash = media.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == media.size() ||
        media == "*/*" || media.find_first_of(" \t,/", slash + 1) != std::string::npos) {
      continue;
    }
    if (media != found.first || !charset.empty()) {
      found.second = charset;
    }
    found.first = media;
  }
  return found.first.empty() ? parse_content_type(response.get_header_value("Content-Type"))
                             : found;
}

// The first `name` field (lower case) of a response head as it came, its
// value without the whitespace around it; nullopt when it has none.
std::optional<std::string> raw_field(std::string_view head, std::string_view name) {
  std::size_t line = head.find('\n');
  while (line != std::string_view::npos && line + 1 < head.size()) {
    const std::size_t start = line + 1;
    const std::size_t end = std::min(head.find('\n', start), head.size());
    const std::string_view text = head.substr(start, end - start);
    const std::size_t colon = text.find(':');
    if (colon == name.size() &&
        std::equal(name.begin(), name.end(), text.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      return core::trim_ascii(std::string(text.substr(colon + 1)));
    }
    line = end == head.size() ? std::string_view::npos : end;
  }
  return std::nullopt;
}

// A missing Content-Type is taken as HTML: old servers omit it.
bool is_html(const std::string& media) {
  return media.empty() || media == "text/html" || media == "application/xhtml+xml";
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool is_retryable_status(int status) { return status == 429 || status >= 500; }

// Retry-After in delta-seconds; an HTTP-date is not honoured.
// A year is more than any wait a page may have, and keeps Retry-After's
// milliseconds in range: a longer one is read as this.
constexpr long k_year_s = 365L * 24 * 3600;

std::optional<milliseconds> parse_retry_after(const std::string& value) {
  const std::string text = core::trim_ascii(value);
  long seconds = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (!text.empty() && text.front() != '-' && ec == std::errc::result_out_of_range &&
      ptr == text.data() + text.size()) {
    seconds = k_year_s;  // more seconds than a long holds: many years
  } else if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
             seconds < 0) {
    return std::nullopt;
  }
  return milliseconds(std::min(seconds, k_year_s) * 1000);
}

// A Content-Length: decimal digits, or a list of the same number ("5, 5",
// which RFC 9110 8.6 lets a recipient take as 5); nullopt for anything else.
std::optional<std::size_t> parse_content_length(const std::string& value) {
  std::optional<std::size_t> length;
  for (const std::string& text : core::split_trimmed(value, ',')) {
    std::size_t one = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), one);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
        (length && *length != one)) {
      return std::nullopt;
    }
    length = one;
  }
  return length;
}

std::string transport_error_message(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "connection failed";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "read failed or timed out";
    case httplib::Error::Write:
      return "write failed";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "TLS certificate verification failed";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load TLS certificates";
    case httplib::Error::Compression:
      return "cannot decode the compressed body";
    default:
      return "request failed: " + httplib::to_string(error);
  }
}

bool is_permanent_transport_error(httplib::Error error) {
  return error == httplib::Error::SSLServerVerification ||
         error == httplib::Error::SSLLoadingCerts || error == httplib::Error::Compression ||
         error == httplib::Error::UnsupportedMultipartBoundaryChars;
}

// `host` as text when it is an IP literal (its own address, no lookup: a
// lookup per page would cost more than the page).
std::optional<std::string> ip_literal(const std::string& host) {
  for (const int family : {AF_INET, AF_INET6}) {
    unsigned char addr[sizeof(in6_addr)] = {};
    char buffer[INET6_ADDRSTRLEN] = {};
    if (inet_pton(family, host.c_str(), addr) == 1 &&
        inet_ntop(family, addr, buffer, sizeof buffer) != nullptr) {
      return std::string(buffer);
    }
  }
  return std::nullopt;
}

// Lookups given up on that still run (abandoned_lookups()). Process-wide, as
// the threads are: every fetcher of a process shares the bound.
std::atomic<int>& abandoned_count() {
  static std::atomic<int> count{0};
  return count;
}

template <typename Duration>
Duration clamp_positive(Duration d) {
  return std::max(d, Duration(1));
}

// "10 s", "0.5 s".
std::string seconds_text(milliseconds d) {
  std::string text = std::to_string(d.count() / 1000);
  if (const long part = d.count() % 1000; part != 0) {
    std::string decimals = std::to_string(1000 + part).substr(1);
    decimals.erase(decimals.find_last_not_of('0') + 1);
    text += "." + decimals;
  }
  return text + " s";
}

} // namespace

// Decodes a body sent with a Content-Encoding, and knows whether its stream
// ended: the library's decoders take a stream cut short for a whole one.
// Bytes after the end of the stream (a second gzip member, trailing garbage)
// make the body undecodable, as they made the library's decoders fail.
class BodyDecoder {
 public:
  using Sink = httplib::detail::decompressor::Callback;
  virtual ~BodyDecoder() = default;
  virtual bool valid() const = 0;
  // Makes it ready for another body of its coding; false when it cannot be
  // (then a new one is made).
  bool restart() {
    m_empty = true;
    m_ended = false;
    return valid() && start_over();
  }
  // Decodes `data` into `sink`; false when it is not of the coding, follows
  // the end of the stream, or `sink` refuses (then the caller knows why).
  bool feed(const char* data, std::size_t size, const Sink& sink) {
    if (size == 0) {
      return true;
    }
    m_empty = false;
    if (m_ended) {
      return false;
    }
    const Step step = decode(data, size, sink);
    m_ended = step == Step::ended;
    return step != Step::failed;
  }
  // The stream reached its end: the body is whole. An empty body (no stream
  // at all) is taken as it is.
  bool ended() const { return m_ended || m_empty; }

 protected:
  enum class Step {
    more,    // all of the input taken, the stream goes on
    ended,   // all of the input taken, the stream ended with it
    failed,  // not of the coding, bytes after the end, or the sink refused
  };
  // Decodes `data` (not empty) into `sink`.
  virtual Step decode(const char* data, std::size_t size, const Sink& sink) = 0;
  // Forgets the body before (see restart()).
  virtual bool start_over() = 0;

 private:
  bool m_empty = true;
  bool m_ended = false;
};

namespace {

#ifdef CPPHTTPLIB_ZLIB_SUPPORT
// gzip, and zlib-wrapped deflate, told apart by their header as the library
// does (window bits 15 + 32); for a deflate body also raw deflate (RFC 1951),
// told by its first two bytes, which are no zlib or gzip header.
class Inflater final : public BodyDecoder {
 public:
  // `deflate`: the body may also be a raw RFC 1951 stream without the zlib
  // wrapper RFC 9110 asks for, as older servers send it and browsers read it.
  explicit Inflater(bool deflate) : m_deflate(deflate) {
    m_valid = inflateInit2(&m_strm, k_auto_header) == Z_OK;
  }
  ~Inflater() override {
    if (m_valid) {
      inflateEnd(&m_strm);
    }
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  bool valid() const override { return m_valid; }

 private:
  // The state and window are kept: making them anew for every page cost
  // more than inflating a small page.
  bool start_over() override {
    m_started = false;
    m_held.reset();
    return inflateReset2(&m_strm, k_auto_header) == Z_OK;
  }

  // A zlib stream starts with a header whose first byte names deflate (its
  // low nibble 8) and whose two bytes are a multiple of 31 (RFC 1950 2.2).
  static bool zlib_header(const char* data) {
    const auto cmf = static_cast<unsigned char>(data[0]);
    const auto flg = static_cast<unsigned char>(data[1]);
    return (cmf & 0x0F) == 8 && ((cmf << 8) | flg) % 31 == 0;
  }

  // Whether a deflate body starting with `first` and `second` is raw deflate:
  // neither a zlib header nor gzip (sent as deflate). The wrapper is then
  // set to none.
  bool choose_wrapper(char first, char second) {
    m_started = true;
    const char head[2] = {first, second};
    const bool gzip = first == '\x1f' && second == '\x8b';
    return gzip || zlib_header(head) || inflateReset2(&m_strm, -15) == Z_OK;
  }

  Step decode(const char* data, std::size_t size, const Sink& sink) override {
    if (!m_started && m_deflate) {
      // The wrapper is told by the body's first two bytes, which may come
      // apart (a first chunk of one byte): the first is held till then.
      if (!m_held) {
        if (size < 2) {
          m_held = data[0];
          return Step::more;
        }
        if (!choose_wrapper(data[0], data[1])) {
          return Step::failed;
        }
      } else {
        const char first = *m_held;
        m_held.reset();
        if (!choose_wrapper(first, data[0])) {
          return Step::failed;
        }
        const Step step = inflate_input(&first, 1, sink);
        if (step != Step::more) {
          return Step::failed;  // bytes after the end of the stream, or not deflate
        }
      }
    }
    return inflate_input(data, size, sink);
  }

  // Inflates `data` (not empty) into `sink`.
  Step inflate_input(const char* data, std::size_t size, const Sink& sink) {
    bool ended = false;
    while (size > 0) {
      if (ended) {
        return Step::failed;  // data after the end of the stream
      }
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(size, UINT32_MAX));
      m_strm.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
      m_strm.avail_in = chunk;
      // Until the input is taken and the output no longer fills the buffer:
      // a few bytes of a very compressible body may give many buffers.
      do {
        m_strm.next_out = reinterpret_cast<Bytef*>(m_buffer.data());
        m_strm.avail_out = static_cast<uInt>(m_buffer.size());
        const int ret = inflate(&m_strm, Z_NO_FLUSH);
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
          return Step::failed;  // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR
        }
        const std::size_t produced = m_buffer.size() - m_strm.avail_out;
        if (produced > 0 && !sink(m_buffer.data(), produced)) {
          return Step::failed;
        }
        if (ret == Z_STREAM_END) {
          ended = true;
          break;
        }
        if (ret == Z_BUF_ERROR && produced == 0) {
          if (m_strm.avail_in > 0) {
            return Step::failed;  // no progress with input and room: not expected
          }
          break;  // wants more input
        }
      } while (m_strm.avail_in > 0 || m_strm.avail_out == 0);
      const std::size_t taken = chunk - m_strm.avail_in;
      data += taken;
      size -= taken;
    }
    return ended ? Step::ended : Step::more;
  }

  static constexpr int k_auto_header = 15 + 32;  // zlib or gzip, as the header says
  z_stream m_strm{};
  bool m_valid = false;
  bool m_deflate = false;
  bool m_started = false;  // the body's first bytes seen (and the wrapper chosen)
  std::optional<char> m_held;  // a deflate body's first byte, when it came alone
  std::array<char, 16384> m_buffer{};
};
#endif

// brotli, by libbrotlidec itself: the library's decoder cannot tell whether
// its stream ended, and a br body cut short was stored whole. Never asked
// for (see Accept-Encoding), but decoded when sent.
class BrotliDecoder final : public BodyDecoder {
 public:
  BrotliDecoder() : m_state(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override {
    if (m_state != nullptr) {
      BrotliDecoderDestroyInstance(m_state);
    }
  }
  BrotliDecoder(const BrotliDecoder&) = delete;
  BrotliDecoder& operator=(const BrotliDecoder&) = delete;

  bool valid() const override { return m_state != nullptr; }

 private:
  // Not kept: its ring buffer may be as large as the body's window (16 MiB).
  bool start_over() override { return false; }

  Step decode(const char* data, std::size_t size, const Sink& sink) override {
    const auto* next_in = reinterpret_cast<const std::uint8_t*>(data);
    std::size_t avail_in = size;
    while (true) {
      auto* next_out = reinterpret_cast<std::uint8_t*>(m_buffer.data());
      std::size_t avail_out = m_buffer.size();
      const BrotliDecoderResult result = BrotliDecoderDecompressStream(
          m_state, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      if (result == BROTLI_DECODER_RESULT_ERROR) {
        return Step::failed;
      }
      const std::size_t produced = m_buffer.size() - avail_out;
      if (produced > 0 && !sink(m_buffer.data(), produced)) {
        return Step::failed;
      }
      if (result == BROTLI_DECODER_RESULT_SUCCESS) {
        // The stream ended; input left is data after its end.
        return avail_in == 0 ? Step::ended : Step::failed;
      }
      if (result == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
        return Step::more;  // all of the input was taken
      }
      // BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: another buffer.
    }
  }

  BrotliDecoderState* m_state;
  std::array<char, 16384> m_buffer{};
};

// A Content-Encoding as it is compared: trimmed, lowercase, x-gzip as gzip,
// identity as none.
std::string normalized_coding(const std::string& header) {
  std::string coding = core::lower_ascii(core::trim_ascii(header));
  if (coding == "x-gzip") {
    return "gzip";
  }
  return coding == "identity" ? std::string() : coding;
}

// The decoder of a (normalized) coding; null for one this build cannot
// decode (the page then fails).
std::unique_ptr<BodyDecoder> decoder_for(const std::string& coding) {
#ifdef CPPHTTPLIB_ZLIB_SUPPORT
  if (coding == "gzip" || coding == "deflate") {
    return std::make_unique<Inflater>(coding == "deflate");
  }
#endif
  if (coding == "br") {
    return std::make_unique<BrotliDecoder>();
  }
  return nullptr;
}

} // namespace

std::vector<std::string> system_resolve(const std::string& host) {
  std::vector<std::string> ips;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0) {
    return ips;
  }
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    char buffer[INET6_ADDRSTRLEN] = {};
    const void* addr = nullptr;
    if (ai->ai_family == AF_INET) {
      addr = &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    } else if (ai->ai_family == AF_INET6) {
      addr = &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (inet_ntop(ai->ai_family, addr, buffer, sizeof buffer) != nullptr) {
      std::string ip = buffer;
      if (std::find(ips.begin(), ips.end(), ip) == ips.end()) {
        ips.push_back(std::move(ip));
      }
    }
  }
  freeaddrinfo(list);
  return ips;
}

int abandoned_lookups() {
  return abandoned_count().load();
}

// ---------------------------------------------------------------- HostLimiter

HostLimiter::HostLimiter(HostLimiterConfig config) : m_config(config) {
  m_config.max_per_host = std::max(1, m_config.max_per_host);
}

HostLimiter::Permit::Permit(HostLimiter* owner, std::string host)
    : m_owner(owner), m_host(std::move(host)) {}

HostLimiter::Permit::Permit(Permit&& other) noexcept
    : m_owner(std::exchange(other.m_owner, nullptr)), m_host(std::move(other.m_host)) {}

HostLimiter::Permit& HostLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (m_owner != nullptr) {
      m_owner->release(m_host);
    }
    m_owner = std::exchange(other.m_owner, nullptr);
    m_host = std::move(other.m_host);
  }
  return *this;
}

HostLimiter::Permit::~Permit() {
  if (m_owner != nullptr) {
    m_owner->release(m_host);
  }
}

std::optional<HostLimiter::Permit> HostLimiter::acquire(const std::string& host,
                                                        SteadyTime deadline,
                                                        const std::atomic<bool>* cancelled) {
  std::unique_lock lock(m_mutex);
  while (true) {
    if (cancelled != nullptr && cancelled->load()) {
      return std::nullopt;
    }
    const SteadyTime now = steady_clock::now();
    if (m_hosts.size() >= m_prune_at) {
      prune(now);
    }
    HostState& state = m_hosts[host];
    if (state.active < m_config.max_per_host && now >= state.next_start) {
      ++state.active;
      state.next_start = now + m_config.delay;
      return Permit(this, host);
    }
    if (now >= deadline) {
      return std::nullopt;
    }
    SteadyTime wake = std::min(deadline, now + k_cancel_poll);
    if (state.active < m_config.max_per_host) {
      wake = std::min(wake, state.next_start);
    }
    m_cv.wait_until(lock, wake);
  }
}

int HostLimiter::active(const std::string& host) const {
  std::lock_guard lock(m_mutex);
  const auto it = m_hosts.find(host);
  return it == m_hosts.end() ? 0 : it->second.active;
}

std::size_t HostLimiter::hosts_held() const {
  std::lock_guard lock(m_mutex);
  return m_hosts.size();
}

void HostLimiter::prune(SteadyTime now) {
  for (auto it = m_hosts.begin(); it != m_hosts.end();) {
    if (it->second.idle(now)) {
      it = m_hosts.erase(it);
    } else {
      ++it;
    }
  }
  // Once the map has doubled again: each prune's cost is paid by the
  // insertions before it.
  m_prune_at = std::max(k_min_hosts_pruned, 2 * m_hosts.size());
}

void HostLimiter::release(const std::string& host) {
  {
    std::lock_guard lock(m_mutex);
    const auto it = m_hosts.find(host);
    if (it != m_hosts.end()) {
      --it->second.active;
      if (it->second.idle(steady_clock::now())) {
        m_hosts.erase(it);
      }
    }
  }
  m_cv.notify_all();
}

// ---------------------------------------------------------------- HttpFetcher

struct HttpFetcher::Target {
  std::string url;     // fragment removed
  std::string host;    // as written in the URL (IPv6 in brackets)
  std::string origin;  // scheme://host:port, also the politeness key
  std::string path;    // path and query, never empty
};

struct HttpFetcher::Attempt {
  bool interrupted = false;
  bool retryable = false;  // connection errors, 429, 5xx
  std::optional<int> status;
  std::string error;  // set when there is no usable response
  std::string location;
  std::string media_type;
  std::string charset;
  std::string retry_after;
  std::string body;
  core::ByteBudget::Lease body_room;       // of process_body_budget(), for body
  std::chrono::microseconds host_wait{0};  // for the HostLimiter's permit
};

// One host lookup, shared by the fetch that waits for it and the thread that
// runs it, which may outlive the fetcher.
struct HttpFetcher::Lookup {
  std::mutex mutex;
  std::condition_variable cv;  // done, or the fetcher cancelled
  bool done = false;
  bool abandoned = false;  // not waited for any more: in abandoned_count()
  std::vector<std::string> ips;
};

namespace {

// A URL's host without the brackets of an IPv6 literal.
std::string bare_host(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

// A kept-alive connection between two requests.
class IdleConnection {
 public:
  // Closes the connection if the server is done with it (see BoundedClient).
  virtual void close_if_server_done() = 0;
  // Connections opened so far (tries included): a request that opened none
  // went on a kept-alive one.
  virtual std::uint64_t connections_opened() const = 0;

 protected:
  ~IdleConnection() = default;
};

// cpp-httplib's client (plain or TLS) over net::SocketStream: a response's
// head is read whole and bounded before the library parses it (a site
// sending endless headers took a worker past 1.8 GB), and `head_failure`
// tells why a head was refused.
// A new TLS connection is guarded until its handshake ends (see
// SocketGuard), and its certificate must name the host as RFC 6125 says:
// the library also takes a wildcard anywhere ("www.*.test", "*"), and the
// subject's CN beside names that do not match.
template <typename Base, typename Limits>
class BoundedClient final : public Base, public IdleConnection {
 public:
  BoundedClient(const std::string& host, int port, Limits& limits)
      : Base(host, port), m_host(host), m_limits(limits) {}

  // Between two requests a server sends nothing on a kept-alive connection,
  // unless it is done with it: a FIN, or for TLS a close_notify alert before
  // it (nginx at its keepalive_timeout, seen with strace). The
  // library's own check before reusing a connection peeks at one byte and
  // takes any byte for a live connection, so a TLS connection closed while
  // idle got the next request, which failed as a try ("the connection closed
  // before any response"), then waited its backoff and its host's turn.
  // Anything to read now (a close_notify, a FIN, bytes sent unasked) closes
  // the connection: the request goes on a new one.
  void close_if_server_done() override {
    {
      std::lock_guard lock(this->socket_mutex_);
      if (!this->socket_.is_open()) {
        return;
      }
      pollfd idle{this->socket_.sock, POLLIN, 0};
      if (::poll(&idle, 1, 0) <= 0) {
        return;  // nothing came: still usable (or poll failed: the library checks)
      }
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      if (this->socket_.ssl != nullptr) {
        // No close_notify of ours to a server that closed: nothing is written.
        SSL_set_quiet_shutdown(this->socket_.ssl, 1);
      }
#endif
    }
    this->stop();  // takes the socket lock itself; no request is in flight
  }

  std::uint64_t connections_opened() const override { return m_opened; }

 private:
  static constexpr bool k_tls = !std::is_same_v<Base, httplib::ClientImpl>;

  bool create_and_connect_socket(typename Base::Socket& socket, httplib::Error& error) override {
    ++m_opened;
    if (!this->is_valid() || !httplib::ClientImpl::create_and_connect_socket(socket, error)) {
      return false;
    }
    if constexpr (k_tls) {
      m_limits.handshake.arm(socket.sock, m_limits.handshake_deadline);
      m_limits.check_host = m_limits.verify_tls;
      // cancel() sets the flag before it takes the guard's lock: either it
      // shut this socket down, or the flag is seen here. (It waits for the
      // library's socket lock, held from the connect to the handshake's end.)
      // Closed here, under that lock, before a ClientHello is written to it.
      if (m_limits.cancelled != nullptr && m_limits.cancelled->load()) {
        m_limits.handshake.disarm();
        this->shutdown_socket(socket);
        this->close_socket(socket);
        error = httplib::Error::Canceled;
        return false;
      }
    }
    return true;
  }

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  // Whether the certificate's subjectAltName holds a DNS name or an IP address.
  static bool names_any_host(X509* cert) {
    auto* names = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (names == nullptr) {
      return false;
    }
    bool any = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !any; ++i) {
      const int type = sk_GENERAL_NAME_value(names, i)->type;
      any = type == GEN_DNS || type == GEN_IPADD;
    }
    GENERAL_NAMES_free(names);
    return any;
  }
#endif

  // Whether a new TLS connection's certificate names the host.
  bool names_host(const typename Base::Socket& socket) {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if constexpr (k_tls) {
      m_limits.handshake.disarm();
      if (!m_limits.check_host || socket.ssl == nullptr) {
        return true;
      }
      m_limits.check_host = false;
      X509* cert = SSL_get1_peer_certificate(socket.ssl);
      if (cert == nullptr) {
        return false;
      }
      // A fully qualified name ("shop.test.") is the same host: OpenSSL
      // compares it with its root's dot (the library's own check takes it).
      std::size_t length = m_host.size();
      if (length > 1 && m_host[length - 1] == '.') {
        --length;
      }
      // The subject's CN only when the certificate names no host and no
      // address (RFC 6125 6.4.4): OpenSSL alone reads it beside IP names.
      unsigned int flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
      if (names_any_host(cert)) {
        flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
      }
      const bool named =
          ip_literal(m_host) ? X509_check_ip_asc(cert, m_host.c_str(), 0) == 1
                             : X509_check_host(cert, m_host.data(), length, flags, nullptr) == 1;
      X509_free(cert);
      return named;
    }
#endif
    (void)socket;
    return true;
  }

  bool process_socket(const typename Base::Socket& socket,
                      std::function<bool(httplib::Stream& strm)> callback) override {
    if (!names_host(socket)) {
      m_limits.host_mismatch = true;
      return false;
    }
    net::SocketStream strm(socket.sock, socket.ssl,
                           net::timeout_ms(this->read_timeout_sec_, this->read_timeout_usec_),
                           net::timeout_ms(this->write_timeout_sec_, this->write_timeout_usec_));
    strm.read_head_on_next_read(m_limits.head);
    const socket_t sock = socket.sock;
    m_limits.stream = &strm;
    const bool ok = callback(strm) && strm.flush();
    m_limits.stream = nullptr;
    m_limits.timed_out = strm.timed_out();
    m_limits.received = strm.bytes_received();
    m_limits.head_cut = strm.http_head_cut_short();
    if (socket.sock != sock) {
      // Closed by the library (Connection: close, HTTP/1.0): the number may
      // be another thread's socket by now.
      strm.forget_socket();
    }
    m_limits.head_failure = strm.head_failure();
    m_limits.line_too_long = strm.line_too_long();
    m_limits.bad_chunked = strm.bad_chunked_body();
    return ok;
  }

  std::string m_host;  // bare, lower case
  Limits& m_limits;
  std::uint64_t m_opened = 0;  // create_and_connect_socket() calls
};

std::optional<std::string> parse_target(const std::string& url, std::string& host,
                                        std::string& origin, std::string& path) {
  struct UriFree {
    void operator()(xmlURI* p) const { xmlFreeURI(p); }
  };
  init_libxml();
  const std::optional<std::string> ascii = with_ascii_host(strip_fragment(escape_uri_chars(url)));
  if (!ascii) {
    return std::nullopt;
  }
  const std::string& clean = *ascii;
  const UriShield shield(clean);
  std::unique_ptr<xmlURI, UriFree> uri(xmlParseURIRaw(shield.hide(clean).c_str(), 1));
  if (!uri || uri->scheme == nullptr || uri->server == nullptr || uri->server[0] == '\0' ||
      uri->port > 65535) {
    return std::nullopt;
  }
  const std::string scheme = core::lower_ascii(uri->scheme);
  if (scheme != "http" && scheme != "https") {
    return std::nullopt;
  }
  // Names differ only in case for one host: written in lower case, as
  // browsers send it (cpp-httplib matches a certificate's names with case).
  host = core::lower_ascii(uri->server);
  const int port = uri->port > 0 ? uri->port : (scheme == "https" ? 443 : 80);
  origin = scheme + "://" + host + ":" + std::to_string(port);  // the per-host limits' key
  path = uri->path != nullptr && uri->path[0] != '\0' ? uri->path : "/";
  if (uri->query_raw != nullptr) {
    path += "?";
    path += uri->query_raw;
  }
  path = shield.show(std::move(path));
  return clean;
}

} // namespace

core::ByteBudget& process_body_budget() {
  static core::ByteBudget budget(256 * 1024 * 1024);
  return budget;
}

HttpFetcher::HttpFetcher(FetchConfig config, std::shared_ptr<HostLimiter> limiter)
    : m_config(std::move(config)), m_limiter(std::move(limiter)) {
  m_config.max_tries = std::max(1, m_config.max_tries);
  m_config.max_redirects = std::max(0, m_config.max_redirects);
  m_response.verify_tls = m_config.verify_tls;
  m_response.cancelled = &m_cancelled;
}

HttpFetcher::~HttpFetcher() = default;

void HttpFetcher::cancel() {
  std::lock_guard lock(m_mutex);
  m_cancelled = true;
  // A TLS handshake holds the library's socket lock, which stop() takes:
  // it is ended first.
  m_response.handshake.shut_now();
  if (m_active != nullptr) {
    m_active->stop();  // shuts the socket down: the blocked read returns
  }
  if (m_lookup) {
    std::lock_guard lookup_lock(m_lookup->mutex);  // the wait has seen m_cancelled, or will
    m_lookup->cv.notify_all();
  }
  m_cancel_cv.notify_all();
  process_body_budget().wake();  // a response waiting for room for its body
}

std::optional<std::vector<std::string>> HttpFetcher::resolve(const std::string& host,
                                                             SteadyTime deadline,
                                                             Attempt& attempt) {
  if (auto ip = ip_literal(host)) {
    return std::vector<std::string>{std::move(*ip)};
  }
  if (abandoned_count() >= k_max_abandoned_lookups) {
    attempt.error = "cannot resolve host " + host + ": the resolver has not answered " +
                    std::to_string(k_max_abandoned_lookups) + " earlier lookups";
    attempt.retryable = true;  // they may end meanwhile
    return std::nullopt;
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    std::thread([lookup, resolver = m_config.resolver, host] {
      core::name_this_thread("sk-lookup");
      std::vector<std::string> ips;
      try {
        ips = resolver(host);
      } catch (...) {
        ips.clear();  // a resolver that throws found no address
      }
      std::lock_guard lock(lookup->mutex);
      lookup->ips = std::move(ips);
      lookup->done = true;
      if (lookup->abandoned) {
        --abandoned_count();
      }
      lookup->cv.notify_all();
    }).detach();
  } catch (const std::system_error&) {
    attempt.error = "cannot resolve host " + host + ": no thread for the lookup";
    attempt.retryable = true;
    return std::nullopt;
  }
  {
    std::lock_guard lock(m_mutex);
    m_lookup = lookup;
  }
  std::optional<std::vector<std::string>> ips;
  {
    std::unique_lock lock(lookup->mutex);
    lookup->cv.wait_until(lock, deadline, [&] { return lookup->done || m_cancelled; });
    if (!lookup->done) {
      lookup->abandoned = true;
      ++abandoned_count();
    } else if (!m_cancelled) {
      ips = std::move(lookup->ips);
    }
  }
  {
    std::lock_guard lock(m_mutex);
    m_lookup.reset();
  }
  if (!ips) {
    attempt.interrupted = true;
  }
  return ips;
}

bool HttpFetcher::wait_until(SteadyTime until) {
  std::unique_lock lock(m_mutex);
  return !m_cancel_cv.wait_until(lock, until, [this] { return m_cancelled.load(); });
}

httplib::ClientImpl& HttpFetcher::client_for(const Target& target) {
  auto it = m_clients.find(target.origin);
  if (it != m_clients.end()) {
    return *it->second;
  }
  if (m_clients.size() >= k_max_cached_clients) {
    m_clients.clear();
  }
  // origin is scheme://host:port; the library wants an IPv6 host bare.
  const std::size_t colon = target.origin.rfind(':');
  const int port = std::atoi(target.origin.c_str() + colon + 1);
  const std::string host = bare_host(target.host);
  std::unique_ptr<httplib::ClientImpl> client;
  if (target.origin.rfind("https://", 0) == 0) {
    client = std::make_unique<BoundedClient<httplib::SSLClient, ResponseLimits>>(host, port,
                                                                                 m_response);
  } else {
    client = std::make_unique<BoundedClient<httplib::ClientImpl, ResponseLimits>>(host, port,
                                                                                  m_response);
  }
  client->set_keep_alive(true);
  client->set_follow_location(false);
  client->set_url_encode(false);
  // Bodies are decoded in request_once(), which can then tell a body that
  // cannot be decoded from one cut short: the library reports both as a
  // failed read (Error::Read).
  client->set_decompress(false);
  client->set_tcp_nodelay(true);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  // Certificates are verified by OpenSSL in the handshake, against the
  // system's store (or SSL_CERT_FILE / SSL_CERT_DIR), and their names by
  // BoundedClient after it, not by the library: its name check takes a
  // wildcard anywhere, compares with case, and reads past an IPv4 address's
  // 4 bytes for an IPv6 host.
  client->enable_server_certificate_verification(false);
  auto* tls = dynamic_cast<httplib::SSLClient*>(client.get());
  if (tls != nullptr && m_config.verify_tls) {
    SSL_CTX* ctx = tls->ssl_context();
    SSL_CTX_set_default_verify_paths(ctx);
    // Names are checked once, after the handshake: a TLS 1.2 server's
    // renegotiation could bring another certificate. A scraper needs none.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_app_data(ctx, &m_response);
    // The first error of a chain, kept for the page's error.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int ok, X509_STORE_CTX* store) {
      if (ok == 0) {
        const auto* ssl = static_cast<const SSL*>(
            X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
        auto* limits =
            ssl != nullptr ? static_cast<ResponseLimits*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)))
                           : nullptr;
        if (limits != nullptr && limits->verify_error == 0) {
          limits->verify_error = X509_STORE_CTX_get_error(store);
        }
      }
      return ok;
    });
  }
  if (tls != nullptr && ip_literal(host)) {
    // The library names the host in every handshake (SNI), an address too;
    // RFC 6066 3 allows names only, and strict servers refuse the rest.
    // Cleared as the handshake starts, before the ClientHello is written.
    SSL_CTX_set_info_callback(tls->ssl_context(), [](const SSL* ssl, int where, int) {
      if ((where & SSL_CB_HANDSHAKE_START) != 0) {
        SSL_set_tlsext_host_name(const_cast<SSL*>(ssl), nullptr);
      }
    });
  }
#endif
  return *m_clients.emplace(target.origin, std::move(client)).first->second;
}

BodyDecoder* HttpFetcher::decoder_of(const std::string& coding) {
  if (!m_decoder || coding != m_decoder_coding || !m_decoder->restart()) {
    m_decoder = decoder_for(coding);
    m_decoder_coding = coding;
  }
  return m_decoder.get();
}

HttpFetcher::Attempt HttpFetcher::request_once(const Target& target, SteadyTime deadline) {
  Attempt attempt;
  std::optional<HostLimiter::Permit> permit;
  if (m_limiter) {
    const SteadyTime asked = steady_clock::now();
    permit = m_limiter->acquire(target.origin, deadline, &m_cancelled);
    if (!permit) {
      attempt.interrupted = true;
      return attempt;
    }
    attempt.host_wait =
        std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - asked);
  }
  // A request with almost no time left could not be answered in it, yet the
  // site would still serve it: not sent. (Sent, it would time out at once and
  // the next one go out, a burst of requests in the deadline's last moments.)
  const auto time_left = [&] {
    return std::chrono::duration_cast<std::chrono::microseconds>(deadline - steady_clock::now());
  };
  if (m_cancelled || time_left() < k_least_request_time) {
    attempt.interrupted = true;
    return attempt;
  }
  httplib::ClientImpl& client = client_for(target);
  // Every client client_for() makes is a BoundedClient.
  IdleConnection& idle = dynamic_cast<IdleConnection&>(client);
  idle.close_if_server_done();  // before the lookup below, which a new connection needs
  // The library looks a host up itself when it opens a connection, with no
  // deadline: it is given the address instead. With an address filter,
  // every request checks the host's addresses afresh.
  const std::string bare = bare_host(target.host);
  std::vector<std::string> addresses;  // to connect to, in order
  if (m_config.address_filter || client.is_socket_open() == 0) {
    auto ips = resolve(bare, deadline, attempt);
    if (!ips) {
      return attempt;
    }
    if (ips->empty()) {
      attempt.error = "cannot resolve host " + bare;
      attempt.retryable = true;
      return attempt;
    }
    for (std::string& ip : *ips) {
      if (!m_config.address_filter || m_config.address_filter(ip)) {
        addresses.push_back(std::move(ip));
      }
    }
    if (addresses.empty()) {
      attempt.error = "address not allowed: " + ips->front();
      return attempt;
    }
    // Connect to an address that was checked, not to a fresh lookup. The
    // library takes it as a numeric host; TLS still sends the host name
    // (SNI) and verifies the certificate against it.
    client.set_hostname_addr_map({{bare, addresses.front()}});
  }
  const auto remaining = time_left();  // after the lookup
  if (m_cancelled || remaining < k_least_request_time) {
    attempt.interrupted = true;
    return attempt;
  }
  if (m_gate && !m_gate()) {
    cancel();
    attempt.interrupted = true;
    return attempt;
  }
  // With several addresses each has its share of the connect timeout, at
  // least a second (or all of it, if less): one that drops packets (an IPv6
  // address without a route) leaves the others their turn.
  const auto connect_timeout = [&] {
    std::chrono::microseconds share = m_config.connect_timeout;
    if (addresses.size() > 1) {
      share = std::max<std::chrono::microseconds>(
          share / static_cast<long>(addresses.size()),
          std::min<std::chrono::microseconds>(share, std::chrono::seconds(1)));
    }
    return clamp_positive(std::min<std::chrono::microseconds>(share, time_left()));
  };
  client.set_connection_timeout(connect_timeout());
  client.set_read_timeout(
      clamp_positive(std::min<std::chrono::microseconds>(m_config.read_timeout, remaining)));
  client.set_write_timeout(
      clamp_positive(std::min<std::chrono::microseconds>(m_config.read_timeout, remaining)));

  httplib::Headers headers{{"User-Agent", m_config.user_agent},
                           {"Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}};
#ifdef CPPHTTPLIB_ZLIB_SUPPORT
  headers.emplace("Accept-Encoding", m_config.decompress ? "gzip, deflate" : "identity");
#else
  headers.emplace("Accept-Encoding", "identity");
#endif

  enum class Abort {
    none,
    status_known,
    not_html,
    too_large,
    interrupted,
    bad_framing,
    bad_length,
    bad_encoding,
    unsupported_encoding,
    unsupported_transfer,
  };
  Abort abort = Abort::none;
  bool success_status = false;
  std::string encoding;  // Content-Encoding of a body being decoded (normalized)
  std::string unsupported;  // a Content- or Transfer-Encoding not read, as sent
  std::string bad_length;   // a Content-Length that is not one, as sent
  BodyDecoder* decoder = nullptr;  // m_decoder, for this response
  std::size_t expected_bytes = SIZE_MAX;  // Content-Length of a body not chunked
  std::size_t received_bytes = 0;         // of the body, as sent

  auto on_response = [&](const httplib::Response& response) {
    attempt.status = response.status;
    if (net::has_conflicting_lengths(response)) {
      abort = Abort::bad_framing;
      return false;
    }
    // As the library decides that a body is chunked (its first
    // Transfer-Encoding); the stream then reads the framing for it.
    if (net::is_chunked(response) &&
        m_response.stream != nullptr) {
      m_response.stream->body_is_chunked(deadline);
    }
    // As sent: the library decodes it ("?next=%2Fa%26b" became "?next=/a&b").
    attempt.location = m_response.stream != nullptr
                           ? raw_field(m_response.stream->last_head(), "location")
                                 .value_or(response.get_header_value("Location"))
                           : response.get_header_value("Location");
    attempt.retry_after = response.get_header_value("Retry-After");
    std::tie(attempt.media_type, attempt.charset) =
        content_type_of(response);
    // SIZE_MAX when the length is unknown (chunked or missing).
    std::size_t length = SIZE_MAX;
    success_status = response.status >= 200 && response.status < 300;
    // A transfer coding but "chunked" alone ("gzip, chunked"): the library
    // would take its framing and its coded bytes for the page. Another status
    // is read by its status alone, and the connection closed.
    if (response.has_header("Transfer-Encoding") &&
        (!net::is_chunked(response) || response.get_header_value_count("Transfer-Encoding") > 1)) {
      for (std::size_t i = 0; i < response.get_header_value_count("Transfer-Encoding"); ++i) {
        unsupported += (i == 0 ? "" : ", ") +
                       core::trim_ascii(response.get_header_value("Transfer-Encoding", i));
      }
      abort = success_status ? Abort::unsupported_transfer : Abort::status_known;
      return false;
    }
    if (response.has_header("Content-Length") && !net::is_chunked(response)) {
      const auto parsed = parse_content_length(response.get_header_value("Content-Length"));
      if (parsed) {
        length = *parsed;
      } else if (success_status) {
        abort = Abort::bad_length;  // "-1", "abc": the library would misread it
        bad_length = response.get_header_value("Content-Length").substr(0, 40);
        return false;
      }
      // Another status is read by its status alone (a redirect is followed,
      // a 503 retried): a body of unknown length is not read (status_known).
    }
    if (!net::is_chunked(response)) {
      expected_bytes = length;
    }
    if (success_status) {
      if (!is_html(attempt.media_type)) {
        abort = Abort::not_html;
        return false;
      }
      if (length != SIZE_MAX && length > m_config.max_body_bytes) {
        abort = Abort::too_large;
        return false;
      }
      if (m_config.decompress) {
        // Only what Accept-Encoding asked for is expected; anything else
        // (or a list of codings) would store the coded bytes as the page.
        const std::string sent = response.get_header_value("Content-Encoding");
        encoding = normalized_coding(sent);
        if (!encoding.empty()) {
          decoder = decoder_of(encoding);
          if (decoder == nullptr || response.get_header_value_count("Content-Encoding") > 1) {
            unsupported = core::trim_ascii(sent);
            abort = Abort::unsupported_encoding;
            return false;
          }
          if (!decoder->valid()) {
            abort = Abort::bad_encoding;
            return false;
          }
        }
      }
      // Its room for the body: its length, or the most a page may be when
      // its length is unknown (chunked, compressed). Taken whole, never
      // grown: bodies that waited to grow held their rooms while they
      // waited, and 64 compressed pages at once waited for each other
      // until their read timeouts failed them.
      const std::size_t room = decoder == nullptr && expected_bytes != SIZE_MAX
                                   ? expected_bytes
                                   : m_config.max_body_bytes;
      auto lease = process_body_budget().acquire_unless(room, deadline,
                                                        [this] { return m_cancelled.load(); });
      if (!lease) {
        abort = Abort::interrupted;
        return false;
      }
      attempt.body_room = std::move(*lease);
      if (room < m_config.max_body_bytes) {
        attempt.body.reserve(room);  // its length; one of unknown length grows (keep)
      }
      return true;
    }
    if (length <= k_max_discarded_body) {
      return true;  // read and drop it: the connection stays usable
    }
    abort = Abort::status_known;
    return false;
  };
  // Takes a success's body, decoded.
  const httplib::detail::decompressor::Callback keep = [&](const char* data, std::size_t size) {
    const std::size_t need = attempt.body.size() + size;
    if (need > m_config.max_body_bytes) {
      abort = Abort::too_large;
      return false;
    }
    if (attempt.body.capacity() < need) {
      // Doubled, within its room: into a new string, whose reserve() takes
      // what it is asked (the body's own would double: 8 MiB grown to 16
      // for a room of 10).
      std::string grown;
      grown.reserve(
          std::min(attempt.body_room.bytes(), std::max(need, 2 * attempt.body.capacity())));
      grown.append(attempt.body);
      attempt.body.swap(grown);
    }
    attempt.body.append(data, size);
    return true;
  };
  auto on_content = [&](const char* data, std::size_t size) {
    if (m_cancelled || steady_clock::now() >= deadline) {
      abort = Abort::interrupted;
      return false;
    }
    received_bytes += size;
    if (!success_status) {
      return true;
    }
    if (!decoder) {
      return keep(data, size);
    }
    if (!decoder->feed(data, size, keep)) {
      if (abort == Abort::none) {
        abort = Abort::bad_encoding;
      }
      return false;
    }
    return true;
  };

  {
    std::lock_guard lock(m_mutex);
    if (m_cancelled) {
      attempt.interrupted = true;
      return attempt;
    }
    m_active = &client;
  }
  m_response.head.max_head_bytes = k_response_head_bytes;
  m_response.head.bare_lf_lines = true;
  m_response.head.head_timeout = k_response_head_time;
  m_response.head.not_after = deadline;
  m_response.head_failure.reset();
  m_response.line_too_long = false;
  m_response.bad_chunked = false;
  m_response.host_mismatch = false;
  m_response.verify_error = 0;
  const auto get = [&] {
    m_response.handshake_deadline =
        std::min(deadline, steady_clock::now() + m_config.connect_timeout);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    ERR_clear_error();  // what a failed handshake leaves is this request's
#endif
    httplib::Result got = client.Get(target.path, headers, on_response, on_content);
    m_response.handshake.disarm();
    return got;
  };
  // Whether the request went on a kept-alive connection: known once it has
  // gone. An open one may still be replaced by the library (it found the
  // server's FIN: the server closed it during the lookup above, say).
  const std::uint64_t opened_before = idle.connections_opened();
  httplib::Result result = get();
  const bool reused = idle.connections_opened() == opened_before;
  // A kept-alive connection that the server closed as the request reached it
  // (its keep-alive timeout or request limit ran out at that moment, with no
  // `Connection: close`): nothing came back, not even a byte. The request
  // goes once more, at once, on a new connection, and does not count as a
  // try (RFC 9112 9.3.1; browsers, curl and Go do the same). It cost a try,
  // its backoff and its host's turn again: against a server closing each
  // connection 5 ms after its third response, 1 or 2 pages of 25 did.
  if (reused && !m_cancelled && !attempt.status && m_response.received == 0 &&
      !m_response.timed_out && !m_response.head_failure && !m_response.host_mismatch &&
      (result.error() == httplib::Error::Read || result.error() == httplib::Error::Write) &&
      time_left() >= k_least_request_time) {
    client.set_connection_timeout(connect_timeout());
    result = get();
  }
  // No connection to the first address, refused or timed out (a host's
  // IPv6 address and a site listening on IPv4 only, say): the next ones are
  // tried in turn, as the library tries each address it looks up itself.
  // Nothing was received.
  const auto no_connection = [&] {
    return result.error() == httplib::Error::Connection ||
           result.error() == httplib::Error::ConnectionTimeout;
  };
  for (std::size_t next = 1; next < addresses.size() && no_connection() && !m_cancelled &&
                             time_left() >= k_least_request_time;
       ++next) {
    client.set_hostname_addr_map({{bare, addresses[next]}});
    client.set_connection_timeout(connect_timeout());
    result = get();
  }
  {
    std::lock_guard lock(m_mutex);
    m_active = nullptr;
  }

  // A cancel can end a body without a length as if it were whole.
  if (m_cancelled || steady_clock::now() >= deadline) {
    attempt.interrupted = true;
    return attempt;
  }
  if (const auto& failure = m_response.head_failure) {
    const bool too_large = *failure == net::HeadResult::too_large ||
                           *failure == net::HeadResult::start_line_too_long;
    attempt.error = too_large ? "response headers exceed " +
                                    std::to_string(k_response_head_bytes) +
                                    " bytes (or a line 8192)"
                              : "response headers did not arrive in time";
    attempt.retryable = !too_large;
    return attempt;
  }
  if (m_response.line_too_long) {
    attempt.error = "response body has a chunk-size or trailer line over 8192 bytes, or over 1 MiB of trailers";
    return attempt;
  }
  if (m_response.bad_chunked) {
    attempt.error = "response body's chunked framing is invalid (RFC 9112 7.1)";
    return attempt;
  }
  switch (abort) {
    case Abort::interrupted:
      attempt.interrupted = true;
      return attempt;
    case Abort::not_html:
      attempt.error = "not an HTML page (Content-Type " + attempt.media_type + ")";
      return attempt;
    case Abort::too_large:
      attempt.error = "response body exceeds " + std::to_string(m_config.max_body_bytes) + " bytes";
      attempt.body.clear();
      return attempt;
    case Abort::status_known:
      attempt.retryable = is_retryable_status(*attempt.status);
      return attempt;
    case Abort::bad_framing:
      attempt.status.reset();
      attempt.error = "the response has Content-Length headers that differ";
      return attempt;
    case Abort::bad_length:
      attempt.status.reset();
      attempt.error = "the response's Content-Length is not a length (" + bad_length + ")";
      return attempt;
    case Abort::bad_encoding:
      // The same bytes would come again: not retried.
      attempt.error = "cannot decode the " + encoding + " body";
      attempt.body.clear();
      return attempt;
    case Abort::unsupported_encoding:
      attempt.error = "unsupported Content-Encoding " + unsupported;
      return attempt;
    case Abort::unsupported_transfer:
      attempt.error = "unsupported Transfer-Encoding " + unsupported + " (only chunked alone is read)";
      return attempt;
    case Abort::none:
      break;
  }
  if (result.error() == httplib::Error::Read && expected_bytes != SIZE_MAX &&
      received_bytes < expected_bytes) {
    const std::string counts = std::to_string(received_bytes) + " of " +
                               std::to_string(expected_bytes) + " bytes";
    attempt.error = m_response.timed_out
                        ? "the response stalled before its Content-Length (" + counts +
                              ", then nothing for the read timeout)"
                        : "the response ended before its Content-Length (" + counts + ")";
    attempt.retryable = true;
    attempt.body.clear();
    return attempt;
  }
  if (result.error() != httplib::Error::Success || !result) {
    if (m_cancelled || steady_clock::now() >= deadline) {
      attempt.interrupted = true;
      return attempt;
    }
    attempt.body.clear();
    attempt.retryable = !is_permanent_transport_error(result.error());
    if (m_response.host_mismatch) {
      attempt.status.reset();
      attempt.error = "TLS certificate verification failed: the certificate does not name " +
                      bare_host(target.host);
      attempt.retryable = false;
    } else if (result.error() == httplib::Error::SSLConnection &&
               m_response.handshake.fired()) {
      attempt.status.reset();
      attempt.error = "TLS handshake did not finish within " +
                      seconds_text(m_config.connect_timeout);
    } else if (result.error() == httplib::Error::SSLConnection &&
               m_response.verify_error != 0) {
      // Why, as OpenSSL says it ("certificate has expired"): the same
      // certificate would come again.
      attempt.status.reset();
      attempt.error = "TLS certificate verification failed: " +
                      std::string(X509_verify_cert_error_string(m_response.verify_error));
      attempt.retryable = false;
    } else if (result.error() != httplib::Error::Read) {
      attempt.status.reset();
      attempt.error = transport_error_message(result.error());
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      // Why, as OpenSSL says it (the library drops it): "wrong version
      // number" (no TLS on that port), "legacy sigalg disallowed or
      // unsupported" (a server of TLS 1.0 only).
      if (result.error() == httplib::Error::SSLConnection) {
        // The first error: the library's shutdown after it adds others.
        const unsigned long first = ERR_get_error();
        ERR_clear_error();
        if (const char* reason = first != 0 ? ERR_reason_error_string(first) : nullptr) {
          attempt.error += std::string(": ") + reason;
        }
      }
#endif
    } else if (attempt.status) {
      // The head was read (its status stays the response's): the body was not.
      attempt.error = m_response.timed_out
                          ? "the response stalled in its body (nothing for the read timeout)"
                          : "the connection closed before the response's body ended";
    } else if (m_response.timed_out) {
      // The first byte waited for the whole head time (the job's deadline
      // interrupts instead).
      attempt.error = "no response within " + seconds_text(k_response_head_time);
    } else if (m_response.received == 0) {
      attempt.error = "the connection closed before any response";
    } else if (m_response.head_cut) {
      attempt.error = "the connection closed before the response's head ended";
    } else {
      attempt.error = "the response is not HTTP/1.x (its status line or headers cannot be read)";
    }
    return attempt;
  }
  attempt.status = result->status;
  if (!(attempt.status >= 200 && attempt.status < 300)) {
    attempt.body.clear();
    attempt.retryable = is_retryable_status(*attempt.status);
  } else if (decoder && !decoder->ended()) {
    // The body's length was kept to, and it holds only part of a stream: the
    // site would send the same bytes again.
    attempt.error = "cannot decode the " + encoding + " body";
    attempt.body.clear();
  }
  return attempt;
}

FetchResult HttpFetcher::fetch(const std::string& url, SteadyTime deadline) {
  FetchResult result;
  result.final_url = url;
  std::string current = url;
  std::optional<int> last_status;  // of the last response, at any try or hop
  for (int redirects = 0;; ++redirects) {
    Target target;
    const auto clean = parse_target(current, target.host, target.origin, target.path);
    if (!clean) {
      result.error = with_ascii_host(escape_uri_chars(current))
                         ? "not an http(s) URL"
                         : "not a valid host name (it has no ASCII form under IDNA)";
      return result;
    }
    target.url = *clean;
    result.final_url = target.url;

    Attempt attempt;
    for (int tries = 1;; ++tries) {
      attempt = request_once(target, deadline);
      const bool page = attempt.error.empty() && attempt.status && *attempt.status >= 200 &&
                        *attempt.status < 300 && !attempt.interrupted;
      if (page) {
        attempt.body_room.shrink_to(attempt.body.capacity());
      } else {
        std::string().swap(attempt.body);  // its memory too
        attempt.body_room.release();
      }
      if (attempt.status) {
        last_status = attempt.status;
      }
      if (redirects == 0 && tries == 1) {
        result.host_wait = attempt.host_wait;
      }
      if (attempt.interrupted) {
        result.interrupted = true;
        result.error = m_cancelled ? "cancelled" : "deadline exceeded";
        return result;
      }
      if (!attempt.retryable || tries >= m_config.max_tries) {
        break;
      }
      milliseconds wait = m_config.backoff * (1 << std::min(tries - 1, 16));
      if (attempt.status && !attempt.retry_after.empty()) {
        if (const auto retry_after = parse_retry_after(attempt.retry_after)) {
          // The wait asked for is kept to, or the page fails at once: a
          // shorter one would only be refused again.
          const std::string asked =
              "HTTP " + std::to_string(*attempt.status) + ", and the site asked to wait " +
              (*retry_after >= milliseconds(k_year_s * 1000) ? std::string("a year or more")
                                                             : seconds_text(*retry_after));
          if (*retry_after > m_config.max_retry_after) {
            attempt.error = asked + ", more than the " + seconds_text(m_config.max_retry_after) +
                            " a page may wait";
            break;
          }
          if (steady_clock::now() + *retry_after + k_least_request_time > deadline) {
            attempt.error = asked + ", past the job's deadline";
            break;
          }
          wait = *retry_after;
        }
      }
      const SteadyTime until = steady_clock::now() + wait;
      if (until >= deadline || !wait_until(until)) {
        result.interrupted = true;
        result.error = m_cancelled ? "cancelled" : "deadline exceeded";
        return result;
      }
    }

    result.http_status = last_status;
    // An error is stored with the URL asked for: after a redirect it names
    // the URL that gave it too.
    const std::string where =
        redirects > 0 ? " (redirected to " + core::printable(target.url) + ")" : "";
    if (!attempt.error.empty()) {
      // It may quote the site's headers (Content-Type, Content-Encoding):
      // stored and shown later, they are made printable first.
      result.error = core::printable(attempt.error) + where;
      return result;
    }
    const int status = *attempt.status;
    if (is_redirect(status)) {
      if (attempt.location.empty()) {
        result.error = "HTTP " + std::to_string(status) + " without a Location";
        return result;
      }
      if (redirects >= m_config.max_redirects) {
        result.error = "too many redirects (more than " + std::to_string(m_config.max_redirects) + ")";
        return result;
      }
      const auto next = resolve_url(target.url, attempt.location);
      Target to;
      if (!next || !parse_target(*next, to.host, to.origin, to.path)) {  // a port over 65535
        result.error = "redirect to an unsupported URL: " + core::printable(attempt.location);
        return result;
      }
      current = strip_fragment(*next);
      continue;
    }
    if (status < 200 || status >= 300) {
      result.error = "HTTP " + std::to_string(status) + where;
      return result;
    }
    result.ok = true;
    result.body = std::move(attempt.body);
    result.body_room = std::move(attempt.body_room);
    result.content_type = attempt.media_type;
    result.charset = attempt.charset;
    return result;
  }
}

} // namespace scrapekeep::scrape
