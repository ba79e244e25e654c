// dataplane/classify.cc as a golden table: each row is a frame builder and the
// verdict, drop reason or exception kind the classifier must give it. Plus the
// whole RFC 7983 first-byte map and "classify never writes to the packet".
// The TURN listener and relay-pool rows and the kernel interface's verdicts
// are in test_classify_turn.cc; the check itself in classify_golden.h.
#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"
#include "tests/unit/classify_golden.h"

#include <gtest/gtest.h>
#include <initializer_list>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <string>
#include <vector>

ISAR_TEST_EAL_ENV("test_classify");

using namespace isar;
using namespace isar::test;
using namespace isar::test::classify_golden;

namespace {

std::vector<row> golden_rows()
{
    std::vector<row> r;
    const uint32_t rtp_len = 14 + 20 + 8 + 172;

    // ---- the fast path --------------------------------------------------
    r.push_back(
            lookup("RTP to an even relay port: owner 0", rtp_to(30000), port0, 30000, 0, rtp_len));
    r.push_back(
            lookup("RTP to relay port 30002: owner 1 (ports go in pairs)", rtp_to(30002), port0,
                   30002, 1, rtp_len));
    {
        auto s = rtp_to(40002);
        s.dst_ip = relay1;
        r.push_back(lookup("RTP on the second interface: key has its index", s, port1, 40002, 1,
                           rtp_len, port1));
    }
    {
        auto s = rtp_to();
        s.payload[0] = 0x81;
        s.payload[1] = 200; // RTCP SR
        r.push_back(lookup("RTCP (PT 200) takes the fast path", s, port0, 30000, 0, rtp_len));
    }
    r.push_back(lookup(
            "first byte 128 (lowest RTP)",
            [] {
                auto s = rtp_to();
                s.payload = rtp(1, 1, 20, 128);
                return s;
            }(),
            port0, 30000, 0, 14 + 20 + 8 + 20));
    r.push_back(lookup(
            "first byte 191 (highest RTP)",
            [] {
                auto s = rtp_to();
                s.payload = rtp(1, 1, 20, 191);
                return s;
            }(),
            port0, 30000, 0, 14 + 20 + 8 + 20));
    r.push_back(lookup("8-byte RTP payload (shortest accepted)", rtp_to(30000, 8), port0, 30000, 0,
                       14 + 20 + 8 + 8));
    {
        auto s = rtp_to(30000, 12);
        s.eth_pad = 6; // 54-byte frame padded to the 60-byte minimum
        r.push_back(lookup("Ethernet padding is trimmed", s, port0, 30000, 0, 54));
    }
    {
        auto s = rtp_to();
        s.eth_pad = 100;
        r.push_back(lookup("long trailer is trimmed", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.ihl = 6; // one word of IP options
        r.push_back(lookup("IPv4 options (IHL 6)", s, port0, 30000, 0, rtp_len + 4));
    }
    {
        auto s = rtp_to();
        s.frag = RTE_IPV4_HDR_DF_FLAG;
        r.push_back(lookup("DF set is not a fragment", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.udp_cksum = 0;
        r.push_back(lookup("UDP checksum absent (0)", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.ttl = 1;
        r.push_back(lookup("TTL 1 is for us, not forwarded by IP", s, port0, 30000, 0, rtp_len));
    }

    // ---- exceptions ---------------------------------------------------------
    exc_kind arp = exc_kind::arp;
    r.push_back(exception("ARP request", build(arp_spec{.sip = peer, .tip = relay0}), arp));
    r.push_back(exception("ARP reply", build(arp_spec{.op = 2, .sip = peer, .tip = relay0}), arp));
    r.push_back(exception("truncated ARP (control validates it)",
                          build(arp_spec{.sip = peer, .tip = relay0, .truncate = 20}), arp));
    {
        udp4_spec s = rtp_to();
        s.proto = IPPROTO_ICMP;
        s.l4 = icmp_echo(8, 1, 1, bytes(56, 0xab));
        r.push_back(exception("ICMP echo request", build(s), exc_kind::icmp));
        s.l4 = icmp_echo(3, 0, 0, bytes(28, 0));
        r.push_back(exception("ICMP unreachable", build(s), exc_kind::icmp));
    }
    for (uint8_t b : {0, 1, 2, 3}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(exception("STUN first byte " + std::to_string(b), build(s), exc_kind::stun));
    }
    {
        auto s = rtp_to();
        s.payload = {0};
        r.push_back(exception("1-byte STUN is still STUN", build(s), exc_kind::stun));
    }
    for (uint8_t b : {20, 22, 63}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(exception("DTLS first byte " + std::to_string(b), build(s), exc_kind::dtls));
    }

    // ---- RFC 7983: everything else is not RTP -------------------------------
    for (uint8_t b : {4, 19, 64, 127, 192, 255}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(dropped("first byte " + std::to_string(b), s, drop::not_rtp));
    }
    {
        auto s = rtp_to();
        s.payload.clear();
        r.push_back(dropped("empty UDP payload", s, drop::not_rtp));
    }
    r.push_back(dropped("7-byte RTP payload", rtp_to(30000, 7), drop::rtp_short));
    r.push_back(dropped("1-byte RTP payload", rtp_to(30000, 1), drop::rtp_short));

    // ---- L2 -------------------------------------------------------------------
    r.push_back(dropped_raw("empty frame", {}, drop::bad_l2));
    r.push_back(dropped_raw("13-byte frame", bytes(13, 0x08), drop::bad_l2));
    {
        auto f = build(rtp_to());
        f.resize(14);
        r.push_back(dropped_raw("Ethernet header only", f, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.vlan_tci = 100;
        r.push_back(dropped("802.1Q tagged", s, drop::odd_ethertype));
    }
    {
        auto s = rtp_to();
        s.ether_type = RTE_ETHER_TYPE_IPV6;
        r.push_back(dropped("IPv6 EtherType on IPv4 bytes", s, drop::bad_ip6));
        s.ether_type = 0x88cc;
        r.push_back(dropped("LLDP EtherType", s, drop::odd_ethertype));
        s.ether_type = 0x0000;
        r.push_back(dropped("EtherType 0 (802.3 length)", s, drop::odd_ethertype));
    }
    r.push_back(row{"multi-segment mbuf",
                    [](rte_mempool* mp) { return make_chain(mp, build(rtp_to()), 64, port0); },
                    verdict::drop, drop::multi_seg});
    r.push_back(row{"multi-segment, split inside the Ethernet header",
                    [](rte_mempool* mp) { return make_chain(mp, build(rtp_to()), 10, port0); },
                    verdict::drop, drop::multi_seg});
    r.push_back(dropped_raw("received on a port that is no interface", build(rtp_to()),
                            drop::not_for_us, 3));
    r.push_back(dropped_raw("port id beyond the table", build(rtp_to()), drop::not_for_us, 200));

    // ---- IPv4 -----------------------------------------------------------------
    {
        auto f = build(rtp_to());
        f.resize(14 + 19);
        r.push_back(dropped_raw("truncated IPv4 header", f, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.version = 6;
        r.push_back(dropped("IP version 6 under EtherType IPv4", s, drop::bad_ip));
        s.version = 5;
        r.push_back(dropped("IP version 5", s, drop::bad_ip));
    }
    for (uint8_t ihl : {0, 4}) {
        auto s = rtp_to();
        s.ihl = ihl;
        r.push_back(dropped("IHL " + std::to_string(ihl), s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.ihl = 15;
        s.total_length = 28; // total < IHL
        r.push_back(dropped("IHL 15 beyond total length", s, drop::bad_ip));
    }
    {
        auto s = rtp_to(30000, 12);
        s.ihl = 15;
        s.truncate = 14 + 40; // header claims 60 bytes, frame has 40
        r.push_back(dropped("IHL 15 beyond the frame", s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.total_length = 20 + 8 + 172 + 1;
        r.push_back(dropped("total length one past the frame", s, drop::bad_ip));
        s.total_length = 0xffff;
        r.push_back(dropped("total length 65535", s, drop::bad_ip));
        s.total_length = 19;
        r.push_back(dropped("total length below 20", s, drop::bad_ip));
        s.total_length = 0;
        r.push_back(dropped("total length 0", s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.ip_cksum_xor = 0x0001;
        r.push_back(dropped("IP checksum off by one bit", s, drop::bad_ip_cksum));
        s.ip_cksum_xor = 0xffff;
        r.push_back(dropped("IP checksum inverted", s, drop::bad_ip_cksum));
    }
    {
        auto s = rtp_to();
        s.frag = RTE_IPV4_HDR_MF_FLAG;
        r.push_back(dropped("first fragment (MF)", s, drop::ip_fragment));
        s.frag = 185; // offset 1480, last fragment
        r.push_back(dropped("last fragment (offset)", s, drop::ip_fragment));
        s.frag = RTE_IPV4_HDR_MF_FLAG | 1;
        r.push_back(dropped("middle fragment", s, drop::ip_fragment));
    }
    {
        auto s = rtp_to();
        s.dst_ip = ip4("198.18.0.99");
        r.push_back(dropped("another host's address", s, drop::not_for_us));
        s.dst_ip = ip4("198.18.0.255");
        r.push_back(dropped("subnet broadcast", s, drop::not_for_us));
        s.dst_ip = 0xffffffff;
        r.push_back(dropped("limited broadcast", s, drop::not_for_us));
        s.dst_ip = relay1;
        r.push_back(dropped("other interface's address arriving here", s, drop::not_for_us));
    }
    {
        auto s = rtp_to();
        s.proto = IPPROTO_TCP;
        s.l4 = bytes(40, 0);
        r.push_back(dropped("TCP", s, drop::not_udp));
        s.proto = 47;
        r.push_back(dropped("GRE", s, drop::not_udp));
        s.proto = IPPROTO_ICMP;
        s.dst_ip = ip4("198.18.0.99");
        r.push_back(dropped("ICMP for another host", s, drop::not_for_us));
    }

    // ---- UDP ------------------------------------------------------------------
    {
        auto s = rtp_to();
        s.l4 = bytes{0x13, 0x8c, 0x75};
        r.push_back(dropped("truncated UDP header", s, drop::bad_udp));
    }
    {
        auto s = rtp_to();
        s.udp_length = 8 + 172 + 1;
        r.push_back(dropped("UDP length above IP payload", s, drop::bad_udp));
        s.udp_length = 8 + 171;
        r.push_back(dropped("UDP length below IP payload", s, drop::bad_udp));
        s.udp_length = 7;
        r.push_back(dropped("UDP length 7", s, drop::bad_udp));
        s.udp_length = 0;
        r.push_back(dropped("UDP length 0", s, drop::bad_udp));
    }
    return r;
}

class Classify : public ClassifyCtx, public ::testing::WithParamInterface<row> {};

} // namespace

TEST_P(Classify, Golden)
{
    check_row(ctx_, mp_, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Table, Classify, ::testing::ValuesIn(golden_rows()), row_name);

// Every one of the 256 first-byte values lands where RFC 7983 says.
TEST_F(ClassifyCtx, Rfc7983FullMap)
{
    for (unsigned b = 0; b < 256; b++) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 40, static_cast<uint8_t>(b));
        rte_mbuf* m = make_mbuf(mp_, build(s), port0);
        ASSERT_NE(m, nullptr);
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        if (b <= 3) {
            EXPECT_EQ(meta.v, verdict::exception) << b;
            EXPECT_EQ(meta.exc, exc_kind::stun) << b;
        } else if (b >= 20 && b <= 63) {
            EXPECT_EQ(meta.v, verdict::exception) << b;
            EXPECT_EQ(meta.exc, exc_kind::dtls) << b;
        } else if (b >= 128 && b <= 191) {
            EXPECT_EQ(meta.v, verdict::lookup) << b;
        } else {
            EXPECT_EQ(meta.v, verdict::drop) << b;
            EXPECT_EQ(meta.reason, drop::not_rtp) << b;
        }
        rte_pktmbuf_free(m);
    }
}

// Owner is dealt by port number with the context's worker count.
TEST_F(ClassifyCtx, OwnerFollowsWorkerCount)
{
    for (uint16_t nw : {1, 2, 3, 7}) {
        ctx_.nworkers = nw;
        for (uint16_t port : {30000, 30001, 30002, 30005, 65535}) {
            rte_mbuf* m = make_mbuf(mp_, build(rtp_to(port)), port0);
            ASSERT_NE(m, nullptr);
            dp::pkt_meta meta;
            dp::classify_one(ctx_, m, meta);
            ASSERT_EQ(meta.v, verdict::lookup);
            EXPECT_EQ(meta.owner, (port / 2) % nw) << "port " << port << " nw " << nw;
            EXPECT_EQ(meta.key, dp::flow_key(0, port));
            EXPECT_EQ(meta.iface, 0);
            rte_pktmbuf_free(m);
        }
    }
}

// Every length from 0 to a full RTP frame, cut short: never a lookup unless
// the frame is whole, and never a read past the data (ASan checks that).
TEST_F(ClassifyCtx, EveryTruncation)
{
    const bytes full = build(rtp_to(30000, 20));
    for (size_t n = 0; n <= full.size(); n++) {
        bytes f(full.begin(), full.begin() + static_cast<long>(n));
        rte_mbuf* m = make_exact_mbuf(mp_, f, port0);
        ASSERT_NE(m, nullptr);
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        if (n == full.size()) {
            EXPECT_EQ(meta.v, verdict::lookup);
        } else {
            EXPECT_EQ(meta.v, verdict::drop) << n << " bytes: " << meta_str(meta);
        }
        rte_pktmbuf_free(m);
    }
}

// The port's own checksum verdicts: a bad one drops, a good IPv4 one is
// trusted without summing the header again.
TEST_F(ClassifyCtx, PortChecksumFlags)
{
    struct c {
        uint64_t flags;
        bool break_ip;
        verdict want;
        drop reason;
    };
    for (const c& x : std::initializer_list<c>{
                 {RTE_MBUF_F_RX_L4_CKSUM_BAD, false, verdict::drop, drop::bad_udp_cksum},
                 {RTE_MBUF_F_RX_L4_CKSUM_GOOD, false, verdict::lookup, drop::bad_l2},
                 {RTE_MBUF_F_RX_IP_CKSUM_BAD, false, verdict::drop, drop::bad_ip_cksum},
                 {RTE_MBUF_F_RX_IP_CKSUM_GOOD, true, verdict::lookup, drop::bad_l2},
                 {0, true, verdict::drop, drop::bad_ip_cksum},
         }) {
        bytes f = build(rtp_to(30000));
        if (x.break_ip)
            f[24] ^= 0x5a; // IPv4 header checksum
        rte_mbuf* m = make_mbuf(mp_, f, port0);
        ASSERT_NE(m, nullptr);
        m->ol_flags = x.flags;
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        EXPECT_EQ(meta.v, x.want) << x.flags;
        if (x.want == verdict::drop) {
            EXPECT_EQ(meta.reason, x.reason) << x.flags;
        }
        rte_pktmbuf_free(m);
    }
}
