// What the dataplane knows of a session and its legs.
//
// Ownership: control allocates a session (and its legs) and hands it to the
// owning worker with a command. From then until the worker acknowledges the
// delete command, the worker is the only writer of the mutable fields; control
// reads counters and the latched remote with relaxed atomics. Control frees the
// session only after the delete was acknowledged: that acknowledgement is the
// grace period (no other worker ever dereferences a leg; packets that arrive
// on another worker are handed off by port number, see owner_of_port()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <rte_ether.h>

#include "dataplane/ip6.h"
#include "dataplane/stats.h"

namespace isar::crypto {
class srtp_context;
}

namespace isar::dp {

// A session has 2 to 256 legs. Legs 0-15 of a session of up to 16 legs are
// addressed by a 16-bit mask in the leg's first line (the two-leg call pays
// nothing for conferences); a larger session's legs forward by a target list.
constexpr unsigned max_legs_per_session = 256;
constexpr unsigned max_mask_legs = 16;

// One bit per leg of a session (flow_cmd::verify_mask).
struct leg_bits {
    uint64_t w[max_legs_per_session / 64] = {};
    void set(unsigned i) noexcept { w[i >> 6] |= uint64_t{1} << (i & 63); }
    bool test(unsigned i) const noexcept { return (w[i >> 6] >> (i & 63)) & 1u; }
    bool operator==(const leg_bits&) const = default;
};

// A remote endpoint packed as (IPv4 << 16 | port), both in network byte order
// as they appear in the packet; 0 means "none". An IPv6 endpoint is
// ep_v6_bit | fold32(address) << 16 | port: equal packed values are only a
// candidate match, the whole address is stored next to it (leg::remote6,
// flow_cmd::remote6), written before the packed value is published.
using packed_ep = uint64_t;
constexpr packed_ep ep_v6_bit = 1ull << 63;
constexpr packed_ep pack_ep(uint32_t ip_be, uint16_t port_be) noexcept
{
    return (static_cast<uint64_t>(ip_be) << 16) | port_be;
}
inline packed_ep pack_ep6(const ip6_addr& a, uint16_t port_be) noexcept
{
    return ep_v6_bit | (static_cast<uint64_t>(a.fold32()) << 16) | port_be;
}
constexpr bool ep_is_v6(packed_ep e) noexcept { return (e & ep_v6_bit) != 0; }
// IPv4 endpoints only (of an IPv6 one: its fold32 digest).
constexpr uint32_t ep_ip(packed_ep e) noexcept { return static_cast<uint32_t>(e >> 16); }
constexpr uint16_t ep_port(packed_ep e) noexcept { return static_cast<uint16_t>(e & 0xffff); }

struct session;
struct turn_alloc;
struct turn_peer_table;

// Flags of leg::hot (the worker's own view, recomputed by worker::refresh_hot
// whenever what they depend on changes).
// hot_fast: a plain leg with exactly one target that is plain too, both of
//   one family: a packet from its remote forwards from line 0 alone
//   (worker::forward_fast), while fwd_remote is set; with hot_fast6 both are
//   IPv6, and the packet also reads line 7 (remote6, fwd_remote6).
constexpr uint8_t hot_fast = 1;
// hot_mac: fwd_mac is the next hop's MAC towards fwd_remote as the
//   interface's neighbour table had it at generation fwd_nb_gen (of the
//   IPv6 entries for a hot_fast6 leg).
constexpr uint8_t hot_mac = 2;
// hot_own_clock: the leg has a configured clock_rate (rtp_mult, cold line).
constexpr uint8_t hot_own_clock = 4;
// hot_srtp: the leg has an in_ctx (cold line): prefetch it.
constexpr uint8_t hot_srtp = 8;
// hot_rl: the leg has a rate limit (rl_*, cold line): the fast path reads it.
constexpr uint8_t hot_rl = 16;
// hot_fast6: with hot_fast, the leg and its single target are IPv6
//   (worker::forward_fast6).
constexpr uint8_t hot_fast6 = 32;
// hot_fast_srtp: not hot_fast because SRTP is involved (an in_ctx, or the
//   single target's out_ctx), with exactly one target, both IPv4: a packet
//   from its remote forwards by worker::forward_srtp, from line 0's copies
//   (fwd_*, the MAC with hot_mac), without forward()'s latching, target walk
//   and emit's route and MAC lookups. Counted as the general path counts.
constexpr uint8_t hot_fast_srtp = 64;

// Laid out for the forwarding path, which with many legs pays one cache miss
// per line it touches. A plain packet of a two-leg call touches the
// receiving leg's line 0 - its remote (the expected source), its in
// counters, and a copy of what its single target needs to send (the
// target's remote, relay slot and port, and the next hop's MAC with the
// neighbour generation it was read at) - and line 1, the hot line of the RTP
// statistics: never the target leg, never the neighbour table. Everything
// else (SRTP contexts, rate limit, latching, target lists, the target's own
// out counters of the general path, drop counters, remote6) is read only by
// packets that are not the common case (worker::forward); an IPv6 leg's
// common packet (hot_fast6) also reads its line 7, where remote6 (the whole
// source address to check) and fwd_remote6 (the target's) are. Only the owning
// worker writes a leg once it is installed; it keeps the copies in line 0
// consistent with the target (worker::refresh_hot on add_session,
// set_remote, set_crypto and latching, which all run on that worker).
//
// Out counters: a packet a hot_fast leg forwards on the fast path is counted
// only in its own line 0 (ctr.in_*); one that took the general path also in
// unfwd_* (cold), and the target it reached in the target's out_*. A leg
// that is not hot_fast counts only in_* and its targets' out_*. What a leg
// sent is thus out_* plus, for every hot_fast leg aiming at it, in_* -
// unfwd_* (leg_out(), which control reports); when a leg stops being
// hot_fast the worker moves that difference into the target's out_*, when
// it becomes hot_fast it starts unfwd_* at in_* (worker::refresh_hot).
struct alignas(64) leg {
    // ---- line 0: everything the common packet needs -------------------------
    // The latched or configured remote; an IPv6 one (ep_is_v6) has its
    // address in remote6, stored before this with release order.
    std::atomic<packed_ep> remote{0};
    leg_counters ctr;         // in_pkts, in_bytes
    counter last_seen_tsc{0}; // 0 = never
    // The single target's remote (a copy of peers[fwd_target].remote, 0 =
    // none yet; read by the general path too), its relay slot and port.
    packed_ep fwd_remote = 0;
    uint32_t fwd_nb_gen = 0; // neighbor_table::generation() fwd_mac was read at
    uint16_t fwd_laddr = 0;
    uint16_t fwd_port_be = 0;
    rte_ether_addr fwd_mac{};
    uint8_t hot = 0;        // hot_* flags
    uint8_t index = 0;      // position in session::legs
    uint8_t fwd_target = 0; // the single target's index (ntargets == 1)
    // bit i: forwards to peers[i]. Only sessions of up to max_mask_legs
    // legs; a larger one leaves it 0 and sets target_list.
    uint16_t target_mask = 0;
    uint8_t ntargets = 0; // up to 255
    // Authenticated pass-through: every target's out_ctx has the same suite and
    // keys as in_ctx, so packets are only verified and forwarded unchanged.
    // Decided by control.
    bool verify_only = false;

    // ---- line 1: RTP statistics (hot part; the cold part and the drop
    // counters follow) ------------------------------------------------------
    alignas(64) leg_stats stats;

    // ---- cold: read only by packets of the general path and by control ----
    leg* peers = nullptr; // == sess->legs
    // SRTP, owned by control (freed only after the worker acknowledged the
    // command that stopped using them); swapped by cmd_op::set_crypto.
    // nullptr = plain.
    crypto::srtp_context* in_ctx = nullptr; // how the remote protects what it sends us
    // Packet-rate limit (GCRA token bucket on the TSC, no division per
    // packet): one packet per rl_interval_tsc, bursts up to rl_burst_tsc
    // ahead. 0 = unlimited. Computed by control from max_pps.
    uint64_t rl_interval_tsc = 0;
    uint64_t rl_burst_tsc = 0;
    uint64_t rl_tat = 0; // theoretical arrival time of the next packet
    // RTP clock for jitter: rtp_mult(clock_rate, tsc_hz) of the configured
    // clock_rate (0 = by payload type: static PTs their RFC 3551 rate,
    // dynamic PTs 90000; see worker::rtp_mult_pt). hot_own_clock says != 0.
    uint64_t rtp_mult = 0;
    uint32_t clock_rate = 0;
    uint16_t port_id = 0; // DPDK port of the leg's interface

    // ---- line 7: sending to this leg's remote (the general path: fan-out,
    // SRTP, IPv6); with its remote (line 0, or the single-target sender's
    // fwd_remote), all a sender reads of a target. An IPv6 leg's fast path
    // (hot_fast6) reads its own remote6 and fwd_remote6 here.
    alignas(64) crypto::srtp_context* out_ctx = nullptr; // how we protect what we send the remote
    // Sent to this leg's remote by the general path; see leg_out() for the
    // fast path's.
    counter out_pkts{0};
    counter out_bytes{0};
    uint16_t laddr = 0;         // relay address: the dataplane's slot (local_addr)
    uint16_t local_port_be = 0; // relay UDP port, network order
    uint16_t iface = 0;         // index into the dataplane's interfaces
    uint8_t family = 4;         // its family (the remote's too): 4 or 6
    // An IPv6 remote's address (see remote); only IPv6 legs read this.
    ip6_addr remote6{};
    // The single target's remote6 when fwd_remote is IPv6 (a copy, kept by
    // worker::refresh_hot as fwd_remote is).
    ip6_addr fwd_remote6{};

    // ---- line 8: control's view, latching, fast-path bookkeeping ----------
    // The targets as configured (for control's view; see target()) of a
    // session of up to max_mask_legs legs; the worker forwards by
    // target_mask, in leg order.
    uint8_t targets[max_mask_legs - 1] = {};
    // A larger session: its ntargets targets in leg order, which the worker
    // forwards by (session-owned storage, see session::target_lists).
    const uint8_t* target_list = nullptr;
    session* sess = nullptr;
    // Latching (read only by a packet from a leg that has no remote): until
    // latch_deadline_tsc (0 = no limit; [relay] latch_window_s), and only
    // from latch_net_be/latch_mask_be (mask 0 = anywhere; latch_from=CIDR).
    uint64_t latch_deadline_tsc = 0;
    uint32_t latch_net_be = 0;
    uint32_t latch_mask_be = 0;
    // Received and counted in ctr, but not forwarded by the fast path
    // (hot_fast legs only; see leg_out()).
    counter unfwd_pkts{0};
    counter unfwd_bytes{0};

    unsigned target(unsigned i) const noexcept
    {
        return target_list != nullptr ? target_list[i] : targets[i];
    }
    // The session's legs (== peers) from line 0 alone: legs are one array.
    leg* first_leg() noexcept { return this - index; }
    const leg* first_leg() const noexcept { return this - index; }
};
// The layout the comment above describes (the fast path's reads and writes
// all in line 0 and line 1; a target of the general path: its line 7, and
// for a fan-out its line 0 too).
static_assert(offsetof(leg, remote) == 0 && offsetof(leg, ctr) == 8 &&
                      offsetof(leg, fwd_remote) < 64 && offsetof(leg, fwd_mac) < 64 &&
                      offsetof(leg, verify_only) < 64,
              "leg line 0: what the fast path reads and writes");
static_assert(offsetof(leg, stats) == 64 && offsetof(leg, stats) + offsetof(leg_stats, rtp) +
                                                    offsetof(rtp_quality, restarts) == 128,
              "leg line 1: the RTP statistics' hot part");
static_assert(offsetof(leg, peers) == 64 + sizeof(leg_stats), "cold fields after the drop counters");
static_assert(offsetof(leg, port_id) / 64 == offsetof(leg, peers) / 64 &&
                      offsetof(leg, rl_tat) / 64 == offsetof(leg, rtp_mult) / 64,
              "leg cold fields: one line (prefetch_leg_more asks for it once)");
static_assert(offsetof(leg, out_ctx) == 7 * 64, "leg line 7: what sending to the leg's remote needs");
static_assert(offsetof(leg, remote6) / 64 == 7 && offsetof(leg, fwd_remote6) / 64 == 7 &&
                      offsetof(leg, fwd_remote6) + 16 <= 8 * 64,
              "leg line 7: an IPv6 fast packet's source check and destination in one line");
static_assert(sizeof(leg) == 576, "a leg is nine lines; more costs every call memory");

// An IPv4 packet from the leg's remote forwards from line 0 and the RTP line
// alone, which process_burst prefetches for every leg: the flow table's
// leg_plain_tag (set by worker::refresh_hot), so that process_burst does not
// read line 0 to find out.
inline bool leg_plain(const leg& l) noexcept
{
    return (l.hot & (hot_fast | hot_fast6 | hot_rl | hot_own_clock)) == hot_fast && l.fwd_remote != 0;
}

// What control reports a leg sent: the general path's out_* plus what every
// single-target leg aiming at it forwarded on the fast path.
struct leg_sent {
    uint64_t pkts = 0;
    uint64_t bytes = 0;
};
leg_sent leg_out(const session& s, unsigned i) noexcept;

// Frees a session's legs (see session::session).
struct leg_array_free {
    uint32_t n = 0;
    bool dpdk_heap = false;
    void operator()(leg* p) const noexcept;
};

// Sized to its legs (a two-leg call does not pay for sixteen). The legs live
// in the DPDK heap - hugepages when the EAL has them, so that a worker
// touching a million legs does not also miss the TLB on each - or, when that
// heap is exhausted, in the C++ heap.
struct session {
    // Legs on NUMA `socket` (the owning worker's; -1 = any).
    explicit session(uint32_t n, int socket = -1); // lint: control-only
    uint32_t owner = 0;           // worker index
    uint32_t nlegs;
    std::unique_ptr<leg[], leg_array_free> legs;
    // Sessions of more than max_mask_legs legs: every leg's target list
    // (leg i's at i * (nlegs - 1)), set by control before the install.
    std::unique_ptr<uint8_t[]> target_lists;
};

// Worker that owns relay UDP port `port`: ports are dealt to workers in
// pairs (2k and 2k+1 share an owner), so that an RTP/RTCP pair, and TURN's
// EVEN-PORT allocation with the odd port it reserves, stay on one worker.
// Asked for every packet, so the usual worker counts divide by a constant (a
// multiply) instead of a hardware division.
constexpr unsigned owner_of_port(uint16_t port, unsigned nworkers) noexcept
{
    const unsigned pair = port >> 1;
    switch (nworkers) {
    case 1:
        return 0;
    case 2:
        return pair % 2u;
    case 3:
        return pair % 3u;
    case 4:
        return pair % 4u;
    case 5:
        return pair % 5u;
    case 6:
        return pair % 6u;
    case 7:
        return pair % 7u;
    case 8:
        return pair % 8u;
    default:
        return pair % nworkers;
    }
}

// ---- commands: control -> worker, acknowledged on the completion ring -----
enum class cmd_op : uint8_t {
    add_session, // install every leg of `sess` in the worker's flow table
    del_session, // remove them; after the ack control may free `sess`
    set_remote,  // legs[leg_index].remote = remote (0 clears: latch again)
    set_crypto,  // swap legs[leg_index].in_ctx/out_ctx (per `flags`), set every
                 // leg's verify_only from `verify_mask`, and, with
                 // crypto_set_remote, the remote; the ack returns the old
                 // contexts in in_ctx/out_ctx for control to free
    add_alloc,       // install `alloc`: its relayed port and its client 5-tuple
    del_alloc,       // remove both; after the ack control may free `alloc`
    set_alloc_peers, // alloc's permissions and channels = *peers (copied)
};

// flow_cmd::flags for set_crypto
constexpr uint8_t crypto_set_in = 1;
constexpr uint8_t crypto_set_out = 2;
constexpr uint8_t crypto_set_remote = 4;

struct alignas(64) flow_cmd {
    uint64_t seq = 0;
    cmd_op op = cmd_op::add_session;
    uint8_t leg_index = 0; // legs are 0-255
    int32_t status = 0; // set by the worker: 0 or -errno
    session* sess = nullptr;
    packed_ep remote = 0;
    ip6_addr remote6{}; // the address of an IPv6 `remote` (ep_is_v6)
    // set_crypto
    uint8_t flags = 0;
    leg_bits verify_mask; // bit i = legs[i].verify_only
    crypto::srtp_context* in_ctx = nullptr;
    crypto::srtp_context* out_ctx = nullptr;
    // set_remote / set_crypto with crypto_set_remote to 0 (latch again): the
    // leg's new latch deadline (0 = none).
    uint64_t latch_deadline_tsc = 0;
    // TURN (add_alloc, del_alloc, set_alloc_peers): sess is nullptr.
    turn_alloc* alloc = nullptr;
    const turn_peer_table* peers = nullptr;
};

} // namespace isar::dp
