#include "scrapekeep/scrape/address_filter.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace scrapekeep::scrape {

namespace {

using V6 = std::array<std::uint8_t, 16>;

struct V4Range {
  std::uint32_t base;
  int prefix;
};

constexpr std::uint32_t v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}

constexpr V4Range k_v4_link_local[] = {
    {v4(169, 254, 0, 0), 16},
    // Cloud metadata services outside 169.254/16: Alibaba, Oracle, Azure.
    {v4(100, 100, 100, 200), 32},
    {v4(192, 0, 0, 192), 32},
    {v4(168, 63, 129, 16), 32},
};

constexpr V4Range k_v4_private[] = {
    {v4(0, 0, 0, 0), 8},     {v4(127, 0, 0, 0), 8},    {v4(10, 0, 0, 0), 8},
    {v4(172, 16, 0, 0), 12}, {v4(192, 168, 0, 0), 16}, {v4(100, 64, 0, 0), 10},
    // No public host: IETF protocol assignments, benchmarking, multicast,
    // reserved and broadcast.
    {v4(192, 0, 0, 0), 24},  {v4(198, 18, 0, 0), 15},  {v4(224, 0, 0, 0), 4},
    {v4(240, 0, 0, 0), 4},
};

bool in_v4(std::uint32_t address, const V4Range& range) {
  const std::uint32_t mask = range.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - range.prefix);
  return (address & mask) == (range.base & mask);
}

template <std::size_t N>
bool in_any_v4(std::uint32_t address, const V4Range (&ranges)[N]) {
  for (const V4Range& range : ranges) {
    if (in_v4(address, range)) {
      return true;
    }
  }
  return false;
}

bool refused_v4(std::uint32_t address, TargetPolicy policy) {
  if (in_any_v4(address, k_v4_link_local)) {
    return true;
  }
  return policy == TargetPolicy::refuse_private && in_any_v4(address, k_v4_private);
}

V6 parse_v6_constant(const char* text) {
  V6 out{};
  inet_pton(AF_INET6, text, out.data());
  return out;
}

bool refused_v6(const V6& a, TargetPolicy policy) {
  const V6 zero{};
  // ::ffff:a.b.c.d (mapped) and the deprecated ::a.b.c.d (compatible) reach
  // the IPv4 address; :: and ::1 are the IPv6 unspecified and loopback.
  const bool mapped = std::memcmp(a.data(), zero.data(), 10) == 0 && a[10] == 0xff && a[11] == 0xff;
  const bool compatible = std::memcmp(a.data(), zero.data(), 12) == 0 && (a[12] | a[13]) != 0;
  // Other forms that embed an IPv4 address a gateway may reach: ::ffff:0:a.b.c.d
  // (IPv4-translated), 64:ff9b::a.b.c.d (NAT64's well-known prefix).
  const bool translated = std::memcmp(a.data(), zero.data(), 8) == 0 && a[8] == 0xff &&
                          a[9] == 0xff && a[10] == 0 && a[11] == 0;
  const bool nat64 = a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b &&
                     std::memcmp(a.data() + 4, zero.data(), 8) == 0;
  if (mapped || compatible || translated || nat64) {
    return refused_v4(v4(a[12], a[13], a[14], a[15]), policy);
  }
  // 64:ff9b:1::/48, NAT64 for local use (private, below): its IPv4 address
  // sits where RFC 6052 puts it for the network's prefix, a /48 to a /96
  // (byte 8 is skipped); a link-local one at any of them is refused.
  if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1) {
    for (const auto& at : {std::array{6, 7, 9, 10}, std::array{7, 9, 10, 11},
                           std::array{9, 10, 11, 12}, std::array{12, 13, 14, 15}}) {
      if (refused_v4(v4(a[at[0]], a[at[1]], a[at[2]], a[at[3]]), TargetPolicy::refuse_link_local)) {
        return true;
      }
    }
  }
  if (a[0] == 0x20 && a[1] == 0x02) {  // 2002:a.b.c.d::/48 (6to4)
    return refused_v4(v4(a[2], a[3], a[4], a[5]), policy);
  }
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0 &&  // 2001::/32 (Teredo)
      (refused_v4(v4(a[4], a[5], a[6], a[7]), policy) ||
       refused_v4(~v4(a[12], a[13], a[14], a[15]), policy))) {
    return true;
  }
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {  // fe80::/10
    return true;
  }
  static const V6 k_metadata[] = {parse_v6_constant("fd00:ec2::254"),
                                  parse_v6_constant("fd20:ce::254")};
  for (const V6& m : k_metadata) {
    if (a == m) {
      return true;
    }
  }
  if (policy != TargetPolicy::refuse_private) {
    return false;
  }
  if ((a[0] & 0xfe) == 0xfc || a[0] == 0xff ||  // fc00::/7, multicast
      (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)) {  // fec0::/10 (site-local, deprecated)
    return true;
  }
  // 64:ff9b:1::/48, NAT64 for local use: where its IPv4 address sits depends
  // on the network's prefix length.
  if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1) {
    return true;
  }
  // :: and ::1 (the rest of ::/96 was handled as IPv4-compatible above).
  return std::memcmp(a.data(), zero.data(), 15) == 0 && a[15] <= 1;
}

bool allowed(const std::string& ip, TargetPolicy policy) {
  std::string text = ip;
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (const auto zone = text.find('%'); zone != std::string::npos) {
    text.resize(zone);
  }
  in_addr a4{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    return !refused_v4(ntohl(a4.s_addr), policy);
  }
  V6 a6{};
  if (inet_pton(AF_INET6, text.c_str(), a6.data()) == 1) {
    return !refused_v6(a6, policy);
  }
  return false;  // not an address: nothing to vouch for
}

} // namespace

std::optional<TargetPolicy> parse_target_policy(const std::string& text) {
  if (text == "allow-all") {
    return TargetPolicy::allow_all;
  }
  if (text == "refuse-link-local") {
    return TargetPolicy::refuse_link_local;
  }
  if (text == "refuse-private") {
    return TargetPolicy::refuse_private;
  }
  return std::nullopt;
}

std::function<bool(const std::string& ip)> address_filter_for(TargetPolicy policy) {
  if (policy == TargetPolicy::allow_all) {
    return {};
  }
  return [policy](const std::string& ip) { return allowed(ip, policy); };
}

} // namespace scrapekeep::scrape
