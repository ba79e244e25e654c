#include "control/addr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace isar::ctl {

std::optional<uint32_t> parse_ipv4(std::string_view s)
{
    if (s.empty() || s.size() > 15)
        return std::nullopt;
    char buf[16];
    s.copy(buf, s.size());
    buf[s.size()] = '\0';
    in_addr a{};
    if (inet_pton(AF_INET, buf, &a) != 1)
        return std::nullopt;
    return ntohl(a.s_addr);
}

std::string format_ipv4(uint32_t ip)
{
    in_addr a{htonl(ip)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return buf;
}

std::optional<ip6_bytes> parse_ipv6(std::string_view s)
{
    // inet_pton takes no zone ("%eth0") and no brackets; it accepts an
    // embedded IPv4 tail ("::ffff:1.2.3.4"), as RFC 4291 allows.
    if (s.empty() || s.size() >= INET6_ADDRSTRLEN)
        return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    s.copy(buf, s.size());
    buf[s.size()] = '\0';
    in6_addr a{};
    if (inet_pton(AF_INET6, buf, &a) != 1)
        return std::nullopt;
    ip6_bytes b;
    std::memcpy(b.data(), &a, 16);
    return b;
}

std::string format_ipv6(const ip6_bytes& b)
{
    in6_addr a{};
    std::memcpy(&a, b.data(), 16);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    return buf;
}

std::optional<ip_addr> parse_ip(std::string_view s)
{
    if (s.find(':') != std::string_view::npos) {
        auto b = parse_ipv6(s);
        if (!b)
            return std::nullopt;
        return ip_addr::from_v6(*b);
    }
    auto v4 = parse_ipv4(s);
    if (!v4)
        return std::nullopt;
    return ip_addr::from_v4(*v4);
}

std::string format_ip(const ip_addr& a)
{
    return a.family == 6 ? format_ipv6(a.v6) : format_ipv4(a.v4);
}

namespace {
bool usable_unicast4(uint32_t ip)
{
    return ip != 0 && ip != 0xffffffffu && (ip >> 28) != 0xe;
}

bool usable_unicast6(const ip6_bytes& b)
{
    static constexpr uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (b[0] == 0xff)
        return false; // multicast
    if (std::memcmp(b.data(), mapped, 12) == 0)
        return false; // ::ffff:a.b.c.d: an IPv4 address, say it as one
    for (uint8_t x : b)
        if (x != 0)
            return true;
    return false; // ::
}

// "1..65535" exactly, no sign, no spaces.
std::optional<uint16_t> parse_port(std::string_view ps)
{
    unsigned port = 0;
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (ec != std::errc() || p != ps.data() + ps.size() || port == 0 || port > 65535)
        return std::nullopt;
    return static_cast<uint16_t>(port);
}

std::optional<unsigned> parse_len(std::string_view ls, unsigned min, unsigned max)
{
    unsigned len = 0;
    auto [p, ec] = std::from_chars(ls.data(), ls.data() + ls.size(), len);
    if (ec != std::errc() || p != ls.data() + ls.size() || len < min || len > max)
        return std::nullopt;
    return len;
}
} // namespace

bool usable_unicast(const ip_addr& a)
{
    return a.family == 6 ? usable_unicast6(a.v6) : usable_unicast4(a.v4);
}

std::optional<endpoint> parse_endpoint(std::string_view s, std::string& err)
{
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
        err = "expected IP:PORT, got \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto ip = parse_ipv4(s.substr(0, colon));
    if (!ip) {
        err = "bad IPv4 address in \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    if (!usable_unicast4(*ip)) {
        err = "address in \"" + std::string(s) + "\" is not a unicast address";
        return std::nullopt;
    }
    auto port = parse_port(s.substr(colon + 1));
    if (!port) {
        err = "bad port in \"" + std::string(s) + "\" (1..65535)";
        return std::nullopt;
    }
    return endpoint{*ip, *port};
}

std::optional<endpoint> parse_endpoint_any(std::string_view s, std::string& err)
{
    if (s.empty() || s[0] != '[')
        return parse_endpoint(s, err); // IPv4, or an unbracketed IPv6 (refused there)
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
        err = "expected [IPv6]:PORT, got \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto b = parse_ipv6(s.substr(1, close - 1));
    if (!b) {
        err = "bad IPv6 address in \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    if (!usable_unicast6(*b)) {
        err = "address in \"" + std::string(s) + "\" is not a unicast address";
        return std::nullopt;
    }
    auto port = parse_port(s.substr(close + 2));
    if (!port) {
        err = "bad port in \"" + std::string(s) + "\" (1..65535)";
        return std::nullopt;
    }
    return endpoint{0, *port, 6, *b};
}

std::string format_endpoint(const endpoint& e)
{
    if (e.family == 6)
        return "[" + format_ipv6(e.ip6) + "]:" + std::to_string(e.port);
    return format_ipv4(e.ip) + ":" + std::to_string(e.port);
}

std::optional<prefix> parse_prefix(std::string_view s, std::string& err)
{
    auto slash = s.find('/');
    if (slash == std::string_view::npos) {
        err = "expected IP/PREFIX such as 198.18.0.1/24, got \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto ip = parse_ipv4(s.substr(0, slash));
    if (!ip || !usable_unicast4(*ip)) {
        err = "bad IPv4 address in \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto len = parse_len(s.substr(slash + 1), 1, 32);
    if (!len) {
        err = "bad prefix length in \"" + std::string(s) + "\" (1..32)";
        return std::nullopt;
    }
    return prefix{*ip, static_cast<uint8_t>(*len)};
}

std::optional<ip_prefix> parse_ip_prefix(std::string_view s, std::string& err)
{
    auto slash = s.find('/');
    if (slash == std::string_view::npos || s.find(':') == std::string_view::npos) {
        auto p = parse_prefix(s, err); // IPv4 (its texts), or no '/' at all
        if (!p) {
            if (slash == std::string_view::npos)
                err = "expected IP/PREFIX such as 198.18.0.1/24 or 2001:2::1/64, got \"" +
                      std::string(s) + "\"";
            return std::nullopt;
        }
        return ip_prefix{ip_addr::from_v4(p->ip), p->len};
    }
    auto b = parse_ipv6(s.substr(0, slash));
    if (!b || !usable_unicast6(*b)) {
        err = "bad IPv6 address in \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto len = parse_len(s.substr(slash + 1), 1, 128);
    if (!len) {
        err = "bad prefix length in \"" + std::string(s) + "\" (1..128)";
        return std::nullopt;
    }
    return ip_prefix{ip_addr::from_v6(*b), static_cast<uint8_t>(*len)};
}

std::optional<ip_prefix> parse_cidr_any(std::string_view s, std::string& err)
{
    const auto slash = s.find('/');
    const auto as = s.substr(0, slash);
    auto a = parse_ip(as);
    if (!a) {
        err = "bad address in \"" + std::string(s) + "\" (expected e.g. \"198.18.0.0/15\" or "
                                                     "\"2001:2::/48\")";
        return std::nullopt;
    }
    const unsigned max = a->family == 6 ? 128 : 32;
    unsigned len = max;
    if (slash != std::string_view::npos) {
        auto l = parse_len(s.substr(slash + 1), 0, max);
        if (!l) {
            err = "bad prefix length in \"" + std::string(s) + "\" (0.." + std::to_string(max) +
                  ")";
            return std::nullopt;
        }
        len = *l;
    }
    ip_prefix p{*a, static_cast<uint8_t>(len)};
    p.addr = network_of(p);
    return p;
}

std::string format_prefix(const ip_prefix& p)
{
    return format_ip(p.addr) + "/" + std::to_string(p.len);
}

ip_addr network_of(const ip_prefix& p)
{
    ip_addr a = p.addr;
    if (a.family == 4) {
        a.v4 = p.len == 0 ? 0 : a.v4 & (~0u << (32 - p.len));
        return a;
    }
    for (unsigned i = 0; i < 16; i++) {
        const unsigned bit = i * 8;
        if (bit >= p.len)
            a.v6[i] = 0;
        else if (bit + 8 > p.len)
            a.v6[i] = static_cast<uint8_t>(a.v6[i] & (0xff00u >> (p.len - bit)));
    }
    return a;
}

bool same_prefix(const ip_addr& a, const ip_addr& b, unsigned len)
{
    if (a.family != b.family)
        return false;
    return network_of({a, static_cast<uint8_t>(len)}) == network_of({b, static_cast<uint8_t>(len)});
}

} // namespace isar::ctl
