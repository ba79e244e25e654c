// Header rewrite for a forwarded packet: Ethernet, IPv4 and UDP.
#pragma once

#include <cstdint>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/cksum.h"

namespace isar::dp {

struct rewrite_to {
    // In the frame's order: rewrite_udp4 stores both with one 12-byte copy.
    rte_ether_addr dst_mac;
    rte_ether_addr src_mac;
    uint32_t src_ip_be;
    uint32_t dst_ip_be;
    uint16_t src_port_be;
    uint16_t dst_port_be;
};

// How rewrite_udp4 brings the UDP checksum up to date.
enum class udp_cksum : uint8_t {
    update,  // RFC 1624 incremental update of the incoming checksum
    none,    // the sender sent none (0, RFC 768): neither do we
    compute, // a full sum in software
    offload, // the port computes it on transmit
};

// The cheapest correct way for one output packet. A payload that was not
// changed keeps its checksum, updated for the new addresses and ports: a
// correct one stays correct and a corrupt one stays corrupt for the receiver
// to reject, as through any router or NAT (a port that flags it bad never
// gets here: classify drops it). That needs a real checksum on receive,
// which every NIC delivers; a local kernel behind net_af_packet may hand
// over only the pseudo-header sum (`rx_partial`), and a port may flag the
// field as not a checksum (RX_L4_CKSUM_NONE: virtio, vhost), so there, unless
// the port verified it, the sum is recomputed. A changed payload (SRTP) always needs
// a new sum: the port's offload if it has one, else software.
inline udp_cksum choose_udp_cksum(const rte_mbuf* m, const rte_udp_hdr* udp, bool payload_changed,
                                  bool rx_partial, bool tx_offload) noexcept
{
    if (!payload_changed) {
        if (udp->dgram_cksum == 0)
            return udp_cksum::none;
        const uint64_t rx = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
        // NONE: the port says the field is not a checksum (a virtio peer's
        // partial sum, say): it must be computed, like on rx_partial ports.
        if (rx == RTE_MBUF_F_RX_L4_CKSUM_GOOD ||
            (!rx_partial && rx != RTE_MBUF_F_RX_L4_CKSUM_NONE))
            return udp_cksum::update;
    }
    return tx_offload ? udp_cksum::offload : udp_cksum::compute;
}

// fold64: dataplane/cksum.h.

// The IPv4 header checksum over `ihl` bytes (a multiple of 4, at least 20),
// with the checksum field taken as 0.
inline uint16_t ipv4_hdr_cksum(const rte_ipv4_hdr* ip, uint32_t ihl) noexcept
{
    const auto* p = reinterpret_cast<const uint8_t*>(ip);
    uint64_t s = 0;
    for (uint32_t off = 0; off < ihl; off += 4) {
        uint32_t w;
        __builtin_memcpy(&w, p + off, 4);
        s += w;
    }
    s -= ip->hdr_checksum; // as if it were 0
    const uint16_t c = static_cast<uint16_t>(~fold64(s));
    return c;
}

// The IPv4 header checksum of `ip` once its TTL, source and destination are
// replaced by `ttl`, `src_be` and `dst_be`, from words read before any of
// them is stored: summing a header just written with narrower stores (the
// TTL byte, the checksum) would wait for each store to retire instead of
// forwarding it (measured: a fifth of the plain path's cycles).
inline uint16_t ipv4_hdr_cksum_with(const rte_ipv4_hdr* ip, uint32_t ihl, uint32_t src_be,
                                    uint32_t dst_be, uint8_t ttl) noexcept
{
    const auto* p = reinterpret_cast<const uint8_t*>(ip);
    uint32_t w0, w1;
    __builtin_memcpy(&w0, p, 4);     // version/IHL, TOS, total length
    __builtin_memcpy(&w1, p + 4, 4); // id, fragment
    // TTL and protocol as the 16-bit word they form in the header; the
    // checksum field counts as 0.
    const uint16_t ttl_proto = to_be16(static_cast<uint16_t>(ttl << 8 | ip->next_proto_id));
    uint64_t s = uint64_t{w0} + w1 + ttl_proto + src_be + dst_be;
    for (uint32_t off = sizeof(rte_ipv4_hdr); off < ihl; off += 4) { // options
        uint32_t w;
        __builtin_memcpy(&w, p + off, 4);
        s += w;
    }
    return static_cast<uint16_t>(~fold64(s));
}

// After the payload changed length: the IPv4 total length and the UDP length
// (the checksums are brought up to date by rewrite_udp4).
inline void set_payload_len(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off,
                            uint32_t plen) noexcept
{
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4_off);
    const uint32_t ulen = plen + static_cast<uint32_t>(sizeof(rte_udp_hdr));
    ip->total_length = to_be16(static_cast<uint16_t>(l4_off - l3_off + ulen));
    udp->dgram_len = to_be16(static_cast<uint16_t>(ulen));
}

// What a rewrite's checksums take from the header it replaces, summed once
// for several copies of one packet (fan-out): the IPv4 header's words that
// stay (all but the addresses, the TTL/protocol word and the checksum) with
// the new TTL, and, for udp_cksum::update, the complements of the old UDP
// checksum, addresses and ports (RFC 1624). rewrite_udp4 then adds only the
// new addresses and ports, instead of reading the old header again. `ck`:
// choose_udp_cksum()'s answer for a port without TX offload (update, none
// or compute), set by the caller; a port with it turns compute into offload.
struct rewrite_sums {
    uint64_t ip;
    uint64_t udp;
    udp_cksum ck;
};

// The sums for a rewrite of `ip`/`udp` (IHL `ihl`, as classify found it) to
// TTL `ttl`; the header is read, not written.
inline rewrite_sums rewrite_sums_of(const rte_ipv4_hdr* ip, const rte_udp_hdr* udp, uint32_t ihl,
                                    uint8_t ttl) noexcept
{
    const auto* p = reinterpret_cast<const uint8_t*>(ip);
    uint32_t w0, w1;
    __builtin_memcpy(&w0, p, 4);
    __builtin_memcpy(&w1, p + 4, 4);
    rewrite_sums r{};
    r.ip = uint64_t{w0} + w1 + to_be16(static_cast<uint16_t>(ttl << 8 | ip->next_proto_id));
    for (uint32_t off = sizeof(rte_ipv4_hdr); off < ihl; off += 4) { // options
        uint32_t w;
        __builtin_memcpy(&w, p + off, 4);
        r.ip += w;
    }
    r.udp = uint64_t{static_cast<uint16_t>(~udp->dgram_cksum)} + uint64_t{~ip->src_addr} +
            uint64_t{~ip->dst_addr} + uint64_t{static_cast<uint16_t>(~udp->src_port)} +
            uint64_t{static_cast<uint16_t>(~udp->dst_port)};
    return r;
}

// Rewrites a classified IPv4/UDP frame (l3/l4 offsets from classify) in place:
// addresses, ports, TTL, the IPv4 checksum and the UDP checksum as `ck` says.
// Always inlined: its callers' `to` then stays in registers and `ck` is
// mostly known (callgrind, plain at 1k legs: 17 of 786 instructions a packet
// fewer). `sums`: the old header's, from rewrite_sums_of() with TTL 64 (a
// copy of a packet whose sums were taken before any copy was rewritten),
// else nullptr: the header is read here.
[[gnu::always_inline]] inline void rewrite_udp4(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off,
                                                const rewrite_to& to, udp_cksum ck,
                                                const rewrite_sums* sums = nullptr) noexcept
{
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4_off);
    const uint32_t old_src = ip->src_addr, old_dst = ip->dst_addr;
    const uint16_t old_sport = udp->src_port, old_dport = udp->dst_port;
    const uint16_t old_uck = udp->dgram_cksum;
    // Every read of the old header before the first store (see
    // ipv4_hdr_cksum_with).
    const uint16_t ip_ck =
            sums != nullptr
                    ? static_cast<uint16_t>(~fold64(sums->ip + to.src_ip_be + to.dst_ip_be))
                    : ipv4_hdr_cksum_with(ip, l4_off - l3_off, to.src_ip_be, to.dst_ip_be, 64);

    ip->src_addr = to.src_ip_be;
    ip->dst_addr = to.dst_ip_be;
    ip->time_to_live = 64;
    ip->hdr_checksum = ip_ck;
    udp->src_port = to.src_port_be;
    udp->dst_port = to.dst_port_be;

    // Keep only the flags that say who owns the data buffer
    // (external/indirect), or the free would treat it as direct.
    uint64_t ol = m->ol_flags & (RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT);
    switch (ck) {
    case udp_cksum::update: {
        // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over every changed word.
        const uint64_t old = sums != nullptr
                                     ? sums->udp
                                     : uint64_t{static_cast<uint16_t>(~old_uck)} +
                                               uint64_t{~old_src} + uint64_t{~old_dst} +
                                               uint64_t{static_cast<uint16_t>(~old_sport)} +
                                               uint64_t{static_cast<uint16_t>(~old_dport)};
        const uint64_t s =
                old + to.src_ip_be + to.dst_ip_be + to.src_port_be + to.dst_port_be;
        const uint16_t c = static_cast<uint16_t>(~fold64(s));
        udp->dgram_cksum = c == 0 ? 0xffff : c;
        break;
    }
    case udp_cksum::none:
        break;
    case udp_cksum::compute:
        udp->dgram_cksum = 0;
        udp->dgram_cksum = ipv4_udp_cksum(ip, udp);
        break;
    case udp_cksum::offload:
        ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
        m->l2_len = l3_off;
        m->l3_len = l4_off - l3_off;
        ip->hdr_checksum = 0; // the port's to fill in
        udp->dgram_cksum = ipv4_phdr_sum(ip); // rte_ipv4_phdr_cksum(ip, ol): no TSO here
        break;
    }
    m->ol_flags = ol;

    static_assert(offsetof(rewrite_to, src_mac) == offsetof(rewrite_to, dst_mac) + RTE_ETHER_ADDR_LEN &&
                  offsetof(rte_ether_hdr, src_addr) == offsetof(rte_ether_hdr, dst_addr) + RTE_ETHER_ADDR_LEN);
    __builtin_memcpy(&eth->dst_addr, &to.dst_mac, 2 * RTE_ETHER_ADDR_LEN);
}

} // namespace isar::dp
