// The fast path forwards a plain packet of a two-leg call from the receiving
// leg's line 0 alone: a copy of the target's remote and relay port, and the
// next hop's MAC cached with the neighbour table's generation (leg.h,
// worker::forward_fast). These tests change what the copies stand for - the
// target's remote (leg.update, latching) and the neighbour's MAC (moved,
// removed) - and check that the very next packet follows: each fails when the
// copy is not brought up to date.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>

#include <algorithm>

ISAR_TEST_EAL_ENV("test_hot_copies");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

// One packet from `from` into relay port `port`, one worker round: what the
// worker sent (not what control sent later).
std::vector<bytes> one(relay& r, const peer& from, uint16_t port, uint16_t seq)
{
    r.inject(r.from_peer(from, port, rtp(seq, 1)));
    r.poll_worker(0);
    return r.sent_by_workers(0);
}

} // namespace

TEST_F(RelayTest, HotCopyFollowsLegUpdate)
{
    start();
    for (const peer& p : {alice, bob, carol})
        r->learn(p);
    auto [pa, pb] = r->two_legs("s", alice, bob);
    ASSERT_NE(pa, 0);
    auto out = one(*r, alice, pa, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, rtp(1, 1))) << "to b's configured remote";

    json u = r->call({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "b"}, {"remote", carol.ep()}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    out = one(*r, alice, pa, 2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(carol, pb, rtp(2, 1))) << "to b's new remote, not the old copy";

    // Cleared: a's packets wait for b to latch (counted, never sent to the
    // old remote).
    u = r->call({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "b"}, {"remote", nullptr}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_TRUE(one(*r, alice, pa, 3).empty());
    EXPECT_EQ(r->drops(drop::target_no_remote), 1u);
    r->settle();
    r->expect_accounted("leg.update");
}

TEST_F(RelayTest, HotCopyFollowsLatch)
{
    relay_options o;
    o.strict_source = false; // a new source re-latches
    start(o);
    for (const peer& p : {alice, bob, carol})
        r->learn(p);
    auto [pa, pb] = r->two_legs("s", alice, bob);
    ASSERT_NE(pa, 0);
    auto out = one(*r, alice, pa, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, rtp(1, 1)));

    // carol takes b over: b latches her; a's next packet goes to carol.
    out = one(*r, carol, pb, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(alice, pa, rtp(1, 1)));
    EXPECT_EQ(leg_of(*r, "s", "b")["remote"], carol.ep());
    out = one(*r, alice, pa, 2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(carol, pb, rtp(2, 1))) << "to b's latched remote";

    // A leg that latches its first remote: the other leg's copy gets it.
    auto [qa, qb] = r->two_legs("t", alice, std::nullopt);
    EXPECT_TRUE(one(*r, alice, qa, 1).empty()) << "b has no remote yet";
    out = one(*r, bob, qb, 1);
    ASSERT_EQ(out.size(), 1u);
    out = one(*r, alice, qa, 2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, qb, rtp(2, 1)));
    r->settle();
    r->expect_accounted("latch");
}

TEST_F(RelayTest, HotMacFollowsNeighbourChange)
{
    start();
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("s", alice, bob);
    ASSERT_NE(pa, 0);
    auto out = one(*r, alice, pa, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, rtp(1, 1)));

    // bob's MAC moves (a new NIC, a VRRP failover): the next packet has it.
    peer bob2 = bob;
    bob2.mac = mac(0x99, 0x99);
    r->learn(bob2);
    out = one(*r, alice, pa, 2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob2, pb, rtp(2, 1))) << "the new MAC, not the cached one";

    // bob's entry removed (aged out): the next packet is held for ARP, not
    // sent to the MAC the leg remembers.
    r->dp->ifc(0).neigh->invalidate(rte_cpu_to_be_32(bob.ip));
    const uint64_t held = r->sum(&dp::worker_stats::held_pkts);
    EXPECT_TRUE(one(*r, alice, pa, 3).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), held + 1);
    r->settle();
    for (auto& p : r->ports)
        p->flush(); // the ARP request and whatever control sent
    r->learn(bob);
    out = one(*r, alice, pa, 4);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, rtp(4, 1)));
    EXPECT_EQ(r->total_drops(), 0u);
}

// The general path (here a fan-out to two off-link receivers) keeps the
// last next hop's MAC per interface while the neighbour table's generation
// holds (worker::emit): the gateway's new MAC is used by the very next
// packet, and with the gateway's entry gone the copies are held, not sent
// to the MAC remembered.
TEST_F(RelayTest, GatewayMacFollowsNeighbourChangeOnTheGeneralPath)
{
    relay_options o;
    o.gateway = true; // 198.18.0.254
    start(o);
    r->learn(alice);
    const uint32_t gw_be = rte_cpu_to_be_32(0xc61200fe);
    const rte_ether_addr gw1 = mac(0xfe, 1), gw2 = mac(0xfe, 2);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(gw_be, gw1));
    const peer far1{0xcb007109, 9000, gw1}, far2{0xcb00710a, 9002, gw1}; // 203.0.113.9, .10
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "g"},
                        {"legs",
                         {{{"name", "a"}, {"remote", alice.ep()}},
                          {{"name", "b"}, {"remote", far1.ep()}, {"targets", json::array()}},
                          {{"name", "c"}, {"remote", far2.ep()}, {"targets", json::array()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a");
    const uint16_t pb = relay::local_port(rep, "b"), pc = relay::local_port(rep, "c");
    auto check = [&](uint16_t seq, const rte_ether_addr& m) {
        auto out = one(*r, alice, pa, seq);
        ASSERT_EQ(out.size(), 2u) << "seq " << seq;
        std::sort(out.begin(), out.end());
        std::vector<bytes> want{r->expected(far1, pb, rtp(seq, 1), 0, m),
                                r->expected(far2, pc, rtp(seq, 1), 0, m)};
        std::sort(want.begin(), want.end());
        EXPECT_EQ(out, want) << "seq " << seq;
    };
    check(1, gw1);
    check(2, gw1);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(gw_be, gw2)); // a VRRP failover
    check(3, gw2);
    r->dp->ifc(0).neigh->invalidate(gw_be); // aged out
    const uint64_t held = r->sum(&dp::worker_stats::held_pkts);
    EXPECT_TRUE(one(*r, alice, pa, 4).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), held + 2);
    r->settle();
    for (auto& p : r->ports)
        p->flush();
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(gw_be, gw1));
    check(5, gw1);
    EXPECT_EQ(r->total_drops(), 0u);
}

// On a LAN every receiver is its own next hop: emit() remembers the MACs of
// an interface's recent next hops in a small direct-mapped memo. A fan-out
// to three on-link receivers - two of whose addresses share a memo slot -
// gives each its own MAC on every packet, and a receiver whose MAC moved
// gets the new one on the very next packet while the others keep theirs.
TEST_F(RelayTest, OnLinkFanOutMacsPerReceiver)
{
    start();
    // 198.18.0.7 and bob (.20) share a memo slot; carol has another.
    const peer dave{0xc6120007, 8000, mac(0x07, 0x07)};
    ASSERT_EQ(dp::nh_memo_slot(rte_cpu_to_be_32(dave.ip)), dp::nh_memo_slot(rte_cpu_to_be_32(bob.ip)));
    ASSERT_NE(dp::nh_memo_slot(rte_cpu_to_be_32(carol.ip)), dp::nh_memo_slot(rte_cpu_to_be_32(bob.ip)));
    for (const peer& p : {alice, bob, carol, dave})
        r->learn(p);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "lan"},
                        {"legs",
                         {{{"name", "a"}, {"remote", alice.ep()}},
                          {{"name", "b"}, {"remote", bob.ep()}, {"targets", json::array()}},
                          {{"name", "c"}, {"remote", carol.ep()}, {"targets", json::array()}},
                          {{"name", "d"}, {"remote", dave.ep()}, {"targets", json::array()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a");
    const uint16_t pb = relay::local_port(rep, "b"), pc = relay::local_port(rep, "c"),
                   pd = relay::local_port(rep, "d");
    auto check = [&](uint16_t seq, const rte_ether_addr& carol_mac) {
        auto out = one(*r, alice, pa, seq);
        ASSERT_EQ(out.size(), 3u) << "seq " << seq;
        std::sort(out.begin(), out.end());
        std::vector<bytes> want{r->expected(bob, pb, rtp(seq, 1)),
                                r->expected(carol, pc, rtp(seq, 1), 0, carol_mac),
                                r->expected(dave, pd, rtp(seq, 1))};
        std::sort(want.begin(), want.end());
        EXPECT_EQ(out, want) << "seq " << seq;
    };
    for (uint16_t s = 1; s <= 3; s++)
        check(s, carol.mac);
    const rte_ether_addr moved = mac(0x1e, 0x99);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(carol.ip), moved));
    check(4, moved);
    check(5, moved);
    EXPECT_EQ(r->total_drops(), 0u);
}

// What control reports is the same whichever path a packet took: the fast
// path counts a forwarded packet only in the sender's line 0, leg_out() adds
// it to the target's out.
TEST_F(RelayTest, HotCountersAsControlReportsThem)
{
    start();
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("s", alice, bob);
    ASSERT_NE(pa, 0);
    for (uint16_t s = 1; s <= 5; s++)
        ASSERT_EQ(one(*r, alice, pa, s).size(), 1u);
    ASSERT_EQ(one(*r, bob, pb, 1).size(), 1u);
    // Through the general path: the MAC of alice unknown, held by control.
    r->dp->ifc(0).neigh->invalidate(rte_cpu_to_be_32(alice.ip));
    EXPECT_TRUE(one(*r, bob, pb, 2).empty());
    r->settle();
    const size_t frame = r->from_peer(alice, pa, rtp(1, 1)).size();
    json a = leg_of(*r, "s", "a"), b = leg_of(*r, "s", "b");
    EXPECT_EQ(a["in"]["packets"], 5u);
    EXPECT_EQ(a["in"]["bytes"], 5 * frame);
    EXPECT_EQ(b["out"]["packets"], 5u);
    EXPECT_EQ(b["out"]["bytes"], 5 * frame);
    EXPECT_EQ(b["in"]["packets"], 2u);
    EXPECT_EQ(a["out"]["packets"], 2u) << "one fast, one held (sent by control)";
    EXPECT_EQ(a["out"]["bytes"], 2 * frame);
    EXPECT_EQ(a["rtp"]["received"], 4u) << a.dump(); // the first is probation
    EXPECT_EQ(r->total_drops(), 0u);
}
