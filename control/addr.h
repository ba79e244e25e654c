// IP addresses of either family, "IP:PORT" / "[IPv6]:PORT" endpoints and
// "IP/PREFIX" parsing and formatting (IPv6 text per RFC 5952, via inet_ntop).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isar::ctl {

// Host byte order throughout the control plane; converted at the dataplane edge.
std::optional<uint32_t> parse_ipv4(std::string_view s);
std::string format_ipv4(uint32_t ip);

using ip6_bytes = std::array<uint8_t, 16>; // network order, as on the wire

// An address of either family. IPv4 in v4 (host order), IPv6 in v6.
struct ip_addr {
    uint8_t family = 4; // 4 or 6
    uint32_t v4 = 0;
    ip6_bytes v6{};

    static ip_addr from_v4(uint32_t host) { return {4, host, {}}; }
    static ip_addr from_v6(const ip6_bytes& b) { return {6, 0, b}; }
    bool is_v6() const { return family == 6; }
    bool operator==(const ip_addr&) const = default;
};
// "198.18.0.1" or "2001:2::1" (no brackets, no zone).
std::optional<ip_addr> parse_ip(std::string_view s);
std::string format_ip(const ip_addr& a); // RFC 5952 for IPv6
std::optional<ip6_bytes> parse_ipv6(std::string_view s);
std::string format_ipv6(const ip6_bytes& b);
// A unicast address a relay can talk to: IPv4 not 0.0.0.0, broadcast or
// multicast; IPv6 not ::, multicast (ff00::/8) or an IPv4-mapped ::ffff:0:0/96.
bool usable_unicast(const ip_addr& a);

// An endpoint; family 4 (ip, host order) unless parsed or built as IPv6
// (family 6, ip6; ip then holds nothing). Old code that builds {ip, port}
// gets IPv4.
struct endpoint {
    uint32_t ip = 0;
    uint16_t port = 0;
    uint8_t family = 4;
    ip6_bytes ip6{};
    bool operator==(const endpoint&) const = default;

    bool is_v6() const { return family == 6; }
    ip_addr addr() const { return family == 6 ? ip_addr::from_v6(ip6) : ip_addr::from_v4(ip); }
    static endpoint of(const ip_addr& a, uint16_t port)
    {
        return a.family == 6 ? endpoint{0, port, 6, a.v6} : endpoint{a.v4, port, 4, {}};
    }
};
// "198.18.0.2:4000"; port 1..65535, address not 0.0.0.0, not multicast or
// broadcast. IPv4 only (the old form; error texts unchanged).
std::optional<endpoint> parse_endpoint(std::string_view s, std::string& err);
// Either family: "198.18.0.2:4000" or "[2001:2::2]:4000".
std::optional<endpoint> parse_endpoint_any(std::string_view s, std::string& err);
// "198.18.0.2:4000" or "[2001:2::2]:4000".
std::string format_endpoint(const endpoint& e);

struct prefix {
    uint32_t ip = 0;
    uint8_t len = 0;
};
// "198.18.0.1/24"; prefix length 1..32. IPv4 only.
std::optional<prefix> parse_prefix(std::string_view s, std::string& err);

// An address with a prefix length, of either family.
struct ip_prefix {
    ip_addr addr;
    uint8_t len = 0; // 1..32 (IPv4) or 1..128 (IPv6)
    bool operator==(const ip_prefix&) const = default;
};
// "198.18.0.1/24" or "2001:2::1/64": a usable unicast host address with its
// prefix (an interface address).
std::optional<ip_prefix> parse_ip_prefix(std::string_view s, std::string& err);
// "198.18.0.0/15", "2001:2::/48" or a bare address (= /32, /128): a network
// (host bits are masked off; length 0 = anywhere of that family).
std::optional<ip_prefix> parse_cidr_any(std::string_view s, std::string& err);
std::string format_prefix(const ip_prefix& p);
// a and b agree in their first len bits (and are of the same family).
bool same_prefix(const ip_addr& a, const ip_addr& b, unsigned len);
// The network of p: p.addr with the host bits cleared.
ip_addr network_of(const ip_prefix& p);

} // namespace isar::ctl
