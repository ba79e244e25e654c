// IPv6 Neighbor Discovery and ICMPv6 echo in neighbor_manager, and the aging
// of both families' neighbour tables. Frames go straight to
// neighbor_manager::handle() marked as the workers would mark them; answers
// are read off the control lcore's TX queue and checked byte by byte, with
// checksums computed here independently of the code under test.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>

#include "dataplane/classify.h"

ISAR_TEST_EAL_ENV("test_nd");

using namespace isar;
using namespace isar::test;
using dp::ip6_addr;

namespace {

ip6_addr v6(uint16_t last, uint16_t sub = 0)
{
    ip6_addr a{};
    a.b[0] = 0x20, a.b[1] = 0x01, a.b[2] = 0x00, a.b[3] = 0x02;
    a.b[6] = static_cast<uint8_t>(sub >> 8), a.b[7] = static_cast<uint8_t>(sub);
    a.b[14] = static_cast<uint8_t>(last >> 8), a.b[15] = static_cast<uint8_t>(last);
    return a;
}
const ip6_addr ours = v6(1), gw6 = v6(0xfe);
const ip6_addr a6 = v6(2), b6 = v6(3);

void put(bytes& f, const void* p, size_t n)
{
    const auto* b = static_cast<const uint8_t*>(p);
    f.insert(f.end(), b, b + n);
}

// The ICMPv6 checksum of `icmp` (its checksum field zero or not) as the
// sender must write it, from the pseudo-header (RFC 8200 §8.1).
uint16_t icmp6_cksum(const ip6_addr& src, const ip6_addr& dst, bytes icmp)
{
    icmp[2] = icmp[3] = 0;
    bytes ph;
    put(ph, src.b, 16);
    put(ph, dst.b, 16);
    const uint32_t len = static_cast<uint32_t>(icmp.size());
    const uint8_t l[8] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                          static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len), 0, 0, 0, 58};
    put(ph, l, 8);
    const uint16_t s = ones_sum(icmp.data(), icmp.size(), ones_sum(ph.data(), ph.size()));
    return static_cast<uint16_t>(~s);
}

struct icmp6_spec {
    rte_ether_addr dst_mac, src_mac;
    ip6_addr src, dst;
    uint8_t hop_limit = 255;
    bytes icmp; // checksum filled in unless bad_cksum
    bool bad_cksum = false;
};

bytes frame6(const icmp6_spec& s)
{
    bytes f;
    put(f, s.dst_mac.addr_bytes, 6);
    put(f, s.src_mac.addr_bytes, 6);
    f.push_back(0x86), f.push_back(0xdd);
    const uint8_t h[8] = {0x60, 0, 0, 0, static_cast<uint8_t>(s.icmp.size() >> 8),
                          static_cast<uint8_t>(s.icmp.size()), 58, s.hop_limit};
    put(f, h, 8);
    put(f, s.src.b, 16);
    put(f, s.dst.b, 16);
    bytes icmp = s.icmp;
    const uint16_t c = static_cast<uint16_t>(icmp6_cksum(s.src, s.dst, icmp) ^ (s.bad_cksum ? 1 : 0));
    icmp[2] = static_cast<uint8_t>(c >> 8), icmp[3] = static_cast<uint8_t>(c);
    put(f, icmp.data(), icmp.size());
    return f;
}

// NS (135) or NA (136) body: type, code, cksum, flags, target, one
// link-layer address option (type 1 for NS, 2 for NA) unless `no_opt`.
bytes nd_body(uint8_t type, uint8_t flags, const ip6_addr& target, const rte_ether_addr* ll)
{
    bytes b = {type, 0, 0, 0, flags, 0, 0, 0};
    put(b, target.b, 16);
    if (ll != nullptr) {
        b.push_back(type == 135 ? 1 : 2), b.push_back(1);
        put(b, ll->addr_bytes, 6);
    }
    return b;
}

rte_ether_addr mcast_of(const ip6_addr& a)
{
    return rte_ether_addr{{0x33, 0x33, a.b[12], a.b[13], a.b[14], a.b[15]}};
}

bytes eth_of(const rte_ether_addr& m)
{
    return bytes(m.addr_bytes, m.addr_bytes + 6);
}
bytes addr_bytes(const ip6_addr& a)
{
    return bytes(a.b, a.b + 16);
}

// A frame as the relay must emit it: ICMPv6 from `src` to `dst`, hop limit
// `hl`, with a correct checksum.
bytes expect6(const rte_ether_addr& dst_mac, const rte_ether_addr& src_mac, const ip6_addr& src,
              const ip6_addr& dst, uint8_t hl, const bytes& icmp)
{
    icmp6_spec s{dst_mac, src_mac, src, dst, hl, icmp};
    return frame6(s);
}

class Nd : public RelayTest {
protected:
    void SetUp() override
    {
        relay_options o;
        o.tweak = [](dp::dp_config& c) {
            c.ifaces[0].addrs.push_back(slot6(ours));
            c.ifaces[0].gateway6 = gw6;
            c.ifaces[0].has_gateway6 = true;
        };
        start(o);
        ctlq = o.nworkers;
    }
    // Hands `f` to neighbor_manager as a worker would.
    void feed(const bytes& f, dp::exc_kind k)
    {
        rte_mbuf* m = r->mbuf(f);
        ASSERT_NE(m, nullptr);
        m->hash.usr = static_cast<uint32_t>(k);
        r->nm->handle(m);
    }
    std::vector<bytes> out() { return r->sent(0, ctlq); }
    bool known6(const ip6_addr& a, rte_ether_addr* m)
    {
        return r->dp->ifc(0).neigh->lookup6(a, m);
    }
    // An NS from alice (2001:2::2) for `target`, to its solicited-node group.
    bytes ns_from_alice(const ip6_addr& target, uint8_t hl = 255, bool bad = false)
    {
        icmp6_spec s{mcast_of(target.solicited_node()), alice.mac, a6, target.solicited_node(), hl,
                     nd_body(135, 0, target, &alice.mac), bad};
        return frame6(s);
    }
    bytes na(const rte_ether_addr& from, const ip6_addr& target, uint8_t flags,
             const rte_ether_addr* tlla)
    {
        icmp6_spec s{r->mac(0), from, target, ours, 255, nd_body(136, flags, target, tlla)};
        return frame6(s);
    }
    const ctl::neighbor_manager::counters& st() { return r->nm->stats(); }
    unsigned ctlq = 0;
};

} // namespace

TEST_F(Nd, AnswersNsForOurAddress)
{
    feed(ns_from_alice(ours), dp::exc_kind::nd);
    auto o = out();
    ASSERT_EQ(o.size(), 1u);
    // The NA byte by byte: to alice, S and O set, our MAC as target
    // link-layer address, hop limit 255, checksum over the pseudo-header.
    bytes icmp = {136, 0, 0, 0, 0x60, 0, 0, 0};
    put(icmp, ours.b, 16);
    icmp.push_back(2), icmp.push_back(1);
    put(icmp, r->mac(0).addr_bytes, 6);
    EXPECT_EQ(o[0], expect6(alice.mac, r->mac(0), ours, a6, 255, icmp)) << hex(o[0]);
    // And a direct check of the checksum field against the RFC sum.
    ASSERT_EQ(o[0].size(), 14u + 40 + 32);
    bytes got(o[0].begin() + 54, o[0].end());
    const uint16_t c = static_cast<uint16_t>(got[2] << 8 | got[3]);
    EXPECT_EQ(c, icmp6_cksum(ours, a6, got));
    EXPECT_NE(c, 0u);
    // The asker was learned from its source link-layer address option.
    rte_ether_addr m{};
    ASSERT_TRUE(known6(a6, &m));
    EXPECT_TRUE(mac_eq(m, alice.mac));
    EXPECT_EQ(st().nd_in, 1u);
    EXPECT_EQ(st().nd_ns_answered, 1u);
    EXPECT_EQ(st().nd_learned, 1u);
}

TEST_F(Nd, BadNsIsCountedAndUnanswered)
{
    feed(ns_from_alice(ours, 254), dp::exc_kind::nd);        // routed: hop limit not 255
    feed(ns_from_alice(ours, 255, true), dp::exc_kind::nd);  // bad checksum
    bytes trunc = ns_from_alice(ours);
    trunc.resize(14 + 40 + 20); // payload length beyond the frame
    feed(trunc, dp::exc_kind::nd);
    // A zero-length option (RFC 4861 §4.6: invalid).
    bytes body = nd_body(135, 0, ours, nullptr);
    body.push_back(1), body.push_back(0);
    body.resize(body.size() + 6);
    feed(frame6({mcast_of(ours.solicited_node()), alice.mac, a6, ours.solicited_node(), 255, body}),
         dp::exc_kind::nd);
    EXPECT_EQ(st().nd_bad, 4u);
    // An NS for somebody else: valid, not ours, not answered.
    feed(ns_from_alice(v6(0x99)), dp::exc_kind::nd);
    EXPECT_EQ(st().nd_other, 1u);
    EXPECT_TRUE(out().empty());
    rte_ether_addr m{};
    EXPECT_FALSE(known6(a6, &m)) << "nothing learned from bad or foreign NS";
}

TEST_F(Nd, DadProbeForOurAddressIsDefended)
{
    const ip6_addr any{};
    icmp6_spec s{mcast_of(ours.solicited_node()), alice.mac, any, ours.solicited_node(), 255,
                 nd_body(135, 0, ours, nullptr)};
    feed(frame6(s), dp::exc_kind::nd);
    auto o = out();
    ASSERT_EQ(o.size(), 1u);
    bytes icmp = {136, 0, 0, 0, 0x20, 0, 0, 0}; // O only, to all nodes
    put(icmp, ours.b, 16);
    icmp.push_back(2), icmp.push_back(1);
    put(icmp, r->mac(0).addr_bytes, 6);
    EXPECT_EQ(o[0], expect6(rte_ether_addr{{0x33, 0x33, 0, 0, 0, 1}}, r->mac(0), ours,
                            ip6_addr::all_nodes(), 255, icmp));
    EXPECT_EQ(st().nd_dad_conflict, 1u);
}

TEST_F(Nd, HeldPacketResolvedWithNsAndReleased)
{
    // A rewritten IPv6 packet to bob (on-link, unknown), held by a worker.
    icmp6_spec held{rte_ether_addr{}, r->mac(0), ours, b6, 64, {128, 0, 0, 0, 0, 1, 0, 1}};
    const bytes frame = frame6(held);
    feed(frame, dp::exc_kind::hold);
    EXPECT_TRUE(r->nm->holding());
    EXPECT_EQ(st().held, 1u);
    auto o = out();
    ASSERT_EQ(o.size(), 1u);
    // NS to bob's solicited-node group with our link-layer address.
    bytes icmp = {135, 0, 0, 0, 0, 0, 0, 0};
    put(icmp, b6.b, 16);
    icmp.push_back(1), icmp.push_back(1);
    put(icmp, r->mac(0).addr_bytes, 6);
    EXPECT_EQ(o[0], expect6(rte_ether_addr{{0x33, 0x33, 0xff, 0, 0, 3}}, r->mac(0), ours,
                            b6.solicited_node(), 255, icmp))
            << hex(o[0]);
    EXPECT_EQ(st().nd_ns_sent, 1u);
    // A second packet to bob waits without a second NS.
    feed(frame, dp::exc_kind::hold);
    EXPECT_TRUE(out().empty());
    // Bob answers: both leave, in order, with his MAC.
    feed(na(bob.mac, b6, 0x60, &bob.mac), dp::exc_kind::nd);
    EXPECT_FALSE(r->nm->holding());
    o = out();
    ASSERT_EQ(o.size(), 2u);
    bytes want = frame;
    memcpy(want.data(), bob.mac.addr_bytes, 6);
    EXPECT_EQ(o[0], want);
    EXPECT_EQ(o[1], want);
    EXPECT_EQ(st().held_sent, 2u);
    rte_ether_addr m{};
    ASSERT_TRUE(known6(b6, &m));
    EXPECT_TRUE(mac_eq(m, bob.mac));
}

TEST_F(Nd, OffLinkDestinationResolvesTheGateway)
{
    icmp6_spec held{rte_ether_addr{}, r->mac(0), ours, v6(9, 5), 64, {128, 0, 0, 0, 0, 1, 0, 1}};
    feed(frame6(held), dp::exc_kind::hold);
    auto o = out();
    ASSERT_EQ(o.size(), 1u);
    ASSERT_GE(o[0].size(), 54u + 24);
    EXPECT_EQ(bytes(o[0].begin() + 62, o[0].begin() + 78), addr_bytes(gw6)) << "NS target";
    EXPECT_EQ(bytes(o[0].begin(), o[0].begin() + 6),
              eth_of(rte_ether_addr{{0x33, 0x33, 0xff, 0, 0, 0xfe}}));
    // An NA nobody asked for teaches nothing; the gateway's does.
    feed(na(carol.mac, v6(0x77), 0x60, &carol.mac), dp::exc_kind::nd);
    rte_ether_addr m{};
    EXPECT_FALSE(known6(v6(0x77), &m));
    EXPECT_EQ(st().nd_other, 1u);
    feed(na(carol.mac, gw6, 0x60, &carol.mac), dp::exc_kind::nd);
    o = out();
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(bytes(o[0].begin(), o[0].begin() + 6), eth_of(carol.mac));
}

TEST_F(Nd, UnansweredNsGivesUpAndFreesTheHeld)
{
    icmp6_spec held{rte_ether_addr{}, r->mac(0), ours, b6, 64, {128, 0, 0, 0, 0, 1, 0, 1}};
    feed(frame6(held), dp::exc_kind::hold);
    out();
    uint64_t now = rte_rdtsc();
    for (unsigned i = 1; i <= ctl::neighbor_manager::max_tries; i++) {
        now += rte_get_tsc_hz() + 1;
        r->nm->tick(now);
    }
    EXPECT_FALSE(r->nm->holding());
    EXPECT_EQ(st().held_dropped, 1u);
    EXPECT_EQ(out().size(), ctl::neighbor_manager::max_tries - 1) << "NS retries";
}

TEST_F(Nd, AnswersEcho6)
{
    bytes echo = {128, 0, 0, 0, 0x12, 0x34, 0, 7, 'p', 'i', 'n', 'g', '!'};
    icmp6_spec s{r->mac(0), alice.mac, a6, ours, 61, echo};
    bytes f = frame6(s);
    f.resize(f.size() + 5); // Ethernet padding: not echoed back
    feed(f, dp::exc_kind::icmp6);
    auto o = out();
    ASSERT_EQ(o.size(), 1u);
    bytes reply = echo;
    reply[0] = 129;
    EXPECT_EQ(o[0], expect6(alice.mac, r->mac(0), ours, a6, 64, reply)) << hex(o[0]);
    EXPECT_EQ(st().icmp6_echo_replies, 1u);
    // A bad checksum, an echo to a group, an error: no answer.
    s.bad_cksum = true;
    feed(frame6(s), dp::exc_kind::icmp6);
    icmp6_spec g{r->mac(0), alice.mac, a6, ip6_addr::all_nodes(), 64, echo};
    feed(frame6(g), dp::exc_kind::icmp6);
    icmp6_spec err{r->mac(0), alice.mac, a6, ours, 64, {1, 4, 0, 0, 0, 0, 0, 0}};
    feed(frame6(err), dp::exc_kind::icmp6);
    EXPECT_TRUE(out().empty());
    EXPECT_EQ(st().icmp6_bad, 1u);
    EXPECT_EQ(st().icmp6_other, 2u);
    EXPECT_EQ(st().icmp6_in, 4u);
}

TEST_F(Nd, AnnounceSendsUnsolicitedNaAndGratuitousArp)
{
    r->nm->announce();
    auto o = out();
    ASSERT_EQ(o.size(), 2u);
    EXPECT_EQ(o[0][12], 0x08);
    EXPECT_EQ(o[0][13], 0x06) << "gratuitous ARP for the IPv4 address first";
    bytes icmp = {136, 0, 0, 0, 0x20, 0, 0, 0};
    put(icmp, ours.b, 16);
    icmp.push_back(2), icmp.push_back(1);
    put(icmp, r->mac(0).addr_bytes, 6);
    EXPECT_EQ(o[1], expect6(rte_ether_addr{{0x33, 0x33, 0, 0, 0, 1}}, r->mac(0), ours,
                            ip6_addr::all_nodes(), 255, icmp));
    EXPECT_EQ(st().nd_na_unsolicited, 1u);
}

TEST_F(Nd, MacChangeIsLearnedWithOverrideOnly)
{
    feed(ns_from_alice(ours), dp::exc_kind::nd); // learns alice
    out();
    const rte_ether_addr other = mac(0x42, 0x42);
    // Without O an NA does not replace a known MAC.
    feed(na(other, a6, 0x40, &other), dp::exc_kind::nd);
    rte_ether_addr m{};
    ASSERT_TRUE(known6(a6, &m));
    EXPECT_TRUE(mac_eq(m, alice.mac));
    EXPECT_EQ(st().neigh_moved, 0u);
    // With O it does, and the move is counted (and logged).
    feed(na(other, a6, 0x20, &other), dp::exc_kind::nd);
    ASSERT_TRUE(known6(a6, &m));
    EXPECT_TRUE(mac_eq(m, other));
    EXPECT_EQ(st().neigh_moved, 1u);
    // IPv4: a known neighbour's ARP with a new MAC.
    arp_spec q;
    q.src_mac = alice.mac;
    q.sha = alice.mac;
    q.sip = alice.ip;
    q.tip = r->ip(0);
    feed(build(q), dp::exc_kind::arp);
    q.src_mac = q.sha = other;
    feed(build(q), dp::exc_kind::arp);
    ASSERT_TRUE(r->dp->ifc(0).neigh->lookup(rte_cpu_to_be_32(alice.ip), &m));
    EXPECT_TRUE(mac_eq(m, other));
    EXPECT_EQ(st().neigh_moved, 2u);
    out();
}

// Aging with a clock the test moves: REACHABLE for reachable_s, then three
// unicast probes a second apart, then removal; an answer in between renews.
namespace {
uint64_t g_now = 0;
uint64_t fake_clock()
{
    return g_now;
}
} // namespace

TEST_F(Nd, AgingProbesThenRemovesBothFamilies)
{
    const uint64_t hz = rte_get_tsc_hz();
    g_now = 1000 * hz;
    r->nm->set_clock(&fake_clock);
    feed(ns_from_alice(ours), dp::exc_kind::nd); // alice v6, confirmed now
    arp_spec q;
    q.src_mac = alice.mac;
    q.sha = alice.mac;
    q.sip = alice.ip;
    q.tip = r->ip(0);
    feed(build(q), dp::exc_kind::arp); // alice v4
    out();
    g_now += (ctl::neighbor_manager::reachable_s - 1) * hz;
    r->nm->tick(g_now);
    EXPECT_TRUE(out().empty()) << "still REACHABLE";
    g_now += 2 * hz;
    r->nm->tick(g_now);
    auto o = out();
    ASSERT_EQ(o.size(), 2u) << "one probe per family";
    // The ARP probe goes unicast to the known MAC.
    EXPECT_EQ(bytes(o[0].begin(), o[0].begin() + 6), eth_of(alice.mac));
    EXPECT_EQ(o[0][13], 0x06);
    // The NS probe too, to alice's own address.
    EXPECT_EQ(bytes(o[1].begin(), o[1].begin() + 6), eth_of(alice.mac));
    EXPECT_EQ(bytes(o[1].begin() + 38, o[1].begin() + 54), addr_bytes(a6));
    EXPECT_EQ(o[1][54], 135);
    g_now += hz / 2;
    r->nm->tick(g_now);
    EXPECT_TRUE(out().empty()) << "probes a second apart";
    // IPv4 answers the first probe: renewed. IPv6 stays silent.
    arp_spec rep = q;
    rep.op = 2;
    feed(build(rep), dp::exc_kind::arp);
    for (int i = 0; i < 2; i++) {
        g_now += hz;
        r->nm->tick(g_now);
    }
    o = out();
    ASSERT_EQ(o.size(), 2u) << "probes 2 and 3, IPv6 only";
    EXPECT_EQ(o[0][12], 0x86);
    EXPECT_EQ(o[1][12], 0x86);
    rte_ether_addr m{};
    EXPECT_TRUE(known6(a6, &m)) << "STALE entries are still used";
    g_now += hz;
    r->nm->tick(g_now);
    EXPECT_FALSE(known6(a6, &m)) << "no answer to three probes: removed";
    EXPECT_TRUE(r->dp->ifc(0).neigh->lookup(rte_cpu_to_be_32(alice.ip), &m)) << "renewed";
    EXPECT_EQ(st().neigh_expired, 1u);
    EXPECT_EQ(st().neigh_probes, 4u);
    EXPECT_TRUE(out().empty());
    // Static entries (configured, or set by tests) never age.
    r->learn(bob);
    g_now += 1000 * hz;
    r->nm->tick(g_now);
    EXPECT_TRUE(r->dp->ifc(0).neigh->lookup(rte_cpu_to_be_32(bob.ip), &m));
    out();
}

// Through the worker: classify marks an NS to our solicited-node group and an
// echo request to our address for control (exc_kind::nd / icmp6), and the
// answers leave on the control lcore's queue.
TEST_F(Nd, ThroughTheWorkerNsAndEcho)
{
    r->inject(ns_from_alice(ours));
    bytes echo = {128, 0, 0, 0, 0x12, 0x34, 0, 9, 'x'};
    r->inject(frame6({r->mac(0), alice.mac, a6, ours, 64, echo}));
    r->settle();
    auto o = out();
    ASSERT_EQ(o.size(), 2u);
    bytes na = {136, 0, 0, 0, 0x60, 0, 0, 0};
    put(na, ours.b, 16);
    na.push_back(2), na.push_back(1);
    put(na, r->mac(0).addr_bytes, 6);
    EXPECT_EQ(o[0], expect6(alice.mac, r->mac(0), ours, a6, 255, na)) << hex(o[0]);
    bytes reply = echo;
    reply[0] = 129;
    EXPECT_EQ(o[1], expect6(alice.mac, r->mac(0), ours, a6, 64, reply)) << hex(o[1]);
    EXPECT_EQ(st().nd_ns_answered, 1u);
    EXPECT_EQ(st().icmp6_echo_replies, 1u);
    EXPECT_TRUE(r->sent_by_workers(0).empty());
}
