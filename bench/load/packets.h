// isar-bench's packet building and output checking, IPv4 and IPv6 (the
// generator writes the RTP/SRTP payload first, then the headers in front of
// it with a full UDP checksum; the sink parses and verifies every header and
// checksum before it looks at the payload). Independent of the dataplane's
// rewrite code: DPDK's checksum functions only.
#pragma once

#include "dataplane/ip6.h"

#include <cstddef>
#include <cstdint>
#include <rte_ether.h>

namespace isar::bench_pkt {

constexpr unsigned hdr4 = 14 + 20 + 8; // Ethernet + IPv4 + UDP
constexpr unsigned hdr6 = 14 + 40 + 8; // Ethernet + IPv6 + UDP
constexpr unsigned hdr_len(uint8_t family)
{
    return family == 6 ? hdr6 : hdr4;
}

// One UDP endpoint of either family (addresses and port in network order).
struct endpoint {
    uint8_t family = 4;
    uint32_t ip4_be = 0;
    dp::ip6_addr ip6{};
    uint16_t port_be = 0;
};

// Writes the Ethernet, IP (src.family; dst must have the same) and UDP
// headers at p, in front of the `len` payload bytes already at
// p + hdr_len(family), with a correct UDP checksum (as every RTP stack sends).
void write_udp(uint8_t* p, const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac,
               const endpoint& src, const endpoint& dst, size_t len);

// A parsed output frame.
struct udp_view {
    rte_ether_addr src_mac, dst_mac;
    endpoint src, dst;
    uint8_t* payload = nullptr;
    size_t len = 0;
};

// Parses an IPv4 or IPv6 UDP frame and verifies it: version, header and
// length fields consistent with the frame, IPv4 header checksum, UDP
// checksum present and correct. nullptr when good, otherwise what is wrong.
const char* parse_check(uint8_t* p, size_t frame_len, udp_view& v);

} // namespace isar::bench_pkt
