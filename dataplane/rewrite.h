// Header rewrite for a forwarded packet: Ethernet, IPv4 and UDP.
#pragma once

#include <cstdint>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

namespace isar::dp {

// RFC 1624 incremental update: checksum `ck` (as stored) after the 16-bit
// words old[] became new_[].
inline uint16_t cksum_adjust(uint16_t ck, const uint16_t* old, const uint16_t* new_,
                             unsigned nwords) noexcept
{
    uint32_t sum = static_cast<uint16_t>(~ck);
    for (unsigned i = 0; i < nwords; i++) {
        sum += static_cast<uint16_t>(~old[i]);
        sum += new_[i];
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

struct rewrite_to {
    rte_ether_addr src_mac;
    rte_ether_addr dst_mac;
    uint32_t src_ip_be;
    uint32_t dst_ip_be;
    uint16_t src_port_be;
    uint16_t dst_port_be;
};

// Rewrites a classified IPv4/UDP frame (l3/l4 offsets from classify) in place.
// The IPv4 checksum is recomputed. The UDP checksum is updated incrementally
// (RFC 1624, a few ns) when the port verified it on receive
// (RTE_MBUF_F_RX_L4_CKSUM_GOOD) and nothing changed the payload since — a
// stage that rewrites the payload (SRTP) clears that flag. Otherwise it is
// computed in full: kernels with checksum offload (veth, af_packet, virtio)
// hand over frames whose UDP checksum field holds only the pseudo-header sum.
inline void rewrite_udp4(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off, const rewrite_to& to) noexcept
{
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4_off);
    const bool incremental = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
                                     RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
                             udp->dgram_cksum != 0;
    uint16_t old_w[6];
    __builtin_memcpy(&old_w[0], &ip->src_addr, 4);
    __builtin_memcpy(&old_w[2], &ip->dst_addr, 4);
    old_w[4] = udp->src_port;
    old_w[5] = udp->dst_port;

    ip->src_addr = to.src_ip_be;
    ip->dst_addr = to.dst_ip_be;
    ip->time_to_live = 64;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);

    udp->src_port = to.src_port_be;
    udp->dst_port = to.dst_port_be;
    if (incremental) {
        uint16_t new_w[6];
        __builtin_memcpy(&new_w[0], &ip->src_addr, 4);
        __builtin_memcpy(&new_w[2], &ip->dst_addr, 4);
        new_w[4] = udp->src_port;
        new_w[5] = udp->dst_port;
        const uint16_t ck = cksum_adjust(udp->dgram_cksum, old_w, new_w, 6);
        udp->dgram_cksum = ck == 0 ? 0xffff : ck;
    } else {
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
    }

    rte_ether_addr_copy(&to.dst_mac, &eth->dst_addr);
    rte_ether_addr_copy(&to.src_mac, &eth->src_addr);
    // No offload requested; but keep the flags that say who owns the data
    // buffer (external/indirect), or the free would treat it as direct.
    m->ol_flags &= RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
}

} // namespace isar::dp
