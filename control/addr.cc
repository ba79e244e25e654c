#include "control/addr.h"

#include <arpa/inet.h>

#include <charconv>

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

namespace {
bool usable_unicast(uint32_t ip)
{
    return ip != 0 && ip != 0xffffffffu && (ip >> 28) != 0xe;
}
} // namespace

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
    if (!usable_unicast(*ip)) {
        err = "address in \"" + std::string(s) + "\" is not a unicast address";
        return std::nullopt;
    }
    auto ps = s.substr(colon + 1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (ec != std::errc() || p != ps.data() + ps.size() || port == 0 || port > 65535) {
        err = "bad port in \"" + std::string(s) + "\" (1..65535)";
        return std::nullopt;
    }
    return endpoint{*ip, static_cast<uint16_t>(port)};
}

std::string format_endpoint(const endpoint& e)
{
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
    if (!ip || !usable_unicast(*ip)) {
        err = "bad IPv4 address in \"" + std::string(s) + "\"";
        return std::nullopt;
    }
    auto ls = s.substr(slash + 1);
    unsigned len = 0;
    auto [p, ec] = std::from_chars(ls.data(), ls.data() + ls.size(), len);
    if (ec != std::errc() || p != ls.data() + ls.size() || len < 1 || len > 32) {
        err = "bad prefix length in \"" + std::string(s) + "\" (1..32)";
        return std::nullopt;
    }
    return prefix{*ip, static_cast<uint8_t>(len)};
}

} // namespace isar::ctl
