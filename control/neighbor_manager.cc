#include "control/neighbor_manager.h"

#include <algorithm>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "dataplane/classify.h"

namespace isar::ctl {

neighbor_manager::neighbor_manager(dp::dataplane& dp) : dp_(dp) {}

neighbor_manager::~neighbor_manager()
{
    for (auto& [k, p] : pending_)
        for (auto* m : p.held)
            rte_pktmbuf_free(m);
}

int neighbor_manager::iface_of_port(uint16_t port) const
{
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        if (dp_.ifc(i).port_id == port)
            return static_cast<int>(i);
    return -1;
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
    switch (static_cast<dp::exc_kind>(m->hash.usr)) {
    case dp::exc_kind::arp:
        on_arp(m, static_cast<unsigned>(ifc));
        return;
    case dp::exc_kind::icmp:
        on_icmp(m, static_cast<unsigned>(ifc));
        return;
    case dp::exc_kind::hold:
        on_hold(m, static_cast<unsigned>(ifc));
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

void neighbor_manager::learned(unsigned ifc, uint32_t ip_be)
{
    auto it = pending_.find({ifc, ip_be});
    if (it == pending_.end())
        return;
    rte_ether_addr mac;
    if (!dp_.ifc(ifc).neigh->lookup(ip_be, &mac))
        return;
    for (rte_mbuf* h : it->second.held) {
        rte_ether_addr_copy(&mac, &rte_pktmbuf_mtod(h, rte_ether_hdr*)->dst_addr);
        tx(ifc, h);
        stats_.held_sent++;
    }
    held_total_ -= static_cast<unsigned>(it->second.held.size());
    pending_.erase(it);
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
    // RFC 826: update a known sender; add it when the packet is for us.
    if (sip != 0 && f.on_link(sip) && sip != f.ip_be &&
        (tip == f.ip_be || f.neigh->contains(sip))) {
        if (f.neigh->update(sip, arp->arp_data.arp_sha))
            stats_.arp_learned++;
        learned(ifc, sip);
    }
    if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST) && tip == f.ip_be) {
        arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
        rte_ether_addr_copy(&arp->arp_data.arp_sha, &arp->arp_data.arp_tha);
        arp->arp_data.arp_tip = sip;
        rte_ether_addr_copy(&f.mac, &arp->arp_data.arp_sha);
        arp->arp_data.arp_sip = f.ip_be;
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
    ip->dst_addr = ip->src_addr;
    ip->src_addr = f.ip_be;
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
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    const uint32_t nh = f.next_hop(ip->dst_addr);
    rte_ether_addr mac;
    if (nh != 0 && f.neigh->lookup(nh, &mac)) { // resolved meanwhile
        rte_ether_addr_copy(&mac, &rte_pktmbuf_mtod(m, rte_ether_hdr*)->dst_addr);
        stats_.held_sent++;
        tx(ifc, m);
        return;
    }
    auto& p = pending_[{ifc, nh}];
    if (nh == 0 || p.held.size() >= dp_.config().hold_per_next_hop ||
        held_total_ >= dp_.config().hold_total) {
        stats_.held_dropped++;
        rte_pktmbuf_free(m);
        if (p.held.empty() && p.tries == 0)
            pending_.erase({ifc, nh});
        return;
    }
    stats_.held++;
    p.held.push_back(m);
    held_total_++;
    if (p.tries == 0) {
        p.tries = 1;
        p.last_req_tsc = rte_rdtsc();
        send_request(ifc, nh);
    }
}

void neighbor_manager::resolve(unsigned ifc, uint32_t ip_be)
{
    if (ifc >= dp_.nifaces())
        return;
    const dp::iface& f = dp_.ifc(ifc);
    const uint32_t nh = f.next_hop(ip_be);
    rte_ether_addr mac;
    if (nh == 0 || nh == f.ip_be || f.neigh->lookup(nh, &mac))
        return;
    pending& p = pending_[{ifc, nh}];
    if (p.tries != 0)
        return; // already asking
    p.tries = 1;
    p.last_req_tsc = rte_rdtsc();
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

void neighbor_manager::send_request(unsigned ifc, uint32_t target_be)
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
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        send_request(i, dp_.ifc(i).ip_be); // gratuitous: target = own address
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
        send_request(it->first.first, it->first.second);
        ++it;
    }
}

} // namespace isar::ctl
