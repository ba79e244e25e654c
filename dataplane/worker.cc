// The worker's hot path. Nothing here allocates from the heap, takes a lock,
// makes a system call (except the optional idle sleep when there is no work),
// throws or logs per packet: every packet ends as TX, a handoff, an exception
// or a counted drop.
#include "dataplane/worker.h"

#include <cerrno>
#include <cstring>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "crypto/srtp_context.h"
#include "dataplane/rewrite.h"
#include "dataplane/rewrite6.h"
#include "dataplane/send_inl.h"

namespace isar::dp {

namespace {
constexpr unsigned idle_loops_before_sleep = 64;

inline drop srtp_drop(crypto::status st) noexcept
{
    switch (st) {
    case crypto::status::auth_fail:
        return drop::srtp_auth;
    case crypto::status::replay:
        return drop::srtp_replay;
    case crypto::status::too_short:
        return drop::srtp_short;
    case crypto::status::ssrc_limit:
        return drop::srtp_ssrc_limit;
    default:
        return drop::srtp_bad;
    }
}

// rte_pktmbuf_append/trim for the single-segment packets the worker forwards
// (classify drops the others; a fan-out copy is one segment too): without
// their walk to the last segment, which reads m->next in the mbuf's second
// cache line - a miss per SRTP packet.
inline bool append1(rte_mbuf* m, uint16_t n) noexcept
{
    if (m->nb_segs != 1) // never, but a chained copy would need the walk
        return rte_pktmbuf_append(m, n) != nullptr;
    if (n > rte_pktmbuf_tailroom(m))
        return false;
    m->data_len = static_cast<uint16_t>(m->data_len + n);
    m->pkt_len += n;
    return true;
}
inline void trim1(rte_mbuf* m, uint16_t n) noexcept
{
    if (m->nb_segs != 1) {
        rte_pktmbuf_trim(m, n);
        return;
    }
    m->data_len = static_cast<uint16_t>(m->data_len - n);
    m->pkt_len -= n;
}

// crypto::relay_begin() .. relay_end() around one forwarded packet.
struct relay_scope {
    explicit relay_scope(uint8_t source) noexcept { crypto::relay_begin(source); }
    ~relay_scope() { crypto::relay_end(); }
};

// The targets of `l` that have a remote, in leg order, into ready/remotes;
// the others count target_no_remote. A session of up to max_mask_legs legs
// walks the mask in the leg's first line; a larger one its target list.
template <class Stats>
inline unsigned collect_targets(leg* l, leg** ready, packed_ep* remotes, Stats& stats) noexcept
{
    leg* peers = l->first_leg();
    // Every target's line 0 (its remote) and line 7 (how to send to it)
    // first, so that with many legs their misses overlap.
    if (l->ntargets > 1) {
        auto fetch = [](const leg* t) {
            rte_prefetch0(t);
            rte_prefetch0(&t->out_ctx);
        };
        if (l->target_mask != 0) {
            for (unsigned mask = l->target_mask; mask != 0; mask &= mask - 1)
                fetch(&peers[__builtin_ctz(mask)]);
        } else if (l->target_list != nullptr) {
            for (unsigned k = 0; k < l->ntargets; k++)
                fetch(&peers[l->target_list[k]]);
        }
    }
    unsigned n = 0;
    // A single target's remote is copied in our line 0 (fwd_remote).
    auto add = [&](leg* t) {
        const packed_ep tr =
                l->ntargets == 1 ? l->fwd_remote : t->remote.load(std::memory_order_relaxed);
        if (tr == 0) {
            t->stats.drop_pkt(drop::target_no_remote);
            stats.drop_pkt(drop::target_no_remote);
            return;
        }
        ready[n] = t;
        remotes[n] = tr;
        n++;
    };
    if (l->target_mask != 0) {
        for (unsigned mask = l->target_mask; mask != 0; mask &= mask - 1)
            add(&peers[__builtin_ctz(mask)]);
    } else if (l->target_list != nullptr) {
        for (unsigned k = 0; k < l->ntargets; k++)
            add(&peers[l->target_list[k]]);
    }
    return n;
}

} // namespace

void worker::drop_pkt(rte_mbuf* m, drop d) noexcept
{
    stats.drop_pkt(d);
    rte_pktmbuf_free(m);
}

// Which policer an exception falls under; drop reason when over its rate.
bool worker::police_exception(rte_mbuf* m, exc_kind k) noexcept
{
    exc_policer p;
    drop d;
    switch (k) {
    case exc_kind::arp: {
        // ARP addressed to us (replies resolve held packets, requests let
        // peers reach us) has its own, higher, rates: a flood of ARP for other
        // hosts cannot starve it. classify checked only the EtherType.
        p = exc_policer::arp_other;
        d = drop::policed_arp;
        if (rte_pktmbuf_data_len(m) >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
            const auto* arp = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*,
                                                      sizeof(rte_ether_hdr));
            const int ifc = m->port < cctx.nports ? cctx.iface_of_port[m->port] : -1;
            // To any of the interface's IPv4 addresses, and not sent from
            // one of them (our own gratuitous ARP looped back).
            if (ifc >= 0 && ifaces[ifc].is_local4(arp->arp_data.arp_tip) &&
                !ifaces[ifc].is_local4(arp->arp_data.arp_sip)) {
                if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REPLY))
                    p = exc_policer::arp_reply;
                else if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST))
                    p = exc_policer::arp_request;
            }
        }
        break;
    }
    case exc_kind::icmp:
    case exc_kind::icmp6:
        p = exc_policer::icmp;
        d = drop::policed_icmp;
        break;
    case exc_kind::nd:
        p = exc_policer::nd;
        d = drop::policed_nd;
        break;
    case exc_kind::stun:
        p = exc_policer::stun;
        d = drop::policed_stun;
        break;
    case exc_kind::dtls:
        p = exc_policer::dtls;
        d = drop::policed_dtls;
        break;
    default:
        return true; // held packets are our own traffic: bounded by control's hold queues
    }
    if (exc_police[static_cast<unsigned>(p)].allow(now_tsc_))
        return true;
    drop_pkt(m, d);
    return false;
}

// ARP, ND and held packets take the priority ring, which control drains
// first; ICMP, STUN and DTLS the other one, so a flood of those fills only
// theirs.
void worker::to_control(rte_mbuf* m, exc_kind k) noexcept
{
    if (!police_exception(m, k))
        return;
    m->hash.usr = static_cast<uint32_t>(k);
    rte_ring* r = (k == exc_kind::arp || k == exc_kind::nd || k == exc_kind::hold) ? prio_ring
                                                                                    : exc_ring;
    if (rte_ring_sp_enqueue(r, m) != 0) {
        drop_pkt(m, drop::exception_full);
        return;
    }
    bump(k == exc_kind::hold ? stats.held_pkts : stats.exception_pkts);
}

void worker::tx_flush(unsigned ifc) noexcept
{
    send_burst(tx_[ifc], ifaces[ifc].port_id, stats.tx_pkts, stats.tx_bytes, drop::tx_full);
}

// Sends a TX buffer on `port` (this worker's queue), counting what was sent
// and dropping what the queue did not take as `full`.
void worker::send_burst(tx_buffer& b, uint16_t port, counter& pkts, counter& nbytes,
                        drop full) noexcept
{
    if (b.n == 0)
        return;
    // Sum before the burst: the PMD owns (and may already have freed, as
    // af_packet does) every mbuf it accepted.
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < b.n; i++)
        bytes += rte_pktmbuf_pkt_len(b.pkts[i]);
    const uint16_t sent = rte_eth_tx_burst(port, txq, b.pkts, b.n);
    for (uint16_t i = sent; i < b.n; i++)
        bytes -= rte_pktmbuf_pkt_len(b.pkts[i]);
    bump(pkts, sent);
    bump(nbytes, bytes);
    if (sent < b.n) {
        bump(stats.drops[static_cast<unsigned>(full)], b.n - sent);
        rte_pktmbuf_free_bulk(&b.pkts[sent], b.n - sent);
    }
    b.n = 0;
}

// Rewrites `m` for target leg `t` and queues it for TX (or for control when
// the next hop's MAC is not known yet).
void worker::send_to(rte_mbuf* m, const pkt_meta& meta, leg* t, packed_ep remote,
                     bool protect, bool changed) noexcept
{
    send_to_inl(m, meta, t, remote, protect, changed);
}

drop worker::emit(rte_mbuf* m, const pkt_meta& meta, unsigned ifc, uint32_t src_ip_be,
                  uint16_t src_port_be, packed_ep dst, udp_cksum ck) noexcept
{
    return emit_inl(m, meta, ifc, src_ip_be, src_port_be, dst, ck);
}

void worker::non_rtp_on_leg(rte_mbuf* m, const pkt_meta& meta) noexcept
{
    pkt_meta v = meta;
    classify_non_rtp(meta.pclass, v);
    if (v.v == verdict::exception)
        to_control(m, v.exc);
    else
        drop_pkt(m, v.reason);
}

void worker::handoff(rte_mbuf* m, unsigned owner, uint32_t mark) noexcept
{
    m->hash.usr = mark; // tells the owner whether this is a hairpin (turn_path.cc)
    if (rte_ring_sp_enqueue(handoff_out[owner], m) != 0)
        drop_pkt(m, drop::handoff_full);
    else
        bump(stats.handoff_out);
}

void worker::init_rtp_clocks(uint64_t tsc_hz) noexcept
{
    for (unsigned pt = 0; pt < 128; pt++) {
        const uint32_t rate = pt >= 96 ? 90000 : static_pt_clock_rate(static_cast<uint8_t>(pt));
        rtp_rate_pt[pt] = rate;
        rtp_mult_pt[pt] = rtp_mult(rate, tsc_hz);
    }
}

// A leg waiting to latch: only within its window and from its latch_from
// network (both cold fields: read only here). drop::count: it may.
drop worker::latch_refusal(const leg* l, const pkt_meta& meta,
                           const rte_ipv4_hdr* ip) const noexcept
{
    if (l->latch_deadline_tsc != 0 && now_tsc_ > l->latch_deadline_tsc)
        return drop::latch_closed;
    if (l->latch_mask_be != 0 &&
        (meta.family != 4 || ((ip->src_addr ^ l->latch_net_be) & l->latch_mask_be) != 0))
        return drop::latch_refused; // latch_from is IPv4 only
    return drop::count;
}

// SRTP/SRTCP from the leg's remote: authenticated (and decrypted, unless
// every target shares our keys) in place, the trailer trimmed. The drop
// reason, or drop::count.
drop worker::srtp_in(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept
{
    uint8_t* p = udp_payload(m, meta);
    const uint32_t len = udp_payload_len(m, meta);
    const bool rtcp = is_rtcp(p);
    crypto::status st;
    size_t out_len = len;
    if (l->verify_only)
        st = rtcp ? l->in_ctx->verify_rtcp(p, len) : l->in_ctx->verify_rtp(p, len);
    else
        st = rtcp ? l->in_ctx->unprotect_rtcp(p, len, &out_len)
                  : l->in_ctx->unprotect_rtp(p, len, &out_len);
    if (st != crypto::status::ok)
        return srtp_drop(st);
    if (out_len > len)
        return drop::srtp_bad;
    if (out_len < len) {
        trim1(m, static_cast<uint16_t>(len - out_len));
        set_udp_len(m, meta, static_cast<uint32_t>(out_len));
    }
    return drop::count;
}

// SRTP/SRTCP out: `m`'s payload protected in place with target `t`'s
// out_ctx (m is single-segment: classify drops the others), the trailer
// appended. False: dropped and counted (srtp_protect, on `t`).
bool worker::srtp_out(rte_mbuf* m, const pkt_meta& meta, leg* t) noexcept
{
    uint8_t* p = udp_payload(m, meta);
    const uint32_t len = udp_payload_len(m, meta);
    const size_t cap = len + rte_pktmbuf_tailroom(m);
    size_t out_len = 0;
    const crypto::status st = is_rtcp(p) ? t->out_ctx->protect_rtcp(p, len, cap, &out_len)
                                         : t->out_ctx->protect_rtp(p, len, cap, &out_len);
    if (st != crypto::status::ok || out_len < len || out_len - len > crypto::max_trailer ||
        !append1(m, static_cast<uint16_t>(out_len - len))) {
        t->stats.drop_pkt(drop::srtp_protect);
        drop_pkt(m, drop::srtp_protect);
        return false;
    }
    set_udp_len(m, meta, static_cast<uint32_t>(out_len));
    return true;
}

// forward() for the common packet of a single-target IPv4 SRTP leg
// (hot_fast_srtp): from its remote, to the target's remote and next hop as
// line 0 has copied them. Everything that could send the packet elsewhere -
// latching, an unresolved MAC (a hold) - is decided before the packet is
// touched, so that false leaves it for forward() as it came. The rest is
// forward()'s and send_to()'s: the same checks, drops and counters.
bool worker::forward_srtp(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept
{
    const packed_ep dst = l->fwd_remote;
    if (meta.family != 4 || dst == 0)
        return false;
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    const packed_ep src = pack_ep(ip->src_addr, udp->src_port);
    if (src != l->remote.load(std::memory_order_relaxed) || src == 0)
        return false; // latching, or strict source
    const local_addr& la = laddrs[l->fwd_laddr];
    const iface& out = ifaces[la.iface];
    if (!fwd_mac_current(*l, out, dst))
        return false; // no route, or held for ARP: forward() does that
    if ((l->hot & hot_rl) && over_rate(l, m))
        return true;
    const uint32_t wire_len = rte_pktmbuf_pkt_len(m);
    const relay_scope scope(l->index);
    if (l->in_ctx != nullptr) {
        if (const drop d = srtp_in(m, meta, l); d != drop::count) {
            l->stats.drop_pkt(d);
            drop_pkt(m, d);
            return true;
        }
    }
    bump(l->ctr.in_pkts);
    bump(l->ctr.in_bytes, wire_len);
    l->last_seen_tsc.store(now_tsc_, std::memory_order_relaxed);
    account_rtp(l, udp_payload(m, meta), udp_payload_len(m, meta));

    leg* t = l->first_leg() + l->fwd_target;
    bool changed = l->in_ctx != nullptr && !l->verify_only; // decrypted
    if (!l->verify_only && t->out_ctx != nullptr) {
        if (!srtp_out(m, meta, t))
            return true;
        changed = true;
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    if (out.mtu != 0 && len - meta.l3_off > out.mtu) { // the trailer grew it
        t->stats.drop_pkt(drop::mtu_exceeded);
        drop_pkt(m, drop::mtu_exceeded);
        return true;
    }
    rewrite_udp4(m, meta.l3_off, meta.l4_off, fwd_rewrite(*l, la, out, dst),
                 choose_udp_cksum(m, udp, changed, ifaces[meta.iface].rx_partial_cksum,
                                  out.tx_cksum_offload));
    tx_enqueue(la.iface, m);
    bump(t->out_pkts);
    bump(t->out_bytes, len);
    bump(stats.fwd_pkts);
    return true;
}

void worker::forward(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept
{
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    // The source: an IPv6 one packed by its digest, with the whole address
    // compared (and latched) in the leg's last line, which IPv4 never reads.
    ip6_addr src6;
    packed_ep src;
    if (meta.family == 4) {
        src = pack_ep(ip->src_addr, udp->src_port);
    } else {
        std::memcpy(src6.b, reinterpret_cast<const uint8_t*>(ip) + 8, 16);
        src = pack_ep6(src6, udp->src_port);
    }
    const uint32_t wire_len = rte_pktmbuf_pkt_len(m); // in_bytes: as received

    const packed_ep r = l->remote.load(std::memory_order_relaxed);
    const bool same = r == src && (!ep_is_v6(r) || l->remote6 == src6);
    if (!same && r != 0 && strict_source) {
        l->stats.drop_pkt(drop::src_mismatch);
        drop_pkt(m, drop::src_mismatch);
        return;
    }
    if (r == 0) {
        if (const drop d = latch_refusal(l, meta, ip); d != drop::count) {
            l->stats.drop_pkt(d);
            drop_pkt(m, d);
            return;
        }
    }
    // Packet-rate limit before any crypto work: GCRA on the TSC (one compare
    // and one add per packet, no division).
    if (l->rl_interval_tsc != 0 && over_rate(l, m))
        return;
    // Tells the targets' outbound contexts who sends (SSRC quota) and, once
    // unprotected, the packet's index (ROC), until forward() returns.
    const relay_scope scope(l->index);
    // SRTP/SRTCP: authenticate (and decrypt, unless every target shares our
    // keys) before anything else; a packet that fails never latches.
    if (l->in_ctx != nullptr) {
        if (const drop d = srtp_in(m, meta, l); d != drop::count) {
            l->stats.drop_pkt(d);
            drop_pkt(m, d);
            return;
        }
    }
    if (!same) { // latch (authenticated)
        if (meta.family != 4)
            l->remote6 = src6; // before the packed value, for control's readers
        l->remote.store(src, std::memory_order_release);
        refresh_hot(l->sess); // the copies of our remote in our senders' line 0
    }
    bump(l->ctr.in_pkts);
    bump(l->ctr.in_bytes, wire_len);
    if (l->hot & hot_fast) { // not forwarded by forward_fast (see leg_out)
        bump(l->unfwd_pkts);
        bump(l->unfwd_bytes, wire_len);
    }
    l->last_seen_tsc.store(now_tsc_, std::memory_order_relaxed);
    account_rtp(l, udp_payload(m, meta), udp_payload_len(m, meta));

    // Collect the targets that can receive; the last one gets `m` itself,
    // the others a copy (their headers differ).
    leg* ready[max_legs_per_session];
    packed_ep remotes[max_legs_per_session];
    const unsigned n = collect_targets(l, ready, remotes, stats);
    if (n == 0) {
        if (l->ntargets == 0) {
            l->stats.drop_pkt(drop::no_target);
            stats.drop_pkt(drop::no_target);
        }
        rte_pktmbuf_free(m);
        return;
    }
    // Copies are taken from the plaintext (m is protected last, in place).
    // In authenticated pass-through every target gets the bytes unchanged.
    const bool protect = !l->verify_only;
    const bool changed = l->in_ctx != nullptr && !l->verify_only; // decrypted
    if (n == 1)
        send_to(m, meta, ready[0], remotes[0], protect, changed);
    else
        fan_out(m, meta, ready, remotes, n, protect, changed);
}

void worker::apply(flow_cmd* c) noexcept
{
    if (c->alloc != nullptr) {
        apply_alloc(c);
        return;
    }
    session* s = c->sess;
    c->status = 0;
    switch (c->op) {
    case cmd_op::add_session: {
        for (unsigned i = 0; i < s->nlegs; i++) {
            s->legs[i].sess = s;
            s->legs[i].peers = s->legs.get();
            s->legs[i].index = static_cast<uint8_t>(i);
        }
        refresh_hot(s);
        unsigned added = 0;
        for (; added < s->nlegs; added++) {
            const leg& l = s->legs[added];
            const int rc = flows.insert(flow_key(l.laddr, rte_be_to_cpu_16(l.local_port_be)),
                                        &s->legs[added], leg_plain(l));
            if (rc != 0) {
                c->status = rc;
                break;
            }
        }
        if (c->status != 0) {
            for (unsigned i = 0; i < added; i++) {
                const leg& l = s->legs[i];
                flows.erase(flow_key(l.laddr, rte_be_to_cpu_16(l.local_port_be)), &s->legs[i]);
            }
        }
        break;
    }
    case cmd_op::del_session:
        for (unsigned i = 0; i < s->nlegs; i++) {
            const leg& l = s->legs[i];
            flows.erase(flow_key(l.laddr, rte_be_to_cpu_16(l.local_port_be)), &s->legs[i]);
        }
        break;
    case cmd_op::set_remote:
        if (c->leg_index < s->nlegs) {
            if (ep_is_v6(c->remote))
                s->legs[c->leg_index].remote6 = c->remote6;
            s->legs[c->leg_index].remote.store(c->remote, std::memory_order_release);
            if (c->remote == 0)
                s->legs[c->leg_index].latch_deadline_tsc = c->latch_deadline_tsc;
            refresh_hot(s);
        } else {
            c->status = -EINVAL;
        }
        break;
    case cmd_op::set_crypto: {
        if (c->leg_index >= s->nlegs) {
            c->status = -EINVAL;
            break;
        }
        leg& l = s->legs[c->leg_index];
        // Swap: the ack carries the old contexts back for control to free.
        if (c->flags & crypto_set_in) {
            crypto::srtp_context* old = l.in_ctx;
            l.in_ctx = c->in_ctx;
            c->in_ctx = old;
        }
        if (c->flags & crypto_set_out) {
            crypto::srtp_context* old = l.out_ctx;
            l.out_ctx = c->out_ctx;
            c->out_ctx = old;
        }
        for (unsigned i = 0; i < s->nlegs; i++)
            s->legs[i].verify_only = c->verify_mask.test(i);
        if (c->flags & crypto_set_remote) {
            if (ep_is_v6(c->remote))
                l.remote6 = c->remote6;
            l.remote.store(c->remote, std::memory_order_release);
            if (c->remote == 0)
                l.latch_deadline_tsc = c->latch_deadline_tsc;
        }
        refresh_hot(s); // contexts and remote: which legs take the fast path
        break;
    }
    default:
        c->status = -EINVAL;
        break;
    }
}

unsigned worker::drain_commands() noexcept
{
    // Never take more than the completion ring can hold: acks are never lost.
    unsigned room = rte_ring_free_count(done_ring);
    unsigned want = room < max_cmds_per_loop ? room : max_cmds_per_loop;
    if (want == 0)
        return 0;
    flow_cmd* cmds[max_cmds_per_loop];
    unsigned n = rte_ring_sc_dequeue_burst(cmd_ring, reinterpret_cast<void**>(cmds), want, nullptr);
    for (unsigned i = 0; i < n; i++)
        apply(cmds[i]);
    if (n > 0) {
        rte_ring_sp_enqueue_bulk(done_ring, reinterpret_cast<void**>(cmds), n, nullptr);
        bump(stats.cmds_applied, n);
    }
    return n;
}

unsigned worker::poll_once() noexcept
{
    const uint64_t start = rte_rdtsc();
    now_tsc_ = start;
    unsigned work = drain_commands();

    rte_mbuf* pkts[max_burst];
    for (unsigned q = 0; q < nrxq; q++) {
        uint16_t n = rte_eth_rx_burst(rxqs[q].port, rxqs[q].queue, pkts, max_burst);
        if (n == 0)
            continue;
        if (rxqs[q].kernel_ifc >= 0)
            from_kernel(static_cast<unsigned>(rxqs[q].kernel_ifc), pkts, n);
        else
            process_burst(pkts, n, true);
        work += n;
    }
    for (unsigned w = 0; w < nworkers; w++) {
        if (handoff_in[w] == nullptr)
            continue;
        unsigned n = rte_ring_sc_dequeue_burst(handoff_in[w], reinterpret_cast<void**>(pkts),
                                               max_burst, nullptr);
        if (n == 0)
            continue;
        bump(stats.handoff_in, n); // rx_* were counted by the receiving worker
        process_burst(pkts, n, false);
        work += n;
    }
    for (unsigned t = 0; t < nstreams; t++) {
        unsigned n = rte_ring_sc_dequeue_burst(stream_in[t], reinterpret_cast<void**>(pkts),
                                               max_burst, nullptr);
        bump(stats.turn_stream_in, n);
        for (unsigned i = 0; i < n; i++)
            turn_from_stream(pkts[i]);
        work += n;
    }
    for (unsigned i = 0; i < nifaces; i++) {
        tx_flush(i);
        kernel_flush(i);
    }

    turn_allocs.store(turn_clients.size() + stream_allocs_, std::memory_order_relaxed);
    bump(stats.loops);
    heartbeat.store(read(stats.loops), std::memory_order_relaxed);
    if (work > 0) {
        bump(stats.busy_loops);
        bump(stats.busy_tsc, rte_rdtsc() - start);
    } else if (copy_stash_n_ != 0) {
        release_copy_stash(); // the fan-out's spare mbufs are not parked while idle
    }
    return work;
}

int worker::run() noexcept
{
    unsigned idle = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        // Test hook: a wedged worker makes no progress (no heartbeat) until
        // the deadline. Never set unless [debug] allow_wedge.
        if (wedge_until.load(std::memory_order_relaxed) > now_tsc_) {
            while (!stop.load(std::memory_order_relaxed) &&
                   rte_rdtsc() < wedge_until.load(std::memory_order_relaxed))
                rte_pause();
            now_tsc_ = rte_rdtsc();
        }
        if (poll_once() > 0) {
            idle = 0;
            continue;
        }
        if (idle_sleep_us > 0 && ++idle >= idle_loops_before_sleep)
            rte_delay_us_sleep(idle_sleep_us); // only when there is nothing to do
        else
            rte_pause();
    }
    for (unsigned i = 0; i < nifaces; i++) {
        tx_flush(i);
        kernel_flush(i);
    }
    release_copy_stash();
    return 0;
}

} // namespace isar::dp
