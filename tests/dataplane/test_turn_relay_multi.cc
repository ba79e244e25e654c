// TURN over UDP (RFC 8656) through the real worker loop over net_ring ports,
// more than one thing at a time: hairpins between two allocations, two
// workers (handoff to the allocation's owner, hairpins across workers), and
// bursts of mixed leg and TURN traffic. One allocation's relaying is
// test_turn_relay's; the fixture (tests/dataplane/turn_fixture.h) is shared:
// frames go in on the ring port, the workers are stepped with poll_once(),
// and what comes out is checked byte for byte.
#include "tests/dataplane/turn_fixture.h"
#include "dataplane/dataplane.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"
#include "tests/support/ring_port.h"
#include "turn/stun.h"

#include <algorithm>
#include <cerrno>
#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <string>
#include <vector>

ISAR_TEST_EAL_ENV("test_turn_relay_multi");

using namespace isar;
using namespace isar::test;
using namespace isar::test::turn_fixture;
using dp::drop;

// ---- 1. Hairpin ------------------------------------------------------------------

class TurnHairpin : public TurnRelay {
protected:
    void SetUp() override
    {
        start(1);
        a_ = add_alloc(client1, ra_);
        b_ = add_alloc(client2, rb_);
    }
    void check_nothing_to_relay(const std::vector<bytes>& out)
    {
        for (const bytes& f : out) {
            auto v = parse_udp4(f);
            ASSERT_TRUE(v.has_value());
            EXPECT_NE(v->dst_ip, relay_ip) << "sent towards the relay's own address";
        }
    }
    dp::turn_alloc* a_ = nullptr;
    dp::turn_alloc* b_ = nullptr;
    const uint16_t ra_ = 30010, rb_ = 30020;
};

TEST_F(TurnHairpin, ChannelDataArrivesAsDataIndication)
{
    set_peers(a_, {{relay_ip, later()}}, {{0x4001, pep(relay_ip, rb_), later()}});
    set_peers(b_, {{relay_ip, later()}}, {});
    const bytes data = pattern(50, 7);
    const txid_t tx = txid_of(*b_);
    auto out = roundtrip(from(client1, turn_port, channel_data(0x4001, data, 2)));
    check_nothing_to_relay(out);
    ASSERT_EQ(out.size(), 1u);
    const bytes p = expect_out(out[0], turn_port, client2);
    expect_data_indication(p, pep(relay_ip, ra_), data, tx);
    EXPECT_EQ(sum(&dp::worker_stats::turn_hairpin), 1u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 1u);
    EXPECT_EQ(dp::read(b_->ctr.p2c_pkts), 1u);
    EXPECT_EQ(dp::read(b_->ctr.p2c_bytes), data.size());
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("hairpin");
}

TEST_F(TurnHairpin, SendIndicationArrivesAsChannelData)
{
    set_peers(a_, {{relay_ip, later()}}, {});
    set_peers(b_, {{relay_ip, later()}}, {{0x4abc, pep(relay_ip, ra_), later()}});
    const bytes data = pattern(31, 8);
    auto out = roundtrip(from(client1, turn_port, send_indication(relay_ip, rb_, data)));
    check_nothing_to_relay(out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, client2, channel_data(0x4abc, data)));
    expect_out(out[0], turn_port, client2);
    EXPECT_EQ(sum(&dp::worker_stats::turn_hairpin), 1u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 1u); // B's leg only
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("hairpin channel");
}

TEST_F(TurnHairpin, TargetWithoutPermissionDrops)
{
    set_peers(a_, {{relay_ip, later()}}, {{0x4001, pep(relay_ip, rb_), later()}});
    set_peers(b_, {{peer_p.ip, later()}}, {}); // B does not permit the relay's address
    auto out = roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(9, 1))));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(drops(drop::turn_no_permission), 1u);
    EXPECT_EQ(drops(drop::turn_spoofed), 0u) << "a hairpin is not spoofed";
    EXPECT_EQ(total_drops(), 1u);
}

// A relayed address of the relay that is no allocation: dropped, never sent
// out of the port towards ourselves.
TEST_F(TurnHairpin, ToPortWithoutAllocationDrops)
{
    set_peers(a_, {{relay_ip, later()}}, {{0x4001, pep(relay_ip, 30150), later()}});
    auto out = roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(9, 1))));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(drops(drop::turn_no_alloc), 1u);
    EXPECT_EQ(total_drops(), 1u);
}

// The same towards the relay's TURN listener and towards a leg's port: never
// a request to control from the relay's own address, never media into a leg.
TEST_F(TurnHairpin, ToListenerPortDrops)
{
    set_peers(a_, {{relay_ip, later()}}, {});
    auto out = roundtrip(from(client1, turn_port, send_indication(relay_ip, turn_port, binding_request())));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(sum(&dp::worker_stats::turn_requests), 0u);
    EXPECT_EQ(rte_ring_count(dp_->wk(0).turn_ring), 0u);
    EXPECT_EQ(drops(drop::turn_no_alloc) + drops(drop::turn_no_permission), 1u);
    EXPECT_EQ(total_drops(), 1u);
}

TEST_F(TurnHairpin, ToLegPortDrops)
{
    add_session(30100, alice, bob);
    sessions_.back()->legs[0].remote.store(0); // not latched: the hairpin must not latch it
    set_peers(a_, {{relay_ip, later()}}, {});
    auto out = roundtrip(from(client1, turn_port, send_indication(relay_ip, 30100, rtp(1, 0x1234, 40))));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(sessions_.back()->legs[0].remote.load(), 0u);
    EXPECT_EQ(drops(drop::turn_no_alloc), 1u);
    EXPECT_EQ(total_drops(), 1u);
}

// ---- 2. Two workers ------------------------------------------------------------------

class TurnTwoWorkers : public TurnRelay {
protected:
    void SetUp() override { start(2); }
};

TEST_F(TurnTwoWorkers, ClientPacketHandedToOwner)
{
    // Worker 0 polls the only RX queue; the allocation belongs to worker 1.
    const host c = client_on(1, client1);
    const uint16_t rp = relay_port_on(1);
    dp::turn_alloc* a = add_alloc(c, rp);
    ASSERT_EQ(a->owner, 1u);
    set_peers(a, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    EXPECT_EQ(dp_->wk(0).turn_clients.size(), 0u);
    EXPECT_EQ(dp_->wk(1).turn_clients.size(), 1u);

    const bytes data = pattern(44, 1);
    inject(from(c, turn_port, channel_data(0x4001, data)));
    dp_->wk(0).poll_once();
    EXPECT_EQ(dp::read(dp_->wk(0).stats.handoff_out), 1u);
    EXPECT_TRUE(sent(0).empty()) << "worker 0 is not the owner";
    dp_->wk(1).poll_once();
    EXPECT_EQ(dp::read(dp_->wk(1).stats.handoff_in), 1u);
    auto out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp, peer_p, data));
    EXPECT_EQ(dp::read(dp_->wk(1).stats.turn_c2p_pkts), 1u);
    EXPECT_EQ(dp::read(dp_->wk(0).stats.turn_c2p_pkts), 0u);

    // The peer's answer goes the same way, as ChannelData.
    const bytes back = pattern(12, 2);
    inject(from(peer_p, rp, back));
    settle();
    EXPECT_TRUE(sent(0).empty());
    out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, c, channel_data(0x4001, back)));
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("two workers");
}

TEST_F(TurnTwoWorkers, HairpinToOtherWorker)
{
    const host ca = client_on(0, client1);
    const host cb = client_on(1, client2);
    const uint16_t ra = relay_port_on(0), rb = relay_port_on(1);
    dp::turn_alloc* a = add_alloc(ca, ra);
    dp::turn_alloc* b = add_alloc(cb, rb);
    ASSERT_EQ(a->owner, 0u);
    ASSERT_EQ(b->owner, 1u);
    set_peers(a, {{relay_ip, later()}}, {{0x4001, pep(relay_ip, rb), later()}});
    set_peers(b, {{relay_ip, later()}}, {});

    const bytes data = pattern(27, 3);
    const txid_t tx = txid_of(*b);
    auto out = roundtrip(from(ca, turn_port, channel_data(0x4001, data)));
    ASSERT_EQ(out.size(), 1u);
    const bytes p = expect_out(out[0], turn_port, cb);
    expect_data_indication(p, pep(relay_ip, ra), data, tx);
    EXPECT_EQ(dp::read(dp_->wk(0).stats.turn_hairpin), 1u);
    EXPECT_EQ(dp::read(dp_->wk(0).stats.handoff_out), 1u);
    EXPECT_EQ(dp::read(dp_->wk(1).stats.turn_p2c_pkts), 1u);
    EXPECT_EQ(drops(drop::turn_spoofed), 0u);
    EXPECT_EQ(total_drops(), 0u);

    // And back: B's client (owned by 1, received by 0) to A through a channel.
    set_peers(b, {{relay_ip, later()}}, {{0x4002, pep(relay_ip, ra), later()}});
    set_peers(a, {{relay_ip, later()}},
              {{0x4001, pep(relay_ip, rb), later()}, {0x4005, pep(relay_ip, rb), later()}});
    const bytes data2 = pattern(9, 4);
    out = roundtrip(from(cb, turn_port, channel_data(0x4002, data2)));
    ASSERT_EQ(out.size(), 1u);
    // A has two channels to B's relayed address: the first one found is used.
    EXPECT_FRAME(out[0], expected(turn_port, ca, channel_data(0x4001, data2)));
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("hairpin across workers");
}

TEST_F(TurnTwoWorkers, RelaySourceHandedOffIsStillSpoofed)
{
    const host c = client_on(1, client1);
    const uint16_t rp = relay_port_on(1);
    dp::turn_alloc* a = add_alloc(c, rp);
    set_peers(a, {{relay_ip, later()}, {peer_p.ip, later()}}, {});
    // From the wire, source = the relay's own relayed address on worker 0's
    // share: received by worker 0, handed off (not as a hairpin) to 1.
    const host spoof{relay_ip, relay_port_on(0), mac(0x99, 0x99)};
    inject(from(spoof, rp, pattern(16, 1)));
    dp_->wk(0).poll_once();
    EXPECT_EQ(dp::read(dp_->wk(0).stats.handoff_out), 1u);
    settle();
    EXPECT_TRUE(sent_all().empty());
    EXPECT_EQ(drops(drop::turn_spoofed), 1u);
    EXPECT_EQ(dp::read(dp_->wk(1).stats.drops[static_cast<unsigned>(drop::turn_spoofed)]), 1u);
    EXPECT_EQ(total_drops(), 1u);
    expect_accounted("spoof handoff");
}

// A hairpin to a port of the relay that is no allocation must not depend on
// which worker owns that port: with one worker it is dropped turn_no_alloc
// (TurnHairpin.ToPortWithoutAllocationDrops).
TEST_F(TurnTwoWorkers, HairpinToListenerPortIsNotATurnRequest)
{
    const host ca = client_on(0, client1);
    const uint16_t ra = relay_port_on(0);
    dp::turn_alloc* a = add_alloc(ca, ra);
    ASSERT_NE(dp::owner_of_port(turn_port, 2), a->owner) << "test needs the listener port's "
                                                              "owner to differ";
    set_peers(a, {{relay_ip, later()}}, {});
    // The client asks the relay to send a Binding request to its own listener.
    // At f7bf264 the hairpin was handed to port 3478's owner, which took it
    // for a request from the relay's own address and queued it on turn_ring.
    auto out = roundtrip(from(ca, turn_port, send_indication(relay_ip, turn_port, binding_request())));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(sum(&dp::worker_stats::turn_requests), 0u);
    EXPECT_EQ(rte_ring_count(dp_->wk(0).turn_ring) + rte_ring_count(dp_->wk(1).turn_ring), 0u);
    // Dropped as a hairpin without an allocation, or refused up front (the
    // relay's listener is no relayed address).
    EXPECT_EQ(drops(drop::turn_no_alloc) + drops(drop::turn_no_permission), 1u);
    EXPECT_EQ(total_drops(), 1u);
}

TEST_F(TurnTwoWorkers, HairpinToLegPortIsNotForwarded)
{
    const host ca = client_on(0, client1);
    const uint16_t ra = relay_port_on(0);
    dp::turn_alloc* a = add_alloc(ca, ra);
    // A session on worker 1's ports, leg a not latched yet.
    const uint16_t pl = relay_port_on(1, 30100);
    ASSERT_EQ(pl % 2, 0);
    add_session(pl, alice, bob);
    sessions_.back()->legs[0].remote.store(0);
    set_peers(a, {{relay_ip, later()}}, {});
    // At f7bf264 the hairpin reached worker::forward() on the leg's owner:
    // the leg latched to the relay's relayed address and bob got the packet.
    auto out = roundtrip(from(ca, turn_port, send_indication(relay_ip, pl, rtp(1, 0x1234, 40))));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(sessions_.back()->legs[0].remote.load(), 0u) << "the leg latched to the relay";
    EXPECT_EQ(drops(drop::turn_no_alloc), 1u);
    EXPECT_EQ(total_drops(), 1u);
}

// ---- 3. Bursts of mixed leg and TURN traffic ----------------------------------------------

class TurnBurst : public TurnRelay, public ::testing::WithParamInterface<unsigned> {};

TEST_P(TurnBurst, MixedLegsAndTurn)
{
    start(GetParam());
    const unsigned nw = GetParam();
    // The act pass's schedule for flows in the LLC (burst.cc: a leg's line
    // 0 and an allocation's lines 12 packets ahead), which these few flows
    // would not get; the other tests have the whole-burst one.
    for (unsigned w = 0; w < nw; w++) {
        dp_->wk(w).spread_min_flows = 0;
        dp_->wk(w).spread_max_flows = UINT32_MAX;
    }
    // The session on worker 0's ports, the allocation on the last worker's.
    const uint16_t pl = relay_port_on(0, 30100);
    add_session(pl, alice, bob);
    const host c = client_on(nw - 1, client1);
    const uint16_t rp = relay_port_on(nw - 1, 30120);
    dp::turn_alloc* a = add_alloc(c, rp);
    set_peers(a, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});

    uint64_t want_drops = 0, want_tx = 0;
    for (unsigned n : {1u, 3u, 32u, 33u}) {
        std::vector<bytes> want;
        for (unsigned i = 0; i < n; i++) {
            const bytes d = pattern(8 + (i * 5) % 41, static_cast<uint8_t>(i + n));
            switch (i % 6) {
            case 0: {
                const bytes p = rtp(static_cast<uint16_t>(i), 0xa11ce, 20 + i);
                inject(from(alice, pl, p));
                want.push_back(expected(static_cast<uint16_t>(pl + 1), bob, p));
                break;
            }
            case 1:
                inject(from(c, turn_port, channel_data(0x4001, d, turn::pad4(d.size()))));
                want.push_back(expected(rp, peer_p, d));
                break;
            case 2:
                inject(from(peer_p, rp, d));
                want.push_back(expected(turn_port, c, channel_data(0x4001, d)));
                break;
            case 3:
                inject(from(c, turn_port, send_indication(peer_p.ip, peer_p.port, d)));
                want.push_back(expected(rp, peer_p, d));
                break;
            case 4: {
                const bytes p = rtp(static_cast<uint16_t>(i), 0xb0b, 30 + i);
                inject(from(bob, static_cast<uint16_t>(pl + 1), p));
                want.push_back(expected(pl, alice, p));
                break;
            }
            case 5:
                inject(from(c, turn_port, d)); // junk to the listener
                want_drops++;
                break;
            }
        }
        settle();
        std::vector<bytes> got;
        if (nw == 1) {
            got = sent(0); // one worker: in order
        } else {
            got = sent_all();
            std::sort(got.begin(), got.end());
            std::sort(want.begin(), want.end());
        }
        ASSERT_EQ(got.size(), want.size()) << "burst " << n;
        for (size_t i = 0; i < got.size(); i++) {
            EXPECT_FRAME(got[i], want[i]);
            auto v = parse_udp4(got[i]);
            ASSERT_TRUE(v.has_value());
            EXPECT_TRUE(v->ip_cksum_ok && v->udp_cksum_ok) << "burst " << n << " frame " << i;
        }
        want_tx += want.size();
        EXPECT_EQ(total_drops(), want_drops) << "burst " << n;
        EXPECT_EQ(drops(drop::turn_malformed), want_drops) << "burst " << n;
        EXPECT_EQ(sum(&dp::worker_stats::tx_pkts), want_tx) << "burst " << n;
    }
    expect_accounted("burst");
}

INSTANTIATE_TEST_SUITE_P(Workers, TurnBurst, ::testing::Values(1u, 2u),
                         [](const ::testing::TestParamInfo<unsigned>& i) {
                             return std::to_string(i.param) + "_workers";
                         });
