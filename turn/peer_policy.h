// Which TURN peers an allocation may reach: an allow list and a deny list of
// CIDR ranges. Pure (no DPDK, no I/O); the control plane builds one from the
// config and consults it on CreatePermission / ChannelBind.
#pragma once

#include "turn/stun.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace isar::turn {

struct cidr {
    uint8_t family = 0;  // 4 or 6, as in transport_addr
    uint8_t ip[16] = {}; // IPv4 in ip[0..3]; host bits are zero
    uint8_t prefix = 0;
};

// "A.B.C.D/N", "A.B.C.D" (= /32), "X::Y/N" or "X::Y" (= /128). Host bits
// set in the address are masked off; a bad address or prefix is nullopt.
std::optional<cidr> parse_cidr(std::string_view s);

class peer_policy {
public:
    void allow(const cidr& c) { allow_.push_back(c); }
    void deny(const cidr& c) { deny_.push_back(c); }
    // An allow match permits; otherwise a deny match refuses; otherwise the
    // peer is permitted. An address of no family (0) is never permitted.
    bool permitted(const transport_addr& a) const noexcept;

    // The special-purpose ranges coturn's hardening guide (and Jitsi's
    // turnserver.conf) deny: private, loopback, link-local, CGNAT,
    // documentation, benchmarking, multicast, reserved, and their IPv6
    // counterparts. parse_cidr() accepts every one.
    static std::vector<std::string> default_denied();

private:
    std::vector<cidr> allow_;
    std::vector<cidr> deny_;
};

} // namespace isar::turn
