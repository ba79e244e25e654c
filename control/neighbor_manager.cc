#include "control/neighbor_manager.h"

#include <arpa/inet.h>

#include <algorithm>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "control/log.h"
#include "dataplane/classify.h"

namespace isar::ctl {

neighbor_manager::neighbor_manager(dp::dataplane& dp) : dp_(dp) {}

neighbor_manager::~neighbor_manager()
{
    for (auto& [k, p] : pending_)
        for (auto* m : p.held)
            rte_pktmbuf_free(m);
}

neighbor_manager::hop neighbor_manager::hop4(unsigned ifc, uint32_t ip_be)
{
    hop h{ifc, 4, {}};
    memcpy(h.ip.b, &ip_be, 4);
    return h;
}

neighbor_manager::hop neighbor_manager::hop6(unsigned ifc, const dp::ip6_addr& ip)
{
    return hop{ifc, 6, ip};
}

int neighbor_manager::iface_of_port(uint16_t port) const
{
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        if (dp_.ifc(i).port_id == port)
            return static_cast<int>(i);
    return -1;
}

bool neighbor_manager::our_ip4(unsigned ifc, uint32_t ip_be) const
{
    const dp::iface& f = dp_.ifc(ifc);
    for (unsigned s = f.laddr_first; s < f.laddr_first + f.nladdr; s++) {
        const dp::local_addr& a = dp_.laddr(s);
        if (a.family == 4 && a.ip4_be == ip_be)
            return true;
    }
    return false;
}

void neighbor_manager::tx(unsigned ifc, rte_mbuf* m)
{
    if (dp_.ctl_tx(ifc, &m, 1) != 1)
        stats_.tx_failed++;
}

unsigned neighbor_manager::poll()
{
    for (auto [ifc, ip] : dp_.take_resolve_requests())
        resolve(ifc, ip);
    rte_mbuf* pkts[64];
    unsigned total = 0, n;
    while (total < 1024 && (n = dp_.poll_exceptions(pkts, 64)) > 0) {
        for (unsigned i = 0; i < n; i++)
            handle(pkts[i]);
        total += n;
    }
    return total;
}

void neighbor_manager::handle(rte_mbuf* m)
{
    const int ifc = iface_of_port(m->port);
    if (ifc < 0) {
        rte_pktmbuf_free(m);
        return;
    }
    const unsigned i = static_cast<unsigned>(ifc);
    switch (static_cast<dp::exc_kind>(m->hash.usr)) {
    case dp::exc_kind::arp:
        on_arp(m, i);
        return;
    case dp::exc_kind::icmp:
        on_icmp(m, i);
        return;
    case dp::exc_kind::nd:
        on_nd(m, i);
        return;
    case dp::exc_kind::icmp6:
        on_icmp6(m, i);
        return;
    case dp::exc_kind::hold:
        on_hold(m, i);
        return;
    case dp::exc_kind::stun:
        stats_.stun++;
        break;
    case dp::exc_kind::dtls:
        stats_.dtls++;
        break;
    case dp::exc_kind::turn: // comes on the TURN ring (turn_manager), never here
        break;
    }
    rte_pktmbuf_free(m);
}

// Sends what waited for `h` now that its MAC is known.
void neighbor_manager::learned(const hop& h)
{
    auto it = pending_.find(h);
    if (it == pending_.end())
        return;
    rte_ether_addr mac;
    const dp::neighbor_table& t = *dp_.ifc(h.ifc).neigh;
    uint32_t ip4;
    memcpy(&ip4, h.ip.b, 4);
    if (!(h.family == 4 ? t.lookup(ip4, &mac) : t.lookup6(h.ip, &mac)))
        return;
    for (rte_mbuf* m : it->second.held) {
        rte_ether_addr_copy(&mac, &rte_pktmbuf_mtod(m, rte_ether_hdr*)->dst_addr);
        tx(h.ifc, m);
        stats_.held_sent++;
    }
    held_total_ -= static_cast<unsigned>(it->second.held.size());
    pending_.erase(it);
}

void neighbor_manager::moved(unsigned ifc, const char* addr, const rte_ether_addr& from,
                             const rte_ether_addr& to)
{
    stats_.neigh_moved++;
    // One line per move, at most one a second (two hosts fighting over an
    // address would otherwise flood the log; the counter has them all).
    const uint64_t now = clock_();
    if (last_moved_log_tsc_ != 0 && now - last_moved_log_tsc_ < rte_get_tsc_hz())
        return;
    last_moved_log_tsc_ = now;
    char a[RTE_ETHER_ADDR_FMT_SIZE], b[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(a, sizeof(a), &from);
    rte_ether_format_addr(b, sizeof(b), &to);
    ISAR_LOG(NOTICE, "neighbour {} on port {} moved from {} to {}", addr, dp_.ifc(ifc).port_id, a,
             b);
}

void neighbor_manager::learn4(unsigned ifc, uint32_t ip_be, const rte_ether_addr& mac)
{
    rte_ether_addr old;
    switch (dp_.ifc(ifc).neigh->learn(ip_be, mac, clock_(), &old)) {
    case dp::neighbor_table::learn_result::full:
        stats_.neigh_full++;
        return;
    case dp::neighbor_table::learn_result::moved: {
        char s[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &ip_be, s, sizeof(s));
        moved(ifc, s, old, mac);
        break;
    }
    default:
        break;
    }
    stats_.arp_learned++;
    learned(hop4(ifc, ip_be));
}

void neighbor_manager::on_arp(rte_mbuf* m, unsigned ifc)
{
    stats_.arp_in++;
    const dp::iface& f = dp_.ifc(ifc);
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
        stats_.arp_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, sizeof(rte_ether_hdr));
    if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
        arp->arp_plen != 4 || rte_is_zero_ether_addr(&arp->arp_data.arp_sha) ||
        !rte_is_unicast_ether_addr(&arp->arp_data.arp_sha)) {
        stats_.arp_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    const uint32_t sip = arp->arp_data.arp_sip;
    const uint32_t tip = arp->arp_data.arp_tip;
    const bool for_us = our_ip4(ifc, tip);
    // RFC 826: update a known sender; add it when the packet is for us.
    if (sip != 0 && f.on_link(sip) && !our_ip4(ifc, sip) && (for_us || f.neigh->contains(sip)))
        learn4(ifc, sip, arp->arp_data.arp_sha);
    if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST) && for_us) {
        arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
        rte_ether_addr_copy(&arp->arp_data.arp_sha, &arp->arp_data.arp_tha);
        arp->arp_data.arp_tip = sip;
        rte_ether_addr_copy(&f.mac, &arp->arp_data.arp_sha);
        arp->arp_data.arp_sip = tip;
        rte_ether_addr_copy(&arp->arp_data.arp_tha, &eth->dst_addr);
        rte_ether_addr_copy(&f.mac, &eth->src_addr);
        stats_.arp_replies++;
        tx(ifc, m);
        return;
    }
    rte_pktmbuf_free(m);
}

void neighbor_manager::on_icmp(rte_mbuf* m, unsigned ifc)
{
    stats_.icmp_in++;
    const dp::iface& f = dp_.ifc(ifc);
    // classify() validated Ethernet and IPv4 (addressed to us, not a fragment).
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    const uint32_t ihl = rte_ipv4_hdr_len(ip);
    const uint32_t tot = rte_be_to_cpu_16(ip->total_length);
    if (tot < ihl + sizeof(rte_icmp_hdr)) {
        stats_.icmp_other++;
        rte_pktmbuf_free(m);
        return;
    }
    auto* icmp = rte_pktmbuf_mtod_offset(m, rte_icmp_hdr*, sizeof(rte_ether_hdr) + ihl);
    if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0 ||
        rte_raw_cksum(icmp, tot - ihl) != 0xffff) {
        stats_.icmp_other++;
        rte_pktmbuf_free(m);
        return;
    }
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_data_len(m) -
                                              (sizeof(rte_ether_hdr) + tot)));
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    icmp->icmp_cksum = 0;
    icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, tot - ihl));
    const uint32_t to_us = ip->dst_addr;
    ip->dst_addr = ip->src_addr;
    ip->src_addr = our_ip4(ifc, to_us) ? to_us : f.ip_be;
    ip->time_to_live = 64;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
    rte_ether_addr_copy(&f.mac, &eth->src_addr);
    m->ol_flags &= RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT; // keep buffer ownership
    stats_.icmp_echo_replies++;
    tx(ifc, m);
}

void neighbor_manager::on_hold(rte_mbuf* m, unsigned ifc)
{
    const dp::iface& f = dp_.ifc(ifc);
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    hop nh{};
    bool have = false;
    if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6)) {
        auto* ip6 = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, sizeof(rte_ether_hdr));
        dp::ip6_addr dst, gw;
        memcpy(dst.b, &ip6->dst_addr, 16);
        have = next_hop6(ifc, dst, &gw);
        nh = hop6(ifc, gw);
    } else {
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
        const uint32_t n4 = f.next_hop(ip->dst_addr);
        have = n4 != 0;
        nh = hop4(ifc, n4);
    }
    if (!have) {
        stats_.held_dropped++;
        rte_pktmbuf_free(m);
        return;
    }
    hold(m, nh);
}

void neighbor_manager::hold(rte_mbuf* m, const hop& nh)
{
    const dp::neighbor_table& t = *dp_.ifc(nh.ifc).neigh;
    uint32_t ip4;
    memcpy(&ip4, nh.ip.b, 4);
    rte_ether_addr mac;
    if (nh.family == 4 ? t.lookup(ip4, &mac) : t.lookup6(nh.ip, &mac)) { // resolved meanwhile
        rte_ether_addr_copy(&mac, &rte_pktmbuf_mtod(m, rte_ether_hdr*)->dst_addr);
        stats_.held_sent++;
        tx(nh.ifc, m);
        return;
    }
    auto& p = pending_[nh];
    if (p.held.size() >= dp_.config().hold_per_next_hop ||
        held_total_ >= dp_.config().hold_total) {
        stats_.held_dropped++;
        rte_pktmbuf_free(m);
        if (p.held.empty() && p.tries == 0)
            pending_.erase(nh);
        return;
    }
    stats_.held++;
    p.held.push_back(m);
    held_total_++;
    if (p.tries == 0) {
        p.tries = 1;
        p.last_req_tsc = clock_();
        ask(nh);
    }
}

void neighbor_manager::ask(const hop& h, const rte_ether_addr* unicast)
{
    if (h.family == 6) {
        send_ns(h.ifc, h.ip, unicast);
        return;
    }
    uint32_t ip4;
    memcpy(&ip4, h.ip.b, 4);
    send_request(h.ifc, ip4, unicast);
}

void neighbor_manager::resolve(unsigned ifc, uint32_t ip_be)
{
    if (ifc >= dp_.nifaces())
        return;
    const dp::iface& f = dp_.ifc(ifc);
    const uint32_t nh = f.next_hop(ip_be);
    rte_ether_addr mac;
    if (nh == 0 || our_ip4(ifc, nh) || f.neigh->lookup(nh, &mac))
        return;
    pending& p = pending_[hop4(ifc, nh)];
    if (p.tries != 0)
        return; // already asking
    p.tries = 1;
    p.last_req_tsc = clock_();
    send_request(ifc, nh);
}

neighbor_manager::hold_fill neighbor_manager::fill() const
{
    hold_fill h;
    h.held = held_total_;
    h.next_hops = static_cast<unsigned>(pending_.size());
    for (const auto& [k, p] : pending_)
        h.max_per_hop = std::max(h.max_per_hop, static_cast<unsigned>(p.held.size()));
    h.limit_per_hop = dp_.config().hold_per_next_hop;
    h.limit_total = dp_.config().hold_total;
    return h;
}

neighbor_manager::table_fill neighbor_manager::neighbors() const
{
    table_fill t;
    for (unsigned i = 0; i < dp_.nifaces(); i++) {
        const dp::neighbor_table& n = *dp_.ifc(i).neigh;
        t.v4 += n.size4();
        t.v6 += n.size6();
        t.capacity += n.capacity();
    }
    return t;
}

// An ARP request for `target_be`: broadcast, or unicast to a known MAC (a
// re-confirmation probe). A gratuitous one when target is our own address.
void neighbor_manager::send_request(unsigned ifc, uint32_t target_be, const rte_ether_addr* unicast)
{
    const dp::iface& f = dp_.ifc(ifc);
    rte_mbuf* m = rte_pktmbuf_alloc(dp_.pool());
    if (m == nullptr) {
        stats_.tx_failed++;
        return;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(
            rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
    auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
    if (unicast != nullptr)
        rte_ether_addr_copy(unicast, &eth->dst_addr);
    else
        memset(&eth->dst_addr, 0xff, sizeof(eth->dst_addr));
    rte_ether_addr_copy(&f.mac, &eth->src_addr);
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
    arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = 6;
    arp->arp_plen = 4;
    arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
    rte_ether_addr_copy(&f.mac, &arp->arp_data.arp_sha);
    arp->arp_data.arp_sip = f.ip_be;
    memset(&arp->arp_data.arp_tha, 0, sizeof(arp->arp_data.arp_tha));
    arp->arp_data.arp_tip = target_be;
    stats_.arp_requests++;
    tx(ifc, m);
}

void neighbor_manager::announce()
{
    for (unsigned s = 0; s < dp_.nladdrs(); s++) {
        const dp::local_addr& a = dp_.laddr(s);
        if (a.family == 4) {
            send_request(a.iface, a.ip4_be); // gratuitous: target = own address
        } else {
            send_na(a.iface, a.ip6, dp::ip6_addr::all_nodes(),
                    rte_ether_addr{{0x33, 0x33, 0, 0, 0, 1}}, false);
            stats_.nd_na_unsolicited++;
        }
    }
}

// Aging of one interface's table: REACHABLE for reachable_s after an
// answer, then probed (unicast) max_tries times a second apart, then removed.
void neighbor_manager::age(unsigned ifc, uint64_t now)
{
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t reachable = reachable_s * hz;
    auto step = [&](const hop& h, const rte_ether_addr& mac, dp::neighbor_state& s) {
        if (s.confirmed_tsc == 0 || now < s.confirmed_tsc + reachable)
            return true; // static, or REACHABLE
        if (s.probes > 0 && now - s.probe_tsc < hz)
            return true; // waiting for an answer
        if (s.probes >= max_tries) {
            stats_.neigh_expired++;
            return false;
        }
        s.probes++;
        s.probe_tsc = now;
        stats_.neigh_probes++;
        ask(h, &mac);
        return true;
    };
    dp::neighbor_table& t = *dp_.ifc(ifc).neigh;
    t.sweep([&](uint32_t ip, const rte_ether_addr& mac, dp::neighbor_state& s) {
        return step(hop4(ifc, ip), mac, s);
    });
    t.sweep6([&](const dp::ip6_addr& ip, const rte_ether_addr& mac, dp::neighbor_state& s) {
        return step(hop6(ifc, ip), mac, s);
    });
}

void neighbor_manager::tick(uint64_t now_tsc)
{
    const uint64_t retry = rte_get_tsc_hz(); // 1 s between tries
    for (auto it = pending_.begin(); it != pending_.end();) {
        pending& p = it->second;
        if (now_tsc - p.last_req_tsc < retry) {
            ++it;
            continue;
        }
        if (p.tries >= max_tries) {
            stats_.held_dropped += p.held.size();
            held_total_ -= static_cast<unsigned>(p.held.size());
            for (auto* m : p.held)
                rte_pktmbuf_free(m);
            it = pending_.erase(it);
            continue;
        }
        p.tries++;
        p.last_req_tsc = now_tsc;
        ask(it->first);
        ++it;
    }
    // The tables: a walk of every slot, so at most four times a second.
    if (now_tsc - last_age_tsc_ >= retry / 4) {
        last_age_tsc_ = now_tsc;
        for (unsigned i = 0; i < dp_.nifaces(); i++)
            age(i, now_tsc);
    }
}

} // namespace isar::ctl
