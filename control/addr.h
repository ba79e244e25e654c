// IPv4 address, "IP:PORT" and "IP/PREFIX" parsing and formatting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isar::ctl {

// Host byte order throughout the control plane; converted at the dataplane edge.
std::optional<uint32_t> parse_ipv4(std::string_view s);
std::string format_ipv4(uint32_t ip);

struct endpoint {
    uint32_t ip = 0;
    uint16_t port = 0;
    bool operator==(const endpoint&) const = default;
};
// "198.18.0.2:4000"; port 1..65535, address not 0.0.0.0, not multicast or broadcast.
std::optional<endpoint> parse_endpoint(std::string_view s, std::string& err);
std::string format_endpoint(const endpoint& e);

struct prefix {
    uint32_t ip = 0;
    uint8_t len = 0;
};
// "198.18.0.1/24"; prefix length 1..32.
std::optional<prefix> parse_prefix(std::string_view s, std::string& err);

} // namespace isar::ctl
