// Malformed and hostile input through the real loop: every kind is dropped
// with its own counter, nothing is transmitted, and nothing leaks. Then a
// randomized fuzz loop of mutated and random frames with the same checks and
// the accounting invariant (every received packet ends in exactly one of
// dropped, forwarded, exception).
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <set>
#include <random>
#include <rte_ip.h>

ISAR_TEST_EAL_ENV("test_relay_malformed");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

struct bad_case {
    const char* what;
    drop reason;
    std::function<bytes(relay&, uint16_t port)> make; // port: a live relay port
    bool multi_seg = false;
};

udp4_spec base(relay& r, uint16_t port)
{
    udp4_spec s;
    s.src_mac = alice.mac;
    s.dst_mac = r.mac(0);
    s.src_ip = alice.ip;
    s.dst_ip = r.ip(0);
    s.src_port = alice.port;
    s.dst_port = port;
    s.payload = rtp(1, 1, 100);
    return s;
}

template <typename F>
bad_case mod(const char* what, drop d, F f)
{
    return bad_case{what, d, [f](relay& r, uint16_t port) {
                        udp4_spec s = base(r, port);
                        f(s);
                        return build(s);
                    }};
}

std::vector<bad_case> cases()
{
    return {
            {"empty frame", drop::bad_l2, [](relay&, uint16_t) { return bytes{}; }},
            {"runt", drop::bad_l2, [](relay&, uint16_t) { return bytes(10, 0xee); }},
            mod("VLAN", drop::odd_ethertype, [](udp4_spec& s) { s.vlan_tci = 5; }),
            mod("IPv6 EtherType, IPv4 bytes", drop::bad_ip6, [](udp4_spec& s) { s.ether_type = 0x86dd; }),
            mod("short IP", drop::bad_ip, [](udp4_spec& s) { s.truncate = 30; }),
            mod("version 6", drop::bad_ip, [](udp4_spec& s) { s.version = 6; }),
            mod("IHL 3", drop::bad_ip, [](udp4_spec& s) { s.ihl = 3; }),
            mod("IHL past total", drop::bad_ip,
                [](udp4_spec& s) {
                    s.ihl = 15;
                    s.total_length = 40;
                }),
            mod("total too big", drop::bad_ip, [](udp4_spec& s) { s.total_length = 1500; }),
            mod("total too small", drop::bad_ip, [](udp4_spec& s) { s.total_length = 10; }),
            mod("IP checksum", drop::bad_ip_cksum, [](udp4_spec& s) { s.ip_cksum_xor = 0x100; }),
            mod("MF", drop::ip_fragment, [](udp4_spec& s) { s.frag = RTE_IPV4_HDR_MF_FLAG; }),
            mod("offset", drop::ip_fragment, [](udp4_spec& s) { s.frag = 100; }),
            mod("other host", drop::not_for_us, [](udp4_spec& s) { s.dst_ip = 0xc6120063; }),
            mod("TCP", drop::not_udp,
                [](udp4_spec& s) {
                    s.proto = 6;
                    s.l4 = bytes(20, 0);
                }),
            mod("SCTP", drop::not_udp,
                [](udp4_spec& s) {
                    s.proto = 132;
                    s.l4 = bytes(12, 0);
                }),
            mod("UDP truncated", drop::bad_udp, [](udp4_spec& s) { s.l4 = bytes(5, 0); }),
            mod("UDP length long", drop::bad_udp, [](udp4_spec& s) { s.udp_length = 200; }),
            mod("UDP length short", drop::bad_udp, [](udp4_spec& s) { s.udp_length = 20; }),
            mod("empty payload", drop::not_rtp, [](udp4_spec& s) { s.payload.clear(); }),
            mod("first byte 64", drop::not_rtp, [](udp4_spec& s) { s.payload[0] = 64; }),
            mod("first byte 200", drop::not_rtp, [](udp4_spec& s) { s.payload[0] = 200; }),
            mod("first byte 10", drop::not_rtp, [](udp4_spec& s) { s.payload[0] = 10; }),
            mod("7-byte RTP", drop::rtp_short, [](udp4_spec& s) { s.payload.resize(7); }),
            mod("no session on port", drop::no_flow, [](udp4_spec& s) { s.dst_port = 30150; }),
            mod("port outside pool", drop::no_flow, [](udp4_spec& s) { s.dst_port = 9; }),
            mod("forged source", drop::src_mismatch, [](udp4_spec& s) { s.src_ip = 0xc6120099; }),
            mod("forged source port", drop::src_mismatch, [](udp4_spec& s) { s.src_port = 1; }),
            bad_case{"multi-segment", drop::multi_seg,
                     [](relay& r, uint16_t port) { return build(base(r, port)); }, true},
    };
}

class Malformed : public RelayTest, public ::testing::WithParamInterface<unsigned> {
protected:
    void SetUp() override
    {
        relay_options o;
        o.nworkers = GetParam();
        start(o);
        r->learn(alice);
        r->learn(bob);
        std::tie(pa, pb) = r->two_legs("call", alice, bob);
        r->exact = true;
    }
    uint16_t pa = 0, pb = 0;
};

} // namespace

TEST_P(Malformed, EachKindHasItsCounter)
{
    for (const auto& c : cases()) {
        SCOPED_TRACE(c.what);
        const uint64_t before = r->drops(c.reason);
        const uint64_t all_before = r->total_drops();
        const bytes f = c.make(*r, pa);
        if (c.multi_seg) {
            rte_mbuf* m = make_chain(r->dp->pool(), f, 50, r->ports[0]->id());
            ASSERT_NE(m, nullptr);
            ASSERT_EQ(r->ports[0]->inject(m), 1u);
        } else {
            r->inject(f);
        }
        r->settle();
        EXPECT_EQ(r->drops(c.reason), before + 1) << "counter " << dp::drop_name(c.reason);
        EXPECT_EQ(r->total_drops(), all_before + 1) << "exactly one counter";
        EXPECT_EQ(r->pending_tx(), 0u) << "nothing sent";
        EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline) << "freed";
    }
    // Leg-level counters for drops that happened on a leg.
    json s = r->call({{"cmd", "session.get"}, {"session", "call"}});
    EXPECT_EQ(s["legs"][0]["drops"]["src_mismatch"], 2);
    // Still forwarding afterwards.
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u);
    r->expect_accounted("malformed");
    // The stats command reports them by name.
    json st = r->call({{"cmd", "stats"}});
    EXPECT_EQ(st["total"]["drops"]["bad_ip"], 6);
    EXPECT_EQ(st["total"]["drops"]["not_rtp"], 4);
}

// A few thousand frames: mutations of valid RTP/ARP/ICMP frames (bit flips,
// byte overwrites, truncation, extension) and pure noise, in random bursts.
TEST_P(Malformed, Fuzz)
{
    std::mt19937 rng(0x15a7 + GetParam());
    r->learn(carol);
    r->learn(mallory);
    auto [pc, pd] = r->two_legs("call2", carol, std::nullopt);
    std::vector<bytes> seeds = {
            r->from_peer(alice, pa, rtp(1, 1, 160)),
            r->from_peer(bob, pb, rtp(2, 2, 20)),
            r->from_peer(carol, pc, rtp(3, 3, 12)),
            r->from_peer(mallory, pd, rtp(4, 4, 12)), // latches call2's d
            r->from_peer(alice, pa, rtp(5, 5, 20, 0)),
            build(arp_spec{.sip = alice.ip, .tip = r->ip(0)}),
    };
    {
        udp4_spec s = base(*r, pa);
        s.proto = 1;
        s.l4 = icmp_echo(8, 1, 1, bytes(32, 1));
        seeds.push_back(build(s));
    }
    const unsigned total = 4000;
    unsigned sent = 0, tx = 0, good_cksum_out = 0;
    std::set<bytes> bad_cksum_payloads;
    while (sent < total) {
        const unsigned burst = 1 + rng() % 70;
        for (unsigned i = 0; i < burst && sent < total; i++, sent++) {
            bytes f;
            const unsigned kind = rng() % 10;
            if (kind == 0) { // noise
                f.resize(rng() % 200);
                for (auto& b : f)
                    b = static_cast<uint8_t>(rng());
            } else {
                f = seeds[rng() % seeds.size()];
                const unsigned nmut = kind == 1 ? 0 : 1 + rng() % 4;
                for (unsigned k = 0; k < nmut && !f.empty(); k++) {
                    switch (rng() % 5) {
                    case 0:
                        f[rng() % f.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
                        break;
                    case 1: // header bytes are the interesting ones
                        f[rng() % std::min<size_t>(f.size(), 50)] = static_cast<uint8_t>(rng());
                        break;
                    case 2:
                        f.resize(rng() % f.size());
                        break;
                    case 3:
                        f.resize(f.size() + rng() % 40, static_cast<uint8_t>(rng()));
                        break;
                    case 4: // a plausible length field
                        if (f.size() > 40) {
                            f[16] = static_cast<uint8_t>(rng() % 2);
                            f[17] = static_cast<uint8_t>(rng());
                        }
                        break;
                    }
                }
            }
            // The relay updates a checksum, it does not launder it: remember
            // the payloads that arrive with a wrong one.
            if (auto in = parse_udp4(f); in && !in->udp_cksum_ok)
                bad_cksum_payloads.insert(in->payload);
            if (rng() % 16 == 0 && f.size() > 20) {
                rte_mbuf* m = make_chain(r->dp->pool(), f, 1 + rng() % f.size(), r->ports[0]->id());
                ASSERT_NE(m, nullptr);
                ASSERT_EQ(r->ports[0]->inject(m), 1u);
            } else {
                r->inject(f);
            }
        }
        r->settle();
        // Whatever went out is a well-formed frame from us to a known peer.
        for (unsigned q = 0; q < r->dp->nworkers(); q++) {
            for (const bytes& f : r->sent(0, q)) {
                tx++;
                auto v = parse_udp4(f);
                ASSERT_TRUE(v);
                EXPECT_TRUE(v->ip_cksum_ok);
                if (!v->udp_cksum_ok) {
                    EXPECT_EQ(bad_cksum_payloads.count(v->payload), 1u)
                            << "a wrong UDP checksum the input did not have";
                } else {
                    good_cksum_out++;
                }
                EXPECT_EQ(v->src_ip, r->ip(0));
                EXPECT_TRUE(mac_eq(v->src_mac, r->mac(0)));
                EXPECT_TRUE(v->dst_ip == alice.ip || v->dst_ip == bob.ip || v->dst_ip == carol.ip ||
                            v->dst_ip == mallory.ip)
                        << std::hex << v->dst_ip;
                EXPECT_TRUE(v->src_port == pa || v->src_port == pb || v->src_port == pc ||
                            v->src_port == pd);
                EXPECT_GE(v->payload.size(), 8u);
                EXPECT_GE(v->payload[0], 128);
                EXPECT_LE(v->payload[0], 191);
            }
        }
        r->sent(0, r->dp->nworkers()); // control's ARP/ICMP answers
        ASSERT_EQ(r->dp->mbufs_in_use(), r->baseline + 0) << "leak after " << sent << " frames";
    }
    EXPECT_EQ(r->sum(&dp::worker_stats::rx_pkts), total);
    EXPECT_GT(tx, 100u) << "the fuzz should also forward some";
    EXPECT_GT(good_cksum_out, 100u) << "intact inputs must leave with a valid UDP checksum";
    EXPECT_GT(r->total_drops(), 1000u);
    r->expect_accounted("fuzz");
}

INSTANTIATE_TEST_SUITE_P(Workers, Malformed, ::testing::Values(1u, 2u),
                         [](const auto& i) { return std::to_string(i.param) + "w"; });
