// Classification of IPv6 frames (EtherType 0x86DD): header checks, the
// extension-header walk, the destination's slot, ICMPv6 (Neighbor Discovery
// and the rest) to control, UDP on to the same port dispatch as IPv4
// (classify.cc).
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/classify.h"
#include "dataplane/iface.h"

namespace isar::dp {

namespace {

constexpr uint32_t l3 = sizeof(rte_ether_hdr);
constexpr uint32_t ip6_hlen = sizeof(rte_ipv6_hdr); // 40
// Extension headers skipped before the upper-layer header: at most this
// many, of at most this many bytes together.
constexpr unsigned max_ext_headers = 4;
constexpr uint32_t max_ext_bytes = 256;

constexpr uint8_t nh_hop_by_hop = 0;
constexpr uint8_t nh_tcp = 6;
constexpr uint8_t nh_udp = 17;
constexpr uint8_t nh_routing = 43;
constexpr uint8_t nh_fragment = 44;
constexpr uint8_t nh_icmp6 = 58;
constexpr uint8_t nh_dest_opts = 60;

// Walks Hop-by-Hop, Routing and Destination Options headers from `off`
// (from the IPv6 header; tot = 40 + payload length) to the upper-layer
// header: returns its protocol with `off` at it, or sets the drop and
// returns -1.
int skip_ext_headers(const uint8_t* ip, uint32_t tot, uint32_t& off, pkt_meta& meta) noexcept
{
    uint8_t nh = ip[6];
    for (unsigned n = 0;; n++) {
        if (nh == nh_udp || nh == nh_icmp6 || nh == nh_tcp)
            return nh;
        if (nh == nh_fragment) {
            set_drop(meta, drop::ip_fragment);
            return -1;
        }
        if ((nh != nh_hop_by_hop && nh != nh_routing && nh != nh_dest_opts) ||
            n == max_ext_headers) {
            set_drop(meta, drop::ipv6_ext); // ESP, AH, No Next Header, unknown, too many
            return -1;
        }
        if (off + 8 > tot) {
            set_drop(meta, drop::bad_ip6);
            return -1;
        }
        const uint32_t hl = (uint32_t{ip[off + 1]} + 1) * 8;
        if (off + hl - ip6_hlen > max_ext_bytes) {
            set_drop(meta, drop::ipv6_ext);
            return -1;
        }
        if (off + hl > tot) {
            set_drop(meta, drop::bad_ip6);
            return -1;
        }
        nh = ip[off];
        off += hl;
    }
}

// The interface's IPv6 slot whose address `dst` is; for ICMPv6 also the
// solicited-node multicast address of one of them, or ff02::1 (then the
// interface's first IPv6 slot). no_laddr: none.
uint16_t match_laddr6(const classify_ctx& ctx, const iface& ifc, const ip6_addr& dst,
                      bool icmp) noexcept
{
    uint16_t first6 = no_laddr;
    for (unsigned i = ifc.laddr_first; i < unsigned{ifc.laddr_first} + ifc.nladdr; i++) {
        const local_addr& a = ctx.laddrs[i];
        if (a.family != 6)
            continue;
        if (a.ip6 == dst)
            return static_cast<uint16_t>(i);
        if (first6 == no_laddr)
            first6 = static_cast<uint16_t>(i);
        if (icmp && dst.is_multicast() && a.ip6.solicited_node() == dst)
            return static_cast<uint16_t>(i);
    }
    if (icmp && first6 != no_laddr && dst == ip6_addr::all_nodes())
        return first6;
    return no_laddr;
}

// ICMPv6 for us: Neighbor Discovery (133-137: RS, RA, NS, NA, Redirect)
// takes the priority ring like ARP, the rest the policed exception ring.
void classify_icmp6(const uint8_t* ip, uint32_t off, uint32_t tot, pkt_meta& meta) noexcept
{
    if (off + 4 > tot) {
        set_drop(meta, drop::bad_ip6);
        return;
    }
    const uint8_t type = ip[off];
    set_exc(meta, type >= 133 && type <= 137 ? exc_kind::nd : exc_kind::icmp6);
}

} // namespace

void classify_ip6(const classify_ctx& ctx, const iface& ifc, rte_mbuf* m, uint32_t len,
                  pkt_meta& meta) noexcept
{
    if (len < l3 + ip6_hlen) {
        set_drop(meta, drop::bad_ip6);
        return;
    }
    const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3);
    const uint32_t tot = ip6_hlen + ((uint32_t{ip[4]} << 8) | ip[5]);
    if ((ip[0] >> 4) != 6 || l3 + tot > len) {
        set_drop(meta, drop::bad_ip6);
        return;
    }
    uint32_t off = ip6_hlen;
    const int proto = skip_ext_headers(ip, tot, off, meta);
    if (proto < 0)
        return;
    ip6_addr dst;
    std::memcpy(dst.b, ip + 24, 16);
    const uint16_t slot = match_laddr6(ctx, ifc, dst, proto == nh_icmp6);
    if (slot == no_laddr) {
        set_drop(meta, drop::not_for_us);
        return;
    }
    meta.family = 6;
    meta.laddr = slot;
    meta.l3_off = l3;
    meta.l4_off = static_cast<uint16_t>(l3 + off);
    if (proto == nh_icmp6) {
        classify_icmp6(ip, off, tot, meta);
        return;
    }
    if (proto != nh_udp) { // TCP: the kernel interface is IPv4 only
        set_drop(meta, drop::not_udp);
        return;
    }
    if (off + sizeof(rte_udp_hdr) > tot) {
        set_drop(meta, drop::bad_udp);
        return;
    }
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip + off);
    const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || ulen != tot - off) {
        set_drop(meta, drop::bad_udp);
        return;
    }
    if (udp->dgram_cksum == 0) { // mandatory over IPv6 (RFC 8200 §8.1)
        set_drop(meta, drop::bad_udp_zero_cksum);
        return;
    }
    if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
        set_drop(meta, drop::bad_udp_cksum);
        return;
    }
    if (l3 + tot < len) // Ethernet padding
        rte_pktmbuf_trim(m, static_cast<uint16_t>(len - (l3 + tot)));
    const uint32_t plen = ulen - sizeof(rte_udp_hdr);
    const uint8_t* pl = ip + off + sizeof(rte_udp_hdr);
    meta.pclass = payload_class_of(pl, plen);
    ip6_addr src;
    std::memcpy(src.b, ip + 8, 16);
    classify_udp_dst(ctx, ifc, src.fold32(), udp, pl, plen, meta);
}

} // namespace isar::dp
