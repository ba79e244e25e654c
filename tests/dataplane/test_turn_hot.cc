// The line-0 copies of a TURN allocation (turn_alloc::set_hot: the first
// permission's address and the first IPv4 channel, valid until the earlier
// of their expiries) never change what is relayed: a packet the copies do
// not answer - another peer, another channel, an expired copy - is decided
// by the permission and channel tables, as before. Through the real worker
// loop (tests/dataplane/turn_fixture.h).
#include "tests/dataplane/turn_fixture.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"

#include <chrono>
#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <thread>

ISAR_TEST_EAL_ENV("test_turn_hot");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

using namespace isar::test::turn_fixture;

class TurnHot : public TurnRelay {
protected:
    void SetUp() override
    {
        start(1);
        a_ = add_alloc(client1, rp_);
    }
    host peer_at(uint16_t port) const
    {
        host h = peer_p;
        h.port = port;
        return h;
    }
    dp::turn_alloc* a_ = nullptr;
    const uint16_t rp_ = 30010;
};

} // namespace

TEST(TurnHotCopies, SetHotTakesFirstEntriesAndEarlierExpiry)
{
    dp::turn_alloc a;
    EXPECT_FALSE(a.hot(0)); // nothing installed: always the tables
    dp::turn_peer_table t;
    t.nperms = 2;
    t.perms[0] = {0x01020304, 0, 500};
    t.perms[1] = {0x05060708, 0, 100};
    t.nchans = 1;
    t.chans[0].peer = dp::pack_ep(0x01020304, 0x1b58);
    t.chans[0].number = 0x4001;
    t.chans[0].expiry_tsc = 300;
    a.set_peers(t);
    EXPECT_EQ(a.hot_perm_ip, 0x01020304u);
    EXPECT_EQ(a.hot_chan_peer, t.chans[0].peer);
    EXPECT_EQ(a.hot_chan_number, 0x4001);
    EXPECT_EQ(a.hot_until_tsc, 300u); // the earlier of perms[0] and chans[0]
    EXPECT_TRUE(a.hot_permitted(0x01020304, 299));
    EXPECT_FALSE(a.hot_permitted(0x01020304, 300));
    EXPECT_FALSE(a.hot_permitted(0x05060708, 50)); // not the first: the tables say
    EXPECT_TRUE(a.permitted(0x05060708, 50));

    // An IPv6 first channel is not copied (its address is not in line 0).
    dp::ip6_addr six{};
    six.b[0] = 0x20;
    t.chans[0].peer = dp::pack_ep6(six, 0x1b58);
    t.chans[0].peer6 = six;
    a.set_peers(t);
    EXPECT_EQ(a.hot_chan_peer, 0u);
    EXPECT_EQ(a.hot_chan_number, 0);
    EXPECT_EQ(a.hot_until_tsc, 500u);

    // Nothing left: no copy.
    a.set_peers(dp::turn_peer_table{});
    EXPECT_EQ(a.hot_perm_ip, 0u);
    EXPECT_FALSE(a.hot(0));
}

// The first permission expired, the second (the peer's) is valid: the copy
// is void and the tables let both directions through.
TEST_F(TurnHot, ExpiredFirstPermissionFallsBackToTables)
{
    set_peers(a_, {{other.ip, expired}, {peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    EXPECT_FALSE(a_->hot(rte_rdtsc()));
    const bytes data = pattern(20, 3);
    auto out = roundtrip(from(client1, turn_port, channel_data(0x4001, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, peer_p, data));
    out = roundtrip(from(peer_p, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, client1, channel_data(0x4001, data)));
    // The expired one stays refused.
    EXPECT_TRUE(roundtrip(from(other, rp_, data)).empty());
    EXPECT_EQ(drops(drop::turn_no_permission), 1u);
    expect_accounted("expired first permission");
}

// The peer's channel is the second one: ChannelData with its number, both
// ways, while the first channel (another port of the same peer) keeps its own.
TEST_F(TurnHot, SecondChannelFromTables)
{
    const host p2 = peer_at(7001);
    set_peers(a_, {{peer_p.ip, later()}},
              {{0x4001, p2.ep(), later()}, {0x4002, peer_p.ep(), later()}});
    ASSERT_TRUE(a_->hot(rte_rdtsc()));
    const bytes data = pattern(33, 4);
    auto out = roundtrip(from(peer_p, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, client1, channel_data(0x4002, data)));
    out = roundtrip(from(p2, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, client1, channel_data(0x4001, data)));
    out = roundtrip(from(client1, turn_port, channel_data(0x4002, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, peer_p, data));
    out = roundtrip(from(client1, turn_port, channel_data(0x4001, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, p2, data));
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("second channel");
}

// The copy holds only until the channel's expiry: once the clock passes it,
// ChannelData is refused and the peer's packets come as Data indications,
// as the tables decide.
TEST_F(TurnHot, CopyExpiresWithTheChannel)
{
    const uint64_t soon = rte_rdtsc() + rte_get_tsc_hz() / 20; // 50 ms
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), soon}});
    const bytes data = pattern(12, 5);
    ASSERT_EQ(roundtrip(from(client1, turn_port, channel_data(0x4001, data))).size(), 1u);
    auto out = roundtrip(from(peer_p, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(turn_port, client1, channel_data(0x4001, data)));
    while (rte_rdtsc() <= soon)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_bad_channel);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4001, data))).empty());
    expect_only_drop(drop::turn_bad_channel, t0, d0, "expired channel");
    const txid_t tx = txid_of(*a_);
    out = roundtrip(from(peer_p, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    expect_data_indication(expect_out(out[0], turn_port, client1), peer_p.ep(), data, tx);
    expect_accounted("expired copy");
}
