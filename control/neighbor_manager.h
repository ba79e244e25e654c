// The exception path on the control lcore: ARP and IPv6 Neighbor Discovery
// (answers, learning, resolving next hops for held packets, aging), ICMP and
// ICMPv6 echo, and whatever else the workers could not handle (STUN and DTLS
// are counted until WebRTC support lands).
//
// neighbor_manager.cc: the core (dispatch, holds, aging) and ARP/ICMP;
// nd.cc: IPv6 (NS/NA, echo, resolution, unsolicited NA).
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "dataplane/dataplane.h"
#include "dataplane/ip6.h"

namespace isar::ctl {

class neighbor_manager {
public:
    explicit neighbor_manager(dp::dataplane& dp);
    ~neighbor_manager();

    // Drains the exception rings; returns the number of packets handled.
    unsigned poll();
    void handle(rte_mbuf* m);
    // Once every ~100 ms: resend ARP requests / NS, give up on silent
    // neighbours, age the neighbour tables (probe stale entries, remove the
    // ones that do not answer).
    void tick(uint64_t now_tsc);
    // Announces every interface address (gratuitous ARP, unsolicited NA).
    void announce();
    // Starts resolving the next hop of `ip_be` / `ip6` on `ifc` (an ARP
    // request or NS, retried as for held packets) unless it is known or
    // being resolved: a configured remote's first packets then find its MAC.
    void resolve(unsigned ifc, uint32_t ip_be);
    void resolve(unsigned ifc, const dp::ip6_addr& ip6);
    bool holding() const { return !pending_.empty(); }
    // The TSC clock learning and holding stamp entries with (rte_rdtsc);
    // tests move time with their own, with tick()'s argument to match.
    using clock_fn = uint64_t (*)();
    void set_clock(clock_fn c) { clock_ = c; }

    // The ARP/ND/ICMPv6 counters that `stats` (neighbors) and /metrics
    // (isar_neighbor_messages_total{kind}) show: field, JSON name, metric kind.
#define ISAR_FOREACH_NEIGH_COUNTER(_)                                                              \
    _(arp_in, "arp_in", "arp_in")                                                                  \
    _(arp_replies, "arp_replies", "arp_replies_sent")                                             \
    _(arp_requests, "arp_requests", "arp_requests_sent")                                          \
    _(arp_learned, "arp_learned", "arp_learned")                                                   \
    _(arp_bad, "arp_bad", "arp_bad")                                                               \
    _(nd_in, "nd_in", "nd_in")                                                                     \
    _(nd_bad, "nd_bad", "nd_bad")                                                                  \
    _(nd_ns_answered, "nd_ns_answered", "nd_ns_answered")                                         \
    _(nd_ns_sent, "nd_ns_sent", "nd_ns_sent")                                                      \
    _(nd_na_unsolicited, "nd_na_unsolicited", "nd_na_unsolicited")                                \
    _(nd_learned, "nd_learned", "nd_learned")                                                      \
    _(nd_other, "nd_other", "nd_other")                                                            \
    _(nd_dad_conflict, "nd_dad_conflict", "nd_dad_conflict")                                      \
    _(icmp6_in, "icmp6_in", "icmp6_in")                                                            \
    _(icmp6_echo_replies, "icmp6_echo_replies", "icmp6_echo_replies")                             \
    _(icmp6_other, "icmp6_other", "icmp6_other")                                                   \
    _(icmp6_bad, "icmp6_bad", "icmp6_bad")                                                         \
    _(neigh_probes, "probes", "probes_sent")                                                       \
    _(neigh_expired, "expired", "expired")                                                         \
    _(neigh_moved, "moved", "moved")                                                               \
    _(neigh_full, "full", "full")
    struct counters {
        uint64_t arp_in = 0, arp_replies = 0, arp_requests = 0, arp_learned = 0, arp_bad = 0;
        uint64_t icmp_in = 0, icmp_echo_replies = 0, icmp_other = 0;
        uint64_t held = 0, held_sent = 0, held_dropped = 0;
        uint64_t stun = 0, dtls = 0, tx_failed = 0;
        // IPv6 Neighbor Discovery (RFC 4861).
        uint64_t nd_in = 0;         // NS/NA/RS/RA/redirect received
        uint64_t nd_bad = 0;        // bad checksum, hop limit, length, option, address
        uint64_t nd_ns_answered = 0; // NA sent for an NS to one of our addresses
        uint64_t nd_ns_sent = 0;    // NS sent: resolution and probes
        uint64_t nd_na_unsolicited = 0; // NA sent by announce()
        uint64_t nd_learned = 0;    // entries added or updated from NS/NA
        uint64_t nd_other = 0;      // RS/RA/redirect, NS for others, unasked NA
        uint64_t nd_dad_conflict = 0; // someone else claims one of our addresses
        // ICMPv6 other than ND.
        uint64_t icmp6_in = 0, icmp6_echo_replies = 0, icmp6_other = 0;
        uint64_t icmp6_bad = 0; // bad checksum or truncated
        // Both families' tables.
        uint64_t neigh_probes = 0;  // unicast re-confirmation probes sent
        uint64_t neigh_expired = 0; // entries removed: no answer to the probes
        uint64_t neigh_moved = 0;   // a known neighbour answered with a new MAC
        uint64_t neigh_full = 0;    // not learned: the table was full
    };
    const counters& stats() const { return stats_; }
    // Fill levels of the hold queues.
    struct hold_fill {
        unsigned held = 0;        // packets held in all
        unsigned next_hops = 0;   // next hops being resolved
        unsigned max_per_hop = 0; // the longest queue
        unsigned limit_per_hop = 0, limit_total = 0;
    };
    hold_fill fill() const;
    // Fill of the neighbour tables, all interfaces together.
    struct table_fill {
        unsigned v4 = 0, v6 = 0;
        unsigned capacity = 0; // per family, all interfaces together
    };
    table_fill neighbors() const;

    // Defaults of [dataplane] hold_per_next_hop and hold_total (the limits
    // in force are dp.config()'s).
    static constexpr unsigned max_held_per_hop = 64;
    static constexpr unsigned max_held_total = 4096;
    static constexpr unsigned max_tries = 3;
    // Aging (RFC 4861 §7.3, simplified; IPv4 too): an entry is REACHABLE
    // this long after an answer, then STALE (still used) and probed
    // max_tries times, one second apart, then removed.
    static constexpr unsigned reachable_s = 30;

private:
    // A next hop being resolved: IPv4 in ip.b[0..3] (family 4).
    struct hop {
        unsigned ifc;
        uint8_t family;
        dp::ip6_addr ip;
        bool operator<(const hop& o) const
        {
            if (ifc != o.ifc)
                return ifc < o.ifc;
            if (family != o.family)
                return family < o.family;
            return memcmp(ip.b, o.ip.b, 16) < 0;
        }
    };
    static hop hop4(unsigned ifc, uint32_t ip_be);
    static hop hop6(unsigned ifc, const dp::ip6_addr& ip);
    struct pending {
        std::vector<rte_mbuf*> held;
        unsigned tries = 0;
        uint64_t last_req_tsc = 0;
    };

    // neighbor_manager.cc
    void on_arp(rte_mbuf* m, unsigned ifc);
    void on_icmp(rte_mbuf* m, unsigned ifc);
    void on_hold(rte_mbuf* m, unsigned ifc);
    void hold(rte_mbuf* m, const hop& nh);
    void learned(const hop& h);
    void learn4(unsigned ifc, uint32_t ip_be, const rte_ether_addr& mac);
    void send_request(unsigned ifc, uint32_t target_be, const rte_ether_addr* unicast = nullptr);
    void ask(const hop& h, const rte_ether_addr* unicast = nullptr);
    void age(unsigned ifc, uint64_t now_tsc);
    void moved(unsigned ifc, const char* addr, const rte_ether_addr& from,
               const rte_ether_addr& to);
    void tx(unsigned ifc, rte_mbuf* m);
    int iface_of_port(uint16_t port) const;
    bool our_ip4(unsigned ifc, uint32_t ip_be) const;

    // nd.cc
    void on_nd(rte_mbuf* m, unsigned ifc);
    void on_icmp6(rte_mbuf* m, unsigned ifc);
    void on_ns(rte_mbuf* m, unsigned ifc, unsigned l4, unsigned len);
    void on_na(rte_mbuf* m, unsigned ifc, unsigned l4, unsigned len);
    void learn6(unsigned ifc, const dp::ip6_addr& ip, const rte_ether_addr& mac);
    bool our_ip6(unsigned ifc, const dp::ip6_addr& ip) const;
    bool next_hop6(unsigned ifc, const dp::ip6_addr& dst, dp::ip6_addr* nh) const;
    // An NS for `target` (to its solicited-node address, or to `unicast`).
    void send_ns(unsigned ifc, const dp::ip6_addr& target, const rte_ether_addr* unicast = nullptr);
    // An NA from our `target` to `dst` (MAC `dst_mac`).
    void send_na(unsigned ifc, const dp::ip6_addr& target, const dp::ip6_addr& dst,
                 const rte_ether_addr& dst_mac, bool solicited);
    // The source address of our ND messages on `ifc` (its first IPv6 slot).
    bool source6(unsigned ifc, dp::ip6_addr* src) const;

    static uint64_t tsc() { return rte_rdtsc(); }

    dp::dataplane& dp_;
    clock_fn clock_ = &tsc;
    std::map<hop, pending> pending_; // next hop -> held packets
    unsigned held_total_ = 0;
    uint64_t last_age_tsc_ = 0;
    uint64_t last_moved_log_tsc_ = 0;
    counters stats_;
};

} // namespace isar::ctl
