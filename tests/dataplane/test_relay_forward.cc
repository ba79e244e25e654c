// The real worker loop over net_ring ports: forwarding byte for byte, latching,
// strict source, fan-out, delete, leg.update, two interfaces and gateways.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <cerrno>
#include <gtest/gtest.h>
#include <rte_byteorder.h>

ISAR_TEST_EAL_ENV("test_relay_forward");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

json get(relay& r, const std::string& id)
{
    return r.call({{"cmd", "session.get"}, {"session", id}});
}

} // namespace

class Forward : public RelayTest, public ::testing::WithParamInterface<unsigned> {
protected:
    void SetUp() override
    {
        relay_options o;
        o.nworkers = GetParam();
        start(o);
        r->learn(alice);
        r->learn(bob);
        r->learn(carol);
    }
};

TEST_P(Forward, BothDirectionsByteExact)
{
    auto [pa, pb] = r->two_legs("call", alice, bob);
    ASSERT_NE(pa, 0);
    ASSERT_NE(pa, pb);

    const bytes p1 = rtp(1, 0xa1a1a1a1, 172);
    r->inject(r->from_peer(alice, pa, p1));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    // Source: the relay address and port of the TARGET leg (b); destination: bob.
    EXPECT_FRAME(out[0], r->expected(bob, pb, p1));

    const bytes p2 = rtp(9, 0xb2b2b2b2, 33);
    r->inject(r->from_peer(bob, pb, p2));
    r->settle();
    out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(alice, pa, p2));

    // Nothing on the control queue, and the counters agree.
    EXPECT_TRUE(r->sent(0, r->dp->nworkers()).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::fwd_pkts), 2u);
    EXPECT_EQ(r->sum(&dp::worker_stats::tx_pkts), 2u);
    EXPECT_EQ(r->total_drops(), 0u);
    json s = get(*r, "call");
    EXPECT_EQ(leg_of(s, "a")["in"]["packets"], 1);
    EXPECT_EQ(leg_of(s, "a")["out"]["packets"], 1);
    EXPECT_EQ(leg_of(s, "b")["in"]["packets"], 1);
    EXPECT_EQ(leg_of(s, "b")["out"]["packets"], 1);
    EXPECT_EQ(leg_of(s, "a")["in"]["bytes"], 14 + 20 + 8 + 172);
    r->expect_accounted("forward");
}

TEST_P(Forward, LatchesOnFirstPacket)
{
    auto [pa, pb] = r->two_legs("call", alice, std::nullopt);
    // b has no remote yet: alice's packet has nowhere to go.
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::target_no_remote), 1u);
    EXPECT_TRUE(leg_of(get(*r, "call"), "b")["remote"].is_null());

    // bob speaks first on b: b latches to him and his packet reaches alice.
    r->inject(r->from_peer(bob, pb, rtp(2, 2)));
    r->settle();
    ASSERT_EQ(r->sent_by_workers(0).size(), 1u);
    json b = leg_of(get(*r, "call"), "b");
    EXPECT_EQ(b["remote"], bob.ep());
    EXPECT_EQ(b["latched"], true);
    EXPECT_EQ(leg_of(get(*r, "call"), "a")["latched"], false) << "a was configured";

    // Now alice reaches bob.
    const bytes p = rtp(3, 3);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(bob, pb, p));
    r->expect_accounted("latch");
}

TEST_P(Forward, StrictSourceDropsOthers)
{
    auto [pa, pb] = r->two_legs("call", alice, std::nullopt);
    r->inject(r->from_peer(bob, pb, rtp(1, 1))); // latch b to bob
    r->settle();
    r->sent_by_workers(0);

    // mallory (another address), and bob from another port, are both refused.
    peer bob2 = bob;
    bob2.port = 6001;
    r->inject(r->from_peer(mallory, pb, rtp(2, 2)));
    r->inject(r->from_peer(bob2, pb, rtp(3, 3)));
    // A configured remote is just as strict.
    peer alice2 = alice;
    alice2.ip = 0xc612000b;
    r->inject(r->from_peer(alice2, pa, rtp(4, 4)));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::src_mismatch), 3u);
    json s = get(*r, "call");
    EXPECT_EQ(leg_of(s, "b")["remote"], bob.ep()) << "the latch did not move";
    EXPECT_EQ(leg_of(s, "b")["drops"]["src_mismatch"], 2);
    EXPECT_EQ(leg_of(s, "a")["drops"]["src_mismatch"], 1);
    EXPECT_EQ(leg_of(s, "b")["in"]["packets"], 1) << "dropped packets are not counted in";
    // bob still gets through.
    r->inject(r->from_peer(bob, pb, rtp(5, 5)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u);
    r->expect_accounted("strict");
}

TEST_P(Forward, FanOutCopiesPerTarget)
{
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "conf"},
                        {"legs",
                         {{{"name", "a"}, {"remote", alice.ep()}},
                          {{"name", "b"}, {"remote", bob.ep()}},
                          {{"name", "c"}, {"remote", carol.ep()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a"), pb = relay::local_port(rep, "b"),
                   pc = relay::local_port(rep, "c");
    const bytes p = rtp(1, 0xfeedface, 200);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 2u);
    // Order of targets: b then c.
    EXPECT_FRAME(out[0], r->expected(bob, pb, p));
    EXPECT_FRAME(out[1], r->expected(carol, pc, p));
    EXPECT_EQ(r->sum(&dp::worker_stats::fwd_pkts), 2u);

    // carol's packet goes to alice and bob.
    r->inject(r->from_peer(carol, pc, p));
    r->settle();
    out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FRAME(out[0], r->expected(alice, pa, p));
    EXPECT_FRAME(out[1], r->expected(bob, pb, p));
}

TEST_P(Forward, ExplicitTargetsOnly)
{
    // a -> b only; b -> nobody (empty list); c -> a and b.
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "one-way"},
                        {"legs",
                         {{{"name", "a"}, {"remote", alice.ep()}, {"targets", {"b"}}},
                          {{"name", "b"}, {"remote", bob.ep()}, {"targets", json::array()}},
                          {{"name", "c"}, {"remote", carol.ep()}, {"targets", {"a", "b", "a"}}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a"), pb = relay::local_port(rep, "b"),
                   pc = relay::local_port(rep, "c");
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(bob, pb, p));

    r->inject(r->from_peer(bob, pb, p));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::no_target), 1u);

    r->inject(r->from_peer(carol, pc, p));
    r->settle();
    out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 2u) << "duplicate target names count once";
    EXPECT_FRAME(out[0], r->expected(alice, pa, p));
    EXPECT_FRAME(out[1], r->expected(bob, pb, p));
    json s = get(*r, "one-way");
    EXPECT_EQ(leg_of(s, "c")["targets"], json({"a", "b"}));
    EXPECT_EQ(leg_of(s, "b")["targets"], json::array());
}

TEST_P(Forward, DeleteStopsForwarding)
{
    auto [pa, pb] = r->two_legs("call", alice, bob);
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    ASSERT_EQ(r->sent_by_workers(0).size(), 1u);

    json d = r->call({{"cmd", "session.delete"}, {"session", "call"}, {"id", 7}});
    EXPECT_EQ(d, json({{"session", "call"}, {"deleted", true}, {"id", 7}}));
    EXPECT_EQ(r->sm->find("call"), nullptr);
    EXPECT_FALSE(r->sm->pool(0).in_use(pa));
    EXPECT_FALSE(r->sm->pool(0).in_use(pb));

    r->inject(r->from_peer(alice, pa, rtp(2, 2)));
    r->inject(r->from_peer(bob, pb, rtp(3, 3)));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::no_flow), 2u);
    json g = get(*r, "call");
    EXPECT_EQ(g["error"]["code"], "not_found");
    r->expect_accounted("delete");
}

TEST_P(Forward, LegUpdateSetsAndClearsRemote)
{
    auto [pa, pb] = r->two_legs("call", alice, bob);
    // Point b at carol instead.
    json u = r->call(
            {{"cmd", "leg.update"}, {"session", "call"}, {"leg", "b"}, {"remote", carol.ep()}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_EQ(leg_of(u, "b")["remote"], carol.ep());
    EXPECT_EQ(leg_of(u, "b")["latched"], false);
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(carol, pb, p));
    // bob is now a stranger on b.
    r->inject(r->from_peer(bob, pb, p));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::src_mismatch), 1u);

    // Clear it: b forwards nowhere until someone latches, then mallory may.
    u = r->call({{"cmd", "leg.update"}, {"session", "call"}, {"leg", "b"}, {"remote", nullptr}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_TRUE(leg_of(u, "b")["remote"].is_null());
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::target_no_remote), 1u);
    r->inject(r->from_peer(mallory, pb, p));
    r->settle();
    out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(alice, pa, p));
    EXPECT_EQ(leg_of(get(*r, "call"), "b")["remote"], mallory.ep());
    EXPECT_EQ(leg_of(get(*r, "call"), "b")["latched"], true);
    r->expect_accounted("update");
}

TEST_P(Forward, PayloadSizesAndOddLengths)
{
    auto [pa, pb] = r->two_legs("call", alice, bob);
    for (size_t n : {8u, 9u, 12u, 13u, 160u, 161u, 1000u, 1472u}) {
        const bytes p = rtp(static_cast<uint16_t>(n), 5, n);
        r->inject(r->from_peer(alice, pa, p));
        r->settle();
        auto out = r->sent_by_workers(0);
        ASSERT_EQ(out.size(), 1u) << n;
        EXPECT_FRAME(out[0], r->expected(bob, pb, p));
        auto v = parse_udp4(out[0]);
        ASSERT_TRUE(v);
        EXPECT_TRUE(v->ip_cksum_ok && v->udp_cksum_ok) << n;
    }
}

TEST_P(Forward, EthernetPaddingNotForwarded)
{
    auto [pa, pb] = r->two_legs("call", alice, bob);
    const bytes p = rtp(1, 1, 12); // 54-byte frame
    bytes in = r->from_peer(alice, pa, p);
    in.resize(60, 0); // padded to the Ethernet minimum
    r->inject(in);
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(bob, pb, p));
}

INSTANTIATE_TEST_SUITE_P(Workers, Forward, ::testing::Values(1u, 2u),
                         [](const auto& i) { return std::to_string(i.param) + "w"; });

// ---- non-strict mode ---------------------------------------------------------

TEST_F(RelayTest, NonStrictSourceRelatches)
{
    relay_options o;
    o.strict_source = false;
    start(o);
    r->learn(alice);
    r->learn(bob);
    r->learn(mallory);
    auto [pa, pb] = r->two_legs("call", alice, std::nullopt);
    r->inject(r->from_peer(bob, pb, rtp(1, 1)));
    r->inject(r->from_peer(mallory, pb, rtp(2, 2)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 2u);
    EXPECT_EQ(r->drops(drop::src_mismatch), 0u);
    // b now follows mallory.
    const bytes p = rtp(3, 3);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(mallory, pb, p));
}

// ---- two interfaces, routing ------------------------------------------------

TEST_F(RelayTest, AcrossInterfacesViaGateway)
{
    relay_options o;
    o.nifaces = 2; // iface 1: 198.18.1.1/24, gateway 198.18.1.254
    start(o);
    r->learn(alice);
    const peer far{0xcb007109, 9000, isar::test::mac(0xcb, 9)}; // 203.0.113.9, off-link
    const rte_ether_addr gw_mac = isar::test::mac(0xfe, 0xfe);
    ASSERT_TRUE(r->dp->ifc(1).neigh->update(rte_cpu_to_be_32(0xc61201fe), gw_mac));

    json rep = r->call({{"cmd", "session.create"},
                        {"session", "x"},
                        {"legs",
                         {{{"name", "in"}, {"remote", alice.ep()}},
                          {{"name", "out"}, {"remote", far.ep()}, {"interface", 1u}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pin = relay::local_port(rep, "in"), pout = relay::local_port(rep, "out");
    EXPECT_EQ(leg_of(rep, "out")["local"], "198.18.1.1:" + std::to_string(pout));

    const bytes p = rtp(1, 1, 100);
    r->inject(r->from_peer(alice, pin, p, 0), 0);
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty()) << "nothing leaves on the receiving interface";
    auto out = r->sent_by_workers(1);
    ASSERT_EQ(out.size(), 1u);
    // Source: iface 1's address and MAC; L2 destination: the gateway.
    EXPECT_FRAME(out[0], r->expected(far, pout, p, 1, gw_mac));

    // And back: far's packet arrives on iface 1, leaves on iface 0 to alice.
    r->inject(r->from_peer(far, pout, p, 1), 1);
    r->settle();
    out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], r->expected(alice, pin, p, 0));
    // Ports are per interface: a port in use on iface 1 only is no flow on iface 0.
    json rep2 = r->call({{"cmd", "session.create"},
                         {"session", "y"},
                         {"legs",
                          {{{"name", "c"}, {"remote", far.ep()}, {"interface", 1u}},
                           {{"name", "d"}, {"interface", 1u}}}}});
    ASSERT_FALSE(rep2.contains("error")) << rep2.dump();
    // Ports are drawn at random: c's or d's, whichever is not in use on iface 0.
    const uint16_t pc = relay::local_port(rep2, "c") != pin ? relay::local_port(rep2, "c")
                                                            : relay::local_port(rep2, "d");
    ASSERT_NE(pc, pin);
    r->inject(r->from_peer(far, pc, p, 0), 0);
    r->settle();
    EXPECT_EQ(r->drops(drop::no_flow), 1u);
    EXPECT_EQ(r->pending_tx(), 0u);
    r->expect_accounted("two interfaces");
}

TEST_F(RelayTest, OffLinkWithoutGatewayIsNoRoute)
{
    start();
    r->learn(alice);
    const peer far{0xcb007109, 9000, isar::test::mac(0xcb, 9)};
    auto [pa, pb] = r->two_legs("call", alice, far);
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_EQ(r->drops(drop::no_route), 1u);
    EXPECT_EQ(leg_of(get(*r, "call"), "b")["drops"]["no_route"], 1);
    (void)pb;
}

// ---- dataplane set-up errors say what to fix ---------------------------------

TEST(DataplaneInit, TooFewTxQueuesExplained)
{
    ring_port p("init_txq", 1); // one TX queue; one worker needs 2 (worker + control)
    ASSERT_TRUE(p.ok());
    dp::dp_config c;
    c.mbufs = 1023;
    c.max_legs = 64;
    c.ifaces.push_back({p.id(), {{4, rte_cpu_to_be_32(0xc6120001), {}, 24}}, 0});
    dp::dataplane d;
    std::string err;
    EXPECT_EQ(d.init(c, 1, err), -EINVAL);
    EXPECT_NE(err.find("TX queue"), std::string::npos) << err;
    EXPECT_NE(err.find("= 2"), std::string::npos) << err;
}

TEST(DataplaneInit, MissingPortAndNoInterfaces)
{
    dp::dp_config c;
    c.mbufs = 1023;
    c.max_legs = 64;
    std::string err;
    {
        dp::dataplane d;
        EXPECT_EQ(d.init(c, 1, err), -EINVAL);
        EXPECT_NE(err.find("interfaces"), std::string::npos) << err;
    }
    c.ifaces.push_back({31, {{4, rte_cpu_to_be_32(0xc6120001), {}, 24}}, 0});
    {
        dp::dataplane d;
        EXPECT_EQ(d.init(c, 1, err), -ENODEV);
        EXPECT_NE(err.find("--vdev"), std::string::npos) << err;
    }
    {
        dp::dataplane d;
        EXPECT_EQ(d.init(c, dp::max_workers + 1, err), -EINVAL);
        EXPECT_NE(err.find("max_workers"), std::string::npos) << err;
    }
}
