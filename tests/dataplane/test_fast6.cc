// The IPv6 fast path (worker::forward_fast6): a plain IPv6 leg with a single
// plain IPv6 target forwards from its line 0, its line 7 (remote6 and the
// copy of the target's remote6) and its RTP line. These tests check the
// bytes it sends, that the packed digest of the source is only a candidate,
// that the cached next-hop MAC follows the IPv6 neighbour table, that what
// control reports is what the general path would report, and that the fast
// path is the one taken (a hot_fast leg counts a packet in unfwd_* only when
// the general path forwarded it; see leg.h).
// Interface 0 has two slots: 198.18.0.1/24 (slot 0) and 2001:2::1/64 (slot 1).
#include "tests/dataplane/relay_fixture.h"
#include "tests/dataplane/v6_frames.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>

ISAR_TEST_EAL_ENV("test_fast6");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

constexpr uint8_t fast6 = dp::hot_fast | dp::hot_fast6;

class Fast6 : public FlowRelayTest {
protected:
    void SetUp() override
    {
        relay_options o;
        o.tweak = [](dp::dp_config& c) { c.ifaces[0].addrs.push_back(slot6(relay6)); };
        start(o);
        ASSERT_EQ(r->dp->nladdrs(), 2u);
        ASSERT_EQ(r->dp->laddr(1).family, 6);
    }
    // alice6 on relay port 30100 <-> bob6 on 30101, both IPv6; `tweak`
    // changes a leg before the install.
    template <typename Tweak>
    void install6(Tweak&& tweak)
    {
        install_two_legs([&](dp::leg& l, unsigned i) {
            const peer6& p = i == 0 ? alice6 : bob6;
            l.laddr = 1;
            l.family = 6;
            l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(30100 + i));
            l.remote6 = p.ip;
            l.remote.store(p.ep());
            tweak(l, i);
        });
    }
    void install6()
    {
        install6([](dp::leg&, unsigned) {});
    }
    void learn6(const peer6& p) { ASSERT_TRUE(r->dp->ifc(0).neigh->update6(p.ip, p.mac)); }
    static udp6_spec v6(const dp::ip6_addr& src, uint16_t sport, uint16_t dport, const bytes& pl)
    {
        udp6_spec s;
        s.src = src;
        s.dst = relay6;
        s.src_port = sport;
        s.dst_port = dport;
        s.payload = pl;
        return s;
    }
    // What the relay sends (own MAC to the peer's, 64 hops as the general
    // path sends).
    udp6_spec out6(const peer6& to, uint16_t sport, const bytes& pl,
                   const rte_ether_addr* dmac = nullptr) const
    {
        udp6_spec s;
        s.src = relay6;
        s.dst = to.ip;
        s.src_port = sport;
        s.dst_port = to.port;
        s.payload = pl;
        s.src_mac = r->mac(0);
        s.dst_mac = dmac != nullptr ? *dmac : to.mac;
        return s;
    }
    // One RTP packet from alice6 to relay port 30100.
    std::vector<bytes> from_alice(uint16_t seq)
    {
        return run(build(v6(alice6.ip, alice6.port, 30100, rtp(seq, 0x1234, 160))));
    }
    const dp::leg& leg(unsigned i) const { return sess_->legs[i]; }
};

} // namespace

TEST_F(Fast6, SendsTheGeneralPathsBytesOnTheFastPath)
{
    learn6(alice6);
    learn6(bob6);
    install6();
    ASSERT_EQ(leg(0).hot & fast6, fast6);
    ASSERT_EQ(leg(1).hot & fast6, fast6);
    ASSERT_NE(leg(0).hot & dp::hot_mac, 0) << "resolved at install";
    EXPECT_FALSE(dp::leg_plain(leg(0))) << "the act pass must prefetch line 7";
    size_t frame = 0;
    for (uint16_t seq = 1; seq <= 3; seq++) {
        const bytes pl = rtp(seq, 0xabcdef01, 160 + seq); // odd lengths too
        udp6_spec in = v6(alice6.ip, alice6.port, 30100, pl);
        in.hop_limit = static_cast<uint8_t>(seq); // 64 out, as the general path
        in.tc = 0xb8;                             // EF: carried over
        const bytes f = build(in);
        frame += f.size();
        const auto out = run(f);
        ASSERT_EQ(out.size(), 1u) << "seq " << seq;
        udp6_spec want = out6(bob6, 30101, pl);
        want.tc = 0xb8;
        EXPECT_EQ(hex(out[0]), hex(build(want))) << "seq " << seq;
        EXPECT_TRUE(udp6_cksum_ok(out[0])) << "seq " << seq;
    }
    // And back.
    const bytes pl = rtp(1, 7, 160);
    const auto back = run(build(v6(bob6.ip, bob6.port, 30101, pl)));
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(hex(back[0]), hex(build(out6(alice6, 30100, pl))));
    EXPECT_TRUE(udp6_cksum_ok(back[0]));
    // Taken: nothing went through the general path.
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 3u);
    EXPECT_EQ(leg(0).unfwd_pkts.load(), 0u);
    EXPECT_EQ(leg(1).unfwd_pkts.load(), 0u);
    EXPECT_EQ(leg(1).out_pkts.load(), 0u);
    EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 3u);
    EXPECT_EQ(dp::leg_out(*sess_, 1).bytes, frame);
    EXPECT_EQ(r->sum(&dp::worker_stats::fwd_pkts), 4u);
    EXPECT_EQ(r->total_drops(), 0u);
    r->expect_accounted("fast6");
}

// The packed remote holds a 32-bit digest of the address: a source with the
// same digest and port but another address is not the remote (strict source
// drops it, on the general path), nor is one with another digest.
TEST_F(Fast6, SourceIsTheWholeAddressNotItsDigest)
{
    learn6(alice6);
    learn6(bob6);
    install6();
    dp::ip6_addr twin = alice6.ip;
    std::swap_ranges(twin.b, twin.b + 4, twin.b + 4);
    ASSERT_FALSE(twin == alice6.ip);
    ASSERT_EQ(dp::pack_ep6(twin, 1), dp::pack_ep6(alice6.ip, 1));
    const bytes pl = rtp(1, 1, 100);
    EXPECT_TRUE(run(build(v6(twin, alice6.port, 30100, pl))).empty()) << "same digest";
    EXPECT_TRUE(run(build(v6(bob6.ip, alice6.port, 30100, pl))).empty()) << "other digest";
    EXPECT_TRUE(run(build(v6(alice6.ip, 5001, 30100, pl))).empty()) << "other port";
    EXPECT_EQ(r->drops(drop::src_mismatch), 3u);
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 0u);
    EXPECT_EQ(from_alice(2).size(), 1u);
    EXPECT_EQ(leg(0).unfwd_pkts.load(), 0u) << "the remote's packet on the fast path";
    EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 1u);
}

TEST_F(Fast6, NextHopMacFollowsTheIpv6NeighbourTable)
{
    learn6(alice6);
    learn6(bob6);
    install6();
    auto out = from_alice(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, rtp(1, 0x1234, 160)))));

    // bob's MAC moves: the very next packet has the new one.
    const rte_ether_addr moved = mac(0x99, 0x66);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update6(bob6.ip, moved));
    out = from_alice(2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, rtp(2, 0x1234, 160), &moved))))
            << "the new MAC, not the cached one";

    // An IPv4 neighbour's change does not matter; removing bob's entry
    // does: the packet is held for ND, not sent to the MAC remembered.
    r->learn(alice);
    r->dp->ifc(0).neigh->invalidate6(bob6.ip);
    const uint64_t held = r->sum(&dp::worker_stats::held_pkts);
    EXPECT_TRUE(from_alice(3).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), held + 1);
    EXPECT_EQ(leg(0).hot & dp::hot_mac, 0);
    r->settle();
    for (auto& p : r->ports)
        p->flush(); // the solicitation and whatever control sent
    learn6(bob6);
    out = from_alice(4);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, rtp(4, 0x1234, 160)))));
    EXPECT_EQ(leg(0).unfwd_pkts.load(), 1u) << "only the held packet took the general path";
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 4u);
}

// The same traffic through a fast leg and through one the fast path leaves
// alone (a rate limit that never bites: IPv6 rate limits stay with
// forward()): control reports the same counters.
TEST_F(Fast6, CountersAsTheGeneralPathCountsThem)
{
    learn6(alice6);
    learn6(bob6);
    struct seen {
        uint64_t in_pkts, in_bytes, out_pkts, out_bytes, rtp, unfwd;
    };
    auto traffic = [&](bool general) {
        install6([&](dp::leg& l, unsigned) {
            if (general) {
                l.rl_interval_tsc = 1;
                l.rl_burst_tsc = uint64_t{1} << 62;
            }
        });
        EXPECT_EQ(leg(0).hot & fast6, fast6);
        for (uint16_t seq = 1; seq <= 6; seq++) {
            const bytes pl = rtp(seq, 0x55, 100 + 7 * seq);
            EXPECT_EQ(run(build(v6(alice6.ip, alice6.port, 30100, pl))).size(), 1u);
        }
        EXPECT_EQ(run(build(v6(bob6.ip, bob6.port, 30101, rtp(1, 9, 80)))).size(), 1u);
        const dp::leg_sent o1 = dp::leg_out(*sess_, 1), o0 = dp::leg_out(*sess_, 0);
        seen s{leg(0).ctr.in_pkts.load(), leg(0).ctr.in_bytes.load(), o1.pkts, o1.bytes,
               leg(0).stats.rtp.received.load(), leg(0).unfwd_pkts.load()};
        EXPECT_EQ(o0.pkts, 1u);
        command(dp::cmd_op::del_session);
        sess_.reset();
        return s;
    };
    const seen fast = traffic(false);
    const seen gen = traffic(true);
    EXPECT_EQ(fast.unfwd, 0u) << "the fast leg's packets took the fast path";
    EXPECT_EQ(gen.unfwd, 6u) << "the rate-limited leg's took the general path";
    EXPECT_EQ(fast.in_pkts, 6u);
    EXPECT_EQ(fast.in_pkts, gen.in_pkts);
    EXPECT_EQ(fast.in_bytes, gen.in_bytes);
    EXPECT_EQ(fast.out_pkts, 6u);
    EXPECT_EQ(fast.out_pkts, gen.out_pkts);
    EXPECT_EQ(fast.out_bytes, gen.out_bytes);
    EXPECT_EQ(fast.rtp, gen.rtp);
    EXPECT_EQ(r->total_drops(), 0u);
}

// Bridged (IPv4 <-> IPv6) legs and a target without a remote are not for the
// fast path; a remote that arrives later (latching) makes the leg fast.
TEST_F(Fast6, BridgeStaysGeneralAndLatchedTargetTurnsFast)
{
    learn6(alice6);
    learn6(bob6);
    r->learn(bob);
    install6([](dp::leg& l, unsigned i) {
        if (i == 1) {
            l.laddr = 0;
            l.family = 4;
            l.remote6 = {};
            l.remote.store(dp::pack_ep(rte_cpu_to_be_32(bob.ip), rte_cpu_to_be_16(bob.port)));
        }
    });
    EXPECT_EQ(leg(0).hot & dp::hot_fast, 0);
    EXPECT_EQ(leg(1).hot & dp::hot_fast, 0);
    EXPECT_EQ(from_alice(1).size(), 1u);
    command(dp::cmd_op::del_session);
    sess_.reset();

    install6([](dp::leg& l, unsigned i) {
        if (i == 1) {
            l.remote6 = {};
            l.remote.store(0);
        }
    });
    EXPECT_TRUE(from_alice(1).empty());
    EXPECT_EQ(r->drops(drop::target_no_remote), 1u);
    const bytes pl = rtp(1, 3, 120);
    const auto back = run(build(v6(bob6.ip, bob6.port, 30101, pl))); // b latches bob6
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(leg(0).hot & fast6, fast6);
    EXPECT_TRUE(leg(0).fwd_remote6 == bob6.ip);
    const uint64_t unfwd = leg(0).unfwd_pkts.load();
    const auto out = from_alice(2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, rtp(2, 0x1234, 160)))));
    EXPECT_EQ(leg(0).unfwd_pkts.load(), unfwd) << "on the fast path";
    r->expect_accounted("latched");
}

// The MTU is checked on the size the packet leaves with (a fresh header:
// extension headers are stripped), on the fast path as on the general one.
TEST_F(Fast6, MtuIsCheckedOnTheOutputSize)
{
    learn6(alice6);
    learn6(bob6);
    install6();
    const bytes pl = rtp(1, 0x77, 300);
    udp6_spec in = v6(alice6.ip, alice6.port, 30100, pl);
    in.ext = {{0, 8}}; // Hop-by-Hop: 8 bytes that do not leave
    const uint32_t out_ip_len = 40 + 8 + static_cast<uint32_t>(pl.size());
    const uint32_t saved = r->dp->ifc(0).mtu;
    r->dp->ifc(0).mtu = out_ip_len; // fits as sent, not as received
    auto out = run(build(in));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(build(out6(bob6, 30101, pl))));
    EXPECT_EQ(leg(0).unfwd_pkts.load(), 0u) << "on the fast path";
    r->dp->ifc(0).mtu = out_ip_len - 1;
    EXPECT_TRUE(run(build(in)).empty());
    EXPECT_EQ(r->drops(drop::mtu_exceeded), 1u);
    r->dp->ifc(0).mtu = saved;
}
