#include "control/stun_frame.h"

#include "control/addr.h"
#include "control/stream_hub.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>

namespace isar::ctl {

namespace {

constexpr uint32_t l3 = sizeof(rte_ether_hdr);
constexpr uint32_t ip6_hlen = sizeof(rte_ipv6_hdr);

endpoint ep_of(uint8_t family, uint32_t ip_be, const dp::ip6_addr& ip6, uint16_t port_be)
{
    endpoint e;
    e.family = family;
    e.port = rte_be_to_cpu_16(port_be);
    if (family == 6)
        std::memcpy(e.ip6.data(), ip6.b, 16);
    else
        e.ip = rte_be_to_cpu_32(ip_be);
    return e;
}

// The interface's slot of family `family` whose address is the frame's
// destination; no_laddr when none is.
uint16_t slot_of(const dp::dataplane& dp, unsigned ifc, uint8_t family, uint32_t ip4_be,
                 const dp::ip6_addr& ip6)
{
    const dp::iface& f = dp.ifc(ifc);
    for (unsigned i = f.laddr_first; i < unsigned{f.laddr_first} + f.nladdr; i++) {
        const dp::local_addr& a = dp.laddr(i);
        if (a.family == family && (family == 6 ? a.ip6 == ip6 : a.ip4_be == ip4_be))
            return static_cast<uint16_t>(i);
    }
    return dp::no_laddr;
}

// The UDP header of an IPv6 packet at `ip` (`tot` bytes: 40 + payload
// length): Hop-by-Hop, Routing and Destination Options headers skipped (at
// most 4), as classify did. 0 when it is not UDP.
uint32_t udp6_offset(const uint8_t* ip, uint32_t tot)
{
    uint8_t nh = ip[6];
    uint32_t off = ip6_hlen;
    for (unsigned n = 0; n < 4 && (nh == 0 || nh == 43 || nh == 60); n++) {
        if (off + 8 > tot)
            return 0;
        const uint32_t hl = (uint32_t{ip[off + 1]} + 1) * 8;
        nh = ip[off];
        off += hl;
    }
    return nh == IPPROTO_UDP && off + sizeof(rte_udp_hdr) <= tot ? off : 0;
}

} // namespace

turn::transport_addr stun_origin::client() const noexcept
{
    if (family == 6)
        return turn::transport_addr::v6(client6.b, rte_be_to_cpu_16(client_port_be));
    return turn::transport_addr::v4(client_ip_be, rte_be_to_cpu_16(client_port_be));
}

std::string stun_origin::client_text() const
{
    return format_endpoint(ep_of(family, client_ip_be, client6, client_port_be));
}

std::string stun_origin::listener_text() const
{
    return format_endpoint(ep_of(family, local_ip_be, local6, local_port_be));
}

bool stun_payload(const rte_mbuf* m, const dp::dataplane& dp, stun_origin& from,
                  const uint8_t*& payload, size_t& len) noexcept
{
    int ifc = -1;
    for (unsigned i = 0; i < dp.nifaces(); i++)
        if (dp.ifc(i).port_id == m->port)
            ifc = static_cast<int>(i);
    const uint32_t dlen = rte_pktmbuf_data_len(m);
    if (ifc < 0 || m->nb_segs != 1 || dlen < l3 + sizeof(rte_ipv4_hdr))
        return false;
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const uint8_t* ipb = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3);
    uint32_t l4 = 0;
    if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(ipb);
        if (ip->next_proto_id != IPPROTO_UDP)
            return false;
        l4 = l3 + rte_ipv4_hdr_len(ip);
        from.family = 4;
        from.client_ip_be = ip->src_addr;
        from.local_ip_be = ip->dst_addr;
    } else if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6) && dlen >= l3 + ip6_hlen) {
        const uint32_t tot = ip6_hlen + ((uint32_t{ipb[4]} << 8) | ipb[5]);
        const uint32_t off = l3 + tot <= dlen ? udp6_offset(ipb, tot) : 0;
        if (off == 0)
            return false;
        l4 = l3 + off;
        from.family = 6;
        from.client_ip_be = 0;
        from.local_ip_be = 0;
        std::memcpy(from.client6.b, ipb + 8, 16);
        std::memcpy(from.local6.b, ipb + 24, 16);
    } else {
        return false;
    }
    if (l4 + sizeof(rte_udp_hdr) > dlen)
        return false;
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, l4);
    const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || l4 + ulen > dlen)
        return false;
    from.iface = static_cast<unsigned>(ifc);
    from.laddr = slot_of(dp, from.iface, from.family, from.local_ip_be, from.local6);
    if (from.family == 6 && from.laddr == dp::no_laddr)
        return false; // classify matched it; a frame from elsewhere (tests) may not
    rte_ether_addr_copy(&eth->src_addr, &from.peer_mac);
    from.client_port_be = udp->src_port;
    from.local_port_be = udp->dst_port;
    payload = reinterpret_cast<const uint8_t*>(udp + 1);
    len = ulen - sizeof(rte_udp_hdr);
    return true;
}

namespace {

// IPv4 header at `p` (UDP after it): 20 bytes.
void put_ip4(uint8_t* p, const stun_origin& to, size_t udp_len)
{
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p);
    std::memset(ip, 0, sizeof(*ip));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + udp_len));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = to.local_ip_be;
    ip->dst_addr = to.client_ip_be;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
}

// IPv6 header at `p`: 40 bytes, hop limit 64.
void put_ip6(uint8_t* p, const stun_origin& to, size_t udp_len)
{
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p);
    std::memset(ip, 0, sizeof(*ip));
    ip->vtc_flow = RTE_BE32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(udp_len));
    ip->proto = IPPROTO_UDP;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, to.local6.b, 16);
    std::memcpy(ip->dst_addr, to.client6.b, 16);
}

} // namespace

bool send_stun(dp::dataplane& dp, const stun_origin& to, const uint8_t* msg, size_t len) noexcept
{
    const bool v6 = to.family == 6;
    const size_t iplen = v6 ? ip6_hlen : sizeof(rte_ipv4_hdr);
    const size_t hdrs = l3 + iplen + sizeof(rte_udp_hdr);
    if (len > 1500 - iplen - sizeof(rte_udp_hdr))
        return false;
    rte_mbuf* m = rte_pktmbuf_alloc(dp.pool());
    if (m == nullptr)
        return false;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(hdrs + len)));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return false;
    }
    const dp::iface& f = dp.ifc(to.iface);
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    rte_ether_addr_copy(&to.peer_mac, &eth->dst_addr);
    rte_ether_addr_copy(&f.mac, &eth->src_addr);
    eth->ether_type = v6 ? RTE_BE16(RTE_ETHER_TYPE_IPV6) : RTE_BE16(RTE_ETHER_TYPE_IPV4);
    const size_t udp_len = sizeof(rte_udp_hdr) + len;
    if (v6)
        put_ip6(p + l3, to, udp_len);
    else
        put_ip4(p + l3, to, udp_len);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + l3 + iplen);
    udp->src_port = to.local_port_be;
    udp->dst_port = to.client_port_be;
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(udp_len));
    udp->dgram_cksum = 0;
    std::memcpy(udp + 1, msg, len);
    // Mandatory over IPv6 (RFC 8200 §8.1); rte_ipv6_udptcp_cksum never
    // yields 0 (0 becomes 0xffff).
    udp->dgram_cksum = v6 ? rte_ipv6_udptcp_cksum(reinterpret_cast<rte_ipv6_hdr*>(p + l3), udp)
                          : rte_ipv4_udptcp_cksum(reinterpret_cast<rte_ipv4_hdr*>(p + l3), udp);
    return dp.ctl_tx(to.iface, &m, 1) == 1;
}

bool stun_out::send(const stun_origin& to, const uint8_t* msg, size_t len) const
{
    if (to.stream == 0)
        return send_stun(dp, to, msg, len);
    if (hub == nullptr)
        return false;
    stream_command c;
    c.kind = stream_command::send;
    c.token = to.stream;
    c.msg.assign(msg, msg + len);
    hub->command(std::move(c));
    return true;
}

} // namespace isar::ctl
