#include "dataplane/classify.h"

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/cksum.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/turn_alloc.h"
#include "turn/stun.h"

namespace isar::dp {

namespace {
// ICMP destination unreachable (3), time exceeded (11) or parameter problem
// (12) whose quoted datagram is TCP.
inline bool icmp_error_about_tcp(const rte_mbuf* m, uint32_t l4, uint32_t l4_len) noexcept
{
    if (l4_len < 8 + sizeof(rte_ipv4_hdr))
        return false;
    const auto* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, l4);
    return (p[0] == 3 || p[0] == 11 || p[0] == 12) && p[8 + 9] == IPPROTO_TCP;
}

// An IPv4 destination other than the interface's first IPv4 address: one of
// its other IPv4 slots (at most 8 compares)?
inline bool match_laddr4(const classify_ctx& ctx, const iface& ifc, uint32_t dst_be,
                         pkt_meta& meta) noexcept
{
    for (unsigned i = ifc.laddr_first; i < unsigned{ifc.laddr_first} + ifc.nladdr; i++) {
        const local_addr& a = ctx.laddrs[i];
        if (a.family == 4 && a.ip4_be == dst_be && dst_be != 0) {
            meta.laddr = static_cast<uint16_t>(i);
            return true;
        }
    }
    return false;
}

// The worker owning UDP port `port` of slot `laddr`: the slot's map (the
// NIC's RSS, ownership.h), else the pairs rule.
inline uint16_t port_owner(const classify_ctx& ctx, uint16_t laddr, uint16_t port) noexcept
{
    const uint8_t* m = ctx.port_owner != nullptr ? ctx.port_owner[laddr] : nullptr;
    return m != nullptr ? m[port] : static_cast<uint16_t>(owner_of_port(port, ctx.nworkers));
}

// To the kernel interface, without Ethernet padding (frame_len: Ethernet
// header + IPv4 total length).
inline void to_kernel(rte_mbuf* m, uint32_t len, uint32_t frame_len, pkt_meta& meta) noexcept
{
    if (frame_len < len)
        rte_pktmbuf_trim(m, static_cast<uint16_t>(len - frame_len));
    meta.v = verdict::kernel;
}
} // namespace

// What a leg does with a payload that is not RTP/RTCP (and what a port that
// is no relay port does with anything): STUN and DTLS to control, the rest
// dropped.
void classify_non_rtp(payload_class pc, pkt_meta& meta) noexcept
{
    switch (pc) {
    case payload_class::stun:
        set_exc(meta, exc_kind::stun);
        return;
    case payload_class::dtls:
        set_exc(meta, exc_kind::dtls);
        return;
    case payload_class::rtp_short:
        set_drop(meta, drop::rtp_short);
        return;
    default:
        set_drop(meta, drop::not_rtp);
        return;
    }
}

static void classify_non_relay(const classify_ctx& ctx, uint16_t dport, pkt_meta& meta) noexcept
{
    if (meta.pclass != payload_class::rtp) {
        classify_non_rtp(meta.pclass, meta);
        return;
    }
    meta.v = verdict::lookup;
    meta.key = flow_key(meta.laddr, dport);
    meta.owner = port_owner(ctx, meta.laddr, dport);
}

// A TURN listener port: ChannelData and Send indications are the fast path
// (owned by the allocation's worker), every other STUN message goes to
// control through the policed TURN ring.
static void classify_turn(const classify_ctx& ctx, uint32_t src_ip_be, uint16_t src_port_be,
                   const uint8_t* p, uint32_t len, pkt_meta& meta) noexcept
{
    if (len >= 4 && (p[0] & 0xc0) == 0x40) { // ChannelData: 0x4000-0x7fff (turn::channel_min)
        meta.v = verdict::turn_client;
        meta.channel_data = true;
    } else if (len >= 20 && p[0] <= 3 && ((p[0] << 8) | p[1]) == turn::send_indication_type) {
        meta.v = verdict::turn_client;
        meta.channel_data = false;
    } else if (meta.pclass == payload_class::stun) {
        set_exc(meta, exc_kind::turn);
        return;
    } else {
        set_drop(meta, drop::turn_malformed);
        return;
    }
    meta.owner = static_cast<uint16_t>(owner_of_client(src_ip_be, src_port_be, ctx.nworkers));
}

// Not UDP, to our address: ICMP is control's, except errors about TCP;
// TCP is the kernel's where it has an interface and wants it; the rest drops.
static inline void classify_not_udp(const classify_ctx& ctx, const iface& ifc, rte_mbuf* m,
                                    uint32_t len, uint32_t l4, uint32_t ihl, uint32_t tot,
                                    uint8_t proto, pkt_meta& meta) noexcept
{
    constexpr uint32_t l3 = sizeof(rte_ether_hdr);
    if (proto == IPPROTO_ICMP) {
        // An ICMP error quoting TCP (fragmentation needed, unreachable, time
        // exceeded) is about one of the kernel's connections: only the
        // kernel sends TCP. It needs them (path MTU discovery); the rest of
        // ICMP is control's.
        if (ifc.kernel && icmp_error_about_tcp(m, l4, tot - ihl)) {
            meta.l4_off = static_cast<uint16_t>(l4);
            to_kernel(m, len, l3 + tot, meta);
            return;
        }
        set_exc(meta, exc_kind::icmp);
        return;
    }
    if (proto == IPPROTO_TCP && ifc.kernel && tot >= ihl + 4) {
        // The kernel terminates TCP: TURN over TCP/TLS, and with
        // kernel_forward = "all" whatever else the box serves (SSH, ...).
        const uint16_t dport = be16(*rte_pktmbuf_mtod_offset(m, const rte_be16_t*, l4 + 2));
        if (ifc.kernel_all || ctx.is_stream_port(dport)) {
            meta.l4_off = static_cast<uint16_t>(l4);
            to_kernel(m, len, l3 + tot, meta);
            return;
        }
    }
    set_drop(meta, drop::not_udp);
}

// A valid UDP datagram to our address: by its destination port, a TURN
// listener, the kernel's, a relay port (lookup) or a non-relay port.
[[gnu::always_inline]] static inline void
classify_udp_port(const classify_ctx& ctx, const iface& ifc, uint32_t src_ip_be,
                  const rte_udp_hdr* udp, const uint8_t* pl, uint32_t plen, pkt_meta& meta) noexcept
{
    const uint16_t dport = be16(udp->dst_port);
    if (ctx.nturn_ports != 0 && ctx.is_turn_port(dport)) {
        classify_turn(ctx, src_ip_be, udp->src_port, pl, plen, meta);
        return;
    }
    if (ifc.kernel_all && meta.family == 4 && (dport < ctx.relay_min || dport > ctx.relay_max)) {
        // Neither a relay nor a TURN port: the box's own UDP (DNS answers,
        // NTP, ...) with kernel_forward = "all" (the kernel interface is
        // IPv4 only).
        meta.v = verdict::kernel;
        return;
    }
    if (dport >= ctx.relay_min && dport <= ctx.relay_max) {
        // A relay port: a leg takes RTP/RTCP only (worker::non_rtp_on_leg
        // decides the rest once the lookup says it is a leg), a TURN
        // allocation relays anything.
        meta.v = verdict::lookup;
        meta.key = flow_key(meta.laddr, dport);
        meta.owner = port_owner(ctx, meta.laddr, dport);
        return;
    }
    classify_non_relay(ctx, dport, meta);
}

void classify_udp_dst(const classify_ctx& ctx, const iface& ifc, uint32_t src_key,
                      const rte_udp_hdr* udp, const uint8_t* pl, uint32_t plen,
                      pkt_meta& meta) noexcept
{
    classify_udp_port(ctx, ifc, src_key, udp, pl, plen, meta);
}

void classify_one(const classify_ctx& ctx, rte_mbuf* m, pkt_meta& meta) noexcept
{
    meta = pkt_meta{}; // the caller's may be the last packet's (worker::burst_meta_)
    const uint32_t len = rte_pktmbuf_data_len(m);
    if (m->nb_segs != 1) {
        set_drop(meta, drop::multi_seg);
        return;
    }
    if (len < sizeof(rte_ether_hdr)) {
        set_drop(meta, drop::bad_l2);
        return;
    }
    if (m->port >= ctx.nports || ctx.iface_of_port[m->port] < 0) {
        set_drop(meta, drop::not_for_us);
        return;
    }
    meta.iface = static_cast<uint16_t>(ctx.iface_of_port[m->port]);
    const iface& ifc = ctx.ifaces[meta.iface];

    auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const uint16_t et = eth->ether_type;
    if (et == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
        set_exc(meta, exc_kind::arp);
        return;
    }
    if (et == RTE_BE16(RTE_ETHER_TYPE_IPV6)) {
        classify_ip6(ctx, ifc, m, len, meta);
        return;
    }
    if (et != RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        set_drop(meta, drop::odd_ethertype);
        return;
    }

    constexpr uint32_t l3 = sizeof(rte_ether_hdr);
    if (len < l3 + sizeof(rte_ipv4_hdr)) {
        set_drop(meta, drop::bad_ip);
        return;
    }
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3);
    const uint32_t ihl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
    const uint32_t tot = be16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || tot < ihl ||
        l3 + tot > len) {
        set_drop(meta, drop::bad_ip);
        return;
    }
    // The port's verdict where it gave one, else a valid header sums to 0xffff.
    const uint64_t ipck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    if (ipck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
        (ipck != RTE_MBUF_F_RX_IP_CKSUM_GOOD && !ipv4_hdr_sum_ok(ip, ihl))) {
        set_drop(meta, drop::bad_ip_cksum);
        return;
    }
    if ((ip->fragment_offset &
         rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        set_drop(meta, drop::ip_fragment);
        return;
    }
    // The destination's slot: the interface's first IPv4 address (in its
    // own line: one compare), else any other IPv4 slot of it.
    if (ip->dst_addr == ifc.ip_be && ifc.ip_be != 0) {
        meta.laddr = ifc.laddr4;
    } else if (!match_laddr4(ctx, ifc, ip->dst_addr, meta)) {
        set_drop(meta, drop::not_for_us);
        return;
    }
    meta.family = 4;
    meta.l3_off = l3;
    const uint32_t l4 = l3 + ihl;
    if (ip->next_proto_id != IPPROTO_UDP) {
        classify_not_udp(ctx, ifc, m, len, l4, ihl, tot, ip->next_proto_id, meta);
        return;
    }
    if (tot < ihl + sizeof(rte_udp_hdr)) {
        set_drop(meta, drop::bad_udp);
        return;
    }
    auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, l4);
    const uint32_t ulen = be16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || ulen != tot - ihl) {
        set_drop(meta, drop::bad_udp);
        return;
    }
    if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
        set_drop(meta, drop::bad_udp_cksum);
        return;
    }
    meta.l4_off = static_cast<uint16_t>(l4);
    // Drop Ethernet padding so that what we forward is exactly the datagram.
    if (l3 + tot < len)
        rte_pktmbuf_trim(m, static_cast<uint16_t>(len - (l3 + tot)));

    const uint32_t plen = ulen - sizeof(rte_udp_hdr);
    const uint8_t* pl = rte_pktmbuf_mtod_offset(m, const uint8_t*, l4 + sizeof(rte_udp_hdr));
    const payload_class pc = payload_class_of(pl, plen);
    meta.pclass = pc;
    classify_udp_port(ctx, ifc, ip->src_addr, udp, pl, plen, meta);
}

} // namespace isar::dp
