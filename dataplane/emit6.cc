// Sending from an address slot of either family (worker::emit_ep): IPv4 ->
// IPv4 stays worker::emit (rewrite_udp4); IPv6 output, and IPv6 -> IPv4,
// rebuild the IP header (rewrite6.h) and find the next hop by ND or ARP.
// Hot path: no allocation, lock, syscall or log.
#include "dataplane/rewrite6.h"
#include "dataplane/send_inl.h"
#include "dataplane/worker.h"

namespace isar::dp {

drop worker::emit_ep(rte_mbuf* m, const pkt_meta& meta, unsigned laddr, uint16_t src_port_be,
                     packed_ep dst, const ip6_addr* dst6, udp_cksum ck) noexcept
{
    return emit_ep_inl(m, meta, laddr, src_port_be, dst, dst6, ck);
}

bool worker::next_hop6(const iface& out, const ip6_addr& dst, ip6_addr& nh) const noexcept
{
    bool on_link = dst.is_link_local();
    for (unsigned i = out.laddr_first; !on_link && i < unsigned{out.laddr_first} + out.nladdr;
         i++) {
        const local_addr& a = laddrs[i];
        on_link = a.family == 6 && same_prefix(dst, a.ip6, a.prefix_len);
    }
    if (on_link) {
        nh = dst;
        return true;
    }
    nh = out.gateway6;
    return out.has_gateway6;
}

drop worker::emit_x(rte_mbuf* m, const pkt_meta& meta, const local_addr& la, uint16_t src_port_be,
                    packed_ep dst, const ip6_addr* dst6, udp_cksum ck) noexcept
{
    const iface& out = ifaces[la.iface];
    drop d = drop::count;
    // The remote must be of the slot's family (control refuses others).
    if (ep_is_v6(dst) != (la.family == 6) || (la.family == 6 && dst6 == nullptr))
        d = drop::no_route;
    const uint32_t l3_len = la.family == 6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    // The size it leaves with (the header changes, the datagram does not).
    if (d == drop::count && out.mtu != 0 && rte_pktmbuf_pkt_len(m) - meta.l4_off + l3_len > out.mtu)
        d = drop::mtu_exceeded;
    rewrite6_to to;
    to.family = la.family;
    to.src_mac = out.mac;
    to.src_port_be = src_port_be;
    to.dst_port_be = ep_port(dst);
    bool resolved = false;
    if (d == drop::count && la.family == 6) {
        to.src6 = la.ip6;
        to.dst6 = *dst6;
        ip6_addr nh;
        if (!next_hop6(out, to.dst6, nh))
            d = drop::no_route;
        else
            resolved = out.neigh->lookup6(nh, &to.dst_mac);
    } else if (d == drop::count) {
        to.src_ip_be = la.ip4_be;
        to.dst_ip_be = ep_ip(dst);
        const uint32_t nh = out.next_hop(to.dst_ip_be);
        if (nh == 0)
            d = drop::no_route;
        else
            resolved = out.neigh->lookup(nh, &to.dst_mac);
    }
    pkt_meta mm = meta;
    if (d == drop::count) {
        if (!resolved)
            to.dst_mac = out.mac; // placeholder; control fills it in
        if (!rewrite_udp6(m, mm, to, ck))
            d = drop::no_mbuf;
    }
    if (d != drop::count) {
        drop_pkt(m, d);
        return d;
    }
    if (resolved) {
        tx_enqueue(la.iface, m);
    } else {
        m->port = out.port_id;
        to_control(m, exc_kind::hold);
    }
    return drop::count;
}

} // namespace isar::dp
