// IPv6 on the control lcore: Neighbor Discovery (RFC 4861) and ICMPv6 echo
// (RFC 4443). See neighbor_manager.h.
#include <arpa/inet.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ip.h>

#include "control/neighbor_manager.h"

namespace isar::ctl {

namespace {

constexpr uint8_t icmp6_echo_request = 128, icmp6_echo_reply = 129;
constexpr uint8_t nd_rs = 133, nd_ns = 135, nd_na = 136, nd_redirect = 137;
constexpr uint8_t opt_slla = 1, opt_tlla = 2;
constexpr uint8_t na_flag_s = 0x40, na_flag_o = 0x20;
constexpr unsigned eth_len = sizeof(rte_ether_hdr);
constexpr unsigned ip6_len = sizeof(rte_ipv6_hdr);
constexpr unsigned nd_len = 24; // type, code, cksum, flags/reserved, target

// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header and `len`
// bytes at `l4`: 0xffff when the stored checksum is right.
uint16_t icmp6_sum(const rte_ipv6_hdr* ip, const uint8_t* l4, uint32_t len)
{
    uint32_t s = rte_raw_cksum(&ip->src_addr, 32);
    s += rte_cpu_to_be_32(len) >> 16;
    s += rte_cpu_to_be_32(len) & 0xffff;
    s += rte_cpu_to_be_16(IPPROTO_ICMPV6);
    s += rte_raw_cksum(l4, len);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

void set_icmp6_cksum(rte_ipv6_hdr* ip, uint8_t* l4, uint32_t len)
{
    l4[2] = l4[3] = 0;
    const uint16_t c = static_cast<uint16_t>(~icmp6_sum(ip, l4, len));
    memcpy(l4 + 2, &c, 2);
}

dp::ip6_addr addr_at(const void* p)
{
    dp::ip6_addr a;
    memcpy(a.b, p, 16);
    return a;
}

// 33:33 + the low 32 bits of a multicast address (RFC 2464 §7).
rte_ether_addr mcast_mac(const dp::ip6_addr& a)
{
    return rte_ether_addr{{0x33, 0x33, a.b[12], a.b[13], a.b[14], a.b[15]}};
}

// Finds the ICMPv6 header after the IPv6 header and the extension headers
// classify skips (Hop-by-Hop, Routing, Destination Options; at most four).
// Returns its offset in the frame and sets *len to the ICMPv6 length, or 0.
unsigned find_icmp6(const rte_mbuf* m, uint32_t* len)
{
    const uint32_t have = rte_pktmbuf_data_len(m);
    if (have < eth_len + ip6_len)
        return 0;
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, eth_len);
    const uint32_t end = eth_len + ip6_len + rte_be_to_cpu_16(ip->payload_len);
    if (end > have)
        return 0;
    uint8_t nh = ip->proto;
    uint32_t off = eth_len + ip6_len;
    for (int n = 0; n < 4 && (nh == 0 || nh == 43 || nh == 60); n++) {
        if (off + 8 > end)
            return 0;
        const uint8_t* e = rte_pktmbuf_mtod_offset(m, const uint8_t*, off);
        nh = e[0];
        off += 8u * (e[1] + 1u);
    }
    if (nh != IPPROTO_ICMPV6 || off + 4 > end)
        return 0;
    *len = end - off;
    return off;
}

} // namespace

bool neighbor_manager::our_ip6(unsigned ifc, const dp::ip6_addr& ip) const
{
    const dp::iface& f = dp_.ifc(ifc);
    for (unsigned s = f.laddr_first; s < f.laddr_first + f.nladdr; s++) {
        const dp::local_addr& a = dp_.laddr(s);
        if (a.family == 6 && a.ip6 == ip)
            return true;
    }
    return false;
}

bool neighbor_manager::source6(unsigned ifc, dp::ip6_addr* src) const
{
    const dp::iface& f = dp_.ifc(ifc);
    for (unsigned s = f.laddr_first; s < f.laddr_first + f.nladdr; s++) {
        const dp::local_addr& a = dp_.laddr(s);
        if (a.family == 6) {
            *src = a.ip6;
            return true;
        }
    }
    return false;
}

// On-link (in one of the interface's IPv6 prefixes, or link-local): the
// destination itself; else the IPv6 gateway. False when there is none.
bool neighbor_manager::next_hop6(unsigned ifc, const dp::ip6_addr& dst, dp::ip6_addr* nh) const
{
    const dp::iface& f = dp_.ifc(ifc);
    if (dst.is_zero() || dst.is_multicast())
        return false;
    bool on_link = dst.is_link_local();
    for (unsigned s = f.laddr_first; !on_link && s < f.laddr_first + f.nladdr; s++) {
        const dp::local_addr& a = dp_.laddr(s);
        on_link = a.family == 6 && dp::same_prefix(a.ip6, dst, a.prefix_len);
    }
    if (on_link) {
        *nh = dst;
        return true;
    }
    if (!f.has_gateway6)
        return false;
    *nh = f.gateway6;
    return true;
}

void neighbor_manager::learn6(unsigned ifc, const dp::ip6_addr& ip, const rte_ether_addr& mac)
{
    rte_ether_addr old;
    switch (dp_.ifc(ifc).neigh->learn6(ip, mac, clock_(), &old)) {
    case dp::neighbor_table::learn_result::full:
        stats_.neigh_full++;
        return;
    case dp::neighbor_table::learn_result::moved: {
        char s[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, ip.b, s, sizeof(s));
        moved(ifc, s, old, mac);
        break;
    }
    default:
        break;
    }
    stats_.nd_learned++;
    learned(hop6(ifc, ip));
}

void neighbor_manager::on_nd(rte_mbuf* m, unsigned ifc)
{
    stats_.nd_in++;
    uint32_t len = 0;
    const unsigned l4 = find_icmp6(m, &len);
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, eth_len);
    const uint8_t* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, l4);
    // RFC 4861 §7.1.1/§7.1.2: hop limit 255 (not forwarded by a router),
    // code 0, the checksum right, at least the fixed part.
    if (l4 == 0 || len < nd_len || ip->hop_limits != 255 || p[1] != 0 ||
        icmp6_sum(ip, p, len) != 0xffff) {
        stats_.nd_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    switch (p[0]) {
    case nd_ns:
        on_ns(m, ifc, l4, len);
        return;
    case nd_na:
        on_na(m, ifc, l4, len);
        return;
    default: // RS, RA, redirect: no SLAAC, no routing here
        (void)nd_rs;
        (void)nd_redirect;
        stats_.nd_other++;
        rte_pktmbuf_free(m);
        return;
    }
}

namespace {
// The link-layer address option of `type` in the options after the fixed
// part; false when absent, -1 when the options are malformed.
int ll_option(const uint8_t* p, uint32_t len, uint8_t type, rte_ether_addr* mac)
{
    int found = 0;
    for (uint32_t o = nd_len; o < len;) {
        if (o + 2 > len || p[o + 1] == 0 || o + 8u * p[o + 1] > len)
            return -1; // RFC 4861 §4.6: length 0 is invalid
        if (p[o] == type && p[o + 1] == 1) {
            memcpy(mac, p + o + 2, 6);
            found = 1;
        }
        o += 8u * p[o + 1];
    }
    return found;
}
} // namespace

void neighbor_manager::on_ns(rte_mbuf* m, unsigned ifc, unsigned l4, uint32_t len)
{
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, eth_len);
    const uint8_t* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, l4);
    const dp::ip6_addr src = addr_at(&ip->src_addr), dst = addr_at(&ip->dst_addr);
    const dp::ip6_addr target = addr_at(p + 8);
    rte_ether_addr slla;
    const int has_slla = ll_option(p, len, opt_slla, &slla);
    // §7.1.1: target not multicast; from :: (DAD) only to a solicited-node
    // address and without a source link-layer option.
    if (has_slla < 0 || target.is_multicast() || src.is_multicast() ||
        (src.is_zero() && (has_slla == 1 || !(dst == target.solicited_node()))) ||
        (has_slla == 1 && !rte_is_unicast_ether_addr(&slla))) {
        stats_.nd_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    if (!our_ip6(ifc, target)) {
        stats_.nd_other++;
        rte_pktmbuf_free(m);
        return;
    }
    if (src.is_zero()) { // someone's DAD for our address: defend it (§7.2.4)
        stats_.nd_dad_conflict++;
        send_na(ifc, target, dp::ip6_addr::all_nodes(), mcast_mac(dp::ip6_addr::all_nodes()),
                false);
        stats_.nd_ns_answered++;
        rte_pktmbuf_free(m);
        return;
    }
    rte_ether_addr to = eth->src_addr;
    if (has_slla == 1) {
        learn6(ifc, src, slla);
        to = slla;
    }
    send_na(ifc, target, src, to, true);
    stats_.nd_ns_answered++;
    rte_pktmbuf_free(m);
}

void neighbor_manager::on_na(rte_mbuf* m, unsigned ifc, unsigned l4, uint32_t len)
{
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, eth_len);
    const uint8_t* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, l4);
    const dp::ip6_addr dst = addr_at(&ip->dst_addr);
    const dp::ip6_addr target = addr_at(p + 8);
    const bool solicited = p[4] & na_flag_s, override = p[4] & na_flag_o;
    rte_ether_addr tlla;
    const int has_tlla = ll_option(p, len, opt_tlla, &tlla);
    // §7.1.2: target not multicast; S clear when sent to a multicast address.
    if (has_tlla < 0 || target.is_multicast() || (dst.is_multicast() && solicited) ||
        (has_tlla == 1 && !rte_is_unicast_ether_addr(&tlla))) {
        stats_.nd_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    rte_pktmbuf_free(m);
    if (our_ip6(ifc, target)) { // someone else claims our address
        stats_.nd_dad_conflict++;
        return;
    }
    dp::neighbor_table& t = *dp_.ifc(ifc).neigh;
    rte_ether_addr known;
    const bool exists = t.lookup6(target, &known);
    // §7.2.5: learn only what we asked for or already know; without the
    // target's link-layer address there is nothing to learn; without O an
    // answer does not replace a known MAC.
    if (has_tlla != 1 || !(exists || pending_.count(hop6(ifc, target))) ||
        (exists && !override && !rte_is_same_ether_addr(&known, &tlla))) {
        stats_.nd_other++;
        return;
    }
    learn6(ifc, target, tlla);
}

void neighbor_manager::on_icmp6(rte_mbuf* m, unsigned ifc)
{
    stats_.icmp6_in++;
    uint32_t len = 0;
    const unsigned l4 = find_icmp6(m, &len);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, eth_len);
    uint8_t* p = rte_pktmbuf_mtod_offset(m, uint8_t*, l4);
    if (l4 == 0 || len < 8 || icmp6_sum(ip, p, len) != 0xffff) {
        stats_.icmp6_bad++;
        rte_pktmbuf_free(m);
        return;
    }
    const dp::ip6_addr dst = addr_at(&ip->dst_addr);
    // Echo requests to one of our addresses (not to a multicast group).
    if (p[0] != icmp6_echo_request || p[1] != 0 || !our_ip6(ifc, dst)) {
        stats_.icmp6_other++;
        rte_pktmbuf_free(m);
        return;
    }
    // The reply: the ICMPv6 message right after the IPv6 header (extension
    // headers dropped), frame padding trimmed.
    const uint32_t hdrs = eth_len + ip6_len;
    if (l4 != hdrs)
        memmove(rte_pktmbuf_mtod_offset(m, uint8_t*, hdrs), p, len);
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_data_len(m) - (hdrs + len)));
    p = rte_pktmbuf_mtod_offset(m, uint8_t*, hdrs);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    ip->vtc_flow = RTE_BE32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(len));
    ip->proto = IPPROTO_ICMPV6;
    ip->hop_limits = 64;
    memcpy(&ip->dst_addr, &ip->src_addr, 16);
    memcpy(&ip->src_addr, dst.b, 16);
    p[0] = icmp6_echo_reply;
    set_icmp6_cksum(ip, p, len);
    rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
    rte_ether_addr_copy(&dp_.ifc(ifc).mac, &eth->src_addr);
    m->ol_flags &= RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT; // keep buffer ownership
    stats_.icmp6_echo_replies++;
    tx(ifc, m);
}

// Ethernet + IPv6 header of an ND message (hop limit 255, RFC 4861) in `m`;
// returns its zeroed ICMPv6 body of `len` bytes.
static uint8_t* nd_frame(rte_mbuf* m, const rte_ether_addr& dst_mac, const rte_ether_addr& src_mac,
                         const dp::ip6_addr& src, const dp::ip6_addr& dst, uint32_t len,
                         rte_ipv6_hdr*& ip)
{
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, eth_len + ip6_len + len));
    ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
    auto* p = reinterpret_cast<uint8_t*>(ip + 1);
    rte_ether_addr_copy(&dst_mac, &eth->dst_addr);
    rte_ether_addr_copy(&src_mac, &eth->src_addr);
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
    ip->vtc_flow = RTE_BE32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(len));
    ip->proto = IPPROTO_ICMPV6;
    ip->hop_limits = 255;
    memcpy(&ip->src_addr, src.b, 16);
    memcpy(&ip->dst_addr, dst.b, 16);
    memset(p, 0, len);
    return p;
}

void neighbor_manager::send_na(unsigned ifc, const dp::ip6_addr& target, const dp::ip6_addr& dst,
                               const rte_ether_addr& dst_mac, bool solicited)
{
    const dp::iface& f = dp_.ifc(ifc);
    constexpr uint32_t len = nd_len + 8; // + target link-layer address
    rte_mbuf* m = rte_pktmbuf_alloc(dp_.pool());
    if (m == nullptr) {
        stats_.tx_failed++;
        return;
    }
    rte_ipv6_hdr* ip;
    uint8_t* p = nd_frame(m, dst_mac, f.mac, target, dst, len, ip);
    p[0] = nd_na;
    p[4] = static_cast<uint8_t>(na_flag_o | (solicited ? na_flag_s : 0));
    memcpy(p + 8, target.b, 16);
    p[24] = opt_tlla;
    p[25] = 1;
    memcpy(p + 26, f.mac.addr_bytes, 6);
    set_icmp6_cksum(ip, p, len);
    tx(ifc, m);
}

void neighbor_manager::send_ns(unsigned ifc, const dp::ip6_addr& target,
                               const rte_ether_addr* unicast)
{
    const dp::iface& f = dp_.ifc(ifc);
    dp::ip6_addr src;
    if (!source6(ifc, &src))
        return; // no IPv6 address on this interface: nothing to ask with
    constexpr uint32_t len = nd_len + 8; // + source link-layer address
    rte_mbuf* m = rte_pktmbuf_alloc(dp_.pool());
    if (m == nullptr) {
        stats_.tx_failed++;
        return;
    }
    const dp::ip6_addr dst = unicast != nullptr ? target : target.solicited_node();
    const rte_ether_addr to = unicast != nullptr ? *unicast : mcast_mac(dst);
    rte_ipv6_hdr* ip;
    uint8_t* p = nd_frame(m, to, f.mac, src, dst, len, ip);
    p[0] = nd_ns;
    memcpy(p + 8, target.b, 16);
    p[24] = opt_slla;
    p[25] = 1;
    memcpy(p + 26, f.mac.addr_bytes, 6);
    set_icmp6_cksum(ip, p, len);
    stats_.nd_ns_sent++;
    tx(ifc, m);
}

void neighbor_manager::resolve(unsigned ifc, const dp::ip6_addr& ip6)
{
    if (ifc >= dp_.nifaces())
        return;
    dp::ip6_addr nh;
    rte_ether_addr mac;
    if (!next_hop6(ifc, ip6, &nh) || our_ip6(ifc, nh) || dp_.ifc(ifc).neigh->lookup6(nh, &mac))
        return;
    pending& p = pending_[hop6(ifc, nh)];
    if (p.tries != 0)
        return; // already asking
    p.tries = 1;
    p.last_req_tsc = clock_();
    send_ns(ifc, nh);
}

} // namespace isar::ctl
