// Header rewrite for a forwarded packet: Ethernet, IPv4 and UDP.
#pragma once

#include <cstdint>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

namespace isar::dp {

struct rewrite_to {
    rte_ether_addr src_mac;
    rte_ether_addr dst_mac;
    uint32_t src_ip_be;
    uint32_t dst_ip_be;
    uint16_t src_port_be;
    uint16_t dst_port_be;
};

// Rewrites a classified IPv4/UDP frame (l3/l4 offsets from classify) in place,
// recomputing both checksums. The UDP checksum is computed in full rather than
// updated incrementally: packets from a kernel with checksum offload (veth,
// af_packet, virtio) arrive with only the pseudo-header sum in that field.
inline void rewrite_udp4(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off, const rewrite_to& to) noexcept
{
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4_off);

    ip->src_addr = to.src_ip_be;
    ip->dst_addr = to.dst_ip_be;
    ip->time_to_live = 64;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);

    udp->src_port = to.src_port_be;
    udp->dst_port = to.dst_port_be;
    udp->dgram_cksum = 0;
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);

    rte_ether_addr_copy(&to.dst_mac, &eth->dst_addr);
    rte_ether_addr_copy(&to.src_mac, &eth->src_addr);
    m->ol_flags = 0;
}

} // namespace isar::dp
