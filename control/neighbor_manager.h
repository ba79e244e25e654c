// The exception path on the control lcore: ARP (answers, learning, resolving
// next hops for held packets), ICMP echo, and whatever else the workers could
// not handle (STUN and DTLS are counted until WebRTC support lands).
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <rte_mbuf.h>

#include "dataplane/dataplane.h"

namespace isar::ctl {

class neighbor_manager {
public:
    explicit neighbor_manager(dp::dataplane& dp);
    ~neighbor_manager();

    // Drains the exception rings; returns the number of packets handled.
    unsigned poll();
    void handle(rte_mbuf* m);
    // Once every ~100 ms: resend ARP requests, give up on silent neighbours.
    void tick(uint64_t now_tsc);
    // Announces every interface address (gratuitous ARP).
    void announce();
    // Starts resolving the next hop of `ip_be` on `ifc` (an ARP request,
    // retried as for held packets) unless it is known or being resolved:
    // a configured remote's first packets then find its MAC.
    void resolve(unsigned ifc, uint32_t ip_be);
    bool holding() const { return !pending_.empty(); }

    struct counters {
        uint64_t arp_in = 0, arp_replies = 0, arp_requests = 0, arp_learned = 0, arp_bad = 0;
        uint64_t icmp_in = 0, icmp_echo_replies = 0, icmp_other = 0;
        uint64_t held = 0, held_sent = 0, held_dropped = 0;
        uint64_t stun = 0, dtls = 0, tx_failed = 0;
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

    // Defaults of [dataplane] hold_per_next_hop and hold_total (the limits
    // in force are dp.config()'s).
    static constexpr unsigned max_held_per_hop = 64;
    static constexpr unsigned max_held_total = 4096;
    static constexpr unsigned max_tries = 3;

private:
    struct pending {
        std::vector<rte_mbuf*> held;
        unsigned tries = 0;
        uint64_t last_req_tsc = 0;
    };
    void on_arp(rte_mbuf* m, unsigned ifc);
    void on_icmp(rte_mbuf* m, unsigned ifc);
    void on_hold(rte_mbuf* m, unsigned ifc);
    void learned(unsigned ifc, uint32_t ip_be);
    void send_request(unsigned ifc, uint32_t target_be);
    void tx(unsigned ifc, rte_mbuf* m);
    int iface_of_port(uint16_t port) const;

    dp::dataplane& dp_;
    std::map<std::pair<unsigned, uint32_t>, pending> pending_; // (iface, next hop) -> held
    unsigned held_total_ = 0;
    counters stats_;
};

} // namespace isar::ctl
