// The exception path under floods, next-hop resolution at session create and
// the egress MTU check, through the real worker loop over net_ring ports:
// - ARP and held packets take their own ring to control, so a full ring of
//   ICMP/STUN/DTLS never costs them; each kind is policed in the worker
//   (policed_arp/icmp/stun/dtls) and ARP for other hosts cannot starve ARP
//   replies to us;
// - a configured remote's next hop is asked for when the session is created
//   and a 50-packet burst to it is held whole until the reply;
// - a packet that SRTP (or anything) grew past the port's MTU is dropped as
//   mtu_exceeded, not sent.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>

ISAR_TEST_EAL_ENV("test_exception_flood");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

enum class flood { icmp, stun, dtls };

const char* flood_name(flood f)
{
    return f == flood::icmp ? "icmp" : f == flood::stun ? "stun" : "dtls";
}

bytes arp_frame(uint16_t op, const peer& from, uint32_t tip, const rte_ether_addr& dst)
{
    arp_spec a;
    a.dst_mac = dst;
    a.src_mac = from.mac;
    a.op = op;
    a.sha = from.mac;
    a.sip = from.ip;
    a.tip = tip;
    return build(a);
}

bool is_arp_request_for(const bytes& f, uint32_t tip)
{
    if (f.size() < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 1)
        return false;
    const uint32_t t = static_cast<uint32_t>(f[38] << 24 | f[39] << 16 | f[40] << 8 | f[41]);
    return t == tip;
}

class FloodTest : public RelayTest {
protected:
    // Ring of 64 (63 usable): a flood fills it quickly.
    void start_with(std::function<void(dp::dp_config&)> tweak)
    {
        relay_options o;
        o.ring_size = 64;
        o.tweak = std::move(tweak);
        start(o);
    }

    // A frame of kind `f` from mallory: ICMP echo to the relay's address,
    // STUN or DTLS to leg port `port`.
    bytes flood_frame(flood f, uint16_t port, uint16_t seq) const
    {
        if (f == flood::icmp) {
            udp4_spec s;
            s.src_mac = mallory.mac;
            s.dst_mac = r->mac(0);
            s.src_ip = mallory.ip;
            s.dst_ip = r->ip(0);
            s.proto = 1;
            s.l4 = icmp_echo(8, 0x99, seq, bytes(56, 0x5a));
            return s.l4 ? build(s) : bytes{};
        }
        bytes p(60, 0x11);
        p[0] = f == flood::stun ? 0x00 : 22; // STUN type / DTLS handshake
        p[1] = 0x01;
        return r->from_peer(mallory, port, p);
    }

    // Steps the worker (only) until its RX ring is empty.
    void drain_worker()
    {
        for (unsigned i = 0; i < 10000 && r->ports[0]->rx_pending() > 0; i++)
            r->poll_worker(0);
        r->poll_worker(0);
    }

    unsigned ctlq() const { return r->opt.nworkers; }

    // Every packet received ended as a drop, a forward (held ones included)
    // or an exception.
    void expect_accounted(const char* where) const
    {
        const uint64_t rx = r->sum(&dp::worker_stats::rx_pkts);
        EXPECT_EQ(r->total_drops() + r->sum(&dp::worker_stats::fwd_pkts) +
                          r->sum(&dp::worker_stats::exception_pkts),
                  rx)
                << where;
    }
};

class FloodKinds : public FloodTest, public ::testing::WithParamInterface<flood> {};

} // namespace

// With the ICMP/STUN/DTLS ring full (unpoliced here), bob's ARP reply and a
// packet held for bob still reach control and the packet leaves with bob's MAC.
TEST_P(FloodKinds, FullExceptionRingDoesNotStarveArpOrHeldPackets)
{
    start_with(nullptr);
    r->learn(alice); // bob is unknown
    auto [pa, pb] = r->two_legs("call", alice, bob);
    (void)r->sent(0, ctlq()); // the ARP request for bob sent at create

    const unsigned n = 200;
    for (unsigned i = 0; i < n; i++)
        r->inject(flood_frame(GetParam(), pa, static_cast<uint16_t>(i)));
    drain_worker(); // control does not run: the ring stays full
    EXPECT_GT(r->drops(drop::exception_full), 0u) << "the flood filled its ring";

    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->inject(arp_frame(2, bob, r->ip(0), r->mac(0)));
    drain_worker();
    EXPECT_EQ(r->drops(drop::exception_full), n - 63) << "only the flood was dropped";
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), 1u);

    r->settle();
    EXPECT_EQ(r->nm->stats().arp_learned, 1u);
    EXPECT_EQ(r->nm->stats().held_sent, 1u);
    EXPECT_FALSE(r->nm->holding());
    bool found = false;
    for (const bytes& f : r->sent(0, ctlq()))
        found |= f == r->expected(bob, pb, p);
    EXPECT_TRUE(found) << "the held packet left with bob's MAC";
    expect_accounted(flood_name(GetParam()));
}

// Policed: the flood is cut to its rate in the worker (policed_*), never
// fills the ring, and ARP and held packets pass.
TEST_P(FloodKinds, FloodIsPolicedByKind)
{
    start_with([](dp::dp_config& c) {
        c.icmp_pps = 200;
        c.stun_pps = 200;
        c.dtls_pps = 200;
        c.arp_reply_pps = 1000;
    });
    r->learn(alice);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    (void)r->sent(0, ctlq());

    const unsigned n = 300;
    for (unsigned i = 0; i < n; i++)
        r->inject(flood_frame(GetParam(), pa, static_cast<uint16_t>(i)));
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->inject(arp_frame(2, bob, r->ip(0), r->mac(0)));
    drain_worker();

    const drop d = GetParam() == flood::icmp   ? drop::policed_icmp
                   : GetParam() == flood::stun ? drop::policed_stun
                                               : drop::policed_dtls;
    // A burst of max(16, 200/10) = 20 passes; the rest is policed.
    EXPECT_GE(r->drops(d), n - 25) << flood_name(GetParam());
    EXPECT_LE(r->drops(d), n - 15);
    EXPECT_EQ(r->drops(drop::exception_full), 0u);
    r->settle();
    EXPECT_EQ(r->nm->stats().held_sent, 1u);
    EXPECT_EQ(r->nm->stats().arp_learned, 1u);
    expect_accounted(flood_name(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Kinds, FloodKinds,
                         ::testing::Values(flood::icmp, flood::stun, flood::dtls),
                         [](const auto& p) { return std::string(flood_name(p.param)); });

// A flood of ARP requests for other hosts is policed hard (arp_other_pps);
// bob's reply to us has its own rate and resolves the held packet.
TEST_F(FloodTest, ArpFloodForOthersDoesNotStarveArpReplies)
{
    start_with([](dp::dp_config& c) {
        c.arp_other_pps = 100;
        c.arp_request_pps = 100;
        c.arp_reply_pps = 10000;
    });
    r->learn(alice);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    (void)r->sent(0, ctlq());

    const unsigned n = 500;
    const rte_ether_addr bcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    for (unsigned i = 0; i < n; i++) // who-has 198.18.0.(100+i%100)?
        r->inject(arp_frame(1, mallory, 0xc6120064 + (i % 100), bcast));
    // ... and for our own address, also over its rate.
    for (unsigned i = 0; i < 100; i++)
        r->inject(arp_frame(1, mallory, r->ip(0), bcast));
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->inject(arp_frame(2, bob, r->ip(0), r->mac(0)));
    drain_worker();

    EXPECT_GE(r->drops(drop::policed_arp), n + 100 - 2 * 17);
    EXPECT_EQ(r->drops(drop::exception_full), 0u);
    r->settle();
    EXPECT_EQ(r->nm->stats().held_sent, 1u);
    EXPECT_TRUE(r->dp->ifc(0).neigh->contains(rte_cpu_to_be_32(bob.ip)));
    bool found = false;
    for (const bytes& f : r->sent(0, ctlq()))
        found |= f == r->expected(bob, pb, p);
    EXPECT_TRUE(found);
    expect_accounted("arp flood");
}

// The next hop of a configured remote is asked for at create, before any
// packet; a 50-packet burst to it is held whole and sent once it answers.
TEST_F(FloodTest, NextHopResolvedAtCreateAndBurstOf50Held)
{
    relay_options o; // default rings and hold sizes
    start(o);
    r->learn(alice);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    auto ctl = r->sent(0, ctlq());
    ASSERT_EQ(ctl.size(), 1u) << "an ARP request for bob at create";
    EXPECT_TRUE(is_arp_request_for(ctl[0], bob.ip));

    std::vector<bytes> burst;
    for (unsigned i = 0; i < 50; i++) {
        burst.push_back(rtp(static_cast<uint16_t>(i), 7));
        r->inject(r->from_peer(alice, pa, burst.back()));
    }
    r->settle();
    EXPECT_EQ(r->nm->stats().held, 50u);
    EXPECT_EQ(r->nm->stats().held_dropped, 0u);
    EXPECT_EQ(r->nm->fill().held, 50u);
    EXPECT_EQ(r->nm->fill().max_per_hop, 50u);
    EXPECT_TRUE(r->sent(0, ctlq()).empty()) << "no second ARP request for the burst";

    r->inject(arp_frame(2, bob, r->ip(0), r->mac(0)));
    r->settle();
    ctl = r->sent(0, ctlq());
    ASSERT_EQ(ctl.size(), 50u);
    for (unsigned i = 0; i < 50; i++)
        EXPECT_EQ(ctl[i], r->expected(bob, pb, burst[i])) << i;
    EXPECT_EQ(r->nm->fill().held, 0u);

    // leg.update to a new remote asks for it too.
    json rep = r->call({{"cmd", "leg.update"},
                        {"session", "call"},
                        {"leg", "b"},
                        {"remote", carol.ep()}});
    EXPECT_FALSE(rep.contains("error")) << rep.dump();
    ctl = r->sent(0, ctlq());
    ASSERT_EQ(ctl.size(), 1u);
    EXPECT_TRUE(is_arp_request_for(ctl[0], carol.ip));
}

// Egress MTU: what fits is sent, what does not (plain or grown by SRTP) is
// dropped and counted for the worker and the target leg.
TEST_F(FloodTest, PacketsOverTheMtuAreDropped)
{
    start_with(nullptr);
    r->dp->ifc(0).mtu = 200;
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("call", alice, bob);

    const bytes fits = rtp(1, 1, 172); // IP 200
    const bytes big = rtp(2, 1, 173);  // IP 201
    r->inject(r->from_peer(alice, pa, fits));
    r->inject(r->from_peer(alice, pa, big));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, fits));
    EXPECT_EQ(r->drops(drop::mtu_exceeded), 1u);
    const auto* s = r->sm->find("call");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(dp::read(s->ds->legs[1].stats.drops[static_cast<unsigned>(drop::mtu_exceeded)]), 1u);

    // SRTP towards carol adds a 10-byte tag: 198 bytes in, 208 out.
    r->learn(carol);
    json rep = r->call(
            {{"cmd", "session.create"},
             {"session", "srtp"},
             {"legs",
              {{{"name", "a"}, {"remote", alice.ep()}},
               {{"name", "c"},
                {"remote", carol.ep()},
                {"out", "AES_CM_128_HMAC_SHA1_80:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e"}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t sa = relay::local_port(rep, "a");
    r->inject(r->from_peer(alice, sa, rtp(1, 9, 170)));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty()) << "208-byte SRTP packet sent on a 200 MTU";
    EXPECT_EQ(r->drops(drop::mtu_exceeded), 2u);
    r->inject(r->from_peer(alice, sa, rtp(2, 9, 160))); // 198 after protection
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u);
    expect_accounted("mtu");
}
