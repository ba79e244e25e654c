// TURN over IPv6 through the real worker loop (RFC 8656 §§ 7-12): IPv6
// clients, IPv6 relayed addresses and peers, dual allocations, IPv6
// permissions, the IPv6 client key and hairpins between IPv6 relayed
// addresses. The interface has 198.18.0.1/24 (slot 0) and 2001:2::1/64
// (slot 1). Checksums are verified by the test's own sums (v6_frames.h,
// packet_builder).
#include "tests/dataplane/turn_fixture.h"
#include "tests/dataplane/v6_frames.h"
#include "tests/support/eal_env.h"

ISAR_TEST_EAL_ENV("test_turn_relay6");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

using namespace isar::test::turn_fixture;

constexpr uint16_t slot4 = 0, slot6 = 1;

const rte_ether_addr client6_mac = mac(0x50, 6);
const rte_ether_addr peer6_mac = mac(0x30, 6);
const uint16_t client6_port = 40000;
const uint16_t peer6_port = 7000;

class TurnV6 : public TurnRelay {
protected:
    void SetUp() override { up(1); }
    void up(unsigned nworkers)
    {
        v6_slot_ = true;
        start(nworkers);
        c6_ = ip6("2001:2::50");
        p6_ = ip6("2001:2::30");
        ASSERT_TRUE(dp_->ifc(0).neigh->update6(c6_, client6_mac));
        ASSERT_TRUE(dp_->ifc(0).neigh->update6(p6_, peer6_mac));
    }

    // An allocation: client (IPv6 c6_ when v6client, else client1), its
    // relayed address on `rslot` port rp, and when rp2 != 0 a second (IPv6)
    // relayed address on slot6.
    dp::turn_alloc* alloc(bool v6client, uint16_t rslot, uint16_t rp, uint16_t rp2 = 0,
                          const dp::ip6_addr* cl = nullptr, uint16_t cport = client6_port)
    {
        auto a = std::make_unique<dp::turn_alloc>();
        const dp::ip6_addr c = cl != nullptr ? *cl : c6_;
        if (v6client) {
            a->client6 = c;
            a->client = dp::pack_ep6(c, rte_cpu_to_be_16(cport));
            a->listen_laddr = slot6;
            a->owner = dp::owner_of_client(c.fold32(), rte_cpu_to_be_16(cport), nworkers_);
        } else {
            a->client = client1.ep();
            a->listen_ip_be = rte_cpu_to_be_32(relay_ip);
            a->owner = dp::owner_of_client(client1.ip_be(), client1.port_be(), nworkers_);
        }
        EXPECT_EQ(dp::owner_of_port(rp, nworkers_), a->owner) << "test bug: relay port";
        a->listen_port_be = rte_cpu_to_be_16(turn_port);
        a->iface = 0;
        a->relay_laddr = rslot;
        a->relay_ip_be = rslot == slot4 ? rte_cpu_to_be_32(relay_ip) : 0;
        a->relay_port_be = rte_cpu_to_be_16(rp);
        if (rp2 != 0) {
            a->relay2_laddr = slot6;
            a->relay2_port_be = rte_cpu_to_be_16(rp2);
        }
        return add_alloc_raw(std::move(a));
    }

    bytes v6_frame(const dp::ip6_addr& src, uint16_t sport, const rte_ether_addr& smac,
                   uint16_t dport, const bytes& payload) const
    {
        udp6_spec s;
        s.src_mac = smac;
        s.dst_mac = dp_->ifc(0).mac;
        s.src = src;
        s.dst = relay_ip6();
        s.src_port = sport;
        s.dst_port = dport;
        s.hop_limit = 50;
        s.payload = payload;
        return build(s);
    }
    bytes from_c6(const bytes& p) const
    {
        return v6_frame(c6_, client6_port, client6_mac, turn_port, p);
    }
    bytes from_p6(uint16_t rp, const bytes& p) const
    {
        return v6_frame(p6_, peer6_port, peer6_mac, rp, p);
    }
    // The frame the relay must send from 2001:2::1:sport to (dst, dport).
    bytes expected6(uint16_t sport, const dp::ip6_addr& dst, uint16_t dport,
                    const rte_ether_addr& dmac, const bytes& payload, uint8_t tc = 0) const
    {
        udp6_spec s;
        s.src_mac = dp_->ifc(0).mac;
        s.dst_mac = dmac;
        s.src = relay_ip6();
        s.dst = dst;
        s.src_port = sport;
        s.dst_port = dport;
        s.tc = tc;
        s.hop_limit = 64;
        s.payload = payload;
        return build(s);
    }
    bytes send6(const dp::ip6_addr& peer, uint16_t port, const bytes& data) const
    {
        bytes buf(2048);
        turn::builder b(buf.data(), buf.size(), turn::send_indication_type, test_txid);
        b.add_xor_address(turn::attr::xor_peer_address, turn::transport_addr::v6(peer.b, port));
        b.add(turn::attr::data, data.data(), data.size());
        EXPECT_TRUE(b.ok());
        buf.resize(b.size());
        return buf;
    }
    // A Data indication whose XOR-PEER-ADDRESS is [peer]:port; returns DATA.
    bytes data_ind6(const bytes& p, const dp::ip6_addr& peer, uint16_t port)
    {
        EXPECT_EQ(p.size() % 4, 0u);
        turn::message m;
        EXPECT_EQ(turn::parse(p.data(), p.size(), m), turn::parse_status::ok);
        EXPECT_EQ(m.type, turn::data_indication_type);
        const turn::attr_view* xa = m.find(turn::attr::xor_peer_address);
        const turn::attr_view* d = m.find(turn::attr::data);
        if (xa == nullptr || d == nullptr) {
            ADD_FAILURE() << "attributes missing";
            return {};
        }
        turn::transport_addr pa;
        EXPECT_TRUE(turn::read_xor_address(m, *xa, pa));
        EXPECT_EQ(pa.family, 6);
        EXPECT_EQ(std::memcmp(pa.ip, peer.b, 16), 0);
        EXPECT_EQ(pa.port, port);
        EXPECT_EQ(p.size(), turn::data_indication_overhead(6) + d->len + turn::pad4(d->len));
        return bytes(d->value, d->value + d->len);
    }
    static bytes udp6_payload(const bytes& f)
    {
        return f.size() >= 62 ? bytes(f.begin() + 62, f.end()) : bytes{};
    }

    dp::ip6_addr c6_{}, p6_{};
};

} // namespace

// IPv6 client, IPv4 relayed address, IPv4 peer: ChannelData out as IPv4,
// the peer's answer back to the client over IPv6 from the listener.
TEST_F(TurnV6, V6ClientV4Peer)
{
    dp::turn_alloc* a = alloc(true, slot4, 30010);
    set_peers6(a, {{peer_p.ip, later()}}, {}, {{0x4001, peer_p.ep(), later()}}, {});
    const bytes data = pattern(37, 1);
    auto out = roundtrip(from_c6(channel_data(0x4001, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(expect_out(out[0], 30010, peer_p), data);
    // Send indication too.
    out = roundtrip(from_c6(send_indication(peer_p.ip, peer_p.port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(expect_out(out[0], 30010, peer_p), data);
    // Back: ChannelData to [2001:2::50]:40000 from [2001:2::1]:3478.
    out = roundtrip(from(peer_p, 30010, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(turn_port, c6_, client6_port, client6_mac,
                                channel_data(0x4001, data), 0xb8));
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    EXPECT_EQ(dp::read(a->ctr.c2p_pkts), 2u);
    EXPECT_EQ(dp::read(a->ctr.p2c_pkts), 1u);
    expect_accounted("v6 client");
}

// IPv6 client, IPv6 relayed address, IPv6 peer: byte-exact both ways.
TEST_F(TurnV6, V6ClientV6Peer)
{
    dp::turn_alloc* a = alloc(true, slot6, 30012);
    set_peers6(a, {}, {p6_}, {}, {{0x4002, p6_, peer6_port}});
    const bytes data = pattern(21, 2);
    auto out = roundtrip(from_c6(channel_data(0x4002, data, 3)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(30012, p6_, peer6_port, peer6_mac, data));
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    out = roundtrip(from_c6(send6(p6_, peer6_port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(30012, p6_, peer6_port, peer6_mac, data));
    out = roundtrip(from_p6(30012, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0],
              expected6(turn_port, c6_, client6_port, client6_mac, channel_data(0x4002, data)));
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    // Without a channel from this port: a Data indication with an IPv6 peer.
    out = roundtrip(v6_frame(p6_, 7001, peer6_mac, 30012, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    EXPECT_EQ(data_ind6(udp6_payload(out[0]), p6_, 7001), data);
    expect_accounted("v6 v6");
}

// IPv4 client, IPv6 relayed address and peer.
TEST_F(TurnV6, V4ClientV6Peer)
{
    dp::turn_alloc* a = alloc(false, slot6, 30014);
    set_peers6(a, {}, {p6_}, {}, {});
    const bytes data = pattern(30, 3);
    auto out = roundtrip(from(client1, turn_port, send6(p6_, peer6_port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(30014, p6_, peer6_port, peer6_mac, data, 0xb8));
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    out = roundtrip(from_p6(30014, data));
    ASSERT_EQ(out.size(), 1u);
    const bytes p = expect_out(out[0], turn_port, client1);
    EXPECT_EQ(data_ind6(p, p6_, peer6_port), data);
    expect_accounted("v4 client v6 peer");
}

// Dual allocation: the IPv4 peer is served from the IPv4 relayed address,
// the IPv6 peer from the IPv6 one; both relayed to the client.
TEST_F(TurnV6, DualAllocation)
{
    dp::turn_alloc* a = alloc(false, slot4, 30016, 30018);
    set_peers6(a, {{peer_p.ip, later()}}, {p6_}, {}, {});
    const bytes data = pattern(16, 4);
    auto out = roundtrip(from(client1, turn_port, send_indication(peer_p.ip, peer_p.port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(expect_out(out[0], 30016, peer_p), data);
    out = roundtrip(from(client1, turn_port, send6(p6_, peer6_port, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(30018, p6_, peer6_port, peer6_mac, data, 0xb8));
    out = roundtrip(from_p6(30018, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(data_ind6(expect_out(out[0], turn_port, client1), p6_, peer6_port), data);
    const txid_t tx = txid_of(*a);
    out = roundtrip(from(peer_p, 30016, data));
    ASSERT_EQ(out.size(), 1u);
    expect_data_indication(expect_out(out[0], turn_port, client1), peer_p.ep(), data, tx);
    EXPECT_EQ(dp::read(a->ctr.p2c_pkts), 2u);
    // Deleting removes both flow entries.
    del_alloc(a);
    const uint64_t t0 = total_drops();
    EXPECT_TRUE(roundtrip(from_p6(30018, data)).empty());
    EXPECT_TRUE(roundtrip(from(peer_p, 30016, data)).empty());
    EXPECT_EQ(total_drops() - t0, 2u);
    expect_accounted("dual");
}

// An IPv6 peer without an IPv6 permission: dropped both ways, even with an
// IPv4 permission whose bytes equal its fold.
TEST_F(TurnV6, NoPermission6)
{
    dp::turn_alloc* a = alloc(true, slot6, 30020);
    set_peers6(a, {{peer_p.ip, later()}}, {ip6("2001:2::31")}, {}, {});
    const bytes data = pattern(12, 5);
    uint64_t t0 = total_drops(), d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from_p6(30020, data)).empty());
    expect_only_drop(drop::turn_no_permission, t0, d0, "peer -> client");
    t0 = total_drops(), d0 = drops(drop::turn_no_permission);
    EXPECT_TRUE(roundtrip(from_c6(send6(p6_, peer6_port, data))).empty());
    expect_only_drop(drop::turn_no_permission, t0, d0, "client -> peer");
    EXPECT_EQ(dp::read(a->ctr.p2c_drops), 1u);
    EXPECT_EQ(dp::read(a->ctr.c2p_drops), 1u);
    expect_accounted("no permission");
}

// The IPv6 client key: never equal to an IPv4 client's with the same
// digest, and a colliding fold32 finds the allocation but is refused.
TEST_F(TurnV6, ClientKey)
{
    dp::turn_alloc* a = alloc(true, slot4, 30022);
    set_peers6(a, {{peer_p.ip, later()}}, {}, {{0x4001, peer_p.ep(), later()}}, {});
    const dp::turn_client_key k6 = dp::client_key_of(*a);
    dp::turn_alloc v4;
    v4.client = dp::pack_ep(c6_.fold32(), rte_cpu_to_be_16(client6_port));
    v4.listen_port_be = a->listen_port_be;
    const dp::turn_client_key k4 = dp::client_key_of(v4);
    EXPECT_EQ(k4.ip_be, k6.ip_be);
    EXPECT_NE(std::memcmp(&k4, &k6, sizeof(k4)), 0);
    // An IPv4 client whose address is the fold: no allocation.
    const uint32_t fold_host = rte_be_to_cpu_32(c6_.fold32());
    uint64_t t0 = total_drops(), d0 = drops(drop::turn_no_alloc);
    dp_->ifc(0).neigh->update(c6_.fold32(), client6_mac);
    EXPECT_TRUE(roundtrip(frame_from(fold_host, client6_port, client6_mac, turn_port,
                                     channel_data(0x4001, pattern(8, 1))))
                        .empty());
    expect_only_drop(drop::turn_no_alloc, t0, d0, "v4 client with the fold");
    // Another IPv6 address with the same fold32 (two words swapped).
    dp::ip6_addr col = c6_;
    std::swap_ranges(col.b, col.b + 4, col.b + 12);
    ASSERT_FALSE(col == c6_);
    ASSERT_EQ(col.fold32(), c6_.fold32());
    t0 = total_drops(), d0 = drops(drop::turn_no_alloc);
    EXPECT_TRUE(roundtrip(v6_frame(col, client6_port, client6_mac, turn_port,
                                   channel_data(0x4001, pattern(8, 1))))
                        .empty());
    expect_only_drop(drop::turn_no_alloc, t0, d0, "colliding fold");
    EXPECT_EQ(dp::read(a->ctr.c2p_pkts), 0u);
    // The real client still gets through.
    EXPECT_EQ(roundtrip(from_c6(channel_data(0x4001, pattern(8, 1)))).size(), 1u);
    expect_accounted("client key");
}

// Two allocations with IPv6 relayed addresses: A's client sends to B's
// relayed address; B's client gets it as a Data indication from A's.
TEST_F(TurnV6, Hairpin6)
{
    const dp::ip6_addr c2 = ip6("2001:2::51");
    ASSERT_TRUE(dp_->ifc(0).neigh->update6(c2, mac(0x51, 6)));
    dp::turn_alloc* a = alloc(true, slot6, 30024);
    dp::turn_alloc* b = alloc(true, slot6, 30026, 0, &c2, 41000);
    set_peers6(a, {}, {relay_ip6()}, {}, {});
    set_peers6(b, {}, {relay_ip6()}, {}, {});
    const bytes data = pattern(20, 6);
    auto out = roundtrip(from_c6(send6(relay_ip6(), 30026, data)));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_GE(out[0].size(), 62u);
    EXPECT_TRUE(udp6_cksum_ok(out[0]));
    EXPECT_EQ(std::memcmp(&out[0][38], c2.b, 16), 0) << "to B's client";
    EXPECT_EQ(data_ind6(udp6_payload(out[0]), relay_ip6(), 30024), data);
    EXPECT_EQ(sum(&dp::worker_stats::turn_hairpin), 1u);
    // Spoofed: a packet from the wire with our own IPv6 address as source.
    const uint64_t t0 = total_drops(), d0 = drops(drop::turn_spoofed);
    EXPECT_TRUE(roundtrip(v6_frame(relay_ip6(), 30024, peer6_mac, 30026, data)).empty());
    expect_only_drop(drop::turn_spoofed, t0, d0, "own source");
    expect_accounted("hairpin6");
}

// Two workers: an IPv6 client's packets reach the owner classify picks from
// the fold of its address (as control picks it), both ways.
class TurnV6Two : public TurnV6 {
protected:
    void SetUp() override { up(2); }
};

TEST_F(TurnV6Two, OwnerOfV6Client)
{
    const unsigned w = dp::owner_of_client(c6_.fold32(), rte_cpu_to_be_16(client6_port), 2);
    const uint16_t rp = relay_port_on(w);
    dp::turn_alloc* a = alloc(true, slot6, rp);
    set_peers6(a, {}, {p6_}, {}, {{0x4003, p6_, peer6_port}});
    const bytes data = pattern(33, 7);
    auto out = roundtrip(from_c6(channel_data(0x4003, data)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected6(rp, p6_, peer6_port, peer6_mac, data));
    out = roundtrip(from_p6(rp, data));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0],
              expected6(turn_port, c6_, client6_port, client6_mac, channel_data(0x4003, data)));
    EXPECT_EQ(dp::read(a->ctr.c2p_pkts), 1u);
    EXPECT_EQ(dp::read(a->ctr.p2c_pkts), 1u);
    expect_accounted("two workers");
}
