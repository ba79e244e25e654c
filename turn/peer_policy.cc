// TURN peer allow/deny lists (see peer_policy.h).
#include "turn/peer_policy.h"

#include <arpa/inet.h>
#include <cstring>

namespace isar::turn {

namespace {

bool contains(const cidr& c, const transport_addr& a) noexcept
{
    if (c.family != a.family) {
        return false;
    }
    const unsigned full = c.prefix / 8;
    if (std::memcmp(c.ip, a.ip, full) != 0) {
        return false;
    }
    const unsigned rest = c.prefix % 8;
    if (rest == 0) {
        return true;
    }
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a.ip[full] & mask) == c.ip[full];
}

bool matches_any(const std::vector<cidr>& list, const transport_addr& a) noexcept
{
    for (const cidr& c : list) {
        if (contains(c, a)) {
            return true;
        }
    }
    return false;
}

} // namespace

std::optional<cidr> parse_cidr(std::string_view s)
{
    const size_t slash = s.find('/');
    const std::string_view addr = s.substr(0, slash);
    char text[INET6_ADDRSTRLEN + 1];
    if (addr.empty() || addr.size() >= sizeof text) {
        return std::nullopt;
    }
    std::memcpy(text, addr.data(), addr.size());
    text[addr.size()] = '\0';

    cidr c;
    const bool v6 = addr.find(':') != std::string_view::npos;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, c.ip) != 1) {
        return std::nullopt;
    }
    c.family = v6 ? 6 : 4;
    const unsigned max_prefix = v6 ? 128 : 32;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view p = s.substr(slash + 1);
        if (p.empty() || p.size() > 3) {
            return std::nullopt;
        }
        prefix = 0;
        for (char ch : p) {
            if (ch < '0' || ch > '9') {
                return std::nullopt;
            }
            prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
        }
        if (prefix > max_prefix) {
            return std::nullopt;
        }
    }
    c.prefix = static_cast<uint8_t>(prefix);
    // Clear the host bits so contains() compares whole bytes.
    for (unsigned bit = prefix; bit < 128; bit++) {
        c.ip[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return c;
}

bool peer_policy::permitted(const transport_addr& a) const noexcept
{
    if (a.family != 4 && a.family != 6) {
        return false;
    }
    if (matches_any(allow_, a)) {
        return true;
    }
    return !matches_any(deny_, a);
}

std::vector<std::string> peer_policy::default_denied()
{
    return {
            // IPv4 (RFC 6890 special-purpose registry)
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            // 240.0.0.0/4 includes 255.255.255.255
            "240.0.0.0/4",
            // IPv6 (RFC 6890 / IANA IPv6 special-purpose registry). Every
            // range that embeds an IPv4 address is denied whole, so a peer
            // can never reach a denied IPv4 address through it.
            "::/128",
            "::1/128",
            "::/96",         // IPv4-compatible (deprecated): embeds IPv4
            "::ffff:0:0/96", // IPv4-mapped: would bypass the IPv4 list
            "64:ff9b::/96",  // NAT64 well-known prefix: embeds IPv4
            "64:ff9b:1::/48", // NAT64 local use (RFC 8215)
            "100::/64",      // discard-only
            "2001::/23",     // IETF protocol assignments: Teredo, benchmarking
                             // (2001:2::/48), ORCHID
            "2001:db8::/32", // documentation
            "2002::/16",     // 6to4: embeds IPv4
            "3fff::/20",     // documentation (RFC 9637)
            "fc00::/7",      // unique local
            "fe80::/10",     // link-local
            "fec0::/10",     // site-local (deprecated)
            "ff00::/8",      // multicast
    };
}

} // namespace isar::turn
