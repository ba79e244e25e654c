// One dataplane worker: per-lcore state and the run-to-completion loop.
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/classify.h"
#include "dataplane/flow_table.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/rewrite.h"
#include "dataplane/stats.h"
#include "dataplane/stream_ring.h"
#include "dataplane/turn_alloc.h"

struct rte_ring;
struct rte_mempool;

namespace isar::dp {

#ifndef ISAR_MAX_WORKERS
#define ISAR_MAX_WORKERS 16
#endif
constexpr unsigned max_workers = ISAR_MAX_WORKERS;
constexpr unsigned max_burst = 32;
constexpr unsigned max_rxq_per_worker = 64;
constexpr unsigned max_ifaces = 32;

// The next hop's MAC towards `dst` (IPv4) into the leg's line 0, with the
// neighbour generation it was read at (acquire first: a newer table is seen
// whole). False: no route, or not resolved yet (forward() holds the packet
// for ARP). leg_path.cc.
bool resolve_fwd_mac(leg& l, const iface& out, packed_ep dst) noexcept;

// Line 0's next-hop MAC towards `dst` (IPv4), re-resolved when the
// neighbour table changed since it was read; false (hot_mac cleared): none,
// for forward() to hold the packet. The fast paths' (forward_fast,
// forward_srtp).
[[gnu::always_inline]] inline bool fwd_mac_current(leg& l, const iface& out, packed_ep dst) noexcept
{
    if ((l.hot & hot_mac) && l.fwd_nb_gen == out.neigh->generation4())
        return true;
    if (!resolve_fwd_mac(l, out, dst)) {
        l.hot &= static_cast<uint8_t>(~hot_mac);
        return false;
    }
    l.hot |= hot_mac;
    return true;
}

// The rewrite a fast path sends with: from relay slot `la` on `out` to the
// single target's remote `dst`, from line 0's copies.
[[gnu::always_inline]] inline rewrite_to fwd_rewrite(const leg& l, const local_addr& la,
                                                     const iface& out, packed_ep dst) noexcept
{
    rewrite_to to;
    to.src_mac = out.mac;
    to.dst_mac = l.fwd_mac;
    to.src_ip_be = la.ip4_be;
    to.dst_ip_be = ep_ip(dst);
    to.src_port_be = l.fwd_port_be;
    to.dst_port_be = ep_port(dst);
    return to;
}

// The slot of worker::emit()'s next-hop MAC memo for IPv4 next hop `ip_be`
// (Fibonacci hashing: the top bits of the product).
constexpr unsigned nh_memo_slot_bits = 4;
constexpr unsigned nh_memo_slots = 1u << nh_memo_slot_bits;
constexpr unsigned nh_memo_slot(uint32_t ip_be) noexcept
{
    return (ip_be * 0x9e3779b1u) >> (32 - nh_memo_slot_bits);
}
constexpr unsigned max_cmds_per_loop = 8;

// GCRA policer on the TSC (as the legs' max_pps): one per interval_tsc,
// bursts up to burst_tsc ahead; interval_tsc = 0: unpoliced.
struct gcra {
    uint64_t interval_tsc = 0;
    uint64_t burst_tsc = 0;
    uint64_t tat = 0; // theoretical arrival time of the next packet

    bool allow(uint64_t now) noexcept
    {
        if (interval_tsc == 0)
            return true;
        const uint64_t t = tat > now ? tat : now;
        if (t - now > burst_tsc)
            return false;
        tat = t + interval_tsc;
        return true;
    }
};

// The exception kinds a worker polices on their way to control.
enum class exc_policer : uint8_t {
    arp_reply,   // ARP reply addressed to our address (resolves held packets)
    arp_request, // ARP request for our address
    arp_other,   // any other ARP (requests for others, gratuitous, ...)
    icmp,
    stun, // STUN to a leg port
    dtls, // DTLS to a leg port
    nd,   // ICMPv6 Neighbor Discovery for us
    count
};
constexpr unsigned n_exc_policers = static_cast<unsigned>(exc_policer::count);

// A classified UDP packet's payload and its length.
inline uint8_t* udp_payload(rte_mbuf* m, const pkt_meta& meta) noexcept
{
    return rte_pktmbuf_mtod_offset(m, uint8_t*, meta.l4_off + sizeof(rte_udp_hdr));
}
inline uint32_t udp_payload_len(const rte_mbuf* m, const pkt_meta& meta) noexcept
{
    return rte_pktmbuf_pkt_len(m) - meta.l4_off - static_cast<uint32_t>(sizeof(rte_udp_hdr));
}

// The act pass's prefetch schedule by where the legs' lines are (burst.cc;
// init path):
// - a cache's size from a sysfs file ("32768K", "2M"), 0 if unreadable;
uint64_t cache_size_file(const char* path) noexcept;
// - how many flows' hot lines (a leg's line 0 and RTP line, 128 bytes) fit
//   in half of `bytes` of cache that `sharing` workers share;
uint32_t flows_in_cache(uint64_t bytes, unsigned sharing) noexcept;
// - the same for CPU `cpu`'s cache `index` (2: the core's own L2, 512 KiB
//   when sysfs does not say; 3: the LLC that `nworkers` workers share, 8 MiB):
//   the worker's own CPU, whose caches may differ from another's (hybrid
//   cores, chiplets with L3s of different sizes).
uint32_t flows_in_cpu_cache(unsigned index, unsigned nworkers, unsigned cpu) noexcept;

struct worker {
    // ---- set up by the dataplane before launch, then read-only ----------
    unsigned index = 0;
    unsigned nworkers = 1;
    uint16_t txq = 0; // this worker's TX queue on every port
    struct rx_source {
        uint16_t port;
        uint16_t queue;
        // >= 0: a queue of that interface's kernel interface: what the
        // kernel sends, to the wire (from_kernel), never classified.
        int16_t kernel_ifc = -1;
    };
    rx_source rxqs[max_rxq_per_worker] = {};
    unsigned nrxq = 0;
    rte_ring* handoff_in[max_workers] = {};  // [from] -> me
    rte_ring* handoff_out[max_workers] = {}; // me -> [to]
    rte_ring* cmd_ring = nullptr;            // control -> me (flow_cmd*)
    rte_ring* done_ring = nullptr;           // me -> control (flow_cmd*)
    rte_ring* exc_ring = nullptr;            // me -> control: ICMP, STUN, DTLS (policed)
    rte_ring* prio_ring = nullptr;           // me -> control: ARP (policed) and held packets;
                                             // drained first, never behind a flood of the above
    rte_ring* turn_ring = nullptr;           // me -> control: STUN/TURN requests (policed)
    rte_ring* stream_in[max_stream_threads] = {};  // stream thread [t] -> me (stream_ring.h)
    rte_ring* stream_out[max_stream_threads] = {}; // me -> stream thread [t]
    unsigned nstreams = 0;
    flow_table flows;                        // flow_key -> leg or allocation, private to me
    turn_client_table turn_clients;          // client 5-tuple -> allocation, private to me
    gcra turn_police; // the STUN/TURN requests handed to control
    gcra kernel_police; // frames from the wire to the kernel interfaces
    // Policers of the exception kinds (index: exc_policer); set at init.
    gcra exc_police[n_exc_policers];
    rte_mempool* pool = nullptr;
    const iface* ifaces = nullptr;
    unsigned nifaces = 0;
    const local_addr* laddrs = nullptr; // every interface's address slots
    unsigned nladdrs = 0;
    classify_ctx cctx;
    bool strict_source = true;
    uint32_t idle_sleep_us = 0;
    // Between these many flows the legs' hot lines are beyond the L2 but in
    // the last-level cache (flows_in_cpu_cache): process_burst then asks for
    // their first lines a few packets ahead instead of all at once (burst.cc).
    uint32_t spread_min_flows = 0;
    uint32_t spread_max_flows = 0;
    // Jitter clock by payload type: rtp_mult() of the static PT's rate, or of
    // 90000 for dynamic PTs (96-127); 0 = no jitter. Filled at init.
    uint64_t rtp_mult_pt[128] = {};
    uint32_t rtp_rate_pt[128] = {};

    // ---- run state ------------------------------------------------------
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> heartbeat{0}; // bumped every loop: control sees progress
    // Test hook (debug.wedge_worker, only with [debug] allow_wedge): run()
    // spins without progress until the TSC passes this. 0 = never.
    std::atomic<uint64_t> wedge_until{0};
    worker_stats stats;
    // Fill levels, written by the worker once per loop for control to read.
    std::atomic<uint32_t> turn_allocs{0};

    // One pass: bounded commands, every RX source, TX flush. Returns the
    // number of packets and commands handled (0 = idle).
    unsigned poll_once() noexcept;
    // The lcore loop: poll_once() until stop.
    int run() noexcept;

    // Processes one burst: received on an RX queue (counted as rx_*), or
    // handed off by another worker.
    void process_burst(rte_mbuf** pkts, unsigned n, bool received) noexcept;
    // Fills rtp_mult_pt/rtp_rate_pt for this TSC rate (init path).
    void init_rtp_clocks(uint64_t tsc_hz) noexcept;
    // Tests: fan-out copies as on a CPU without AVX2 (copy_into alone).
    void use_baseline_copies() noexcept;

private:
    struct tx_buffer {
        uint16_t n = 0;
        rte_mbuf* pkts[max_burst];
    };
    tx_buffer tx_[max_ifaces];
    // emit(): the MACs of the interface's recent IPv4 next hops, each valid
    // while the neighbour table's generation4() is still its `gen` (ip_be 0
    // = none). Direct-mapped by the next hop (nh_memo_slot): behind a
    // gateway one entry serves every remote; on a LAN (every remote its own
    // next hop) a few receivers keep theirs, but two whose addresses share a
    // slot evict each other (of 10 random hosts, about 4 do), and the slots
    // are shared by every session the worker sends on the interface.
    struct nh_memo {
        uint32_t ip_be = 0;
        uint32_t gen = 0;
        rte_ether_addr mac{};
    };
    nh_memo& memo_of(unsigned ifc, uint32_t ip_be) noexcept
    {
        return nh_memo_[ifc][nh_memo_slot(ip_be)];
    }
    nh_memo nh_memo_[max_ifaces][nh_memo_slots];
    tx_buffer ktx_[max_ifaces]; // to the interfaces' kernel interfaces
    uint64_t now_tsc_ = 0;
    // process_burst's classification of its burst: a member rather than a
    // stack array constructed field by field for every burst (classify_one
    // resets each entry with one wide store).
    pkt_meta burst_meta_[max_burst];
    uint32_t stream_allocs_ = 0; // allocations of TCP/TLS clients (not in turn_clients)
    // The pool's mbuf layout, for fan-out copies (fanout.cc): where data
    // starts in a fresh mbuf, from the mbuf and from its buffer; 0 = not yet.
    uint16_t copy_data_off_ = 0;
    uint16_t copy_room_ = 0;
    uint32_t copy_buf_off_ = 0;
    bool copy_prefetchw_ = false; // the CPU has PREFETCHW (fanout.cc)
    bool copy_avx2_ = false;      // ... and AVX2 (copy_lines_avx2)
    // Raw pool mbufs for the next fan-out copies (take_copies): [pos, n)
    // are left, [pos, pf) already prefetched, about copy_stash_ahead of
    // them. Refilled from the pool when fewer than copy_stash_ahead are
    // left, so the rest moves to the front once per ~copy_stash_ahead
    // copies, not for every packet. Back to the pool when idle: a worker
    // that fans out holds up to copy_stash_cap mbufs of the pool meanwhile.
    static constexpr unsigned copy_stash_ahead = 64;
    static constexpr unsigned copy_stash_cap = 2 * copy_stash_ahead;
    rte_mbuf* copy_stash_[copy_stash_cap];
    unsigned copy_stash_n_ = 0;
    unsigned copy_stash_pos_ = 0;
    unsigned copy_stash_pf_ = 0;

    unsigned drain_commands() noexcept;
    void apply(flow_cmd* c) noexcept;
    void apply_alloc(flow_cmd* c) noexcept;
    // A plain IPv4 packet of a single-target leg from its remote, from the
    // leg's line 0 and RTP line alone; false (nothing done) when any other
    // case applies, for forward() to handle.
    // An IPv6 packet goes to forward_fast6. Inline in burst.cc, its only
    // caller.
    inline bool forward_fast(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept;
    // The same for a hot_fast6 leg: also reads the leg's line 7 (its
    // remote6 to check the source, fwd_remote6).
    bool forward_fast6(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept;
    // A hot_fast_srtp leg's IPv4 packet from its remote: SRTP in and out
    // and the rewrite from line 0's copies (worker.cc); false (nothing done)
    // for forward() to handle.
    bool forward_srtp(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept;
    void forward(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept;
    // forward()'s parts: may a leg without a remote latch, and SRTP in.
    drop latch_refusal(const leg* l, const pkt_meta& meta, const rte_ipv4_hdr* ip) const noexcept;
    drop srtp_in(rte_mbuf* m, const pkt_meta& meta, leg* l) noexcept;
    // ... and SRTP out with target t's out_ctx (send_to, forward_srtp).
    bool srtp_out(rte_mbuf* m, const pkt_meta& meta, leg* t) noexcept;
    // Recomputes line 0's copies of every leg of `s` (leg::hot, fwd_*) from
    // the legs' configuration and their targets' remotes: after add_session,
    // set_remote, set_crypto and a latch.
    void refresh_hot(session* s) noexcept;
    void refresh_hot(leg& l, leg* peers) noexcept;
    // process_burst's two passes and the act pass's prefetches (burst.cc).
    // burst_classify returns whether a packet of the burst is a TURN
    // client's (verdict::turn_client: lookup_turn_clients has work).
    bool burst_classify(rte_mbuf* const* pkts, unsigned n, pkt_meta* meta, bool received) noexcept;
    // Inline in burst.cc, its only caller.
    inline bool burst_find(const pkt_meta* meta, unsigned i, leg** legs, turn_alloc** allocs,
                           bool clients, uint32_t& plain, bool fetch_line0) noexcept;
    void burst_prefetch(rte_mbuf* const* pkts, const pkt_meta* meta, unsigned n, int i,
                        leg* const* legs, turn_alloc* const* allocs, uint32_t plain) noexcept;
    static void prefetch_leg_more(const rte_mbuf* m, const pkt_meta& meta, const leg* l) noexcept;
    static void prefetch_leg_ctx(const leg* l) noexcept;
    // What forward() will read of a packet of the general path beyond
    // what prefetch_leg_more and prefetch_leg_ctx asked for: its SRTP
    // contexts' key schedules, and the payload lines past the first
    // payload_lines_early (SRTP, fan-out); asked for one packet ahead.
    static constexpr uint32_t payload_lines_early = 4;
    static void prefetch_ahead(const rte_mbuf* m, const leg* l) noexcept;
    void account_rtp(leg* l, const uint8_t* p, uint32_t len) noexcept;
    void count_in_fast(leg* l, rte_mbuf* m, const pkt_meta& meta, uint32_t len) noexcept;
    void send_to(rte_mbuf* m, const pkt_meta& meta, leg* t, packed_ep remote, bool protect,
                 bool changed) noexcept;
    // The bodies of send_to, emit and emit_ep, always inlined
    // (dataplane/send_inl.h: worker.cc, emit6.cc and fan_out's copy loop).
    // `sums`: rewrite_udp4's (fan-out's copies of one packet), else nullptr.
    inline void send_to_inl(rte_mbuf* m, const pkt_meta& meta, leg* t, packed_ep remote,
                            bool protect, bool changed,
                            const rewrite_sums* sums = nullptr) noexcept;
    inline drop emit_inl(rte_mbuf* m, const pkt_meta& meta, unsigned ifc, uint32_t src_ip_be,
                         uint16_t src_port_be, packed_ep dst, udp_cksum ck,
                         const rewrite_sums* sums = nullptr) noexcept;
    inline drop emit_ep_inl(rte_mbuf* m, const pkt_meta& meta, unsigned laddr,
                            uint16_t src_port_be, packed_ep dst, const ip6_addr* dst6,
                            udp_cksum ck, const rewrite_sums* sums = nullptr) noexcept;
    // `m` to the n targets ready[] at remotes[]: copies to all but the last
    // (fanout.cc).
    void fan_out(rte_mbuf* m, const pkt_meta& meta, leg* const* ready, const packed_ep* remotes,
                 unsigned n, bool protect, bool changed) noexcept;
    void init_copy_layout() noexcept;
    unsigned take_copies(rte_mbuf** out, unsigned n, uint32_t data_len) noexcept;
    void prefetch_copies(rte_mbuf* const* c, unsigned n, uint32_t data_len) const noexcept;
    void release_copy_stash() noexcept;
    uint32_t copy_lines_of(const rte_mbuf* m) const noexcept;
    void copy_into(rte_mbuf* c, const rte_mbuf* m, uint32_t lines) noexcept;
    void copy_lines_avx2(rte_mbuf* c, const rte_mbuf* m, uint32_t lines) noexcept;
    template <bool wide>
    inline void copy_into_inl(rte_mbuf* c, const rte_mbuf* m, uint32_t lines) noexcept;
    // Rewrites `m` to go from (src_ip_be, src_port_be) on interface `ifc` to
    // `dst` and queues it for TX (or for control while the next hop's MAC is
    // unknown).
    // Returns drop::count when sent or held, else the reason `m` was dropped
    // (counted for the worker): no_route, mtu_exceeded.
    drop emit(rte_mbuf* m, const pkt_meta& meta, unsigned ifc, uint32_t src_ip_be,
              uint16_t src_port_be, packed_ep dst, udp_cksum ck) noexcept;
    void non_rtp_on_leg(rte_mbuf* m, const pkt_meta& meta) noexcept;

public:
    // Rewrites the classified packet `m` to go from slot `laddr` (either
    // family), UDP port src_port_be, to `dst` (of the slot's family; an
    // IPv6 one with its address in *dst6) and queues it for TX, or for
    // control while the next hop's MAC (ARP or ND) is unknown. The packet
    // may be of the other family: it is translated (IPv4 <-> IPv6). For
    // turn_path and forwarding. Returns drop::count when sent or held, else
    // the reason `m` was dropped (counted for the worker): no_route,
    // mtu_exceeded, no_mbuf.
    drop emit_ep(rte_mbuf* m, const pkt_meta& meta, unsigned laddr, uint16_t src_port_be,
                 packed_ep dst, const ip6_addr* dst6, udp_cksum ck) noexcept;

private:
    // emit_ep where either side is IPv6 (emit6.cc).
    drop emit_x(rte_mbuf* m, const pkt_meta& meta, const local_addr& la, uint16_t src_port_be,
                packed_ep dst, const ip6_addr* dst6, udp_cksum ck) noexcept;
    // The next hop towards IPv6 `dst` out of interface `out` (on-link:
    // dst itself), false when there is none.
    bool next_hop6(const iface& out, const ip6_addr& dst, ip6_addr& nh) const noexcept;
    // The next hop's MAC towards l.fwd_remote6 into l.fwd_mac, with the
    // IPv6 neighbour generation it was read at; false: no route or not
    // resolved yet (leg_path.cc).
    bool resolve_fwd_mac6(leg& l, const iface& out) const noexcept;
    // TURN fast path (turn_path.cc).
    void lookup_turn_clients(rte_mbuf* const* pkts, const pkt_meta* meta, unsigned n,
                             turn_alloc** allocs) noexcept;
    void turn_from_client(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a) noexcept;
    void turn_from_stream(rte_mbuf* m) noexcept;
    drop turn_c2p_target(const turn_alloc* a, const uint8_t* p, uint32_t plen, bool channel,
                         packed_ep& peer, ip6_addr& peer6, uint32_t& off,
                         uint32_t& len) const noexcept;
    void turn_relayed(turn_alloc* a, uint32_t len, bool channel) noexcept;
    bool is_own_address(uint32_t ip_be) const noexcept;
    unsigned own_slot6(const ip6_addr& a) const noexcept;
    void turn_c2p_send(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, packed_ep peer,
                       const ip6_addr& peer6, udp_cksum ck) noexcept;
    void turn_p2c_send(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, udp_cksum ck) noexcept;
    void to_stream(rte_mbuf* m, uint32_t headers, uint32_t token) noexcept;
    void turn_from_peer(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, bool from_wire) noexcept;
    void turn_hairpin(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, packed_ep peer,
                      const ip6_addr& peer6) noexcept;
    void turn_request(rte_mbuf* m) noexcept;
    void prefetch_alloc_more(const rte_mbuf* m, const pkt_meta& meta,
                             const turn_alloc* a) const noexcept;
    void handoff(rte_mbuf* m, unsigned owner, uint32_t mark) noexcept;
    void tx_enqueue(unsigned ifc, rte_mbuf* m) noexcept;
    void tx_flush(unsigned ifc) noexcept;
    void send_burst(tx_buffer& b, uint16_t port, counter& pkts, counter& nbytes,
                    drop full) noexcept;
    // The kernel interface (kernel_iface.h): wire -> kernel, policed and
    // batched on this worker's queue of the tap ...
    void to_kernel(rte_mbuf* m, const pkt_meta& meta) noexcept;
    void kernel_flush(unsigned ifc) noexcept;
    // ... and kernel -> wire: IPv4 only, MACs from the neighbour table.
    void from_kernel(unsigned ifc, rte_mbuf** pkts, unsigned n) noexcept;
    void to_control(rte_mbuf* m, exc_kind k) noexcept;
    bool police_exception(rte_mbuf* m, exc_kind k) noexcept;
    void drop_pkt(rte_mbuf* m, drop d) noexcept;
    // The leg's packet-rate limit (GCRA on the TSC: one compare and one add
    // a packet, no division); true: over it, `m` dropped and counted.
    [[gnu::always_inline]] bool over_rate(leg* l, rte_mbuf* m) noexcept
    {
        const uint64_t tat = l->rl_tat > now_tsc_ ? l->rl_tat : now_tsc_;
        if (tat - now_tsc_ > l->rl_burst_tsc) {
            l->stats.drop_pkt(drop::rate_limit);
            drop_pkt(m, drop::rate_limit);
            return true;
        }
        l->rl_tat = tat + l->rl_interval_tsc;
        return false;
    }
};

// RFC 5761 §4: RTCP packet types 192-223 (second byte without the marker bit
// in 64..95) on a shared port.
inline bool is_rtcp(const uint8_t* payload) noexcept
{
    const uint8_t pt = payload[1] & 0x7f;
    return pt >= 64 && pt <= 95;
}

// The per-packet steps every leg path takes, inline so that the fast path
// pays no calls for them (bench/load/instructions.sh; README.md, session 11).
// RFC 3550 receive statistics of an authenticated (or plain) packet: RTP
// feeds sequence accounting and jitter, RTCP is only counted. The RTP header
// is in the clear in SRTP too.
inline void worker::account_rtp(leg* l, const uint8_t* p, uint32_t len) noexcept
{
    rtp_quality& q = l->stats.rtp;
    if (is_rtcp(p)) {
        bump(q.rtcp);
        return;
    }
    if (len < 12)
        return;
    const uint8_t pt = p[1] & 0x7f;
    const uint16_t seq = static_cast<uint16_t>((p[2] << 8) | p[3]);
    const uint32_t ts =
            (uint32_t{p[4]} << 24) | (uint32_t{p[5]} << 16) | (uint32_t{p[6]} << 8) | p[7];
    const uint32_t ssrc =
            (uint32_t{p[8]} << 24) | (uint32_t{p[9]} << 16) | (uint32_t{p[10]} << 8) | p[11];
    // The leg's own clock is in a cold line: only legs that have one read it.
    const bool own = (l->hot & hot_own_clock) != 0;
    const uint64_t mult = own ? l->rtp_mult : rtp_mult_pt[pt];
    const uint32_t rate = own ? l->clock_rate : rtp_rate_pt[pt];
    q.on_rtp(seq, ts, ssrc, pt, mult != 0 ? rtp_arrival(now_tsc_, mult) : 0, mult != 0 ? rate : 0);
}

inline void worker::tx_enqueue(unsigned ifc, rte_mbuf* m) noexcept
{
    tx_buffer& b = tx_[ifc];
    b.pkts[b.n++] = m;
    if (b.n == max_burst)
        tx_flush(ifc);
}

// What a fast-path packet counts on its receiving leg (line 0 and the RTP
// line), as forward() does.
[[gnu::always_inline]] inline void worker::count_in_fast(leg* l, rte_mbuf* m, const pkt_meta& meta,
                                                       uint32_t len) noexcept
{
    bump(l->ctr.in_pkts);
    bump(l->ctr.in_bytes, len);
    l->last_seen_tsc.store(now_tsc_, std::memory_order_relaxed);
    account_rtp(l, udp_payload(m, meta), udp_payload_len(m, meta));
}

} // namespace isar::dp
