// TURN over TCP/TLS in the worker (dataplane/stream_ring.h): the test plays
// the stream threads. A client's ChannelData or Send indication, put on the
// owner's stream-in ring behind a stream_frame_hdr, must leave the port as UDP
// from the relayed address with correct headers and checksums; a peer's
// datagram to an allocation of a stream client must come back on the
// stream-out ring as exactly the frame the client gets (ChannelData padded
// to 4 bytes, or a Data indication), with the connection's token. Everything
// else is a counted drop.
#include "tests/dataplane/turn_fixture.h"
#include "tests/support/eal_env.h"

#include <cstring>
#include <gtest/gtest.h>
#include <rte_ring.h>
#include <utility>
#include <vector>

ISAR_TEST_EAL_ENV("test_turn_stream");

using namespace isar;
using namespace isar::test;
using namespace isar::test::turn_fixture;

namespace {

constexpr uint32_t token_a = dp::make_stream_token(0, 1, 7);
constexpr uint32_t token_b = dp::make_stream_token(1, 3, 9);

class TurnStream : public TurnRelay {
protected:
    void setup(unsigned nworkers)
    {
        start(nworkers, 2);
        a_ = add_alloc(client1, rp_a(), token_a);
    }
    uint16_t rp_a() const
    {
        return relay_port_on(dp::owner_of_client(client1.ip_be(), client1.port_be(), nworkers_));
    }

    // What stream thread `t` puts on worker `w`'s stream-in ring.
    void push(unsigned t, unsigned w, uint32_t token, uint16_t relay_port, const bytes& frame,
              uint16_t iface = 0)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(dp_->pool());
        ASSERT_NE(m, nullptr);
        auto* p = rte_pktmbuf_mtod(m, uint8_t*);
        ASSERT_NE(rte_pktmbuf_append(m, static_cast<uint16_t>(8 + frame.size())), nullptr);
        dp::stream_frame_hdr h{token, rte_cpu_to_be_16(relay_port), iface};
        std::memcpy(p, &h, sizeof(h));
        if (!frame.empty())
            std::memcpy(p + 8, frame.data(), frame.size());
        ASSERT_EQ(rte_ring_sp_enqueue(dp_->stream_in(t, w), m), 0);
    }
    void push_a(const bytes& frame) { push(0, a_->owner, token_a, rp_a(), frame); }

    // Everything on stream thread `t`'s rings: (token, frame).
    std::vector<std::pair<uint32_t, bytes>> taken(unsigned t)
    {
        std::vector<std::pair<uint32_t, bytes>> out;
        for (unsigned w = 0; w < nworkers_; w++) {
            rte_mbuf* m[64];
            unsigned n;
            while ((n = rte_ring_dequeue_burst(dp_->stream_out(w, t),
                                               reinterpret_cast<void**>(m), 64, nullptr)) > 0) {
                for (unsigned i = 0; i < n; i++) {
                    EXPECT_EQ(m[i]->nb_segs, 1);
                    out.emplace_back(m[i]->hash.usr, mbuf_bytes(m[i]));
                }
                rte_pktmbuf_free_bulk(m, n);
            }
        }
        return out;
    }

    dp::turn_alloc* a_ = nullptr;
};

class TurnStreamOne : public TurnStream {
protected:
    void SetUp() override { setup(1); }
};
class TurnStreamTwo : public TurnStream {
protected:
    void SetUp() override { setup(2); }
};

} // namespace

TEST_F(TurnStreamOne, ChannelDataFromConnectionLeavesAsUdp)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    uint64_t want_bytes = 0;
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{160}, size_t{1200}}) {
        const bytes data = pattern(n, static_cast<uint8_t>(n));
        // With the TCP padding, as RFC 8656 §12.5 has clients send it.
        push_a(channel_data(0x4001, data, turn::pad4(n)));
        settle();
        auto out = sent_all();
        ASSERT_EQ(out.size(), 1u) << n;
        EXPECT_FRAME(expect_out(out[0], rp_a(), peer_p), data);
        want_bytes += n;
    }
    // And without it (a lenient client): the same.
    push_a(channel_data(0x4001, pattern(5, 9)));
    settle();
    ASSERT_EQ(sent_all().size(), 1u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 7u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_bytes), want_bytes + 5);
    EXPECT_EQ(sum(&dp::worker_stats::turn_stream_in), 7u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 7u);
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(TurnStreamOne, SendIndicationFromConnectionLeavesAsUdp)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    const bytes data = pattern(77, 3);
    push_a(send_indication(peer_p.ip, peer_p.port, data));
    settle();
    auto out = sent_all();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(expect_out(out[0], rp_a(), peer_p), data);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 0u);
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(TurnStreamOne, PeerToConnectionAsPaddedChannelData)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{161}}) {
        const bytes data = pattern(n, 5);
        inject(from(peer_p, rp_a(), data));
        settle();
        EXPECT_TRUE(sent_all().empty()) << "nothing to the wire: the client is a connection";
        auto got = taken(0);
        ASSERT_EQ(got.size(), 1u) << n;
        EXPECT_EQ(got[0].first, token_a);
        EXPECT_FRAME(got[0].second, channel_data(0x4001, data, turn::pad4(n)));
    }
    EXPECT_EQ(sum(&dp::worker_stats::turn_stream_out), 5u);
    EXPECT_EQ(dp::read(a_->ctr.p2c_pkts), 5u);
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("p2c stream");
}

TEST_F(TurnStreamOne, PeerToConnectionAsDataIndication)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    for (size_t n : {size_t{0}, size_t{3}, size_t{160}}) {
        const bytes data = pattern(n, 6);
        const txid_t tx = txid_of(*a_);
        inject(from(peer_p, rp_a(), data));
        settle();
        auto got = taken(0);
        ASSERT_EQ(got.size(), 1u) << n;
        EXPECT_EQ(got[0].first, token_a);
        expect_data_indication(got[0].second, peer_p.ep(), data, tx);
    }
    EXPECT_TRUE(sent_all().empty());
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(TurnStreamOne, BadFramesAreCountedDrops)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const bytes ok = channel_data(0x4001, pattern(8, 1));
    struct bad {
        const char* what;
        uint32_t token;
        uint16_t port;
        uint16_t iface;
        bytes frame;
        drop reason;
    };
    const std::vector<bad> cases = {
            {"stale token", dp::make_stream_token(0, 2, 7), rp_a(), 0, ok, drop::turn_no_alloc},
            {"another connection's token", token_b, rp_a(), 0, ok, drop::turn_no_alloc},
            {"no allocation on that port", token_a, static_cast<uint16_t>(rp_a() + 2), 0, ok,
             drop::turn_no_alloc},
            {"no such interface", token_a, rp_a(), 5, ok, drop::turn_no_alloc},
            {"too short", token_a, rp_a(), 0, bytes{0x40, 0x01}, drop::turn_malformed},
            {"length beyond the frame", token_a, rp_a(), 0,
             channel_data(0x4001, pattern(8, 1), 0, 9), drop::turn_malformed},
            {"unbound channel", token_a, rp_a(), 0, channel_data(0x4002, pattern(8, 1)),
             drop::turn_bad_channel},
            {"peer without permission", token_a, rp_a(), 0,
             send_indication(other.ip, other.port, pattern(8, 1)), drop::turn_no_permission},
            {"a Binding request is no Send", token_a, rp_a(), 0, binding_request(),
             drop::turn_malformed},
    };
    for (const bad& c : cases) {
        const uint64_t before = total_drops(), before_d = drops(c.reason);
        push(0, a_->owner, c.token, c.port, c.frame, c.iface);
        settle();
        EXPECT_TRUE(sent_all().empty()) << c.what;
        expect_only_drop(c.reason, before, before_d, c.what);
    }
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 0u);
}

TEST_F(TurnStreamOne, FullStreamRingIsACountedDrop)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    const unsigned cap = rte_ring_get_capacity(dp_->stream_out(a_->owner, 0));
    const unsigned n = cap + 50;
    for (unsigned i = 0; i < n; i++) {
        inject(from(peer_p, rp_a(), pattern(20, static_cast<uint8_t>(i))));
        if (i % 256 == 255)
            settle();
    }
    settle();
    EXPECT_EQ(taken(0).size(), cap);
    EXPECT_EQ(drops(drop::turn_stream_full), 50u);
    expect_accounted("stream ring full");
}

TEST_F(TurnStreamOne, DeletedAllocationRelaysNothing)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    push_a(channel_data(0x4001, pattern(8, 1)));
    settle();
    EXPECT_EQ(sent_all().size(), 1u);
    EXPECT_EQ(dp_->wk(0).turn_allocs.load(), 1u) << "a stream allocation is counted too";
    del_alloc(a_);
    settle();
    EXPECT_EQ(dp_->wk(0).turn_allocs.load(), 0u);
    push_a(channel_data(0x4001, pattern(8, 1)));
    inject(from(peer_p, rp_a(), pattern(8, 2)));
    settle();
    EXPECT_TRUE(sent_all().empty());
    EXPECT_TRUE(taken(0).empty());
    EXPECT_EQ(drops(drop::turn_no_alloc), 1u);
}

// A TCP client and a UDP client of this relay talk to each other's relayed
// address: both ways stay inside the box.
TEST_F(TurnStreamOne, HairpinBetweenConnectionAndUdpClient)
{
    const uint16_t rp_b = relay_port_on(0, static_cast<uint16_t>(rp_a() + 2));
    dp::turn_alloc* b = add_alloc(client2, rp_b);
    const dp::packed_ep relay_a = pep(relay_ip, rp_a()), relay_b = pep(relay_ip, rp_b);
    set_peers(a_, {{relay_ip, later()}}, {{0x4001, relay_b, later()}});
    set_peers(b, {{relay_ip, later()}}, {{0x4002, relay_a, later()}});

    const bytes d1 = pattern(30, 1);
    push_a(channel_data(0x4001, d1, 2));
    settle();
    auto out = sent_all();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(expect_out(out[0], turn_port, client2), channel_data(0x4002, d1));

    const bytes d2 = pattern(31, 2);
    inject(from(client2, turn_port, channel_data(0x4002, d2)));
    settle();
    EXPECT_TRUE(sent_all().empty());
    auto got = taken(0);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, token_a);
    EXPECT_FRAME(got[0].second, channel_data(0x4001, d2, 1));
    EXPECT_EQ(sum(&dp::worker_stats::turn_hairpin), 2u);
    EXPECT_EQ(total_drops(), 0u);
}

// Two workers: the stream thread puts the frame on the owner's ring; the
// answer comes back on the owner's ring for the connection's thread.
TEST_F(TurnStreamTwo, OwnerRingsBothWays)
{
    const unsigned ob = dp::owner_of_client(client2.ip_be(), client2.port_be(), 2);
    dp::turn_alloc* b =
            add_alloc(client2, relay_port_on(ob, static_cast<uint16_t>(rp_a() + 1)), token_b);
    set_peers(a_, {{peer_p.ip, later()}}, {});
    set_peers(b, {{peer_p.ip, later()}}, {});
    push_a(send_indication(peer_p.ip, peer_p.port, pattern(9, 1)));
    push(1, b->owner, token_b, rte_be_to_cpu_16(b->relay_port_be),
         send_indication(peer_p.ip, peer_p.port, pattern(9, 2)));
    settle();
    EXPECT_EQ(sent_all().size(), 2u);
    inject(from(peer_p, rte_be_to_cpu_16(b->relay_port_be), pattern(9, 3)));
    settle();
    EXPECT_TRUE(taken(0).empty());
    auto got = taken(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, token_b);
    EXPECT_EQ(total_drops(), 0u);
}
