// The send path's bodies: worker::send_to, emit_ep and emit (IPv4) as
// always-inlined functions. worker.cc and emit6.cc define the out-of-line
// functions with them; fan_out (fanout.cc) inlines them into its loop over
// a packet's copies, which saves three calls, their register saves and
// restores, and a reload of what the loop already holds, for every copy
// (bench/load/instructions.sh, fanout10). Include only from those files.
#pragma once

#include "dataplane/worker.h"

namespace isar::dp {

[[gnu::always_inline]] inline drop worker::emit_inl(rte_mbuf* m, const pkt_meta& meta, unsigned ifc,
                                                     uint32_t src_ip_be, uint16_t src_port_be,
                                                     packed_ep dst, udp_cksum ck,
                                                     const rewrite_sums* sums) noexcept
{
    const iface& out = ifaces[ifc];
    // SRTP (trailer) and TURN (framing) grow packets: never send one the
    // port's MTU does not allow.
    if (out.mtu != 0 && rte_pktmbuf_pkt_len(m) - meta.l3_off > out.mtu) {
        drop_pkt(m, drop::mtu_exceeded);
        return drop::mtu_exceeded;
    }
    const uint32_t nh = out.next_hop(ep_ip(dst));
    if (nh == 0) {
        drop_pkt(m, drop::no_route);
        return drop::no_route;
    }
    rewrite_to to;
    to.src_mac = out.mac;
    to.src_ip_be = src_ip_be;
    to.dst_ip_be = ep_ip(dst);
    to.src_port_be = src_port_be;
    to.dst_port_be = ep_port(dst);
    // The next hop's MAC from the interface's memo, while the neighbour
    // table has not changed since it was read (a gateway: every remote
    // behind it; on a LAN: a conference's receivers, see nh_memo).
    nh_memo& memo = memo_of(ifc, nh);
    const uint32_t gen = out.neigh->generation4();
    bool resolved = memo.ip_be == nh && memo.gen == gen && nh != 0;
    if (resolved) {
        to.dst_mac = memo.mac;
    } else {
        resolved = out.neigh->lookup(nh, &to.dst_mac);
        if (resolved) {
            memo.ip_be = nh;
            memo.gen = gen;
            memo.mac = to.dst_mac;
        }
    }
    if (!resolved)
        to.dst_mac = out.mac; // placeholder; control fills it in
    rewrite_udp4(m, meta.l3_off, meta.l4_off, to, ck, sums);
    if (resolved) {
        tx_enqueue(ifc, m);
    } else {
        m->port = out.port_id;
        to_control(m, exc_kind::hold);
    }
    return drop::count;
}

[[gnu::always_inline]] inline drop worker::emit_ep_inl(rte_mbuf* m, const pkt_meta& meta,
                                                        unsigned laddr, uint16_t src_port_be,
                                                        packed_ep dst, const ip6_addr* dst6,
                                                        udp_cksum ck,
                                                        const rewrite_sums* sums) noexcept
{
    const local_addr& la = laddrs[laddr];
    if (la.family == 4 && meta.family == 4 && !ep_is_v6(dst))
        return emit_inl(m, meta, la.iface, la.ip4_be, src_port_be, dst, ck, sums);
    return emit_x(m, meta, la, src_port_be, dst, dst6, ck);
}

[[gnu::always_inline]] inline void worker::send_to_inl(rte_mbuf* m, const pkt_meta& meta, leg* t,
                                                      packed_ep remote, bool protect,
                                                      bool changed,
                                                      const rewrite_sums* sums) noexcept
{
    if (protect && t->out_ctx != nullptr) {
        if (!srtp_out(m, meta, t))
            return;
        changed = true;
        sums = nullptr; // its lengths and checksum changed
    }
    const bool tx_offload = ifaces[t->iface].tx_cksum_offload;
    udp_cksum ck;
    if (sums != nullptr) { // the way chosen once for all copies
        ck = sums->ck == udp_cksum::compute && tx_offload ? udp_cksum::offload : sums->ck;
    } else {
        const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
        ck = choose_udp_cksum(m, udp, changed, ifaces[meta.iface].rx_partial_cksum, tx_offload);
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    const drop d = emit_ep_inl(m, meta, t->laddr, t->local_port_be, remote, &t->remote6, ck, sums);
    if (d != drop::count) {
        t->stats.drop_pkt(d);
        return;
    }
    bump(t->out_pkts);
    bump(t->out_bytes, len);
    bump(stats.fwd_pkts);
}

} // namespace isar::dp
