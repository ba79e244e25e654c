// TURN over UDP (RFC 8656) through the real worker loop over net_ring ports.
// Allocations are installed the way control installs them: a flow_cmd
// (add_alloc, set_alloc_peers, del_alloc) on the owner's command ring,
// acknowledged on its completion ring. Frames go in on the ring port, the
// workers are stepped with poll_once(), and what comes out is checked byte for
// byte (addresses, ports, TURN framing) with checksums verified by a plain
// software sum (tests/support/packet_builder).
//
// The dataplane here is built directly (tests/dataplane/turn_fixture.h).
// Hairpins, two workers and bursts of mixed traffic are in
// test_turn_relay_multi.cc.
#include "tests/dataplane/turn_fixture.h"
#include "tests/dataplane/v6_frames.h"
#include "dataplane/dataplane.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"
#include "tests/support/ring_port.h"
#include "turn/stun.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <string>
#include <vector>

ISAR_TEST_EAL_ENV("test_turn_relay");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

using namespace isar::test::turn_fixture;

// One allocation: client1 on relay port 30010 with a permission for P.
class TurnOne : public TurnRelay {
protected:
    void SetUp() override
    {
        start(1);
        a_ = add_alloc(client1, rp_);
    }
    dp::turn_alloc* a_ = nullptr;
    const uint16_t rp_ = 30010;
};

} // namespace

// ---- 1. ChannelData from the client -------------------------------------------

TEST_F(TurnOne, ChannelDataToPeer)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const bytes data = pattern(37, 1);
    // Padding to 4 bytes after the data (optional over UDP) is not relayed.
    auto out = roundtrip(from(client1, turn_port, channel_data(0x4001, data, 3)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, peer_p, data));
    EXPECT_EQ(expect_out(out[0], rp_, peer_p), data);

    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 1u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_bytes), data.size());
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 0u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_c2p_pkts), 1u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 1u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_p2c_pkts), 0u);
    EXPECT_EQ(sum(&dp::worker_stats::tx_pkts), 1u);
    EXPECT_EQ(total_drops(), 0u);
    EXPECT_NE(a_->last_seen_tsc, 0u);

    // Without padding, and a one-byte and an empty payload.
    for (size_t n : {size_t{4}, size_t{1}, size_t{0}}) {
        const bytes d = pattern(n, 9);
        out = roundtrip(from(client1, turn_port, channel_data(0x4001, d)));
        ASSERT_EQ(out.size(), 1u) << n;
        EXPECT_FRAME(out[0], expected(rp_, peer_p, d));
    }
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 4u);
    expect_accounted("channel data");
}

// coturn binds numbers up to 0x7ffe (RFC 5766's range).
TEST_F(TurnOne, ChannelDataHighChannelNumber)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x7ffe, peer_p.ep(), later()}});
    const bytes data = pattern(20, 2);
    auto out = roundtrip(from(client1, turn_port, channel_data(0x7ffe, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, peer_p, data));
}

// ---- 2. Send indication --------------------------------------------------------

TEST_F(TurnOne, SendIndicationToPeer)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    for (size_t n : {size_t{33}, size_t{32}, size_t{1}}) {
        const bytes data = pattern(n, 3);
        auto out = roundtrip(from(client1, turn_port, send_indication(peer_p.ip, peer_p.port, data)));
        ASSERT_EQ(out.size(), 1u) << n;
        EXPECT_FRAME(out[0], expected(rp_, peer_p, data));
        EXPECT_EQ(expect_out(out[0], rp_, peer_p), data) << "the DATA value only";
    }
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 3u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_bytes), 33u + 32 + 1);
    EXPECT_EQ(sum(&dp::worker_stats::turn_c2p_pkts), 3u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 0u);
    EXPECT_EQ(total_drops(), 0u);

    // The permission is by IP address: any port of P may be sent to.
    const bytes data = pattern(8, 4);
    host p2 = peer_p;
    p2.port = 7777;
    auto out = roundtrip(from(client1, turn_port, send_indication(p2.ip, p2.port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FRAME(out[0], expected(rp_, p2, data));
    expect_accounted("send");
}

// ---- 3. Peer to client ----------------------------------------------------------

TEST_F(TurnOne, PeerToClientAsChannelData)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    for (size_t n : {size_t{160}, size_t{5}}) {
        const bytes data = pattern(n, 5);
        auto out = roundtrip(from(peer_p, rp_, data));
        ASSERT_EQ(out.size(), 1u) << n;
        // From the listener address to the client: 4-byte header, then the data.
        const bytes want = channel_data(0x4001, data);
        EXPECT_FRAME(out[0], expected(turn_port, client1, want));
        const bytes p = expect_out(out[0], turn_port, client1);
        ASSERT_GE(p.size(), 4u);
        EXPECT_EQ(be16_at(p, 0), 0x4001);
        EXPECT_EQ(be16_at(p, 2), n);
    }
    EXPECT_EQ(dp::read(a_->ctr.p2c_pkts), 2u);
    EXPECT_EQ(dp::read(a_->ctr.p2c_bytes), 165u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_p2c_pkts), 2u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 2u);

    // From another port of P (no channel for that 5-tuple): a Data indication.
    host p2 = peer_p;
    p2.port = 7001;
    const bytes data = pattern(10, 6);
    const txid_t tx = txid_of(*a_);
    auto out = roundtrip(from(p2, rp_, data));
    ASSERT_EQ(out.size(), 1u);
    expect_data_indication(expect_out(out[0], turn_port, client1), p2.ep(), data, tx);
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("p2c channel");
}

TEST_F(TurnOne, PeerToClientAsDataIndication)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    // Every padding length, and payloads that look like STUN, DTLS, RTP.
    std::vector<bytes> payloads;
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}, size_t{172}})
        payloads.push_back(pattern(n, static_cast<uint8_t>(n)));
    payloads.push_back(binding_request());
    payloads.push_back(bytes{22, 0xfe, 0xfd, 0, 0, 0, 0});
    payloads.push_back(bytes{});
    uint64_t bytes_in = 0;
    for (const bytes& data : payloads) {
        const txid_t tx = txid_of(*a_);
        auto out = roundtrip(from(peer_p, rp_, data));
        ASSERT_EQ(out.size(), 1u) << hex(data);
        const bytes p = expect_out(out[0], turn_port, client1);
        expect_data_indication(p, peer_p.ep(), data, tx);
        // And byte for byte: the header the codec writes, data, zeros.
        bytes want(turn::data_indication_overhead(4));
        turn::write_data_indication_header(want.data(), turn::transport_addr::v4(peer_p.ip_be(), peer_p.port),
                                           static_cast<uint16_t>(data.size()), tx.data());
        want.insert(want.end(), data.begin(), data.end());
        want.resize(want.size() + turn::pad4(data.size()), 0);
        EXPECT_FRAME(out[0], expected(turn_port, client1, want));
        bytes_in += data.size();
    }
    EXPECT_EQ(dp::read(a_->ctr.p2c_pkts), payloads.size());
    EXPECT_EQ(dp::read(a_->ctr.p2c_bytes), bytes_in);
    EXPECT_EQ(sum(&dp::worker_stats::turn_p2c_pkts), payloads.size());
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 0u);
    EXPECT_EQ(total_drops(), 0u);
    expect_accounted("data indication");
}

// ---- 4. Drops and their reasons --------------------------------------------------

TEST_F(TurnOne, NoPermissionClientToPeer)
{
    // A channel to P, but the permission is for someone else.
    set_peers(a_, {{other.ip + 1, later()}}, {{0x4001, peer_p.ep(), later()}});
    uint64_t t0 = total_drops(), d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(8, 1)))).empty());
    expect_only_drop(drop::turn_no_permission, t0, d0, "channel data");
    t0 = total_drops();
    d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, send_indication(peer_p.ip, peer_p.port, pattern(8, 1))))
                        .empty());
    expect_only_drop(drop::turn_no_permission, t0, d0, "send indication");
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 2u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 0u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_c2p_pkts), 0u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 0u) << "a dropped ChannelData is not relayed";
    expect_accounted("no permission c2p");
}

TEST_F(TurnOne, NoPermissionPeerToClient)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from(other, rp_, pattern(20, 1))).empty());
    expect_only_drop(drop::turn_no_permission, t0, d0, "unpermitted peer");
    EXPECT_EQ(dp::read(a_->ctr.p2c_drops), 1u);
    EXPECT_EQ(dp::read(a_->ctr.p2c_pkts), 0u);
    // A channel without a permission for its peer is no permission either.
    set_peers(a_, {}, {{0x4001, peer_p.ep(), later()}});
    EXPECT_TRUE(roundtrip(from(peer_p, rp_, pattern(20, 1))).empty());
    EXPECT_EQ(drops(drop::turn_no_permission) - d0, 2u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_p2c_pkts), 0u);
    expect_accounted("no permission p2c");
}

TEST_F(TurnOne, ExpiredPermission)
{
    set_peers(a_, {{peer_p.ip, expired}}, {{0x4001, peer_p.ep(), later()}});
    const uint64_t d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(8, 1)))).empty());
    EXPECT_TRUE(roundtrip(from(client1, turn_port, send_indication(peer_p.ip, peer_p.port, pattern(8, 1))))
                        .empty());
    EXPECT_TRUE(roundtrip(from(peer_p, rp_, pattern(8, 1))).empty());
    EXPECT_EQ(drops(drop::turn_no_permission) - d0, 3u);
    EXPECT_EQ(total_drops(), 3u);
    // Refreshed: the same traffic flows.
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    EXPECT_EQ(roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(8, 1)))).size(), 1u);
    EXPECT_EQ(roundtrip(from(peer_p, rp_, pattern(8, 1))).size(), 1u);
    EXPECT_EQ(total_drops(), 3u);
    expect_accounted("expired");
}

TEST_F(TurnOne, UnboundOrExpiredChannel)
{
    set_peers(a_, {{peer_p.ip, later()}},
              {{0x4001, peer_p.ep(), later()}, {0x4003, peer_p.ep(), expired}});
    uint64_t t0 = total_drops(), d0 = drops(drop::turn_bad_channel);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4002, pattern(8, 1)))).empty());
    expect_only_drop(drop::turn_bad_channel, t0, d0, "unbound channel");
    t0 = total_drops();
    d0 = drops(drop::turn_bad_channel);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4003, pattern(8, 1)))).empty());
    expect_only_drop(drop::turn_bad_channel, t0, d0, "expired channel");
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 2u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_channel_data), 0u);
    expect_accounted("bad channel");
}

TEST_F(TurnOne, MalformedChannelData)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_malformed);
    // Length field one past the datagram.
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(8, 1), 0, 9))).empty());
    expect_only_drop(drop::turn_malformed, t0, d0, "length > datagram");
    EXPECT_TRUE(roundtrip(from(client1, turn_port, channel_data(0x4001, {}, 0, 0xffff))).empty());
    EXPECT_EQ(drops(drop::turn_malformed) - d0, 2u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 2u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_c2p_pkts), 0u);
    expect_accounted("malformed channel data");
}

TEST_F(TurnOne, TruncatedSendIndication)
{
    set_peers(a_, {{peer_p.ip, later()}}, {});
    // The DATA attribute claims 100 bytes more than the message holds.
    bytes si = send_indication(peer_p.ip, peer_p.port, pattern(12, 1));
    const size_t data_attr = si.size() - 4 - 12;
    ASSERT_EQ(be16_at(si, data_attr), turn::attr::data);
    si[data_attr + 3] = static_cast<uint8_t>(12 + 100);
    uint64_t t0 = total_drops(), d0 = drops(drop::turn_malformed);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, si)).empty());
    expect_only_drop(drop::turn_malformed, t0, d0, "DATA past the message");
    // XOR-PEER-ADDRESS cut short (4 of its 8 value bytes).
    bytes si2 = send_indication(peer_p.ip, peer_p.port, pattern(12, 1));
    ASSERT_EQ(be16_at(si2, 20), turn::attr::xor_peer_address);
    si2[23] = 4;
    t0 = total_drops();
    d0 = drops(drop::turn_malformed);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, si2)).empty());
    expect_only_drop(drop::turn_malformed, t0, d0, "short XOR-PEER-ADDRESS");
    // Message length field past the datagram.
    bytes si3 = send_indication(peer_p.ip, peer_p.port, pattern(12, 1));
    si3.resize(si3.size() - 4);
    t0 = total_drops();
    d0 = drops(drop::turn_malformed);
    EXPECT_TRUE(roundtrip(from(client1, turn_port, si3)).empty());
    expect_only_drop(drop::turn_malformed, t0, d0, "message past the datagram");
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 3u);
    expect_accounted("truncated send");
}

TEST_F(TurnOne, ClientWithoutAllocation)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const uint64_t d0 = drops(drop::turn_no_alloc);
    // Another client, and client1 from another port (another 5-tuple).
    host c1b = client1;
    c1b.port = static_cast<uint16_t>(client1.port + 1);
    for (const host* h : std::initializer_list<const host*>{&client2, &c1b}) {
        EXPECT_TRUE(roundtrip(from(*h, turn_port, channel_data(0x4001, pattern(8, 1)))).empty());
        EXPECT_TRUE(roundtrip(from(*h, turn_port, send_indication(peer_p.ip, peer_p.port, pattern(8, 1))))
                            .empty());
    }
    EXPECT_EQ(drops(drop::turn_no_alloc) - d0, 4u);
    EXPECT_EQ(total_drops(), 4u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 0u) << "not the allocation's drops";
    expect_accounted("no alloc");
}

TEST_F(TurnOne, RelaySourceFromTheWireIsSpoofed)
{
    // Even with a permission for the relay's own address (as for a hairpin).
    set_peers(a_, {{relay_ip, later()}, {peer_p.ip, later()}}, {});
    const host spoof{relay_ip, 30020, mac(0x99, 0x99)};
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_spoofed);
    EXPECT_TRUE(roundtrip(from(spoof, rp_, pattern(16, 1))).empty());
    expect_only_drop(drop::turn_spoofed, t0, d0, "relay source from the wire");
    EXPECT_EQ(dp::read(a_->ctr.p2c_drops), 1u);
    EXPECT_EQ(sum(&dp::worker_stats::turn_p2c_pkts), 0u);
    expect_accounted("spoofed");
}

TEST_F(TurnOne, NonStunToListenerIsMalformed)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const uint64_t d0 = drops(drop::turn_malformed);
    const std::vector<bytes> junk = {
            pattern(40, 1),                 // RTP-like
            bytes{22, 0xfe, 0xfd, 0, 0, 1}, // DTLS
            bytes{0xc0, 1, 2, 3, 4},        // top bits 11
            bytes{0x40, 0x01, 0x00},        // 3 bytes: too short for ChannelData
            bytes{},                        // empty
    };
    for (const bytes& j : junk)
        EXPECT_TRUE(roundtrip(from(client1, turn_port, j)).empty()) << hex(j);
    EXPECT_EQ(drops(drop::turn_malformed) - d0, junk.size());
    EXPECT_EQ(total_drops(), junk.size());
    EXPECT_EQ(sum(&dp::worker_stats::turn_requests), 0u);
    expect_accounted("junk");
}

TEST_F(TurnOne, BindingRequestGoesToTurnRing)
{
    const bytes req = binding_request();
    const bytes f = from(client2, turn_port, req);
    EXPECT_TRUE(roundtrip(f).empty());
    EXPECT_EQ(sum(&dp::worker_stats::turn_requests), 1u);
    EXPECT_EQ(total_drops(), 0u);
    EXPECT_EQ(rte_ring_count(dp_->wk(0).exc_ring), 0u) << "not the exception ring";
    ASSERT_EQ(rte_ring_count(dp_->wk(0).turn_ring), 1u);
    void* obj = nullptr;
    ASSERT_EQ(rte_ring_dequeue(dp_->wk(0).turn_ring, &obj), 0);
    auto* m = static_cast<rte_mbuf*>(obj);
    EXPECT_EQ(m->hash.usr, static_cast<uint32_t>(dp::exc_kind::turn));
    EXPECT_FRAME(mbuf_bytes(m), f);
    rte_pktmbuf_free(m);
    // A request from a client that has an allocation goes the same way.
    EXPECT_TRUE(roundtrip(from(client1, turn_port, req)).empty());
    rte_mbuf* got[4];
    ASSERT_EQ(dp_->poll_turn(got, 4), 1u);
    EXPECT_FRAME(mbuf_bytes(got[0]), from(client1, turn_port, req));
    rte_pktmbuf_free(got[0]);
    EXPECT_EQ(sum(&dp::worker_stats::turn_requests), 2u);
    expect_accounted("binding");
}

// ---- 5. del_alloc --------------------------------------------------------------------

TEST_F(TurnOne, DeleteStopsRelaying)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    const bytes cd = from(client1, turn_port, channel_data(0x4001, pattern(20, 1)));
    const bytes si = from(client1, turn_port, send_indication(peer_p.ip, peer_p.port, pattern(20, 2)));
    const bytes pk = from(peer_p, rp_, rtp(7, 0x777, 60)); // RTP-looking: no_flow once gone
    EXPECT_EQ(roundtrip(cd).size(), 1u);
    EXPECT_EQ(roundtrip(si).size(), 1u);
    EXPECT_EQ(roundtrip(pk).size(), 1u);
    EXPECT_EQ(dp_->wk(0).flows.size(), 1u);
    EXPECT_EQ(dp_->wk(0).turn_clients.size(), 1u);
    EXPECT_EQ(dp_->wk(0).turn_allocs.load(), 1u);

    del_alloc(a_);
    EXPECT_EQ(dp_->wk(0).flows.size(), 0u);
    EXPECT_EQ(dp_->wk(0).turn_clients.size(), 0u);
    EXPECT_EQ(dp_->wk(0).turn_allocs.load(), 0u);
    const uint64_t c2p = dp::read(a_->ctr.c2p_pkts), p2c = dp::read(a_->ctr.p2c_pkts);
    EXPECT_TRUE(roundtrip(cd).empty());
    EXPECT_TRUE(roundtrip(si).empty());
    EXPECT_TRUE(roundtrip(pk).empty());
    EXPECT_EQ(drops(drop::turn_no_alloc), 2u);
    EXPECT_EQ(drops(drop::no_flow), 1u);
    EXPECT_EQ(total_drops(), 3u);
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), c2p) << "the freed allocation is not touched";
    EXPECT_EQ(dp::read(a_->ctr.p2c_pkts), p2c);
    EXPECT_EQ(dp::read(a_->ctr.c2p_drops), 0u);
    // Many more, then the pool is back to its baseline.
    for (unsigned i = 0; i < 100; i++) {
        inject(cd);
        inject(pk);
    }
    settle();
    EXPECT_TRUE(sent_all().empty());
    EXPECT_EQ(drops(drop::turn_no_alloc), 102u);
    EXPECT_EQ(drops(drop::no_flow), 101u);
    EXPECT_EQ(dp_->mbufs_in_use(), baseline_) << "mbuf leak";
    // Installed again, it works again.
    dp::flow_cmd c;
    c.op = dp::cmd_op::add_alloc;
    c.alloc = a_;
    EXPECT_EQ(run(c), 0);
    EXPECT_EQ(roundtrip(cd).size(), 1u);
    expect_accounted("delete");
}

TEST_F(TurnOne, AddTwiceIsRefused)
{
    dp::flow_cmd c;
    c.op = dp::cmd_op::add_alloc;
    c.alloc = a_;
    EXPECT_EQ(run(c), -EEXIST);
    // Same client 5-tuple on another relayed port: refused, and the port is
    // left free (the flow-table insert is undone).
    auto b = std::make_unique<dp::turn_alloc>();
    b->client = a_->client;
    b->listen_ip_be = a_->listen_ip_be;
    b->listen_port_be = a_->listen_port_be;
    b->iface = a_->iface;
    b->relay_ip_be = a_->relay_ip_be;
    b->relay_port_be = rte_cpu_to_be_16(30012);
    b->owner = a_->owner;
    c.alloc = b.get();
    EXPECT_EQ(run(c), -EEXIST);
    EXPECT_EQ(dp_->wk(0).flows.size(), 1u);
    EXPECT_EQ(dp_->wk(0).turn_clients.size(), 1u);
    // The original is intact.
    set_peers(a_, {{peer_p.ip, later()}}, {});
    EXPECT_EQ(roundtrip(from(peer_p, rp_, pattern(4, 1))).size(), 1u);
}

// ---- IPv6 clients ------------------------------------------------------------

namespace {
class TurnV6Client : public TurnOne {
protected:
    void SetUp() override
    {
        v6_slot_ = true;
        TurnOne::SetUp();
    }
};
} // namespace

// A UDP client over IPv6 has no allocation in the dataplane yet: its
// ChannelData is turn_no_alloc, never relayed through an IPv4 client's
// allocation, even when its IPv6 header holds that client's address where
// an IPv4 header has its source (bytes 12-15) and it sends from its port.
TEST_F(TurnV6Client, NeverMatchesAnIpv4ClientsAllocation)
{
    set_peers(a_, {{peer_p.ip, later()}}, {{0x4001, peer_p.ep(), later()}});
    udp6_spec s;
    s.src_mac = client1.mac;
    s.dst_mac = dp_->ifc(0).mac;
    s.src = relay_ip6();
    s.src.b[15] = 0x50;
    const uint32_t c1 = client1.ip_be();
    std::memcpy(s.src.b + 4, &c1, 4); // IPv6 header bytes 12-15
    s.dst = relay_ip6();
    s.src_port = client1.port;
    s.dst_port = turn_port;
    s.payload = channel_data(0x4001, pattern(8, 1));
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_no_alloc);
    EXPECT_TRUE(roundtrip(build(s)).empty());
    expect_only_drop(drop::turn_no_alloc, t0, d0, "IPv6 client");
    EXPECT_EQ(dp::read(a_->ctr.c2p_pkts), 0u);
    // The IPv4 client itself still gets through.
    EXPECT_EQ(roundtrip(from(client1, turn_port, channel_data(0x4001, pattern(8, 1)))).size(), 1u);
    expect_accounted("IPv6 client");
}
