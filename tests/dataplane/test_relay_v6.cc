// IPv6 through the worker: v6 <-> v6, v4 -> v6 and v6 -> v4 (bridging)
// byte-exact with the checksums checked independently, latching and strict
// source by the whole IPv6 address, next hop by ND (hold on a miss), no route.
// Interface 0 has two slots: 198.18.0.1/24 (slot 0) and 2001:2::1/64 (slot
// 1). Sessions are installed with flow commands directly (the control plane
// learns IPv6 legs separately).
#include "crypto/srtp_context.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/dataplane/v6_frames.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>

ISAR_TEST_EAL_ENV("test_relay_v6");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

struct leg_spec {
    uint16_t laddr;
    uint16_t port;
    dp::packed_ep remote = 0;
    dp::ip6_addr remote6{};
};

class RelayV6 : public FlowRelayTest {
protected:
    void SetUp() override
    {
        relay_options o;
        o.tweak = [](dp::dp_config& c) { c.ifaces[0].addrs.push_back(slot6(relay6)); };
        start(o);
        ASSERT_EQ(r->dp->nladdrs(), 2u);
        ASSERT_EQ(r->dp->laddr(1).family, 6);
    }
    // A session whose leg i forwards to leg 1 - i.
    void install(const leg_spec& a, const leg_spec& b)
    {
        install_two_legs([&](dp::leg& l, unsigned i) {
            const leg_spec& s = i == 0 ? a : b;
            l.laddr = s.laddr;
            l.family = r->dp->laddr(s.laddr).family;
            l.local_port_be = rte_cpu_to_be_16(s.port);
            l.remote6 = s.remote6;
            l.remote.store(s.remote);
        });
    }
    void learn6(const peer6& p) { ASSERT_TRUE(r->dp->ifc(0).neigh->update6(p.ip, p.mac)); }
    static udp6_spec v6(const dp::ip6_addr& src, uint16_t sport, const dp::ip6_addr& dst,
                        uint16_t dport, const bytes& payload)
    {
        udp6_spec s;
        s.src = src;
        s.dst = dst;
        s.src_port = sport;
        s.dst_port = dport;
        s.payload = payload;
        return s;
    }
    // What the relay sends (own MAC to the peer's).
    udp6_spec out6(const peer6& to, uint16_t sport, const bytes& payload) const
    {
        udp6_spec s = v6(relay6, sport, to.ip, to.port, payload);
        s.src_mac = r->mac(0);
        s.dst_mac = to.mac;
        return s;
    }
};

TEST_F(RelayV6, V6ToV6ByteExact)
{
    learn6(alice6);
    learn6(bob6);
    install({1, 30100, alice6.ep(), alice6.ip}, {1, 30101, bob6.ep(), bob6.ip});
    const bytes pl = rtp(7, 0xabcdef01, 160);
    udp6_spec in = v6(alice6.ip, alice6.port, relay6, 30100, pl);
    in.hop_limit = 3;
    in.tc = 0xb8;      // EF: carried over
    in.ext = {{0, 8}}; // Hop-by-Hop: stripped
    const auto out = run(build(in));
    ASSERT_EQ(out.size(), 1u);
    udp6_spec want = out6(bob6, 30101, pl);
    want.tc = 0xb8;
    EXPECT_EQ(hex(out[0]), hex(build(want)));
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 1u);
    r->expect_accounted("v6 to v6");
}

TEST_F(RelayV6, V4ToV6ByteExactAndZeroChecksumGetsOne)
{
    r->learn(alice);
    learn6(bob6);
    install({0, 30100, dp::pack_ep(rte_cpu_to_be_32(alice.ip), rte_cpu_to_be_16(alice.port))},
            {1, 30101, bob6.ep(), bob6.ip});
    for (bool zero : {false, true}) {
        SCOPED_TRACE(zero ? "UDP checksum 0" : "UDP checksum set");
        const bytes pl = rtp(zero ? 2 : 1, 0x01020304, 171); // odd length
        udp4_spec in;
        in.src_ip = alice.ip;
        in.dst_ip = r->ip(0);
        in.src_port = alice.port;
        in.dst_port = 30100;
        in.payload = pl;
        if (zero)
            in.udp_cksum = 0;
        const auto out = run(build(in));
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, pl))));
        EXPECT_TRUE(udp6_cksum_ok(out[0]));
    }
}

TEST_F(RelayV6, V6ToV4ByteExact)
{
    learn6(alice6);
    r->learn(bob);
    install({1, 30100, alice6.ep(), alice6.ip},
            {0, 30101, dp::pack_ep(rte_cpu_to_be_32(bob.ip), rte_cpu_to_be_16(bob.port))});
    const bytes pl = rtp(9, 0x55667788, 200);
    udp6_spec in = v6(alice6.ip, alice6.port, relay6, 30100, pl);
    in.tc = 0x88;
    const auto out = run(build(in));
    ASSERT_EQ(out.size(), 1u);
    udp4_spec want;
    want.src_mac = r->mac(0);
    want.dst_mac = bob.mac;
    want.tos = 0x88;
    want.ip_id = 0;
    want.frag = RTE_IPV4_HDR_DF_FLAG;
    want.src_ip = r->ip(0);
    want.dst_ip = bob.ip;
    want.src_port = 30101;
    want.dst_port = bob.port;
    want.payload = pl;
    EXPECT_EQ(hex(out[0]), hex(build(want)));
    EXPECT_TRUE(ipv4_cksum_ok(out[0]));
    EXPECT_TRUE(udp4_cksum_ok(out[0]));
}

TEST_F(RelayV6, LatchesAndComparesTheWholeAddress)
{
    learn6(alice6);
    learn6(bob6);
    install({1, 30100}, {1, 30101, bob6.ep(), bob6.ip});
    const bytes pl = rtp(1, 1, 100);
    ASSERT_EQ(run(build(v6(alice6.ip, alice6.port, relay6, 30100, pl))).size(), 1u);
    EXPECT_EQ(sess_->legs[0].remote.load(), alice6.ep());
    EXPECT_TRUE(sess_->legs[0].remote6 == alice6.ip);
    // The same fold32 digest and port, another address: strict source.
    dp::ip6_addr twin = alice6.ip;
    std::swap_ranges(twin.b, twin.b + 4, twin.b + 4);
    ASSERT_FALSE(twin == alice6.ip);
    ASSERT_EQ(dp::pack_ep6(twin, 1), dp::pack_ep6(alice6.ip, 1));
    EXPECT_TRUE(run(build(v6(twin, alice6.port, relay6, 30100, pl))).empty());
    EXPECT_TRUE(run(build(v6(alice6.ip, 5001, relay6, 30100, pl))).empty());
    EXPECT_EQ(r->drops(drop::src_mismatch), 2u);
    EXPECT_EQ(run(build(v6(alice6.ip, alice6.port, relay6, 30100, pl))).size(), 1u);
    // Back the other way, to the latched remote.
    const auto back = run(build(v6(bob6.ip, bob6.port, relay6, 30101, pl)));
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(hex(back[0]), hex(build(out6(alice6, 30100, pl))));
}

TEST_F(RelayV6, UnknownNextHopIsHeldAndOffLinkWithoutGatewayDrops)
{
    const peer6 far{ip6("2001:3::5"), 7000, mac(0x33, 0x06)};
    learn6(alice6);
    install({1, 30100, alice6.ep(), alice6.ip}, {1, 30101, bob6.ep(), bob6.ip});
    const bytes pl = rtp(1, 1, 100);
    EXPECT_TRUE(run(build(v6(alice6.ip, alice6.port, relay6, 30100, pl))).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), 1u);
    rte_mbuf* held[4];
    ASSERT_EQ(r->dp->poll_exceptions(held, 4), 1u);
    EXPECT_EQ(held[0]->hash.usr, static_cast<uint32_t>(dp::exc_kind::hold));
    const bytes h = mbuf_bytes(held[0]);
    rte_pktmbuf_free(held[0]);
    udp6_spec want = out6(bob6, 30101, pl);
    want.dst_mac = r->mac(0); // placeholder until control resolves it
    EXPECT_EQ(hex(h), hex(build(want)));

    command(dp::cmd_op::del_session);
    install({1, 30100, alice6.ep(), alice6.ip}, {1, 30101, far.ep(), far.ip});
    EXPECT_TRUE(run(build(v6(alice6.ip, alice6.port, relay6, 30100, pl))).empty());
    EXPECT_EQ(r->drops(drop::no_route), 1u);
}

TEST_F(RelayV6, OffLinkGoesToTheGateway)
{
    r->dp->ifc(0).gateway6 = ip6("fe80::1");
    r->dp->ifc(0).has_gateway6 = true;
    const rte_ether_addr gw_mac = mac(0x99, 0x06);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update6(ip6("fe80::1"), gw_mac));
    const peer6 far{ip6("2001:3::5"), 7000, gw_mac};
    learn6(alice6);
    install({1, 30100, alice6.ep(), alice6.ip}, {1, 30101, far.ep(), far.ip});
    const bytes pl = rtp(1, 1, 100);
    const auto out = run(build(v6(alice6.ip, alice6.port, relay6, 30100, pl)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(far, 30101, pl))));
}

// SRTP over IPv6: the relay authenticates and decrypts with the receiving
// leg's keys and protects with the target's (both lengths change in an
// IPv6 header), checksum computed.
std::unique_ptr<crypto::srtp_context> srtp_ctx(uint8_t seed)
{
    crypto::key_material km;
    km.s = crypto::suite::aes_cm_128_hmac_sha1_80;
    for (unsigned i = 0; i < sizeof(km.key); i++)
        km.key[i] = static_cast<uint8_t>(seed + i);
    for (unsigned i = 0; i < sizeof(km.salt); i++)
        km.salt[i] = static_cast<uint8_t>(seed * 3 + i);
    std::string err;
    auto c = crypto::srtp_context::create(km, crypto::engine::libsrtp, err);
    EXPECT_TRUE(c) << err;
    return c;
}

TEST_F(RelayV6, SrtpOverV6)
{
    learn6(alice6);
    learn6(bob6);
    // Relay side: in = alice's keys (1), out = bob's keys (2); each peer
    // has its own context of the same keys.
    auto relay_in = srtp_ctx(1), relay_out = srtp_ctx(2);
    auto alice_tx = srtp_ctx(1), bob_rx = srtp_ctx(2);
    ASSERT_TRUE(relay_in && relay_out && alice_tx && bob_rx);
    sess_ = nullptr;
    install({1, 30100, alice6.ep(), alice6.ip}, {1, 30101, bob6.ep(), bob6.ip});
    // Contexts are swapped in with set_crypto, which also takes the legs
    // off the fast path (worker::refresh_hot).
    set_crypto(0, dp::crypto_set_in, relay_in.get(), nullptr);
    set_crypto(1, dp::crypto_set_out, nullptr, relay_out.get());
    const bytes plain = rtp(5, 0x0badcafe, 160);
    bytes wire = plain;
    wire.resize(plain.size() + crypto::max_trailer);
    size_t n = 0;
    ASSERT_EQ(alice_tx->protect_rtp(wire.data(), plain.size(), wire.size(), &n),
              crypto::status::ok);
    wire.resize(n);
    const auto out = run(build(v6(alice6.ip, alice6.port, relay6, 30100, wire)));
    set_crypto(0, dp::crypto_set_in, nullptr, nullptr);
    set_crypto(1, dp::crypto_set_out, nullptr, nullptr);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    ASSERT_GT(out[0].size(), 62u);
    bytes got(out[0].begin() + 62, out[0].end());
    EXPECT_EQ(got.size(), n) << "same suite: same trailer length";
    size_t pn = 0;
    ASSERT_EQ(bob_rx->unprotect_rtp(got.data(), got.size(), &pn), crypto::status::ok);
    got.resize(pn);
    EXPECT_EQ(got, plain);
    // Its headers are what a plain packet of that size gets.
    udp6_spec want = out6(bob6, 30101, bytes(n, 0));
    const bytes w = build(want);
    EXPECT_TRUE(std::equal(w.begin(), w.begin() + 58, out[0].begin())) << hex(out[0]);
}

// v4 -> v6 grows the packet by 20 bytes: checked against the MTU as sent.
TEST_F(RelayV6, MtuIsCheckedOnTheOutputSize)
{
    r->learn(alice);
    learn6(bob6);
    install({0, 30100, dp::pack_ep(rte_cpu_to_be_32(alice.ip), rte_cpu_to_be_16(alice.port))},
            {1, 30101, bob6.ep(), bob6.ip});
    udp4_spec in;
    in.src_ip = alice.ip;
    in.dst_ip = r->ip(0);
    in.src_port = alice.port;
    in.dst_port = 30100;
    in.payload = rtp(1, 1, 400);
    const uint32_t ip4_len = 20 + 8 + 400;
    r->dp->ifc(0).mtu = ip4_len + 19; // the IPv4 packet fits, its IPv6 form not
    EXPECT_TRUE(run(build(in)).empty());
    EXPECT_EQ(r->drops(drop::mtu_exceeded), 1u);
    r->dp->ifc(0).mtu = ip4_len + 20;
    EXPECT_EQ(run(build(in)).size(), 1u);
}

// Neighbor Discovery has its own policer ([exception] nd_pps).
TEST(RelayV6Policer, NeighborDiscoveryIsPoliced)
{
    relay_options o;
    o.tweak = [](dp::dp_config& c) {
        c.ifaces[0].addrs.push_back(slot6(relay6));
        c.nd_pps = 1; // a burst of 16 at most, then one a second
    };
    relay r(o);
    ASSERT_TRUE(r.ok()) << r.error();
    udp6_spec s;
    s.src = alice6.ip;
    s.dst = relay6.solicited_node();
    s.hop_limit = 255;
    s.proto = 58;
    s.l4 = bytes{135, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 100; i++)
        r.inject(build(s));
    while (r.poll_worker(0) != 0) {
    }
    const uint64_t policed = r.drops(drop::policed_nd);
    EXPECT_GE(policed, 50u);
    EXPECT_EQ(policed + r.sum(&dp::worker_stats::exception_pkts), 100u);
    rte_mbuf* m[128];
    const unsigned got = r.dp->poll_exceptions(m, 128);
    EXPECT_EQ(got, 100u - policed);
    for (unsigned i = 0; i < got; i++) {
        EXPECT_EQ(m[i]->hash.usr, static_cast<uint32_t>(dp::exc_kind::nd));
        rte_pktmbuf_free(m[i]);
    }
}

} // namespace
