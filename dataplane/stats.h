// Counters: single writer (one worker), read by control. Relaxed load+store,
// never fetch_add, one cache-aligned block per worker (STYLE §3.3).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/rtp_quality.h"

namespace isar::dp {

// Every packet the dataplane does not forward ends in exactly one of these.
#define ISAR_FOREACH_DROP(_)                                                                       \
    _(bad_l2, "frame shorter than an Ethernet header")                                             \
    _(odd_ethertype, "EtherType other than IPv4, IPv6 or ARP (VLAN, ...)")                         \
    _(bad_ip, "truncated IPv4 header, bad version, IHL or total length")                          \
    _(bad_ip_cksum, "IPv4 header checksum wrong")                                                 \
    _(ip_fragment, "IP fragment (IPv4, or IPv6 Fragment header)")                                 \
    _(not_for_us, "destination is not one of the interface's addresses")                          \
    _(not_udp, "IP protocol other than UDP or ICMP")                                              \
    _(bad_udp, "truncated UDP header or bad UDP length")                                          \
    _(bad_udp_cksum, "UDP checksum wrong (as verified by the port)")                              \
    _(multi_seg, "packet spans several mbufs")                                                     \
    _(no_flow, "no leg on this UDP port")                                                          \
    _(not_rtp, "payload is not RTP/RTCP, STUN or DTLS (RFC 7983)")                                 \
    _(rtp_short, "RTP/RTCP payload shorter than 8 bytes")                                          \
    _(src_mismatch, "source differs from the leg's latched remote (strict source)")               \
    _(srtp_auth, "SRTP/SRTCP authentication tag did not verify (tampered or wrong key)")         \
    _(srtp_replay, "SRTP/SRTCP index replayed or older than the replay window")                  \
    _(srtp_short, "SRTP/SRTCP packet shorter than header + tag")                                 \
    _(srtp_bad, "SRTP/SRTCP packet malformed (version, CSRC count, extension length)")           \
    _(srtp_ssrc_limit, "more SSRCs than the leg's crypto context has slots for")                 \
    _(srtp_protect, "protecting for the target failed (no tailroom, SSRC limit, index used up)") \
    _(no_target, "leg forwards to no other leg")                                                   \
    _(target_no_remote, "target leg has no remote address yet")                                    \
    _(no_route, "target's remote is off-link and the interface has no gateway")                    \
    _(no_mbuf, "mempool empty (fan-out copy or hold)")                                             \
    _(handoff_full, "handoff ring to the owning worker full")                                      \
    _(exception_full, "exception ring to the control lcore full")                                  \
    _(tx_full, "transmit queue full")                                                              \
    _(rate_limit, "leg's max_pps exceeded (token bucket)")                                         \
    _(mtu_exceeded, "packet (after SRTP or TURN framing) larger than the egress port's MTU")    \
    _(latch_closed, "leg without a remote, past its latch window ([relay] latch_window_s)")      \
    _(latch_refused, "leg without a remote: source outside the leg's latch_from")                \
    /* IPv6 classify drops: after the leg's reasons, which cost leg memory */                   \
    _(bad_ip6, "truncated IPv6 header, or payload length beyond the frame")                       \
    _(ipv6_ext, "IPv6 extension header not skipped (ESP, AH, unknown, chain too long)")         \
    _(bad_udp_zero_cksum, "IPv6 UDP with checksum 0 (RFC 8200 8.1)")                              \
    _(turn_no_alloc, "TURN ChannelData or Send indication from a 5-tuple without an allocation") \
    _(turn_no_permission, "TURN peer address without a permission on the allocation")          \
    _(turn_bad_channel, "TURN ChannelData on a channel that is not bound (or expired)")          \
    _(turn_malformed, "malformed ChannelData or Send indication, or non-STUN to a TURN port")    \
    _(turn_no_room, "no head- or tailroom in the mbuf for the TURN framing")                     \
    _(turn_spoofed, "packet from the wire with the relay's own address as source")              \
    _(turn_policed, "STUN/TURN request over the control lcore's rate ([turn] max_requests_per_s)") \
    _(policed_arp, "ARP over its rate to the control lcore ([exception] arp_*_pps)")             \
    _(policed_icmp, "ICMP over its rate to the control lcore ([exception] icmp_pps)")            \
    _(policed_stun, "STUN to a leg port over its rate to control ([exception] stun_pps)")        \
    _(policed_dtls, "DTLS to a leg port over its rate to control ([exception] dtls_pps)")        \
    _(turn_stream_full, "TURN frame for a TCP/TLS client: its stream thread's ring is full")   \
    _(policed_kernel, "frame for the kernel interface over its rate ([exception] kernel_pps)")  \
    _(kernel_full, "TX queue of the kernel interface full (the kernel is not keeping up)")     \
    _(kernel_not_ipv4, "frame from the kernel interface that is not IPv4 (the kernel never ARPs)") \
    _(kernel_bad_source, "frame from the kernel interface not from the interface's address (routed)") \
    _(policed_nd, "ICMPv6 Neighbor Discovery over its rate to control ([exception] nd_pps)")

enum class drop : uint8_t {
#define ISAR_DROP_ENUM(name, text) name,
    ISAR_FOREACH_DROP(ISAR_DROP_ENUM)
#undef ISAR_DROP_ENUM
        count
};
constexpr unsigned n_drops = static_cast<unsigned>(drop::count);
// A leg counts the reasons up to latch_refused; those after it (IPv6
// classification, TURN and the exception-path policers) never happen on a
// leg, and a leg does not pay memory for them (one more would cost every leg
// a cache line: see leg.h).
constexpr unsigned n_leg_drops = static_cast<unsigned>(drop::latch_refused) + 1;

const char* drop_name(drop d) noexcept;
const char* drop_help(drop d) noexcept;

using counter = std::atomic<uint64_t>;

// Single-writer increment: a plain load and store, no locked instruction.
inline void bump(counter& c, uint64_t v = 1) noexcept
{
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}
inline uint64_t read(const counter& c) noexcept
{
    return c.load(std::memory_order_relaxed);
}

struct alignas(64) worker_stats {
    counter rx_pkts{0};
    counter rx_bytes{0};
    counter tx_pkts{0};
    counter tx_bytes{0};
    counter fwd_pkts{0};       // packets handed to TX for a target leg
    counter exception_pkts{0}; // handed to the control lcore
    counter held_pkts{0};      // handed to control to wait for ARP
    counter handoff_out{0};
    counter handoff_in{0};
    counter cmds_applied{0};
    counter loops{0};
    counter busy_loops{0};
    counter busy_tsc{0};       // TSC cycles spent in loops that did work
    counter turn_c2p_pkts{0};  // TURN: client -> peer packets sent
    counter turn_c2p_bytes{0}; // their data bytes (without TURN framing)
    counter turn_p2c_pkts{0};  // TURN: peer -> client packets sent
    counter turn_p2c_bytes{0}; // their data bytes (without TURN framing)
    counter turn_channel_data{0}; // of which ChannelData (either way)
    counter turn_hairpin{0};   // client -> peer where the peer is another allocation here
    counter turn_requests{0};  // STUN/TURN requests handed to control
    counter turn_stream_in{0};  // frames from TCP/TLS clients taken from stream threads
    counter turn_stream_out{0}; // frames for TCP/TLS clients handed to stream threads
    // The kernel interface (TURN over TCP/TLS, kernel_iface.h): frames from
    // the wire its queue accepted, and frames read from it (the kernel's,
    // towards the wire; those not sent count a drop reason).
    counter to_kernel_pkts{0};
    counter to_kernel_bytes{0};
    counter from_kernel_pkts{0};
    counter from_kernel_bytes{0};
    std::array<counter, n_drops> drops{};

    void drop_pkt(drop d) noexcept { bump(drops[static_cast<unsigned>(d)]); }
};

// Per leg, written by the leg's owning worker only: what every received
// packet moves (in the leg's line 0, see leg.h) ...
struct leg_counters {
    counter in_pkts{0};
    counter in_bytes{0};
};

// ... and the RTP statistics (their hot part is the leg's line 1) and the
// drop counters.
struct leg_stats {
    rtp_quality rtp; // RFC 3550 receive statistics of what the remote sends
    std::array<counter, n_leg_drops> drops{};

    void drop_pkt(drop d) noexcept
    {
        if (static_cast<unsigned>(d) < n_leg_drops)
            bump(drops[static_cast<unsigned>(d)]);
    }
};

} // namespace isar::dp
