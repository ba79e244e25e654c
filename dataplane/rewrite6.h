// Header rewrite for a forwarded packet that is IPv6 on either side: IPv6 ->
// IPv6, and bridging IPv4 <-> IPv6 (the IP header is rebuilt, 20 bytes are
// prepended or removed in front of the UDP header, which with its payload
// stays where it is). IPv4 -> IPv4 is rewrite_udp4 (rewrite.h).
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/classify.h"
#include "dataplane/ip6.h"
#include "dataplane/rewrite.h"

namespace isar::dp {

// Where a rewritten packet goes: a source and destination of one family.
struct rewrite6_to {
    rte_ether_addr src_mac;
    rte_ether_addr dst_mac;
    uint8_t family = 6; // of the output packet
    uint32_t src_ip_be = 0, dst_ip_be = 0; // family 4
    ip6_addr src6{}, dst6{};               // family 6
    uint16_t src_port_be = 0;
    uint16_t dst_port_be = 0;
};

constexpr uint8_t ip6_default_hop_limit = 64;

// Sum of n 32-bit words (as stored), and of their complements (RFC 1624:
// subtracting a word is adding its complement).
inline uint64_t sum32(const uint8_t* p, unsigned n) noexcept
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t w;
        std::memcpy(&w, p + 4 * i, 4);
        s += w;
    }
    return s;
}
inline uint64_t sum32_not(const uint8_t* p, unsigned n) noexcept
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t w;
        std::memcpy(&w, p + 4 * i, 4);
        s += uint32_t{~w};
    }
    return s;
}

// The UDP checksum over IPv6 (RFC 8200 §8.1) of the datagram after `ip`
// (payload_len bytes), the checksum field zeroed by the caller; never 0.
inline uint16_t ipv6_udp_cksum(const rte_ipv6_hdr* ip, const void* l4) noexcept
{
    const uint32_t ulen = rte_be_to_cpu_16(ip->payload_len);
    const uint64_t ph = sum32(ip->src_addr, 8) + rte_cpu_to_be_32(ulen) +
                        rte_cpu_to_be_32(IPPROTO_UDP);
    uint16_t ck = static_cast<uint16_t>(~cksum_partial(l4, ulen, cksum_fold(ph)));
    return ck == 0 ? 0xffff : ck;
}

// After the UDP payload changed length (SRTP): the IP and UDP lengths of
// the packet as classified (either family).
inline void set_udp_len(rte_mbuf* m, const pkt_meta& meta, uint32_t plen) noexcept
{
    if (meta.family == 4) {
        set_payload_len(m, meta.l3_off, meta.l4_off, plen);
        return;
    }
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, meta.l4_off);
    const uint32_t ulen = plen + static_cast<uint32_t>(sizeof(rte_udp_hdr));
    ip->payload_len = rte_cpu_to_be_16(
            static_cast<uint16_t>(meta.l4_off - meta.l3_off - sizeof(rte_ipv6_hdr) + ulen));
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(ulen));
}

namespace rewrite6_detail {

// The 8-bit traffic class / TOS of the received header (DSCP and ECN carry
// over between the families).
inline uint8_t traffic_class(const uint8_t* ip, uint8_t family) noexcept
{
    return family == 4 ? ip[1] : static_cast<uint8_t>((ip[0] << 4) | (ip[1] >> 4));
}

inline void write_ip6(rte_ipv6_hdr* ip, uint8_t tc, uint32_t ulen, const rewrite6_to& to) noexcept
{
    ip->vtc_flow = rte_cpu_to_be_32((6u << 28) | (uint32_t{tc} << 20));
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(ulen));
    ip->proto = IPPROTO_UDP;
    ip->hop_limits = ip6_default_hop_limit;
    std::memcpy(ip->src_addr, to.src6.b, 16);
    std::memcpy(ip->dst_addr, to.dst6.b, 16);
}

inline void write_ip4(rte_ipv4_hdr* ip, uint8_t tos, uint32_t ulen, const rewrite6_to& to) noexcept
{
    ip->version_ihl = 0x45;
    ip->type_of_service = tos;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + ulen));
    ip->packet_id = 0;
    ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG); // RFC 7915 §5.1
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = to.src_ip_be;
    ip->dst_addr = to.dst_ip_be;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = ipv4_hdr_cksum(ip, sizeof(rte_ipv4_hdr));
}

} // namespace rewrite6_detail

// Rewrites a classified IPv4 or IPv6 UDP frame for `to` (of either family;
// not IPv4 -> IPv4: rewrite_udp4): a fresh IP header without options or
// extension headers, 64 hops, the UDP checksum as `ck` says (a datagram
// without one gets one over IPv6). meta's offsets are updated. False when
// the mbuf has no headroom for the longer header (never, with DPDK's 128
// bytes).
inline bool rewrite_udp6(rte_mbuf* m, pkt_meta& meta, const rewrite6_to& to, udp_cksum ck) noexcept
{
    using namespace rewrite6_detail;
    const uint8_t* oip = rte_pktmbuf_mtod_offset(m, const uint8_t*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, meta.l4_off);
    const uint8_t tc = traffic_class(oip, meta.family);
    // What leaves the pseudo-header sum (addresses; lengths and protocol
    // count the same in both families) and the ports.
    uint64_t out = meta.family == 4 ? sum32_not(oip + 12, 2) : sum32_not(oip + 8, 8);
    out += static_cast<uint16_t>(~udp->src_port) + static_cast<uint16_t>(~udp->dst_port);
    const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);

    const uint32_t l3_len = to.family == 6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    const uint32_t front = sizeof(rte_ether_hdr) + l3_len;
    if (front > meta.l4_off) {
        if (rte_pktmbuf_prepend(m, static_cast<uint16_t>(front - meta.l4_off)) == nullptr)
            return false;
    } else if (front < meta.l4_off) {
        rte_pktmbuf_adj(m, static_cast<uint16_t>(meta.l4_off - front));
    }
    meta.l3_off = sizeof(rte_ether_hdr);
    meta.l4_off = static_cast<uint16_t>(front);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    rte_ether_addr_copy(&to.dst_mac, &eth->dst_addr);
    rte_ether_addr_copy(&to.src_mac, &eth->src_addr);
    uint64_t in = uint64_t{to.src_port_be} + to.dst_port_be;
    void* ip = eth + 1;
    if (to.family == 6) {
        eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
        write_ip6(static_cast<rte_ipv6_hdr*>(ip), tc, ulen, to);
        in += sum32(to.src6.b, 4) + sum32(to.dst6.b, 4);
        if (ck == udp_cksum::none) // UDP over IPv6 must have one
            ck = udp_cksum::compute;
    } else {
        eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
        write_ip4(static_cast<rte_ipv4_hdr*>(ip), tc, ulen, to);
        in += uint64_t{to.src_ip_be} + to.dst_ip_be;
    }
    udp->src_port = to.src_port_be;
    udp->dst_port = to.dst_port_be;

    uint64_t ol = m->ol_flags & (RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT);
    switch (ck) {
    case udp_cksum::update: { // RFC 1624 eqn. 3 over every changed word
        const uint16_t c = static_cast<uint16_t>(
                ~fold64(uint64_t{static_cast<uint16_t>(~udp->dgram_cksum)} + out + in));
        udp->dgram_cksum = c == 0 ? 0xffff : c;
        break;
    }
    case udp_cksum::none: // IPv4 output of an IPv4 datagram without one
        break;
    case udp_cksum::compute:
        udp->dgram_cksum = 0;
        udp->dgram_cksum = to.family == 6
                                   ? ipv6_udp_cksum(static_cast<const rte_ipv6_hdr*>(ip), udp)
                                   : ipv4_udp_cksum(static_cast<const rte_ipv4_hdr*>(ip), udp);
        break;
    case udp_cksum::offload:
        m->l2_len = sizeof(rte_ether_hdr);
        m->l3_len = l3_len;
        if (to.family == 6) {
            ol |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
            udp->dgram_cksum = rte_ipv6_phdr_cksum(static_cast<const rte_ipv6_hdr*>(ip), ol);
        } else {
            ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM; // header sum done above
            udp->dgram_cksum = rte_ipv4_phdr_cksum(static_cast<const rte_ipv4_hdr*>(ip), ol);
        }
        break;
    }
    m->ol_flags = ol;
    return true;
}

} // namespace isar::dp
