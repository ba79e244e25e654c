#include "control/stun_frame.h"

#include "control/stream_hub.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>

namespace isar::ctl {

turn::transport_addr stun_origin::client() const noexcept
{
    return turn::transport_addr::v4(client_ip_be, rte_be_to_cpu_16(client_port_be));
}

bool stun_payload(const rte_mbuf* m, const dp::dataplane& dp, stun_origin& from,
                  const uint8_t*& payload, size_t& len) noexcept
{
    int ifc = -1;
    for (unsigned i = 0; i < dp.nifaces(); i++)
        if (dp.ifc(i).port_id == m->port)
            ifc = static_cast<int>(i);
    const uint32_t dlen = rte_pktmbuf_data_len(m);
    if (ifc < 0 || m->nb_segs != 1 || dlen < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr))
        return false;
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    const uint32_t ihl = rte_ipv4_hdr_len(ip);
    const uint32_t l4 = sizeof(rte_ether_hdr) + ihl;
    if (eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4) || ip->next_proto_id != IPPROTO_UDP ||
        l4 + sizeof(rte_udp_hdr) > dlen)
        return false;
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, l4);
    const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || l4 + ulen > dlen)
        return false;
    from.iface = static_cast<unsigned>(ifc);
    rte_ether_addr_copy(&eth->src_addr, &from.peer_mac);
    from.client_ip_be = ip->src_addr;
    from.client_port_be = udp->src_port;
    from.local_ip_be = ip->dst_addr;
    from.local_port_be = udp->dst_port;
    payload = reinterpret_cast<const uint8_t*>(udp + 1);
    len = ulen - sizeof(rte_udp_hdr);
    return true;
}

bool send_stun(dp::dataplane& dp, const stun_origin& to, const uint8_t* msg, size_t len) noexcept
{
    constexpr size_t hdrs = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);
    if (len > 1500 - sizeof(rte_ipv4_hdr) - sizeof(rte_udp_hdr))
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
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    rte_ether_addr_copy(&to.peer_mac, &eth->dst_addr);
    rte_ether_addr_copy(&f.mac, &eth->src_addr);
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    std::memset(ip, 0, sizeof(*ip));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(
            static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + len));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = to.local_ip_be;
    ip->dst_addr = to.client_ip_be;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp->src_port = to.local_port_be;
    udp->dst_port = to.client_port_be;
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_udp_hdr) + len));
    udp->dgram_cksum = 0;
    std::memcpy(udp + 1, msg, len);
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
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
