// isar-bench's packet building and checking (packets.h).
#include "bench/load/packets.h"

#include <cstring>
#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>

namespace isar::bench_pkt {

void write_udp(uint8_t* p, const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac,
               const endpoint& src, const endpoint& dst, size_t len)
{
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    eth->dst_addr = dst_mac;
    eth->src_addr = src_mac;
    const uint16_t udp_len = static_cast<uint16_t>(8 + len);
    rte_udp_hdr* udp;
    if (src.family == 6) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | 0xb8u << 20); // EF
        ip->payload_len = rte_cpu_to_be_16(udp_len);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        memcpy(ip->src_addr, src.ip6.b, 16);
        memcpy(ip->dst_addr, dst.ip6.b, 16);
        udp = reinterpret_cast<rte_udp_hdr*>(p + 54);
        udp->src_port = src.port_be;
        udp->dst_port = dst.port_be;
        udp->dgram_len = rte_cpu_to_be_16(udp_len);
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip, udp);
        return;
    }
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    ip->version_ihl = 0x45;
    ip->type_of_service = 0xb8;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + udp_len));
    ip->packet_id = 0;
    ip->fragment_offset = rte_cpu_to_be_16(0x4000);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = src.ip4_be;
    ip->dst_addr = dst.ip4_be;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp = reinterpret_cast<rte_udp_hdr*>(p + 34);
    udp->src_port = src.port_be;
    udp->dst_port = dst.port_be;
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    // No RX checksum flags on the bench's ports: the worker sums the IPv4
    // header itself and updates the UDP checksum incrementally.
    udp->dgram_cksum = 0;
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

namespace {

// The UDP checksum must be present (the relay always writes one; over IPv6
// it is mandatory) and verify over the pseudo-header.
template <class Hdr, class Fn>
bool udp_cksum_ok(Hdr* ip, rte_udp_hdr* udp, Fn sum)
{
    const uint16_t ck = udp->dgram_cksum;
    if (ck == 0)
        return false;
    udp->dgram_cksum = 0;
    const uint16_t want = sum(ip, udp);
    udp->dgram_cksum = ck;
    return ck == want;
}

const char* parse6(uint8_t* p, size_t frame_len, udp_view& v)
{
    if (frame_len < hdr6)
        return "short IPv6 frame";
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 54);
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || ip->proto != IPPROTO_UDP)
        return "not IPv6/UDP";
    const size_t pl = rte_be_to_cpu_16(ip->payload_len);
    if (pl != frame_len - 54 || rte_be_to_cpu_16(udp->dgram_len) != pl || pl < 8)
        return "IPv6 payload length or UDP length does not match the frame";
    if (ip->hop_limits != 64)
        return "IPv6 hop limit not 64";
    if (!udp_cksum_ok(ip, udp, [](const rte_ipv6_hdr* i, const rte_udp_hdr* u) {
            return rte_ipv6_udptcp_cksum(i, u);
        }))
        return "bad or missing UDP checksum (IPv6)";
    v.src.family = v.dst.family = 6;
    memcpy(v.src.ip6.b, ip->src_addr, 16);
    memcpy(v.dst.ip6.b, ip->dst_addr, 16);
    v.src.port_be = udp->src_port;
    v.dst.port_be = udp->dst_port;
    v.payload = p + hdr6;
    v.len = pl - 8;
    return nullptr;
}

const char* parse4(uint8_t* p, size_t frame_len, udp_view& v)
{
    if (frame_len < hdr4)
        return "short IPv4 frame";
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 34);
    if (ip->version_ihl != 0x45 || ip->next_proto_id != IPPROTO_UDP)
        return "not IPv4/UDP (or IPv4 options)";
    const size_t tl = rte_be_to_cpu_16(ip->total_length);
    if (tl != frame_len - 14 || rte_be_to_cpu_16(udp->dgram_len) != tl - 20)
        return "IPv4 total length or UDP length does not match the frame";
    if (rte_raw_cksum(ip, 20) != 0xffff)
        return "bad IPv4 checksum";
    if (!udp_cksum_ok(ip, udp, [](const rte_ipv4_hdr* i, const rte_udp_hdr* u) {
            return rte_ipv4_udptcp_cksum(i, u);
        }))
        return "bad or missing UDP checksum";
    v.src.family = v.dst.family = 4;
    v.src.ip4_be = ip->src_addr;
    v.dst.ip4_be = ip->dst_addr;
    v.src.port_be = udp->src_port;
    v.dst.port_be = udp->dst_port;
    v.payload = p + hdr4;
    v.len = tl - 28;
    return nullptr;
}

} // namespace

const char* parse_check(uint8_t* p, size_t frame_len, udp_view& v)
{
    if (frame_len < 14)
        return "short frame";
    const auto* eth = reinterpret_cast<const rte_ether_hdr*>(p);
    v.src_mac = eth->src_addr;
    v.dst_mac = eth->dst_addr;
    switch (rte_be_to_cpu_16(eth->ether_type)) {
    case RTE_ETHER_TYPE_IPV4:
        return parse4(p, frame_len, v);
    case RTE_ETHER_TYPE_IPV6:
        return parse6(p, frame_len, v);
    default:
        return "not IPv4 or IPv6";
    }
}

} // namespace isar::bench_pkt
