// The worker's side of the kernel interface (dataplane/kernel_path.cc) through
// the real loop over net_ring ports: a second ring port stands in for the
// net_tap (its TX queue w = what worker w hands the kernel, its RX queue =
// what the kernel sends), wired up as dataplane::setup_kernel() wires a tap.
// - wire -> kernel: TCP to a stream port arrives byte for byte; other TCP is
//   a not_udp drop; kernel_pps polices (policed_kernel) and a full tap queue
//   counts kernel_full;
// - kernel -> wire: IPv4 gets the port's source MAC and the next hop's
//   destination MAC (the kernel is NOARP and puts its own); an unknown next
//   hop is held by control until ARP answers; non-IPv4 (ARP, IPv6) is
//   kernel_not_ipv4; an off-link destination without gateway is no_route.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>

ISAR_TEST_EAL_ENV("test_kernel_relay");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

constexpr uint16_t stream_port = 3478;

class KernelRelay : public RelayTest {
protected:
    void start_kernel(unsigned kernel_ring_size = 4096)
    {
        start();
        kport = std::make_unique<ring_port>("kern" + std::to_string(n_++), 1, kernel_ring_size);
        ASSERT_TRUE(kport->ok());
        // Configured and started as setup_kernel() does a tap: a queue pair
        // per worker (one here).
        rte_eth_conf conf{};
        const uint16_t id = kport->id();
        ASSERT_EQ(rte_eth_dev_configure(id, 1, 1, &conf), 0);
        ASSERT_EQ(rte_eth_rx_queue_setup(id, 0, 512, SOCKET_ID_ANY, nullptr, r->dp->pool()), 0);
        ASSERT_EQ(rte_eth_tx_queue_setup(id, 0, 512, SOCKET_ID_ANY, nullptr), 0);
        ASSERT_EQ(rte_eth_dev_start(id), 0);
        dp::iface& f = r->dp->ifc(0);
        f.kernel = true;
        f.kernel_port = kport->id();
        dp::worker& w = r->dp->wk(0);
        w.rxqs[w.nrxq++] = {kport->id(), 0, 0};
        w.cctx.stream_ports[0] = stream_port;
        w.cctx.nstream_ports = 1;
    }
    void TearDown() override
    {
        if (kport)
            kport->flush();
        RelayTest::TearDown(); // mbufs back to the baseline
        kport.reset();
    }
    // TCP from `from` to the relay's `dport` on iface 0.
    bytes tcp_in(const peer& from, uint16_t dport, size_t payload = 100) const
    {
        udp4_spec s;
        s.src_mac = from.mac;
        s.dst_mac = r->mac(0);
        s.src_ip = from.ip;
        s.dst_ip = r->ip(0);
        s.proto = IPPROTO_TCP;
        bytes h(20 + payload, 0x77);
        h[0] = static_cast<uint8_t>(from.port >> 8);
        h[1] = static_cast<uint8_t>(from.port);
        h[2] = static_cast<uint8_t>(dport >> 8);
        h[3] = static_cast<uint8_t>(dport);
        h[12] = 0x50;
        h[13] = 0x18;
        s.l4 = h;
        return build(s);
    }
    // What the kernel sends to `to` (NOARP: its own MAC as destination).
    bytes tcp_out(uint32_t to_ip, size_t payload = 100, uint32_t from_ip = 0) const
    {
        udp4_spec s;
        s.src_mac = r->mac(0);
        s.dst_mac = r->mac(0);
        s.src_ip = from_ip != 0 ? from_ip : r->ip(0);
        s.dst_ip = to_ip;
        s.proto = IPPROTO_TCP;
        s.l4 = bytes(20 + payload, 0x55);
        return build(s);
    }
    static bytes with_macs(bytes f, const rte_ether_addr& dst, const rte_ether_addr& src)
    {
        std::copy(dst.addr_bytes, dst.addr_bytes + 6, f.begin());
        std::copy(src.addr_bytes, src.addr_bytes + 6, f.begin() + 6);
        return f;
    }
    void from_kernel(const bytes& f) { ASSERT_EQ(kport->inject(r->mbuf(f)), 1u); }
    std::vector<bytes> to_kernel()
    {
        auto pkts = kport->take_tx(0);
        std::vector<bytes> out;
        for (rte_mbuf* m : pkts)
            out.push_back(mbuf_bytes(m));
        free_all(pkts);
        return out;
    }

    std::unique_ptr<ring_port> kport;
    static inline unsigned n_ = 0;
};

} // namespace

TEST_F(KernelRelay, WireToKernel)
{
    start_kernel();
    const bytes syn = tcp_in(alice, stream_port);
    r->inject(syn);
    r->inject(tcp_in(alice, 22));
    r->settle();
    const auto up = to_kernel();
    ASSERT_EQ(up.size(), 1u);
    EXPECT_EQ(up[0], syn) << "the kernel gets the frame as it came";
    EXPECT_EQ(r->sum(&dp::worker_stats::to_kernel_pkts), 1u);
    EXPECT_EQ(r->sum(&dp::worker_stats::to_kernel_bytes), syn.size());
    EXPECT_EQ(r->drops(drop::not_udp), 1u) << "TCP to another port (kernel_forward turn)";
    EXPECT_TRUE(r->sent_by_workers(0).empty());
}

TEST_F(KernelRelay, KernelToWire)
{
    start_kernel();
    r->learn(alice);
    const bytes out = tcp_out(alice.ip);
    from_kernel(out);
    r->settle();
    const auto sent = r->sent_by_workers(0);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], with_macs(out, alice.mac, r->mac(0)));
    EXPECT_EQ(r->sum(&dp::worker_stats::from_kernel_pkts), 1u);
    EXPECT_EQ(r->sum(&dp::worker_stats::from_kernel_bytes), out.size());
    EXPECT_EQ(r->sum(&dp::worker_stats::rx_pkts), 0u) << "the kernel's frames are not wire RX";
}

TEST_F(KernelRelay, UnknownNextHopIsHeldUntilArpAnswers)
{
    start_kernel();
    const bytes out = tcp_out(bob.ip);
    from_kernel(out);
    r->settle();
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), 1u);
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    const auto asked = r->sent(0, r->dp->nworkers()); // control's queue: the ARP request
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ((asked[0][12] << 8) | asked[0][13], RTE_ETHER_TYPE_ARP);
    arp_spec a;
    a.dst_mac = r->mac(0);
    a.src_mac = bob.mac;
    a.op = 2;
    a.sha = bob.mac;
    a.sip = bob.ip;
    a.tha = r->mac(0);
    a.tip = r->ip(0);
    r->inject(build(a));
    r->settle();
    const auto sent = r->sent(0, r->dp->nworkers());
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], with_macs(out, bob.mac, r->mac(0)));
}

TEST_F(KernelRelay, OnlyIpv4LeavesAndOnlyWithARoute)
{
    start_kernel();
    arp_spec a; // the kernel is NOARP; should it ever ARP, the wire never sees it
    a.src_mac = r->mac(0);
    a.sha = r->mac(0);
    a.sip = r->ip(0);
    a.tip = alice.ip;
    from_kernel(build(a));
    udp4_spec v6;
    v6.ether_type = RTE_ETHER_TYPE_IPV6;
    v6.src_ip = r->ip(0);
    v6.dst_ip = alice.ip;
    v6.payload = bytes(40, 0);
    from_kernel(build(v6));
    from_kernel(bytes(20, 0x08)); // shorter than Ethernet + IPv4
    from_kernel(tcp_out(0x08080808)); // off-link, no gateway
    r->settle();
    EXPECT_EQ(r->drops(drop::kernel_not_ipv4), 3u);
    EXPECT_EQ(r->drops(drop::no_route), 1u);
    EXPECT_TRUE(r->sent_by_workers(0).empty());
    EXPECT_TRUE(r->sent(0, r->dp->nworkers()).empty());
}

// The kernel routes for others on some boxes (ip_forward on a docker host):
// only frames from the interface's own address leave this way.
TEST_F(KernelRelay, OnlyTheInterfaceAddressLeaves)
{
    start_kernel();
    r->learn(alice);
    from_kernel(tcp_out(alice.ip, 100, 0xac110002)); // 172.17.0.2, a container
    from_kernel(tcp_out(alice.ip, 100, r->ip(0) + 1));
    from_kernel(tcp_out(alice.ip));
    r->settle();
    EXPECT_EQ(r->drops(drop::kernel_bad_source), 2u);
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u) << "the one from the interface's address";
}

TEST_F(KernelRelay, PolicedAtKernelPps)
{
    start_kernel();
    dp::gcra& g = r->dp->wk(0).kernel_police;
    g.interval_tsc = rte_get_tsc_hz() * 100; // one per 100 s ...
    g.burst_tsc = g.interval_tsc * 4;        // ... after a burst of 5
    for (unsigned i = 0; i < 40; i++)
        r->inject(tcp_in(alice, stream_port));
    r->settle();
    EXPECT_EQ(to_kernel().size(), 5u);
    EXPECT_EQ(r->drops(drop::policed_kernel), 35u);
}

TEST_F(KernelRelay, FullKernelQueueIsCounted)
{
    start_kernel(64); // the tap's TX ring holds 63
    for (unsigned i = 0; i < 100; i++)
        r->inject(tcp_in(alice, stream_port));
    r->settle();
    const uint64_t up = r->sum(&dp::worker_stats::to_kernel_pkts);
    EXPECT_EQ(to_kernel().size(), up);
    EXPECT_EQ(up, 63u);
    EXPECT_EQ(r->drops(drop::kernel_full), 100u - up);
}
