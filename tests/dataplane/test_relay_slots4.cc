// An interface with two IPv4 slots in different /24s: 198.18.0.1/24 (slot
// 0) and 198.19.5.1/24 (slot 1), gateway 198.18.0.254. A remote on-link to
// the second slot is resolved directly (its own MAC, held on a miss), not
// sent to the gateway; off-link goes to the gateway; ARP for the second
// slot's address is policed as ARP to us, not as ARP for other hosts.
// Sessions are installed with flow commands directly (control's
// session_manager puts legs on the first IPv4 slot).
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>

ISAR_TEST_EAL_ENV("test_relay_slots4");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

constexpr uint32_t slot1_ip = 0xc6130501;            // 198.19.5.1
constexpr uint32_t gw_ip = 0xc61200fe;               // 198.18.0.254
const peer near2{0xc6130514, 7000, mac(0x22, 0x04)}; // 198.19.5.20: on-link to slot 1
const peer far{0xc6140005, 8000, mac(0x33, 0x04)};   // 198.20.0.5: off-link
const rte_ether_addr gw_mac = mac(0x99, 0x04);

class RelaySlots4 : public FlowRelayTest {
protected:
    void SetUp() override
    {
        relay_options o;
        o.tweak = [](dp::dp_config& c) {
            c.ifaces[0].addrs.push_back(slot4(slot1_ip));
            c.ifaces[0].gateway_be = rte_cpu_to_be_32(gw_ip);
            c.arp_other_pps = 100;
            c.arp_request_pps = 100000;
            c.arp_reply_pps = 100000;
        };
        start(o);
        ASSERT_EQ(r->dp->nladdrs(), 2u);
        ASSERT_EQ(r->dp->laddr(1).family, 4);
        ASSERT_EQ(r->dp->ifc(0).nmore4, 1u);
    }
    // Leg a: slot 0 port 30100, remote alice; leg b: slot 1 port 30101,
    // remote `b`. Each forwards to the other.
    void install(const peer& b)
    {
        install_two_legs([&](dp::leg& l, unsigned i) {
            const peer& p = i == 0 ? alice : b;
            l.laddr = static_cast<uint16_t>(i);
            l.family = 4;
            l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(30100 + i));
            l.remote.store(dp::pack_ep(rte_cpu_to_be_32(p.ip), rte_cpu_to_be_16(p.port)));
        });
    }
    bytes from_alice(const bytes& pl) const
    {
        udp4_spec s;
        s.dst_mac = r->mac(0);
        s.src_mac = alice.mac;
        s.src_ip = alice.ip;
        s.dst_ip = r->ip(0);
        s.src_port = alice.port;
        s.dst_port = 30100;
        s.payload = pl;
        return build(s);
    }
    // What the relay sends from slot 1 port 30101 to `to` via MAC `via`.
    bytes out_to(const peer& to, const rte_ether_addr& via, const bytes& pl) const
    {
        udp4_spec s;
        s.dst_mac = via;
        s.src_mac = r->mac(0);
        s.src_ip = slot1_ip;
        s.dst_ip = to.ip;
        s.src_port = 30101;
        s.dst_port = to.port;
        s.payload = pl;
        return build(s);
    }
    void drain_worker()
    {
        for (unsigned i = 0; i < 10000 && r->ports[0]->rx_pending() > 0; i++)
            r->poll_worker(0);
        r->poll_worker(0);
    }
};

TEST_F(RelaySlots4, OnLinkAndNextHopUseEverySlotsPrefix)
{
    const dp::iface& f = r->dp->ifc(0);
    EXPECT_TRUE(f.on_link(rte_cpu_to_be_32(alice.ip)));
    EXPECT_TRUE(f.on_link(rte_cpu_to_be_32(near2.ip)));
    EXPECT_FALSE(f.on_link(rte_cpu_to_be_32(far.ip)));
    EXPECT_EQ(f.next_hop(rte_cpu_to_be_32(near2.ip)), rte_cpu_to_be_32(near2.ip));
    EXPECT_EQ(f.next_hop(rte_cpu_to_be_32(far.ip)), rte_cpu_to_be_32(gw_ip));
    EXPECT_TRUE(f.is_local4(rte_cpu_to_be_32(slot1_ip)));
    EXPECT_TRUE(f.is_local4(rte_cpu_to_be_32(r->ip(0))));
    EXPECT_FALSE(f.is_local4(rte_cpu_to_be_32(near2.ip)));
}

// Through the worker: out from slot 1 to a remote in slot 1's /24 goes to
// that remote's own MAC although the gateway is known too.
TEST_F(RelaySlots4, RemoteOnLinkToSecondSlotResolvesDirectly)
{
    r->learn(alice);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(gw_ip), gw_mac));
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(near2.ip), near2.mac));
    install(near2);
    const bytes pl = rtp(1, 1, 100);
    const auto out = run(from_alice(pl));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(out_to(near2, near2.mac, pl)));
    EXPECT_TRUE(udp4_cksum_ok(out[0]));
    EXPECT_EQ(r->total_drops(), 0u);
}

// Not yet resolved: held for control (not sent to the gateway).
TEST_F(RelaySlots4, UnknownOnLinkRemoteOfSecondSlotIsHeld)
{
    r->learn(alice);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(gw_ip), gw_mac));
    install(near2);
    EXPECT_TRUE(run(from_alice(rtp(1, 1, 100))).empty());
    rte_mbuf* held[4];
    ASSERT_EQ(r->dp->poll_exceptions(held, 4), 1u);
    EXPECT_EQ(held[0]->hash.usr, static_cast<uint32_t>(dp::exc_kind::hold));
    rte_pktmbuf_free(held[0]);
}

// Off-link (in neither slot's prefix): to the gateway's MAC.
TEST_F(RelaySlots4, OffLinkGoesToTheGateway)
{
    r->learn(alice);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(gw_ip), gw_mac));
    install(far);
    const bytes pl = rtp(2, 1, 100);
    const auto out = run(from_alice(pl));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(out_to(far, gw_mac, pl)));
    EXPECT_TRUE(udp4_cksum_ok(out[0]));
}

// ARP requests for the second slot's address have the "to us" rate; the
// same number for another host, or claiming our own address as sender,
// are policed at arp_other_pps.
TEST_F(RelaySlots4, ArpForSecondSlotIsArpToUs)
{
    const rte_ether_addr bcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    auto arp = [&](uint32_t sip, uint32_t tip) {
        arp_spec a;
        a.dst_mac = bcast;
        a.src_mac = near2.mac;
        a.sha = near2.mac;
        a.op = 1;
        a.sip = sip;
        a.tip = tip;
        return build(a);
    };
    const unsigned n = 300;
    for (unsigned i = 0; i < n; i++)
        r->inject(arp(near2.ip, slot1_ip));
    drain_worker();
    EXPECT_EQ(r->drops(drop::policed_arp), 0u);
    rte_mbuf* exc[64];
    for (unsigned k; (k = r->dp->poll_exceptions(exc, 64)) != 0;)
        rte_pktmbuf_free_bulk(exc, k);

    for (unsigned i = 0; i < n; i++)
        r->inject(arp(near2.ip, 0xc6130563)); // who-has 198.19.5.99 (not us)
    drain_worker();
    const uint64_t other = r->drops(drop::policed_arp);
    EXPECT_GE(other, n - 40);
    for (unsigned k; (k = r->dp->poll_exceptions(exc, 64)) != 0;)
        rte_pktmbuf_free_bulk(exc, k);

    for (unsigned i = 0; i < n; i++)
        r->inject(arp(slot1_ip, slot1_ip)); // our own gratuitous ARP, looped back
    drain_worker();
    EXPECT_GE(r->drops(drop::policed_arp) - other, n - 40);
    for (unsigned k; (k = r->dp->poll_exceptions(exc, 64)) != 0;)
        rte_pktmbuf_free_bulk(exc, k);
    EXPECT_EQ(r->drops(drop::exception_full), 0u);
}

} // namespace
