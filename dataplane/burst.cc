// A burst's way through the worker (worker::process_burst): two passes over
// the packets, each a software pipeline in which a packet's next cache miss
// is asked for a few packets before the packet needs it.
//
// With many legs a packet's time goes into waiting for lines - its mbuf
// header, its frame's first line, its flow-table slot, its leg's lines, for
// SRTP its contexts' - each found only through the one before. Asking for
// one kind of them for a whole burst at once (32 flow slots, then 64 leg
// lines) is more than the CPU keeps in flight: the requests queue behind
// each other and the first packets wait for all of them. So each pass keeps
// a few packets between a prefetch and its use:
//
//   classify pass: mbuf header (hdr_ahead), frame's first line (data_ahead,
//                  its address from the mbuf's: frame_line) -> classify;
//                  flow-table slot prefetched
//   (TURN clients: one bulk hash lookup for the burst)
//   act pass:      flow lookups, allocation lines and leg line 0 (all
//                  first, or line0_ahead packets ahead: see below) -> the
//                  leg's RTP line (rtp_ahead) and the general path's other lines
//                  (more_ahead) -> SRTP contexts' first lines (ctx_ahead) ->
//                  key schedules and payload (sched_ahead) -> act
//
// A plain two-leg call's packet needs only the first step of each pass (a
// burst of only such packets skips the act pass's pipeline). The
// distances were chosen with isar-bench (README, "Performance"): header 8
// and frame 4 ahead took plain at 1k legs from 179 to 159 cycles, at 100k
// from 276 to 241. The legs' lines need a lead that depends on where they
// are, which the worker judges by how many flows it has
// (flows_in_cpu_cache, from the caches' sizes in sysfs):
//   - in the L2 (up to spread_min_flows): a whole burst's line 0 at once
//     costs nothing;
//   - in the last-level cache (up to spread_max_flows): line 0 (a TURN
//     allocation's two lines) for the first line0_ahead packets, then
//     line0_ahead packets ahead. 32 requests at once are more than the core
//     keeps in flight; the lookups' loads waited behind them (plain at 100k
//     legs 200-205 -> 185-190 cycles, ChannelData at 100k allocations
//     615 -> 427);
//   - in DRAM (a million legs): the whole burst's lead (line 0 8 packets
//     ahead took 286 -> 530 cycles at 1M legs, 12 and 24 ahead 238 -> 272
//     and 258), so line 0 of every packet first.
// The RTP line is asked for rtp_ahead packets ahead in every case: for the
// whole burst too it kept more misses in flight than there is room for
// (plain at 100k legs 216 -> 208 cycles; README, "Then (session 13)").
// Nothing here allocates, locks, logs or makes a system call; the sizes are
// read once, when the worker is made.
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "crypto/srtp_context.h"
#include "dataplane/worker.h"

namespace isar::dp {

namespace {
constexpr unsigned hdr_ahead = 8;
constexpr unsigned data_ahead = 4;
constexpr unsigned more_ahead = 3;
constexpr unsigned ctx_ahead = 2;
constexpr unsigned sched_ahead = 1;
constexpr unsigned rtp_ahead = 8;
constexpr unsigned line0_ahead = 12; // while the legs fit in the LLC (spread_max_flows)
// burst_prefetch reads line 0 (hot, target_mask, in_ctx's line...) more_ahead
// packets ahead.
static_assert(line0_ahead > more_ahead, "line 0 is asked for before the pipeline reads it");
// Each step of the act pass reads what the one before asked for (the
// classify pass's two prefetches are independent: frame_line).
static_assert(more_ahead > ctx_ahead && ctx_ahead > sched_ahead);
static_assert(max_burst <= 32, "plain is a bit per packet");

inline bool needs_more(uint32_t plain, unsigned i, const leg* l) noexcept
{
    return l != nullptr && ((plain >> i) & 1u) == 0;
}

// Where a received frame's first line is, from the mbuf's address alone:
// PMDs start the frame RTE_PKTMBUF_HEADROOM into the buffer that follows the
// mbuf (the dataplane's pool has no private area). Reading the mbuf's
// buf_addr and data_off instead would make the prefetch wait for the header
// line, which is itself still on its way. A frame elsewhere (another pool's
// layout, an external buffer) only costs a useless prefetch.
inline const void* frame_line(const rte_mbuf* m) noexcept
{
    return reinterpret_cast<const char*>(m) + sizeof(rte_mbuf) + RTE_PKTMBUF_HEADROOM;
}
} // namespace

uint64_t cache_size_file(const char* path) noexcept
{
    FILE* f = fopen(path, "re");
    if (f == nullptr)
        return 0;
    char text[32] = {};
    const bool got = fgets(text, sizeof text, f) != nullptr;
    fclose(f);
    if (!got || text[0] < '0' || text[0] > '9')
        return 0;
    char* unit = nullptr;
    errno = 0;
    const unsigned long long v = strtoull(text, &unit, 10);
    const unsigned shift = *unit == 'K' ? 10 : *unit == 'M' ? 20 : *unit == 'G' ? 30 : 0;
    if (errno != 0 || v > (uint64_t{1} << 40) >> shift) // beyond any cache: not a size
        return 0;
    return uint64_t{v} << shift;
}

uint32_t flows_in_cache(uint64_t bytes, unsigned sharing) noexcept
{
    const uint64_t n = bytes / 2 / (2 * RTE_CACHE_LINE_SIZE) / (sharing != 0 ? sharing : 1);
    return static_cast<uint32_t>(n > UINT32_MAX ? UINT32_MAX : n);
}

uint32_t flows_in_cpu_cache(unsigned index, unsigned nworkers, unsigned cpu) noexcept
{
    char path[80];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/cache/index%u/size", cpu, index);
    uint64_t bytes = cache_size_file(path);
    if (bytes == 0)
        bytes = index == 2 ? uint64_t{512} << 10 : uint64_t{8} << 20;
    return flows_in_cache(bytes, index == 2 ? 1 : nworkers);
}

// Here rather than in leg_path.cc with the rest of the leg's path: in the
// act pass's translation unit it is inlined into its only caller, without a
// call's saving and restoring of six registers (bench/load/instructions.sh).
[[gnu::always_inline]] inline bool worker::forward_fast(rte_mbuf* m, const pkt_meta& meta,
                                                        leg* l) noexcept
{
    if (meta.family != 4)
        return forward_fast6(m, meta, l);
    const packed_ep dst = l->fwd_remote;
    if ((l->hot & (hot_fast | hot_fast6)) != hot_fast || dst == 0)
        return (l->hot & hot_fast_srtp) && forward_srtp(m, meta, l);
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off);
    auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    const packed_ep src = pack_ep(ip->src_addr, udp->src_port);
    if (src != l->remote.load(std::memory_order_relaxed) || src == 0)
        return false; // latching, or strict source: forward() decides
    const local_addr& la = laddrs[l->fwd_laddr];
    const iface& out = ifaces[la.iface];
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    if (out.mtu != 0 && len - meta.l3_off > out.mtu)
        return false;
    // The next hop's MAC, cached in line 0 while the neighbour table has not
    // changed since it was read.
    if (!fwd_mac_current(*l, out, dst))
        return false; // no route, or held for ARP: forward() does that
    if ((l->hot & hot_rl) && over_rate(l, m)) // its cold line only for such legs
        return true;
    count_in_fast(l, m, meta, len);

    rewrite_udp4(m, meta.l3_off, meta.l4_off, fwd_rewrite(*l, la, out, dst),
                 choose_udp_cksum(m, udp, false, ifaces[meta.iface].rx_partial_cksum,
                                  out.tx_cksum_offload));
    tx_enqueue(la.iface, m);
    bump(stats.fwd_pkts);
    return true;
}

// The flow-table entry of packet i: its leg (bit i of `plain` set when the
// entry says the leg needs no more than lines 0 and 1) or its allocation;
// with fetch_line0, the leg's line 0 or the allocation's lines asked for
// (else the act loop asks, line0_ahead packets ahead; the RTP line always
// rtp_ahead). Returns whether the packet needs a step of the act pass's
// pipeline: a leg beyond its lines 0 and 1, or an allocation.
[[gnu::always_inline]] inline bool worker::burst_find(const pkt_meta* meta, unsigned i, leg** legs,
                                                      turn_alloc** allocs, bool clients,
                                                      uint32_t& plain, bool fetch_line0) noexcept
{
    leg* l = nullptr;
    // A TURN client's, from lookup_turn_clients (when the burst has any).
    turn_alloc* a = clients ? allocs[i] : nullptr;
    if (meta[i].owner == index && meta[i].v == verdict::lookup) {
        const flow_entry e = flows.lookup_entry(meta[i].key);
        a = entry_alloc(e);
        if (a == nullptr && meta[i].pclass == payload_class::rtp) {
            l = entry_leg(e);
            if (entry_leg_plain(e) && meta[i].family == 4)
                plain |= 1u << i;
        }
    }
    if (fetch_line0) { // else line0_ahead packets before it is needed
        if (l != nullptr)
            rte_prefetch0(l);
        else if (a != nullptr)
            a->prefetch();
    }
    legs[i] = l;
    allocs[i] = a;
    return needs_more(plain, i, l) || a != nullptr;
}

// What a leg needs beyond lines 0 and 1 (read from line 0): a fast IPv4
// leg its cold line if it has a rate limit or its own RTP clock; a fast IPv6 leg its line 7
// (remote6, fwd_remote6); any other its cold line (SRTP context, rate
// limit), its first target's line 0 and line 7, for IPv6 its own remote6,
// and the first payload lines of a packet whose payload is read (decrypted,
// authenticated, copied).
void worker::prefetch_leg_more(const rte_mbuf* m, const pkt_meta& meta, const leg* l) noexcept
{
    if ((l->hot & hot_fast) && l->fwd_remote != 0 && meta.family == 4) {
        if (l->hot & (hot_rl | hot_own_clock)) // the cold line: rl_*, rtp_mult
            rte_prefetch0(&l->rl_tat);
        return;
    }
    if ((l->hot & (hot_fast6 | hot_rl)) == hot_fast6 && l->fwd_remote != 0) {
        rte_prefetch0(&l->remote6); // and fwd_remote6: forward_fast6's line 7
        return;
    }
    rte_prefetch0(&l->peers);
    if (l->target_mask != 0) {
        const leg* t = l->first_leg() + __builtin_ctz(l->target_mask);
        if (l->ntargets != 1)
            rte_prefetch0(t); // a single target's remote is in our line 0
        rte_prefetch0(&t->out_ctx);
    }
    if (meta.family == 6)
        rte_prefetch0(&l->remote6);
    if ((l->hot & hot_srtp) || l->ntargets > 1) {
        const auto* d = rte_pktmbuf_mtod(m, const char*);
        const uint32_t len = rte_pktmbuf_data_len(m);
        for (uint32_t off = 64; off < len && off < payload_lines_early * 64; off += 64)
            rte_prefetch0(d + off);
    }
}

// SRTP: the first lines of the receiving context and of the first target's
// sending context, which list the key schedule's lines (prefetch_ahead).
void worker::prefetch_leg_ctx(const leg* l) noexcept
{
    if (!(l->hot & hot_srtp) || l->in_ctx == nullptr)
        return;
    l->in_ctx->prefetch_line0();
    if (!l->verify_only && l->target_mask != 0) {
        const leg* t = l->first_leg() + __builtin_ctz(l->target_mask);
        if (t->out_ctx != nullptr)
            t->out_ctx->prefetch_line0();
    }
}

bool worker::burst_classify(rte_mbuf* const* pkts, unsigned n, pkt_meta* meta,
                            bool received) noexcept
{
    for (unsigned i = 0; i < n && i < hdr_ahead; i++)
        rte_prefetch0(pkts[i]);
    for (unsigned i = 0; i < n && i < data_ahead; i++)
        rte_prefetch0(frame_line(pkts[i]));
    uint64_t bytes = 0;
    bool clients = false;
    for (unsigned i = 0; i < n; i++) {
        if (i + hdr_ahead < n)
            rte_prefetch0(pkts[i + hdr_ahead]);
        if (i + data_ahead < n) // without DDIO a NIC's DMA lands in DRAM
            rte_prefetch0(frame_line(pkts[i + data_ahead]));
        bytes += rte_pktmbuf_pkt_len(pkts[i]);
        classify_one(cctx, pkts[i], meta[i]);
        if (meta[i].v == verdict::lookup && meta[i].owner == index)
            flows.prefetch(meta[i].key);
        clients |= meta[i].v == verdict::turn_client;
    }
    if (received) { // a handoff was counted by the worker that received it
        bump(stats.rx_pkts, n);
        bump(stats.rx_bytes, bytes);
    }
    return clients;
}

// The act pass's prefetches, made while packet i is acted on: each step for
// the packet its distance ahead (i < 0: the pipeline's start, before any
// packet is acted on).
void worker::burst_prefetch(rte_mbuf* const* pkts, const pkt_meta* meta, unsigned n, int i,
                            leg* const* legs, turn_alloc* const* allocs, uint32_t plain) noexcept
{
    const auto at = [&](unsigned ahead) {
        const int j = i + static_cast<int>(ahead);
        return j >= 0 && static_cast<unsigned>(j) < n ? static_cast<unsigned>(j) : max_burst;
    };
    if (const unsigned j = at(more_ahead); j < n) {
        if (needs_more(plain, j, legs[j]))
            prefetch_leg_more(pkts[j], meta[j], legs[j]);
        else if (allocs[j] != nullptr)
            prefetch_alloc_more(pkts[j], meta[j], allocs[j]);
    }
    if (const unsigned j = at(ctx_ahead); j < n && needs_more(plain, j, legs[j]))
        prefetch_leg_ctx(legs[j]);
    if (const unsigned j = at(sched_ahead); j < n && needs_more(plain, j, legs[j]))
        prefetch_ahead(pkts[j], legs[j]);
}

void worker::process_burst(rte_mbuf** pkts, unsigned n, bool received) noexcept
{
    pkt_meta* meta = burst_meta_; // not constructed anew for every burst
    const bool clients = burst_classify(pkts, n, meta, received);

    leg* legs[max_burst];
    turn_alloc* allocs[max_burst];
    uint32_t plain = 0; // bit i: legs[i] needs no more than lines 0 and 1
    if (clients) // a burst of legs' packets (or of peers') has none to look up
        lookup_turn_clients(pkts, meta, n, allocs);
    // Every lookup first (see above), then the pipeline's first steps.
    // A burst of plain packets only (a plain two-leg call's) has nothing more
    // to prefetch: the act pass then skips the pipeline, ~60 instructions a
    // packet (bench/load/instructions.sh; README.md, session 11).
    bool pipeline = false;
    const bool spread = flows.size() > spread_min_flows && flows.size() <= spread_max_flows;
    for (unsigned i = 0; i < n; i++)
        pipeline |= burst_find(meta, i, legs, allocs, clients, plain, !spread || i < line0_ahead);
    if (pipeline)
        for (int i = -static_cast<int>(more_ahead); i < 0; i++)
            burst_prefetch(pkts, meta, n, i, legs, allocs, plain);

    for (unsigned i = 0; i < n && i < rtp_ahead; i++)
        if (legs[i] != nullptr)
            rte_prefetch0(&legs[i]->stats.rtp);
    for (unsigned i = 0; i < n; i++) {
        if (spread && i + line0_ahead < n) {
            if (legs[i + line0_ahead] != nullptr)
                rte_prefetch0(legs[i + line0_ahead]);
            else if (allocs[i + line0_ahead] != nullptr)
                allocs[i + line0_ahead]->prefetch();
        }
        if (i + rtp_ahead < n && legs[i + rtp_ahead] != nullptr)
            rte_prefetch0(&legs[i + rtp_ahead]->stats.rtp);
        if (pipeline)
            burst_prefetch(pkts, meta, n, i, legs, allocs, plain);
        rte_mbuf* m = pkts[i];
        const pkt_meta& mt = meta[i];
        switch (mt.v) {
        case verdict::drop:
            drop_pkt(m, mt.reason);
            break;
        case verdict::exception:
            if (mt.exc == exc_kind::turn)
                turn_request(m);
            else
                to_control(m, mt.exc);
            break;
        case verdict::lookup:
            if (mt.owner != index)
                handoff(m, mt.owner, 0);
            else if (allocs[i] != nullptr)
                turn_from_peer(m, mt, allocs[i], received || m->hash.usr != hairpin_mark);
            else if (!received && m->hash.usr == hairpin_mark)
                drop_pkt(m, drop::turn_no_alloc); // a hairpin reaches allocations only
            else if (mt.pclass != payload_class::rtp)
                non_rtp_on_leg(m, mt);
            else if (legs[i] != nullptr) {
                if (!forward_fast(m, mt, legs[i]))
                    forward(m, mt, legs[i]);
            } else
                drop_pkt(m, drop::no_flow);
            break;
        case verdict::kernel:
            to_kernel(m, mt);
            break;
        case verdict::turn_client:
            if (mt.owner != index)
                handoff(m, mt.owner, 0);
            else
                turn_from_client(m, mt, allocs[i]);
            break;
        }
    }
}

} // namespace isar::dp
