// The exception path through the real loop: ARP resolution of an unknown next
// hop (packet held by control, request on the control TX queue, reply, release
// with the right MAC), ARP replies, ICMP echo, STUN/DTLS, hold limits.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>

ISAR_TEST_EAL_ENV("test_relay_exceptions");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

struct arp_view {
    uint16_t op;
    rte_ether_addr eth_dst, eth_src, sha, tha;
    uint32_t sip, tip; // host order
};

std::optional<arp_view> parse_arp(const bytes& f)
{
    if (f.size() < 42 || f[12] != 0x08 || f[13] != 0x06)
        return std::nullopt;
    arp_view a;
    memcpy(a.eth_dst.addr_bytes, &f[0], 6);
    memcpy(a.eth_src.addr_bytes, &f[6], 6);
    a.op = static_cast<uint16_t>(f[20] << 8 | f[21]);
    memcpy(a.sha.addr_bytes, &f[22], 6);
    a.sip = static_cast<uint32_t>(f[28] << 24 | f[29] << 16 | f[30] << 8 | f[31]);
    memcpy(a.tha.addr_bytes, &f[32], 6);
    a.tip = static_cast<uint32_t>(f[38] << 24 | f[39] << 16 | f[40] << 8 | f[41]);
    if (f[14] != 0 || f[15] != 1 || f[16] != 8 || f[17] != 0 || f[18] != 6 || f[19] != 4)
        return std::nullopt;
    return a;
}

const rte_ether_addr bcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

class Exceptions : public RelayTest, public ::testing::WithParamInterface<unsigned> {
protected:
    void SetUp() override
    {
        relay_options o;
        o.nworkers = GetParam();
        start(o);
        ctlq = o.nworkers; // the control lcore's TX queue
    }
    unsigned ctlq = 0;
};

} // namespace

TEST_P(Exceptions, UnresolvedNextHopIsHeldUntilArpReply)
{
    r->learn(alice); // bob is unknown
    auto [pa, pb] = r->two_legs("call", alice, bob);
    const bytes p1 = rtp(1, 1, 100), p2 = rtp(2, 2, 50);
    r->inject(r->from_peer(alice, pa, p1));
    r->inject(r->from_peer(alice, pa, p2));
    r->settle();

    // Nothing went out on a worker queue; control asked for bob's MAC once.
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), 2u);
    EXPECT_TRUE(r->nm->holding());
    EXPECT_EQ(r->nm->stats().held, 2u);
    auto ctl = r->sent(0, ctlq);
    ASSERT_EQ(ctl.size(), 1u) << "one ARP request per next hop, not per packet";
    auto req = parse_arp(ctl[0]);
    ASSERT_TRUE(req);
    EXPECT_EQ(req->op, 1);
    EXPECT_TRUE(mac_eq(req->eth_dst, bcast));
    EXPECT_TRUE(mac_eq(req->eth_src, r->mac(0)));
    EXPECT_TRUE(mac_eq(req->sha, r->mac(0)));
    EXPECT_EQ(req->sip, r->ip(0));
    EXPECT_EQ(req->tip, bob.ip);

    // bob answers.
    arp_spec rep;
    rep.dst_mac = r->mac(0);
    rep.src_mac = bob.mac;
    rep.op = 2;
    rep.sha = bob.mac;
    rep.sip = bob.ip;
    rep.tha = r->mac(0);
    rep.tip = r->ip(0);
    r->inject(build(rep));
    r->settle();
    EXPECT_FALSE(r->nm->holding());
    EXPECT_EQ(r->nm->stats().arp_learned, 1u);
    EXPECT_EQ(r->nm->stats().held_sent, 2u);
    ctl = r->sent(0, ctlq);
    ASSERT_EQ(ctl.size(), 2u);
    EXPECT_EQ(ctl[0], r->expected(bob, pb, p1)) << "held packet leaves with bob's MAC, in order";
    EXPECT_EQ(ctl[1], r->expected(bob, pb, p2));

    // From now on the worker sends directly.
    const bytes p3 = rtp(3, 3);
    r->inject(r->from_peer(alice, pa, p3));
    r->settle();
    EXPECT_TRUE(r->sent(0, ctlq).empty());
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, p3));
}

TEST_P(Exceptions, HeldPacketsPerHopAreBounded)
{
    r->learn(alice);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    const unsigned n = ctl::neighbor_manager::max_held_per_hop + 5;
    for (unsigned i = 0; i < n; i++)
        r->inject(r->from_peer(alice, pa, rtp(static_cast<uint16_t>(i), 1)));
    r->settle();
    EXPECT_EQ(r->nm->stats().held, ctl::neighbor_manager::max_held_per_hop);
    EXPECT_EQ(r->nm->stats().held_dropped, 5u);
    EXPECT_EQ(r->sent(0, ctlq).size(), 1u) << "one ARP request";
    // The in-use count is exactly what control holds.
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline + ctl::neighbor_manager::max_held_per_hop);
    (void)pb;
}

TEST_P(Exceptions, HeldPacketsFreedWhenArpGivesUp)
{
    r->learn(alice);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    ASSERT_TRUE(r->nm->holding());
    r->sent(0, ctlq);
    uint64_t now = rte_rdtsc();
    const uint64_t sec = rte_get_tsc_hz();
    // Retries one second apart, then gives up after max_tries.
    for (unsigned i = 1; i <= ctl::neighbor_manager::max_tries; i++) {
        now += sec + 1;
        r->nm->tick(now);
    }
    EXPECT_FALSE(r->nm->holding());
    EXPECT_EQ(r->nm->stats().held_dropped, 1u);
    EXPECT_EQ(r->sent(0, ctlq).size(), ctl::neighbor_manager::max_tries - 1) << "retries";
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline);
    (void)pb;
}

TEST_P(Exceptions, AnswersArpForItsAddress)
{
    arp_spec q;
    q.src_mac = alice.mac;
    q.sha = alice.mac;
    q.sip = alice.ip;
    q.tip = r->ip(0);
    r->inject(build(q));
    // And one for someone else: no answer.
    q.tip = 0xc6120063;
    r->inject(build(q));
    r->settle();
    auto ctl = r->sent(0, ctlq);
    ASSERT_EQ(ctl.size(), 1u);
    auto a = parse_arp(ctl[0]);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->op, 2);
    EXPECT_TRUE(mac_eq(a->eth_dst, alice.mac));
    EXPECT_TRUE(mac_eq(a->eth_src, r->mac(0)));
    EXPECT_TRUE(mac_eq(a->sha, r->mac(0)));
    EXPECT_EQ(a->sip, r->ip(0));
    EXPECT_TRUE(mac_eq(a->tha, alice.mac));
    EXPECT_EQ(a->tip, alice.ip);
    // The asker was learned (RFC 826: it is talking to us).
    rte_ether_addr m{};
    EXPECT_TRUE(r->dp->ifc(0).neigh->lookup(rte_cpu_to_be_32(alice.ip), &m));
    EXPECT_TRUE(mac_eq(m, alice.mac));
    EXPECT_EQ(r->nm->stats().arp_in, 2u);
    EXPECT_EQ(r->nm->stats().arp_replies, 1u);
    EXPECT_EQ(r->sum(&dp::worker_stats::exception_pkts), 2u);
    EXPECT_TRUE(r->sent_by_workers(0).empty());
}

TEST_P(Exceptions, BadArpIsCountedAndFreed)
{
    arp_spec q;
    q.sip = alice.ip;
    q.tip = r->ip(0);
    q.truncate = 30;
    r->inject(build(q));
    arp_spec mc = q;
    mc.truncate.reset();
    mc.sha = rte_ether_addr{{0x01, 0, 0x5e, 0, 0, 1}}; // multicast sender
    r->inject(build(mc));
    r->settle();
    EXPECT_EQ(r->nm->stats().arp_bad, 2u);
    EXPECT_TRUE(r->sent(0, ctlq).empty());
}

TEST_P(Exceptions, AnswersIcmpEcho)
{
    r->learn(alice);
    const bytes data(56, 0x5a);
    udp4_spec s;
    s.src_mac = alice.mac;
    s.dst_mac = r->mac(0);
    s.src_ip = alice.ip;
    s.dst_ip = r->ip(0);
    s.proto = 1;
    s.l4 = icmp_echo(8, 0x77, 3, data);
    s.eth_pad = 4; // trailer must not be echoed
    r->inject(build(s));
    r->settle();
    auto ctl = r->sent(0, ctlq);
    ASSERT_EQ(ctl.size(), 1u);
    udp4_spec e = s;
    e.src_mac = r->mac(0);
    e.dst_mac = alice.mac;
    e.src_ip = r->ip(0);
    e.dst_ip = alice.ip;
    e.l4 = icmp_echo(0, 0x77, 3, data);
    e.eth_pad = 0;
    EXPECT_EQ(ctl[0], build(e));
    EXPECT_EQ(r->nm->stats().icmp_echo_replies, 1u);
}

TEST_P(Exceptions, StunAndDtlsGoToControl)
{
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    r->inject(r->from_peer(alice, pa, rtp(1, 1, 20, 0x00))); // STUN binding request
    r->inject(r->from_peer(alice, pa, rtp(1, 1, 20, 0x01)));
    r->inject(r->from_peer(alice, pa, rtp(1, 1, 20, 22))); // DTLS handshake
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->nm->stats().stun, 2u);
    EXPECT_EQ(r->nm->stats().dtls, 1u);
    EXPECT_EQ(r->sum(&dp::worker_stats::exception_pkts), 3u);
    (void)pb;
}

TEST_P(Exceptions, IcmpOtherThanEchoIsCountedAndFreed)
{
    udp4_spec s;
    s.src_mac = alice.mac;
    s.dst_mac = r->mac(0);
    s.src_ip = alice.ip;
    s.dst_ip = r->ip(0);
    s.proto = 1;
    s.l4 = icmp_echo(3, 0, 0, bytes(28, 0)); // unreachable
    r->inject(build(s));
    bytes bad = icmp_echo(8, 1, 1, bytes(8, 1));
    bad[2] ^= 1; // echo request with a wrong checksum
    s.l4 = bad;
    r->inject(build(s));
    s.l4 = bytes(4, 8); // shorter than an ICMP header
    r->inject(build(s));
    r->settle();
    EXPECT_EQ(r->nm->stats().icmp_in, 3u);
    EXPECT_EQ(r->nm->stats().icmp_other, 3u);
    EXPECT_TRUE(r->sent(0, ctlq).empty());
}

TEST_P(Exceptions, AnnounceSendsGratuitousArp)
{
    r->nm->announce();
    auto ctl = r->sent(0, ctlq);
    ASSERT_EQ(ctl.size(), 1u);
    auto a = parse_arp(ctl[0]);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->sip, r->ip(0));
    EXPECT_EQ(a->tip, r->ip(0));
    EXPECT_TRUE(mac_eq(a->eth_dst, bcast));
    EXPECT_TRUE(mac_eq(a->sha, r->mac(0)));
}

INSTANTIATE_TEST_SUITE_P(Workers, Exceptions, ::testing::Values(1u, 2u),
                         [](const auto& i) { return std::to_string(i.param) + "w"; });

// The gateway of the OUTGOING interface is resolved on that interface: the
// request, the reply and the released packet all live on iface 1.
TEST_F(RelayTest, GatewayResolvedOnTheOutgoingInterface)
{
    relay_options o;
    o.nifaces = 2; // iface 1: 198.18.1.1/24, gateway 198.18.1.254
    start(o);
    r->learn(alice);
    const peer far{0xcb007109, 9000, isar::test::mac(0xcb, 9)}; // 203.0.113.9
    const rte_ether_addr gw_mac = isar::test::mac(0xfe, 0xfe);
    const uint32_t gw = 0xc61201fe;
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "x"},
                        {"legs",
                         {{{"name", "in"}, {"remote", alice.ep()}},
                          {{"name", "out"}, {"remote", far.ep()}, {"interface", 1u}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pin = relay::local_port(rep, "in"), pout = relay::local_port(rep, "out");
    const bytes p = rtp(1, 1, 64);
    r->inject(r->from_peer(alice, pin, p, 0), 0);
    r->settle();
    const unsigned ctlq = 1;
    EXPECT_EQ(r->pending_tx(), 1u);
    auto req = r->sent(1, ctlq);
    ASSERT_EQ(req.size(), 1u);
    auto a = parse_arp(req[0]);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->tip, gw) << "asks for the gateway, not the off-link remote";
    EXPECT_EQ(a->sip, r->ip(1));
    EXPECT_TRUE(mac_eq(a->sha, r->mac(1)));

    arp_spec ans;
    ans.dst_mac = r->mac(1);
    ans.src_mac = gw_mac;
    ans.op = 2;
    ans.sha = gw_mac;
    ans.sip = gw;
    ans.tha = r->mac(1);
    ans.tip = r->ip(1);
    // The same answer arriving on the wrong interface teaches nothing.
    bytes wrong = build(ans);
    r->inject(wrong, 0);
    r->settle();
    EXPECT_TRUE(r->nm->holding());
    r->inject(build(ans), 1);
    r->settle();
    EXPECT_FALSE(r->nm->holding());
    auto out = r->sent(1, ctlq);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(far, pout, p, 1, gw_mac));
    EXPECT_EQ(r->pending_tx(), 0u);
}
