#include "tests/support/packet_builder.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace isar::test {

namespace {
void put16(bytes& b, size_t off, uint16_t v)
{
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}
void put32(bytes& b, size_t off, uint32_t v)
{
    put16(b, off, static_cast<uint16_t>(v >> 16));
    put16(b, off + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const bytes& b, size_t off)
{
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
uint32_t get32(const bytes& b, size_t off)
{
    return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}
void put_mac(bytes& b, size_t off, const rte_ether_addr& m)
{
    memcpy(&b[off], m.addr_bytes, 6);
}
void get_mac(const bytes& b, size_t off, rte_ether_addr& m)
{
    memcpy(m.addr_bytes, &b[off], 6);
}

// Ethernet header (with an optional VLAN tag); returns its length.
size_t put_eth(bytes& b, const rte_ether_addr& dst, const rte_ether_addr& src,
               std::optional<uint16_t> vlan, uint16_t type)
{
    b.resize(vlan ? 18 : 14);
    put_mac(b, 0, dst);
    put_mac(b, 6, src);
    if (vlan) {
        put16(b, 12, 0x8100);
        put16(b, 14, *vlan);
        put16(b, 16, type);
        return 18;
    }
    put16(b, 12, type);
    return 14;
}
} // namespace

rte_ether_addr mac(uint8_t a, uint8_t b)
{
    return rte_ether_addr{{0x02, 0x00, 0x00, 0x00, a, b}};
}

std::string mac_str(const rte_ether_addr& m)
{
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(buf, sizeof(buf), &m);
    return buf;
}

bool mac_eq(const rte_ether_addr& a, const rte_ether_addr& b)
{
    return memcmp(a.addr_bytes, b.addr_bytes, 6) == 0;
}

uint32_t ip4(const char* dotted)
{
    in_addr a{};
    if (inet_pton(AF_INET, dotted, &a) != 1) {
        fprintf(stderr, "test bug: bad IPv4 literal %s\n", dotted);
        abort();
    }
    return ntohl(a.s_addr);
}

bytes rtp(uint16_t seq, uint32_t ssrc, size_t len, uint8_t first)
{
    bytes b(len);
    for (size_t i = 0; i < len; i++)
        b[i] = static_cast<uint8_t>(i * 7 + seq);
    if (len >= 12) {
        b[0] = 0x80;
        b[1] = 0; // PCMU
        put16(b, 2, seq);
        put32(b, 4, 160u * seq);
        put32(b, 8, ssrc);
    }
    b[0] = first;
    return b;
}

uint16_t ones_sum(const uint8_t* p, size_t n, uint32_t init)
{
    uint64_t s = init;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += static_cast<uint32_t>(p[n - 1] << 8);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

bytes build(const udp4_spec& s)
{
    bytes f;
    const size_t l3 = put_eth(f, s.dst_mac, s.src_mac, s.vlan_tci, s.ether_type);
    const size_t ihl = s.ihl * 4u;
    bytes l4;
    if (s.l4) {
        l4 = *s.l4;
    } else {
        l4.resize(8);
        l4.insert(l4.end(), s.payload.begin(), s.payload.end());
        put16(l4, 0, s.src_port);
        put16(l4, 2, s.dst_port);
        put16(l4, 4, s.udp_length.value_or(static_cast<uint16_t>(l4.size())));
        put16(l4, 6, 0);
    }
    const size_t hdr = ihl < 20 ? 20 : ihl; // always write the fixed header
    f.resize(l3 + hdr, 0x01);               // options: NOP
    f[l3 + 0] = static_cast<uint8_t>(s.version << 4 | (s.ihl & 0xf));
    f[l3 + 1] = s.tos;
    put16(f, l3 + 2, s.total_length.value_or(static_cast<uint16_t>(hdr + l4.size())));
    put16(f, l3 + 4, s.ip_id);
    put16(f, l3 + 6, s.frag);
    f[l3 + 8] = s.ttl;
    f[l3 + 9] = s.proto;
    put16(f, l3 + 10, 0);
    put32(f, l3 + 12, s.src_ip);
    put32(f, l3 + 16, s.dst_ip);
    const uint16_t ipc = static_cast<uint16_t>(~ones_sum(&f[l3], hdr));
    put16(f, l3 + 10, ipc ^ s.ip_cksum_xor);

    if (!s.l4) {
        // Pseudo header + UDP header + payload, over the real length.
        uint8_t ph[12];
        memcpy(ph, &f[l3 + 12], 8);
        ph[8] = 0;
        ph[9] = s.proto;
        ph[10] = static_cast<uint8_t>(l4.size() >> 8);
        ph[11] = static_cast<uint8_t>(l4.size());
        uint16_t c = static_cast<uint16_t>(~ones_sum(l4.data(), l4.size(), ones_sum(ph, 12)));
        if (c == 0)
            c = 0xffff;
        put16(l4, 6, s.udp_cksum.value_or(c));
    }
    f.insert(f.end(), l4.begin(), l4.end());
    f.resize(f.size() + s.eth_pad, 0);
    if (s.truncate && *s.truncate < f.size())
        f.resize(*s.truncate);
    return f;
}

bytes build(const arp_spec& s)
{
    bytes f;
    const size_t o = put_eth(f, s.dst_mac, s.src_mac, std::nullopt, RTE_ETHER_TYPE_ARP);
    f.resize(o + 28);
    put16(f, o + 0, 1);      // Ethernet
    put16(f, o + 2, 0x0800); // IPv4
    f[o + 4] = 6;
    f[o + 5] = 4;
    put16(f, o + 6, s.op);
    put_mac(f, o + 8, s.sha);
    put32(f, o + 14, s.sip);
    put_mac(f, o + 18, s.tha);
    put32(f, o + 24, s.tip);
    if (s.truncate && *s.truncate < f.size())
        f.resize(*s.truncate);
    return f;
}

bytes icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const bytes& data)
{
    bytes b(8);
    b[0] = type;
    b[1] = 0;
    put16(b, 4, id);
    put16(b, 6, seq);
    b.insert(b.end(), data.begin(), data.end());
    put16(b, 2, static_cast<uint16_t>(~ones_sum(b.data(), b.size())));
    return b;
}

bool ipv4_cksum_ok(const bytes& f, size_t l3)
{
    if (f.size() < l3 + 20)
        return false;
    const size_t ihl = (f[l3] & 0xf) * 4u;
    if (ihl < 20 || f.size() < l3 + ihl)
        return false;
    return ones_sum(&f[l3], ihl) == 0xffff;
}

bool udp4_cksum_ok(const bytes& f, size_t l3)
{
    if (f.size() < l3 + 20)
        return false;
    const size_t ihl = (f[l3] & 0xf) * 4u;
    const size_t tot = get16(f, l3 + 2);
    if (tot < ihl + 8 || f.size() < l3 + tot)
        return false;
    const size_t ulen = tot - ihl;
    const uint8_t* u = &f[l3 + ihl];
    if (u[6] == 0 && u[7] == 0)
        return false; // no checksum
    uint8_t ph[12];
    memcpy(ph, &f[l3 + 12], 8);
    ph[8] = 0;
    ph[9] = f[l3 + 9];
    ph[10] = static_cast<uint8_t>(ulen >> 8);
    ph[11] = static_cast<uint8_t>(ulen);
    return ones_sum(u, ulen, ones_sum(ph, 12)) == 0xffff;
}

std::optional<udp4_view> parse_udp4(const bytes& f)
{
    if (f.size() < 14 + 20 || get16(f, 12) != RTE_ETHER_TYPE_IPV4)
        return std::nullopt;
    udp4_view v;
    get_mac(f, 0, v.dst_mac);
    get_mac(f, 6, v.src_mac);
    const size_t l3 = 14;
    v.ihl = static_cast<uint8_t>((f[l3] & 0xf) * 4);
    v.total_length = get16(f, l3 + 2);
    v.ttl = f[l3 + 8];
    v.proto = f[l3 + 9];
    v.src_ip = get32(f, l3 + 12);
    v.dst_ip = get32(f, l3 + 16);
    if (v.proto != 17 || v.ihl < 20 || v.total_length < v.ihl + 8u ||
        f.size() < l3 + v.total_length)
        return std::nullopt;
    const size_t l4 = l3 + v.ihl;
    v.src_port = get16(f, l4);
    v.dst_port = get16(f, l4 + 2);
    v.udp_length = get16(f, l4 + 4);
    v.payload.assign(f.begin() + static_cast<long>(l4 + 8),
                     f.begin() + static_cast<long>(l3 + v.total_length));
    v.ip_cksum_ok = ipv4_cksum_ok(f, l3);
    v.udp_cksum_ok = udp4_cksum_ok(f, l3);
    return v;
}

rte_mbuf* make_mbuf(rte_mempool* mp, const bytes& frame, uint16_t port)
{
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    if (m == nullptr)
        return nullptr;
    if (frame.size() > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
    if (!frame.empty())
        memcpy(p, frame.data(), frame.size());
    m->port = port;
    return m;
}

namespace {
struct ext_buf {
    rte_mbuf_ext_shared_info shinfo{};
    uint8_t* data = nullptr;
};
void ext_buf_free(void*, void* opaque)
{
    auto* e = static_cast<ext_buf*>(opaque);
    free(e->data);
    delete e;
}
} // namespace

rte_mbuf* make_exact_mbuf(rte_mempool* mp, const bytes& frame, uint16_t port)
{
    if (frame.size() > UINT16_MAX)
        return nullptr;
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    if (m == nullptr)
        return nullptr;
    auto* e = new ext_buf;
    e->data = static_cast<uint8_t*>(malloc(frame.empty() ? 1 : frame.size()));
    if (!frame.empty())
        memcpy(e->data, frame.data(), frame.size());
    e->shinfo.free_cb = ext_buf_free;
    e->shinfo.fcb_opaque = e;
    rte_mbuf_ext_refcnt_set(&e->shinfo, 1);
    rte_pktmbuf_attach_extbuf(m, e->data, 0, static_cast<uint16_t>(frame.size()), &e->shinfo);
    m->data_len = static_cast<uint16_t>(frame.size());
    m->pkt_len = static_cast<uint32_t>(frame.size());
    m->port = port;
    return m;
}

rte_mbuf* make_chain(rte_mempool* mp, const bytes& frame, size_t seg, uint16_t port)
{
    rte_mbuf* head = nullptr;
    size_t off = 0;
    do {
        const size_t n = std::min(seg, frame.size() - off);
        bytes part(frame.begin() + static_cast<long>(off),
                   frame.begin() + static_cast<long>(off + n));
        rte_mbuf* m = make_mbuf(mp, part, port);
        if (m == nullptr) {
            rte_pktmbuf_free(head);
            return nullptr;
        }
        if (head == nullptr) {
            head = m;
        } else if (rte_pktmbuf_chain(head, m) != 0) {
            rte_pktmbuf_free(m);
            rte_pktmbuf_free(head);
            return nullptr;
        }
        off += n;
    } while (off < frame.size());
    return head;
}

bytes mbuf_bytes(const rte_mbuf* m)
{
    bytes b;
    b.reserve(rte_pktmbuf_pkt_len(m));
    for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
        const uint8_t* p = rte_pktmbuf_mtod(s, const uint8_t*);
        b.insert(b.end(), p, p + s->data_len);
    }
    return b;
}

} // namespace isar::test
