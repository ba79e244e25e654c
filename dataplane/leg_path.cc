// The per-packet path of a leg's common case (worker::forward_fast: line 0
// and the RTP line of the receiving leg, nothing else), the copies in line 0
// it reads (worker::refresh_hot) and the prefetches of the others (see
// leg.h). Hot path: no allocation, lock, syscall or log.
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "crypto/srtp_context.h"
#include "dataplane/rewrite.h"
#include "dataplane/rewrite6.h"
#include "dataplane/worker.h"

namespace isar::dp {

bool resolve_fwd_mac(leg& l, const iface& out, packed_ep dst) noexcept
{
    const uint32_t gen = out.neigh->generation4();
    const uint32_t nh = out.next_hop(ep_ip(dst));
    if (nh == 0 || !out.neigh->lookup(nh, &l.fwd_mac))
        return false;
    l.fwd_nb_gen = gen;
    return true;
}

// resolve_fwd_mac for an IPv6 leg: towards fwd_remote6, at generation6.
bool worker::resolve_fwd_mac6(leg& l, const iface& out) const noexcept
{
    const uint32_t gen = out.neigh->generation6();
    ip6_addr nh;
    if (!next_hop6(out, l.fwd_remote6, nh) || !out.neigh->lookup6(nh, &l.fwd_mac))
        return false;
    l.fwd_nb_gen = gen;
    return true;
}

void worker::refresh_hot(leg& l, leg* peers) noexcept
{
    const bool was_fast = (l.hot & hot_fast) != 0;
    uint8_t hot = static_cast<uint8_t>((l.rtp_mult != 0 ? hot_own_clock : 0) |
                                       (l.in_ctx != nullptr ? hot_srtp : 0) |
                                       (l.rl_interval_tsc != 0 ? hot_rl : 0));
    l.fwd_remote = 0;
    leg* t = l.ntargets == 1 ? &peers[l.target(0)] : nullptr;
    if (t != nullptr) {
        l.fwd_target = static_cast<uint8_t>(l.target(0));
        l.fwd_laddr = t->laddr;
        l.fwd_port_be = t->local_port_be;
        // Any single target's remote (the general path reads it here too,
        // not in the target's line 0); 0: none yet (target_no_remote).
        const packed_ep tr = t->remote.load(std::memory_order_relaxed);
        l.fwd_remote = tr;
        if (ep_is_v6(tr))
            l.fwd_remote6 = t->remote6; // stored before tr (latch, set_remote)
        const bool plain = l.in_ctx == nullptr && t->out_ctx == nullptr && l.laddr < nladdrs &&
                           t->laddr < nladdrs;
        const uint8_t fam = plain ? laddrs[l.laddr].family : 0;
        // Both of one family, and the target's remote (if any) of it too:
        // no translation (control refuses a remote of the other family).
        if (plain && fam == laddrs[t->laddr].family &&
            (tr == 0 || ep_is_v6(tr) == (fam == 6))) {
            hot |= hot_fast | (fam == 6 ? hot_fast6 : 0);
            // Resolved now, so that a call's first packet does not look it up.
            const iface& out = ifaces[laddrs[l.fwd_laddr].iface];
            if (tr != 0 && (fam == 6 ? resolve_fwd_mac6(l, out) : resolve_fwd_mac(l, out, tr)))
                hot |= hot_mac;
        } else if ((l.in_ctx != nullptr || t->out_ctx != nullptr) && l.laddr < nladdrs &&
                   t->laddr < nladdrs && laddrs[l.laddr].family == 4 &&
                   laddrs[t->laddr].family == 4 && !ep_is_v6(tr)) {
            hot |= hot_fast_srtp; // SRTP of an IPv4 call: worker::forward_srtp
            if (tr != 0 && resolve_fwd_mac(l, ifaces[laddrs[l.fwd_laddr].iface], tr))
                hot |= hot_mac;
        }
    }
    // leg_out(): what the fast path forwarded is in_* - unfwd_* of a
    // hot_fast leg; keep the sum right across a change.
    if (t != nullptr && was_fast && !(hot & hot_fast)) {
        bump(t->out_pkts, read(l.ctr.in_pkts) - read(l.unfwd_pkts));
        bump(t->out_bytes, read(l.ctr.in_bytes) - read(l.unfwd_bytes));
    } else if (t != nullptr && !was_fast && (hot & hot_fast)) {
        l.unfwd_pkts.store(read(l.ctr.in_pkts), std::memory_order_relaxed);
        l.unfwd_bytes.store(read(l.ctr.in_bytes), std::memory_order_relaxed);
    }
    __atomic_store_n(&l.hot, hot, __ATOMIC_RELAXED); // control reads hot_fast (leg_out)
    // The flow table's hint (a leg not installed yet gets it on insert).
    flows.set_plain(flow_key(l.laddr, rte_be_to_cpu_16(l.local_port_be)), &l, leg_plain(l));
}

void worker::refresh_hot(session* s) noexcept
{
    for (unsigned i = 0; i < s->nlegs; i++)
        refresh_hot(s->legs[i], s->legs.get());
}

bool worker::forward_fast6(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept
{
    const packed_ep dst = l->fwd_remote;
    // The rate limit stays with forward() for IPv6 legs.
    if ((l->hot & (hot_fast | hot_fast6 | hot_rl)) != (hot_fast | hot_fast6) || dst == 0)
        return false;
    const auto* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    ip6_addr src6;
    std::memcpy(src6.b, ip + 8, 16);
    // The packed digest is only a candidate: the whole address too (line 7).
    const packed_ep src = pack_ep6(src6, udp->src_port);
    if (src != l->remote.load(std::memory_order_relaxed) || !(l->remote6 == src6))
        return false; // latching, or strict source: forward() decides
    const local_addr& la = laddrs[l->fwd_laddr];
    const iface& out = ifaces[la.iface];
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    // The size it leaves with (a fresh header, no extension headers).
    if (out.mtu != 0 && len - meta.l4_off + sizeof(rte_ipv6_hdr) > out.mtu)
        return false;
    if (!(l->hot & hot_mac) || l->fwd_nb_gen != out.neigh->generation6()) {
        if (!resolve_fwd_mac6(*l, out)) {
            l->hot &= static_cast<uint8_t>(~hot_mac);
            return false; // no route, or held for ND: forward() does that
        }
        l->hot |= hot_mac;
    }
    count_in_fast(l, m, meta, len);

    rewrite6_to to;
    to.src_mac = out.mac;
    to.dst_mac = l->fwd_mac;
    to.src6 = la.ip6;
    to.dst6 = l->fwd_remote6;
    to.src_port_be = l->fwd_port_be;
    to.dst_port_be = ep_port(dst);
    const udp_cksum ck = choose_udp_cksum(m, udp, false, ifaces[meta.iface].rx_partial_cksum,
                                          out.tx_cksum_offload);
    pkt_meta mm = meta;
    if (!rewrite_udp6(m, mm, to, ck)) { // never with DPDK's headroom
        bump(l->unfwd_pkts); // counted as received, not forwarded (leg_out)
        bump(l->unfwd_bytes, len);
        l->first_leg()[l->fwd_target].stats.drop_pkt(drop::no_mbuf);
        drop_pkt(m, drop::no_mbuf);
        return true;
    }
    tx_enqueue(la.iface, m);
    bump(stats.fwd_pkts);
    return true;
}

void worker::prefetch_ahead(const rte_mbuf* m, const leg* l) noexcept
{
    if (!(l->hot & hot_srtp) && l->ntargets <= 1)
        return;
    // The key schedules' lines a packet reads (prefetch_leg_ctx asked for
    // the contexts' first lines, which list them).
    if ((l->hot & hot_srtp) && l->in_ctx != nullptr) {
        l->in_ctx->prefetch();
        if (!l->verify_only && l->target_mask != 0) {
            const leg* t = l->first_leg() + __builtin_ctz(l->target_mask);
            if (t->out_ctx != nullptr)
                t->out_ctx->prefetch();
        }
    }
    const auto* d = rte_pktmbuf_mtod(m, const char*);
    const uint32_t len = rte_pktmbuf_data_len(m);
    // At most a 1500-byte frame's lines: the hardware streams a jumbo's rest.
    for (uint32_t off = payload_lines_early * 64; off < len && off < 24 * 64; off += 64)
        rte_prefetch0(d + off);
}

} // namespace isar::dp
