// dataplane/classify6.cc (and the IPv4 slot match of classify.cc): an
// interface with three slots (198.18.0.1/24, 2001:2::1/64, 198.18.1.1/24),
// every IPv6 drop reason, extension-header skipping, ICMPv6 to control.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "tests/dataplane/v6_frames.h"
#include "tests/support/eal_env.h"

ISAR_TEST_EAL_ENV("test_classify6");

using namespace isar;
using namespace isar::test;
using dp::drop;
using dp::exc_kind;
using dp::verdict;

namespace {

const dp::ip6_addr relay6 = ip6("2001:2::1");
const dp::ip6_addr peer6 = ip6("2001:2::10");

class Classify6 : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        ASSERT_TRUE(eal_env::ready());
        mp_ = rte_pktmbuf_pool_create("classify6_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      SOCKET_ID_ANY);
        ASSERT_NE(mp_, nullptr);
    }
    static void TearDownTestSuite()
    {
        rte_mempool_free(mp_);
        mp_ = nullptr;
    }
    void SetUp() override
    {
        for (auto& i : iface_of_port_)
            i = -1;
        iface_of_port_[0] = 0;
        ifc_.ip_be = rte_cpu_to_be_32(ip4("198.18.0.1"));
        ifc_.mask_be = rte_cpu_to_be_32(0xffffff00);
        ifc_.laddr_first = 0;
        ifc_.nladdr = 3;
        ifc_.laddr4 = 0;
        la_[0].ip4_be = ifc_.ip_be;
        la_[0].mask4_be = ifc_.mask_be;
        la_[1].family = 6;
        la_[1].prefix_len = 64;
        la_[1].ip6 = relay6;
        la_[2].ip4_be = rte_cpu_to_be_32(ip4("198.18.1.1"));
        la_[2].mask4_be = ifc_.mask_be;
        ctx_.ifaces = &ifc_;
        ctx_.laddrs = la_;
        ctx_.nladdrs = 3;
        ctx_.iface_of_port = iface_of_port_;
        ctx_.nports = 4;
        ctx_.nworkers = 1;
        ctx_.relay_min = 30000;
        ctx_.relay_max = 39999;
        in_use_ = rte_mempool_in_use_count(mp_);
    }
    void TearDown() override { EXPECT_EQ(rte_mempool_in_use_count(mp_), in_use_); }

    // Classifies `f`; returns the meta and the frame length after it.
    dp::pkt_meta run(const bytes& f, uint32_t* len_after = nullptr, uint64_t ol_flags = 0)
    {
        rte_mbuf* m = make_mbuf(mp_, f, 0);
        EXPECT_NE(m, nullptr);
        m->ol_flags = ol_flags;
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        if (len_after != nullptr)
            *len_after = rte_pktmbuf_pkt_len(m);
        rte_pktmbuf_free(m);
        return meta;
    }
    static udp6_spec rtp6(uint16_t dport = 30000)
    {
        udp6_spec s;
        s.src = peer6;
        s.dst = relay6;
        s.src_port = 5004;
        s.dst_port = dport;
        s.payload = rtp(1, 0x11223344, 100);
        return s;
    }
    void expect_drop(const udp6_spec& s, drop d)
    {
        const dp::pkt_meta m = run(build(s));
        EXPECT_EQ(m.v, verdict::drop);
        EXPECT_STREQ(dp::drop_name(m.reason), dp::drop_name(d));
    }

    static rte_mempool* mp_;
    dp::iface ifc_;
    dp::local_addr la_[3];
    int16_t iface_of_port_[4];
    dp::classify_ctx ctx_;
    unsigned in_use_ = 0;
};
rte_mempool* Classify6::mp_ = nullptr;

TEST_F(Classify6, UdpToTheV6SlotIsLookedUpBySlotAndPort)
{
    udp6_spec s = rtp6(30002);
    s.eth_pad = 6;
    uint32_t len = 0;
    const dp::pkt_meta m = run(build(s), &len);
    ASSERT_EQ(m.v, verdict::lookup);
    EXPECT_EQ(m.family, 6);
    EXPECT_EQ(m.laddr, 1);
    EXPECT_EQ(m.key, dp::flow_key(1, 30002));
    EXPECT_EQ(m.l3_off, 14);
    EXPECT_EQ(m.l4_off, 54);
    EXPECT_EQ(m.pclass, dp::payload_class::rtp);
    EXPECT_EQ(len, build(rtp6(30002)).size()) << "Ethernet padding trimmed";
}

TEST_F(Classify6, ExtensionHeadersAreSkipped)
{
    udp6_spec s = rtp6();
    s.ext = {{0, 8}, {60, 16}, {43, 24}};
    const dp::pkt_meta m = run(build(s));
    ASSERT_EQ(m.v, verdict::lookup);
    EXPECT_EQ(m.l4_off, 14 + 40 + 48);
    EXPECT_EQ(m.key, dp::flow_key(1, 30000));
}

TEST_F(Classify6, SecondIpv4SlotMatches)
{
    udp4_spec s;
    s.src_ip = ip4("198.18.1.10");
    s.dst_ip = ip4("198.18.1.1");
    s.src_port = 5004;
    s.dst_port = 30004;
    s.payload = rtp(1, 1, 100);
    const dp::pkt_meta m = run(build(s));
    ASSERT_EQ(m.v, verdict::lookup);
    EXPECT_EQ(m.family, 4);
    EXPECT_EQ(m.laddr, 2);
    EXPECT_EQ(m.key, dp::flow_key(2, 30004));
    s.dst_ip = ip4("198.18.0.1");
    EXPECT_EQ(run(build(s)).key, dp::flow_key(0, 30004));
    s.dst_ip = ip4("198.18.2.1");
    EXPECT_EQ(run(build(s)).reason, drop::not_for_us);
}

TEST_F(Classify6, EveryDropReason)
{
    udp6_spec s = rtp6();
    s.truncate = 14 + 39;
    expect_drop(s, drop::bad_ip6);
    s = rtp6();
    s.version = 4;
    expect_drop(s, drop::bad_ip6);
    s = rtp6();
    s.payload_len = 8 + 100 + 1; // one byte beyond the frame
    expect_drop(s, drop::bad_ip6);
    s = rtp6();
    s.ext = {{0, 8}, {44, 8}};
    expect_drop(s, drop::ip_fragment);
    for (uint8_t t : {50, 51, 59, 135, 200}) { // ESP, AH, none, mobility, unknown
        s = rtp6();
        s.ext = {{t, 8}};
        SCOPED_TRACE(int(t));
        expect_drop(s, drop::ipv6_ext);
    }
    s = rtp6();
    s.ext = {{0, 8}, {60, 8}, {60, 8}, {60, 8}, {60, 8}}; // five
    expect_drop(s, drop::ipv6_ext);
    s = rtp6();
    s.ext = {{60, 8}, {60, 256}}; // 264 bytes
    expect_drop(s, drop::ipv6_ext);
    s = rtp6();
    s.ext = {{60, 16}};
    s.payload_len = 12; // the header's length runs past the payload
    s.l4 = bytes{};
    expect_drop(s, drop::bad_ip6);
    s = rtp6();
    s.udp_cksum = 0;
    expect_drop(s, drop::bad_udp_zero_cksum);
    s = rtp6();
    s.udp_length = 7;
    expect_drop(s, drop::bad_udp);
    s = rtp6();
    s.dst = ip6("2001:2::2");
    expect_drop(s, drop::not_for_us);
    s = rtp6();
    s.dst = relay6.solicited_node(); // UDP to a multicast group
    expect_drop(s, drop::not_for_us);
    s = rtp6();
    s.proto = 6;
    s.l4 = bytes(20, 0);
    expect_drop(s, drop::not_udp);
    const dp::pkt_meta m = run(build(rtp6()), nullptr, RTE_MBUF_F_RX_L4_CKSUM_BAD);
    EXPECT_EQ(m.reason, drop::bad_udp_cksum);
}

TEST_F(Classify6, Icmp6ForUsGoesToControl)
{
    udp6_spec s;
    s.src = peer6;
    s.proto = 58;
    s.l4 = bytes{135, 0, 0, 0, 0, 0, 0, 0}; // Neighbor Solicitation
    s.dst = relay6.solicited_node();
    dp::pkt_meta m = run(build(s));
    ASSERT_EQ(m.v, verdict::exception);
    EXPECT_EQ(m.exc, exc_kind::nd);
    EXPECT_EQ(m.laddr, 1);
    s.dst = dp::ip6_addr::all_nodes();
    s.l4 = bytes{136, 0, 0, 0}; // NA
    m = run(build(s));
    EXPECT_EQ(m.exc, exc_kind::nd);
    s.dst = relay6;
    s.l4 = bytes{128, 0, 0, 0, 0, 1, 0, 1}; // echo request
    m = run(build(s));
    ASSERT_EQ(m.v, verdict::exception);
    EXPECT_EQ(m.exc, exc_kind::icmp6);
    s.dst = ip6("ff02::1:ff00:99"); // someone else's solicited-node group
    EXPECT_EQ(run(build(s)).reason, drop::not_for_us);
    s.dst = relay6;
    s.l4 = bytes{128, 0};
    EXPECT_EQ(run(build(s)).reason, drop::bad_ip6);
}

TEST_F(Classify6, NoV6SlotDropsV6)
{
    ifc_.nladdr = 1; // only 198.18.0.1
    EXPECT_EQ(run(build(rtp6())).reason, drop::not_for_us);
}

} // namespace
