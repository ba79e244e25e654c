// Frames for tests, built byte by byte with every field under the test's
// control: the defaults give a valid Ethernet/IPv4/UDP frame with correct
// checksums, and each knob breaks one thing. Checksums are computed here with
// a plain one's-complement sum, independent of DPDK's helpers, so that tests
// can verify what the dataplane wrote.
//
// Addresses and ports in the specs are in host order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <string>
#include <vector>

namespace isar::test {

using bytes = std::vector<uint8_t>;

// 02:00:00:00:<a>:<b> (locally administered, unicast).
rte_ether_addr mac(uint8_t a, uint8_t b = 0);
std::string mac_str(const rte_ether_addr& m);
bool mac_eq(const rte_ether_addr& a, const rte_ether_addr& b);
// "198.18.0.1" -> host order; aborts the test binary on a typo.
uint32_t ip4(const char* dotted);

// An RTP header (V=2) followed by `len - 12` bytes of a recognisable pattern;
// `first` overrides the first byte (RFC 7983 demux tests). len >= 1.
bytes rtp(uint16_t seq, uint32_t ssrc, size_t len = 172, uint8_t first = 0x80);

struct udp4_spec {
    rte_ether_addr dst_mac = mac(0, 1);
    rte_ether_addr src_mac = mac(0, 2);
    std::optional<uint16_t> vlan_tci; // inserts an 802.1Q tag
    uint16_t ether_type = RTE_ETHER_TYPE_IPV4;
    uint8_t version = 4;
    uint8_t ihl = 5; // 32-bit words; options are NOPs
    uint8_t tos = 0;
    uint16_t ip_id = 0x1234;
    uint16_t frag = 0; // flags and offset (RTE_IPV4_HDR_MF_FLAG | off)
    uint8_t ttl = 64;
    uint8_t proto = 17; // IPPROTO_UDP
    uint32_t src_ip = 0;
    uint32_t dst_ip = 0;
    std::optional<uint16_t> total_length; // default: the real length
    uint16_t ip_cksum_xor = 0;            // flips bits of the correct checksum
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    std::optional<uint16_t> udp_length; // default: the real length
    std::optional<uint16_t> udp_cksum;  // default: the correct checksum
    std::optional<bytes> l4;            // raw L4 bytes instead of a UDP header
    bytes payload;
    size_t eth_pad = 0;             // bytes after the IP datagram
    std::optional<size_t> truncate; // cut the finished frame to this size
};
bytes build(const udp4_spec& s);

struct arp_spec {
    rte_ether_addr dst_mac = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    rte_ether_addr src_mac = mac(0, 2);
    uint16_t op = 1; // 1 request, 2 reply
    rte_ether_addr sha = mac(0, 2);
    uint32_t sip = 0;
    rte_ether_addr tha = {};
    uint32_t tip = 0;
    std::optional<size_t> truncate;
};
bytes build(const arp_spec& s);

// ICMP echo request/reply body (type, code, checksum, id, seq, data).
bytes icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const bytes& data);

// ---- checksums (independent of DPDK) -------------------------------------
// 16-bit one's-complement sum of `n` bytes, folded, not inverted.
uint16_t ones_sum(const uint8_t* p, size_t n, uint32_t init = 0);
bool ipv4_cksum_ok(const bytes& frame, size_t l3_off = 14);
// The UDP checksum must be present (non-zero) and correct.
bool udp4_cksum_ok(const bytes& frame, size_t l3_off = 14);

// ---- reading a frame -------------------------------------------------------
struct udp4_view {
    rte_ether_addr dst_mac, src_mac;
    uint32_t src_ip = 0, dst_ip = 0; // host order
    uint16_t src_port = 0, dst_port = 0;
    uint8_t ttl = 0, proto = 0, ihl = 0;
    uint16_t total_length = 0, udp_length = 0;
    bytes payload;
    bool ip_cksum_ok = false, udp_cksum_ok = false;
};
// nullopt unless the frame is an untagged IPv4/UDP frame whose lengths fit.
std::optional<udp4_view> parse_udp4(const bytes& frame);

// ---- mbufs -----------------------------------------------------------------
// One-segment mbuf holding `frame`, m->port = port. nullptr when the pool is
// empty or the frame does not fit.
rte_mbuf* make_mbuf(rte_mempool* mp, const bytes& frame, uint16_t port = 0);
// Like make_mbuf, but the data lives in an external buffer from malloc() of
// exactly the frame's size (no headroom, no tailroom): under ASan, any read
// or write past the end of the frame is reported instead of landing silently
// in the next mbuf of the pool.
rte_mbuf* make_exact_mbuf(rte_mempool* mp, const bytes& frame, uint16_t port = 0);
// The frame split over several segments of at most `seg` bytes each.
rte_mbuf* make_chain(rte_mempool* mp, const bytes& frame, size_t seg, uint16_t port = 0);
// Copies every segment out.
bytes mbuf_bytes(const rte_mbuf* m);

// A hex dump, 16 bytes a line: a frame diff is much easier to read so than
// two vectors of numbers.
inline std::string hex(const bytes& b)
{
    std::string s;
    char buf[4];
    for (size_t i = 0; i < b.size(); i++) {
        snprintf(buf, sizeof(buf), "%02x", b[i]);
        s += buf;
        s += (i % 16 == 15) ? "\n" : " ";
    }
    return s;
}

#define EXPECT_FRAME(got, want)                                                                    \
    EXPECT_TRUE((got) == (want)) << "got:\n" << hex(got) << "\nwant:\n" << hex(want)

} // namespace isar::test
