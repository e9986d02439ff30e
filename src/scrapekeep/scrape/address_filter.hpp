#pragma once
// Which addresses a scrape may connect to (SSRF guard): the policy behind
// FetchConfig::address_filter. The fetcher applies it to every address a host
// resolves to, on every redirect hop, and connects only to an accepted one.

#include <functional>
#include <optional>
#include <string>

namespace scrapekeep::scrape {

enum class TargetPolicy { allow_all, refuse_link_local, refuse_private };
// refuse_link_local (the default): 169.254.0.0/16, fe80::/10 and the metadata
// addresses are refused. refuse_private: also loopback 127/8 and ::1,
// 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7, 0.0.0.0/8, ::, IPv4-mapped forms of all of these.
// Metadata addresses: 169.254.169.254, 169.254.170.2, 100.100.100.200,
// 192.0.0.192, 168.63.129.16, fd00:ec2::254, fd20:ce::254.

// "allow-all" | "refuse-link-local" | "refuse-private"; nullopt for anything else.
std::optional<TargetPolicy> parse_target_policy(const std::string& text);

// The FetchConfig::address_filter for a policy (empty function for allow_all).
// The filter takes an address in text form (as inet_ntop writes it; an IPv6
// zone "%eth0" is ignored) and returns true when it may be connected to. Text
// that is not an IP address is refused. Thread-safe.
std::function<bool(const std::string& ip)> address_filter_for(TargetPolicy policy);

} // namespace scrapekeep::scrape
